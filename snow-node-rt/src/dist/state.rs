//! The state of one distributed node: its peers (connecting or up), node monitors, pending remote
//! spawns and calls, and the rules that move a peer between states.
//!
//! One lock (`peers`) orders everything that changes which connection serves a node: queuing a
//! frame for a node that is still connecting, installing a connection (which takes over that
//! queue), and tearing one down. That is what keeps per-sender FIFO across the connecting phase and
//! what makes the duplicate-connection decision atomic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use rustls::{ClientConfig, ServerConfig};
use snow_shared::cluster::global::{ConflictNotice, GlobalConfig};
use snow_shared::dist::admission::{Admission, AdmissionLimits};
use snow_shared::dist::backoff_table::BackoffTable;
use snow_shared::dist::control::{required_flag, Control, Outgoing};
use snow_shared::dist::dial_queue::DialQueue;
use snow_shared::dist::early_refusal::ClaimedDialers;
use snow_shared::dist::handshake::{HandshakeConfig, PeerInfo};
use snow_shared::dist::outbound::Lane;
use snow_shared::dist::peer_table::{Ensured, NodeWatches, Peer, PeerTable, Pending, Room, Routed, Verdict};
use snow_shared::dist::Flags;
use snow_shared::log_limit::{suppressed_note, LogLimit};
use snow_shared::{NodeName, Pid, Ref, Term};

use super::call_table::{self, CallTable};
use super::cluster::{ClusterContext, ClusterState, CLUSTER_FLAGS};
use super::error::DistError;
use super::link::{self, Frame, Link, Pushed};
use crate::seam::{Backpressure, Congestion, Host, Runtime};
use crate::sync::lock;

/// Tunables of the driver (the builder sets them; defaults in [`Options::default`]).
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub ticktime: Duration,
    pub handshake_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_pending_handshakes: usize,
    pub max_pending_per_address: usize,
    pub byte_budget: usize,
    /// `None`: twice the byte budget.
    pub queue_ceiling: Option<usize>,
    pub transitive: bool,
    /// Offer the atom cache (PROTOCOL.md 4.4).
    pub atom_cache: bool,
    pub auth_failures_per_minute: u32,
    pub connect_attempts: u32,
    /// How a process that loses a global name in a conflict is told.
    pub conflict_notice: ConflictNotice,
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
            queue_ceiling: None,
            transitive: true,
            atom_cache: true,
            auth_failures_per_minute: AdmissionLimits::default().failures_per_window,
            connect_attempts: 3,
            conflict_notice: ConflictNotice::default(),
        }
    }
}

/// A connection attempt for the mesh task: the node, and whether to respect its backoff.
pub(crate) type Attempt = (NodeName, bool);

/// Who waits for the outcome of a connection attempt.
pub(crate) type Waiter = Sender<Result<(), DistError>>;
/// The peer table of the driver: the sans-IO rules of `snow_shared::dist::peer_table`, with the
/// driver's connections and waiters.
pub(crate) type Peers = PeerTable<Arc<dyn Link>, Waiter>;

/// Moves what was queued while connecting onto `conn`, and returns who waited for it. The caller
/// still holds the peers lock that made `conn` visible: a sender that finds `conn` queues behind
/// these frames, never ahead of them (per-sender order across the connection's set-up).
///
/// A frame whose capability the connection did not negotiate (an ALIAS_SEND queued before the
/// peer's flags were known) is dropped here: a peer is never sent a message it did not agree to.
fn take_over(conn: &dyn Link, pending: Option<Pending<Waiter>>) -> Vec<Waiter> {
    match pending {
        Some(mut pending) => {
            let mut queue = std::mem::take(&mut pending.queue);
            let before = queue.len();
            queue.retain(|(_, frame)| {
                frame.first().and_then(|&tag| required_flag(tag)).map_or(true, |flag| conn.flags().contains(flag))
            });
            if queue.len() < before {
                log::warn!(
                    "dropped {} queued messages for {}: it does not offer their capability ({:?} negotiated)",
                    before - queue.len(),
                    conn.peer(),
                    conn.flags()
                );
            }
            conn.enqueue_all(queue);
            pending.wake_room();
            pending.waiters
        }
        None => Vec::new(),
    }
}

