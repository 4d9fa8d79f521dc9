//! The state of one distributed node: its peers (connecting or up), node monitors, pending remote
//! spawns, and the rules that move a peer between states.
//!
//! One lock (`peers`) orders everything that changes which connection serves a node: queuing a
//! frame for a node that is still connecting, installing a connection (which takes over that
//! queue), and tearing one down. That is what keeps per-sender FIFO across the connecting phase and
//! what makes the duplicate-connection decision atomic.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_std::channel::{Receiver, Sender};
use rustls::{ClientConfig, ServerConfig};
use snow_shared::dist::admission::{Admission, AdmissionLimits};
use snow_shared::dist::backoff_table::BackoffTable;
use snow_shared::dist::control::Control;
use snow_shared::dist::handshake::{HandshakeConfig, PeerInfo};
use snow_shared::dist::outbound::Lane;
use snow_shared::dist::Flags;
use snow_shared::{NodeName, Pid, Ref, Term};

use super::connection::Conn;
use super::error::DistError;
use crate::node::{Node, NodeInner};
use crate::seam::LocalProcesses;

/// Tunables of the driver (the builder sets them; defaults in [`Options::default`]).
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub ticktime: Duration,
    pub handshake_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_pending_handshakes: usize,
    pub max_pending_per_address: usize,
    pub byte_budget: usize,
    pub transitive: bool,
    pub auth_failures_per_minute: u32,
    pub connect_attempts: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ticktime: snow_shared::dist::liveness::DEFAULT_TICKTIME,
            handshake_timeout: snow_shared::dist::handshake::DEFAULT_HANDSHAKE_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            max_pending_handshakes: AdmissionLimits::default().max_pending,
            max_pending_per_address: AdmissionLimits::default().max_pending_per_source,
            byte_budget: snow_shared::dist::outbound::DEFAULT_BYTE_BUDGET,
            transitive: true,
            auth_failures_per_minute: AdmissionLimits::default().failures_per_window,
            connect_attempts: 3,
        }
    }
}

/// Frames queued for a node whose connection is being set up.
#[derive(Default)]
pub(crate) struct Pending {
    pub queue: Vec<(Lane, Vec<u8>)>,
    pub bytes: usize,
    pub waiters: Vec<Sender<Result<(), DistError>>>,
}

/// Moves what was queued while connecting onto `conn`, and returns who waited for it. The caller
/// still holds the peers lock that made `conn` visible: a sender that finds `conn` queues behind
/// these frames, never ahead of them (per-sender order across the connection's set-up).
fn take_over(conn: &Conn, previous: Option<Peer>) -> Vec<Sender<Result<(), DistError>>> {
    match previous {
        Some(Peer::Connecting(pending)) => {
            conn.enqueue_all(pending.queue);
            pending.waiters
        }
        _ => Vec::new(),
    }
}

/// The output lane of a control message: its sender's (per-sender order), or the urgent lane for
/// messages of the connection itself.
fn lane_of(msg: &Control) -> Lane {
    msg.sender().map_or(Lane::Urgent, sender_lane)
}

/// The output lane of the messages of process `pid`: one lane per sender keeps its order.
pub(crate) fn sender_lane(pid: &Pid) -> Lane {
    Lane::Sender(pid.id())
}

/// Tells those who waited for a connection that it is up (after the peers lock is released).
fn wake_waiters(waiters: Vec<Sender<Result<(), DistError>>>) {
    for w in waiters {
        let _ = w.try_send(Ok(()));
    }
}

/// Where a peer node stands.
pub(crate) enum Peer {
    Connecting(Pending),
    Up(Arc<Conn>),
}

/// Watchers of node up/down events.
#[derive(Default)]
pub(crate) struct NodeWatch {
    /// `monitor_node`: one `{:nodedown, node}` per entry, then the entry is gone.
    pub once: HashMap<NodeName, Vec<Pid>>,
    /// `monitor_nodes(true)`: every nodeup and nodedown.
    pub all: HashSet<Pid>,
}

/// A remote spawn waiting for its SPAWN_REPLY.
pub(crate) struct SpawnWait {
    pub node: NodeName,
    pub link: bool,
    pub reply: Sender<Result<Pid, Term>>,
}

