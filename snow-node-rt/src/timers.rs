//! The runtime's timers as processes use them: receive timeouts, `sleep`, and `send_after`.
//!
//! A process that waits with a timeout usually gets its message long before the deadline, so
//! arming and disarming a timer must cost next to nothing. Every timer is an entry in the
//! reactor's one ordered map of deadlines (`reactor/mod.rs`): arming inserts it under a short lock
//! and wakes the thread waiting in epoll only when the new deadline comes before the one it waits
//! for, which a wait with the same timeout as the others never does; the turn that finds a
//! deadline passed wakes the waiting task, or runs the `send_after` action. Cancelling removes
//! the entry, and frees its message, at once.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::reactor::timer::{Due, Timer, TimerKey};
use crate::reactor::Reactor;

/// Suspends the calling process (or any async code) for `duration`.
pub async fn sleep(duration: Duration) {
    let _ = within(duration, std::future::pending::<()>()).await;
}

/// Waits until `deadline` (at once if it has passed).
pub(crate) async fn sleep_until(deadline: Instant) {
    Timer::at(Some(deadline)).await;
}

/// A handle on a timer started by [`Node::send_after`](crate::Node::send_after). Dropping it
/// does not cancel the timer.
#[derive(Clone, Debug)]
pub struct TimerRef {
    key: TimerKey,
}

impl TimerRef {
    /// Cancels the timer. Returns the time that was left if it had not fired yet, `None` if it
    /// already fired or was cancelled before (Erlang's `cancel_timer` returning `false`).
    pub fn cancel(&self) -> Option<Duration> {
        Reactor::get().remove_timer(self.key).then(|| self.key.0.saturating_duration_since(Instant::now()))
    }

    /// Time left before the timer fires, `None` once it fired or was cancelled.
    pub fn remaining(&self) -> Option<Duration> {
        Reactor::get().timer_pending(self.key).then(|| self.key.0.saturating_duration_since(Instant::now()))
    }
}

/// Runs `action` once `delay` has passed, unless the returned timer is cancelled first.
pub(crate) fn after(delay: Duration, action: impl FnOnce() + Send + 'static) -> TimerRef {
    // An unrepresentable deadline is as good as never.
    let at = Instant::now().checked_add(delay).unwrap_or_else(|| Instant::now() + Duration::from_secs(u32::MAX.into()));
    TimerRef { key: Reactor::get().add_timer(at, Due::Run(Box::new(action))) }
}

/// Runs `future` until it completes (`Some(output)`) or `timeout` passes (`None`).
pub(crate) async fn within<F: Future>(timeout: Duration, future: F) -> Option<F::Output> {
    // Far-away deadlines (`Duration::MAX`) mean: no timeout.
    let mut timer = pin!(Timer::at(Instant::now().checked_add(timeout)));
    let mut future = pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_after_action_runs_once_at_its_deadline_unless_cancelled() {
        let (tx, rx) = async_channel::unbounded();
        let started = Instant::now();
        let fired = after(Duration::from_millis(30), {
            let tx = tx.clone();
            move || {
                let _ = tx.try_send("fired");
            }
        });
        let cancelled = after(Duration::from_millis(20), move || {
            let _ = tx.try_send("cancelled");
        });
        assert!(cancelled.cancel().is_some());
        assert!(cancelled.cancel().is_none(), "cancelled twice");
        assert!(fired.remaining().is_some());
        assert_eq!(run(rx.recv()).unwrap(), "fired");
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(fired.remaining().is_none() && fired.cancel().is_none(), "fired timers cannot be cancelled");
        assert_eq!(run(within(Duration::from_millis(50), rx.recv())), Some(Err(async_channel::RecvError)));
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        crate::block_on(f)
    }

    #[test]
    fn a_future_that_finishes_first_wins_and_leaves_no_deadline_behind() {
        // An unusual timeout, so that other tests' waits cannot be mistaken for ours.
        let timeout = Duration::from_secs(4321);
        let started = Instant::now();
        let out = run(within(timeout, async { 7 }));
        assert_eq!(out, Some(7));
        let out = run(within(timeout, async {
            async_io::Timer::after(Duration::from_millis(5)).await;
            8
        }));
        assert_eq!(out, Some(8));
        let ours = started + timeout..Instant::now() + timeout;
        assert!(!Reactor::get().any_timer_in(ours), "a finished wait left its deadline");
    }

    #[test]
    fn a_future_that_never_finishes_times_out_near_its_deadline() {
        let started = Instant::now();
        let out = run(within(Duration::from_millis(50), std::future::pending::<()>()));
        let took = started.elapsed();
        assert_eq!(out, None);
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn an_earlier_deadline_wakes_the_driver_sleeping_for_a_later_one() {
        // A long wait arms the driver far away; a short one must still end on time.
        let long = std::thread::spawn(|| run(within(Duration::from_secs(3), std::future::pending::<()>())));
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        assert_eq!(run(within(Duration::from_millis(30), std::future::pending::<()>())), None);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(long.join().unwrap(), None);
    }

    #[test]
    fn many_waits_with_mixed_deadlines_each_end_at_theirs() {
        let handles: Vec<_> = (0..40u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let timeout = Duration::from_millis(10 + (i * 37) % 200);
                    let started = Instant::now();
                    let out = run(within(timeout, std::future::pending::<()>()));
                    (out, started.elapsed(), timeout)
                })
            })
            .collect();
        for h in handles {
            let (out, took, timeout) = h.join().unwrap();
            assert_eq!(out, None);
            assert!(took >= timeout && took < timeout + Duration::from_secs(3), "{took:?} for {timeout:?}");
        }
    }

    #[test]
    fn no_timeout_at_all_for_an_unrepresentable_deadline() {
        let out = run(within(Duration::MAX, async { 1 }));
        assert_eq!(out, Some(1));
    }
}
