//! The distribution layer as its host sees it: the [`Distribution`] implementation. Every
//! operation on a pid of another node becomes a control message queued for that node, on the
//! sending process's lane (per sender-receiver FIFO), connecting on demand; the node-level
//! operations (connect, node monitors, remote spawn) are here too.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use snow_shared::dist::control::{Control, MonitorTarget, Outgoing, SpawnOpts};
use snow_shared::dist::Flags;
use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::abandon::UnlessDone;
use super::link::Pushed;
use super::state::{frame_for, sender_lane, Driver, Origin, SpawnWait};
use crate::sync::lock;

use crate::error::{CallError, DistError, GlobalError, GroupError, RemoteSpawnError, TrySendError};
use crate::seam::{Backpressure, BoxFuture, Cluster, Distribution, Monitored, ScopeMembers};

/// The distribution layer of one node: a handle on the driver state.
pub(crate) struct Service(pub Arc<Driver>);

/// Longest a shutdown waits for the connections to write what they queued before closing them.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

impl Service {
    fn runtime_pid(&self) -> Pid {
        Pid::new(self.0.name.clone(), 0, self.0.creation)
    }

    /// Queues a signal a process sent.
    fn signal(&self, node: &NodeName, msg: Control) -> Backpressure {
        self.0.route(node, &msg, Origin::Signal { by_process: true })
    }

    /// How long [`Distribution::connect`] waits for an attempt, retries included.
    pub(crate) fn connect_deadline(&self) -> Duration {
        let opts = &self.0.opts;
        (opts.connect_timeout + opts.handshake_timeout) * opts.connect_attempts + Duration::from_secs(5)
    }
}

/// How a monitor's target travels: the node is the connection's, only the pid or name goes.
fn wire_target(target: &Monitored) -> MonitorTarget {
    match target {
        Monitored::Pid(pid) => MonitorTarget::Pid(pid.clone()),
        Monitored::Name { name, .. } => MonitorTarget::Name(name.clone()),
    }
}

fn nodedown(node: &NodeName) -> Term {
    Term::tuple([Term::atom("nodedown"), Term::Atom(node.as_atom().clone())])
}

impl Distribution for Service {
    fn send(&self, from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure {
        // Encoded from the borrowed parts: no `Control`, no pid clones on the hot path.
        let runtime;
        let (from, origin) = match from {
            Some(pid) => (pid, Origin::Process),
            None => {
                runtime = self.runtime_pid();
                (&runtime, Origin::Runtime)
            }
        };
        self.0.route_message(to.node(), sender_lane(from), Outgoing::Send { from, to, msg: &msg }, origin)
    }

    fn send_named(&self, from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term) -> Backpressure {
        let origin = if from.is_some() { Origin::Process } else { Origin::Runtime };
        let from = from.cloned().unwrap_or_else(|| self.runtime_pid());
        self.0.route(node, &Control::RegSend { from, name: name.clone(), msg }, origin)
    }

    fn try_send(&self, from: &Pid, to: &Pid, msg: Term) -> Result<(), TrySendError> {
        let dist = &self.0;
        let node = to.node();
        let (busy, up) = {
            let peers = lock(&dist.peers);
            let busy = peers.pending_bytes(node).is_some_and(|bytes| bytes >= dist.opts.byte_budget);
            (busy, peers.connection(node).cloned())
        };
        if busy {
            return Err(TrySendError::Busy { node: node.clone(), msg });
        }
        let Some(conn) = up else {
            // Connecting, or not yet: queued like any send (under the budget, so no backpressure).
            let _ = self.send(Some(from), to, msg);
            return Ok(());
        };
        // The connection is in hand: queue on it unless its queue is at the budget (one lock
        // for the check and the push). A closed connection drops the frame, as `send` would.
        let frame = frame_for(&*conn, Outgoing::Send { from, to, msg: &msg });
        match conn.push(sender_lane(from), frame, Some(dist.opts.byte_budget)) {
            Pushed::AtCeiling => Err(TrySendError::Busy { node: node.clone(), msg }),
            Pushed::Clear | Pushed::OverBudget | Pushed::Closed => Ok(()),
        }
    }

    fn poll_room(&self, node: &NodeName, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_room(node, cx)
    }

    fn link(&self, from: &Pid, to: &Pid) -> Backpressure {
        self.signal(to.node(), Control::Link { from: from.clone(), to: to.clone() })
    }

    fn unlink(&self, from: &Pid, to: &Pid) -> Backpressure {
        self.signal(to.node(), Control::Unlink { from: from.clone(), to: to.clone() })
    }

    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure {
        let (from, to) = (from.clone(), to.clone());
        let node = to.node().clone();
        let msg = if linked { Control::Exit { from, to, reason } } else { Control::Exit2 { from, to, reason } };
        self.signal(&node, msg)
    }

    fn monitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure {
        let msg = Control::Monitor { from: watcher.clone(), target: wire_target(target), reference: reference.clone() };
        self.signal(target.node(), msg)
    }

    fn demonitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure {
        let msg =
            Control::Demonitor { from: watcher.clone(), target: wire_target(target), reference: reference.clone() };
        self.signal(target.node(), msg)
    }

    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term) {
        let msg = Control::MonitorExit {
            from: MonitorTarget::Pid(target.clone()),
            to: watcher.clone(),
            reference: reference.clone(),
            reason,
        };
        let _ = self.0.route(watcher.node(), &msg, Origin::Signal { by_process: false });
    }

