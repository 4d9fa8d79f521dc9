//! The daemon: opens its listeners and database, runs its tasks on its own executor threads,
//! accepts connections, answers EPMD and Snow requests, and keeps registrations for as long as
//! their connections live, persisting every acknowledged change before replying. Protocol and
//! policy decisions are the sans-IO core's (`snow_shared::epmd`); this module moves bytes.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use async_executor::{Executor, Task};
use async_io::Async;
use async_net::TcpStream;
use futures_lite::AsyncReadExt;
use snow_shared::cookie::{derive_key_with_iterations, KeyLabel};
use snow_shared::epmd::auth::Authenticator;
use snow_shared::epmd::gossip::{Gossip, GossipConfig};
use snow_shared::epmd::listing::{encode_list_resp, ListRow};
use snow_shared::epmd::registry::{Registered, Registry, RegistryPolicy};
use snow_shared::epmd::session::Query;
use snow_shared::epmd::table::{Entry, State, Table, TableLimits};
use snow_shared::epmd::wire::{
    encode_alive2_resp, encode_names_head, names_line, refusal, Alive2Req, Request, REFUSED_CREATION,
};
use snow_shared::NodeName;

use crate::clock::now_ms;
use crate::config::Config;
use crate::io::{read_request_after, within, write_all, ReadError};
use crate::listen::{bind_all, ensure_file_limit, ListenError};
use crate::lookup::{answer_at_once, serve_session, Next};
use crate::state::{lock, ConnectionSlot, Protocol, Shared};
use crate::store::{Store, StoreError};
use crate::{gossip_driver, keys};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listeners could not be opened, or the open-file limit is too low.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The daemon's key or the pinned keys could not be read.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// Peers were given but no cookie.
    #[error(
        "--peer needs a cluster cookie to authenticate gossip: set SNOW_COOKIE or SNOW_COOKIE_FILE or --cookie-file \
         (create one with `snow-epmd gen-cookie`)"
    )]
    PeersWithoutCookie,
    /// A listener could not join the reactor, or a thread could not start.
    #[error("cannot start the daemon's I/O: {0}")]
    Runtime(std::io::Error),
}

/// A running daemon. Dropping it does not stop it (its tasks are detached and its threads keep
/// running); call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addrs: Vec<SocketAddr>,
    /// Closed (every sender dropped) when the accept loops and the gossip loop have ended.
    tasks_done: async_channel::Receiver<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
    executor: Arc<Executor<'static>>,
}

impl ServerHandle {
    /// The first bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every bound address (`--listen PORT` gives an IPv4 and, with IPv6, an IPv6 one).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// This daemon's id, as it appears in other daemons' `origin` column.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// This daemon's public key, as other daemons pin it.
    pub fn public_key(&self) -> [u8; 32] {
        *self.shared.state().gossip.table().public_key()
    }

    /// A snapshot of the table.
    pub fn entries(&self) -> Vec<Entry> {
        self.shared.state().gossip.table().entries().cloned().collect()
    }

    /// The daemons this one knows (its own id included), and whether each is pinned.
    pub fn daemons(&self) -> Vec<(String, bool)> {
        let st = self.shared.state();
        let t = st.gossip.table();
        t.daemons().map(|d| (d.clone(), t.pinned_key(d).is_some())).collect()
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
        let _ = self.tasks_done.recv().await;
        let flushed = self.shared.store.flush().await;
        self.shared.quit_tx.close();
        drop(self.executor);
        for t in self.threads {
            let _ = t.join();
        }
        flushed
    }
}

