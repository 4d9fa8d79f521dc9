//! Daemon configuration: what `snow-epmd --listen ...` turns its flags into, and what tests build
//! directly to start a daemon in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use snow_shared::cookie::Cookie;

/// Where the daemon listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `--listen PORT`: every IPv4 address and, when the host has IPv6, every IPv6 address, on
    /// two sockets (the IPv6 one with IPV6_V6ONLY set), as Erlang's epmd does.
    AllAddresses(u16),
    /// `--listen ADDR:PORT`: that address only (an IPv6 address serves IPv6 only).
    Addr(SocketAddr),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::AllAddresses(port) => write!(f, "port {port} on all addresses"),
            Listen::Addr(addr) => addr.fmt(f),
        }
    }
}

/// Everything the daemon needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (port 0 = any free port; see [`crate::ServerHandle::local_addrs`]).
    pub listen: Vec<Listen>,
    /// Directory of the sled database, the daemon's key (`daemon.key`) and the pinned keys of
    /// other daemons (`known_daemons`).
    pub data_dir: PathBuf,
    /// Gossip seeds (`host:port` of other daemons).
    pub peers: Vec<String>,
    /// Cluster cookie; gossip is off without one.
    pub cookie: Option<Cookie>,
    /// This daemon's id as other daemons reach it (`host:port`); default from `listen`. The host
    /// part is the host this daemon speaks for in gossip.
    pub advertise: Option<String>,
    /// Host part given to short names (Erlang's `-sname x` registers `x`).
    pub hostname: String,
    /// Accept registrations from non-loopback addresses.
    pub allow_remote_register: bool,
    /// Honour STOP_REQ (and KILL while nodes are registered), as epmd's `-relaxed_command_check`.
    pub relaxed_command_check: bool,
    /// Move an unopenable database aside and start empty.
    pub repair: bool,
    /// How long restored local entries stay `unconfirmed`.
    pub grace: Duration,
    /// How long `down` entries stay before they are collected.
    pub tombstone_ttl: Duration,
    /// Gossip round interval.
    pub gossip_interval: Duration,
    /// Pinned peers per gossip round.
    pub fanout: usize,
    /// Most entries of this daemon's own (its registrations, any state).
    pub max_entries: usize,
    /// Most entries learned from other daemons, all together.
    pub max_remote_entries: usize,
    /// Most entries of any one other daemon.
    pub max_entries_per_daemon: usize,
    /// Most daemons known.
    pub max_daemons: usize,
    /// Most live registrations from one source address.
    pub max_per_source: usize,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Most connections from one source address that are not registrations (requests being
    /// read, lookup sessions, gossip).
    pub max_connections_per_source: usize,
    /// Most lookup sessions from one source address.
    pub max_sessions_per_source: usize,
    /// Deadline for a client to send its whole request, and for each gossip step.
    pub request_timeout: Duration,
    /// How long a lookup session (Snow request `Q`) may stay silent before the daemon closes it.
    pub session_idle: Duration,
    /// How long a lookup session may last at most, busy or not.
    pub session_lifetime: Duration,
    /// Accepted clock difference for gossip timestamps.
    pub gossip_window: Duration,
    /// PBKDF2 iterations for the gossip key (tests lower it; production keeps the default).
    pub pbkdf2_iterations: u32,
    /// Threads running the daemon's tasks.
    pub threads: usize,
}

impl Config {
    /// A configuration listening on `listen` with the documented defaults.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config::listening(vec![Listen::Addr(listen)], data_dir)
    }

    /// A configuration with the documented defaults for the given listen addresses.
    pub fn listening(listen: Vec<Listen>, data_dir: PathBuf) -> Config {
        Config {
            listen,
            data_dir,
            peers: Vec::new(),
            cookie: None,
            advertise: None,
            hostname: system_hostname(),
            allow_remote_register: false,
            relaxed_command_check: false,
            repair: false,
            grace: Duration::from_secs(30),
            tombstone_ttl: Duration::from_secs(3600),
            gossip_interval: Duration::from_millis(200),
            fanout: 3,
            max_entries: 16_384,
            max_remote_entries: 65_536,
            max_entries_per_daemon: 16_384,
            max_daemons: 1_024,
            max_per_source: 4_096,
            max_connections: 4_096,
            max_connections_per_source: 256,
            max_sessions_per_source: 16,
            request_timeout: Duration::from_secs(5),
            session_idle: Duration::from_secs(10),
            session_lifetime: Duration::from_secs(300),
            gossip_window: Duration::from_secs(30),
            pbkdf2_iterations: snow_shared::cookie::PBKDF2_ITERATIONS,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(4),
        }
    }
}

/// This machine's host name, lowercased (from the kernel), or `localhost` if it cannot be read.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The default data directory: `$XDG_STATE_HOME/snow-epmd`, else `~/.local/state/snow-epmd`,
/// else `./snow-epmd-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("snow-epmd");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(home).join(".local/state/snow-epmd");
    }
    PathBuf::from("snow-epmd-data")
}

/// Parses `PORT` (all IPv4 and IPv6 addresses, like epmd) or `ADDR:PORT` (`[::1]:4369` for IPv6).
pub fn parse_listen(text: &str) -> Result<Listen, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(Listen::AllAddresses(port));
    }
    text.parse::<SocketAddr>()
        .map(Listen::Addr)
        .map_err(|_| format!("{text:?} is not PORT or ADDR:PORT; examples: 4369, 127.0.0.1:4369, [::1]:4369"))
}
