//! The command line (README "snow-epmd"): the daemon flags, `list`, `lookup`, `ping` and
//! `gen-cookie`. Exit codes ([`crate::exit`]): 0 ok, 1 not found / refused, 2 usage or
//! configuration error, 3 daemon unreachable. Errors are one line on stderr.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use snow_shared::cookie::{Cookie, CookieError};
use snow_shared::epmd::listing::ListRow;
use snow_shared::NodeName;

use crate::client::{self, ClientError};
use crate::config::{default_data_dir, parse_listen, system_hostname, Config, Listen};
use crate::exit::{CONFIG as EXIT_CONFIG, NOT_FOUND as EXIT_NOT_FOUND, UNREACHABLE as EXIT_UNREACHABLE};
use crate::ping::PingTls;

/// snow-epmd: the Snow node-name daemon. Run one on every host; nodes register with it, daemons
/// gossip their tables to each other, and `list` / `lookup` show what is known.
#[derive(Debug, Parser)]
#[command(name = "snow-epmd", version, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    /// A client subcommand; without one, snow-epmd runs the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Daemon flags.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Flags of the daemon.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address and port to listen on: `4369` (all IPv4 and IPv6 addresses, as Erlang's epmd),
    /// `127.0.0.1:4369` or `[::1]:4369` (repeat for several). Erlang's tools and nodes talk to
    /// this port too.
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_listen, required = true)]
    pub listen: Vec<Listen>,
    /// Directory of the persistent table (sled). Default: $XDG_STATE_HOME/snow-epmd, else
    /// ~/.local/state/snow-epmd.
    #[arg(long, env = "SNOW_EPMD_DATA", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Another snow-epmd to gossip with (repeatable; env: comma-separated). One seed is enough:
    /// daemons learn of each other through gossip. Needs a cookie.
    #[arg(long = "peer", env = "SNOW_EPMD_PEERS", value_name = "HOST:PORT", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// File holding the cluster cookie (mode 600); otherwise SNOW_COOKIE or SNOW_COOKIE_FILE.
    /// Gossip is authenticated with a key derived from it; without a cookie gossip is off.
    #[arg(long, value_name = "FILE")]
    pub cookie_file: Option<PathBuf>,
    /// Accept node registrations from other hosts (default: loopback only).
    #[arg(long)]
    pub allow_remote_register: bool,
    /// Like epmd's -relaxed_command_check: honour `epmd -stop NAME`, and `epmd -kill` while nodes
    /// are registered.
    #[arg(long)]
    pub relaxed_command_check: bool,
    /// If the database cannot be opened or read, move it aside (DIR.broken-TIME), start empty and
    /// refill from peers.
    #[arg(long)]
    pub repair: bool,
    /// Seconds that entries of this host stay `unconfirmed` after a restart, waiting for their
    /// nodes to register again, before they become `down`.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
    /// Seconds a `down` entry (tombstone) is kept and gossiped before it is removed.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub tombstone_ttl: u64,
    /// Milliseconds between gossip rounds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub gossip_interval: u64,
    /// Peers contacted per gossip round.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub fanout: usize,
    /// Most entries of this daemon's own registrations (all states); registrations beyond are
    /// refused. Entries learned from other daemons never count against it.
    #[arg(long, value_name = "N", default_value_t = 16_384)]
    pub max_entries: usize,
    /// Most entries learned from other daemons, all together; more are refused (and logged).
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_remote_entries: usize,
    /// Most entries of any one other daemon.
    #[arg(long, value_name = "N", default_value_t = 16_384)]
    pub max_entries_per_daemon: usize,
    /// Most daemons known (gossip targets); ids beyond are ignored.
    #[arg(long, value_name = "N", default_value_t = 1_024)]
    pub max_daemons: usize,
    /// Most live registrations from one source address.
    #[arg(long, value_name = "N", default_value_t = 4_096)]
    pub max_per_source: usize,
    /// Most simultaneous client connections; more are closed at once. The daemon raises its
    /// open-file limit to match, or refuses to start if the hard limit is lower.
    #[arg(long, value_name = "N", default_value_t = 4_096)]
    pub max_connections: usize,
    /// Most simultaneous connections from one address that are not registrations (requests
    /// being read, lookup sessions, gossip); more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections_per_source: usize,
    /// Most lookup sessions (Snow request `Q`) open at once from one address.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_sessions_per_source: usize,
    /// Milliseconds a client has to send its whole request (and each gossip step has).
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub request_timeout: u64,
    /// Milliseconds a pipelined lookup session (many lookups over one connection, Snow request `Q`)
    /// may stay silent before the daemon closes it.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub session_idle: u64,
    /// Seconds a lookup session may last at most, busy or not; the client then opens a new one.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub session_lifetime: u64,
    /// Host part for short names (Erlang's `-sname x` becomes x@HOSTNAME). Default: this host's name.
    #[arg(long, value_name = "HOST")]
    pub hostname: Option<String>,
    /// This daemon's id as other daemons reach it; its host is the one host this daemon speaks
    /// for in gossip. Default: the listen address, or HOSTNAME:PORT when listening on all
    /// addresses.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
}