/// Largest message term (encoded in full) written as a cached frame: the names the cache saves
/// are a noticeable share of small messages only, and a connection encodes a cached frame under
/// its queue's lock (PROTOCOL.md 4.4), where a large copy would hold up its other senders.
const CACHED_TERM_MAX: usize = 8 << 10;

/// How `msg` goes to `conn`: as a message its connection encodes with the atom cache, when the
/// cache was negotiated and the message is small; else encoded in full here, outside any lock.
pub(crate) fn frame_for<'a>(conn: &dyn Link, msg: Outgoing<'a>) -> Frame<'a> {
    if conn.flags().contains(Flags::ATOM_CACHE) {
        let term_len = msg.term_len();
        if term_len <= CACHED_TERM_MAX {
            return Frame::Message(msg, term_len);
        }
        return Frame::Encoded(msg.to_bytes_sized(term_len));
    }
    Frame::Encoded(msg.to_bytes())
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

/// Those waiting for a connection that [`Driver::install`] or [`Driver::decide`] put in place,
/// not yet told: the caller wakes them once [`Driver::connection_up`] has run, so a `connect`
/// returns after the nodeup and the node list that connection sent.
#[must_use = "the waiters hear nothing until woken"]
pub(crate) struct Connected(Vec<Waiter>);

impl Connected {
    /// Tells them the connection is up.
    pub(crate) fn wake(self) {
        wake_waiters(self.0);
    }
}

/// Tells those who waited for a connection that it is up (after the peers lock is released).
fn wake_waiters(waiters: Vec<Waiter>) {
    for w in waiters {
        let _ = w.try_send(Ok(()));
    }
}

/// The congestion of one node's queue, as a suspended sender waits for it. Holds the driver
/// state weakly: a stopped node releases its suspended senders.
struct PeerCongestion {
    dist: std::sync::Weak<Driver>,
    node: NodeName,
}

impl Congestion for PeerCongestion {
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self.dist.upgrade() {
            Some(dist) => dist.poll_room(&self.node, cx),
            None => Poll::Ready(()),
        }
    }
}

/// A remote spawn waiting for its SPAWN_REPLY.
pub(crate) struct SpawnWait {
    /// The node asked: a reply from any other is ignored.
    pub node: NodeName,
    /// The process that asked.
    pub requester: Pid,
    pub link: bool,
    pub monitor: bool,
    pub reply: Sender<Result<Pid, Term>>,
    /// The requester stopped waiting (it timed out or exited): a reply that still comes is
    /// answered by undoing the link or monitor made for it.
    pub abandoned: bool,
}

/// Who a frame comes from, for the rules of [`Driver::route_frame`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Origin {
    /// A message sent by a process: suspended over the budget, stopped at the ceiling.
    Process,
    /// A message sent from outside any process (`Node::send`): never refused; at the ceiling
    /// the connection is closed instead (so the loss is seen by every link and monitor across it).
    Runtime,
    /// A signal (link, exit, monitor, `:DOWN`, spawn request or reply, node list): never refused,
    /// never counted against the ceiling. A process that sends one over the budget is still
    /// suspended at its next `.await`.
    Signal { by_process: bool },
}

