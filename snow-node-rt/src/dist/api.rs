//! The public distribution operations, as methods of [`Node`] and [`Process`].
//!
//! Everything here works on a local-only node too: queries answer as Erlang's do on a node that is
//! not alive (`nodes() == []`, `is_distributed() == false`), and operations that need
//! distribution return [`DistError::NotDistributed`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smol_timeout::TimeoutExt;
use snow_shared::dist::control::{Control, SpawnOpts};
use snow_shared::dist::Flags;
use snow_shared::{Atom, NodeName, Pid, Term};

use super::core::{lock, sender_lane, Dist, Peer, SpawnWait};
use super::error::{DistError, RemoteSpawnError, TrySendError};
use super::mesh;
use super::router::Router;
use crate::node::Node;
use crate::process::Process;
use crate::seam::LocalProcesses;

/// The driver state of a distributed node.
fn dist_of(node: &Node) -> Option<Arc<Dist>> {
    node.with_router(|router| router.as_any()?.downcast_ref::<Router>().map(|r| r.0.clone()))?
}

fn parse(text: &str) -> Result<NodeName, DistError> {
    NodeName::parse(text).map_err(|source| DistError::BadNodeName { value: text.to_owned(), source })
}

/// How long [`Node::connect`] waits for an attempt, retries included.
fn connect_deadline(dist: &Dist) -> Duration {
    (dist.opts.connect_timeout + dist.opts.handshake_timeout) * dist.opts.connect_attempts + Duration::from_secs(5)
}

fn nodedown(node: &NodeName) -> Term {
    Term::tuple([Term::atom("nodedown"), Term::Atom(node.as_atom().clone())])
}