    fn process_exited(&self, pid: &Pid) {
        self.0.process_exited(pid);
    }

    fn is_alive(&self) -> bool {
        !self.0.closing.load(Ordering::Relaxed)
    }

    fn nodes(&self) -> Vec<NodeName> {
        self.0.connected()
    }

    fn listen_addr(&self) -> SocketAddr {
        self.0.listen_addr
    }

    fn ticktime(&self) -> Duration {
        self.0.opts.ticktime
    }

    fn connect(&self, node: &NodeName) -> BoxFuture<Result<(), DistError>> {
        let dist = self.0.clone();
        let node = node.clone();
        let deadline = self.connect_deadline();
        Box::pin(async move {
            if node == dist.name {
                return Ok(());
            }
            let Some(rx) = dist.ensure(&node, false, true) else { return Err(DistError::NotDistributed) };
            match dist.within(deadline, rx.recv()).await {
                Some(Ok(result)) => result,
                Some(Err(_)) => Err(DistError::ConnectionLost(node)),
                None => Err(DistError::Timeout(node)),
            }
        })
    }

    fn disconnect(&self, node: &NodeName) -> bool {
        match self.0.conn(node) {
            Some(conn) => {
                self.0.connection_down(&*conn, "disconnected by this node");
                true
            }
            None => false,
        }
    }

    fn shutdown(&self) -> BoxFuture<()> {
        let dist = self.0.clone();
        Box::pin(async move {
            // What processes sent before the shutdown leaves before the connections close (a
            // connection's writer runs a scheduling round after the send that woke it), within
            // SHUTDOWN_FLUSH: a peer that does not read cannot hold the shutdown up.
            let deadline = dist.runtime.now() + SHUTDOWN_FLUSH;
            while !dist.all_flushed() && dist.runtime.now() < deadline {
                dist.sleep(Duration::from_millis(1)).await;
            }
            dist.shutdown();
            // The listener, the snow-epmd keeper and the mesh task each report once when they stop.
            for _ in 0..3 {
                if dist.within(Duration::from_secs(5), dist.tasks_done.1.recv()).await.is_none() {
                    log::warn!("{}: a distribution task did not stop within 5 s", dist.name);
                    break;
                }
            }
            log::info!("{}: distribution stopped", dist.name);
        })
    }

    fn monitor_node(&self, watcher: &Pid, node: &NodeName) {
        let dist = &self.0;
        if node == &dist.name {
            return;
        }
        let Some(host) = dist.host() else { return };
        if dist.closing.load(Ordering::Relaxed) {
            host.deliver_message(watcher, nodedown(node));
            return;
        }
        if !host.notify_exit(watcher) {
            return;
        }
        lock(&dist.watch).watch(node, watcher);
        dist.ensure(node, true, false);
    }

    fn demonitor_node(&self, watcher: &Pid, node: &NodeName) -> bool {
        lock(&self.0.watch).unwatch(node, watcher)
    }

