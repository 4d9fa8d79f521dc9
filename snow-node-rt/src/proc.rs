//! A process's shared state (mailbox inbox, links, monitors, exit status) and the task that runs
//! its body.
//!
//! Every process is one task on the scheduler pool ([`crate::sched`]). The task polls a small watcher before the body: when an
//! exit signal has made the process exit, the watcher completes, the body future is dropped (at
//! whatever `.await` it was parked) and the task runs the exit procedure itself. Because only the
//! process's own task ever acts for it, everything the process sent before it died is ordered
//! before its exit signals and `:DOWN` messages, as in BEAM.

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_lite::FutureExt;
use snow_shared::{Atom, Pid, Ref, Term};

use crate::node::Node;
use crate::reason::{self, IntoExitReason};
use crate::seam::{Backpressure, Congestion, Monitored};

/// Where a process is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Status {
    /// Running its body.
    Running,
    /// An exit was decided (a fatal signal, or its own `exit`); the task has not cleaned up yet.
    /// It still accepts new links and monitors, which then fire with the real reason.
    Exiting,
    /// Gone: links and monitors fired, name freed, mailbox dropped.
    Dead,
}

/// Links and monitors of one process, allocated only when the process has any (most have none,
/// and an idle process must stay small).
#[derive(Default)]
pub(crate) struct Relations {
    /// Processes (local or remote) linked to this one.
    pub links: HashSet<Pid>,
    /// Monitors on this process: (reference, watcher).
    pub watchers: Vec<(Ref, Pid)>,
    /// Monitors this process holds. The source of truth for whether a `:DOWN` may still be
    /// delivered, which makes `demonitor` with flush exact.
    pub monitoring: HashMap<Ref, Monitoring>,
    /// The distribution layer asked to be told when this process exits
    /// ([`RemoteRouter::process_exited`](crate::seam::RemoteRouter::process_exited)).
    pub tell_router_on_exit: bool,
}

/// One monitor a process holds.
#[derive(Clone, Debug)]
pub(crate) struct Monitoring {
    /// What it watches, as the `:DOWN` message will name it.
    pub target: Monitored,
    /// For a name on this node: the process the name resolved to, which holds the watcher entry.
    pub resolved: Option<Pid>,
}

impl Monitoring {
    /// A monitor of `target`, with no local resolution.
    pub fn of(target: Monitored) -> Monitoring {
        Monitoring { target, resolved: None }
    }

    /// Whether `reported` (the process or name a `:DOWN` report names) is what this monitor
    /// watches: the same pid, or, for a name, any report from the name's node (the peer resolves
    /// the name; a peer cannot speak for another node's processes).
    pub fn accepts(&self, reported: &Monitored) -> bool {
        match (&self.target, reported) {
            (Monitored::Pid(mine), Monitored::Pid(theirs)) => mine == theirs,
            (Monitored::Pid(_), Monitored::Name { .. }) => false,
            (Monitored::Name { node, .. }, Monitored::Pid(pid)) => {
                pid.node() == node && self.resolved.as_ref().map_or(true, |r| r == pid)
            }
            (Monitored::Name { .. }, Monitored::Name { .. }) => &self.target == reported,
        }
    }

    /// The process that holds the watcher entry of this monitor, if known here.
    pub fn holder(&self) -> Option<&Pid> {
        match &self.target {
            Monitored::Pid(pid) => Some(pid),
            Monitored::Name { .. } => self.resolved.as_ref(),
        }
    }
}

/// The part of a process other processes touch, under one lock.
pub(crate) struct ProcState {
    /// Messages not yet moved to the owner's private queue, oldest first.
    pub inbox: VecDeque<Term>,
    /// The owner is parked in a receive and must be woken by the next message.
    pub waiting: bool,
    /// Waker of the parked receive.
    pub recv_waker: Option<Waker>,
    /// Waker of the process's task, used to deliver fatal signals wherever the body is parked.
    pub task_waker: Option<Waker>,
    pub status: Status,
    /// The exit reason decided while `Exiting`, until the task takes it.
    pub pending_exit: Option<Term>,
    pub trap_exit: bool,
    /// The registered name, if any.
    pub name: Option<Atom>,
    relations: Option<Box<Relations>>,
    /// The congested connection this process must wait for at its next `.await`, if any
    /// ([`Backpressure::Suspend`](crate::seam::Backpressure)).
    congestion: Option<Arc<dyn Congestion>>,
}

impl ProcState {
    /// The relations, allocating them on first use.
    pub fn rel(&mut self) -> &mut Relations {
        self.relations.get_or_insert_with(Default::default)
    }

    /// The relations if any exist.
    pub fn rel_opt(&mut self) -> Option<&mut Relations> {
        self.relations.as_deref_mut()
    }

    /// Whether links and monitors may still be attached (the exit procedure has not run).
    pub fn accepts_relations(&self) -> bool {
        self.status != Status::Dead
    }

    /// Appends a message; returns the waker to call once the lock is released.
    #[must_use]
    pub fn push(&mut self, msg: Term) -> Option<Waker> {
        self.inbox.push_back(msg);
        if self.waiting {
            self.waiting = false;
            self.recv_waker.take()
        } else {
            None
        }
    }

