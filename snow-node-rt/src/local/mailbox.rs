//! Receiving: plain, with a timeout, and selective.
//!
//! A mailbox is two queues. Senders append to the shared inbox under the process's lock; the
//! owner moves the whole inbox into its private queue in one swap when the private queue runs
//! dry, so a burst of messages costs the receiver one lock, not one per message. Sends never
//! block and allocate nothing beyond the queue's amortised growth.
//!
//! Every receive is a suspension point: a process that a congested connection asked to wait
//! ([`Backpressure::Suspend`](crate::seam::Backpressure)) waits there until the congestion clears.
//!
//! Selective receive scans from the oldest message, takes the first one the predicate accepts and
//! leaves the others in order. A parked selective receive remembers how far it scanned, so each
//! message is tested once per receive (the predicate must not depend on anything but the message).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use snow_shared::Term;

use super::process::Process;

/// Consecutive messages a process may take without yielding to the executor, so a process with a
/// full mailbox cannot starve the others sharing its thread (BEAM uses reductions for this).
pub(crate) const BUDGET: u32 = 128;

impl Process {
    /// Moves everything in the shared inbox to the private queue; if both are empty, parks the
    /// process (registers `cx`'s waker) and returns `false`.
    fn refill_or_park(&mut self, cx: &mut Context<'_>) -> bool {
        self.entry.refill_or_park(&mut self.private, cx.waker())
    }

    /// Spends one unit of the fairness budget; `true` means "yield now".
    fn must_yield(&mut self, cx: &mut Context<'_>) -> bool {
        if self.budget == 0 {
            self.budget = BUDGET;
            cx.waker().wake_by_ref();
            return true;
        }
        self.budget -= 1;
        false
    }

    /// Waits for the oldest message and takes it.
    pub fn receive(&mut self) -> Receive<'_> {
        Receive { process: self }
    }

    /// Like [`receive`](Process::receive), but gives up after `timeout` (`None`). A zero timeout
    /// takes a message only if one is already there (Erlang's `after 0`).
    pub async fn receive_timeout(&mut self, timeout: Duration) -> Option<Term> {
        if let Some(msg) = crate::timers::within(timeout, self.receive()).await {
            return Some(msg);
        }
        // The timeout only wins if there is really nothing to take (the receive may have been
        // yielding for fairness when the timer fired).
        self.try_receive()
    }

    /// Waits for the oldest message `accept` returns `true` for and takes it; the messages it
    /// skips stay in the mailbox in their order.
    pub fn receive_match<P>(&mut self, accept: P) -> ReceiveMatch<'_, P>
    where
        P: FnMut(&Term) -> bool,
    {
        ReceiveMatch { process: self, accept, scanned: 0 }
    }

    /// Selective receive that gives up after `timeout` (`None`), leaving the mailbox unchanged.
    pub async fn receive_match_timeout<P>(&mut self, mut accept: P, timeout: Duration) -> Option<Term>
    where
        P: FnMut(&Term) -> bool,
    {
        if let Some(msg) = crate::timers::within(timeout, self.receive_match(&mut accept)).await {
            return Some(msg);
        }
        self.try_receive_match(accept)
    }

    /// Takes the oldest message `accept` returns `true` for, without waiting.
    pub fn try_receive_match(&mut self, accept: impl FnMut(&Term) -> bool) -> Option<Term> {
        self.entry.refill(&mut self.private);
        let at = self.private.iter().position(accept)?;
        self.private.remove(at)
    }

    /// Takes the oldest message if there is one, without waiting.
    pub fn try_receive(&mut self) -> Option<Term> {
        if self.private.is_empty() {
            self.entry.refill(&mut self.private);
        }
        self.private.pop_front()
    }

    /// Number of messages waiting in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.private.len() + self.entry.inbox_len()
    }

    /// Removes every message `reject` returns `true` for; returns how many were removed.
    pub(crate) fn remove_matching(&mut self, mut reject: impl FnMut(&Term) -> bool) -> usize {
        let before = self.private.len();
        self.private.retain(|m| !reject(m));
        let removed = before - self.private.len();
        removed + self.entry.remove_from_inbox(reject)
    }
}

/// Future of [`Process::receive`].
#[must_use = "futures do nothing unless awaited"]
pub struct Receive<'a> {
    process: &'a mut Process,
}

impl Future for Receive<'_> {
    type Output = Term;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        let p = &mut *self.get_mut().process;
        if p.entry.poll_congestion(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            if !p.private.is_empty() {
                if p.must_yield(cx) {
                    return Poll::Pending;
                }
                if let Some(msg) = p.private.pop_front() {
                    return Poll::Ready(msg);
                }
            }
            if !p.refill_or_park(cx) {
                return Poll::Pending;
            }
        }
    }
}

/// Future of [`Process::receive_match`].
#[must_use = "futures do nothing unless awaited"]
pub struct ReceiveMatch<'a, P> {
    process: &'a mut Process,
    accept: P,
    scanned: usize,
}

impl<P: FnMut(&Term) -> bool> Future for ReceiveMatch<'_, P> {
    type Output = Term;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        // Every field is Unpin (a reference, a counter and the predicate, which is never pinned
        // in place), so the future can be taken apart by value.
        let this = Pin::into_inner(self);
        if this.process.entry.poll_congestion(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            let p = &mut *this.process;
            let start = this.scanned.min(p.private.len());
            if let Some(offset) = p.private.range(start..).position(&mut this.accept) {
                if p.must_yield(cx) {
                    this.scanned = start + offset;
                    return Poll::Pending;
                }
                this.scanned = 0;
                if let Some(msg) = p.private.remove(start + offset) {
                    return Poll::Ready(msg);
                }
            }
            this.scanned = p.private.len();
            if !p.refill_or_park(cx) {
                return Poll::Pending;
            }
        }
    }
}

impl<P> Unpin for ReceiveMatch<'_, P> {}
