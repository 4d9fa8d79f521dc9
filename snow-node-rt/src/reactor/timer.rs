//! Timers on the [`Reactor`]: what is due at a deadline, and a future that is ready at one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::Reactor;

/// A pending timer's key in the reactor: its deadline, and a number that is never reused.
pub(crate) type TimerKey = (Instant, u64);

/// What happens when a timer's deadline passes.
pub(crate) enum Due {
    /// A waiting future: wake it.
    Wake(Waker),
    /// An action (a `send_after`): run it, on the thread that turns the reactor.
    Run(Box<dyn FnOnce() + Send>),
}

/// Ready once its deadline has passed; never ready without one. The deadline can be moved.
#[derive(Debug, Default)]
pub(crate) struct Timer {
    at: Option<Instant>,
    /// The reactor's key for this timer, while registered.
    key: Option<TimerKey>,
}

impl Timer {
    /// A timer that fires at `at` (never, for `None`).
    pub(crate) fn at(at: Option<Instant>) -> Timer {
        Timer { at, key: None }
    }

    /// Moves the deadline to `at`.
    #[cfg(test)]
    pub(crate) fn set_at(&mut self, at: Instant) {
        self.unregister();
        self.at = Some(at);
    }

    /// Removes the deadline: the timer never fires.
    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.unregister();
        self.at = None;
    }

    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            Reactor::get().remove_timer(key);
        }
    }
}

impl Future for Timer {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let Some(at) = self.at else { return Poll::Pending };
        if Instant::now() >= at {
            self.unregister();
            return Poll::Ready(at);
        }
        let reactor = Reactor::get();
        match self.key {
            Some(key) if reactor.update_timer(key, cx.waker()) => {}
            // Fired between the clock read above and now: ready on the next poll, which the
            // reactor's wake-up already asked for.
            Some(_) => {
                self.key = None;
                cx.waker().wake_by_ref();
            }
            None => self.key = Some(reactor.add_timer(at, Due::Wake(cx.waker().clone()))),
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.unregister();
    }
}
