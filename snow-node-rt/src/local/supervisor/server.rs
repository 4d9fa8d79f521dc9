//! The supervisor process: starts the children, turns their exits into restarts by the strategy
//! and intensity, answers the client calls, and shuts the children down (module docs of
//! `supervisor`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::Sender;

use snow_shared::{NodeName, Pid, Term};

use super::placement::{self, Placement, PlacementError};
use super::{ChildSpec, Restart, Shutdown, Strategy, Supervisor};
use crate::local::process::Process;
use crate::reason;

/// The tag of a client's request: `{CALL, from, ref, request}`.
pub(super) const CALL: &str = "$sup_call";
/// The tag of the answer: `{REPLY, ref, answer}`.
pub(super) const REPLY: &str = "$sup_reply";
/// The tag of the message a supervisor sends itself to try a failed start again:
/// `{RETRY, serial}` (OTP's `try_again_restart`).
const RETRY: &str = "$sup_retry";

/// How long a supervisor waits for a local child to reach its first suspension point before
/// starting the next one anyway.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the supervisor waits for a `:kill`ed child's exit: a local one exits at once; for a
/// remote one the exit, or the loss of its connection (within a ticktime), comes well before.
/// The deadline only guards against a runtime bug.
const KILL_WAIT: Duration = Duration::from_secs(60);

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

/// A child as the supervisor tracks it.
struct Child {
    /// Unique within this supervisor, for the retry messages (ids repeat in simple_one_for_one).
    serial: i64,
    spec: Arc<ChildSpec>,
    args: Term,
    pid: Option<Pid>,
    /// The node it runs on, or last ran on.
    node: Option<NodeName>,
    /// Its last exit was `:noconnection`: its node is to be tried last.
    node_lost: bool,
}

struct State {
    me: Process,
    sup: Supervisor,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
    next_serial: i64,
}

/// The supervisor's body.
pub(super) async fn run(me: Process, sup: Supervisor, parent: Option<Pid>) -> Term {
    me.trap_exit(true);
    let mut state = State { me, sup, children: Vec::new(), restarts: VecDeque::new(), next_serial: 0 };
    if let Err(why) = state.check_specs() {
        log::error!("supervisor {}: {why}", state.me.pid());
        return Term::tuple([Term::atom("bad_spec"), Term::string(why)]);
    }
    if state.sup.strategy != Strategy::SimpleOneForOne {
        let specs: Vec<Arc<ChildSpec>> = state.sup.specs.iter().cloned().map(Arc::new).collect();
        for spec in specs {
            let mut child = state.new_child(spec, Term::Unit);
            if let Err(e) = start(&state.me, &mut child).await {
                log::error!("supervisor {}: cannot start child {}: {e}; shutting down", state.me.pid(), child.spec.id);
                state.shutdown_all().await;
                let failed = Term::tuple([
                    Term::atom("failed_to_start_child"),
                    Term::string(child.spec.id.clone()),
                    e.to_term(),
                ]);
                return Term::tuple([reason::shutdown(), failed]);
            }
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
            Some([tag, Term::Int(serial)]) if tag.is_atom(RETRY) => {
                if let Some(reason) = state.retry(*serial).await {
                    return reason;
                }
            }
            _ => log::debug!("supervisor {}: ignoring unexpected message {msg}", state.me.pid()),
        }
    }
}

/// Starts `child`: a local one is spawned linked and waited for until it has run up to its first
/// suspension point, so that children initialise one after the other, in order (OTP waits for
/// each child's init); a remote one is started on the first candidate that accepts
/// (`placement.rs`).
async fn start(me: &Process, child: &mut Child) -> Result<(), PlacementError> {
    let pid = match &child.spec.placement {
        Placement::Local(body) => {
            let (body, args) = (body.clone(), child.args.clone());
            let (started, wait) = async_channel::bounded(1);
            let pid = me.spawn_link(move |p| FirstPoll { inner: body(p, args), started: Some(started) });
            if crate::timers::within(INIT_TIMEOUT, wait.recv()).await.is_none() {
                log::warn!(
                    "supervisor {}: child {} still initialising after {INIT_TIMEOUT:?}",
                    me.pid(),
                    child.spec.id
                );
            }
            pid
        }
        Placement::Remote(remote) => {
            let order = placement::candidate_order(&remote.nodes, child.node.as_ref(), child.node_lost);
            placement::start_remote(me, remote, order, placement::call_args(remote, &child.args)).await?
        }
    };
    child.node = Some(pid.node().clone());
    child.node_lost = false;
    child.pid = Some(pid);
    Ok(())
}