/// Client subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every known node: host, port, creation, state (up / down / unconfirmed), origin
    /// (local or the owning daemon) and age (time since the entry last changed).
    List {
        /// The daemon to ask.
        #[arg(long, env = "SNOW_EPMD", value_name = "HOST:PORT", default_value = "127.0.0.1:4369")]
        epmd: String,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print `host:port` of a node; exit 1 if unknown.
    Lookup {
        /// The node's full name (default: SNOW_NODE, as a node's own environment has it, so a
        /// probe run beside the node needs no argument).
        #[arg(env = "SNOW_NODE")]
        name: String,
        /// The daemon to ask.
        #[arg(long, env = "SNOW_EPMD", value_name = "HOST:PORT", default_value = "127.0.0.1:4369")]
        epmd: String,
    },
    /// Print a fresh random cookie (256 bits, URL-safe) for a cookie file:
    /// `snow-epmd gen-cookie > cookie && chmod 600 cookie`.
    GenCookie,
    /// Connect to a node (TLS and cookie handshake) and print `pong from NAME@HOST in X ms`, or
    /// what failed (not registered, unreachable, TLS, cookie rejected) with exit code 1.
    Ping {
        /// The node's full name (default: SNOW_NODE).
        #[arg(env = "SNOW_NODE")]
        name: String,
        /// The daemon to ask for the node's address.
        #[arg(long, env = "SNOW_EPMD", value_name = "HOST:PORT", default_value = "127.0.0.1:4369")]
        epmd: String,
        /// File holding the cluster cookie; otherwise SNOW_COOKIE or SNOW_COOKIE_FILE.
        #[arg(long, value_name = "FILE")]
        cookie_file: Option<PathBuf>,
        /// TLS options for clusters with CA-verified mutual TLS.
        #[command(flatten)]
        tls: PingTls,
    },
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Some(Command::GenCookie) => {
            println!("{}", Cookie::generate(rand::random()));
            0
        }
        Some(Command::List { epmd, json }) => async_io::block_on(list(&epmd, json)),
        Some(Command::Lookup { name, epmd }) => async_io::block_on(lookup(&epmd, &name)),
        Some(Command::Ping { name, epmd, cookie_file, tls }) => {
            crate::ping::run(&name, &epmd, cookie_file.as_deref(), &tls)
        }
        None => run_daemon(cli.daemon),
    }
}

fn fail(code: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("snow-epmd: {msg}");
    code
}

fn client_fail(e: ClientError) -> i32 {
    let code = if e.is_unreachable() { EXIT_UNREACHABLE } else { EXIT_NOT_FOUND };
    fail(code, e)
}

/// Builds the daemon configuration from flags and the environment.
pub fn daemon_config(args: DaemonArgs) -> Result<Config, String> {
    if args.listen.is_empty() {
        return Err("--listen [ADDR:]PORT is required to run the daemon".into());
    }
    let mut config = Config::listening(args.listen, args.data_dir.unwrap_or_else(default_data_dir));
    config.cookie = match Cookie::from_sources(
        args.cookie_file.as_deref(),
        std::env::var_os(snow_shared::cookie::ENV_COOKIE),
        std::env::var_os(snow_shared::cookie::ENV_COOKIE_FILE),
    ) {
        Ok(c) => Some(c),
        Err(CookieError::NotSet) => None,
        Err(e) => return Err(e.to_string()),
    };
    config.peers = args.peers.into_iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
    config.allow_remote_register = args.allow_remote_register;
    config.relaxed_command_check = args.relaxed_command_check;
    config.repair = args.repair;
    config.grace = Duration::from_secs(args.grace);
    config.tombstone_ttl = Duration::from_secs(args.tombstone_ttl);
    config.gossip_interval = Duration::from_millis(args.gossip_interval.max(1));
    config.fanout = args.fanout;
    config.max_entries = args.max_entries;
    config.max_remote_entries = args.max_remote_entries;
    config.max_entries_per_daemon = args.max_entries_per_daemon;
    config.max_daemons = args.max_daemons.max(1);
    config.max_per_source = args.max_per_source;
    config.max_connections = args.max_connections;
    config.max_connections_per_source = args.max_connections_per_source;
    config.max_sessions_per_source = args.max_sessions_per_source;
    config.session_lifetime = Duration::from_secs(args.session_lifetime.max(1));
    config.request_timeout = Duration::from_millis(args.request_timeout.max(1));
    config.session_idle = Duration::from_millis(args.session_idle.max(1));
    config.hostname = args.hostname.map(|h| h.to_ascii_lowercase()).unwrap_or_else(system_hostname);
    config.advertise = args.advertise;
    Ok(config)
}

