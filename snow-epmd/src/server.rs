//! The daemon: accepts connections, answers EPMD and Snow requests, keeps registrations for as
//! long as their connections live, and persists every acknowledged change before replying.
//! All protocol decisions are made by the sans-IO core in `snow_shared::epmd`; this module moves
//! bytes and time between sockets and that core.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::Async;
use async_std::io::{ReadExt, WriteExt};
use async_std::net::TcpStream;
use async_std::task::{self, JoinHandle};
use smol_timeout::TimeoutExt;
use snow_shared::cookie::{derive_key_with_iterations, KeyLabel};
use snow_shared::epmd::auth::Authenticator;
use snow_shared::epmd::gossip::{Gossip, GossipConfig};
use snow_shared::epmd::listing::{encode_list_resp, ListRow};
use snow_shared::epmd::session::Query;
use snow_shared::epmd::table::{Entry, RegisterError, Registration, State, Table, TableLimits};
use snow_shared::epmd::wire::{
    encode_alive2_resp, encode_names_head, names_line, parse_extra, Alive2Req, Request, RequestError, RequestParser,
};
use snow_shared::NodeName;

use crate::config::Config;
use crate::lookup::{answer_at_once, serve_session, Next};
use crate::ratelimit::LogLimiter;
use crate::store::{Store, StoreError};
use crate::{gossip_driver, now_ms};

/// ALIVE2 result codes (nonzero = refused; Erlang clients only test for nonzero).
pub mod refusal {
    /// The name is registered and alive, or the name is invalid.
    pub const TAKEN: u8 = 1;
    /// The name is not a valid node name.
    pub const BAD_NAME: u8 = 2;
    /// Registration from a non-loopback address without `--allow-remote-register`.
    pub const NOT_LOCAL: u8 = 3;
    /// The table or the per-source registration cap is full.
    pub const LIMIT: u8 = 4;
    /// The change could not be made durable.
    pub const STORAGE: u8 = 5;
    /// The Extra field starts like a Snow option but is not one (the request parser rejects such
    /// requests before they get here; this code covers requests built in-process).
    pub const BAD_EXTRA: u8 = 6;
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; is another epmd running there? pick another port with --listen")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: std::io::Error,
    },
    /// Peers were given but no cookie.
    #[error(
        "--peer needs a cluster cookie to authenticate gossip: set SNOW_COOKIE or SNOW_COOKIE_FILE or --cookie-file \
         (create one with `snow-epmd gen-cookie`)"
    )]
    PeersWithoutCookie,
}

pub(crate) struct State_ {
    pub gossip: Gossip,
    per_source: HashMap<IpAddr, usize>,
}

pub(crate) struct Shared {
    pub config: Config,
    pub id: String,
    /// The host given to short names, in canonical form (as in the table's names).
    pub host: String,
    port: u16,
    state: Mutex<State_>,
    pub store: Store,
    pub auth: Option<Mutex<Authenticator>>,
    pub stopping: AtomicBool,
    stop_tx: async_std::channel::Sender<()>,
    stop_rx: async_std::channel::Receiver<()>,
    connections: AtomicUsize,
    registrations: Mutex<HashMap<NodeName, (u32, TcpStream)>>,
    logs: Mutex<LogLimiter>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State_> {
        lock(&self.state)
    }

    /// Logs `what` about `peer` at most once per minute per (peer, kind).
    pub fn log_rejected(&self, peer: &str, kind: &str, what: &dyn std::fmt::Display) {
        if lock(&self.logs).allow(&format!("{peer}/{kind}"), now_ms()) {
            log::warn!(
                "snow-epmd {}: rejected {kind} from {peer}: {what} (further ones logged once a minute)",
                self.id
            );
        }
    }

    /// Persists the table's pending changes (the caller holds the state lock).
    pub fn persist(&self, table: &mut Table) -> Result<(), StoreError> {
        let changes = table.take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        self.store.apply(table, changes)
    }

    fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_tx.close();
    }
}

