//! The seam between a host of processes and the distribution layer (shared/ARCHITECTURE.md, "The
//! seam"). Four traits, and the few types they exchange:
//!
//! * [`Host`]: what the distribution layer needs from whoever runs the processes of a node. It
//!   delivers what arrives from other nodes (messages, exit signals, `:DOWN`s), records remote
//!   links and monitors on local processes, resolves registered names, spawns allow-listed
//!   functions, and hears of a lost connection. This crate's local process layer implements it
//!   ([`Node::as_host`](crate::Node::as_host)), and so does the C ABI; a language runtime with
//!   its own scheduler (Snow's) implements it instead, and the distribution layer does not
//!   notice.
//! * [`Distribution`]: what a host needs from the distribution layer. Every operation on a pid of
//!   another node goes through it, including what happens when a local process with remote links
//!   or monitors exits ([`Distribution::exit`] with `linked = true`, [`Distribution::down`]), and
//!   the node-level operations a host offers its programs (connect, node monitors, remote spawn).
//! * [`Cluster`]: the global registry and process groups, which the distribution layer keeps
//!   (they exist only among connected nodes) and a host offers its programs.
//!
//! Remote calls and process aliases are optional on both sides: a host says whether it runs
//! them ([`Host::supports_calls`], [`Host::supports_aliases`]), and the capability is offered to
//! peers only then; a distribution layer without them answers calls `Unsupported` and drops
//! messages to remote aliases.
//! * [`Runtime`]: what the distribution layer needs from an executor: run a task, wait until an
//!   instant, read the clock (like quinn's `Runtime`). Sockets are async-io's, whose reactor runs
//!   on its own when no executor drives it.
//!
//! The distribution layer holds a `Weak<dyn Host>` and an `Arc<dyn Runtime>`; it never names this
//! crate's `Node`, `Process` or scheduler. Without a [`Distribution`] (a node that is not
//! distributed), remote pids behave like dead ones: sends are dropped, links fail with `:noproc`,
//! monitors fire `:noproc` at once. (BEAM would report `:noconnection` for a node it cannot reach;
//! a node that is not distributed has no connection to lose, so the pid is reported non-existent.)

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use crate::error::{CallError, DistError, GlobalError, GroupError, RemoteSpawnError, SpawnError, TrySendError};

/// A boxed future that can move between threads, as the traits of the seam pass them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a monitor watches: a process, or whatever process is registered under a name on a node
/// (Erlang's `monitor(process, {Name, Node})`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Monitored {
    /// A process.
    Pid(Pid),
    /// The process registered as `name` on `node` when the monitor was set up.
    Name {
        /// The registered name.
        name: Atom,
        /// The node it is registered on.
        node: NodeName,
    },
}

impl Monitored {
    /// The node the monitored process lives on.
    pub fn node(&self) -> &NodeName {
        match self {
            Monitored::Pid(pid) => pid.node(),
            Monitored::Name { node, .. } => node,
        }
    }

    /// How a `{:DOWN, ref, item, reason}` message names it: the pid, or `{name, node}` as in
    /// Erlang.
    pub fn to_term(&self) -> Term {
        match self {
            Monitored::Pid(pid) => Term::Pid(pid.clone()),
            Monitored::Name { name, node } => {
                Term::tuple([Term::Atom(name.clone()), Term::Atom(node.as_atom().clone())])
            }
        }
    }
}

/// A congested connection, as the process that congested it sees it.
pub trait Congestion: Send + Sync {
    /// `Ready` once the process may go on: the connection's queue is back under its budget, or the
    /// connection is gone. `Pending` registers `cx`'s waker to be woken when that happens.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()>;
}

/// What the distribution layer asks of a process after it sent a message or a signal.
///
/// Sending never blocks and never drops on a live connection. Instead (as Erlang suspends a
/// process that sends to a busy distribution port) a sender that finds a connection over its
/// budget is suspended at its next `.await` until the queue drains; a process that keeps sending
/// without ever awaiting is stopped at the hard ceiling (README, "Guarantees").
#[must_use = "a sender must honour backpressure"]
pub enum Backpressure {
    /// Carry on.
    Clear,
    /// Queued, but the connection is over its budget: suspend the sender at its next `.await`
    /// until the congestion clears.
    Suspend(Arc<dyn Congestion>),
    /// Not queued: the connection's queue is at its hard ceiling. The sender must exit with this
    /// reason (everything it sent before is still delivered in order).
    Overflow(Term),
}