/// One distributed node's driver state. Shared by its tasks through `Arc`; it refers to its host
/// weakly, so the host (which holds this through its [`Distribution`](crate::seam::Distribution))
/// does not keep itself alive.
pub(crate) struct Driver {
    host: Weak<dyn Host>,
    /// Runs the driver's tasks and keeps its time.
    pub runtime: Arc<dyn Runtime>,
    pub name: NodeName,
    pub creation: u32,
    pub hs: HandshakeConfig,
    pub tls_client: Arc<ClientConfig>,
    pub tls_server: Arc<ServerConfig>,
    pub ca_verified: bool,
    pub epmd: String,
    pub opts: Options,
    pub listen_addr: SocketAddr,
    pub peers: Mutex<Peers>,
    /// Nodes whose last connection attempt failed, and until when to hold off dialing them.
    pub backoff: Mutex<BackoffTable>,
    pub watch: Mutex<NodeWatches>,
    pub spawns: Mutex<HashMap<Ref, SpawnWait>>,
    /// Remote calls waiting for their result (`calls.rs`).
    pub calls: Mutex<CallTable>,
    /// Warnings that could repeat per message or per request, rate-limited.
    pub log_limit: Mutex<LogLimit<&'static str>>,
    /// Pre-authentication limits: pending handshakes and failed authentications per source.
    pub admission: Mutex<Admission>,
    pub closing: AtomicBool,
    /// Closed at shutdown: the listener and the snow-epmd keeper stop when `recv` fails.
    pub stop_tx: Sender<()>,
    pub stop_rx: Receiver<()>,
    /// Connection attempts to start (node, whether to respect its backoff), for the mesh task.
    pub attempts: (Sender<Attempt>, Receiver<Attempt>),
    /// Names from peers' node lists to dial once fewer than
    /// [`MAX_MESH_ATTEMPTS`](super::mesh::MAX_MESH_ATTEMPTS) attempts are in progress
    /// ([`Driver::dial_deferred`]).
    pub mesh_deferred: Mutex<DialQueue>,
    /// Nodes whose connections to us are in their handshake (by the name their ClientHello
    /// gave): not dialed from node lists meanwhile.
    pub incoming: Mutex<ClaimedDialers>,
    /// Ended by the listener, the snow-epmd keeper and the mesh task when they stop: shutdown
    /// waits for all three.
    pub tasks_done: (Sender<()>, Receiver<()>),
    /// The global registry and process groups.
    pub cluster: ClusterState,
}

impl ClusterContext for Driver {
    fn node_name(&self) -> &NodeName {
        &self.name
    }

    fn host(&self) -> Option<Arc<dyn Host>> {
        Driver::host(self)
    }

    fn conn(&self, node: &NodeName) -> Option<Arc<dyn Link>> {
        Driver::conn(self, node)
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
/// The capabilities this build offers (CALLS and ALIAS only if the host has them: `Prepared::start`).
pub(crate) fn offered_flags(transitive: bool, atom_cache: bool) -> Flags {
    let cache = if atom_cache { Flags::ATOM_CACHE } else { Flags::NONE };
    let base = Flags::FRAGMENTS
        .with(cache)
        .with(Flags::SPAWN)
        .with(Flags::EXTENSIONS)
        .with(CLUSTER_FLAGS)
        .with(Flags::CALLS)
        .with(Flags::ALIAS);
    if transitive {
        base.with(Flags::MESH)
    } else {
        base
    }
}

/// What [`Driver::decide`] concluded for an authenticated incoming connection.
pub(crate) enum Decision {
    /// Keep it: the new connection is installed (and an older one, if any, was replaced).
    Accept,
    /// Refuse it: another connection with that node is kept.
    Duplicate,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Weak<dyn Host>,
        runtime: Arc<dyn Runtime>,
        hs: HandshakeConfig,
        tls_client: Arc<ClientConfig>,
        tls_server: Arc<ServerConfig>,
        ca_verified: bool,
        epmd: String,
        opts: Options,
        listen_addr: SocketAddr,
    ) -> Driver {
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        let admission = Admission::new(AdmissionLimits {
            max_pending: opts.max_pending_handshakes,
            max_pending_per_source: opts.max_pending_per_address,
            failures_per_window: opts.auth_failures_per_minute,
            window: Duration::from_secs(60),
        });
        let peers = Mutex::new(PeerTable::new(hs.local.clone()));
        let cluster = ClusterState::new(&hs.local, hs.creation, GlobalConfig { conflict_notice: opts.conflict_notice });
        Driver {
            host,
            runtime,
            name: hs.local.clone(),
            creation: hs.creation,
            hs,
            tls_client,
            tls_server,
            ca_verified,
            epmd,
            opts,
            listen_addr,
            peers,
            backoff: Mutex::new(BackoffTable::default()),
            watch: Mutex::new(NodeWatches::default()),
            spawns: Mutex::new(HashMap::new()),
            calls: Mutex::new(CallTable::new()),
            log_limit: Mutex::new(LogLimit::default()),
            admission: Mutex::new(admission),
            closing: AtomicBool::new(false),
            stop_tx,
            stop_rx,
            attempts: async_channel::unbounded(),
            mesh_deferred: Mutex::new(DialQueue::default()),
            incoming: Mutex::new(ClaimedDialers::default()),
            tasks_done: async_channel::bounded(3),
            cluster,
        }
    }

    /// The host of this node's processes, while it exists.
    pub fn host(&self) -> Option<Arc<dyn Host>> {
        self.host.upgrade()
    }

    /// Runs `task` in the background on the runtime.
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(Box::pin(task));
    }

