//! The seam between local processes and distribution (DESIGN.md 3.3).
//!
//! Two small traits, one per direction:
//!
//! * [`LocalProcesses`]: what a distribution layer asks of the local runtime. It delivers what
//!   arrives from other nodes (messages, exit signals, `:DOWN`s), records remote links and
//!   monitors on local processes, resolves registered names, spawns allow-listed functions, and
//!   reports a lost connection. [`Node`] implements it; a language runtime with its own
//!   scheduler can implement it instead, and the distribution layer does not notice.
//! * [`RemoteRouter`]: what the local runtime hands to the distribution layer. Every operation on a
//!   pid of another node goes through it, including what happens when a local process with remote
//!   links or monitors exits ([`RemoteRouter::exit`] with `linked = true`, [`RemoteRouter::DOWN`]):
//!   that is how distribution learns of local exits.
//!
//! Without a router (a node that is not distributed), remote pids behave like dead ones: sends are
//! dropped, links fail with `:noproc`, monitors fire `:noproc` at once. (BEAM would report
//! `:noconnection` for a node it cannot reach; a node that is not distributed has no connection to
//! lose, so we report the pid as non-existent.)

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use crate::error::SpawnError;
use crate::node::{Node, Route};
use crate::proc::{Monitoring, Status};
use crate::process::Process;
use crate::reason;
use crate::signals::{deliver_down_local, deliver_exit_local, deliver_message_local};

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
    fn poll_room(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()>;
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

/// Operations on pids of other nodes, provided by the distribution layer.
///
/// Called from any thread, often while a process is in the middle of a send: implementations must
/// not block (queue the frame and return). Per sender-receiver order must be kept: calls made for
/// the same `from` to the same `to` must reach the peer in call order. Signals (everything but
/// messages) are never refused; messages from a process are refused only with
/// [`Backpressure::Overflow`], and messages from outside any process (`from == None`) never are.
pub trait RemoteRouter: Send + Sync {
    /// A message from `from` (`None`: code outside any process) to the remote `to`.
    fn send(&self, from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure;
    /// A message to the process registered as `name` on `node`.
    fn send_named(&self, from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term) -> Backpressure;
    /// The local `from` linked itself to the remote `to`. If `to` turns out not to exist, deliver
    /// `deliver_exit(to, from, :noproc, true)`; if the connection fails, the same with
    /// `:noconnection`.
    fn link(&self, from: &Pid, to: &Pid) -> Backpressure;
    /// The local `from` removed its link to the remote `to`.
    fn unlink(&self, from: &Pid, to: &Pid) -> Backpressure;
    /// An exit signal from the local `from` to the remote `to`. `linked` is true when `from`
    /// exited and `to` was linked to it (the exit notification), false for `exit/2`.
    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure;
    /// The local `watcher` monitors `target` on another node with `reference`. If the target does
    /// not exist, deliver `deliver_down(watcher, reference, target, :noproc)`; on connection loss,
    /// the same with `:noconnection` (or call [`LocalProcesses::connection_lost`]).
    fn monitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure;
    /// The local `watcher` cancelled its monitor `reference` on the remote `target`.
    fn demonitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure;
    /// The local `target`, monitored by the remote `watcher` with `reference`, exited.
    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term);
    /// The local `pid`, which had asked the distribution layer for something that outlives a call
    /// (node monitors, a remote spawn in flight), exited: forget it.
    fn process_exited(&self, pid: &Pid);
    /// The router as `Any`, so the layer that installed it can find its own state from a [`Node`]
    /// (`None` unless the implementation opts in; the distribution driver does).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A function other nodes may spawn by name: it gets the new process and the spawn arguments.
pub type Spawnable =
    Arc<dyn Fn(Process, Term) -> Pin<Box<dyn Future<Output = Term> + Send + 'static>> + Send + Sync + 'static>;

/// What a distribution layer needs from the processes of its node.
///
/// Every method is non-blocking and may be called from any thread. Pids passed as "local" that
/// are dead, unknown or of an older creation are treated as dead processes, never as errors.
pub trait LocalProcesses: Send + Sync {
    /// The name of the node these processes belong to.
    fn node_name(&self) -> &NodeName;
    /// The node's creation.
    fn creation(&self) -> u32;
    /// Delivers a message that arrived for the local `to`; dropped if `to` is dead.
    fn deliver_message(&self, to: &Pid, msg: Term);
    /// Delivers a message to the local process registered as `name`; `false` if none is.
    fn deliver_named(&self, name: &str, msg: Term) -> bool;
    /// Delivers an exit signal from the remote `from` to the local `to`, with BEAM's rules
    /// (see [`crate::signals`]); `linked` says it reports the end of a link.
    fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool);
    /// Delivers `{:DOWN, reference, item, reason}` to the local `watcher`, if it still holds that
    /// monitor and `reported` is what it monitors (`item` is the pid or `{name, node}` the
    /// monitor was set up with). A report about another process, or from another node than the
    /// monitored one, is ignored: a peer cannot fire a monitor it does not hold.
    fn deliver_down(&self, watcher: &Pid, reference: &Ref, reported: &Monitored, reason: Term);
    /// Records that the remote `remote` linked itself to the local `local`. `false` if `local`
    /// does not exist: answer the peer with an exit signal `:noproc`.
    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool;
    /// The remote `remote` removed its link to the local `local`.
    fn remove_remote_link(&self, local: &Pid, remote: &Pid);
    /// Records that the remote `watcher` monitors the local `target` with `reference`. `false` if
    /// `target` does not exist: answer the peer with a `:DOWN` carrying `:noproc`.
    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool;
    /// Records that the local `watcher` holds the monitor `reference` on `target` (of another
    /// node), so that a `:DOWN` for it is accepted; used when the monitor is set up by a remote
    /// spawn. `false` if `watcher` does not exist.
    fn add_monitor(&self, watcher: &Pid, reference: &Ref, target: Monitored) -> bool;
    /// Removes a monitor the local `watcher` holds, without any `:DOWN` (the remote spawn that
    /// would have set it up failed). Returns whether it was held.
    fn remove_monitor(&self, watcher: &Pid, reference: &Ref) -> bool;
    /// Asks to be told, through [`RemoteRouter::process_exited`], when the local `pid` exits.
    /// `false` if it does not exist (it will never be told: forget it now).
    fn notify_exit(&self, pid: &Pid) -> bool;
    /// The remote watcher cancelled its monitor `reference` on the local `target`.
    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref);
    /// The live local process registered as `name`.
    fn resolve_name(&self, name: &str) -> Option<Pid>;
    /// Spawns the allow-listed function `function` with `args`. With `link_to`, the new process is
    /// linked to that (remote) pid before it runs (remote `spawn_link`); with `monitor_by`, that
    /// (remote) watcher monitors it with that reference before it runs (remote `spawn_monitor`),
    /// so even a child that exits at once reports its real exit reason.
    ///
    /// `before_start` gets the new pid before the process runs: queue the spawn reply there, so
    /// that it reaches the requester before anything the new process sends or its exit signal
    /// (the requester's node records its side of the link when the reply arrives).
    fn spawn_registered(
        &self,
        function: &str,
        args: Term,
        link_to: Option<&Pid>,
        monitor_by: Option<(&Pid, &Ref)>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError>;
    /// The connection to `node` is gone: every local process linked to a process there gets an
    /// exit signal `:noconnection`, every monitor on a process there fires `:noconnection`, and
    /// monitors held by processes there on local ones are dropped.
    fn connection_lost(&self, node: &NodeName);
}

impl Node {
    /// Allows other nodes to spawn `function` by `name` (remote spawn runs only allow-listed
    /// functions; closures never cross the wire). Registering a name again replaces it.
    pub fn register_spawnable<F, Fut>(&self, name: &str, function: F)
    where
        F: Fn(Process, Term) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Term> + Send + 'static,
    {
        let boxed: Spawnable = Arc::new(move |p, args| Box::pin(function(p, args)));
        self.inner.spawnables.write().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned(), boxed);
    }
}