impl Node {
    /// Whether this node is distributed (Erlang's `is_alive()`): started with a name, registered
    /// with snow-epmd and not shut down.
    #[doc(alias = "is_alive")]
    pub fn is_distributed(&self) -> bool {
        dist_of(self).is_some_and(|d| !d.closing.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// This node's name (Erlang's `node()`); `nonode@nohost` when local-only.
    pub fn self_node(&self) -> NodeName {
        self.name().clone()
    }

    /// The node a pid lives on (Erlang's `node(Pid)`).
    pub fn node_of(pid: &Pid) -> NodeName {
        pid.node().clone()
    }

    /// The nodes this node has a connection up with, sorted (Erlang's `nodes()`).
    pub fn nodes(&self) -> Vec<NodeName> {
        dist_of(self).map(|d| d.connected()).unwrap_or_default()
    }

    /// The address the distribution listener is bound to; `None` when local-only.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        dist_of(self).map(|d| d.listen_addr)
    }

    /// For tests: the sizes of the distribution driver's tables, by name: `peers` (connected or
    /// connecting), `connecting`, `queued_frames` (held for connecting nodes), `backoff` (nodes
    /// whose last attempt failed), `pending_handshakes`, `node_watches` and `remote_spawns`.
    /// Tests compare them before and after failures to show nothing is left behind. Empty when
    /// local-only. Not a stable API.
    #[doc(hidden)]
    pub fn dist_table_sizes(&self) -> Vec<(&'static str, usize)> {
        let Some(dist) = dist_of(self) else { return Vec::new() };
        let (peers, connecting, queued_frames) = {
            let peers = lock(&dist.peers);
            let pending = peers.values().filter_map(|p| match p {
                Peer::Connecting(pending) => Some(pending.queue.len()),
                Peer::Up(_) => None,
            });
            let (connecting, queued) = pending.fold((0, 0), |(n, q), len| (n + 1, q + len));
            (peers.len(), connecting, queued)
        };
        let backoff = lock(&dist.backoff).len();
        let node_watches = {
            let watch = lock(&dist.watch);
            watch.once.values().map(Vec::len).sum::<usize>() + watch.all.len()
        };
        let remote_spawns = lock(&dist.spawns).len();
        let pending_handshakes = lock(&dist.admission).pending();
        vec![
            ("peers", peers),
            ("connecting", connecting),
            ("queued_frames", queued_frames),
            ("backoff", backoff),
            ("pending_handshakes", pending_handshakes),
            ("node_watches", node_watches),
            ("remote_spawns", remote_spawns),
        ]
    }

    /// Connects to `node` (`name@host`) now, waiting until the connection is up or has failed
    /// (Erlang's `net_kernel:connect_node/1`). Already connected: `Ok` at once. Connecting to this
    /// node itself is `Ok` too. Unlike on-demand connects, this dials even if the node is in its
    /// backoff period.
    pub async fn connect(&self, node: &str) -> Result<(), DistError> {
        let node = parse(node)?;
        let dist = dist_of(self).ok_or(DistError::NotDistributed)?;
        if node == dist.name {
            return Ok(());
        }
        let Some(rx) = mesh::ensure(&dist, &node, false, true) else { return Err(DistError::NotDistributed) };
        match rx.recv().timeout(connect_deadline(&dist)).await {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(DistError::ConnectionLost(node)),
            None => Err(DistError::Timeout(node)),
        }
    }

    /// Closes the connection to `node` (Erlang's `disconnect_node/1`): links and monitors across
    /// it fire `:noconnection`, node monitors get `{:nodedown, node}`. `Ok(false)` if there was no
    /// connection. A later send to that node connects again.
    pub fn disconnect(&self, node: &str) -> Result<bool, DistError> {
        let node = parse(node)?;
        let dist = dist_of(self).ok_or(DistError::NotDistributed)?;
        match dist.conn(&node) {
            Some(conn) => {
                dist.connection_down(&conn, "disconnected by this node");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Stops distribution: the listener closes, every connection is closed (links and monitors
    /// across them fire `:noconnection`), the node unregisters from snow-epmd, and remote pids
    /// behave as dead from then on. Local processes keep running. Idempotent.
    pub async fn shutdown(&self) {
        let Some(dist) = dist_of(self) else { return };
        dist.shutdown();
        self.clear_router();
        let tasks: Vec<_> = lock(&dist.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.timeout(Duration::from_secs(5)).await;
        }
        log::info!("{}: distribution stopped", dist.name);
    }
}

impl Process {
    /// Sends `msg` to `to`, waiting while the connection to `to`'s node is over its byte budget
    /// (backpressure for bulk senders). For local pids it is [`Process::send`]. A message to a node
    /// that cannot be reached is dropped, as with `send`.
    ///
    /// [`Process::send`] never waits: it queues even over the budget, up to twice the budget,
    /// then drops (and logs) what does not fit, like a send on a broken connection. Use this
    /// method, or [`Process::try_send`], where a sender may outpace the network.
    pub async fn send_async(&self, to: &Pid, msg: Term) {
        let mut msg = msg;
        for _ in 0..1_000_000u32 {
            match self.try_send(to, msg) {
                Ok(()) => return,
                Err(TrySendError::Busy { msg: back, node }) => {
                    msg = back;
                    let Some(dist) = dist_of(&self.node) else { return };
                    wait_for_room(&dist, &node).await;
                }
            }
        }
    }

    /// Sends `msg` to `to` unless the connection to `to`'s node is over its byte budget, in which
    /// case the message comes back in [`TrySendError::Busy`]. Local pids never give `Busy`.
    pub fn try_send(&self, to: &Pid, msg: Term) -> Result<(), TrySendError> {
        let Some(dist) = dist_of(&self.node).filter(|_| !self.node.is_local(to) && to.node() != self.node.name())
        else {
            self.send(to, msg);
            return Ok(());
        };
        let node = to.node();
        let (busy, up) = match lock(&dist.peers).get(node) {
            Some(Peer::Up(conn)) => (false, Some(conn.clone())),
            Some(Peer::Connecting(p)) => (p.bytes >= dist.opts.byte_budget, None),
            None => (false, None),
        };
        if busy {
            return Err(TrySendError::Busy { node: node.clone(), msg });
        }
        let Some(conn) = up else {
            self.send(to, msg);
            return Ok(());
        };
        // The connection is in hand: queue on it unless its queue is at the budget (one lock
        // for the check and the push). A closed connection drops the frame, as `send` would.
        let bytes = Control::send_to_bytes(self.pid(), to, &msg);
        match conn.offer(sender_lane(self.pid()), bytes, dist.opts.byte_budget) {
            Err(_) if !conn.is_closed() => Err(TrySendError::Busy { node: node.clone(), msg }),
            _ => Ok(()),
        }
    }

    /// Sends `msg` to the process registered as `name` on `node` (Erlang's `{name, node} ! msg`);
    /// the same as [`Process::send_named_on`], with the node as text.
    pub fn send_to(&self, name: &str, node: &str, msg: Term) -> Result<(), DistError> {
        let node = parse(node)?;
        if node != *self.node.name() && dist_of(&self.node).is_none() {
            return Err(DistError::NotDistributed);
        }
        let _ = self.send_named_on(&node, name, msg);
        Ok(())
    }

    /// Watches `node` (Erlang's `monitor_node(Node, true)`): this process gets one
    /// `{:nodedown, node}` when the connection to it is lost, or at once if it cannot be connected
    /// (the call starts a connection if there is none). Each call adds one watch.
    pub fn monitor_node(&self, node: &NodeName) {
        let Some(dist) = dist_of(&self.node) else {
            self.node.deliver_message(self.pid(), nodedown(node));
            return;
        };
        if node == &dist.name {
            return;
        }
        lock(&dist.watch).once.entry(node.clone()).or_default().push(self.pid().clone());
        mesh::ensure(&dist, node, true, false);
    }

    /// Removes one watch made by [`Process::monitor_node`]. Returns whether there was one.
    pub fn demonitor_node(&self, node: &NodeName) -> bool {
        let Some(dist) = dist_of(&self.node) else { return false };
        let mut watch = lock(&dist.watch);
        let Some(list) = watch.once.get_mut(node) else { return false };
        let Some(at) = list.iter().position(|p| p == self.pid()) else { return false };
        list.remove(at);
        if list.is_empty() {
            watch.once.remove(node);
        }
        true
    }

    /// Subscribes this process to every node's ups and downs (Erlang's
    /// `net_kernel:monitor_nodes(true)`): `{:nodeup, node}` when a connection comes up,
    /// `{:nodedown, node}` when one is lost, until called again with `false`.
    pub fn monitor_nodes(&self, on: bool) {
        let Some(dist) = dist_of(&self.node) else { return };
        let mut watch = lock(&dist.watch);
        watch.all.retain(|p| self.node.is_alive(p));
        if on {
            watch.all.insert(self.pid().clone());
        } else {
            watch.all.remove(self.pid());
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
        self.spawn_remote_with(node, function, args, false).await
    }

    /// [`Process::spawn_remote`] with a link between this process and the new one, made before
    /// the new process runs (Erlang's `spawn_link/4`).
    pub async fn spawn_link_remote(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
    ) -> Result<Pid, RemoteSpawnError> {
        self.spawn_remote_with(node, function, args, true).await
    }

    async fn spawn_remote_with(
        &self,
        node: &NodeName,
        function: &str,
        args: Vec<Term>,
        link: bool,
    ) -> Result<Pid, RemoteSpawnError> {
        let dist = dist_of(&self.node).ok_or(DistError::NotDistributed)?;
        self.node.connect(node.as_str()).await?;
        let flags = dist.conn(node).map(|c| c.flags).ok_or_else(|| DistError::ConnectionLost(node.clone()))?;
        if !flags.contains(Flags::SPAWN) {
            return Err(RemoteSpawnError::Unsupported(node.clone()));
        }
        let reference = self.node.make_ref();
        let (tx, rx) = async_std::channel::bounded(1);
        lock(&dist.spawns).insert(reference.clone(), SpawnWait { node: node.clone(), link, reply: tx });
        let req = Control::SpawnReq {
            reference: reference.clone(),
            from: self.pid().clone(),
            function: Atom::new(function),
            args,
            opts: SpawnOpts { link, monitor: false },
        };
        dist.route(node, &req);
        let wait = dist.opts.handshake_timeout + dist.opts.ticktime;
        let outcome = rx.recv().timeout(wait).await;
        lock(&dist.spawns).remove(&reference);
        match outcome {
            Some(Ok(Ok(pid))) => Ok(pid),
            Some(Ok(Err(reason))) if reason.is_atom("noconnection") => {
                Err(DistError::ConnectionLost(node.clone()).into())
            }
            Some(Ok(Err(reason))) => {
                Err(RemoteSpawnError::Refused { node: node.clone(), function: function.to_owned(), reason })
            }
            Some(Err(_)) => Err(DistError::ConnectionLost(node.clone()).into()),
            None => Err(DistError::Timeout(node.clone()).into()),
        }
    }
}

/// Waits (bounded by the ticktime) until `node`'s queue has room, its connection attempt ended, or
/// it has no entry (the next send starts an attempt).
async fn wait_for_room(dist: &Dist, node: &NodeName) {
    let deadline = dist.opts.ticktime;
    let waiter = {
        let mut peers = lock(&dist.peers);
        match peers.get_mut(node) {
            Some(Peer::Up(conn)) => Ok(conn.clone()),
            Some(Peer::Connecting(p)) => {
                let (tx, rx) = async_std::channel::bounded(1);
                p.waiters.push(tx);
                Err(Some(rx))
            }
            None => Err(None),
        }
    };
    match waiter {
        Ok(conn) => {
            let _ = conn.wait_room().timeout(deadline).await;
        }
        Err(Some(rx)) => {
            let _ = rx.recv().timeout(deadline).await;
        }
        Err(None) => {}
    }
}
