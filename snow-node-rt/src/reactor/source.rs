//! A registered socket: its readiness as the reactor last saw it, and the tasks waiting on it.

use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::{lock, Reactor};

/// Which way a task waits on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

/// What the reactor knows of one socket.
pub(super) struct Source {
    state: Mutex<Readiness>,
}

struct Readiness {
    /// Bumped by every event, so that an operation that met `EWOULDBLOCK` can tell whether an
    /// event arrived while it ran (then the socket may be ready again, and stays marked so).
    tick: u64,
    /// By [`Direction`]: an operation may succeed (no `EWOULDBLOCK` seen since the last event).
    ready: [bool; 2],
    /// By [`Direction`]: the task to wake on the next event.
    waiters: [Option<Waker>; 2],
}

impl Source {
    pub(super) fn new(ready: bool) -> Source {
        Source { state: Mutex::new(Readiness { tick: 0, ready: [ready; 2], waiters: [None, None] }) }
    }

    /// The reactor saw an event: marks the directions ready and wakes their tasks.
    pub(super) fn on_event(&self, readable: bool, writable: bool) {
        let (reader, writer) = {
            let mut state = lock(&self.state);
            state.tick = state.tick.wrapping_add(1);
            let mut take = |dir: Direction, happened: bool| {
                if happened {
                    state.ready[dir as usize] = true;
                    state.waiters[dir as usize].take()
                } else {
                    None
                }
            };
            (take(Direction::Read, readable), take(Direction::Write, writable))
        };
        for waker in [reader, writer].into_iter().flatten() {
            waker.wake();
        }
    }

    /// `Ready` if `dir` is marked ready; else registers the task of `cx` and is `Pending`.
    fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<u64> {
        let mut state = lock(&self.state);
        if state.ready[dir as usize] {
            return Poll::Ready(state.tick);
        }
        let slot = &mut state.waiters[dir as usize];
        match slot {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => {
                // One task waits per direction. A different task replacing it is woken, so that
                // it polls again and takes its turn rather than sleeping forever.
                if let Some(replaced) = slot.replace(cx.waker().clone()) {
                    drop(state);
                    replaced.wake();
                }
            }
        }
        Poll::Pending
    }

    /// `op` met `EWOULDBLOCK` after [`Source::poll_ready`] gave `tick`: unmarks `dir`, unless an
    /// event came since.
    fn clear_ready(&self, dir: Direction, tick: u64) {
        let mut state = lock(&self.state);
        if state.tick == tick {
            state.ready[dir as usize] = false;
        }
    }
}

/// A non-blocking socket registered with the [`Reactor`]; deregistered when dropped.
pub(crate) struct Async<T: AsFd> {
    io: T,
    key: u64,
    source: Arc<Source>,
}

impl<T: AsFd> Async<T> {
    /// Registers `io`, which must already be non-blocking. `ready`: see [`Reactor::register`].
    pub(crate) fn new(io: T, ready: bool) -> io::Result<Async<T>> {
        let (key, source) = Reactor::get().register(io.as_fd(), ready)?;
        Ok(Async { io, key, source })
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// Runs the non-blocking `op` until it does not meet `EWOULDBLOCK`; when it does, the task
    /// of `cx` waits for the socket's next `dir` event.
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let Poll::Ready(tick) = self.source.poll_ready(dir, cx) else { return Poll::Pending };
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.source.clear_ready(dir, tick),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// `Ready` once the reactor has seen `dir` ready (for a socket registered not ready).
    pub(crate) fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<()> {
        self.source.poll_ready(dir, cx).map(|_| ())
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        // Before `io` closes its descriptor.
        Reactor::get().deregister(self.key, self.io.as_fd());
    }
}