impl LocalProcesses for Node {
    fn node_name(&self) -> &NodeName {
        self.name()
    }

    fn creation(&self) -> u32 {
        Node::creation(self)
    }

    fn deliver_message(&self, to: &Pid, msg: Term) {
        if let Route::Local(p) = self.route(to) {
            deliver_message_local(&p, msg);
        }
    }

    fn deliver_named(&self, name: &str, msg: Term) -> bool {
        match self.whereis(name) {
            Some(pid) => {
                self.deliver_message(&pid, msg);
                true
            }
            None => false,
        }
    }

    fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) {
        if let Route::Local(p) = self.route(to) {
            deliver_exit_local(&p, from, reason, linked);
        }
    }

    fn deliver_down(&self, watcher: &Pid, reference: &Ref, reported: &Monitored, reason: Term) {
        if let Route::Local(p) = self.route(watcher) {
            deliver_down_local(&p, reference, reported, reason);
        }
    }

    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool {
        let Route::Local(p) = self.route(local) else { return false };
        let mut st = p.lock();
        if !st.accepts_relations() {
            return false;
        }
        st.rel().links.insert(remote.clone());
        true
    }

    fn remove_remote_link(&self, local: &Pid, remote: &Pid) {
        if let Route::Local(p) = self.route(local) {
            if let Some(rel) = p.lock().rel_opt() {
                rel.links.remove(remote);
            }
        }
    }

    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool {
        let Route::Local(p) = self.route(target) else { return false };
        let mut st = p.lock();
        if !st.accepts_relations() {
            return false;
        }
        st.rel().watchers.push((reference.clone(), watcher.clone()));
        true
    }

    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref) {
        if let Route::Local(p) = self.route(target) {
            if let Some(rel) = p.lock().rel_opt() {
                rel.watchers.retain(|(r, _)| r != reference);
            }
        }
    }

    fn add_monitor(&self, watcher: &Pid, reference: &Ref, target: Monitored) -> bool {
        let Route::Local(p) = self.route(watcher) else { return false };
        let mut st = p.lock();
        if st.status != Status::Running {
            return false;
        }
        st.rel().monitoring.insert(reference.clone(), Monitoring::of(target));
        true
    }

    fn remove_monitor(&self, watcher: &Pid, reference: &Ref) -> bool {
        let Route::Local(p) = self.route(watcher) else { return false };
        let mut st = p.lock();
        st.rel_opt().is_some_and(|rel| rel.monitoring.remove(reference).is_some())
    }

    fn notify_exit(&self, pid: &Pid) -> bool {
        let Route::Local(p) = self.route(pid) else { return false };
        let mut st = p.lock();
        if !st.accepts_relations() {
            return false;
        }
        st.rel().tell_router_on_exit = true;
        true
    }

    fn resolve_name(&self, name: &str) -> Option<Pid> {
        self.whereis(name)
    }

    fn spawn_registered(
        &self,
        function: &str,
        args: Term,
        link_to: Option<&Pid>,
        monitor_by: Option<(&Pid, &Ref)>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        let body = self
            .inner
            .spawnables
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(function)
            .cloned()
            .ok_or_else(|| SpawnError::NotSpawnable(function.to_owned()))?;
        let child = self.prepare();
        {
            let mut st = child.lock();
            if let Some(remote) = link_to {
                st.rel().links.insert(remote.clone());
            }
            if let Some((watcher, reference)) = monitor_by {
                st.rel().watchers.push((reference.clone(), watcher.clone()));
            }
        }
        before_start(&child.pid);
        Ok(self.start(child, move |p| body(p, args)))
    }

    fn connection_lost(&self, node: &NodeName) {
        let reason = reason::noconnection();
        for p in self.all_processes() {
            let (links, downs) = {
                let mut st = p.lock();
                if st.status == Status::Dead {
                    continue;
                }
                let Some(rel) = st.rel_opt() else { continue };
                rel.watchers.retain(|(_, watcher)| watcher.node() != node);
                let links: Vec<Pid> = rel.links.iter().filter(|l| l.node() == node).cloned().collect();
                let downs: Vec<(Ref, Monitored)> = rel
                    .monitoring
                    .iter()
                    .filter(|(_, m)| m.target.node() == node)
                    .map(|(r, m)| (r.clone(), m.target.clone()))
                    .collect();
                (links, downs)
            };
            for (reference, target) in downs {
                deliver_down_local(&p, &reference, &target, reason.clone());
            }
            for remote in links {
                deliver_exit_local(&p, &remote, reason.clone(), true);
            }
        }
        log::info!("{}: connection to {node} lost; links and monitors fired with :noconnection", self.name());
    }
}