/// Starts a daemon: checks the open-file limit, opens the database and the daemon's key
/// (restoring the table with a new incarnation), binds the listeners and starts the accept and
/// gossip tasks on the daemon's own threads.
pub async fn serve(config: Config) -> Result<ServerHandle, ServeError> {
    if !config.peers.is_empty() && config.cookie.is_none() {
        return Err(ServeError::PeersWithoutCookie);
    }
    ensure_file_limit(config.max_connections, gossip_driver::max_in_flight(config.fanout))?;
    let (store, mut loaded) = Store::open(&config.data_dir, config.repair)?;
    let identity = keys::load_or_create(&config.data_dir)?;
    loaded.table.pins = keys::load_known(&config.data_dir)?;
    let listeners = bind_all(&config.listen)?;
    let local_addrs: Vec<SocketAddr> =
        listeners.iter().map(|l| l.local_addr()).collect::<Result<_, _>>().map_err(ServeError::Runtime)?;
    let id = config.advertise.clone().unwrap_or_else(|| advertised_id(local_addrs[0], &config.hostname));
    let limits = TableLimits {
        max_entries: config.max_entries,
        max_remote_entries: config.max_remote_entries,
        max_entries_per_daemon: config.max_entries_per_daemon,
        max_daemons: config.max_daemons,
        grace_ms: config.grace.as_millis() as u64,
        tombstone_ttl_ms: config.tombstone_ttl.as_millis() as u64,
    };
    if let Some(previous) = loaded.previous_id.take().filter(|p| *p != id) {
        // Same data directory, different address (e.g. port 0): the entries are still ours.
        log::warn!("snow-epmd {id}: was {previous} in the previous run; use --advertise for a stable id");
        for e in loaded.table.entries.iter_mut().filter(|e| e.owner == previous) {
            e.owner = id.clone();
        }
        loaded.table.owners.retain(|(o, _)| *o != previous);
    }
    let mut table = Table::restore(id.clone(), identity, loaded.table, limits, now_ms());
    let initial: Vec<_> =
        table.take_changes().into_iter().filter(|c| !matches!(c, snow_shared::epmd::table::Change::Pin(..))).collect();
    store.apply(&table, initial)?;
    store.flush().await?;
    let gossip_config = GossipConfig { fanout: config.fanout, ..GossipConfig::default() };
    let gossip = Gossip::new(table, config.peers.clone(), rand::random(), gossip_config);
    let auth = config.cookie.as_ref().map(|c| {
        let key = derive_key_with_iterations(c, KeyLabel::Gossip, config.pbkdf2_iterations);
        Authenticator::new(*key.expose_secret(), config.gossip_window.as_millis() as u64, 1 << 16)
    });
    log::info!(
        "snow-epmd {id}: listening on {}, incarnation {}, {} entries loaded, gossip {}",
        local_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" and "),
        gossip.table().incarnation(),
        gossip.table().len(),
        if auth.is_some() { "on" } else { "off (no cookie)" }
    );
    let host = NodeName::parse(&format!("x@{}", config.hostname))
        .map(|n| n.host().to_owned())
        .unwrap_or_else(|_| config.hostname.clone());
    let policy = RegistryPolicy {
        allow_remote: config.allow_remote_register,
        max_per_source: config.max_per_source,
        default_host: config.hostname.clone(),
    };
    let protocol = Protocol { gossip, registry: Registry::new(policy), auth };
    let threads = config.threads.max(1);
    let shared = Arc::new(Shared::new(config, id, host, local_addrs[0].port(), protocol, store));
    let executor = Arc::new(Executor::new());
    let (done_tx, tasks_done) = async_channel::bounded::<()>(1);
    let mut tasks: Vec<Task<()>> = Vec::new();
    for listener in listeners {
        let listener = Async::new(listener).map_err(ServeError::Runtime)?;
        let (sh, ex, done) = (shared.clone(), executor.clone(), done_tx.clone());
        tasks.push(executor.spawn(async move {
            accept_loop(sh, listener, ex).await;
            drop(done);
        }));
    }
    let (sh, ex) = (shared.clone(), executor.clone());
    tasks.push(executor.spawn(async move {
        gossip_driver::run(sh, ex).await;
        drop(done_tx);
    }));
    // Detached: dropping the handle must not stop the daemon.
    tasks.into_iter().for_each(Task::detach);
    let mut handles = Vec::new();
    for i in 0..threads {
        let (ex, quit) = (executor.clone(), shared.quit_rx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("snow-epmd-{i}"))
            .spawn(move || {
                let _ = async_io::block_on(ex.run(quit.recv()));
            })
            .map_err(ServeError::Runtime)?;
        handles.push(handle);
    }
    Ok(ServerHandle { shared, local_addrs, tasks_done, threads: handles, executor })
}

