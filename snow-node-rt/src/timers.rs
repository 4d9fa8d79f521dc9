//! The runtime's one timer service: receive timeouts, `sleep`, and `send_after`.
//!
//! A process that waits with a timeout usually gets its message long before the deadline, so
//! arming and disarming a timer must cost next to nothing. An async-io timer per wait does not:
//! every registration wakes the thread blocked in the reactor (a write to its eventfd and a
//! context switch), which showed in the round trip between two nodes (README, "Benchmarks"). Here a
//! timer only inserts its deadline in a shared ordered map under a short lock, and removes it when
//! it ends; one driver task sleeps until the earliest deadline on a single reactor timer, and is
//! told to re-arm only when a new deadline is earlier than the one it sleeps for. Processes that
//! wait with the same timeout add later deadlines each time, so in steady state the driver wakes
//! once per timeout period, not once per wait. A `send_after` timer is an entry in the same map
//! whose action sends the message; cancelling it removes the entry (and frees the message) at
//! once.
//!
//! The driver runs on the scheduler pool; the map is process-wide, like the pool.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What happens when a deadline passes.
enum Due {
    /// A waiting future: wake it.
    Wake(Waker),
    /// A `send_after` timer: run its action (outside the lock).
    Run(Box<dyn FnOnce() + Send>),
}

/// Suspends the calling process (or any async code) for `duration`.
pub async fn sleep(duration: Duration) {
    let _ = within(duration, std::future::pending::<()>()).await;
}

/// Waits until `deadline` (at once if it has passed).
pub(crate) async fn sleep_until(deadline: Instant) {
    sleep(deadline.saturating_duration_since(Instant::now())).await
}

/// A handle on a timer started by [`Node::send_after`](crate::Node::send_after). Dropping it
/// does not cancel the timer.
#[derive(Clone, Debug)]
pub struct TimerRef {
    key: (Instant, u64),
}

impl TimerRef {
    /// Cancels the timer. Returns the time that was left if it had not fired yet, `None` if it
    /// already fired or was cancelled before (Erlang's `cancel_timer` returning `false`).
    pub fn cancel(&self) -> Option<Duration> {
        let entry = table().waiters.remove(&self.key)?;
        drop(entry);
        Some(self.key.0.saturating_duration_since(Instant::now()))
    }

    /// Time left before the timer fires, `None` once it fired or was cancelled.
    pub fn remaining(&self) -> Option<Duration> {
        table().waiters.contains_key(&self.key).then(|| self.key.0.saturating_duration_since(Instant::now()))
    }
}

/// Runs `action` once `delay` has passed, unless the returned timer is cancelled first.
pub(crate) fn after(delay: Duration, action: impl FnOnce() + Send + 'static) -> TimerRef {
    // An unrepresentable deadline is as good as never.
    let at = Instant::now().checked_add(delay).unwrap_or_else(|| Instant::now() + Duration::from_secs(u32::MAX.into()));
    let mut table = table();
    let key = (at, table.next_id);
    table.next_id += 1;
    table.waiters.insert(key, Due::Run(Box::new(action)));
    let wake_driver = table.arm(at);
    drop(table);
    if let Some(driver) = wake_driver {
        driver.wake();
    }
    TimerRef { key }
}

/// Runs `future` until it completes (`Some(output)`) or `timeout` passes (`None`).
pub(crate) async fn within<F: Future>(timeout: Duration, future: F) -> Option<F::Output> {
    // Far-away deadlines (`Duration::MAX`) mean: no timeout.
    let deadline = Instant::now().checked_add(timeout);
    let mut future = std::pin::pin!(future);
    let mut wait = Deadline { at: deadline, key: None };
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match Pin::new(&mut wait).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Deadlines and what is due at each, in deadline order; and the driver's state.
struct Table {
    waiters: BTreeMap<(Instant, u64), Due>,
    next_id: u64,
    /// The deadline the driver sleeps until (`None`: it sleeps until told).
    armed: Option<Instant>,
    /// The driver's waker, once it has run.
    driver: Option<Waker>,
}

impl Table {
    /// A deadline at `at` was added: the driver must wake earlier than it planned if `at` comes
    /// first. Returns the driver's waker to call once the lock is released.
    fn arm(&mut self, at: Instant) -> Option<Waker> {
        let earlier = self.armed.map_or(true, |armed| at < armed);
        if earlier {
            self.armed = Some(at);
            self.driver.clone()
        } else {
            None
        }
    }
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        drop(crate::sched::spawn(drive()));
        Mutex::new(Table { waiters: BTreeMap::new(), next_id: 0, armed: None, driver: None })
    });
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One wait's deadline: registered on its first pending poll, removed when it is dropped.
struct Deadline {
    at: Option<Instant>,
    key: Option<(Instant, u64)>,
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.at else { return Poll::Pending };
        if Instant::now() >= at {
            self.unregister();
            return Poll::Ready(());
        }
        let mut table = table();
        let wake_driver = match self.key {
            Some(key) => {
                match table.waiters.get_mut(&key) {
                    // Fired by the driver (which removed the entry).
                    None => {
                        self.key = None;
                        return Poll::Ready(());
                    }
                    Some(Due::Wake(waker)) => {
                        if !waker.will_wake(cx.waker()) {
                            waker.clone_from(cx.waker());
                        }
                    }
                    // Keys are never reused, so a wait's key never names an action.
                    Some(Due::Run(_)) => {}
                }
                None
            }
            None => {
                let key = (at, table.next_id);
                table.next_id += 1;
                table.waiters.insert(key, Due::Wake(cx.waker().clone()));
                self.key = Some(key);
                table.arm(at)
            }
        };
        drop(table);
        if let Some(driver) = wake_driver {
            driver.wake();
        }
        Poll::Pending
    }
}

impl Deadline {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            table().waiters.remove(&key);
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The driver: wakes the waiters whose deadline passed, then sleeps until the earliest one left
/// (or until a new, earlier deadline wakes it).
async fn drive() {
    let mut timer = crate::reactor::timer::Timer::never();
    let mut timer_at: Option<Instant> = None;
    std::future::poll_fn(move |cx| loop {
        let now = Instant::now();
        let (due, next) = {
            let mut table = table();
            let later = table.waiters.split_off(&(now, u64::MAX));
            let due = std::mem::replace(&mut table.waiters, later);
            let next = table.waiters.first_key_value().map(|(&(at, _), _)| at);
            table.armed = next;
            if table.driver.as_ref().map_or(true, |w| !w.will_wake(cx.waker())) {
                table.driver = Some(cx.waker().clone());
            }
            (due, next)
        };
        for due in due.into_values() {
            match due {
                Due::Wake(waker) => waker.wake(),
                Due::Run(action) => action(),
            }
        }
        if next != timer_at {
            match next {
                Some(at) => timer.set_at(at),
                None => timer.clear(),
            }
            timer_at = next;
        }
        match Pin::new(&mut timer).poll(cx) {
            // The earliest deadline passed meanwhile: go round again.
            Poll::Ready(_) => timer_at = None,
            Poll::Pending => return Poll::<()>::Pending,
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
        assert!(!table().waiters.keys().any(|(at, _)| ours.contains(at)), "a finished wait left its deadline");
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
