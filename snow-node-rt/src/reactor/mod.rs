//! The reactor: the process-wide epoll instance that tells tasks when their sockets are ready and
//! their timers are due, driven by the scheduler's own parked workers.
//!
//! Why not async-io's reactor: it has a thread of its own that takes the reactor whenever the
//! thread polling it has held it for 500 µs without being woken for its own work. Under load
//! (a mesh forming) that thread became each node's reactor, and every socket event then reached a
//! worker through the injector and a futex wake-up (README, "Benchmarks", has the profile). Here
//! nobody but the pool waits in epoll:
//!
//! - **A parked worker drives.** A worker that finds no work waits in [`block_on`], which waits
//!   in epoll if no other thread does (the driver lock is free) and on its thread's park
//!   otherwise. A task an event wakes is woken on that worker's thread and runs there next.
//! - **Busy workers look in now and then.** Every 61 runs (the scheduler's `INJECTOR_INTERVAL`)
//!   a busy worker turns the reactor without blocking, if nobody drives it
//!   ([`Reactor::poll_if_free`]).
//! - **A driver that leaves for work does not hand over.** A worker that found the driver lock
//!   taken waits on its thread's park, as a would-be driver; the driver that leaves the reactor to
//!   run the task an event woke does not wake it to take its place (tried: a futex wake-up per
//!   event cost a quarter of the two-node throughput). It parks again soon, and then drives. So
//!   does a busy worker that looked in. The balancer's turn does hand over: the would-be driver
//!   found the lock taken only for that moment, and nobody else would wait in epoll.
//! - **The balancer watches.** Meanwhile the reactor is undriven; the pool's balancer turns it
//!   without blocking when nobody turned it since its last look (see `sched/balance.rs`). It
//!   sleeps only while someone drives, and the next release of the driver lock wakes it. So a
//!   worker whose turn found nothing (no event, no timer due) waits again without releasing.
//! - **Sockets are registered once, edge-triggered** (`EPOLLET`), for reading and writing both:
//!   no `epoll_ctl` per wait. A socket's readiness is kept in its [`Source`] until an operation
//!   meets `EWOULDBLOCK`; a tick counter keeps an event that arrives meanwhile from being lost.
//! - **Timers** are a sorted map, the runtime's only one (receive timeouts, `sleep`,
//!   `send_after`: `timers.rs` is their interface); the driver's epoll timeout is the earliest
//!   deadline, and a timer earlier than the wait in progress wakes the driver through an
//!   eventfd. Waits with the same timeout add later deadlines each time, so arming one costs a
//!   map insert under a short lock and wakes nobody; a due timer wakes its task from the turn.
//!
//! Sockets and timers of other reactors (async-io's, used by snow-epmd's client and available to
//! processes) still work inside processes: async-io's own thread drives those.

mod source;
pub(crate) mod tcp;
pub(crate) mod timer;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::event::{eventfd, EventfdFlags};

use crate::sync::lock;
use source::Source;
pub(crate) use source::{Async, Direction};
use timer::{Due, TimerKey};

/// The epoll key of the eventfd that wakes the driver.
const NOTIFY_KEY: u64 = u64::MAX;
/// How many events one turn takes at most (the rest wait for the next turn).
const EVENTS_PER_TURN: usize = 1024;
/// What a wait without a timer deadline is told: effectively forever.
const FOREVER: Duration = Duration::from_secs(24 * 3600);

/// The process-wide reactor.
pub(crate) struct Reactor {
    epoll: OwnedFd,
    /// Written to wake the thread waiting in epoll.
    notifier: OwnedFd,
    sources: Mutex<Registry>,
    timers: Mutex<Timers>,
    /// The driver lock: whoever holds it may wait in epoll.
    driver: Mutex<()>,
    /// Turns completed, so that a watcher can tell a reactor nobody turns.
    turns: AtomicU64,
    /// A thread holds the driver lock.
    driven: AtomicBool,
    /// Would-be drivers: threads of [`Waiting::Drive`] that found the driver lock taken.
    hopefuls: Mutex<Vec<Arc<ThreadWaker>>>,
    /// `hopefuls.len()`, readable without the lock.
    num_hopefuls: AtomicUsize,
    /// Threads to unpark when the driver lock is next released (balancers going to sleep).
    watchers: Mutex<Vec<std::thread::Thread>>,
    /// `watchers` is not empty.
    watched: AtomicBool,
}

/// The registered sources, by slot; a key is the slot and its generation, so that an event for a
/// source deregistered in the meantime finds nothing.
#[derive(Default)]
struct Registry {
    slots: Vec<(u32, Option<Arc<Source>>)>,
    free: Vec<u32>,
}