fn advertised_id(addr: SocketAddr, hostname: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{hostname}:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Accepts connections and answers lookups whose request is already there in the loop itself
/// ([`answer_at_once`]); other connections get a task, counted against `--max-connections` and
/// `--max-connections-per-source`.
async fn accept_loop(sh: Arc<Shared>, listener: Async<TcpListener>, ex: Arc<Executor<'static>>) {
    let mut out = Vec::with_capacity(1024);
    while !sh.is_stopping() {
        // `read_with` tries accept(2) first and waits for readiness only if nothing is queued.
        let accepted = match within(listener.read_with(|l| l.accept()), Duration::from_millis(100)).await {
            None => continue,
            Some(a) => a,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => ok,
            Err(e) => {
                sh.log_rejected("listener", "accept", &e);
                async_io::Timer::after(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (stream, pending) = match answer_at_once(&sh, stream, peer, &mut out) {
            Next::Done => continue,
            Next::Task(stream, read) => (stream, Pending::Read(read)),
            Next::Finish(stream, rest) => (stream, Pending::Write(rest)),
        };
        let slot = match sh.open_connection(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                sh.log_rejected(&peer.ip().to_string(), "connection", &why);
                continue;
            }
        };
        let stream = match Async::new(stream) {
            Ok(s) => TcpStream::from(s),
            Err(e) => {
                sh.log_rejected(&peer.ip().to_string(), "connection", &format!("cannot watch the socket: {e}"));
                continue;
            }
        };
        let task = match pending {
            Pending::Read(read) => ex.spawn(handle_connection(sh.clone(), slot, stream, peer, read)),
            Pending::Write(rest) => ex.spawn(finish_reply(sh.clone(), slot, stream, peer, rest)),
        };
        task.detach();
    }
}

/// What a connection's task starts with.
enum Pending {
    /// The bytes of the request read so far.
    Read(Vec<u8>),
    /// The rest of a reply to write before closing.
    Write(Vec<u8>),
}

async fn finish_reply(sh: Arc<Shared>, _slot: ConnectionSlot, mut stream: TcpStream, peer: SocketAddr, rest: Vec<u8>) {
    if let Err(e) = write_all(&mut stream, &rest, sh.config.request_timeout).await {
        sh.log_rejected(&peer.ip().to_string(), "reply", &e);
    }
}

async fn handle_connection(
    sh: Arc<Shared>,
    slot: ConnectionSlot,
    mut stream: TcpStream,
    peer: SocketAddr,
    first: Vec<u8>,
) {
    let sh = &sh;
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
        Request::Session => match slot.open_session() {
            Ok(session) => return serve_session(sh, stream, peer, &after, session).await,
            Err(why) => return sh.log_rejected(&who(), "lookup session", &why),
        },
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
        Request::List => list_reply(sh),
    };
    if let Err(e) = write_all(&mut stream, &reply, timeout).await {
        sh.log_rejected(&who(), "reply", &e);
    }
}

/// A lookup's reply (the slow path: the request arrived in pieces).
fn answer(sh: &Shared, query: Query<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let st = sh.state();
    query.answer(st.gossip.table(), &st.registry, &sh.host, &mut out);
    out
}

fn list_reply(sh: &Shared) -> Vec<u8> {
    let now = now_ms();
    let st = sh.state();
    let table = st.gossip.table();
    let mut rows: Vec<ListRow> = table.entries().map(|e| ListRow::from_entry(e, table.me(), now)).collect();
    rows.extend(st.registry.local_names().map(|l| ListRow::from_local(l, &sh.host, now)));
    drop(st);
    encode_list_resp(&rows)
}

fn names_reply(sh: &Shared, dump: bool) -> Vec<u8> {
    let mut out = encode_names_head(sh.port);
    let st = sh.state();
    let table = st.gossip.table();
    let own = table.entries().filter(|e| e.owner == table.me()).map(|e| (e.name.name(), e.port, e.state));
    let local = st.registry.local_names().map(|l| (l.name.as_str(), l.request.port, State::Up));
    for (name, port, state) in own.chain(local) {
        let line = match (dump, state) {
            (false, State::Up) => names_line(name, port),
            (false, _) => continue,
            (true, State::Up) => format!("active name     <{name}> at port {port}, fd = 0\n"),
            (true, _) => format!("old/unused name <{name}> at port {port}, fd = 0\n"),
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
    let found = regs.iter().find(|(key, _)| match key {
        Registered::Node(n) => n.name().as_bytes() == raw || n.as_str().as_bytes() == raw,
        Registered::Local(n) => n.as_bytes() == raw,
    });
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
    let refuse = |code| encode_alive2_resp(code, REFUSED_CREATION, old_client);
    let outcome = {
        let mut st = sh.state();
        let st = &mut *st;
        let granted =
            st.registry.register(st.gossip.table_mut(), peer.ip(), &a, rand::random::<u32>().max(1), now_ms());
        match granted {
            Ok(g) => match sh.persist(st.gossip.table_mut()) {
                Ok(()) => Ok(g),
                Err(e) => {
                    st.registry.release(st.gossip.table_mut(), peer.ip(), &g.key, g.creation, true, now_ms());
                    Err((refusal::STORAGE, e.to_string()))
                }
            },
            Err(r) => Err((r.code, r.reason)),
        }
    };
    let granted = match outcome {
        Ok(g) => g,
        Err((code, why)) => {
            sh.log_rejected(&who(), "registration", &why);
            let _ = write_all(&mut stream, &refuse(code), timeout).await;
            return;
        }
    };
    let (key, creation) = (granted.key, granted.creation);
    if let Some(note) = granted.note {
        log::info!("snow-epmd {}: {note}", sh.id);
    }
    if let Err(e) = sh.store.flush().await {
        log::error!("snow-epmd {}: cannot make registration of {key} durable: {e}", sh.id);
        release(sh, peer.ip(), &key, creation, true).await;
        let _ = write_all(&mut stream, &refuse(refusal::STORAGE), timeout).await;
        return;
    }
    // Keep a handle so shutdown and STOP_REQ can close this registration's connection.
    lock(&sh.registrations).insert(key.clone(), (creation, stream.clone()));
    if let Err(e) = write_all(&mut stream, &encode_alive2_resp(0, creation, old_client), timeout).await {
        // The client went away before the reply: no zombie entry.
        log::info!("snow-epmd {}: {key} left before its registration reply ({e})", sh.id);
        release(sh, peer.ip(), &key, creation, true).await;
        return;
    }
    log::info!("snow-epmd {}: registered {key} port {} creation {creation} from {peer}", sh.id, a.port);
    hold_registration(sh, stream, peer.ip(), key, creation, slot.into_registration()).await;
}

/// Waits until a registered node's connection closes, then releases its registration.
async fn hold_registration(
    sh: &Arc<Shared>,
    mut stream: TcpStream,
    ip: IpAddr,
    key: Registered,
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
    release(sh, ip, &key, creation, !sh.is_stopping()).await;
}

/// Ends a registration: frees its per-source slot and, unless the daemon is stopping, marks the
/// entry down and makes that durable.
async fn release(sh: &Shared, ip: IpAddr, key: &Registered, creation: u32, mark_down: bool) {
    {
        let mut regs = lock(&sh.registrations);
        if regs.get(key).is_some_and(|(c, _)| *c == creation) {
            regs.remove(key);
        }
    }
    let changed = {
        let mut st = sh.state();
        let st = &mut *st;
        let changed = st.registry.release(st.gossip.table_mut(), ip, key, creation, mark_down, now_ms());
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store that {key} is down: {e}", sh.id);
        }
        changed
    };
    if changed {
        log::info!("snow-epmd {}: {key} (creation {creation}) is down", sh.id);
        if let Err(e) = sh.store.flush().await {
            log::error!("snow-epmd {}: cannot flush the database: {e}", sh.id);
        }
    }
}
