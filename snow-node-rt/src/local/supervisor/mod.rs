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
//! Children on other nodes ([`ChildSpec::remote`]): an allow-listed function (name + arguments)
//! started with a remote `spawn_link` on one of a list of candidate nodes, restarted under the
//! same strategy and intensity when it exits or when its node goes down (`:noconnection`), on the
//! next candidate that is up (the policy is `placement.rs`'s, and README's "Supervision across
//! nodes"). OTP's child specs have no such placement; there a supervisor starts only local
//! children.
//!
//! Differences from OTP: a local child's start cannot fail (spawning always succeeds; a child
//! that crashes at once is simply restarted and counts against the intensity), and local children
//! are process bodies rather than `{M, F, A}` start functions. A remote child's start fails when
//! no candidate starts it; at the supervisor's start that stops it with
//! `{:shutdown, {:failed_to_start_child, id, reason}}`, as in OTP; later it counts as a restart
//! and is tried again (OTP's `try_again_restart`).

mod placement;
mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use snow_shared::{NodeName, Pid, Term};

use super::process::{Process, Spawnable};
use crate::reason::IntoExitReason;
pub use placement::PlacementError;
use placement::{Placement, RemoteStart};
use server::{CALL, REPLY};

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

/// A child: an id, how and where it starts (a process body here, or an allow-listed function on
/// one of several nodes), its restart type and its shutdown.
#[derive(Clone)]
pub struct ChildSpec {
    id: String,
    placement: Placement,
    restart: Restart,
    shutdown: Shutdown,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.placement {
            Placement::Local(_) => write!(f, "ChildSpec({}, {:?}, {:?})", self.id, self.restart, self.shutdown),
            Placement::Remote(r) => write!(
                f,
                "ChildSpec({}, {:?}{:?} on {:?}, {:?}, {:?})",
                self.id, r.function, r.args, r.nodes, self.restart, self.shutdown
            ),
        }
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
        ChildSpec::with_placement(id, Placement::Local(body))
    }

    /// A permanent child on another node: the function `function` that the node registered with
    /// [`Node::register_spawnable`](crate::Node::register_spawnable), started with `args` by a
    /// remote `spawn_link` on the first of `nodes` that is up (a fixed node is a list of one),
    /// shut down with a 5 s timeout. The function gets `args` as one list term (for a
    /// [`Strategy::SimpleOneForOne`] template, with [`start_child`]'s arguments as one more
    /// element). A node in the list may be the supervisor's own: the function then runs there,
    /// from the same allow-list.
    ///
    /// When the child exits it is restarted on the node it ran on, or if it exited with
    /// `:noconnection` (its node went down or was cut off) on the next node of the list that
    /// starts it, that node last (README, "Supervision across nodes").
    pub fn remote(id: &str, nodes: impl IntoIterator<Item = NodeName>, function: &str, args: Vec<Term>) -> ChildSpec {
        let remote = RemoteStart { function: function.to_owned(), args, nodes: nodes.into_iter().collect() };
        ChildSpec::with_placement(id, Placement::Remote(remote))
    }

    fn with_placement(id: &str, placement: Placement) -> ChildSpec {
        ChildSpec { id: id.to_owned(), placement, restart: Restart::Permanent, shutdown: Shutdown::Timeout(SECOND * 5) }
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Why this spec cannot be used, if it cannot.
    fn check(&self) -> Result<(), String> {
        match &self.placement {
            Placement::Remote(r) if r.nodes.is_empty() => {
                Err(format!("child {}: a remote child needs at least one candidate node", self.id))
            }
            _ => Ok(()),
        }
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
    /// The child could not be started (a remote child: no candidate node started it).
    #[error("the supervisor could not start the child: {0}")]
    StartFailed(String),
}

/// A child as [`which_children`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// Its pid while it runs; `None` while it is not running (a transient child that ended
    /// normally, or a remote child waiting for a candidate node).
    pub pid: Option<Pid>,
    /// The node it runs on, or last ran on while not running; `None` if it never ran.
    pub node: Option<NodeName>,
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
        node.spawn(move |me| server::run(me, self, None))
    }

    /// Starts the supervisor linked to `parent`.
    pub fn start_link(self, parent: &Process) -> Pid {
        let parent_pid = parent.pid().clone();
        parent.spawn_link(move |me| server::run(me, self, Some(parent_pid)))
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
        Some([tag, Term::String(text)]) if tag.is_atom("start_failed") => SupervisorError::StartFailed(text.clone()),
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

/// The children in start order: id, pid (`None` while not running) and node.
pub async fn which_children(caller: &mut Process, sup: &Pid) -> Result<Vec<ChildInfo>, SupervisorError> {
    let result = call(caller, sup, Term::atom("which_children")).await?;
    let Term::List(items) = &result else { return Err(refused(&result)) };
    Ok(items
        .iter()
        .filter_map(|item| match item.as_tuple() {
            Some([Term::String(id), pid, node]) => Some(ChildInfo {
                id: id.clone(),
                pid: pid.as_pid().cloned(),
                node: node.as_atom().and_then(|n| NodeName::parse(n.as_str()).ok()),
            }),
            _ => None,
        })
        .collect())
}