/// Pending timers, and the deadline of the wait in progress.
#[derive(Default)]
struct Timers {
    pending: BTreeMap<TimerKey, Due>,
    next_id: u64,
    /// The earliest deadline of a timer removed before it fell due: the driver planned to wake
    /// then, and keeps to it once, so that the next timer, which usually comes later (the next
    /// wait with the same timeout), need not wake it. Dropped once it passes.
    removed_until: Option<Instant>,
    /// When the thread now waiting in epoll will wake by itself (`None`: nobody waits).
    waiting_until: Option<Instant>,
}

/// The reactor cannot start: the process is out of file descriptors or the kernel refuses epoll.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the I/O reactor ({0}): raise the open-file limit (ulimit -n) and start again")]
pub(crate) struct StartError(#[from] std::io::Error);

impl Reactor {
    /// The process-wide reactor, started on first use.
    ///
    /// # Panics
    /// If epoll or an eventfd cannot be created at all (no file descriptor left at start-up):
    /// nothing could run.
    pub(crate) fn get() -> &'static Reactor {
        static REACTOR: OnceLock<Reactor> = OnceLock::new();
        REACTOR.get_or_init(|| match Reactor::new() {
            Ok(reactor) => reactor,
            Err(err) => {
                log::error!("{err}");
                panic!("{err}");
            }
        })
    }

    fn new() -> Result<Reactor, StartError> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(std::io::Error::from)?;
        let notifier = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(std::io::Error::from)?;
        epoll::add(
            &epoll,
            &notifier,
            epoll::EventData::new_u64(NOTIFY_KEY),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )
        .map_err(std::io::Error::from)?;
        Ok(Reactor {
            epoll,
            notifier,
            sources: Mutex::default(),
            timers: Mutex::default(),
            driver: Mutex::new(()),
            turns: AtomicU64::new(0),
            driven: AtomicBool::new(false),
            hopefuls: Mutex::default(),
            num_hopefuls: AtomicUsize::new(0),
            watchers: Mutex::default(),
            watched: AtomicBool::new(false),
        })
    }

    /// Wakes the thread waiting in epoll, if any (else its next wait returns at once).
    pub(crate) fn notify(&self) {
        let one = 1u64.to_ne_bytes();
        if rustix::io::write(&self.notifier, &one) == Err(rustix::io::Errno::AGAIN) {
            // The counter is full (it never is in practice): empty it and write again.
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.notifier, &mut buf);
            let _ = rustix::io::write(&self.notifier, &one);
        }
    }

    /// Registers `fd` for both directions, edge-triggered. `ready` is whether operations may be
    /// tried before the first event (true for a connected socket; false for one still connecting).
    fn register(&self, fd: impl AsFd, ready: bool) -> std::io::Result<(u64, Arc<Source>)> {
        let source = Arc::new(Source::new(ready));
        let key = {
            let mut registry = lock(&self.sources);
            let slot = match registry.free.pop() {
                Some(slot) => slot,
                None => {
                    registry.slots.push((0, None));
                    u32::try_from(registry.slots.len() - 1).map_err(|_| std::io::Error::other("too many sockets"))?
                }
            };
            let entry = &mut registry.slots[slot as usize];
            entry.0 = entry.0.wrapping_add(1);
            entry.1 = Some(source.clone());
            u64::from(entry.0) << 32 | u64::from(slot)
        };
        let flags = epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::RDHUP | epoll::EventFlags::ET;
        if let Err(err) = epoll::add(&self.epoll, fd, epoll::EventData::new_u64(key), flags) {
            self.forget(key);
            return Err(err.into());
        }
        Ok((key, source))
    }

    /// Removes `fd` (registered under `key`) from epoll and the registry.
    fn deregister(&self, key: u64, fd: impl AsFd) {
        let _ = epoll::delete(&self.epoll, fd);
        self.forget(key);
    }

    fn forget(&self, key: u64) {
        let mut registry = lock(&self.sources);
        let slot = key as u32;
        if let Some(entry) = registry.slots.get_mut(slot as usize) {
            if u64::from(entry.0) == key >> 32 && entry.1.take().is_some() {
                registry.free.push(slot);
            }
        }
    }

    /// Takes the driver lock if nobody holds it.
    pub(crate) fn try_drive(&self) -> Option<Driver<'_>> {
        let held = self.driver.try_lock().ok()?;
        self.driven.store(true, SeqCst);
        Some(Driver { reactor: self, held: Some(held), hand_over: false })
    }

    /// Turns the reactor without blocking, if nobody drives it: what a busy worker does now and
    /// then. A would-be driver stays parked: this worker drives when it parks.
    pub(crate) fn poll_if_free(&self) {
        if let Some(mut driver) = self.try_drive() {
            driver.turn(false);
        }
    }

    /// [`Reactor::poll_if_free`] for a thread that never drives (the balancer, while the
    /// reactor is left undriven): its release wakes a would-be driver to wait in epoll, or nobody
    /// would.
    pub(crate) fn poll_if_free_and_hand_over(&self) {
        if let Some(mut driver) = self.try_drive() {
            driver.hand_over = true;
            driver.turn(false);
        }
    }

    /// Takes the driver lock if nobody holds it; else records `hopeful` as a would-be driver
    /// (see [`Driver::drop`]). The caller parks on `None`.
    fn drive_or_hope(&self, hopeful: &Arc<ThreadWaker>) -> Option<Driver<'_>> {
        if let Some(driver) = self.try_drive() {
            return Some(driver);
        }
        lock(&self.hopefuls).push(hopeful.clone());
        self.num_hopefuls.fetch_add(1, SeqCst);
        // Pairs with the fence in `Driver::drop`: either a releasing turn sees this hopeful, or
        // the look below sees the lock free.
        fence(SeqCst);
        let driver = self.try_drive()?;
        self.give_up_hope(hopeful);
        Some(driver)
    }

    /// Removes `hopeful` from the would-be drivers, if it is still there.
    fn give_up_hope(&self, hopeful: &Arc<ThreadWaker>) {
        let mut hopefuls = lock(&self.hopefuls);
        if let Some(at) = hopefuls.iter().position(|h| Arc::ptr_eq(h, hopeful)) {
            hopefuls.swap_remove(at);
            self.num_hopefuls.fetch_sub(1, SeqCst);
        }
    }

    /// How many turns have completed: unchanged between two looks means nobody turned it.
    pub(crate) fn turns(&self) -> u64 {
        self.turns.load(SeqCst)
    }

    /// Whether a thread holds the driver lock.
    pub(crate) fn is_driven(&self) -> bool {
        self.driven.load(SeqCst)
    }

    /// Has the calling thread unparked when the driver lock is next released. The caller looks
    /// at [`Reactor::is_driven`] after this and before it parks, so that no release is missed.
    pub(crate) fn watch_next_release(&self) {
        let me = std::thread::current();
        let mut watchers = lock(&self.watchers);
        if !watchers.iter().any(|w| w.id() == me.id()) {
            watchers.push(me);
        }
        // Under the lock, as `Driver::drop` clears it: the flag says whether the list is empty.
        self.watched.store(true, SeqCst);
    }

    /// Adds a timer; returns its key. Wakes the driver if it waits past `at`.
    pub(crate) fn add_timer(&self, at: Instant, due: Due) -> TimerKey {
        let (key, wake_driver) = self.insert_timer(at, due);
        if wake_driver {
            self.notify();
        }
        key
    }

    /// Adds a timer; returns its key and whether the driver waits past `at`.
    fn insert_timer(&self, at: Instant, due: Due) -> (TimerKey, bool) {
        let mut timers = lock(&self.timers);
        timers.next_id += 1;
        let key = (at, timers.next_id);
        timers.pending.insert(key, due);
        (key, timers.waiting_until.is_some_and(|until| at < until))
    }

    /// Replaces the waker of a pending timer; false if it already fired.
    fn update_timer(&self, key: TimerKey, waker: &Waker) -> bool {
        match lock(&self.timers).pending.get_mut(&key) {
            Some(Due::Wake(old)) => {
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
                true
            }
            // Keys are never reused, so a waiting future's key never names an action.
            Some(Due::Run(_)) => true,
            None => false,
        }
    }

    /// Removes a timer; false if it already fired or was removed. What it held (a waker, or an
    /// action and the message it owns) is dropped outside the lock.
    pub(crate) fn remove_timer(&self, key: TimerKey) -> bool {
        let mut timers = lock(&self.timers);
        let removed = timers.pending.remove(&key);
        if removed.is_some() {
            timers.removed_until = Some(timers.removed_until.map_or(key.0, |at| at.min(key.0)));
        }
        drop(timers);
        removed.is_some()
    }

    /// How long a driver starting to wait at `now` waits: until the earliest deadline, pending or
    /// recently removed. Recorded as the wait in progress.
    fn plan_wait(&self, now: Instant) -> Duration {
        let mut timers = lock(&self.timers);
        if timers.removed_until.is_some_and(|at| at <= now) {
            timers.removed_until = None;
        }
        let earliest = timers.pending.first_key_value().map(|(&(at, _), _)| at);
        let until = match (earliest, timers.removed_until) {
            (Some(pending), Some(removed)) => Some(pending.min(removed)),
            (pending, removed) => pending.or(removed),
        };
        let wait = until.map_or(FOREVER, |at| at.saturating_duration_since(now));
        timers.waiting_until = Some(now + wait);
        wait
    }

    /// Whether a timer is still pending.
    pub(crate) fn timer_pending(&self, key: TimerKey) -> bool {
        lock(&self.timers).pending.contains_key(&key)
    }

    /// Whether a timer with a deadline in `range` is pending (tests look for leftovers).
    #[cfg(test)]
    pub(crate) fn any_timer_in(&self, range: std::ops::Range<Instant>) -> bool {
        lock(&self.timers).pending.keys().any(|(at, _)| range.contains(at))
    }
}

