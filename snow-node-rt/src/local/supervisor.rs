//! Supervisors: processes that start children, watch them, and restart them by a strategy.
//!
//! Modelled on OTP's `supervisor`:
//! * strategies [`Strategy::OneForOne`], [`Strategy::OneForAll`], [`Strategy::RestForOne`] and
//!   [`Strategy::SimpleOneForOne`] (one template, children added with [`start_child`]);
//! * restart types [`Restart::Permanent`] (always), [`Restart::Transient`] (unless it ended with
//!   `:normal`, `:shutdown` or `{:shutdown, _}`) and [`Restart::Temporary`] (never; removed);
//! * restart intensity: more than `max_restarts` restarts within `period` and the supervisor
//!   shuts all children down and exits with `:shutdown` (OTP's default, 1 in 5 s, is ours too);
//! * children start in spec order and are shut down in reverse order, each with its
//!   [`Shutdown`]: an exit signal `:shutdown`, then `:kill` if it has not exited in time.
//!
//! Children are linked to the supervisor, which traps exits. An exit signal from the parent
//! (the process that called [`Supervisor::start_link`]) stops the supervisor: children are shut
//! down and it exits with the parent's reason. A supervisor started with [`Supervisor::start`]
//! has no parent; there, an exit signal from any process that is not one of its children stops it
//! the same way (OTP would ignore it, but then nothing could stop such a supervisor cleanly).
//!
//! Differences from OTP: a child's start cannot fail (spawning always succeeds; a child that
//! crashes at once is simply restarted and counts against the intensity), and children are
//! process bodies rather than `{M, F, A}` start functions.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use smol_timeout::TimeoutExt;

use snow_shared::{Pid, Term};

use super::process::{Process, Spawnable};
use crate::reason::{self, IntoExitReason};

/// How a supervisor reacts to a child's exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Restart only the child that exited.
    OneForOne,
    /// Shut down every other child (reverse order), then restart all (start order).
    OneForAll,
    /// Shut down the children started after the one that exited, then restart it and them.
    RestForOne,
    /// One template child spec; children are added at run time with [`start_child`], each with
    /// its own arguments, and restarted one for one.
    SimpleOneForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (not `:normal`, `:shutdown` or `{:shutdown, _}`).
    Transient,
    /// Never; the child is forgotten when it exits.
    Temporary,
}

/// How a child is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// An untrappable `:kill` at once.
    BrutalKill,
    /// An exit signal `:shutdown`, then `:kill` if the child is still alive after this long.
    Timeout(Duration),
}

/// A child: an id, a process body, its restart type and its shutdown.
#[derive(Clone)]
pub struct ChildSpec {
    id: String,
    body: Spawnable,
    restart: Restart,
    shutdown: Shutdown,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChildSpec({}, {:?}, {:?})", self.id, self.restart, self.shutdown)
    }
}

impl ChildSpec {
    /// A permanent child running `body`, shut down with a 5 s timeout.
    pub fn new<F, Fut>(id: &str, body: F) -> ChildSpec
    where
        F: Fn(Process) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        ChildSpec::with_args(id, move |p, _args| body(p))
    }

    /// A child whose body also gets arguments: the `args` of [`start_child`] for
    /// [`Strategy::SimpleOneForOne`], `()` otherwise.
    pub fn with_args<F, Fut>(id: &str, body: F) -> ChildSpec
    where
        F: Fn(Process, Term) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let fut_body = Arc::new(body);
        let body: Spawnable = Arc::new(move |p, args| {
            let fut = fut_body(p, args);
            Box::pin(async move { fut.await.into_exit_reason() })
        });
        ChildSpec { id: id.to_owned(), body, restart: Restart::Permanent, shutdown: Shutdown::Timeout(SECOND * 5) }
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// How long a supervisor waits for a child to reach its first suspension point before starting
/// the next one anyway.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs a child body and reports when its first poll is over (its initialisation is done).
struct FirstPoll {
    inner: Pin<Box<dyn Future<Output = Term> + Send>>,
    started: Option<Sender<()>>,
}

impl Future for FirstPoll {
    type Output = Term;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        let result = self.inner.as_mut().poll(cx);
        if let Some(started) = self.started.take() {
            // The supervisor may have stopped waiting; then nobody needs the notice.
            let _ = started.try_send(());
        }
        result
    }
}

