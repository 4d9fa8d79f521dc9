//! What a waiter leaves to be undone when it stops waiting: a remote call or spawn whose caller
//! timed out, or whose future was dropped (its process exited, or a `select` chose another
//! branch), must not leave a callee running or a link made behind it.

/// Runs its action when dropped, unless [`UnlessDone::done`] came first.
pub(crate) struct UnlessDone<F: FnOnce()> {
    action: Option<F>,
}

impl<F: FnOnce()> UnlessDone<F> {
    /// Arms `action`, to run when this is dropped before [`UnlessDone::done`].
    pub(crate) fn new(action: F) -> UnlessDone<F> {
        UnlessDone { action: Some(action) }
    }

    /// The wait ended with an answer: nothing to undo.
    pub(crate) fn done(mut self) {
        self.action = None;
    }
}

impl<F: FnOnce()> Drop for UnlessDone<F> {
    fn drop(&mut self) {
        if let Some(action) = self.action.take() {
            action();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn the_action_runs_when_dropped_and_not_after_done() {
        let ran = Cell::new(0);
        drop(UnlessDone::new(|| ran.set(ran.get() + 1)));
        assert_eq!(ran.get(), 1);
        UnlessDone::new(|| ran.set(ran.get() + 1)).done();
        assert_eq!(ran.get(), 1);
    }
}