/// The driver lock, held: the right to wait in epoll.
pub(crate) struct Driver<'a> {
    reactor: &'a Reactor,
    /// `Some` until dropped.
    held: Option<MutexGuard<'a, ()>>,
    /// The release wakes a would-be driver (the balancer's turn, see the module docs).
    hand_over: bool,
}

impl Driver<'_> {
    /// One turn: waits for events (until the earliest timer if `block`, else not at all), wakes
    /// the tasks of the sockets that became ready, then those of the timers that are due.
    pub(crate) fn turn(&mut self, block: bool) {
        self.turn_then(block, || {});
    }

    /// [`Driver::turn`], calling `waited` as soon as epoll returns, before any task is woken.
    /// Whether the turn found anything: an event (a notification included) or a due timer.
    fn turn_then(&mut self, block: bool, waited: impl FnOnce()) -> bool {
        let reactor = self.reactor;
        let timeout = if block { reactor.plan_wait(Instant::now()) } else { Duration::ZERO };
        // Whole milliseconds, rounded up: epoll's unit; a timer must not wake its driver early.
        let millis = timeout.as_micros().div_ceil(1000);
        let timespec =
            rustix::time::Timespec { tv_sec: (millis / 1000) as i64, tv_nsec: ((millis % 1000) * 1_000_000) as i64 };
        let had_events = EVENTS.with_borrow_mut(|events| {
            events.clear();
            let outcome = epoll::wait(&reactor.epoll, rustix::buffer::spare_capacity(events), Some(&timespec));
            waited();
            if block {
                lock(&reactor.timers).waiting_until = None;
            }
            match outcome {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(err) => log::error!("reactor: epoll_wait failed: {err}"),
            }
            self.dispatch(events);
            !events.is_empty()
        });
        // Taken from the front one by one: a turn usually finds none or few due, and splitting
        // the map instead rebuilt its left edge (allocations) in every turn.
        let mut due = Vec::new();
        {
            let mut timers = lock(&reactor.timers);
            let now = Instant::now();
            while let Some(entry) = timers.pending.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
        }
        let found_due = !due.is_empty();
        for due in due {
            match due {
                Due::Wake(waker) => waker.wake(),
                // A panicking action must not take the driving thread down, nor leave the timers
                // due after it unwoken.
                Due::Run(action) => {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(action)).is_err() {
                        log::error!("reactor: a send_after action panicked; its message is dropped");
                    }
                }
            }
        }
        reactor.turns.fetch_add(1, SeqCst);
        had_events || found_due
    }

    /// Marks the sources of `events` ready and wakes their tasks.
    fn dispatch(&self, events: &[epoll::Event]) {
        let reactor = self.reactor;
        let mut ready = Vec::new();
        {
            let registry = lock(&reactor.sources);
            for event in events.iter() {
                let key = event.data.u64();
                if key == NOTIFY_KEY {
                    continue;
                }
                let Some((generation, Some(source))) = registry.slots.get(key as u32 as usize) else { continue };
                if u64::from(*generation) == key >> 32 {
                    ready.push((source.clone(), event.flags));
                }
            }
        }
        for (source, flags) in ready {
            use epoll::EventFlags as F;
            let readable = flags.intersects(F::IN | F::PRI | F::HUP | F::RDHUP | F::ERR);
            let writable = flags.intersects(F::OUT | F::HUP | F::ERR);
            source.on_event(readable, writable);
        }
    }
}