/// A running daemon. Dropping it does not stop it; call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This daemon's id, as it appears in other daemons' `origin` column.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// A snapshot of the table.
    pub fn entries(&self) -> Vec<Entry> {
        self.shared.state().gossip.table().entries().cloned().collect()
    }

    /// Waits until the daemon is asked to stop (KILL_REQ).
    pub async fn stopped(&self) {
        // Returns when the channel is closed by request_stop.
        let _ = self.shared.stop_rx.recv().await;
    }

    /// Stops accepting, ends gossip, closes registration connections without marking their nodes
    /// down (after a restart they are `unconfirmed`, as after a crash), and flushes the database.
    pub async fn shutdown(self) -> Result<(), StoreError> {
        self.shared.request_stop();
        for (_, (_, stream)) in lock(&self.shared.registrations).drain() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for t in self.tasks {
            t.await;
        }
        self.shared.store.flush().await
    }
}

/// Starts a daemon: opens the database (restoring the table with a new incarnation), binds the
/// listener and starts the accept and gossip tasks.
pub async fn serve(config: Config) -> Result<ServerHandle, ServeError> {
    if !config.peers.is_empty() && config.cookie.is_none() {
        return Err(ServeError::PeersWithoutCookie);
    }
    let (store, mut loaded) = Store::open(&config.data_dir, config.repair)?;
    let listener = Async::<std::net::TcpListener>::bind(config.listen)
        .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    let local_addr =
        listener.get_ref().local_addr().map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    let id = config.advertise.clone().unwrap_or_else(|| advertised_id(local_addr, &config.hostname));
    let limits = TableLimits {
        max_entries: config.max_entries,
        grace_ms: config.grace.as_millis() as u64,
        tombstone_ttl_ms: config.tombstone_ttl.as_millis() as u64,
    };
    if let Some(previous) = loaded.previous_id.take().filter(|p| *p != id) {
        // Same data directory, different address (e.g. port 0): the entries are still ours.
        log::warn!("snow-epmd {id}: was {previous} in the previous run; use --advertise for a stable id");
        for e in loaded.entries.iter_mut().filter(|e| e.owner == previous) {
            e.owner = id.clone();
        }
        loaded.owners.retain(|(o, _)| *o != previous);
    }
    let now = now_ms();
    let mut table = Table::restore(id.clone(), loaded.incarnation, loaded.owners, loaded.entries, limits, now);
    store.apply(&table, table.clone().take_changes())?;
    table.take_changes();
    store.flush().await?;
    let gossip = Gossip::new(
        table,
        config.peers.clone(),
        rand::random(),
        GossipConfig { fanout: config.fanout, ..GossipConfig::default() },
    );
    let auth = config.cookie.as_ref().map(|c| {
        let key = derive_key_with_iterations(c, KeyLabel::Gossip, config.pbkdf2_iterations);
        Mutex::new(Authenticator::new(*key.expose_secret(), config.gossip_window.as_millis() as u64, 1 << 16))
    });
    log::info!(
        "snow-epmd {id}: listening on {local_addr}, incarnation {}, {} entries loaded, gossip {}",
        gossip.table().incarnation(),
        gossip.table().len(),
        if auth.is_some() { "on" } else { "off (no cookie)" }
    );
    let (stop_tx, stop_rx) = async_std::channel::bounded(1);
    let host = NodeName::parse(&format!("x@{}", config.hostname))
        .map(|n| n.host().to_owned())
        .unwrap_or_else(|_| config.hostname.clone());
    let shared = Arc::new(Shared {
        host,
        port: local_addr.port(),
        config,
        id,
        state: Mutex::new(State_ { gossip, per_source: HashMap::new() }),
        store,
        auth,
        stopping: AtomicBool::new(false),
        stop_tx,
        stop_rx,
        connections: AtomicUsize::new(0),
        registrations: Mutex::new(HashMap::new()),
        logs: Mutex::new(LogLimiter::default()),
    });
    let tasks =
        vec![task::spawn(accept_loop(shared.clone(), listener)), task::spawn(gossip_driver::run(shared.clone()))];
    Ok(ServerHandle { shared, local_addr, tasks })
}

