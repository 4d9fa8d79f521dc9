//! [`Node`]: the runtime of one node, and the operations a program calls on it from outside any
//! process (spawn, send, names, timers, and, when the node is distributed, its connections).
//!
//! Several `Node`s can live in one OS process (tests run whole clusters in-process); nothing in
//! the runtime is a hidden global but the scheduler pool they share.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

pub use super::node_state::Node;
use super::node_state::NodeState;
use super::process::Process;
pub use super::process::Spawnable;
use super::table::ProcessTable;
use crate::error::{CallError, DistError, RegisterError, SendError, UnregisterError};
use crate::reason::IntoExitReason;
use crate::seam::{Distribution, Host};
use crate::timers::TimerRef;

impl Node {
    /// A runtime that is not distributed: `nonode@nohost`, creation 0.
    pub fn local() -> Node {
        Node::new(NodeName::local_only(), 0)
    }

    /// A runtime for node `name` in its `creation` (README, "Node environment"). Pids it mints
    /// carry both, so they stay valid when sent to other nodes.
    pub fn new(name: NodeName, creation: u32) -> Node {
        NodeState::new_node(ProcessTable::new(name, creation))
    }

    /// This node's name (Erlang's `node()`); `nonode@nohost` when local-only.
    pub fn name(&self) -> &NodeName {
        self.inner.table.name()
    }

    /// This node's creation.
    pub fn creation(&self) -> u32 {
        self.inner.table.creation()
    }

    /// The node a pid lives on (Erlang's `node(Pid)`).
    pub fn node_of(pid: &Pid) -> NodeName {
        pid.node().clone()
    }

    /// This node as the host of its processes, for a distribution layer (weakly: the layer must
    /// not keep the node alive).
    pub fn as_host(&self) -> Weak<dyn Host> {
        let weak: Weak<NodeState> = Arc::downgrade(&self.inner);
        weak
    }

    /// The pid standing for "the runtime itself": the sender of signals and messages that code
    /// outside any process sends through [`Node::send`] or [`Node::exit`]. No process has it, so
    /// it is never alive.
    pub fn runtime_pid(&self) -> Pid {
        Pid::new(self.name().clone(), 0, self.creation())
    }

    /// A fresh reference (Erlang's `make_ref()`): unique on this node for its lifetime, and not
    /// guessable by other nodes, so a peer cannot forge a reply or a `:DOWN` for a request or
    /// monitor it was not told about.
    pub fn make_ref(&self) -> Ref {
        self.inner.table.make_ref()
    }

    /// Number of processes currently alive (or exiting) on this node.
    pub fn process_count(&self) -> usize {
        self.inner.table.len()
    }

    /// Whether `pid` is a live process of this node (`false` for remote pids: ask their node).
    ///
    /// A process is not alive from the moment an exit is decided for it, even if its task has
    /// not finished cleaning up, so `exit(pid, :kill)` followed by `is_alive(pid)` gives `false`.
    pub fn is_alive(&self, pid: &Pid) -> bool {
        self.inner.table.get(pid).is_some_and(|p| p.is_running())
    }

    /// Whether `pid` belongs to this node and this creation.
    pub fn is_local(&self, pid: &Pid) -> bool {
        pid.node() == self.name() && pid.creation() == self.creation()
    }

    /// Spawns a process running `body`, which gets the handle to its own mailbox, and returns its
    /// pid (Erlang's `spawn/1`).
    ///
    /// The body's output is its exit reason ([`IntoExitReason`]: `()` is `:normal`). A panic in
    /// the body ends the process with `{:panic, "message"}`; nothing else is affected.
    pub fn spawn<F, Fut>(&self, body: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        super::process::start(self, self.inner.table.prepare(), body)
    }

    /// Sends `msg` to `pid` from outside any process (the sender is [`Node::runtime_pid`]).
    /// Never blocks; a dead pid makes it a no-op. Never refused on a congested connection
    /// (README, "Guarantees").
    pub fn send(&self, pid: &Pid, msg: Term) {
        let _ = super::signals::send(&self.inner, None, pid, msg);
    }

    /// Sends `msg` to the process registered as `name` on this node, from outside any process.
    pub fn send_named(&self, name: &str, msg: Term) -> Result<(), SendError> {
        let pid = self.whereis(name).ok_or_else(|| SendError::NotRegistered(name.to_owned()))?;
        self.send(&pid, msg);
        Ok(())
    }