/// A supervisor's configuration; start it with [`Supervisor::start`] or
/// [`Supervisor::start_link`].
#[derive(Clone, Debug)]
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: usize,
    period: Duration,
    specs: Vec<ChildSpec>,
}

/// Why a call to a supervisor failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// The supervisor is not running (it exited with this reason, or never existed).
    #[error("the supervisor is not running (exit reason {0}); start it again or check its pid")]
    NotRunning(Term),
    /// No answer within the call timeout.
    #[error("the supervisor did not answer within {0:?}; it may be busy restarting children")]
    Timeout(Duration),
    /// The supervisor refused the request.
    #[error("the supervisor refused the request: {0}")]
    Refused(String),
}

impl Supervisor {
    /// A supervisor with `strategy`, no children, and OTP's default intensity (1 restart in 5 s).
    pub fn new(strategy: Strategy) -> Supervisor {
        Supervisor { strategy, max_restarts: 1, period: SECOND * 5, specs: Vec::new() }
    }

    /// Allows at most `max_restarts` restarts within any `period`.
    pub fn intensity(mut self, max_restarts: usize, period: Duration) -> Supervisor {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Adds a child (for [`Strategy::SimpleOneForOne`], the one template).
    pub fn child(mut self, spec: ChildSpec) -> Supervisor {
        self.specs.push(spec);
        self
    }

    /// Starts the supervisor as a process of `node`, without a parent.
    pub fn start(self, node: &crate::Node) -> Pid {
        node.spawn(move |me| run(me, self, None))
    }

    /// Starts the supervisor linked to `parent`.
    pub fn start_link(self, parent: &Process) -> Pid {
        let parent_pid = parent.pid().clone();
        parent.spawn_link(move |me| run(me, self, Some(parent_pid)))
    }
}

struct Child {
    spec: Arc<ChildSpec>,
    args: Term,
    pid: Option<Pid>,
}

struct State {
    me: Process,
    sup: Supervisor,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
}

const CALL: &str = "$sup_call";
const REPLY: &str = "$sup_reply";

async fn run(me: Process, sup: Supervisor, parent: Option<Pid>) -> Term {
    me.trap_exit(true);
    let mut state = State { me, sup, children: Vec::new(), restarts: VecDeque::new() };
    if state.sup.strategy == Strategy::SimpleOneForOne {
        if state.sup.specs.len() != 1 {
            log::error!("supervisor {}: simple_one_for_one needs exactly one child spec", state.me.pid());
            return Term::tuple([Term::atom("bad_spec"), Term::string("simple_one_for_one needs one child spec")]);
        }
    } else {
        let specs: Vec<Arc<ChildSpec>> = state.sup.specs.iter().cloned().map(Arc::new).collect();
        for spec in specs {
            let mut child = Child { spec, args: Term::Unit, pid: None };
            state.start(&mut child).await;
            state.children.push(child);
        }
    }
    loop {
        let msg = state.me.receive().await;
        match msg.as_tuple() {
            Some([tag, Term::Pid(from), why]) if tag.is_atom("EXIT") => {
                if let Some(i) = state.children.iter().position(|c| c.pid.as_ref() == Some(from)) {
                    if let Some(reason) = state.child_exited(i, why.clone()).await {
                        return reason;
                    }
                } else if parent.is_none() || parent.as_ref() == Some(from) {
                    state.shutdown_all().await;
                    return why.clone();
                }
            }
            Some([tag, Term::Pid(from), Term::Ref(r), request]) if tag.is_atom(CALL) => {
                let answer = state.handle_call(request).await;
                state.me.send(from, Term::tuple([Term::atom(REPLY), Term::Ref(r.clone()), answer]));
            }
            _ => log::debug!("supervisor {}: ignoring unexpected message {msg}", state.me.pid()),
        }
    }
}

impl State {
    fn spawn_child(&self, spec: &ChildSpec, args: &Term) -> (Pid, Receiver<()>) {
        let body = spec.body.clone();
        let args = args.clone();
        let (started, wait) = async_channel::bounded(1);
        let pid = self.me.spawn_link(move |p| FirstPoll { inner: body(p, args), started: Some(started) });
        (pid, wait)
    }

