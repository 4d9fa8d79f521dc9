//! The seam between local processes and distribution (DESIGN.md 3.3).
//!
//! Two small traits, one per direction:
//!
//! * [`LocalProcesses`]: what a distribution layer asks of the local runtime. It delivers what
//!   arrives from other nodes (messages, exit signals, `:down`s), records remote links and
//!   monitors on local processes, resolves registered names, spawns allow-listed functions, and
//!   reports a lost connection. [`Node`] implements it; a language runtime with its own
//!   scheduler can implement it instead, and the distribution layer does not notice.
//! * [`RemoteRouter`]: what the local runtime hands to the distribution layer. Every operation on a
//!   pid of another node goes through it, including what happens when a local process with remote
//!   links or monitors exits ([`RemoteRouter::exit`] with `linked = true`, [`RemoteRouter::down`]):
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
use crate::proc::Status;
use crate::process::Process;
use crate::reason;
use crate::signals::{deliver_down_local, deliver_exit_local, deliver_message_local};

/// Operations on pids of other nodes, provided by the distribution layer.
///
/// Called from any thread, often while a process is in the middle of a send: implementations must
/// not block (queue the frame and return). Per sender-receiver order must be kept: calls made for
/// the same `from` to the same `to` must reach the peer in call order.
pub trait RemoteRouter: Send + Sync {
    /// A message from `from` (`None`: code outside any process) to the remote `to`.
    fn send(&self, from: Option<&Pid>, to: &Pid, msg: Term);
    /// A message to the process registered as `name` on `node`.
    fn send_named(&self, from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term);
    /// The local `from` linked itself to the remote `to`. If `to` turns out not to exist, deliver
    /// `deliver_exit(to, from, :noproc, true)`; if the connection fails, the same with
    /// `:noconnection`.
    fn link(&self, from: &Pid, to: &Pid);
    /// The local `from` removed its link to the remote `to`.
    fn unlink(&self, from: &Pid, to: &Pid);
    /// An exit signal from the local `from` to the remote `to`. `linked` is true when `from`
    /// exited and `to` was linked to it (the exit notification), false for `exit/2`.
    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool);
    /// The local `watcher` monitors the remote `target` with `reference`. If `target` does not
    /// exist, deliver `deliver_down(watcher, reference, target, :noproc)`; on connection loss,
    /// the same with `:noconnection` (or call [`LocalProcesses::connection_lost`]).
    fn monitor(&self, watcher: &Pid, target: &Pid, reference: &Ref);
    /// The local `watcher` cancelled its monitor `reference` on the remote `target`.
    fn demonitor(&self, watcher: &Pid, target: &Pid, reference: &Ref);
    /// The local `target`, monitored by the remote `watcher` with `reference`, exited.
    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term);
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
    /// Delivers `{:down, reference, target, reason}` to the local `watcher`, if it still holds
    /// that monitor.
    fn deliver_down(&self, watcher: &Pid, reference: &Ref, target: &Pid, reason: Term);
    /// Records that the remote `remote` linked itself to the local `local`. `false` if `local`
    /// does not exist: answer the peer with an exit signal `:noproc`.
    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool;
    /// The remote `remote` removed its link to the local `local`.
    fn remove_remote_link(&self, local: &Pid, remote: &Pid);
    /// Records that the remote `watcher` monitors the local `target` with `reference`. `false` if
    /// `target` does not exist: answer the peer with a `:down` carrying `:noproc`.
    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool;
    /// The remote watcher cancelled its monitor `reference` on the local `target`.
    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref);
    /// The live local process registered as `name`.
    fn resolve_name(&self, name: &str) -> Option<Pid>;
    /// Spawns the allow-listed function `function` with `args`. With `link_to`, the new process is
    /// linked to that (remote) pid before it runs (remote `spawn_link`).
    ///
    /// `before_start` gets the new pid before the process runs: queue the spawn reply there, so
    /// that it reaches the requester before anything the new process sends or its exit signal
    /// (the requester's node records its side of the link when the reply arrives).
    fn spawn_registered(
        &self,
        function: &str,
        args: Term,
        link_to: Option<&Pid>,
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

    fn deliver_down(&self, watcher: &Pid, reference: &Ref, target: &Pid, reason: Term) {
        if let Route::Local(p) = self.route(watcher) {
            deliver_down_local(&p, reference, target, reason);
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

    fn resolve_name(&self, name: &str) -> Option<Pid> {
        self.whereis(name)
    }

    fn spawn_registered(
        &self,
        function: &str,
        args: Term,
        link_to: Option<&Pid>,
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
        if let Some(remote) = link_to {
            child.lock().rel().links.insert(remote.clone());
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
                let downs: Vec<(Ref, Pid)> = rel
                    .monitoring
                    .iter()
                    .filter(|(_, target)| target.node() == node)
                    .map(|(r, t)| (r.clone(), t.clone()))
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
