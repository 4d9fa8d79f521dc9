//! Timers: `send_after` with cancellation, and `sleep`.
//!
//! Each pending timer is a small async-std task that sleeps until its deadline, or until it is
//! cancelled, whichever comes first; a cancelled timer's task ends at once and frees its message.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use snow_shared::{Pid, Term};

use crate::node::Node;

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

/// A handle on a timer started by [`Node::send_after`]. Dropping it does not cancel the timer.
#[derive(Clone, Debug)]
pub struct TimerRef {
    state: Arc<AtomicU8>,
    deadline: Instant,
    cancel: async_channel::Sender<()>,
}

impl TimerRef {
    /// Cancels the timer. Returns the time that was left if it had not fired yet, `None` if it
    /// already fired or was cancelled before (Erlang's `cancel_timer` returning `false`).
    pub fn cancel(&self) -> Option<Duration> {
        self.state.compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire).ok()?;
        // The channel has room for exactly this one notification; if the timer task already
        // ended, there is nothing left to wake.
        let _ = self.cancel.try_send(());
        Some(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// Time left before the timer fires, `None` once it fired or was cancelled.
    pub fn remaining(&self) -> Option<Duration> {
        (self.state.load(Ordering::Acquire) == PENDING).then(|| self.deadline.saturating_duration_since(Instant::now()))
    }
}

impl Node {
    /// Sends `msg` to `to` after `delay`, unless the timer is cancelled first. As in BEAM, if
    /// `to` has exited by then the message goes nowhere.
    pub fn send_after(&self, to: &Pid, delay: Duration, msg: Term) -> TimerRef {
        let state = Arc::new(AtomicU8::new(PENDING));
        let (cancel, cancelled) = async_channel::bounded(1);
        let timer = TimerRef { state: state.clone(), deadline: Instant::now() + delay, cancel };
        let node = self.clone();
        let to = to.clone();
        drop(crate::sched::spawn(async move {
            let expired = async {
                sleep(delay).await;
                true
            }
            .or(async {
                // An error means every TimerRef was dropped: the timer can no longer be
                // cancelled, so keep waiting for the deadline.
                if cancelled.recv().await.is_err() {
                    std::future::pending::<()>().await;
                }
                false
            })
            .await;
            if expired && state.compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                let _ = node.send_message(None, &to, msg);
            }
        }));
        timer
    }
}

/// Suspends the calling process (or any async code) for `duration`.
pub async fn sleep(duration: Duration) {
    async_io::Timer::after(duration).await;
}