    /// Sends an exit signal to `pid` from outside any process (the sender is
    /// [`Node::runtime_pid`]); see [`Process::send_exit`] for what the target does with it.
    pub fn exit(&self, pid: &Pid, reason: Term) {
        let _ = super::signals::exit(&self.inner, &self.runtime_pid(), pid, reason, false);
    }

    /// Sets the mailbox limit that processes spawned from now on start with (`None`: no limit,
    /// the default), like Erlang's `system_flag(max_heap_size, ..)`; returns the previous one.
    /// Running processes keep theirs. A process whose mailbox holds its limit when another
    /// message arrives is killed with `{:mailbox_overflow, limit}` (see
    /// [`Process::set_mailbox_limit`], which changes one process's limit).
    /// [`NodeBuilder::mailbox_limit`](crate::dist::NodeBuilder::mailbox_limit) and
    /// `SNOW_MAILBOX_LIMIT` set it at start.
    pub fn set_default_mailbox_limit(&self, limit: Option<usize>) -> Option<usize> {
        self.inner.table.set_mailbox_limit(limit)
    }

    /// The mailbox limit processes spawned from now on start with (`None`: no limit).
    pub fn default_mailbox_limit(&self) -> Option<usize> {
        self.inner.table.mailbox_limit()
    }

    /// Registers `pid` (a live process of this node) as `name` (Erlang's `register/2`).
    ///
    /// Fails if the name is taken by a live process, if the process already has a name, or if
    /// it is not alive. A process that is exiting but not yet gone counts as alive, as in BEAM
    /// before the exit signal is handled.
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), RegisterError> {
        self.inner.registry.register(&self.inner.table, name, pid)
    }

    /// Removes the name; the process keeps running (Erlang's `unregister/1`).
    pub fn unregister(&self, name: &str) -> Result<(), UnregisterError> {
        self.inner.registry.unregister(&self.inner.table, name)
    }

    /// The live process registered as `name`, if any (Erlang's `whereis/1`).
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.inner.registry.whereis(&self.inner.table, name)
    }

    /// All registered names, sorted (Erlang's `registered/0`).
    pub fn registered(&self) -> Vec<Atom> {
        self.inner.registry.names()
    }

    /// Sends `msg` to `to` after `delay`, unless the timer is cancelled first (Erlang's
    /// `erlang:send_after/3`). As in BEAM, if `to` has exited by then the message goes nowhere.
    pub fn send_after(&self, to: &Pid, delay: Duration, msg: Term) -> TimerRef {
        super::signals::send_after(&self.inner, to, delay, msg)
    }

    /// Allows other nodes to spawn `function` by `name` (remote spawn runs only allow-listed
    /// functions; closures never cross the wire). Registering a name again replaces it.
    pub fn register_spawnable<F, Fut>(&self, name: &str, function: F)
    where
        F: Fn(Process, Term) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Term> + Send + 'static,
    {
        let boxed: Spawnable = Arc::new(move |p, args| Box::pin(function(p, args)));
        self.inner.add_spawnable(Atom::new(name), Arc::new(boxed));
    }

    /// Runs `function` (allow-listed on `node`) with `args` there and returns its value, from
    /// outside any process (Erlang's `erpc:call/5`); see [`Process::call`] for the rules.
    pub async fn call(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        super::node_calls::call(self, None, node, function, args, timeout).await
    }

    /// Starts `function` (allow-listed on `node`) with `args` there, from outside any process
    /// (Erlang's `erpc:cast/4`); see [`Process::cast`].
    pub async fn cast(&self, node: &NodeName, function: &str, args: Vec<Term>) -> Result<(), CallError> {
        super::node_calls::cast(self, None, node, function, args).await
    }

    /// [`Node::call`] on every node of `nodes` at once (Erlang's `erpc:multicall/5`): one result
    /// per node, in the order of `nodes`, all within `timeout`.
    pub async fn multicall(
        &self,
        nodes: &[NodeName],
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Vec<Result<Term, CallError>> {
        super::node_calls::multicall(self, None, nodes, function, args, timeout).await
    }

    /// Sends `msg` to the process whose alias `alias` is, from outside any process; see
    /// [`Process::send_alias`]. Never refused on a congested connection.
    pub fn send_alias(&self, alias: &Ref, msg: Term) {
        let _ = self.inner.send_alias(None, alias, msg);
    }

    /// For tests: how many aliases of this node's processes are active. Not a stable API.
    #[doc(hidden)]
    pub fn alias_count(&self) -> usize {
        self.inner.aliases.len()
    }

    /// For tests: how many links, monitors on it, and monitors it holds the live local process
    /// `pid` has (`None` if it is not one). Not a stable API.
    #[doc(hidden)]
    pub fn relation_counts(&self, pid: &Pid) -> Option<(usize, usize, usize)> {
        self.inner.table.get(pid).map(|p| p.relation_counts())
    }

    // ---- distribution ----------------------------------------------------------------------

    /// Installs the distribution layer. Operations on pids of other nodes go through it; without
    /// one they behave as if sent to a dead process. The distribution starters call this.
    pub fn set_distribution(&self, distribution: Arc<dyn Distribution>) {
        self.inner.set_distribution(Some(distribution));
    }

    fn dist(&self) -> Result<Arc<dyn Distribution>, DistError> {
        self.inner.distribution().ok_or(DistError::NotDistributed)
    }

    /// Whether this node is distributed (Erlang's `is_alive()`): started with a name, registered
    /// with snow-epmd and not shut down.
    #[doc(alias = "is_alive")]
    pub fn is_distributed(&self) -> bool {
        self.inner.with_distribution(|d| d.is_alive()).unwrap_or(false)
    }

    /// The nodes this node has a connection up with, sorted (Erlang's `nodes()`).
    pub fn nodes(&self) -> Vec<NodeName> {
        self.inner.with_distribution(|d| d.nodes()).unwrap_or_default()
    }

    /// The address the distribution listener is bound to; `None` when local-only.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.inner.with_distribution(|d| d.listen_addr())
    }

    /// Connects to `node` now, waiting until the connection is up or has failed (Erlang's
    /// `net_kernel:connect_node/1`). Already connected: `Ok` at once. Connecting to this node
    /// itself is `Ok` too, as `connect_node(node())` is `true` in Erlang. Unlike on-demand
    /// connects, this dials even if the node is in its backoff period.
    pub async fn connect(&self, node: &NodeName) -> Result<(), DistError> {
        let dist = self.dist()?;
        if node == self.name() {
            return Ok(());
        }
        dist.connect(node).await
    }

    /// Closes the connection to `node` (Erlang's `disconnect_node/1`): links and monitors across
    /// it fire `:noconnection`, node monitors get `{:nodedown, node}`. `Ok(false)` if there was no
    /// connection. A later send to that node connects again.
    pub fn disconnect(&self, node: &NodeName) -> Result<bool, DistError> {
        Ok(self.dist()?.disconnect(node))
    }

    /// Stops distribution: the listener closes, every connection is closed (links and monitors
    /// across them fire `:noconnection`), the node unregisters from snow-epmd, and remote pids
    /// behave as dead from then on. Local processes keep running. Idempotent.
    ///
    /// The shutdown runs as a task of its own, as Erlang's net_kernel stops in its own process:
    /// a caller that stops waiting (a process killed meanwhile, a `select` that chose another
    /// branch) does not leave distribution half stopped. Awaiting this waits for it to end.
    pub async fn shutdown(&self) {
        if let Some(dist) = self.inner.set_distribution(None) {
            let _ = crate::sched::spawn(async move { dist.shutdown().await }).await;
        }
    }

    /// For tests: the sizes of the distribution driver's tables, by name (empty when local-only).
    /// Tests compare them before and after failures to show nothing is left behind. Not a stable
    /// API.
    #[doc(hidden)]
    pub fn dist_table_sizes(&self) -> Vec<(&'static str, usize)> {
        self.inner.with_distribution(|d| d.table_sizes()).unwrap_or_default()
    }

    /// For tests and benchmarks: the most bytes the send queue of the connection to `node` ever
    /// held, while that connection is up. Not a stable API.
    #[doc(hidden)]
    pub fn send_queue_high_water(&self, node: &NodeName) -> Option<usize> {
        self.inner.with_distribution(|d| d.send_queue_high_water(node))?
    }

    /// For tests and benchmarks: the frame bytes (headers included, before encryption) the
    /// connection to `node` has written, while that connection is up. Not a stable API.
    #[doc(hidden)]
    pub fn connection_bytes_written(&self, node: &NodeName) -> Option<u64> {
        self.inner.with_distribution(|d| d.connection_bytes_written(node))?
    }

    /// For tests and benchmarks: the writes to the socket (syscalls that took bytes) of the
    /// connection to `node`, while that connection is up. Not a stable API.
    #[doc(hidden)]
    pub fn connection_socket_writes(&self, node: &NodeName) -> Option<u64> {
        self.inner.with_distribution(|d| d.connection_socket_writes(node))?
    }
}
