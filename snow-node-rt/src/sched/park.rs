//! Parking a worker that found no work: the sleeper registration that cannot lose a wake-up, the
//! spin of the first worker to park, and where a parked worker waits (in the reactor, or off it
//! while another spins). The rules are in the module docs of `sched`.

use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(doc)]
use super::DEFAULT_SPIN;
use super::{lock, Worker, SPIN_SLICE};

/// A worker's park in progress.
pub(super) struct Park {
    /// This worker is the spinner (see [`DEFAULT_SPIN`]).
    pub(super) spinning: bool,
    pub(super) spin_until: Instant,
}

impl Worker {
    /// Starts a park without losing a wake-up: registers as a sleeper, then looks at every queue
    /// once more. If that finds work, the park ends at once; else [`Worker::poll_park`] waits.
    pub(super) fn begin_park(&mut self) {
        let shared = &self.shared;
        let slot = &shared.workers[self.index];
        // Nobody can target this worker before it is a sleeper: an old notification is moot.
        slot.notified.store(false, SeqCst);
        // Its queue is empty (it found nothing to run): a clock left running would keep the
        // balancer awake for nothing.
        slot.queued_since.store(0, Relaxed);
        shared.searching.fetch_sub(1, SeqCst);
        {
            let mut sleepers = lock(&shared.sleepers);
            sleepers.push(self.index);
            shared.num_sleepers.fetch_add(1, SeqCst);
        }
        // Pairs with the fence in `PoolShared::notify`: a notifier that saw this worker still
        // searching (and so woke nobody) pushed its work before that; the look below sees it.
        fence(SeqCst);
        if shared.shutdown.load(SeqCst) || shared.has_stealable_work() {
            self.end_park();
            return;
        }
        self.set_parked(true);
        // One parked worker at a time spins first (see `DEFAULT_SPIN`).
        // ... while spinning pays (see `spin_credit`).
        let spinning = !shared.spin.is_zero()
            && !shared.spinner.load(Relaxed)
            && shared.spin_credit.may_spin()
            && shared.spinner.compare_exchange(false, true, SeqCst, SeqCst).is_ok();
        if spinning {
            // A worker that parked earlier may be waiting in the reactor; wake its park so that
            // it moves off the reactor (see `poll_park`) and the spinner sees the I/O.
            for (index, other) in shared.workers.iter().enumerate() {
                if index != self.index {
                    if let Some(waker) = lock(&other.park_waker).take() {
                        waker.wake();
                    }
                }
            }
        }
        self.park = Some(Park { spinning, spin_until: Instant::now() + shared.spin });
    }

    /// Waits for the end of the park: a notification, or (while spinning) work found or the
    /// spin's end.
    pub(super) fn poll_park(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = &self.shared;
        let slot = &shared.workers[self.index];
        let Some(park) = self.park.as_mut() else { return Poll::Ready(()) };
        if slot.notified.swap(false, SeqCst) {
            if park.spinning {
                shared.spin_credit.paid();
            }
            return Poll::Ready(());
        }
        if park.spinning {
            // Look at the queues for one slice before handing `block_on` its turn at the reactor:
            // each turn is several syscalls (epoll_wait, timerfd_settime, epoll_ctl re-arms), so
            // a turn per look made a 60 µs spin cost dozens of them.
            let slice_end = (Instant::now() + SPIN_SLICE).min(park.spin_until);
            let mut work = shared.has_stealable_work() || shared.shutdown.load(SeqCst);
            while !work && !slot.notified.load(SeqCst) && Instant::now() < slice_end {
                std::hint::spin_loop();
                work = shared.has_stealable_work() || shared.shutdown.load(SeqCst);
            }
            if slot.notified.swap(false, SeqCst) {
                shared.spin_credit.paid();
                return Poll::Ready(());
            }
            if !work && Instant::now() < park.spin_until {
                // Woken at once: `block_on` polls the reactor without blocking and polls this
                // again.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            park.spinning = false;
            shared.spinner.store(false, SeqCst);
            if work {
                shared.spin_credit.paid();
                return Poll::Ready(());
            }
            shared.spin_credit.wasted();
        }
        *lock(&slot.park_waker) = Some(cx.waker().clone());
        // Pairs with `WorkerSlot::unpark`: it set the flag before taking the waker.
        if slot.notified.swap(false, SeqCst) {
            return Poll::Ready(());
        }
        // Looked at after the waker is registered: a worker that starts spinning either sees the
        // waker (and wakes it, so this runs again) or is seen here.
        if shared.spinner.load(SeqCst) {
            // Another parked worker spins and polls the reactor. Waiting in the reactor too
            // would take I/O from it (one thread at a time holds the reactor, and a sleeping one
            // wakes slowly), so wait off it, until notified. `unpark` sets the flag before it
            // unparks the thread, and a wake-up before `park` is kept for it: none is lost.
            lock(&slot.park_waker).take();
            while !slot.notified.swap(false, SeqCst) {
                if shared.shutdown.load(SeqCst) {
                    return Poll::Ready(());
                }
                std::thread::park();
            }
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Ends a park (or a park that found work before it began). Returns with the worker
    /// searching.
    pub(super) fn end_park(&mut self) {
        let shared = &self.shared;
        if let Some(park) = self.park.take() {
            if park.spinning {
                shared.spinner.store(false, SeqCst);
            }
            *lock(&shared.workers[self.index].park_waker) = None;
            self.set_parked(false);
        }
        let mut sleepers = lock(&shared.sleepers);
        if let Some(at) = sleepers.iter().position(|&i| i == self.index) {
            // Not taken by a notifier (the re-check or the spin found work, the worker woke
            // itself, or a spurious wake-up): leave the sleepers and search on our own account.
            sleepers.swap_remove(at);
            shared.num_sleepers.fetch_sub(1, SeqCst);
            shared.searching.fetch_add(1, SeqCst);
        }
        // Else a notifier took us out and already counted us as searching.
        drop(sleepers);
        self.searching = true;
    }
}