    /// Waits for `duration` on the runtime's clock.
    pub async fn sleep(&self, duration: Duration) {
        self.runtime.sleep_until(self.runtime.now() + duration).await
    }

    /// Runs `work` until it completes (`Some`) or `duration` passes (`None`), on the runtime's
    /// clock: every wait of the driver has a deadline.
    pub async fn within<T>(&self, duration: Duration, work: impl std::future::Future<Output = T>) -> Option<T> {
        let deadline = self.runtime.sleep_until(self.runtime.now() + duration);
        futures_lite::future::or(async { Some(work.await) }, async {
            deadline.await;
            None
        })
        .await
    }

    /// The hard ceiling of one node's queue (README, "Guarantees"): a process whose message finds
    /// the queue at it exits instead of queueing more.
    pub fn ceiling(&self) -> usize {
        self.opts.queue_ceiling.unwrap_or(self.opts.byte_budget.saturating_mul(2)).max(self.opts.byte_budget)
    }

    /// Logs a warning of `kind` unless one was logged within the last minute; the next line says
    /// how many were suppressed.
    pub fn warn_limited(&self, kind: &'static str, line: impl FnOnce() -> String) {
        if let Some(suppressed) = lock(&self.log_limit).check(&kind, Instant::now()) {
            log::warn!("{}: {}{}", self.name, line(), suppressed_note(suppressed));
        }
    }

    /// The nodes with a connection up.
    pub fn connected(&self) -> Vec<NodeName> {
        lock(&self.peers).connected()
    }

    /// The connection to `node`, if up.
    pub fn conn(&self, node: &NodeName) -> Option<Arc<dyn Link>> {
        lock(&self.peers).connection(node).cloned()
    }

    /// Queues a control message for `node` (see [`Driver::route_message`]).
    pub fn route(self: &Arc<Self>, node: &NodeName, msg: &Control, origin: Origin) -> Backpressure {
        self.route_message(node, lane_of(msg), Outgoing::Control(msg), origin)
    }

    /// Queues a message for `node`: encoded by its connection if it is up (with the atom cache
    /// where negotiated, PROTOCOL.md 4.4), else encoded in full and routed as
    /// [`Driver::route_frame`] does.
    pub fn route_message(
        self: &Arc<Self>,
        node: &NodeName,
        lane: Lane,
        msg: Outgoing<'_>,
        origin: Origin,
    ) -> Backpressure {
        let up = lock(&self.peers).connection(node).cloned();
        match up {
            Some(conn) => {
                let frame = frame_for(&*conn, msg);
                self.push_on(&*conn, lane, frame, origin)
            }
            None => self.route_frame(node, lane, msg.to_bytes(), origin),
        }
    }