impl Drop for Driver<'_> {
    /// Releases the lock, then wakes a would-be driver (after the balancer's turn) and the
    /// watchers (see [`Reactor::watch_next_release`]) other than the releasing thread itself: a
    /// balancer that turned the reactor and woke itself would never sleep again.
    fn drop(&mut self) {
        let reactor = self.reactor;
        // Pairs with `watch_next_release` then `is_driven`: one side sees the other.
        reactor.driven.store(false, SeqCst);
        drop(self.held.take());
        // Pairs with the fence in `Reactor::drive_or_hope`.
        fence(SeqCst);
        if self.hand_over && reactor.num_hopefuls.load(SeqCst) != 0 {
            let hopeful = {
                let mut hopefuls = lock(&reactor.hopefuls);
                let hopeful = hopefuls.pop();
                if hopeful.is_some() {
                    reactor.num_hopefuls.fetch_sub(1, SeqCst);
                }
                hopeful
            };
            if let Some(hopeful) = hopeful {
                hopeful.wake_by_ref();
            }
        }
        if reactor.watched.load(SeqCst) {
            let me = std::thread::current().id();
            let mut watchers = lock(&reactor.watchers);
            watchers.retain(|thread| {
                if thread.id() == me {
                    return true;
                }
                thread.unpark();
                false
            });
            reactor.watched.store(!watchers.is_empty(), SeqCst);
        }
    }
}

