//! A timer on the [`Reactor`]: a future that is ready at a deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::Reactor;

/// Ready once its deadline has passed; never ready without one. The deadline can be moved.
#[derive(Debug, Default)]
pub(crate) struct Timer {
    at: Option<Instant>,
    /// The reactor's key for this timer, while registered.
    key: Option<(Instant, u64)>,
}

impl Timer {
    /// A timer that never fires (until [`Timer::set_at`]).
    pub(crate) fn never() -> Timer {
        Timer::default()
    }

    /// A timer that fires at `at`.
    #[cfg(test)]
    pub(crate) fn at(at: Instant) -> Timer {
        Timer { at: Some(at), key: None }
    }

    /// Moves the deadline to `at`.
    pub(crate) fn set_at(&mut self, at: Instant) {
        self.unregister();
        self.at = Some(at);
    }

    /// Removes the deadline: the timer never fires.
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
            None => self.key = Some(reactor.add_timer(at, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.unregister();
    }
}
