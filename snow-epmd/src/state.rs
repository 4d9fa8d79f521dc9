//! The daemon's shared state and who may touch it: the gossip state (table), the authenticator
//! and the registration policy under one lock; counters of connections per source address; the
//! open registrations' sockets (for shutdown and STOP_REQ); the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_net::TcpStream;
use snow_shared::epmd::auth::Authenticator;
use snow_shared::epmd::gossip::Gossip;
use snow_shared::epmd::registry::{Registered, Registry};
use snow_shared::epmd::table::Table;

use crate::clock::now_ms;
use crate::config::Config;
use crate::ratelimit::LogLimiter;
use crate::store::{Store, StoreError};

/// Locks `m`, recovering from a poisoned lock (a panicked task must not stop the daemon).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the state lock guards.
pub(crate) struct Protocol {
    pub gossip: Gossip,
    pub registry: Registry,
    /// None: no cookie, gossip off.
    pub auth: Option<Authenticator>,
}

/// Connections and sessions held by one source address.
#[derive(Debug, Default, Clone, Copy)]
struct SourceCount {
    connections: usize,
    sessions: usize,
}

/// Everything the daemon's tasks share.
pub(crate) struct Shared {
    pub config: Config,
    pub id: String,
    /// The host given to short names, in canonical form (as in the table's names).
    pub host: String,
    /// The port EPMD's NAMES reply announces (the first listener's).
    pub port: u16,
    protocol: Mutex<Protocol>,
    pub store: Store,
    pub stopping: AtomicBool,
    stop_tx: async_channel::Sender<()>,
    pub stop_rx: async_channel::Receiver<()>,
    /// Closed when the daemon's threads should end (after shutdown has flushed).
    pub quit_tx: async_channel::Sender<()>,
    pub quit_rx: async_channel::Receiver<()>,
    connections: AtomicUsize,
    sources: Mutex<HashMap<IpAddr, SourceCount>>,
    pub registrations: Mutex<HashMap<Registered, (u32, TcpStream)>>,
    logs: Mutex<LogLimiter>,
}

impl Shared {
    pub fn new(config: Config, id: String, host: String, port: u16, protocol: Protocol, store: Store) -> Shared {
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        let (quit_tx, quit_rx) = async_channel::bounded(1);
        Shared {
            config,
            id,
            host,
            port,
            protocol: Mutex::new(protocol),
            store,
            stopping: AtomicBool::new(false),
            stop_tx,
            stop_rx,
            quit_tx,
            quit_rx,
            connections: AtomicUsize::new(0),
            sources: Mutex::new(HashMap::new()),
            registrations: Mutex::new(HashMap::new()),
            logs: Mutex::new(LogLimiter::default()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, Protocol> {
        lock(&self.protocol)
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

    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_tx.close();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Takes a connection slot for `ip`, or says which cap is reached.
    pub fn open_connection(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, &'static str> {
        if self.connections.load(Ordering::SeqCst) >= self.config.max_connections {
            return Err("too many simultaneous connections (--max-connections)");
        }
        let mut sources = lock(&self.sources);
        let count = sources.entry(ip).or_default();
        if count.connections >= self.config.max_connections_per_source {
            return Err("too many simultaneous connections from this address (--max-connections-per-source)");
        }
        count.connections += 1;
        self.connections.fetch_add(1, Ordering::SeqCst);
        Ok(ConnectionSlot { sh: self.clone(), ip, per_source: true })
    }

    fn release_source(&self, ip: IpAddr, connections: usize, sessions: usize) {
        let mut sources = lock(&self.sources);
        if let Some(c) = sources.get_mut(&ip) {
            c.connections = c.connections.saturating_sub(connections);
            c.sessions = c.sessions.saturating_sub(sessions);
            if c.connections == 0 && c.sessions == 0 {
                sources.remove(&ip);
            }
        }
    }
}

/// Counts one open connection against `--max-connections` (and, unless it became a
/// registration, `--max-connections-per-source`) until dropped.
pub(crate) struct ConnectionSlot {
    sh: Arc<Shared>,
    ip: IpAddr,
    per_source: bool,
}

impl ConnectionSlot {
    /// The connection became a registration: from now on `--max-per-source` counts it instead.
    pub fn into_registration(mut self) -> ConnectionSlot {
        if self.per_source {
            self.sh.release_source(self.ip, 1, 0);
            self.per_source = false;
        }
        self
    }

    /// Takes a lookup-session slot for this connection's source, or refuses at
    /// `--max-sessions-per-source`.
    pub fn open_session(&self) -> Result<SessionSlot, &'static str> {
        let mut sources = lock(&self.sh.sources);
        let count = sources.entry(self.ip).or_default();
        if count.sessions >= self.sh.config.max_sessions_per_source {
            return Err("too many lookup sessions from this address (--max-sessions-per-source)");
        }
        count.sessions += 1;
        Ok(SessionSlot { sh: self.sh.clone(), ip: self.ip })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.sh.connections.fetch_sub(1, Ordering::SeqCst);
        if self.per_source {
            self.sh.release_source(self.ip, 1, 0);
        }
    }
}

/// Counts one lookup session against `--max-sessions-per-source` until dropped.
pub(crate) struct SessionSlot {
    sh: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.sh.release_source(self.ip, 0, 1);
    }
}