    /// Starts `child` and waits until it has run up to its first suspension point, so that
    /// children initialise one after the other, in order (OTP waits for each child's init).
    async fn start(&self, child: &mut Child) {
        let (pid, started) = self.spawn_child(&child.spec, &child.args);
        child.pid = Some(pid);
        if started.recv().timeout(INIT_TIMEOUT).await.is_none() {
            log::warn!(
                "supervisor {}: child {} still initialising after {INIT_TIMEOUT:?}",
                self.me.pid(),
                child.spec.id
            );
        }
    }

    /// Handles a child's exit; `Some(reason)` means the supervisor itself must exit.
    async fn child_exited(&mut self, i: usize, why: Term) -> Option<Term> {
        self.children[i].pid = None;
        let restart = match self.children[i].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason::is_clean_shutdown(&why),
            Restart::Temporary => false,
        };
        if !restart {
            if self.children[i].spec.restart == Restart::Temporary || self.sup.strategy == Strategy::SimpleOneForOne {
                self.children.remove(i);
            }
            return None;
        }
        let now = Instant::now();
        self.restarts.push_back(now);
        while self.restarts.front().is_some_and(|t| now.duration_since(*t) > self.sup.period) {
            self.restarts.pop_front();
        }
        if self.restarts.len() > self.sup.max_restarts {
            log::error!(
                "supervisor {}: child {} exited with {why}; more than {} restarts in {:?}, giving up",
                self.me.pid(),
                self.children[i].spec.id,
                self.sup.max_restarts,
                self.sup.period
            );
            self.shutdown_all().await;
            return Some(reason::shutdown());
        }
        log::info!("supervisor {}: child {} exited with {why}; restarting", self.me.pid(), self.children[i].spec.id);
        let first = match self.sup.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => i,
            Strategy::OneForAll => 0,
            Strategy::RestForOne => i,
        };
        let last = match self.sup.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => i + 1,
            Strategy::OneForAll | Strategy::RestForOne => self.children.len(),
        };
        for j in (first..last).rev() {
            self.stop_child(j).await;
        }
        // Temporary children that were shut down are not restarted (as in OTP).
        let mut j = first;
        let mut end = last;
        while j < end {
            if self.children[j].spec.restart == Restart::Temporary && j != i {
                self.children.remove(j);
                end -= 1;
                continue;
            }
            let mut child =
                Child { spec: self.children[j].spec.clone(), args: self.children[j].args.clone(), pid: None };
            self.start(&mut child).await;
            self.children[j] = child;
            j += 1;
        }
        None
    }

    /// Stops child `j` if it runs, with its shutdown spec, waiting for its exit.
    async fn stop_child(&mut self, j: usize) {
        let Some(pid) = self.children[j].pid.take() else { return };
        let is_exit_of =
            |m: &Term| matches!(m.as_tuple(), Some([t, Term::Pid(p), _]) if t.is_atom("EXIT") && *p == pid);
        if let Shutdown::Timeout(grace) = self.children[j].spec.shutdown {
            self.me.send_exit(&pid, reason::shutdown());
            if self.me.receive_match_timeout(is_exit_of, grace).await.is_some() {
                return;
            }
            log::warn!("supervisor {}: child {pid} ignored :shutdown for {grace:?}; killing it", self.me.pid());
        }
        self.me.send_exit(&pid, reason::kill());
        // A killed process always exits; the deadline only guards against a runtime bug.
        if self.me.receive_match_timeout(is_exit_of, SECOND * 60).await.is_none() {
            log::error!("supervisor {}: child {pid} did not exit after :kill", self.me.pid());
        }
    }

    /// Stops every child, last started first.
    async fn shutdown_all(&mut self) {
        for j in (0..self.children.len()).rev() {
            self.stop_child(j).await;
        }
    }

    async fn handle_call(&mut self, request: &Term) -> Term {
        let error = |text: &str| Term::tuple([Term::atom("error"), Term::string(text)]);
        match request.as_tuple() {
            Some([tag, args]) if tag.is_atom("start_child") => {
                if self.sup.strategy != Strategy::SimpleOneForOne {
                    return error("start_child with arguments needs a simple_one_for_one supervisor");
                }
                let spec = Arc::new(self.sup.specs[0].clone());
                let mut child = Child { spec, args: args.clone(), pid: None };
                self.start(&mut child).await;
                let pid = child.pid.clone().map(Term::Pid).unwrap_or(Term::Unit);
                self.children.push(child);
                Term::tuple([Term::atom("ok"), pid])
            }
            Some([tag, Term::Pid(pid)]) if tag.is_atom("terminate_child") => {
                match self.children.iter().position(|c| c.pid.as_ref() == Some(pid)) {
                    Some(j) => {
                        self.stop_child(j).await;
                        if self.sup.strategy == Strategy::SimpleOneForOne
                            || self.children[j].spec.restart == Restart::Temporary
                        {
                            self.children.remove(j);
                        }
                        Term::atom("ok")
                    }
                    None => error("not a child of this supervisor"),
                }
            }
            _ if request.is_atom("which_children") => Term::List(
                self.children
                    .iter()
                    .map(|c| {
                        let pid = c.pid.clone().map(Term::Pid).unwrap_or_else(|| Term::atom("undefined"));
                        Term::tuple([Term::string(c.spec.id.clone()), pid])
                    })
                    .collect(),
            ),
            _ => error("unknown request"),
        }
    }
}