/// What the distribution layer needs from the host of a node's processes.
///
/// Every method is non-blocking and may be called from any thread (a connection's reader calls
/// them as messages arrive). Pids passed as "local" that are dead, unknown or of an older creation
/// are treated as dead processes, never as errors.
pub trait Host: Send + Sync {
    /// The name of the node these processes belong to.
    fn node_name(&self) -> &NodeName;
    /// The node's creation.
    fn creation(&self) -> u32;
    /// A fresh reference of this node, unique and not guessable by other nodes.
    fn make_ref(&self) -> Ref;
    /// Delivers a message that arrived for the local `to`; dropped if `to` is dead.
    fn deliver_message(&self, to: &Pid, msg: Term);
    /// Delivers a message to the local process registered as `name`; `false` if none is.
    fn deliver_named(&self, name: &Atom, msg: Term) -> bool;
    /// Delivers an exit signal from the remote `from` to the local `to`, with Erlang's rules;
    /// `linked` says it reports the end of a link.
    fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool);
    /// Delivers `{:DOWN, reference, item, reason}` to the local `watcher`, if it still holds that
    /// monitor and `reported` is what it monitors (`item` is the pid or `{name, node}` the
    /// monitor was set up with). A report about another process, or from another node than the
    /// monitored one, is ignored: a peer cannot fire a monitor it does not hold.
    fn deliver_down(&self, watcher: &Pid, reference: &Ref, reported: &Monitored, reason: Term);
    /// Records a link between the local `local` and `remote` on the local side. `false` if `local`
    /// does not exist: answer the peer with an exit signal `:noproc`.
    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool;
    /// Removes the link between the local `local` and `remote` on the local side.
    fn remove_remote_link(&self, local: &Pid, remote: &Pid);
    /// Records that the remote `watcher` monitors the local `target` with `reference`. `false` if
    /// `target` does not exist: answer the peer with a `:DOWN` carrying `:noproc`.
    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool;
    /// The remote watcher cancelled its monitor `reference` on the local `target`.
    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref);
    /// Records that the local `watcher` holds the monitor `reference` on `target` (of another
    /// node), so that a `:DOWN` for it is accepted; used when the monitor is set up by a remote
    /// spawn. `false` if `watcher` does not exist.
    fn add_monitor(&self, watcher: &Pid, reference: &Ref, target: Monitored) -> bool;
    /// Forgets the monitor `reference` the local `watcher` holds (one [`Host::add_monitor`]
    /// made for a remote spawn whose requester stopped waiting), so that no `:DOWN` for it, not
    /// even a `:noconnection` one, reaches the watcher. Nothing if there is no such monitor.
    fn remove_monitor(&self, watcher: &Pid, reference: &Ref);
    /// Asks to be told, through [`Distribution::process_exited`], when the local `pid` exits.
    /// `false` if it does not exist (it will never be told: forget it now).
    fn notify_exit(&self, pid: &Pid) -> bool;
    /// The live local process registered as `name`.
    fn resolve_name(&self, name: &Atom) -> Option<Pid>;
    /// Spawns the allow-listed function `function` with `args`. With `link_to`, the new process is
    /// linked to that (remote) pid before it runs (remote `spawn_link`); with `monitor_by`, that
    /// (remote) watcher monitors it with that reference before it runs (remote `spawn_monitor`),
    /// so even a child that exits at once reports its real exit reason.
    ///
    /// `before_start` gets the new pid before the process runs: queue the spawn reply there, so
    /// that it reaches the requester before anything the new process sends or its exit signal.
    fn spawn_registered(
        &self,
        function: &Atom,
        args: Term,
        link_to: Option<&Pid>,
        monitor_by: Option<(&Pid, &Ref)>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError>;
    /// The connection to `node` is gone: every local process linked to a process there gets an
    /// exit signal `:noconnection`, every monitor on a process there fires `:noconnection`, and
    /// monitors held by processes there on local ones are dropped.
    fn connection_lost(&self, node: &NodeName);

    /// Whether this host runs remote calls ([`Host::spawn_call`]). The distribution layer offers
    /// peers the CALLS capability only then (PROTOCOL.md 4.3.8); the default is `false`.
    fn supports_calls(&self) -> bool {
        false
    }
    /// Spawns the allow-listed `function` with `args` to run a remote call for the (remote)
    /// `caller`: monitored by `caller` with `reference` (and linked to `link_to`) before it runs,
    /// as [`Host::spawn_registered`] does, and ending, when the function returns `value`, with the
    /// exit reason `{reference, :return, value}` ([`crate::reason::call_return`]); any other end
    /// keeps its reason. Only called when [`Host::supports_calls`] is `true`; the default
    /// refuses.
    fn spawn_call(
        &self,
        function: &Atom,
        args: Term,
        caller: &Pid,
        reference: &Ref,
        link_to: Option<&Pid>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        let _ = (args, caller, reference, link_to, before_start);
        Err(SpawnError::NotSpawnable(function.as_str().to_owned()))
    }
    /// Whether this host has process aliases ([`Host::deliver_alias`]). The distribution layer
    /// offers peers the ALIAS capability only then; the default is `false`.
    fn supports_aliases(&self) -> bool {
        false
    }
    /// Delivers `msg` to the owner of the alias `alias` if it is an active alias of a local
    /// process (deactivating a reply-once alias); `false` if it is not (the message is dropped).
    fn deliver_alias(&self, alias: &Ref, msg: Term) -> bool {
        let _ = (alias, msg);
        false
    }
}

