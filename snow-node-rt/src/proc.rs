//! A process's shared state (mailbox inbox, links, monitors, exit status) and the task that runs
//! its body.
//!
//! Every process is one task on the scheduler pool ([`crate::sched`]). The task polls a small watcher before the body: when an
//! exit signal has made the process exit, the watcher completes, the body future is dropped (at
//! whatever `.await` it was parked) and the task runs the exit procedure itself. Because only the
//! process's own task ever acts for it, everything the process sent before it died is ordered
//! before its exit signals and `:down` messages, as in BEAM.

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
    /// Monitors this process holds: reference -> target. The source of truth for whether a
    /// `:down` may still be delivered, which makes `demonitor` with flush exact.
    pub monitoring: HashMap<Ref, Pid>,
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
    state: Mutex<ProcState>,
}

impl ProcShared {
    pub fn new(pid: Pid) -> ProcShared {
        ProcShared {
            pid,
            exiting: AtomicBool::new(false),
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

    /// Takes the state as it is at death: relations, name and mailbox contents.
    pub fn mark_dead(&self) -> (Option<Box<Relations>>, Option<Atom>, VecDeque<Term>) {
        let mut st = self.lock();
        st.status = Status::Dead;
        self.exiting.store(true, Ordering::Release);
        st.pending_exit = None;
        st.waiting = false;
        st.recv_waker = None;
        st.task_waker = None;
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
        KillWatch { shared: &shared, registered: false }.or(body).await
    };
    node.finish(&shared, reason);
}
