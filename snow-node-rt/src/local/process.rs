//! [`Process`]: the handle a process body gets to its own mailbox and to the runtime, with every
//! operation only a process can do (how receiving works is `mailbox.rs`'s).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::aliases::AliasMode;
use super::entry::ProcessEntry;
use super::mailbox::{Mailbox, Receive, ReceiveMatch};
use super::node_state::{AllowListed, Node};
use super::signals;
use crate::error::{
    CallError, DistError, LinkError, RegisterError, RemoteSpawnError, SendError, SpawnError, TrySendError,
};
use crate::reason::IntoExitReason;
use crate::seam::Monitored;
use crate::timers::TimerRef;

/// A running process's view of itself: its mailbox, its pid, and the operations only a process
/// can do (link, monitor, trap exits, receive).
///
/// The body of every process receives its `Process` by value. It is not `Clone`: a mailbox has
/// exactly one reader. Operations that only send (`send`, `send_exit`, `link`...) take `&self`;
/// receiving takes `&mut self`.
///
/// Erlang equivalents: `self()` = [`pid`](Process::pid), `!` = [`send`](Process::send),
/// `exit/1` = [`exit`](Process::exit), `exit/2` = [`send_exit`](Process::send_exit),
/// `process_flag(trap_exit, B)` = [`trap_exit`](Process::trap_exit), `make_ref()` =
/// [`make_ref`](Process::make_ref), `process_flag(max_heap_size, ..)` for the mailbox =
/// [`set_mailbox_limit`](Process::set_mailbox_limit).
pub struct Process {
    node: Node,
    /// The mailbox, which also holds the process's entry (one reference per process handle: an
    /// idle process is mostly this handle, parked in a receive).
    mailbox: Mailbox,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Process({})", self.entry().pid())
    }
}

impl Process {
    pub(crate) fn new(node: Node, entry: Arc<ProcessEntry>) -> Process {
        Process { node, mailbox: Mailbox::new(entry) }
    }

    /// This process's state in the table.
    fn entry(&self) -> &Arc<ProcessEntry> {
        self.mailbox.entry()
    }

    // ---- receiving ----------------------------------------------------------------------------