/// Sends `request` to `sup` and waits for the answer (at most `CALL_TIMEOUT`).
async fn call(caller: &mut Process, sup: &Pid, request: Term) -> Result<Term, SupervisorError> {
    let r = caller.monitor(sup);
    caller.send(sup, Term::tuple([Term::atom(CALL), Term::Pid(caller.pid().clone()), Term::Ref(r.clone()), request]));
    let answer = caller
        .receive_match_timeout(
            |m| matches!(m.as_tuple(), Some([t, Term::Ref(x), ..]) if *x == r && (t.is_atom(REPLY) || t.is_atom("DOWN"))),
            CALL_TIMEOUT,
        )
        .await;
    caller.demonitor(&r, true);
    let answer = answer.ok_or(SupervisorError::Timeout(CALL_TIMEOUT))?;
    match answer.as_tuple() {
        Some([t, _, result]) if t.is_atom(REPLY) => Ok(result.clone()),
        Some([_, _, _, why]) => Err(SupervisorError::NotRunning(why.clone())),
        _ => Err(SupervisorError::Refused(format!("malformed answer {answer}"))),
    }
}

/// How long the client functions wait for a supervisor's answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn refused(result: &Term) -> SupervisorError {
    match result.as_tuple() {
        Some([_, Term::String(text)]) => SupervisorError::Refused(text.clone()),
        _ => SupervisorError::Refused(result.to_string()),
    }
}

/// Starts a child of a [`Strategy::SimpleOneForOne`] supervisor with `args`.
pub async fn start_child(caller: &mut Process, sup: &Pid, args: Term) -> Result<Pid, SupervisorError> {
    let result = call(caller, sup, Term::tuple([Term::atom("start_child"), args])).await?;
    match result.as_tuple() {
        Some([ok, Term::Pid(pid)]) if ok.is_atom("ok") => Ok(pid.clone()),
        _ => Err(refused(&result)),
    }
}

/// Stops the child `pid` (with its shutdown spec) and does not restart it.
pub async fn terminate_child(caller: &mut Process, sup: &Pid, pid: &Pid) -> Result<(), SupervisorError> {
    let result = call(caller, sup, Term::tuple([Term::atom("terminate_child"), Term::Pid(pid.clone())])).await?;
    if result.is_atom("ok") {
        Ok(())
    } else {
        Err(refused(&result))
    }
}

/// The children in start order: id and pid (`None` while not running).
pub async fn which_children(caller: &mut Process, sup: &Pid) -> Result<Vec<(String, Option<Pid>)>, SupervisorError> {
    let result = call(caller, sup, Term::atom("which_children")).await?;
    let Term::List(items) = &result else { return Err(refused(&result)) };
    Ok(items
        .iter()
        .filter_map(|item| match item.as_tuple() {
            Some([Term::String(id), pid]) => Some((id.clone(), pid.as_pid().cloned())),
            _ => None,
        })
        .collect())
}
