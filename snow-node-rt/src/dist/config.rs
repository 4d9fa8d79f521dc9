//! Distribution settings read at start-up (README, "Node environment").
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SNOW_NODE` | node name (`name` or `name@host`); unset = local-only | unset |
//! | `SNOW_COOKIE` / `SNOW_COOKIE_FILE` | cluster secret | none: a distributed node refuses to start |
//! | `SNOW_EPMD` | `host:port` of snow-epmd | `127.0.0.1:4369` |
//! | `SNOW_DIST_PORT` | listen port (0 = any) | 0 |
//! | `SNOW_DIST_ADDR` | listen address (an IP address of this host; `::` = all IPv6) | all addresses of the family of the name's host |
//! | `SNOW_TLS_CERT`, `SNOW_TLS_KEY`, `SNOW_TLS_CA` | PEM files for CA-verified mutual TLS (all three or none) | ephemeral self-signed |
//! | `SNOW_TICKTIME` | seconds of silence before a peer is down | 20 |
//! | `SNOW_MAILBOX_LIMIT` | messages a process's mailbox may hold before it is killed with `{:mailbox_overflow, limit}` (also read for a local-only node) | no limit |
//!
//! Every bad value gives one [`ConfigError`] naming the variable, the value and what is expected;
//! nothing is started half-way.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use snow_shared::cookie::{Cookie, CookieError, ENV_COOKIE, ENV_COOKIE_FILE};
use snow_shared::{NameError, NodeName};

/// snow-epmd address used when `SNOW_EPMD` is unset.
pub const DEFAULT_EPMD: &str = "127.0.0.1:4369";
/// The largest `SNOW_MAILBOX_LIMIT` accepted (the largest integer a term carries, so the exit
/// reason `{:mailbox_overflow, limit}` shows it exactly).
pub const MAX_MAILBOX_LIMIT: usize = i64::MAX as usize;
/// Ticktime used when `SNOW_TICKTIME` is unset.
pub const DEFAULT_TICKTIME: Duration = snow_shared::dist::liveness::DEFAULT_TICKTIME;

/// Where the node's TLS identity comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// A fresh self-signed certificate per start; any peer certificate is accepted, and peers are
    /// authenticated by the cookie proof bound to the TLS session.
    SelfSigned,
    /// Certificate and key of this node, and the CA that must have signed every peer's
    /// certificate (mutual TLS), in PEM files.
    Files {
        /// `SNOW_TLS_CERT`.
        cert: PathBuf,
        /// `SNOW_TLS_KEY`.
        key: PathBuf,
        /// `SNOW_TLS_CA`.
        ca: PathBuf,
    },
}

/// Everything a distributed node needs to start.
#[derive(Clone, Debug)]
pub struct DistConfig {
    /// This node's name.
    pub name: NodeName,
    /// The cluster cookie.
    pub cookie: Cookie,
    /// `host:port` of the snow-epmd to register with and ask.
    pub epmd: String,
    /// Port to listen on (0 = any free port).
    pub listen_port: u16,
    /// Address to listen on; `None`: all addresses of the family of the name's host.
    pub listen_ip: Option<IpAddr>,
    /// TLS identity.
    pub tls: TlsSource,
    /// Silence after which a peer is declared down.
    pub ticktime: Duration,
    /// Default mailbox limit of the node's processes (`SNOW_MAILBOX_LIMIT`); `None`: no limit.
    pub mailbox_limit: Option<usize>,
}

/// A bad start-up setting. The message names the variable and says what is expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `SNOW_NODE` is not a node name.
    #[error("SNOW_NODE={value:?} is not a valid node name: {source}")]
    BadNodeName {
        /// The value given.
        value: String,
        /// Why it is not a name.
        source: NameError,
    },
    /// A distributed node has no usable cookie.
    #[error("SNOW_NODE is set, so a cookie is required: {0}")]
    Cookie(#[from] CookieError),
    /// `SNOW_EPMD` is not `host:port`.
    #[error("SNOW_EPMD={0:?} is not host:port (e.g. 127.0.0.1:4369 or [::1]:4369)")]
    BadEpmd(String),
    /// `SNOW_DIST_PORT` is not a port.
    #[error("SNOW_DIST_PORT={0:?} is not a port number from 0 to 65535 (0 = any free port)")]
    BadPort(String),
    /// `SNOW_DIST_ADDR` is not an IP address.
    #[error(
        "SNOW_DIST_ADDR={0:?} is not an IP address; expected an address of this host such as 10.0.0.5 or ::1 \
         (0.0.0.0 = all IPv4 addresses, :: = all IPv6 addresses), without a port (that is SNOW_DIST_PORT)"
    )]
    BadListenAddr(String),
    /// `SNOW_TICKTIME` is not a positive number of seconds.
    #[error("SNOW_TICKTIME={0:?} is not a whole number of seconds from 1 to 86400")]
    BadTicktime(String),
    /// `SNOW_MAILBOX_LIMIT` is not a positive number of messages.
    #[error(
        "SNOW_MAILBOX_LIMIT={0:?} is not a number of messages from 1 to {max}; unset it for no limit \
         (a process whose mailbox holds that many messages when another arrives is killed with \
         {{:mailbox_overflow, limit}})",
        max = MAX_MAILBOX_LIMIT
    )]
    BadMailboxLimit(String),
    /// Only some of the TLS file variables are set.
    #[error("SNOW_TLS_CERT, SNOW_TLS_KEY and SNOW_TLS_CA must be set together (or none of them); {0} is missing")]
    PartialTls(&'static str),
    /// A variable is not valid Unicode.
    #[error("{0} is not valid UTF-8 text")]
    NotUnicode(&'static str),
}

impl DistConfig {
    /// Reads the process environment. `Ok(None)`: `SNOW_NODE` is unset, run local-only.
    pub fn from_env() -> Result<Option<DistConfig>, ConfigError> {
        DistConfig::from_vars(|var| std::env::var_os(var), &this_hostname())
    }

    /// Reads settings through `get` (a stand-in for the environment, for tests and embedders);
    /// `hostname` completes a bare `SNOW_NODE=name`.
    pub fn from_vars(
        get: impl Fn(&str) -> Option<OsString>,
        hostname: &str,
    ) -> Result<Option<DistConfig>, ConfigError> {
        let text = |var: &'static str| -> Result<Option<String>, ConfigError> {
            get(var).map(|v| v.into_string().map_err(|_| ConfigError::NotUnicode(var))).transpose()
        };
        let Some(node) = text("SNOW_NODE")? else { return Ok(None) };
        let name = NodeName::parse_with_default_host(node.trim(), hostname)
            .map_err(|source| ConfigError::BadNodeName { value: node.clone(), source })?;
        let epmd = match text("SNOW_EPMD")? {
            Some(value) if valid_host_port(&value) => value,
            Some(value) => return Err(ConfigError::BadEpmd(value)),
            None => DEFAULT_EPMD.to_owned(),
        };
        let listen_port = match text("SNOW_DIST_PORT")? {
            Some(value) => value.trim().parse::<u16>().map_err(|_| ConfigError::BadPort(value))?,
            None => 0,
        };
        let listen_ip = match text("SNOW_DIST_ADDR")? {
            Some(value) => Some(parse_ip(&value).ok_or(ConfigError::BadListenAddr(value))?),
            None => None,
        };
        let ticktime = match text("SNOW_TICKTIME")? {
            Some(value) => match value.trim().parse::<u64>() {
                Ok(secs @ 1..=86_400) => Duration::from_secs(secs),
                _ => return Err(ConfigError::BadTicktime(value)),
            },
            None => DEFAULT_TICKTIME,
        };
        let tls = match (get("SNOW_TLS_CERT"), get("SNOW_TLS_KEY"), get("SNOW_TLS_CA")) {
            (None, None, None) => TlsSource::SelfSigned,
            (Some(cert), Some(key), Some(ca)) => TlsSource::Files { cert: cert.into(), key: key.into(), ca: ca.into() },
            (None, _, _) => return Err(ConfigError::PartialTls("SNOW_TLS_CERT")),
            (_, None, _) => return Err(ConfigError::PartialTls("SNOW_TLS_KEY")),
            (_, _, None) => return Err(ConfigError::PartialTls("SNOW_TLS_CA")),
        };
        let mailbox_limit = mailbox_limit_from_vars(&get)?;
        let cookie = Cookie::from_sources(None, get(ENV_COOKIE), get(ENV_COOKIE_FILE))?;
        Ok(Some(DistConfig { name, cookie, epmd, listen_port, listen_ip, tls, ticktime, mailbox_limit }))
    }
}

/// Reads `SNOW_MAILBOX_LIMIT` through `get` (the environment, or a stand-in): the default mailbox
/// limit of a node's processes, distributed or not. `Ok(None)`: unset, no limit. A value must be
/// a whole number of messages from 1 to [`MAX_MAILBOX_LIMIT`] (surrounding spaces ignored);
/// anything else, `0` included, is refused with [`ConfigError::BadMailboxLimit`] rather than
/// guessed at (Erlang's `max_heap_size` uses 0 for "off"; here that is an unset variable).
pub fn mailbox_limit_from_vars(get: impl Fn(&str) -> Option<OsString>) -> Result<Option<usize>, ConfigError> {
    const VAR: &str = "SNOW_MAILBOX_LIMIT";
    let Some(value) = get(VAR) else { return Ok(None) };
    let value = value.into_string().map_err(|_| ConfigError::NotUnicode(VAR))?;
    match value.trim().parse::<usize>() {
        Ok(limit @ 1..=MAX_MAILBOX_LIMIT) => Ok(Some(limit)),
        _ => Err(ConfigError::BadMailboxLimit(value)),
    }
}

/// An IP address, IPv6 with or without brackets (`::1`, `[::1]`), surrounding spaces ignored.
fn parse_ip(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    match inner {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => value.parse().ok(),
    }
}

/// `host:port` with a non-empty host (IPv6 in brackets) and a nonzero port.
fn valid_host_port(value: &str) -> bool {
    let Some((host, port)) = value.rsplit_once(':') else { return false };
    let host_ok = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains(':'),
    };
    host_ok && matches!(port.parse::<u16>(), Ok(1..))
}

/// This machine's host name, for `SNOW_NODE=name` without `@host`: the kernel's host name on
/// Linux, else `$HOSTNAME`, else `localhost`.
pub fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Option<DistConfig>, ConfigError> {
        let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        DistConfig::from_vars(|var| map.get(var).cloned(), "box7")
    }

    const COOKIE: (&str, &str) = ("SNOW_COOKIE", "0123456789abcdef0123");

    #[test]
    fn unset_node_means_local_only() {
        assert!(read(&[COOKIE]).unwrap().is_none());
    }

    #[test]
    fn defaults_fill_the_rest() {
        let cfg = read(&[("SNOW_NODE", "app"), COOKIE]).unwrap().unwrap();
        assert_eq!(cfg.name.as_str(), "app@box7");
        assert_eq!(cfg.epmd, DEFAULT_EPMD);
        assert_eq!(cfg.listen_port, 0);
        assert_eq!(cfg.listen_ip, None);
        assert_eq!(cfg.tls, TlsSource::SelfSigned);
        assert_eq!(cfg.ticktime, Duration::from_secs(20));
        assert_eq!(cfg.mailbox_limit, None);
    }

    #[test]
    fn explicit_values_are_used() {
        let cfg = read(&[
            ("SNOW_NODE", "app@db1.example.com"),
            COOKIE,
            ("SNOW_EPMD", "[::1]:5000"),
            ("SNOW_DIST_PORT", "9100"),
            ("SNOW_DIST_ADDR", "10.0.0.5"),
            ("SNOW_TICKTIME", "4"),
            ("SNOW_TLS_CERT", "/c.pem"),
            ("SNOW_TLS_KEY", "/k.pem"),
            ("SNOW_TLS_CA", "/ca.pem"),
            ("SNOW_MAILBOX_LIMIT", " 100000 "),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(cfg.name.as_str(), "app@db1.example.com");
        assert_eq!(cfg.epmd, "[::1]:5000");
        assert_eq!(cfg.listen_port, 9100);
        assert_eq!(cfg.listen_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(cfg.ticktime, Duration::from_secs(4));
        assert!(matches!(cfg.tls, TlsSource::Files { .. }));
        assert_eq!(cfg.mailbox_limit, Some(100_000));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let node = ("SNOW_NODE", "app");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![node], "SNOW_COOKIE"),
            (vec![("SNOW_NODE", "a b"), COOKIE], "SNOW_NODE=\"a b\""),
            (vec![node, COOKIE, ("SNOW_EPMD", "nohostport")], "SNOW_EPMD"),
            (vec![node, COOKIE, ("SNOW_EPMD", "h:0")], "SNOW_EPMD"),
            (vec![node, COOKIE, ("SNOW_DIST_PORT", "70000")], "SNOW_DIST_PORT=\"70000\""),
            (vec![node, COOKIE, ("SNOW_DIST_ADDR", "eth0")], "SNOW_DIST_ADDR=\"eth0\" is not an IP address"),
            (vec![node, COOKIE, ("SNOW_DIST_ADDR", "10.0.0.5:9100")], "SNOW_DIST_ADDR=\"10.0.0.5:9100\""),
            (vec![node, COOKIE, ("SNOW_DIST_ADDR", "[::1")], "SNOW_DIST_ADDR"),
            (vec![node, COOKIE, ("SNOW_TICKTIME", "0")], "SNOW_TICKTIME"),
            (vec![node, COOKIE, ("SNOW_TICKTIME", "fast")], "SNOW_TICKTIME"),
            (vec![node, COOKIE, ("SNOW_TLS_CERT", "/c.pem")], "SNOW_TLS_KEY is missing"),
            (vec![node, COOKIE, ("SNOW_MAILBOX_LIMIT", "0")], "SNOW_MAILBOX_LIMIT=\"0\""),
            (vec![node, COOKIE, ("SNOW_MAILBOX_LIMIT", "lots")], "SNOW_MAILBOX_LIMIT=\"lots\""),
        ];
        for (vars, expected) in cases {
            let err = read(&vars).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn listen_addresses_of_both_families_are_read() {
        for (value, ip) in [("::1", "::1"), ("[::1]", "::1"), (" 0.0.0.0 ", "0.0.0.0"), ("::", "::")] {
            let cfg = read(&[("SNOW_NODE", "app"), COOKIE, ("SNOW_DIST_ADDR", value)]).unwrap().unwrap();
            assert_eq!(cfg.listen_ip, Some(ip.parse().unwrap()), "{value}");
        }
    }

    #[test]
    fn short_cookie_is_refused() {
        let err = read(&[("SNOW_NODE", "app"), ("SNOW_COOKIE", "short")]).unwrap_err();
        assert!(matches!(err, ConfigError::Cookie(CookieError::TooShort { .. })), "{err}");
    }
}