    /// Waits for the oldest message and takes it (Erlang's `receive`). Every receive is a
    /// suspension point: a process that a congested connection asked to wait waits here first.
    pub fn receive(&mut self) -> Receive<'_> {
        self.mailbox.receive()
    }

    /// Like [`receive`](Process::receive), but gives up after `timeout` (`None`). A zero timeout
    /// takes a message only if one is already there (Erlang's `after 0`).
    pub async fn receive_timeout(&mut self, timeout: Duration) -> Option<Term> {
        if let Some(msg) = crate::timers::within(timeout, self.mailbox.receive()).await {
            return Some(msg);
        }
        // The timeout only wins if there is really nothing to take (the receive may have been
        // yielding for fairness when the timer fired).
        self.mailbox.try_receive()
    }

    /// Waits for the oldest message `accept` returns `true` for and takes it; the messages it
    /// skips stay in the mailbox in their order (selective receive).
    pub fn receive_match<P>(&mut self, accept: P) -> ReceiveMatch<'_, P>
    where
        P: FnMut(&Term) -> bool,
    {
        self.mailbox.receive_match(accept)
    }

    /// Selective receive that gives up after `timeout` (`None`), leaving the mailbox unchanged.
    pub async fn receive_match_timeout<P>(&mut self, mut accept: P, timeout: Duration) -> Option<Term>
    where
        P: FnMut(&Term) -> bool,
    {
        if let Some(msg) = crate::timers::within(timeout, self.mailbox.receive_match(&mut accept)).await {
            return Some(msg);
        }
        self.mailbox.try_receive_match(accept)
    }

    /// Takes the oldest message `accept` returns `true` for, without waiting.
    pub fn try_receive_match(&mut self, accept: impl FnMut(&Term) -> bool) -> Option<Term> {
        self.mailbox.try_receive_match(accept)
    }

    /// Takes the oldest message if there is one, without waiting.
    pub fn try_receive(&mut self) -> Option<Term> {
        self.mailbox.try_receive()
    }

    /// Number of messages waiting in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.mailbox.len()
    }

    /// Sets the most messages this process's mailbox may hold (`None`: no limit) and returns the
    /// previous setting, like Erlang's `process_flag(max_heap_size, ..)` for the mailbox. A
    /// message (or `{:EXIT, ..}`, `:DOWN`, `:nodedown`) that arrives while the mailbox holds the
    /// limit is dropped and the process is killed with `{:mailbox_overflow, limit}`: untrappable,
    /// its links and monitors fire with that reason, and a warning is logged. It holds for
    /// messages from other nodes too (the connection goes on delivering to other processes).
    /// `Some(0)` means any message kills. A mailbox already over a lower new limit is not
    /// trimmed; the next message kills. New processes start with their node's default
    /// ([`Node::set_default_mailbox_limit`](crate::Node::set_default_mailbox_limit),
    /// `SNOW_MAILBOX_LIMIT`), off unless set.
    pub fn set_mailbox_limit(&self, limit: Option<usize>) -> Option<usize> {
        self.entry().set_mailbox_limit(limit)
    }

    /// This process's mailbox limit (`None`: no limit); see
    /// [`set_mailbox_limit`](Process::set_mailbox_limit).
    pub fn mailbox_limit(&self) -> Option<usize> {
        self.entry().mailbox_limit()
    }

    // ---- everything else -------------------------------------------------------------------

    /// This process's pid (`self()`).
    pub fn pid(&self) -> &Pid {
        self.entry().pid()
    }

    /// The runtime this process runs on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// A fresh reference (Erlang's `make_ref()`), e.g. to tag a request and match its reply.
    pub fn make_ref(&self) -> Ref {
        self.node.inner.table.make_ref()
    }

    /// Sends `msg` to `to`. Never blocks; sending to a dead pid does nothing (as in BEAM).
    /// Messages from one process to another arrive in the order they were sent.
    ///
    /// A message to another node is never dropped while the connection is up. If the connection's
    /// queue is over its budget, this process is suspended at its next `.await` until the queue
    /// has drained (as Erlang suspends a process sending to a busy distribution port); a process
    /// that goes on sending without awaiting until the queue reaches its hard ceiling exits with
    /// `{:send_queue_overflow, node}` (README, "Guarantees").
    pub fn send(&self, to: &Pid, msg: Term) {
        if self.entry().is_exiting() {
            return;
        }
        self.entry().backpressure(signals::send(&self.node.inner, Some(self.pid()), to, msg));
    }

    /// Sends `msg` to the process registered as `name` on this node.
    pub fn send_named(&self, name: &str, msg: Term) -> Result<(), SendError> {
        let state = &self.node.inner;
        let pid =
            state.registry.whereis(&state.table, name).ok_or_else(|| SendError::NotRegistered(name.to_owned()))?;
        self.send(&pid, msg);
        Ok(())
    }

    /// Sends `msg` to the process registered as `name` on `node` (Erlang's `{Name, Node} ! Msg`).
    /// On this node it is [`send_named`](Process::send_named), with its error. For another node
    /// the message goes through the distribution layer and, as in Erlang, never fails here: if
    /// nobody has the name there it is dropped there (monitor the name with
    /// [`monitor_name`](Process::monitor_name) to learn whether it exists). A node that is not
    /// distributed gives [`SendError::NotDistributed`].
    pub fn send_named_on(&self, name: &str, node: &NodeName, msg: Term) -> Result<(), SendError> {
        if node == self.node.name() {
            return self.send_named(name, msg);
        }
        let Some(dist) = self.node.inner.distribution() else { return Err(SendError::NotDistributed) };
        if !self.entry().is_exiting() {
            self.entry().backpressure(dist.send_named(Some(self.pid()), node, &Atom::new(name), msg));
        }
        Ok(())
    }

    /// Sends `msg` to `to`, waiting first while the connection to `to`'s node is over its byte
    /// budget (backpressure for bulk senders). For local pids it is [`Process::send`]. A message
    /// to a node that cannot be reached is dropped, as with `send`.
    ///
    /// [`Process::send`] never waits in the call: over the budget it still queues and suspends
    /// the process at its next `.await`. This method waits before queueing, so the queue never
    /// grows past the budget by more than one message, whatever the process does between sends.
    pub async fn send_async(&self, to: &Pid, msg: Term) {
        let mut msg = msg;
        loop {
            match self.try_send(to, msg) {
                Ok(()) => return,
                Err(TrySendError::Busy { msg: back, node }) => {
                    msg = back;
                    let Some(dist) = self.node.inner.distribution() else { return };
                    // Bounded: the writer drains the queue, or the connection is closed when its
                    // writes have stalled for a ticktime, which also ends the wait.
                    let room = std::future::poll_fn(|cx| dist.poll_room(&node, cx));
                    let waited = crate::timers::within(dist.ticktime(), room).await;
                    if waited.is_none() {
                        // Still busy after a whole ticktime: queue it anyway, with `send`'s rules.
                        self.send(to, msg);
                        return;
                    }
                }
            }
        }
    }

    /// Sends `msg` to `to` unless the connection to `to`'s node is over its byte budget, in which
    /// case the message comes back in [`TrySendError::Busy`]. Local pids never give `Busy`.
    pub fn try_send(&self, to: &Pid, msg: Term) -> Result<(), TrySendError> {
        if to.node() == self.node.name() || self.entry().is_exiting() {
            self.send(to, msg);
            return Ok(());
        }
        match self.node.inner.distribution() {
            Some(dist) => dist.try_send(self.pid(), to, msg),
            None => Ok(()),
        }
    }

    /// Sends an exit signal with `reason` to `to` (Erlang's `exit/2`). What the target does
    /// follows Erlang's rules: `:kill` kills it even if it traps exits (it then exits with
    /// `:killed`); `:normal` is ignored unless `to` is this process; a trapping target gets
    /// `{:EXIT, self, reason}`; any other reason makes it exit with that reason.
    pub fn send_exit(&self, to: &Pid, reason: Term) {
        if self.entry().is_exiting() {
            return;
        }
        self.entry().backpressure(signals::exit(&self.node.inner, self.pid(), to, reason, false));
    }

    /// Ends this process with `reason` (Erlang's `exit/1`). The returned future never completes:
    /// the process stops at this `.await`.
    pub fn exit(&self, reason: Term) -> impl Future<Output = ()> + Send + 'static {
        self.entry().exit_with(reason);
        // The task's exit watch was woken by `exit_with` and is polled before the body.
        std::future::poll_fn(|_| Poll::<()>::Pending)
    }

    /// Sets whether exit signals become `{:EXIT, from, reason}` messages instead of killing this
    /// process (except the untrappable `:kill`). Returns the previous setting.
    pub fn trap_exit(&self, on: bool) -> bool {
        self.entry().set_trap_exit(on)
    }

    /// Links this process with `to`: when either exits, the other gets an exit signal.
    ///
    /// Linking to a process that does not exist (dead, stale creation, or a remote node without
    /// distribution) behaves as in Erlang: a process trapping exits gets `{:EXIT, to, :noproc}`
    /// and `Ok(())`; otherwise the call fails with [`LinkError::NoProc`], the counterpart of
    /// Erlang raising `noproc`. Linking twice or to itself does nothing.
    pub fn link(&self, to: &Pid) -> Result<(), LinkError> {
        if signals::link(&self.node.inner, self.entry(), to) || self.entry().link_failed(to) {
            Ok(())
        } else {
            Err(LinkError::NoProc(to.clone()))
        }
    }

    /// Removes the link with `to`, if any. After it returns, no exit signal from that link
    /// reaches this process (one already turned into an `{:EXIT, ..}` message stays in the
    /// mailbox, as in Erlang).
    pub fn unlink(&self, to: &Pid) {
        signals::unlink(&self.node.inner, self.entry(), to);
    }

    /// Monitors `target`: when it exits this process gets `{:DOWN, ref, target, reason}`. Each
    /// call makes a new, independent monitor. A target that does not exist gives an immediate
    /// `{:DOWN, ref, target, :noproc}`.
    pub fn monitor(&self, target: &Pid) -> Ref {
        signals::monitor(&self.node.inner, self.entry(), Monitored::Pid(target.clone()))
    }

    /// Monitors the process registered as `name` on `node` (Erlang's
    /// `monitor(process, {Name, Node})`; `node` may be this node). The name is resolved once, by
    /// the node that holds it, when the monitor is set up; when that process exits this process
    /// gets `{:DOWN, ref, {name, node}, reason}`. No process under that name gives an immediate
    /// `{:DOWN, ref, {name, node}, :noproc}`, a lost connection `:noconnection`.
    pub fn monitor_name(&self, name: &str, node: &NodeName) -> Ref {
        let target = Monitored::Name { name: Atom::new(name), node: node.clone() };
        signals::monitor(&self.node.inner, self.entry(), target)
    }

    /// Cancels a monitor. Returns `true` if it was still active (no `:DOWN` was delivered).
    /// With `flush`, a `:DOWN` message of this monitor already in the mailbox is removed too,
    /// so after `demonitor(r, true)` no message about `r` is ever seen.
    pub fn demonitor(&mut self, reference: &Ref, flush: bool) -> bool {
        let active = match self.entry().take_monitoring(reference) {
            Some(monitoring) => {
                let verdict = signals::forget_watcher(&self.node.inner, self.pid(), &monitoring, reference);
                self.entry().backpressure(verdict);
                true
            }
            None => false,
        };
        if flush && !active {
            self.mailbox.remove_matching(|m| is_down_for(m, reference));
        }
        active
    }

    /// Watches `node` (Erlang's `monitor_node(Node, true)`): this process gets one
    /// `{:nodedown, node}` when the connection to it is lost, or at once if it cannot be connected
    /// (the call starts a connection if there is none) or this node is not distributed. Each call
    /// adds one watch; the watches of a process that exits are dropped.
    pub fn monitor_node(&self, node: &NodeName) {
        match self.node.inner.distribution() {
            Some(dist) => dist.monitor_node(self.pid(), node),
            None => self.entry().deliver(Term::tuple([Term::atom("nodedown"), Term::Atom(node.as_atom().clone())])),
        }
    }

    /// Removes one watch made by [`Process::monitor_node`]. Returns whether there was one.
    pub fn demonitor_node(&self, node: &NodeName) -> bool {
        self.node.inner.distribution().is_some_and(|dist| dist.demonitor_node(self.pid(), node))
    }

    /// Subscribes this process to every node's ups and downs (Erlang's
    /// `net_kernel:monitor_nodes(true)`): `{:nodeup, node}` when a connection comes up (before
    /// anything that node sends on it), `{:nodedown, node}` when one is lost (after everything it
    /// delivered), until called again with `false` or the process exits.
    pub fn monitor_nodes(&self, on: bool) {
        if let Some(dist) = self.node.inner.distribution() {
            dist.monitor_nodes(self.pid(), on);
        }
    }

    /// Spawns the function `function` that `node` registered with
    /// [`Node::register_spawnable`], with `args`, and returns the new pid (Erlang's
    /// `spawn(Node, M, F, A)` restricted to an allow-list; closures never cross the wire).
    pub async fn spawn_remote(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
    ) -> Result<Pid, RemoteSpawnError> {
        self.spawn_request(node, function, args, false, false).await.map(|(pid, _)| pid)
    }

    /// [`Process::spawn_remote`] with a link between this process and the new one, made before
    /// the new process runs (Erlang's `spawn_link/4`): an exit of either reaches the other, also
    /// one at the very start of the child.
    pub async fn spawn_link_remote(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
    ) -> Result<Pid, RemoteSpawnError> {
        self.spawn_request(node, function, args, true, false).await.map(|(pid, _)| pid)
    }

    /// [`Process::spawn_remote`] with a monitor on the new process, set up before it runs
    /// (Erlang's `spawn_monitor/4`): `{:DOWN, ref, pid, reason}` arrives when it exits, with its
    /// real reason even if it exits at once, or `:noconnection` if its node is lost.
    pub async fn spawn_monitor_remote(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
    ) -> Result<(Pid, Ref), RemoteSpawnError> {
        self.spawn_request(node, function, args, false, true).await
    }

    async fn spawn_request(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
        link: bool,
        monitor: bool,
    ) -> Result<(Pid, Ref), RemoteSpawnError> {
        let dist = self.node.inner.distribution().ok_or(DistError::NotDistributed)?;
        dist.spawn_request(self.pid(), node, &Atom::new(function), args, link, monitor).await
    }

    /// Spawns the function `function` of this node's own allow-list with `args`, linked to this
    /// process before it runs: a remote `spawn_link` aimed at this node, for a supervisor whose
    /// candidate nodes include its own.
    pub(crate) fn spawn_link_allowed(&self, function: &str, args: Term) -> Result<Pid, SpawnError> {
        let body = self
            .node
            .inner
            .spawnable(&Atom::new(function))
            .ok_or_else(|| SpawnError::NotSpawnable(function.to_owned()))?;
        let child = self.node.inner.table.prepare();
        signals::prelink(self.entry(), &child);
        Ok(body.start(&self.node, child, args))
    }

    // ---- remote calls -------------------------------------------------------------------------

    /// Runs `function`, allow-listed on `node` with [`Node::register_spawnable`], with `args` there
    /// and returns its value (Erlang's `erpc:call/5`; README, "Remote calls"). The function runs
    /// in a process of its own on `node`; its return value is the result, any other end of that
    /// process is [`CallError::Exit`] with its reason (a panic: `{:panic, "message"}`).
    ///
    /// After `timeout` the call fails with [`CallError::Timeout`] and the process running the
    /// function is killed. Nothing about the call ever reaches this process's mailbox, not even a
    /// result that arrives after the timeout. If this process exits while it waits, the function's
    /// process is killed too. `node` may be this node.
    pub async fn call(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        super::node_calls::call(&self.node, Some(self.pid()), node, function, args, timeout).await
    }

    /// Starts `function` (allow-listed on `node`) with `args` there, without waiting for it
    /// (Erlang's `erpc:cast/4`). Returns once the request is on its way: after connecting, so
    /// that an unreachable node or one without calls is an error here (Erlang's `cast` never
    /// fails). A function the node does not allow is refused there silently, as in Erlang.
    pub async fn cast(&self, node: &NodeName, function: &str, args: Vec<Term>) -> Result<(), CallError> {
        super::node_calls::cast(&self.node, Some(self.pid()), node, function, args).await
    }

    /// [`Process::call`] on every node of `nodes` at once (Erlang's `erpc:multicall/5`): one
    /// result per node, in the order of `nodes`, all within `timeout`.
    pub async fn multicall(
        &self,
        nodes: &[NodeName],
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Vec<Result<Term, CallError>> {
        super::node_calls::multicall(&self.node, Some(self.pid()), nodes, function, args, timeout).await
    }

    /// Spawns the allow-listed `body` with `args` as a call linked to and monitored by this
    /// process: returns the child and the monitor's reference, which is also the call's (for
    /// local calls).
    pub(crate) fn spawn_call_child(&self, body: &dyn AllowListed, args: Term) -> (Pid, Ref) {
        let child = self.node.inner.table.prepare();
        signals::prelink(self.entry(), &child);
        let reference = signals::premonitor(&self.node.inner, self.entry(), &child);
        (body.start_call(&self.node, child, args, reference.clone()), reference)
    }

    // ---- aliases ------------------------------------------------------------------------------

    /// A new alias of this process (Erlang's `alias()`): a reference that other processes, here
    /// or on other nodes, send to with [`Process::send_alias`] / [`Node::send_alias`]. Messages
    /// sent to it land in this mailbox until [`Process::unalias`] or this process exits; after
    /// that they are dropped. Give it out in place of the pid to accept replies to one request
    /// only, and stop them when done.
    pub fn alias(&self) -> Ref {
        self.alias_with(AliasMode::Explicit)
    }

    /// A new alias with `mode` ([`AliasMode::ReplyOnce`]: deactivated by the first message sent
    /// to it, Erlang's `alias([reply])`).
    pub fn alias_with(&self, mode: AliasMode) -> Ref {
        let alias = self.make_ref();
        self.node.inner.aliases.add(self.pid(), &alias, mode);
        alias
    }

    /// Deactivates an alias of this process (Erlang's `unalias/1`): whether it was active.
    /// Messages sent to it from then on are dropped; those already in the mailbox stay.
    pub fn unalias(&self, alias: &Ref) -> bool {
        self.node.inner.aliases.remove(self.pid(), alias)
    }

    /// Sends `msg` to the process whose alias `alias` is, here or on another node (Erlang's
    /// `Alias ! Msg`). Never fails: a message to an inactive alias, to a reference that is no
    /// alias, or to a node without aliases is dropped, as a message to a dead pid is. Ordered
    /// with this process's other messages to the alias's owner; backpressure as [`Process::send`].
    pub fn send_alias(&self, alias: &Ref, msg: Term) {
        if self.entry().is_exiting() {
            return;
        }
        self.entry().backpressure(self.node.inner.send_alias(Some(self.pid()), alias, msg));
    }

    /// Spawns a process (see [`Node::spawn`]).
    pub fn spawn<F, Fut>(&self, body: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        start(&self.node, self.node.inner.table.prepare(), body)
    }

    /// Spawns a process linked to this one; the link exists before the new process runs.
    pub fn spawn_link<F, Fut>(&self, body: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let child = self.node.inner.table.prepare();
        signals::prelink(self.entry(), &child);
        start(&self.node, child, body)
    }

    /// Spawns a process monitored by this one; the monitor exists before the new process runs.
    pub fn spawn_monitor<F, Fut>(&self, body: F) -> (Pid, Ref)
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let child = self.node.inner.table.prepare();
        let reference = signals::premonitor(&self.node.inner, self.entry(), &child);
        (start(&self.node, child, body), reference)
    }

    /// Registers this process under `name` (see [`Node::register`]).
    pub fn register(&self, name: &str) -> Result<(), RegisterError> {
        let state = &self.node.inner;
        state.registry.register(&state.table, name, self.pid())
    }

    /// Sends `msg` to `to` after `delay` (see [`Node::send_after`]).
    pub fn send_after(&self, to: &Pid, delay: Duration, msg: Term) -> TimerRef {
        signals::send_after(&self.node.inner, to, delay, msg)
    }

    /// The registered name of this process, if any.
    pub fn registered_name(&self) -> Option<Atom> {
        self.entry().name()
    }
}