    /// Decides that the process exits with `reason` (the first decision wins) and returns the
    /// wakers to call once the lock is released.
    #[must_use]
    pub fn begin_exit(&mut self, reason: Term, flag: &AtomicBool) -> [Option<Waker>; 2] {
        if self.status != Status::Running {
            return [None, None];
        }
        self.status = Status::Exiting;
        self.pending_exit = Some(reason);
        flag.store(true, Ordering::Release);
        self.waiting = false;
        [self.task_waker.clone(), self.recv_waker.take()]
    }
}

/// Wakes the wakers returned by [`ProcState::push`] / [`ProcState::begin_exit`].
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Option<Waker>>) {
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}

/// One process as the runtime sees it.
pub(crate) struct ProcShared {
    pub pid: Pid,
    /// Set once an exit was decided; lets the task check for fatal signals without locking.
    pub exiting: AtomicBool,
    /// Set while `congestion` holds a connection to wait for; checked without locking at every
    /// suspension point.
    congested: AtomicBool,
    state: Mutex<ProcState>,
}

impl ProcShared {
    pub fn new(pid: Pid) -> ProcShared {
        ProcShared {
            pid,
            exiting: AtomicBool::new(false),
            congested: AtomicBool::new(false),
            state: Mutex::new(ProcState {
                inbox: VecDeque::new(),
                waiting: false,
                recv_waker: None,
                task_waker: None,
                status: Status::Running,
                pending_exit: None,
                trap_exit: false,
                name: None,
                relations: None,
                congestion: None,
            }),
        }
    }

    /// Locks the state. No user code ever runs under this lock, so poisoning can only come from
    /// a bug in the runtime itself; the state is still structurally valid then, so keep going.
    pub fn lock(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the process as exiting with `reason` and wakes its task.
    pub fn exit_with(&self, reason: Term) {
        let wakers = self.lock().begin_exit(reason, &self.exiting);
        wake_all(wakers);
    }

    /// Whether an exit has been decided for this process: what it sends from then on is not
    /// sent (it died at that point, even if its body has not reached an `.await` yet).
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    /// Applies what the distribution layer asked after one of this process's sends.
    pub fn backpressure(&self, verdict: Backpressure) {
        match verdict {
            Backpressure::Clear => {}
            Backpressure::Suspend(congestion) => {
                self.lock().congestion = Some(congestion);
                self.congested.store(true, Ordering::Release);
            }
            Backpressure::Overflow(reason) => self.exit_with(reason),
        }
    }

    /// `Pending` while this process must wait for a congested connection (registering `cx`'s
    /// waker with it); `Ready` when it may run. Called at every suspension point: when the task
    /// is polled, and by every receive.
    pub fn poll_congestion(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.congested.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let Some(congestion) = self.lock().congestion.clone() else {
            self.congested.store(false, Ordering::Release);
            return Poll::Ready(());
        };
        if congestion.poll_room(cx).is_pending() {
            return Poll::Pending;
        }
        let mut st = self.lock();
        // A send made meanwhile may have installed another congestion: only clear this one.
        if st.congestion.as_ref().is_some_and(|c| Arc::ptr_eq(c, &congestion)) {
            st.congestion = None;
            self.congested.store(false, Ordering::Release);
        }
        Poll::Ready(())
    }

    /// Takes the state as it is at death: relations, name and mailbox contents.
    pub fn mark_dead(&self) -> (Option<Box<Relations>>, Option<Atom>, VecDeque<Term>) {
        let mut st = self.lock();
        st.status = Status::Dead;
        self.exiting.store(true, Ordering::Release);
        st.pending_exit = None;
        st.waiting = false;
        st.recv_waker = None;
        st.task_waker = None;
        st.congestion = None;
        (st.relations.take(), st.name.take(), std::mem::take(&mut st.inbox))
    }
}

/// Completes with the exit reason once a fatal signal (or the process's own `exit`) arrived.
struct KillWatch<'a> {
    shared: &'a ProcShared,
    registered: bool,
}

impl Future for KillWatch<'_> {
    type Output = Term;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        if !self.registered {
            self.registered = true;
            self.shared.lock().task_waker = Some(cx.waker().clone());
        }
        if self.shared.exiting.load(Ordering::Acquire) {
            if let Some(reason) = self.shared.lock().pending_exit.take() {
                return Poll::Ready(reason);
            }
        }
        Poll::Pending
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// The whole life of a process: run the body until it returns, panics or is killed, then exit.
pub(crate) async fn run<Fut>(node: Node, shared: Arc<ProcShared>, body: Fut)
where
    Fut: Future + Send,
    Fut::Output: IntoExitReason,
{
    let reason = {
        let body = async {
            match AssertUnwindSafe(body).catch_unwind().await {
                Ok(result) => result.into_exit_reason(),
                Err(payload) => {
                    let message = panic_message(&*payload);
                    log::warn!("{}: process {} panicked: {message}", node.name(), shared.pid);
                    reason::panic(message)
                }
            }
        };
        // A process suspended by a congested connection is not polled until the congestion
        // clears (it may still be killed meanwhile: the kill watch comes first).
        let mut body = std::pin::pin!(body);
        let gated = std::future::poll_fn(|cx| match shared.poll_congestion(cx) {
            Poll::Ready(()) => body.as_mut().poll(cx),
            Poll::Pending => Poll::Pending,
        });
        KillWatch { shared: &shared, registered: false }.or(gated).await
    };
    // An exit decided while the body ran its last stretch (a signal, or a send refused at a
    // connection's ceiling) wins over the body's own result: the process died at that point.
    let decided = shared.lock().pending_exit.take();
    node.finish(&shared, decided.unwrap_or(reason));
}