fn advertised_id(addr: SocketAddr, hostname: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{hostname}:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Accepts connections and answers lookups whose request is already there in the loop itself
/// ([`answer_at_once`]); other connections get a task, counted against `--max-connections`.
async fn accept_loop(sh: Arc<Shared>, listener: Async<std::net::TcpListener>) {
    let mut out = Vec::with_capacity(1024);
    while !sh.stopping.load(Ordering::SeqCst) {
        // `read_with` tries accept(2) first and waits for readiness only if nothing is queued.
        let accepted = match within(listener.read_with(|l| l.accept()), Duration::from_millis(100)).await {
            None => continue,
            Some(a) => a,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => ok,
            Err(e) => {
                sh.log_rejected("listener", "accept", &e);
                task::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (stream, pending) = match answer_at_once(&sh, stream, peer, &mut out) {
            Next::Done => continue,
            Next::Task(stream, read) => (stream, Pending::Read(read)),
            Next::Finish(stream, rest) => (stream, Pending::Write(rest)),
        };
        if sh.connections.load(Ordering::SeqCst) >= sh.config.max_connections {
            sh.log_rejected(&peer.ip().to_string(), "connection", &"too many simultaneous connections");
            continue;
        }
        // async-std's conversion registers the socket with the reactor and panics if that fails
        // (kernel out of memory or epoll watches): refuse that one connection instead.
        let Ok(stream) = std::panic::catch_unwind(|| TcpStream::from(stream)) else {
            sh.log_rejected(&peer.ip().to_string(), "connection", &"cannot register the socket with the reactor");
            continue;
        };
        sh.connections.fetch_add(1, Ordering::SeqCst);
        let slot = ConnectionSlot(sh.clone());
        match pending {
            Pending::Read(read) => task::spawn(handle_connection(slot, stream, peer, read)),
            Pending::Write(rest) => task::spawn(finish_reply(slot, stream, peer, rest)),
        };
    }
}

/// What a connection's task starts with.
enum Pending {
    /// The bytes of the request read so far.
    Read(Vec<u8>),
    /// The rest of a reply to write before closing.
    Write(Vec<u8>),
}

async fn finish_reply(slot: ConnectionSlot, mut stream: TcpStream, peer: SocketAddr, rest: Vec<u8>) {
    if let Err(e) = write_all(&mut stream, &rest, slot.0.config.request_timeout).await {
        slot.0.log_rejected(&peer.ip().to_string(), "reply", &e);
    }
}

/// Counts one open connection against `--max-connections` until dropped.
struct ConnectionSlot(Arc<Shared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why reading a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("no complete request before the deadline")]
    Timeout,
    #[error("connection closed before a complete request")]
    Closed,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Bad(#[from] RequestError),
}

/// Scratch space for reading a request, kept inside the connection's future: an idle connection
/// (waiting for its request) or a registration costs no heap buffer.
const SMALL_READ: usize = 256;
/// Largest single read for big requests (gossip), allocated only when such a request arrives.
const BIG_READ: usize = 16 * 1024;

/// Reads one framed request within `timeout`, a few bytes at a time or all at once.
pub(crate) async fn read_request(stream: &mut TcpStream, timeout: Duration) -> Result<Request, ReadError> {
    read_request_after(stream, timeout, &[]).await.map(|(request, _)| request)
}

/// [`read_request`] starting with the bytes already read (`first`); also returns the bytes that
/// arrived after the request (the first lookups of a session).
pub(crate) async fn read_request_after(
    stream: &mut TcpStream,
    timeout: Duration,
    first: &[u8],
) -> Result<(Request, Vec<u8>), ReadError> {
    let deadline = Instant::now() + timeout;
    let mut parser = RequestParser::new();
    if !first.is_empty() {
        if let (Some(request), used) = parser.feed_prefix(first)? {
            return Ok((request, first[used..].to_vec()));
        }
    }
    let mut small = [0u8; SMALL_READ];
    let mut big = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let want = parser.wanted().max(1);
        // Small requests are read greedily (the parser ignores what follows a request; clients
        // send nothing more before the reply): a lookup takes one read instead of two.
        let buf: &mut [u8] = if want <= SMALL_READ {
            &mut small[..]
        } else {
            if big.is_empty() {
                big = vec![0u8; BIG_READ];
            }
            &mut big[..want.min(BIG_READ)]
        };
        match within(stream.read(buf), left).await {
            None => return Err(ReadError::Timeout),
            Some(Err(e)) => return Err(ReadError::Io(e)),
            Some(Ok(0)) => return Err(ReadError::Closed),
            Some(Ok(n)) => {
                let read = if want <= SMALL_READ { &small[..n] } else { &big[..n] };
                if let (Some(request), used) = parser.feed_prefix(read)? {
                    return Ok((request, read[used..].to_vec()));
                }
            }
        }
    }
}

/// Runs `fut` with a deadline, starting the timer only if `fut` is not ready at once: most reads,
/// writes and accepts complete on their first poll, and a timer costs a reactor update (and
/// often a `timerfd_settime`) per use. `smol_timeout` polls its timer first, so it always pays.
pub(crate) async fn within<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(output) => Some(output),
        Poll::Pending => fut.timeout(limit).await,
    }
}