/// One distributed node's driver state. Shared by its tasks through `Arc`; it refers to the
/// [`Node`] weakly, so the node's router (which holds this) does not keep the node alive.
pub(crate) struct Dist {
    node: Weak<NodeInner>,
    pub name: NodeName,
    pub creation: u32,
    pub hs: HandshakeConfig,
    pub tls_client: Arc<ClientConfig>,
    pub tls_server: Arc<ServerConfig>,
    pub ca_verified: bool,
    pub epmd: String,
    pub opts: Options,
    pub listen_addr: SocketAddr,
    pub peers: Mutex<HashMap<NodeName, Peer>>,
    /// Nodes whose last connection attempt failed, and until when to hold off dialing them.
    pub backoff: Mutex<BackoffTable>,
    pub watch: Mutex<NodeWatch>,
    pub spawns: Mutex<HashMap<Ref, SpawnWait>>,
    /// Pre-authentication limits: pending handshakes and failed authentications per source.
    pub admission: Mutex<Admission>,
    pub closing: AtomicBool,
    /// Closed at shutdown: the listener and the snow-epmd keeper stop when `recv` fails.
    pub stop_tx: Sender<()>,
    pub stop_rx: Receiver<()>,
    /// The listener and snow-epmd keeper tasks, awaited at shutdown.
    pub tasks: Mutex<Vec<crate::sched::JoinHandle<()>>>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The capabilities this build offers (global registry and process groups are not offered: peers
/// that support them simply do not send those messages).
pub(crate) fn offered_flags(transitive: bool) -> Flags {
    let base = Flags::FRAGMENTS.with(Flags::SPAWN).with(Flags::EXTENSIONS);
    if transitive {
        base.with(Flags::MESH)
    } else {
        base
    }
}

/// What [`Dist::decide`] concluded for an authenticated incoming connection.
pub(crate) enum Decision {
    /// Keep it: the new connection is installed (and an older one, if any, was replaced).
    Accept(Arc<Conn>),
    /// Refuse it: another connection with that node is kept.
    Duplicate,
}

impl Dist {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: &Node,
        hs: HandshakeConfig,
        tls_client: Arc<ClientConfig>,
        tls_server: Arc<ServerConfig>,
        ca_verified: bool,
        epmd: String,
        opts: Options,
        listen_addr: SocketAddr,
    ) -> Dist {
        let (stop_tx, stop_rx) = async_std::channel::bounded(1);
        let admission = Admission::new(AdmissionLimits {
            max_pending: opts.max_pending_handshakes,
            max_pending_per_source: opts.max_pending_per_address,
            failures_per_window: opts.auth_failures_per_minute,
            window: Duration::from_secs(60),
        });
        Dist {
            node: Arc::downgrade(&node.inner),
            name: node.name().clone(),
            creation: node.creation(),
            hs,
            tls_client,
            tls_server,
            ca_verified,
            epmd,
            opts,
            listen_addr,
            peers: Mutex::new(HashMap::new()),
            backoff: Mutex::new(BackoffTable::default()),
            watch: Mutex::new(NodeWatch::default()),
            spawns: Mutex::new(HashMap::new()),
            admission: Mutex::new(admission),
            closing: AtomicBool::new(false),
            stop_tx,
            stop_rx,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The node, while it exists.
    pub fn node(&self) -> Option<Node> {
        self.node.upgrade().map(|inner| Node { inner })
    }

    /// The largest number of bytes held for one node: its queue budget, plus the same again for
    /// the synchronous path (which cannot wait) before frames are dropped.
    pub fn hard_cap(&self) -> usize {
        self.opts.byte_budget.saturating_mul(2)
    }

    /// The nodes with a connection up.
    pub fn connected(&self) -> Vec<NodeName> {
        let peers = lock(&self.peers);
        let mut up: Vec<NodeName> =
            peers.iter().filter(|(_, p)| matches!(p, Peer::Up(_))).map(|(n, _)| n.clone()).collect();
        up.sort();
        up
    }

    /// The connection to `node`, if up.
    pub fn conn(&self, node: &NodeName) -> Option<Arc<Conn>> {
        match lock(&self.peers).get(node) {
            Some(Peer::Up(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// Queues a control message for `node` from the synchronous path: onto its connection, or
    /// into the pending queue while it connects (starting an attempt if none runs). Over the hard
    /// cap the frame is dropped, as a send to a broken connection would be.
    pub fn route(self: &Arc<Self>, node: &NodeName, msg: &Control) {
        self.route_frame(node, lane_of(msg), msg.to_bytes());
    }

    /// [`Dist::route`] for a message already encoded for `lane` (the send path encodes SEND
    /// straight from borrowed parts, [`Control::send_to_bytes`]).
    pub fn route_frame(self: &Arc<Self>, node: &NodeName, lane: Lane, bytes: Vec<u8>) {
        let conn = {
            let mut peers = lock(&self.peers);
            match peers.get_mut(node) {
                Some(Peer::Up(c)) => c.clone(),
                Some(Peer::Connecting(p)) => {
                    if p.bytes < self.hard_cap() {
                        p.bytes += bytes.len();
                        p.queue.push((lane, bytes));
                    } else {
                        log::warn!("{}: dropped a frame for {node}: its pending queue is full", self.name);
                    }
                    return;
                }
                None => {
                    if self.closing.load(Ordering::Relaxed) || node == &self.name {
                        return;
                    }
                    let pending = Pending { bytes: bytes.len(), queue: vec![(lane, bytes)], waiters: Vec::new() };
                    peers.insert(node.clone(), Peer::Connecting(pending));
                    drop(peers);
                    super::mesh::spawn_attempt(self.clone(), node.clone(), true);
                    return;
                }
            }
        };
        self.enqueue_on(&conn, lane, bytes);
    }

    /// Queues a control message on an established connection (a reply from its reader, or a send
    /// whose caller already holds the connection), dropping it with a log line if the
    /// connection's queue is over twice its budget.
    pub fn send_on(&self, conn: &Conn, msg: &Control) {
        self.enqueue_on(conn, lane_of(msg), msg.to_bytes());
    }

    fn enqueue_on(&self, conn: &Conn, lane: Lane, bytes: Vec<u8>) {
        if !conn.enqueue(lane, bytes, self.hard_cap()) {
            log::warn!(
                "{}: dropped a frame for {}: the connection's send queue is over twice its budget",
                self.name,
                conn.peer
            );
        }
    }

    /// Acceptor side, after the initiator proved the cookie: keep this connection or not
    /// (DESIGN.md 4.5; protocol-dist D.2.4). `make` builds the connection if it is kept.
    pub fn decide(&self, peer: &PeerInfo, make: impl FnOnce() -> Arc<Conn>) -> (Decision, Option<Arc<Conn>>) {
        let mut peers = lock(&self.peers);
        let replaced = match peers.get(&peer.name) {
            Some(Peer::Up(old)) if old.creation == peer.creation => return (Decision::Duplicate, None),
            Some(Peer::Up(old)) => Some(old.clone()),
            Some(Peer::Connecting(_)) if snow_shared::dist::handshake::keep_initiated(&self.name, &peer.name) => {
                return (Decision::Duplicate, None)
            }
            _ => None,
        };
        let conn = make();
        let pending = peers.insert(peer.name.clone(), Peer::Up(conn.clone()));
        let waiters = take_over(&conn, pending);
        drop(peers);
        wake_waiters(waiters);
        (Decision::Accept(conn), replaced)
    }

    /// Initiator side, the acceptor said ok: install the connection, taking over the pending
    /// queue. Returns a connection it replaced (the peer restarted), if any.
    pub fn install(&self, conn: &Arc<Conn>) -> Option<Arc<Conn>> {
        let mut peers = lock(&self.peers);
        match peers.insert(conn.peer.clone(), Peer::Up(conn.clone())) {
            Some(Peer::Up(old)) => Some(old),
            other => {
                let waiters = take_over(conn, other);
                drop(peers);
                wake_waiters(waiters);
                None
            }
        }
    }

    /// A connection came up: log, reset backoff, tell node watchers, share our node list.
    pub fn connection_up(&self, conn: &Conn, addr: &str) {
        lock(&self.backoff).remove(&conn.peer);
        log::info!(
            "{}: connection to {} up ({addr}, creation {}, flags {:?})",
            self.name,
            conn.peer,
            conn.creation,
            conn.flags
        );
        let watchers: Vec<Pid> = lock(&self.watch).all.iter().cloned().collect();
        if let Some(node) = self.node() {
            let msg = Term::tuple([Term::atom("nodeup"), Term::Atom(conn.peer.as_atom().clone())]);
            for w in watchers {
                node.deliver_message(&w, msg.clone());
            }
        }
        if conn.flags.contains(Flags::MESH) {
            let nodes: Vec<NodeName> = self.connected().into_iter().filter(|n| n != &conn.peer).collect();
            self.send_on(conn, &Control::NodeList { nodes });
        }
    }

    /// A connection ended (its reader finished). If it was the node's current connection, the node
    /// is down: links and monitors fire `:noconnection`, node monitors get `{:nodedown, node}`,
    /// remote spawns waiting on it fail.
    pub fn connection_down(&self, conn: &Arc<Conn>, reason: &str) {
        conn.close();
        let current = {
            let mut peers = lock(&self.peers);
            match peers.get(&conn.peer) {
                Some(Peer::Up(c)) if Arc::ptr_eq(c, conn) => {
                    peers.remove(&conn.peer);
                    true
                }
                _ => false,
            }
        };
        if current {
            log::info!("{}: connection to {} down: {reason}", self.name, conn.peer);
            self.node_gone(&conn.peer, true);
        } else {
            log::debug!("{}: superseded connection to {} closed: {reason}", self.name, conn.peer);
        }
    }

    /// A connection was replaced by a newer one from the same node (it restarted): the old
    /// incarnation's links and monitors fire as for a lost connection.
    pub fn connection_replaced(&self, old: &Arc<Conn>) {
        old.close();
        log::info!("{}: {} restarted (creation {}); old connection closed", self.name, old.peer, old.creation);
        self.node_gone(&old.peer, true);
    }

    /// An attempt to connect failed: drop what was queued, fire `:noconnection` on links and
    /// monitors made meanwhile, tell `monitor_node` watchers, fail waiters.
    pub fn attempt_failed(&self, node: &NodeName, err: &DistError) {
        let pending = {
            let mut peers = lock(&self.peers);
            match peers.get(node) {
                Some(Peer::Connecting(_)) => match peers.remove(node) {
                    Some(Peer::Connecting(p)) => Some(p),
                    _ => None,
                },
                _ => None,
            }
        };
        let Some(pending) = pending else { return };
        log::warn!("{}: cannot connect to {node}: {err} ({} queued frames dropped)", self.name, pending.queue.len());
        for w in pending.waiters {
            let _ = w.try_send(Err(err.clone()));
        }
        self.node_gone(node, false);
    }

    /// Everything that follows from `node` being unreachable.
    fn node_gone(&self, node: &NodeName, was_up: bool) {
        let (once, all) = {
            let mut watch = lock(&self.watch);
            let once = watch.once.remove(node).unwrap_or_default();
            let all: Vec<Pid> = if was_up { watch.all.iter().cloned().collect() } else { Vec::new() };
            (once, all)
        };
        let failed_spawns: Vec<SpawnWait> = {
            let mut spawns = lock(&self.spawns);
            let refs: Vec<Ref> = spawns.iter().filter(|(_, w)| &w.node == node).map(|(r, _)| r.clone()).collect();
            refs.into_iter().filter_map(|r| spawns.remove(&r)).collect()
        };
        for wait in failed_spawns {
            let _ = wait.reply.try_send(Err(Term::atom("noconnection")));
        }
        let Some(local) = self.node() else { return };
        local.connection_lost(node);
        let msg = Term::tuple([Term::atom("nodedown"), Term::Atom(node.as_atom().clone())]);
        for w in once.into_iter().chain(all) {
            local.deliver_message(&w, msg.clone());
        }
    }

    /// Stops everything: no new connections, every connection closed (firing `:noconnection`).
    pub fn shutdown(&self) {
        if self.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop_tx.close();
        let peers: Vec<(NodeName, Peer)> = lock(&self.peers).drain().collect();
        for (node, peer) in peers {
            match peer {
                Peer::Up(conn) => {
                    conn.close();
                    log::info!("{}: connection to {node} closed (shutdown)", self.name);
                    self.node_gone(&node, true);
                }
                Peer::Connecting(p) => {
                    for w in p.waiters {
                        let _ = w.try_send(Err(DistError::ShuttingDown));
                    }
                    self.node_gone(&node, false);
                }
            }
        }
    }
}