    fn monitor_nodes(&self, watcher: &Pid, on: bool) {
        if !on {
            lock(&self.0.watch).subscribe(watcher, false);
        } else if self.0.host().is_some_and(|host| host.notify_exit(watcher)) {
            lock(&self.0.watch).subscribe(watcher, true);
        }
    }

    fn spawn_request(
        &self,
        from: &Pid,
        node: &NodeName,
        function: &Atom,
        args: Vec<Term>,
        link: bool,
        monitor: bool,
    ) -> BoxFuture<Result<(Pid, Ref), RemoteSpawnError>> {
        let dist = self.0.clone();
        let connect = self.connect(node);
        let (from, node, function) = (from.clone(), node.clone(), function.clone());
        Box::pin(async move {
            connect.await?;
            let flags = dist.conn(&node).map(|c| c.flags()).ok_or_else(|| DistError::ConnectionLost(node.clone()))?;
            if !flags.contains(Flags::SPAWN) {
                return Err(RemoteSpawnError::Unsupported(node));
            }
            let host = dist.host().ok_or(DistError::ShuttingDown)?;
            if !host.notify_exit(&from) {
                return Err(DistError::ShuttingDown.into());
            }
            let reference = host.make_ref();
            let (tx, rx) = async_channel::bounded(1);
            let wait =
                SpawnWait { node: node.clone(), requester: from.clone(), link, monitor, reply: tx, abandoned: false };
            lock(&dist.spawns).insert(reference.clone(), wait);
            // Dropped before the reply (a timeout below, or the caller's future dropped): a reply
            // that comes later undoes the link or monitor it would have made.
            // If the reply came in between the last poll and the drop, the link or monitor it made
            // is undone here instead.
            let guard = UnlessDone::new({
                let (dist, reference, from, node, rx) =
                    (dist.clone(), reference.clone(), from.clone(), node.clone(), rx.clone());
                move || {
                    if let Some(wait) = lock(&dist.spawns).get_mut(&reference) {
                        wait.abandoned = true;
                        return;
                    }
                    let Ok(Ok(child)) = rx.try_recv() else { return };
                    if let Some(host) = dist.host() {
                        if link {
                            host.remove_remote_link(&from, &child);
                        }
                        if monitor {
                            host.remove_monitor(&from, &reference);
                        }
                    }
                    let origin = Origin::Signal { by_process: false };
                    super::reactions::abandon_child(&from, &child, &reference, link, monitor, &mut |signal| {
                        let _ = dist.route(&node, &signal, origin);
                    });
                }
            });
            let req = Control::SpawnReq {
                reference: reference.clone(),
                from,
                function: function.clone(),
                args,
                opts: SpawnOpts { link, monitor, ..SpawnOpts::default() },
            };
            // The requester waits for the reply right here: no need to suspend it for the queue.
            let _ = dist.route(&node, &req, Origin::Signal { by_process: false });
            let outcome = dist.within(dist.opts.handshake_timeout + dist.opts.ticktime, rx.recv()).await;
            if outcome.is_some() {
                guard.done();
            }
            match outcome {
                Some(Ok(Ok(pid))) => Ok((pid, reference)),
                Some(Ok(Err(reason))) if reason.is_atom("noconnection") => Err(DistError::ConnectionLost(node).into()),
                Some(Ok(Err(reason))) => {
                    Err(RemoteSpawnError::Refused { node, function: function.as_str().to_owned(), reason })
                }
                Some(Err(_)) => Err(DistError::ConnectionLost(node).into()),
                None => Err(DistError::Timeout(node).into()),
            }
        })
    }

    fn call(
        &self,
        from: Option<&Pid>,
        node: &NodeName,
        function: &Atom,
        args: Vec<Term>,
        timeout: Duration,
    ) -> BoxFuture<Result<Term, CallError>> {
        let service = Service(self.0.clone());
        let (from, node, function) = (from.cloned(), node.clone(), function.clone());
        Box::pin(async move { service.call_remote(from, node, function, args, timeout).await })
    }