/// Writes all of `bytes` within `timeout`.
pub(crate) async fn write_all(stream: &mut TcpStream, bytes: &[u8], timeout: Duration) -> std::io::Result<()> {
    match within(stream.write_all(bytes), timeout).await {
        Some(r) => r,
        None => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline passed")),
    }
}

async fn handle_connection(slot: ConnectionSlot, mut stream: TcpStream, peer: SocketAddr, first: Vec<u8>) {
    let sh = &slot.0.clone();
    // No TCP_NODELAY: every reply is one write followed by close, which Nagle never delays
    // (saves a setsockopt per lookup). A lookup session writes each batch of replies at once.
    let who = || peer.ip().to_string();
    let (request, after) = match read_request_after(&mut stream, sh.config.request_timeout, &first).await {
        Ok(r) => r,
        Err(ReadError::Closed) => return,
        Err(e) => return sh.log_rejected(&who(), "request", &e),
    };
    let timeout = sh.config.request_timeout;
    let local = peer.ip().is_loopback();
    let reply = match request {
        Request::Alive2(a) => return serve_alive(sh, stream, peer, a, slot).await,
        Request::Gossip(sealed) => return gossip_driver::respond(sh, stream, peer, sealed).await,
        Request::Session => return serve_session(sh, stream, peer, &after).await,
        Request::PortPlease2(name) => answer(sh, Query::PortPlease2(&name)),
        Request::Names => names_reply(sh, false),
        Request::Dump if local => names_reply(sh, true),
        Request::Kill if local => kill_reply(sh),
        Request::Stop(name) if local => match stop_registration(sh, &name) {
            Some(r) => r.to_vec(),
            None => return sh.log_rejected(&who(), "STOP_REQ", &"ignored without --relaxed-command-check"),
        },
        Request::Dump | Request::Kill | Request::Stop(_) => {
            return sh.log_rejected(&who(), "operator request", &"only accepted from loopback")
        }
        Request::Lookup(name) => answer(sh, Query::Lookup(&name)),
        Request::List => {
            let now = now_ms();
            let st = sh.state();
            let table = st.gossip.table();
            let rows: Vec<ListRow> = table.entries().map(|e| ListRow::from_entry(e, table.me(), now)).collect();
            drop(st);
            encode_list_resp(&rows)
        }
    };
    if let Err(e) = write_all(&mut stream, &reply, timeout).await {
        sh.log_rejected(&who(), "reply", &e);
    }
}