    /// Queues a frame for `node`: onto its connection, or into the pending queue while it
    /// connects (starting an attempt if none runs). Nothing is dropped while the node is
    /// connected or connecting; what the sender must do is returned:
    /// - over the byte budget, a process is suspended at its next `.await`
    ///   ([`Backpressure::Suspend`]) until the queue drains;
    /// - at the ceiling, a message of a process is refused and the process exits
    ///   ([`Backpressure::Overflow`]); a message from outside any process closes the connection.
    pub fn route_frame(self: &Arc<Self>, node: &NodeName, lane: Lane, bytes: Vec<u8>, origin: Origin) -> Backpressure {
        let ceiling = (origin == Origin::Process).then(|| self.ceiling());
        let routed = lock(&self.peers).route(node, lane, bytes, ceiling);
        let (conn, bytes) = match routed {
            Routed::Connection(conn, bytes) => (conn, bytes),
            Routed::Queued { bytes } if bytes >= self.opts.byte_budget => return self.suspend(node, origin),
            Routed::Queued { .. } | Routed::Dropped => return Backpressure::Clear,
            Routed::AtCeiling(_) => return self.overflow(node),
            Routed::StartAttempt => {
                self.start_attempt(node, true);
                return Backpressure::Clear;
            }
        };
        self.push_on(&*conn, lane, Frame::Encoded(bytes), origin)
    }

    /// Queues a control message on an established connection (a reply from its reader, or a
    /// send whose caller already holds the connection). Signals are never refused.
    pub fn send_on(self: &Arc<Self>, conn: &dyn Link, msg: &Control, origin: Origin) -> Backpressure {
        self.push_on(conn, lane_of(msg), frame_for(conn, Outgoing::Control(msg)), origin)
    }

    fn push_on(self: &Arc<Self>, conn: &dyn Link, lane: Lane, frame: Frame<'_>, origin: Origin) -> Backpressure {
        let ceiling = match origin {
            Origin::Process | Origin::Runtime => Some(self.ceiling()),
            Origin::Signal { .. } => None,
        };
        match conn.push(lane, frame, ceiling) {
            Pushed::Clear | Pushed::Closed => Backpressure::Clear,
            Pushed::OverBudget => self.suspend(conn.peer(), origin),
            Pushed::AtCeiling if origin == Origin::Process => self.overflow(conn.peer()),
            Pushed::AtCeiling => {
                self.warn_limited("ceiling-runtime", || {
                    format!(
                        "closing the connection to {}: a message sent from outside any process found its send queue at its ceiling ({} bytes); links and monitors across it fire :noconnection",
                        conn.peer(),
                        self.ceiling()
                    )
                });
                conn.close();
                Backpressure::Clear
            }
        }
    }

    /// The backpressure for a sender that found `node`'s queue over its budget.
    fn suspend(self: &Arc<Self>, node: &NodeName, origin: Origin) -> Backpressure {
        match origin {
            Origin::Process | Origin::Signal { by_process: true } => {
                Backpressure::Suspend(Arc::new(PeerCongestion { dist: Arc::downgrade(self), node: node.clone() }))
            }
            Origin::Runtime | Origin::Signal { by_process: false } => Backpressure::Clear,
        }
    }

    /// A process's message found `node`'s queue at the ceiling: it was not queued, the process
    /// exits.
    fn overflow(&self, node: &NodeName) -> Backpressure {
        self.warn_limited("ceiling-process", || {
            format!(
                "a process sent to {node} without awaiting until the connection's send queue reached its ceiling ({} bytes); it exits with {{:send_queue_overflow, {node}}}",
                self.ceiling()
            )
        });
        Backpressure::Overflow(crate::reason::send_queue_overflow(node))
    }