fn run_daemon(args: DaemonArgs) -> i32 {
    let config = match daemon_config(args) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    async_io::block_on(async {
        let handle = match crate::serve(config).await {
            Ok(h) => h,
            Err(e) => return fail(EXIT_CONFIG, e),
        };
        handle.stopped().await;
        match handle.shutdown().await {
            Ok(()) => 0,
            Err(e) => fail(EXIT_CONFIG, e),
        }
    })
}

async fn lookup(epmd: &str, name: &str) -> i32 {
    let name = match NodeName::parse(name) {
        Ok(n) => n,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    match client::lookup(epmd, &name).await {
        Ok(Some(found)) if found.state.is_live() => {
            if found.host.contains(':') {
                println!("[{}]:{}", found.host, found.port);
            } else {
                println!("{}:{}", found.host, found.port);
            }
            0
        }
        Ok(Some(found)) => fail(EXIT_NOT_FOUND, format!("{name} is known but {}", found.state.as_str())),
        Ok(None) => fail(EXIT_NOT_FOUND, format!("{name} is not registered")),
        Err(e) => client_fail(e),
    }
}

async fn list(epmd: &str, json: bool) -> i32 {
    match client::list(epmd).await {
        Ok(rows) => {
            print!("{}", if json { render_json(epmd, &rows) } else { render_table(&rows) });
            0
        }
        Err(e) => client_fail(e),
    }
}

/// Formats an age compactly: `850ms`, `42s`, `5m03s`, `2h05m`, `3d04h`.
pub fn format_age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The human table of `list`, columns aligned.
pub fn render_table(rows: &[ListRow]) -> String {
    let header = ["NAME", "HOST", "PORT", "CREATION", "STATE", "ORIGIN", "AGE"].map(String::from);
    let mut lines = vec![header];
    for r in rows {
        lines.push([
            r.name.clone(),
            r.host.clone(),
            r.port.to_string(),
            r.creation.to_string(),
            r.state.as_str().to_owned(),
            r.origin.clone(),
            format_age(r.age_ms),
        ]);
    }
    let mut widths = [0usize; 7];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `--json` document: `{"epmd": ..., "nodes": [{"name", "host", "port", "creation", "state",
/// "origin", "age_ms"}, ...]}`.
pub fn render_json(epmd: &str, rows: &[ListRow]) -> String {
    let nodes: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"name\":{},\"host\":{},\"port\":{},\"creation\":{},\"state\":{},\"origin\":{},\"age_ms\":{}}}",
                json_str(&r.name),
                json_str(&r.host),
                r.port,
                r.creation,
                json_str(r.state.as_str()),
                json_str(&r.origin),
                r.age_ms
            )
        })
        .collect();
    format!("{{\"epmd\":{},\"nodes\":[{}]}}\n", json_str(epmd), nodes.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use snow_shared::epmd::table::State;

    fn row(name: &str, origin: &str) -> ListRow {
        ListRow {
            name: name.to_owned(),
            host: "h".into(),
            port: 9100,
            creation: 3,
            state: State::Up,
            origin: origin.into(),
            age_ms: 65_000,
        }
    }

    #[test]
    fn table_is_aligned() {
        let t = render_table(&[row("a@h", "local"), row("longer-name@h", "10.0.0.2:4369")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("HOST").unwrap();
        assert!(lines.iter().skip(1).all(|l| l[col..].starts_with('h')), "{t}");
        assert!(t.contains("1m05s"));
    }

    #[test]
    fn json_is_escaped() {
        let j = render_json("x\"y", &[row("a@h", "local")]);
        assert!(j.starts_with("{\"epmd\":\"x\\\"y\",\"nodes\":[{\"name\":\"a@h\""), "{j}");
        assert!(j.contains("\"age_ms\":65000"));
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(850), "850ms");
        assert_eq!(format_age(3_723_000), "1h02m");
        assert_eq!(format_age(90_000_000), "1d01h");
    }

    #[test]
    fn daemon_flags_parse() {
        let cli =
            Cli::try_parse_from(["snow-epmd", "--listen", "127.0.0.1:0", "--peer", "a:1", "--peer", "b:2"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.daemon.peers, ["a:1", "b:2"]);
        let cli = Cli::try_parse_from(["snow-epmd", "--listen", "4369", "--listen", "[::1]:4370"]).unwrap();
        assert_eq!(cli.daemon.listen, [Listen::AllAddresses(4369), Listen::Addr("[::1]:4370".parse().unwrap())]);
        assert!(Cli::try_parse_from(["snow-epmd"]).is_err(), "--listen is required for the daemon");
        assert!(Cli::try_parse_from(["snow-epmd", "--listen", "nope"]).is_err());
        let cli = Cli::try_parse_from(["snow-epmd", "lookup", "a@h", "--epmd", "127.0.0.1:1"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Lookup { .. })));
    }
}