/// What the distribution layer needs from an executor.
pub trait Runtime: Send + Sync {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<()>);
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
    /// The current time.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What a host needs from the distribution layer: every operation on a pid of another node, and
/// the node-level operations it offers its programs.
///
/// The per-process operations are called from any thread, often in the middle of a send: they
/// never block (they queue and return). Calls for the same `from` to the same `to` reach the peer
/// in call order. Signals (everything but messages) are never refused; messages from a process
/// are refused only with [`Backpressure::Overflow`], and messages from outside any process
/// (`from == None`) never are.
pub trait Distribution: Send + Sync {
    /// A message from `from` (`None`: code outside any process) to the remote `to`.
    fn send(&self, from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure;
    /// A message to the process registered as `name` on `node`.
    fn send_named(&self, from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term) -> Backpressure;
    /// [`Distribution::send`] unless the connection is over its budget: then the message comes
    /// back in [`TrySendError::Busy`].
    fn try_send(&self, from: &Pid, to: &Pid, msg: Term) -> Result<(), TrySendError>;
    /// `Ready` once a sender to `node` may go on (its queue is under the budget, or the node is
    /// gone); else registers `cx`'s waker.
    fn poll_room(&self, node: &NodeName, cx: &mut Context<'_>) -> Poll<()>;
    /// The local `from` linked itself to the remote `to`. If `to` turns out not to exist, the
    /// host gets `deliver_exit(to, from, :noproc, true)`; if the connection fails, the same with
    /// `:noconnection`.
    fn link(&self, from: &Pid, to: &Pid) -> Backpressure;
    /// The local `from` removed its link to the remote `to`.
    fn unlink(&self, from: &Pid, to: &Pid) -> Backpressure;
    /// An exit signal from the local `from` to the remote `to`. `linked` is true when `from`
    /// exited and `to` was linked to it (the exit notification), false for `exit/2`.
    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure;
    /// The local `watcher` monitors `target` on another node with `reference`. If the target does
    /// not exist, the host gets `deliver_down(watcher, reference, target, :noproc)`; on connection
    /// loss, the same with `:noconnection` (or [`Host::connection_lost`]).
    fn monitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure;
    /// The local `watcher` cancelled its monitor `reference` on the remote `target`.
    fn demonitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure;
    /// The local `target`, monitored by the remote `watcher` with `reference`, exited.
    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term);
    /// The local `pid`, which asked for something that outlives a call (node monitors, a remote
    /// spawn in flight), exited: forget it.
    fn process_exited(&self, pid: &Pid);

    /// Whether distribution is running (Erlang's `is_alive()`).
    fn is_alive(&self) -> bool;
    /// The nodes with a connection up, sorted.
    fn nodes(&self) -> Vec<NodeName>;
    /// The address the distribution listener is bound to.
    fn listen_addr(&self) -> SocketAddr;
    /// The silence after which a peer is declared down: the longest a congested sender waits.
    fn ticktime(&self) -> Duration;
    /// Connects to `node`, completing when the connection is up or has failed.
    fn connect(&self, node: &NodeName) -> BoxFuture<Result<(), DistError>>;
    /// Closes the connection to `node`; whether there was one.
    fn disconnect(&self, node: &NodeName) -> bool;
    /// Stops distribution: no new connections, every connection closed, unregistered from
    /// snow-epmd. Completes when its tasks have stopped.
    fn shutdown(&self) -> BoxFuture<()>;
    /// The local `watcher` gets one `{:nodedown, node}` when the connection to `node` is lost, or
    /// at once if it cannot be made (Erlang's `monitor_node/2`).
    fn monitor_node(&self, watcher: &Pid, node: &NodeName);
    /// Removes one watch of `watcher` on `node`; whether there was one.
    fn demonitor_node(&self, watcher: &Pid, node: &NodeName) -> bool;
    /// Subscribes (or unsubscribes) `watcher` to every `{:nodeup, node}` and `{:nodedown, node}`.
    fn monitor_nodes(&self, watcher: &Pid, on: bool);
    /// Spawns `function` (allow-listed there) on `node` for the local `from`, linked to it and/or
    /// monitored by it (the reference of the monitor is returned with the pid).
    fn spawn_request(
        &self,
        from: &Pid,
        node: &NodeName,
        function: &Atom,
        args: Vec<Term>,
        link: bool,
        monitor: bool,
    ) -> BoxFuture<Result<(Pid, Ref), RemoteSpawnError>>;
    /// Runs the allow-listed `function` with `args` on `node` and returns its value (Erlang's
    /// `erpc:call/5`; README, "Remote calls"), for the local `from` (`None`: code outside any
    /// process). Nothing reaches `from`'s mailbox, not even a result that comes after `timeout`
    /// (the function's process is then killed). The default is for a distribution layer without
    /// calls: `Unsupported`.
    fn call(
        &self,
        from: Option<&Pid>,
        node: &NodeName,
        function: &Atom,
        args: Vec<Term>,
        timeout: Duration,
    ) -> BoxFuture<Result<Term, CallError>> {
        let _ = (from, function, args, timeout);
        let node = node.clone();
        Box::pin(async move { Err(CallError::Unsupported(node)) })
    }
    /// Starts the allow-listed `function` with `args` on `node` and returns once the request is
    /// queued, without waiting for the function (Erlang's `erpc:cast/4`). The default is for a
    /// distribution layer without calls: `Unsupported`.
    fn cast(
        &self,
        from: Option<&Pid>,
        node: &NodeName,
        function: &Atom,
        args: Vec<Term>,
    ) -> BoxFuture<Result<(), CallError>> {
        let _ = (from, function, args);
        let node = node.clone();
        Box::pin(async move { Err(CallError::Unsupported(node)) })
    }
    /// A message from `from` (`None`: outside any process) to the alias `alias` of a process of
    /// another node (Erlang's `Alias ! Msg`). Dropped if that node does not offer aliases, as a
    /// message to an inactive alias is; the default (a layer without aliases) drops it.
    fn send_alias(&self, from: Option<&Pid>, alias: &Ref, msg: Term) -> Backpressure {
        let _ = (from, alias, msg);
        Backpressure::Clear
    }
    /// The global registry and process groups of this node; `None` for a distribution layer that
    /// does not keep them (programs then get `NotDistributed`).
    fn cluster(&self) -> Option<&dyn Cluster> {
        None
    }
    /// For tests: the sizes of the driver's tables, by name. Not a stable API.
    fn table_sizes(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
    /// For tests and benchmarks: the most bytes the send queue to `node` ever held, while its
    /// connection is up. Not a stable API.
    fn send_queue_high_water(&self, _node: &NodeName) -> Option<usize> {
        None
    }
    /// For tests and benchmarks: the frame bytes (headers included, before encryption) the
    /// connection to `node` has written, while it is up. Not a stable API.
    fn connection_bytes_written(&self, _node: &NodeName) -> Option<u64> {
        None
    }
    /// For tests and benchmarks: the writes to the socket (syscalls that took bytes) of the
    /// connection to `node`, while it is up. Not a stable API.
    fn connection_socket_writes(&self, _node: &NodeName) -> Option<u64> {
        None
    }
}

/// Every group of a scope with its members, as [`Cluster::monitor_scope`] reports them.
pub type ScopeMembers = Vec<(Term, Vec<Pid>)>;

/// The cluster-wide registry of names and the process groups, as this node knows them (README,
/// "Global registry" and "Process groups"; their rules are `snow_shared::cluster`'s). Requests
/// change this node's view at once and are announced to every connected peer without waiting
/// for answers; reads answer from this node's view and send nothing.
///
/// Only a node's own processes are registered, joined or subscribed here (each node is the
/// authority for its processes); dead ones are refused with `NotAlive`. A registration, a
/// membership and a subscription end by themselves when their process exits.
pub trait Cluster: Send + Sync {
    /// Registers `name` for the local `pid`, cluster-wide (Erlang's `global:register_name/2`).
    fn register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError>;
    /// Moves `name` to the local `pid`, or registers it (Erlang's `global:re_register_name/2`).
    fn re_register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError>;
    /// Withdraws `name`, if a process of this node holds it; a name nobody holds is fine.
    fn unregister_name(&self, name: &Term) -> Result<(), GlobalError>;
    /// The process registered as `name`, as this node knows it.
    fn whereis_name(&self, name: &Term) -> Option<Pid>;
    /// Every registered name, sorted.
    fn registered_names(&self) -> Vec<Term>;
    /// Starts taking part in the process-group scope `scope`; whether it was not running yet.
    fn start_scope(&self, scope: &Atom) -> bool;
    /// Adds local processes to `group` in `scope` (a process is in a group at most once).
    fn join(&self, scope: &Atom, group: Term, pids: &[Pid]) -> Result<(), GroupError>;
    /// Removes local processes from `group` in `scope`.
    fn leave(&self, scope: &Atom, group: &Term, pids: &[Pid]) -> Result<(), GroupError>;
    /// The members of `group` in `scope` on every node, as this node knows them.
    fn members(&self, scope: &Atom, group: &Term) -> Vec<Pid>;
    /// The members of `group` in `scope` on this node.
    fn local_members(&self, scope: &Atom, group: &Term) -> Vec<Pid>;
    /// The groups of `scope` with members anywhere, sorted.
    fn which_groups(&self, scope: &Atom) -> Vec<Term>;
    /// The groups of `scope` with members on this node, sorted.
    fn which_local_groups(&self, scope: &Atom) -> Vec<Term>;
    /// Subscribes the local `watcher` to every membership change in `scope`: it gets
    /// `{ref, :join | :leave, group, pids}` messages. Returns the reference and every group with
    /// its members now.
    fn monitor_scope(&self, scope: &Atom, watcher: &Pid) -> Result<(Ref, ScopeMembers), GroupError>;
    /// Subscribes the local `watcher` to membership changes of `group` in `scope`. Returns the
    /// reference and the members now.
    fn monitor_group(&self, scope: &Atom, group: Term, watcher: &Pid) -> Result<(Ref, Vec<Pid>), GroupError>;
    /// Ends the subscription `reference` in `scope`; whether it existed.
    fn demonitor_group(&self, scope: &Atom, reference: &Ref) -> bool;
}