    /// Asks the mesh task to start a connection attempt to `node` (the caller has put a
    /// connecting entry in the peer table).
    pub fn start_attempt(&self, node: &NodeName, respect_backoff: bool) {
        // Unbounded, and never closed before the driver state is dropped.
        let _ = self.attempts.0.try_send((node.clone(), respect_backoff));
    }

    /// Makes sure a connection to `node` exists or is being made. Returns a receiver of the outcome
    /// when `wait` is set (for callers that wait for the connection).
    pub fn ensure(
        &self,
        node: &NodeName,
        respect_backoff: bool,
        wait: bool,
    ) -> Option<async_channel::Receiver<Result<(), DistError>>> {
        let (tx, rx) = async_channel::bounded(1);
        let ensured = lock(&self.peers).ensure(node, wait.then_some(tx));
        match ensured {
            Ensured::Up(waiter) => {
                if let Some(waiter) = waiter {
                    let _ = waiter.try_send(Ok(()));
                }
            }
            Ensured::Waiting => {}
            Ensured::Closing(waiter) => {
                if let Some(waiter) = waiter {
                    let _ = waiter.try_send(Err(DistError::ShuttingDown));
                }
            }
            Ensured::StartAttempt => self.start_attempt(node, respect_backoff),
        }
        wait.then_some(rx)
    }

    /// Whether a sender to `node` may go on now; if not, registers `cx`'s waker to be woken when
    /// the queue drains, moves onto a connection, or the node is gone.
    pub fn poll_room(&self, node: &NodeName, cx: &mut Context<'_>) -> Poll<()> {
        let room = lock(&self.peers).poll_room(node, self.opts.byte_budget, cx.waker());
        match room {
            Room::Connection(conn) => conn.poll_room(cx),
            Room::Ready => Poll::Ready(()),
            Room::Wait => Poll::Pending,
        }
    }

    /// Acceptor side, after the initiator proved the cookie: keep this connection or not (the
    /// rules of [`PeerTable::decide`]). `make` builds the connection if it is kept. Also returns
    /// the connection it replaced, if any, and those waiting for it ([`Connected`]).
    pub fn decide(
        &self,
        peer: &PeerInfo,
        make: impl FnOnce() -> Arc<dyn Link>,
    ) -> (Decision, Option<Arc<dyn Link>>, Connected) {
        let mut peers = lock(&self.peers);
        let mut made = None;
        let verdict = peers.decide(
            &peer.name,
            peer.creation,
            |c| c.creation(),
            || {
                let conn = make();
                made = Some(conn.clone());
                conn
            },
        );
        match (verdict, made) {
            (Verdict::Accept { replaced, pending }, Some(conn)) => {
                let waiters = take_over(&*conn, pending);
                (Decision::Accept, replaced, Connected(waiters))
            }
            _ => (Decision::Duplicate, None, Connected(Vec::new())),
        }
    }

    /// Initiator side, the acceptor said ok: install the connection, taking over the pending
    /// queue. Returns a connection it replaced (the peer restarted), if any, and those waiting
    /// for the connection ([`Connected`]).
    pub fn install(&self, conn: &Arc<dyn Link>) -> (Option<Arc<dyn Link>>, Connected) {
        let mut peers = lock(&self.peers);
        let (replaced, pending) = peers.install(conn.peer(), conn.clone());
        let waiters = take_over(&**conn, pending);
        drop(peers);
        (replaced, Connected(waiters))
    }

