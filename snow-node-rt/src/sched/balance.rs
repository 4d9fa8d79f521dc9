//! The balancer: shares the tasks queued on a busy worker when that worker cannot.
//!
//! A worker that queues tasks on its own local queue does not wake a sleeping worker at once; it
//! looks at its queue at each scheduling point and wakes one when tasks have waited there for
//! [`WAKE_OTHER_AFTER`] (module docs of `sched`). A task that computes for long without `.await`
//! reaches no scheduling point, so the tasks it woke would wait for it. This thread looks at every
//! worker's queue each [`BALANCE_INTERVAL`] while any of them holds tasks, and wakes a sleeping
//! worker for a queue that has waited [`STUCK_AFTER`]. It looks seldom and acts late on purpose:
//! each of its wake-ups can preempt a worker, and waking more often made the remote-call tail
//! of README's cluster table come back. It sleeps without a timeout once the queues have
//! been empty for [`IDLE_ROUNDS`] looks, and the first task queued after that wakes it: an idle
//! pool costs nothing.
//!
//! It also watches the reactor. A worker that leaves epoll to run the task an event woke leaves
//! the reactor undriven until it parks again, and a busy worker turns it only every
//! [`INJECTOR_INTERVAL`] runs: a reactor that nobody turned for a whole interval is turned here,
//! without blocking (`reactor/mod.rs`), so a worker stuck in one task cannot hold up the I/O of
//! the others. The balancer sleeps only while a thread waits in epoll, and is woken when it leaves.
//! While the reactor is busy (traffic: [`BUSY_TURNS`] turns or more between two looks) it stays
//! awake instead: asleep, it would be woken by the release that comes with every event, just as
//! a worker needs the core for that event.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::PoolShared;
#[cfg(doc)]
use super::{INJECTOR_INTERVAL, WAKE_OTHER_AFTER};
use crate::reactor::Reactor;

/// How often the balancer looks at the queues while any of them holds tasks.
pub(super) const BALANCE_INTERVAL: Duration = Duration::from_millis(5);
/// How long a queue must have waited for the balancer to act: far above [`WAKE_OTHER_AFTER`], so
/// that it acts only for a worker stuck in one task (a worker at its scheduling points restarts
/// the clock each time it wakes another, or clears it).
const STUCK_AFTER: Duration = Duration::from_millis(2);
/// Consecutive looks that find every queue empty and the reactor quiet before the balancer sleeps
/// until woken (after a look that found work; after a wake-up, one such look is enough).
const IDLE_ROUNDS: u32 = 20;
/// Turns of the reactor within one interval that count as traffic: an idle node's timers turn it
/// a few times; a node exchanging messages, hundreds.
const BUSY_TURNS: u64 = 16;

/// The balancer thread's loop, until the pool shuts down.
pub(super) fn run(shared: Arc<PoolShared>) {
    let threshold = STUCK_AFTER.as_nanos() as u64;
    let mut idle_rounds = 0;
    let reactor = Reactor::get();
    let mut last_turns = reactor.turns();
    while !shared.shutdown.load(SeqCst) {
        let turns = reactor.turns();
        let reactor_busy = is_traffic(turns.wrapping_sub(last_turns));
        if turns == last_turns {
            // Nobody turned it since the last look: nobody is waiting in it (a driver waiting
            // in epoll holds the lock, and this does nothing) or every worker is busy.
            reactor.poll_if_free_and_hand_over();
        }
        last_turns = reactor.turns();
        let now = shared.nanos_now();
        let mut waiting = false;
        for slot in shared.workers.iter() {
            let since = slot.queued_since.load(Relaxed);
            if since == 0 || slot.queue.is_empty() {
                continue;
            }
            waiting = true;
            if now.saturating_sub(since) >= threshold {
                shared.notify();
            }
        }
        if waiting {
            idle_rounds = 0;
            std::thread::park_timeout(BALANCE_INTERVAL);
            continue;
        }
        // Traffic: stay awake, looking each interval, rather than sleep until the next release
        // of the reactor, which comes with the next event and would wake this thread just as a
        // worker needs the core for that event (README, two-node bench: the round trip's tail).
        idle_rounds = count_idle_round(idle_rounds, reactor_busy);
        if idle_rounds < IDLE_ROUNDS {
            std::thread::park_timeout(BALANCE_INTERVAL);
            continue;
        }
        // Announce the sleep, then look once more: a worker that queued a task before seeing the
        // announcement is seen here (both sides are sequentially consistent), one after it
        // unparks this thread. A wake-up before `park` is kept for it.
        shared.balancer_asleep.store(true, SeqCst);
        reactor.watch_next_release();
        let queued = shared.workers.iter().any(|slot| slot.queued_since.load(SeqCst) != 0 && !slot.queue.is_empty());
        if !queued && reactor.is_driven() && !shared.shutdown.load(SeqCst) {
            std::thread::park();
        }
        shared.balancer_asleep.store(false, SeqCst);
        // Woken by a worker leaving the reactor or queuing a task, or not asleep at all (nobody
        // drives the reactor). Look once after an interval; if that look finds nothing to do and
        // the reactor quiet, sleep again at once: a node whose timers fire now and then (ticks)
        // costs two wake-ups of this thread per timer, not a round of looks.
        std::thread::park_timeout(BALANCE_INTERVAL);
        idle_rounds = IDLE_ROUNDS - 1;
    }
}

/// Whether `turns` turns of the reactor within one interval are traffic, not timers.
fn is_traffic(turns: u64) -> bool {
    turns >= BUSY_TURNS
}

/// The count of quiet looks after one more look that found every queue empty: it starts again
/// while the reactor is busy, so the balancer sleeps only once traffic has stopped for
/// [`IDLE_ROUNDS`] looks.
fn count_idle_round(idle_rounds: u32, reactor_busy: bool) -> u32 {
    if reactor_busy {
        1
    } else {
        idle_rounds + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_keeps_the_balancer_looking_and_timers_alone_do_not() {
        // After a wake-up the balancer is one look from sleeping.
        let after_wake_up = IDLE_ROUNDS - 1;
        // An idle node's tick: a turn or two in the interval. It sleeps again.
        assert!(!is_traffic(2));
        assert_eq!(count_idle_round(after_wake_up, is_traffic(2)), IDLE_ROUNDS);
        // Messages flowing: it keeps looking for a whole round instead of sleeping until the
        // next event's release wakes it.
        assert!(is_traffic(300));
        assert_eq!(count_idle_round(after_wake_up, is_traffic(300)), 1);
        let mut rounds = 1;
        for _ in 1..IDLE_ROUNDS {
            rounds = count_idle_round(rounds, false);
        }
        assert_eq!(rounds, IDLE_ROUNDS, "quiet looks after traffic end in sleep");
    }
}