/// A lookup's reply (the slow path: the request arrived in pieces).
fn answer(sh: &Shared, query: Query<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    query.answer(sh.state().gossip.table(), &sh.host, &mut out);
    out
}

fn names_reply(sh: &Shared, dump: bool) -> Vec<u8> {
    let mut out = encode_names_head(sh.port);
    let st = sh.state();
    let table = st.gossip.table();
    for e in table.entries().filter(|e| e.owner == table.me()) {
        let line = match (dump, e.state) {
            (false, State::Up) => names_line(e.name.name(), e.port),
            (false, _) => continue,
            (true, State::Up) => format!("active name     <{}> at port {}, fd = 0\n", e.name.name(), e.port),
            (true, _) => format!("old/unused name <{}> at port {}, fd = 0\n", e.name.name(), e.port),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn kill_reply(sh: &Shared) -> Vec<u8> {
    let registered = !lock(&sh.registrations).is_empty();
    if registered && !sh.config.relaxed_command_check {
        return b"NO".to_vec();
    }
    log::info!("snow-epmd {}: stopping on KILL_REQ", sh.id);
    sh.request_stop();
    b"OK".to_vec()
}

fn stop_registration(sh: &Shared, raw: &[u8]) -> Option<&'static [u8]> {
    if !sh.config.relaxed_command_check {
        return None;
    }
    let regs = lock(&sh.registrations);
    let found = regs.iter().find(|(n, _)| n.name().as_bytes() == raw || n.as_str().as_bytes() == raw);
    Some(match found {
        Some((_, (_, stream))) => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            b"STOPPED"
        }
        None => b"NOEXIST",
    })
}

async fn serve_alive(sh: &Arc<Shared>, mut stream: TcpStream, peer: SocketAddr, a: Alive2Req, slot: ConnectionSlot) {
    let old_client = a.high_version < 6;
    let who = || peer.ip().to_string();
    let timeout = sh.config.request_timeout;
    let outcome = register(sh, peer, &a);
    let (name, creation) = match outcome {
        Ok(ok) => ok,
        Err((code, why)) => {
            sh.log_rejected(&who(), "registration", &why);
            let _ = write_all(&mut stream, &encode_alive2_resp(code, 0, old_client), timeout).await;
            return;
        }
    };
    if let Err(e) = sh.store.flush().await {
        log::error!("snow-epmd {}: cannot make registration of {name} durable: {e}", sh.id);
        release(sh, peer.ip(), &name, creation, true).await;
        let _ = write_all(&mut stream, &encode_alive2_resp(refusal::STORAGE, 0, old_client), timeout).await;
        return;
    }
    // Keep a handle so shutdown and STOP_REQ can close this registration's connection.
    lock(&sh.registrations).insert(name.clone(), (creation, stream.clone()));
    if let Err(e) = write_all(&mut stream, &encode_alive2_resp(0, creation, old_client), timeout).await {
        // The client went away before the reply: no zombie entry.
        log::info!("snow-epmd {}: {name} left before its registration reply ({e})", sh.id);
        release(sh, peer.ip(), &name, creation, true).await;
        return;
    }
    log::info!("snow-epmd {}: registered {name} port {} creation {creation} from {peer}", sh.id, a.port);
    // A registration lives as long as its node: its own small task, so the request-handling
    // state above (about 1 KiB per connection) is freed (10,000 registrations must fit in 32 MiB).
    task::spawn(hold_registration(sh.clone(), stream, peer.ip(), name, creation, slot));
}

/// Waits until a registered node's connection closes, then releases its registration.
async fn hold_registration(
    sh: Arc<Shared>,
    mut stream: TcpStream,
    ip: IpAddr,
    name: NodeName,
    creation: u32,
    _slot: ConnectionSlot,
) {
    let mut buf = [0u8; 32];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    release(&sh, ip, &name, creation, !sh.stopping.load(Ordering::SeqCst)).await;
}

/// Registrations come from loopback only, unless the daemon runs with `--allow-remote-register`.
pub fn registration_allowed(allow_remote: bool, ip: IpAddr) -> bool {
    allow_remote
        || ip.is_loopback()
        || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
}

fn register(sh: &Shared, peer: SocketAddr, a: &Alive2Req) -> Result<(NodeName, u32), (u8, String)> {
    if !registration_allowed(sh.config.allow_remote_register, peer.ip()) {
        return Err((
            refusal::NOT_LOCAL,
            "registration from a non-loopback address (see --allow-remote-register)".into(),
        ));
    }
    let text = std::str::from_utf8(&a.name).map_err(|_| (refusal::BAD_NAME, "name is not UTF-8".to_owned()))?;
    let name =
        NodeName::parse_with_default_host(text, &sh.config.hostname).map_err(|e| (refusal::BAD_NAME, e.to_string()))?;
    let mut st = sh.state();
    let count = st.per_source.get(&peer.ip()).copied().unwrap_or(0);
    if count >= sh.config.max_per_source {
        return Err((refusal::LIMIT, format!("{count} live registrations from this address (--max-per-source)")));
    }
    // A Snow option in Extra (a node registering again asks for its creation) is consumed here;
    // only opaque Extra bytes are stored and returned in PORT2_RESP.
    let extra = parse_extra(&a.extra).map_err(|e| (refusal::BAD_EXTRA, e.to_string()))?;
    let reg = Registration {
        name: name.clone(),
        port: a.port,
        node_type: a.node_type,
        high_version: a.high_version,
        low_version: a.low_version,
        extra: extra.opaque.to_vec(),
    };
    let asked = extra.requested_creation;
    let entry =
        st.gossip.table_mut().register_requesting(reg, asked, rand::random::<u32>().max(1), now_ms()).map_err(|e| {
            match e {
                RegisterError::AlreadyRegistered(_) => (refusal::TAKEN, e.to_string()),
                RegisterError::TableFull(_) => (refusal::LIMIT, e.to_string()),
            }
        })?;
    if let Some(asked) = asked.filter(|c| c.get() != entry.creation) {
        log::info!(
            "snow-epmd {}: {name} asked for creation {asked}, but its entry here is another daemon's or \
             has another creation; assigned {}",
            sh.id,
            entry.creation
        );
    }
    *st.per_source.entry(peer.ip()).or_insert(0) += 1;
    let st = &mut *st;
    sh.persist(st.gossip.table_mut()).map_err(|e| (refusal::STORAGE, e.to_string()))?;
    Ok((name, entry.creation))
}

/// Ends a registration: frees its per-source slot and, unless the daemon is stopping, marks the
/// entry down and makes that durable.
async fn release(sh: &Shared, ip: IpAddr, name: &NodeName, creation: u32, mark_down: bool) {
    {
        let mut regs = lock(&sh.registrations);
        if regs.get(name).is_some_and(|(c, _)| *c == creation) {
            regs.remove(name);
        }
    }
    let changed = {
        let mut st = sh.state();
        if let Some(c) = st.per_source.get_mut(&ip) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                st.per_source.remove(&ip);
            }
        }
        let changed = mark_down && st.gossip.table_mut().unregister(name, creation, now_ms());
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store that {name} is down: {e}", sh.id);
        }
        changed
    };
    if changed {
        log::info!("snow-epmd {}: {name} (creation {creation}) is down", sh.id);
        if let Err(e) = sh.store.flush().await {
            log::error!("snow-epmd {}: cannot flush the database: {e}", sh.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_local_registration_is_refused_unless_allowed() {
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!registration_allowed(false, remote));
        assert!(!registration_allowed(false, "2001:db8::1".parse().unwrap()));
        assert!(registration_allowed(true, remote));
        assert!(registration_allowed(false, "127.0.0.1".parse().unwrap()));
        assert!(registration_allowed(false, "::1".parse().unwrap()));
        assert!(registration_allowed(false, "::ffff:127.0.0.1".parse().unwrap()));
    }
}