    /// A connection came up: log, reset backoff, tell node watchers, share our node list. Called
    /// before the connection's reader starts, so every `{:nodeup, node}` is in its subscriber's
    /// mailbox before anything that node sends on this connection is delivered.
    pub fn connection_up(self: &Arc<Self>, conn: &dyn Link, addr: &str) {
        lock(&self.backoff).remove(conn.peer());
        log::info!(
            "{}: connection to {} up ({addr}, creation {}, flags {:?})",
            self.name,
            conn.peer(),
            conn.creation(),
            conn.flags()
        );
        self.cluster.node_up(&**self, conn.peer(), conn.creation(), conn.flags());
        let watchers = lock(&self.watch).subscribers();
        if let Some(host) = self.host() {
            let msg = Term::tuple([Term::atom("nodeup"), Term::Atom(conn.peer().as_atom().clone())]);
            for w in watchers {
                host.deliver_message(&w, msg.clone());
            }
        }
        if conn.flags().contains(Flags::MESH) {
            let nodes: Vec<NodeName> = self.connected().into_iter().filter(|n| n != conn.peer()).collect();
            let _ = self.send_on(conn, &Control::NodeList { nodes }, Origin::Signal { by_process: false });
        }
        // An attempt this connection ended (ours, or one that waited for the peer's) frees a slot.
        self.dial_deferred();
    }

    /// A connection ended (its reader finished). If it was the node's current connection, the node
    /// is down: links and monitors fire `:noconnection`, node monitors get `{:nodedown, node}`,
    /// remote spawns waiting on it fail.
    pub fn connection_down(&self, conn: &dyn Link, reason: &str) {
        conn.close();
        conn.quiesce();
        let current = lock(&self.peers).remove_if_current(conn.peer(), |c| link::same(&**c, conn));
        if current {
            log::info!("{}: connection to {} down: {reason}", self.name, conn.peer());
            self.node_gone(conn.peer(), true);
        } else {
            log::debug!("{}: superseded connection to {} closed: {reason}", self.name, conn.peer());
        }
    }

    /// A connection was replaced by a newer one from the same node (it restarted): the old
    /// incarnation's links and monitors fire as for a lost connection.
    pub fn connection_replaced(&self, old: &dyn Link) {
        old.close();
        old.quiesce();
        log::info!("{}: {} restarted (creation {}); old connection closed", self.name, old.peer(), old.creation());
        self.node_gone(old.peer(), true);
    }

    /// An attempt to connect failed: drop what was queued, fire `:noconnection` on links and
    /// monitors made meanwhile, tell `monitor_node` watchers, fail waiters.
    pub fn attempt_failed(&self, node: &NodeName, err: &DistError) {
        let pending = lock(&self.peers).attempt_failed(node);
        let Some(mut pending) = pending else { return };
        pending.wake_room();
        log::warn!("{}: cannot connect to {node}: {err} ({} queued frames dropped)", self.name, pending.queue.len());
        for w in pending.waiters {
            let _ = w.try_send(Err(err.clone()));
        }
        self.node_gone(node, false);
    }

    /// The local `pid` exited: withdraw its global names and group memberships, forget its node
    /// watches, and mark its remote spawns in flight as abandoned (their replies are answered by
    /// undoing the link or monitor).
    pub fn process_exited(&self, pid: &Pid) {
        self.cluster.process_exited(self, pid);
        lock(&self.watch).forget(pid);
        for wait in lock(&self.spawns).values_mut() {
            if &wait.requester == pid {
                wait.abandoned = true;
            }
        }
    }

    /// Everything that follows from `node` being unreachable. Callers have quiesced the
    /// connection (if there was one), so every message and signal it delivered comes before
    /// the `{:nodedown, node}` and the `:noconnection` signals.
    fn node_gone(&self, node: &NodeName, was_up: bool) {
        if was_up {
            self.cluster.node_down(self, node);
        }
        let told = lock(&self.watch).take_for_down(node, was_up);
        let failed_spawns: Vec<SpawnWait> = {
            let mut spawns = lock(&self.spawns);
            let refs: Vec<Ref> = spawns.iter().filter(|(_, w)| &w.node == node).map(|(r, _)| r.clone()).collect();
            refs.into_iter().filter_map(|r| spawns.remove(&r)).collect()
        };
        for wait in failed_spawns {
            let _ = wait.reply.try_send(Err(Term::atom("noconnection")));
        }
        call_table::node_gone(&self.calls, node);
        let Some(host) = self.host() else { return };
        host.connection_lost(node);
        let msg = Term::tuple([Term::atom("nodedown"), Term::Atom(node.as_atom().clone())]);
        for w in told {
            host.deliver_message(&w, msg.clone());
        }
    }

