//! Daemon configuration: what `snow-epmd --listen ...` turns its flags into, and what tests build
//! directly to start a daemon in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use snow_shared::cookie::Cookie;

/// Everything the daemon needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 = any free port; see [`crate::ServerHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// Gossip seeds (`host:port` of other daemons).
    pub peers: Vec<String>,
    /// Cluster cookie; gossip is off without one.
    pub cookie: Option<Cookie>,
    /// This daemon's id as other daemons reach it (`host:port`); default from `listen`.
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
    /// Peers per gossip round.
    pub fanout: usize,
    /// Most entries in the table.
    pub max_entries: usize,
    /// Most live registrations from one source address.
    pub max_per_source: usize,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Deadline for a client to send its whole request, and for each gossip step.
    pub request_timeout: Duration,
    /// How long a lookup session (Snow request `Q`) may stay silent before the daemon closes it.
    pub session_idle: Duration,
    /// Accepted clock difference for gossip timestamps.
    pub gossip_window: Duration,
    /// PBKDF2 iterations for the gossip key (tests lower it; production keeps the default).
    pub pbkdf2_iterations: u32,
}

impl Config {
    /// A configuration with the documented defaults for `listen` and `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
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
            max_per_source: 4_096,
            max_connections: 4_096,
            request_timeout: Duration::from_secs(5),
            session_idle: Duration::from_secs(10),
            gossip_window: Duration::from_secs(30),
            pbkdf2_iterations: snow_shared::cookie::PBKDF2_ITERATIONS,
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

/// Parses `[ADDR:]PORT` (a bare port listens on all IPv4 addresses, like epmd).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| format!("{text:?} is not [ADDR:]PORT; examples: 4369, 127.0.0.1:4369, [::1]:4369"))
}