    fn cast(
        &self,
        from: Option<&Pid>,
        node: &NodeName,
        function: &Atom,
        args: Vec<Term>,
    ) -> BoxFuture<Result<(), CallError>> {
        let service = Service(self.0.clone());
        let (from, node, function) = (from.cloned(), node.clone(), function.clone());
        Box::pin(async move { service.cast_remote(from, node, function, args).await })
    }

    fn send_alias(&self, from: Option<&Pid>, alias: &Ref, msg: Term) -> Backpressure {
        self.send_to_alias(from, alias, msg)
    }

    fn cluster(&self) -> Option<&dyn Cluster> {
        Some(self)
    }

    fn table_sizes(&self) -> Vec<(&'static str, usize)> {
        let dist = &self.0;
        let (peers, connecting, queued_frames) = lock(&dist.peers).sizes();
        let backoff = lock(&dist.backoff).len();
        let node_watches = lock(&dist.watch).len();
        let remote_spawns = lock(&dist.spawns).len();
        let calls = lock(&dist.calls).len();
        let mesh_deferred = lock(&dist.mesh_deferred).len();
        let incoming_named = lock(&dist.incoming).len();
        vec![
            ("peers", peers),
            ("connecting", connecting),
            ("queued_frames", queued_frames),
            ("backoff", backoff),
            ("pending_handshakes", lock(&dist.admission).pending()),
            ("node_watches", node_watches),
            ("remote_spawns", remote_spawns),
            ("calls", calls),
            ("mesh_deferred", mesh_deferred),
            ("incoming_named", incoming_named),
        ]
    }

    fn send_queue_high_water(&self, node: &NodeName) -> Option<usize> {
        self.0.conn(node).map(|conn| conn.queue_high_water())
    }

    fn connection_bytes_written(&self, node: &NodeName) -> Option<u64> {
        self.0.conn(node).map(|conn| conn.written_bytes())
    }

    fn connection_socket_writes(&self, node: &NodeName) -> Option<u64> {
        self.0.conn(node).map(|conn| conn.socket_writes())
    }
}

/// The global registry and process groups as the host sees them: the driver's cluster state, with
/// the driver as its context.
impl Cluster for Service {
    fn register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError> {
        self.0.cluster.register(&*self.0, name, pid, false)
    }

    fn re_register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError> {
        self.0.cluster.register(&*self.0, name, pid, true)
    }

    fn unregister_name(&self, name: &Term) -> Result<(), GlobalError> {
        self.0.cluster.unregister_name(&*self.0, name)
    }

    fn whereis_name(&self, name: &Term) -> Option<Pid> {
        self.0.cluster.whereis_name(name)
    }

    fn registered_names(&self) -> Vec<Term> {
        self.0.cluster.registered_names()
    }

    fn start_scope(&self, scope: &Atom) -> bool {
        self.0.cluster.start_scope(&*self.0, scope)
    }

    fn join(&self, scope: &Atom, group: Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.0.cluster.join(&*self.0, scope, group, pids)
    }

    fn leave(&self, scope: &Atom, group: &Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.0.cluster.leave(&*self.0, scope, group, pids)
    }

    fn members(&self, scope: &Atom, group: &Term) -> Vec<Pid> {
        self.0.cluster.members(scope, group)
    }

    fn local_members(&self, scope: &Atom, group: &Term) -> Vec<Pid> {
        self.0.cluster.local_members(scope, group)
    }

    fn which_groups(&self, scope: &Atom) -> Vec<Term> {
        self.0.cluster.which_groups(scope)
    }

    fn which_local_groups(&self, scope: &Atom) -> Vec<Term> {
        self.0.cluster.which_local_groups(scope)
    }

    fn monitor_scope(&self, scope: &Atom, watcher: &Pid) -> Result<(Ref, ScopeMembers), GroupError> {
        self.0.cluster.monitor_scope(&*self.0, scope, watcher)
    }

    fn monitor_group(&self, scope: &Atom, group: Term, watcher: &Pid) -> Result<(Ref, Vec<Pid>), GroupError> {
        self.0.cluster.monitor_group(&*self.0, scope, group, watcher)
    }

    fn demonitor_group(&self, scope: &Atom, reference: &Ref) -> bool {
        self.0.cluster.demonitor_group(&*self.0, scope, reference)
    }
}