    /// Whether every connection that is up has handed what it queued to its socket.
    pub fn all_flushed(&self) -> bool {
        let conns: Vec<Arc<dyn Link>> = {
            let peers = lock(&self.peers);
            peers.connected().iter().filter_map(|node| peers.connection(node).cloned()).collect()
        };
        conns.iter().all(|conn| conn.is_flushed())
    }

    /// Stops everything: no new connections, every connection closed (firing `:noconnection`).
    pub fn shutdown(&self) {
        if self.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop_tx.close();
        let peers = lock(&self.peers).close();
        for (node, peer) in peers {
            match peer {
                Peer::Up(conn) => {
                    conn.close();
                    conn.quiesce();
                    log::info!("{}: connection to {node} closed (shutdown)", self.name);
                    self.node_gone(&node, true);
                }
                Peer::Connecting(mut p) => {
                    p.wake_room();
                    for w in p.waiters {
                        let _ = w.try_send(Err(DistError::ShuttingDown));
                    }
                    self.node_gone(&node, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use snow_shared::{Atom, Ref};

    use super::*;

    /// A connection that records what is queued on it.
    struct Recorded {
        peer: NodeName,
        flags: Flags,
        frames: Mutex<Vec<Vec<u8>>>,
    }

    impl Link for Recorded {
        fn peer(&self) -> &NodeName {
            &self.peer
        }
        fn creation(&self) -> u32 {
            1
        }
        fn flags(&self) -> Flags {
            self.flags
        }
        fn push(&self, _lane: Lane, frame: Frame<'_>, _ceiling: Option<usize>) -> Pushed {
            lock(&self.frames).push(frame.into_bytes());
            Pushed::Clear
        }
        fn enqueue_all(&self, frames: Vec<(Lane, Vec<u8>)>) {
            lock(&self.frames).extend(frames.into_iter().map(|(_, f)| f));
        }
        fn poll_room(&self, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
        fn close(&self) {}
        fn quiesce(&self) {}
        fn queue_high_water(&self) -> usize {
            0
        }
        fn written_bytes(&self) -> u64 {
            0
        }
        fn socket_writes(&self) -> u64 {
            0
        }
        fn is_flushed(&self) -> bool {
            true
        }
    }

    #[test]
    fn frames_queued_while_connecting_that_the_connection_did_not_negotiate_are_dropped() {
        let peer = NodeName::parse("old@h").unwrap();
        let me = Pid::new(NodeName::parse("me@h").unwrap(), 1, 1);
        let send = Control::Send { from: me.clone(), to: Pid::new(peer.clone(), 1, 1), msg: Term::Int(1) };
        let alias = Control::AliasSend { from: me.clone(), alias: Ref::new(peer.clone(), 9, 1), msg: Term::Int(2) };
        let reg = Control::RegSend { from: me.clone(), name: Atom::new("svc"), msg: Term::Int(3) };
        let queued = || {
            let queue = [&send, &alias, &reg].iter().map(|m| (sender_lane(&me), m.to_bytes())).collect();
            Some(Pending::<Waiter> { queue, ..Pending::default() })
        };
        let old = Recorded { peer: peer.clone(), flags: Flags::ALL.without(Flags::ALIAS), frames: Mutex::new(vec![]) };
        take_over(&old, queued());
        assert_eq!(*lock(&old.frames), vec![send.to_bytes(), reg.to_bytes()], "the ALIAS_SEND is dropped, in order");
        let new = Recorded { peer, flags: Flags::ALL, frames: Mutex::new(vec![]) };
        take_over(&new, queued());
        assert_eq!(*lock(&new.frames), vec![send.to_bytes(), alias.to_bytes(), reg.to_bytes()]);
    }
}