/// A function run as a process body with arguments: what [`Node::register_spawnable`] puts on the
/// allow-list of remote spawn, and what a supervisor's child spec starts.
pub type Spawnable =
    Arc<dyn Fn(Process, Term) -> Pin<Box<dyn Future<Output = Term> + Send + 'static>> + Send + Sync + 'static>;

impl AllowListed for Spawnable {
    fn start(&self, node: &Node, entry: Arc<ProcessEntry>, args: Term) -> Pid {
        let body = self.clone();
        start(node, entry, move |p| body(p, args))
    }

    fn start_call(&self, node: &Node, entry: Arc<ProcessEntry>, args: Term, reference: Ref) -> Pid {
        let body = self.clone();
        start(node, entry, move |p| {
            let run = body(p, args);
            async move { crate::reason::call_return(&reference, run.await) }
        })
    }
}

/// Starts the prepared process `entry` running `body`, which gets the process's handle; returns
/// its pid.
pub(crate) fn start<F, Fut>(node: &Node, entry: Arc<ProcessEntry>, body: F) -> Pid
where
    F: FnOnce(Process) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: IntoExitReason,
{
    let pid = entry.pid().clone();
    node.inner.table.insert(entry.clone());
    let fut = body(Process::new(node.clone(), entry.clone()));
    super::lifecycle::launch(node.inner.clone(), entry, fut);
    pid
}

/// Lets the other processes of this scheduler thread run before this one goes on (Erlang's
/// `erlang:yield/0`). Like every `.await` it is a suspension point: a process that a congested
/// connection asked to wait waits here.
pub async fn yield_now() {
    futures_lite::future::yield_now().await
}

/// Whether `msg` is `{:DOWN, reference, _, _}`.
fn is_down_for(msg: &Term, reference: &Ref) -> bool {
    matches!(msg.as_tuple(), Some([tag, Term::Ref(r), _, _]) if r == reference && tag.is_atom("DOWN"))
}