/// Who may wait in epoll while a [`block_on`] waits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// A scheduler worker: waits in epoll when nobody else does.
    Drive,
    /// Any other thread: waits on its thread's park; the pool's workers drive the reactor.
    Park,
}

/// The waker of a [`block_on`]: unparks its thread, or wakes epoll while the thread waits there.
struct ThreadWaker {
    thread: std::thread::Thread,
    notified: AtomicBool,
    /// The thread is (about to be) waiting in epoll.
    in_epoll: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.notified.swap(true, SeqCst) {
            return;
        }
        // Pairs with `block_on`: it sets `in_epoll`, then looks at `notified`; this sets
        // `notified`, then looks at `in_epoll`. One of the two sees the other.
        if self.in_epoll.load(SeqCst) {
            Reactor::get().notify();
        } else {
            self.thread.unpark();
        }
    }
}

thread_local! {
    /// The buffer a driving thread's turns take events into.
    static EVENTS: std::cell::RefCell<Vec<epoll::Event>> = std::cell::RefCell::new(Vec::with_capacity(EVENTS_PER_TURN));
    /// The waker of the calling thread's outermost `block_on`.
    static THREAD_WAKER: Cell<Option<Arc<ThreadWaker>>> = const { Cell::new(None) };
}

/// Runs `future` to completion on the calling thread. While it is pending the thread waits:
/// in epoll, turning the reactor, if `waiting` is [`Waiting::Drive`] and no other thread drives
/// it; else on its park, until the future's waker runs.
pub(crate) fn block_on<T>(future: impl Future<Output = T>, waiting: Waiting) -> T {
    let parker = THREAD_WAKER.take().unwrap_or_else(|| {
        Arc::new(ThreadWaker {
            thread: std::thread::current(),
            notified: AtomicBool::new(false),
            in_epoll: AtomicBool::new(false),
        })
    });
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let reactor = Reactor::get();
    let out = loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            break out;
        }
        if parker.notified.swap(false, SeqCst) {
            // Woken while it ran: look at the reactor without waiting, as the future may be
            // waiting for I/O (a spinning worker is woken this way on purpose).
            if waiting == Waiting::Drive {
                reactor.poll_if_free();
            }
            continue;
        }
        if waiting == Waiting::Drive {
            if let Some(mut driver) = reactor.drive_or_hope(&parker) {
                loop {
                    parker.in_epoll.store(true, SeqCst);
                    if parker.notified.load(SeqCst) {
                        parker.in_epoll.store(false, SeqCst);
                        break;
                    }
                    // `in_epoll` is cleared as soon as epoll returns: a task the turn wakes is
                    // usually this thread's own, and its wake-up needs no eventfd write.
                    let found = driver.turn_then(true, || parker.in_epoll.store(false, SeqCst));
                    if found || parker.notified.load(SeqCst) {
                        break;
                    }
                    // Nothing happened: the planned wake-up of a timer removed since
                    // (`Timers::removed_until`), or a signal. Wait again without releasing the
                    // reactor, whose release would wake the balancer for nothing.
                }
                // The future is polled next anyway.
                parker.notified.store(false, SeqCst);
                continue;
            }
        }
        while !parker.notified.swap(false, SeqCst) {
            std::thread::park();
        }
        if waiting == Waiting::Drive {
            reactor.give_up_hope(&parker);
        }
    };
    THREAD_WAKER.set(Some(parker));
    out
}

#[cfg(test)]
mod tests;