impl State {
    fn check_specs(&self) -> Result<(), String> {
        if self.sup.strategy == Strategy::SimpleOneForOne && self.sup.specs.len() != 1 {
            return Err("simple_one_for_one needs exactly one child spec".into());
        }
        self.sup.specs.iter().try_for_each(ChildSpec::check)
    }

    fn new_child(&mut self, spec: Arc<ChildSpec>, args: Term) -> Child {
        self.next_serial += 1;
        Child { serial: self.next_serial, spec, args, pid: None, node: None, node_lost: false }
    }

    /// Handles a child's exit; `Some(reason)` means the supervisor itself must exit.
    async fn child_exited(&mut self, i: usize, why: Term) -> Option<Term> {
        let child = &mut self.children[i];
        child.pid = None;
        child.node_lost = why == reason::noconnection();
        let restart = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason::is_clean_shutdown(&why),
            Restart::Temporary => false,
        };
        if !restart {
            if child.spec.restart == Restart::Temporary || self.sup.strategy == Strategy::SimpleOneForOne {
                self.children.remove(i);
            }
            return None;
        }
        log::info!("supervisor {}: child {} exited with {why}; restarting", self.me.pid(), child.spec.id);
        self.restart(i).await
    }

    /// Tries again to start the child `serial` whose start failed, if it is still waiting.
    async fn retry(&mut self, serial: i64) -> Option<Term> {
        let i = self.children.iter().position(|c| c.serial == serial && c.pid.is_none())?;
        log::info!("supervisor {}: trying again to start child {}", self.me.pid(), self.children[i].spec.id);
        self.restart(i).await
    }

    /// Counts a restart of child `i` against the intensity, then restarts it and, by the
    /// strategy, its siblings. A start that fails leaves that child (and those after it in the
    /// restart) down and schedules a retry, which counts as one more restart.
    async fn restart(&mut self, i: usize) -> Option<Term> {
        let now = Instant::now();
        self.restarts.push_back(now);
        while self.restarts.front().is_some_and(|t| now.duration_since(*t) > self.sup.period) {
            self.restarts.pop_front();
        }
        if self.restarts.len() > self.sup.max_restarts {
            log::error!(
                "supervisor {}: child {} needs a restart; more than {} restarts in {:?}, giving up",
                self.me.pid(),
                self.children[i].spec.id,
                self.sup.max_restarts,
                self.sup.period
            );
            self.shutdown_all().await;
            return Some(reason::shutdown());
        }
        let (first, last) = match self.sup.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => (i, i + 1),
            Strategy::OneForAll => (0, self.children.len()),
            Strategy::RestForOne => (i, self.children.len()),
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
            if let Err(e) = start(&self.me, &mut self.children[j]).await {
                let child = &self.children[j];
                log::error!(
                    "supervisor {}: cannot restart child {}: {e}; will try again",
                    self.me.pid(),
                    child.spec.id
                );
                self.me.send(self.me.pid(), Term::tuple([Term::atom(RETRY), Term::Int(child.serial)]));
                break;
            }
            j += 1;
        }
        None
    }

    /// Stops child `j` if it runs, with its shutdown spec, waiting for its exit (a remote child's
    /// exit comes over its link, or as `:noconnection` if its node is lost meanwhile).
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
        if self.me.receive_match_timeout(is_exit_of, KILL_WAIT).await.is_none() {
            log::error!("supervisor {}: child {pid} did not exit within {KILL_WAIT:?} of :kill", self.me.pid());
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
                let mut child = self.new_child(spec, args.clone());
                if let Err(e) = start(&self.me, &mut child).await {
                    log::warn!("supervisor {}: start_child failed: {e}", self.me.pid());
                    return Term::tuple([Term::atom("start_failed"), Term::string(e.to_string())]);
                }
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
                        let undefined = || Term::atom("undefined");
                        let pid = c.pid.clone().map(Term::Pid).unwrap_or_else(undefined);
                        let node = c.node.as_ref().map(|n| Term::Atom(n.as_atom().clone())).unwrap_or_else(undefined);
                        Term::tuple([Term::string(c.spec.id.clone()), pid, node])
                    })
                    .collect(),
            ),
            _ => error("unknown request"),
        }
    }
}
