//! `snow-epmd ping NAME@HOST` (README "Client commands"): checks that a node is reachable and
//! shares our cookie, with a real connection: snow-epmd lookup, TCP, TLS 1.3, then the cookie
//! handshake of PROTOCOL.md 4.2 as initiator (`snow_shared::dist::handshake`, bound to the TLS
//! exporter), and a clean close. Prints `pong from NAME@HOST in X ms` (the time from TCP connect to an established
//! handshake) or one line naming what failed.
//!
//! The pinging side introduces itself as `snow-epmd-ping-PID@localhost` with no capabilities, so
//! the node does not try to pull it into its mesh; like Erlang's `net_adm:ping`, the node sees a
//! short connection (a nodeup and a nodedown). With a CA-verified certificate its host is the
//! first host the certificate names instead of `localhost`, since the node checks that. A cluster with CA-verified mutual TLS is pinged with
//! a certificate signed by its CA (`--tls-cert/--tls-key/--tls-ca` or `SNOW_TLS_*`, as the nodes
//! take them): ping then presents it and verifies the node's certificate against the CA and the
//! node's host. Without them, a node that requires client certificates refuses the TLS handshake
//! (reported as a TLS failure). The files are read as the nodes read theirs
//! ([`TlsMaterial::from_files`]): the key through the checked secret-file reader of
//! `snow_shared::cookie` (no symbolic link, owned by this user, mode 600 or 400, checked on the
//! open file, zeroed when dropped), so a key others can read is refused, not used.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use clap::Args;
use futures_lite::AsyncWriteExt;
use futures_rustls::TlsConnector;
use smol_timeout::TimeoutExt;
use snow_shared::cookie::{derive_key, Cookie, KeyLabel};
use snow_shared::dist::handshake::{Handshake, HandshakeConfig, HandshakeError};

use crate::handshake::DriveError;
use snow_shared::dist::tls::{self, TlsMaterial};
use snow_shared::dist::Flags;
use snow_shared::NodeName;

use crate::client::{self, ClientError};
use crate::exit;

/// Certificate files for pinging a cluster whose nodes run with CA-verified mutual TLS
/// (`SNOW_TLS_CERT`/`KEY`/`CA`, as the nodes do): all three or none. Without them, ping works
/// with self-signed clusters only.
#[derive(Debug, Args, Default)]
pub struct PingTls {
    /// PEM certificate chain (leaf first) to present, signed by the cluster's CA.
    #[arg(long, env = "SNOW_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate: a regular file (not a symbolic link) owned by this
    /// user, mode 600 or 400, as the nodes require.
    #[arg(long, env = "SNOW_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate(s) of the CA the node's certificate must chain to.
    #[arg(long, env = "SNOW_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// Time allowed for each step (TCP connect, TLS, cookie handshake).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a ping failed. Each message is the one line the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// snow-epmd does not know the node (or knows it only as down).
    #[error("{name} is not registered with snow-epmd at {epmd}{detail}")]
    NotRegistered {
        /// The node.
        name: NodeName,
        /// The daemon asked.
        epmd: String,
        /// Extra detail (e.g. "(known, but down)").
        detail: String,
    },
    /// The daemon itself could not be asked.
    #[error("{0}")]
    Epmd(#[from] ClientError),
    /// TCP to the node's address failed.
    #[error("{name} is unreachable at {addr}: {reason}")]
    Unreachable {
        /// The node.
        name: NodeName,
        /// The address snow-epmd gave.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS with {name} failed: {reason}")]
    Tls {
        /// The node.
        name: NodeName,
        /// Why.
        reason: String,
    },
    /// The node and we do not share the cookie.
    #[error("{name} rejected the cookie (or sent a wrong proof): use the cluster's cookie (--cookie-file, SNOW_COOKIE_FILE)")]
    CookieRejected {
        /// The node.
        name: NodeName,
    },
    /// The cookie handshake failed for another reason.
    #[error("handshake with {name} failed: {source}")]
    Handshake {
        /// The node.
        name: NodeName,
        /// Why.
        source: HandshakeError,
    },
    /// A step did not finish in time.
    #[error("{name} did not answer in time during {stage}")]
    Timeout {
        /// The node.
        name: NodeName,
        /// The step.
        stage: &'static str,
    },
}

impl PingError {
    /// True when the local snow-epmd could not be reached (CLI exit code 3).
    pub fn is_epmd_unreachable(&self) -> bool {
        matches!(self, PingError::Epmd(e) if e.is_unreachable())
    }
}

/// Pings `name`, asking the snow-epmd at `epmd` for its address and proving knowledge of
/// `cookie`; with `tls`, presents that certificate and verifies the node's against its CA.
/// Returns the time from TCP connect to the established handshake.
pub async fn ping(
    epmd: &str,
    name: &NodeName,
    cookie: &Cookie,
    tls: Option<&TlsMaterial>,
) -> Result<Duration, PingError> {
    let key = {
        let cookie = cookie.clone();
        blocking::unblock(move || derive_key(&cookie, KeyLabel::Distribution)).await
    };
    let found = match client::lookup(epmd, name).await? {
        Some(found) if found.state.is_live() => found,
        Some(found) => {
            let detail = format!(" (known, but {})", found.state.as_str());
            return Err(PingError::NotRegistered { name: name.clone(), epmd: epmd.to_owned(), detail });
        }
        None => return Err(PingError::NotRegistered { name: name.clone(), epmd: epmd.to_owned(), detail: "".into() }),
    };
    let addr = if found.host.contains(':') {
        format!("[{}]:{}", found.host, found.port)
    } else {
        format!("{}:{}", found.host, found.port)
    };
    let timeout = |stage| PingError::Timeout { name: name.clone(), stage };
    let started = Instant::now();
    let tcp = TcpStream::connect((found.host.as_str(), found.port))
        .timeout(STEP_TIMEOUT)
        .await
        .ok_or_else(|| timeout("TCP connect"))?
        .map_err(|e| PingError::Unreachable { name: name.clone(), addr: addr.clone(), reason: e.to_string() })?;
    let _ = tcp.set_nodelay(true);
    let tls_err = |reason: String| PingError::Tls { name: name.clone(), reason };
    let (config, ca_verified) = match tls {
        Some(material) => (tls::client_config(material), material.is_ca_verified()),
        None => (tls::client_only_config(), false),
    };
    let config = config.map_err(|e| tls_err(e.to_string()))?;
    let mut stream = TlsConnector::from(config)
        .connect(tls::server_name(ca_verified, name.host_for_connect()), tcp)
        .timeout(STEP_TIMEOUT)
        .await
        .ok_or_else(|| timeout("the TLS handshake"))?
        .map_err(|e| tls_err(e.to_string()))?;
    let binding = tls::channel_binding(stream.get_ref().1, ca_verified).map_err(|e| tls_err(e.to_string()))?;

    let host = match tls.filter(|m| m.is_ca_verified()) {
        Some(material) => material.certificate_hosts().into_iter().next().ok_or_else(|| {
            tls_err("the --tls-cert certificate names no DNS or IP host, which the node requires".to_owned())
        })?,
        None => "localhost".to_owned(),
    };
    let local = NodeName::parse(&format!("snow-epmd-ping-{}@{host}", std::process::id()))
        .map_err(|e| tls_err(format!("cannot name the pinging side: {e}")))?;
    let mut config = HandshakeConfig::new(local, rand::random::<u32>().max(1), key);
    config.flags = Flags::NONE;
    config.timeout = STEP_TIMEOUT;
    let mut hs = Handshake::initiator(config, name.clone(), binding, rand::random(), Instant::now());
    let outcome = crate::handshake::drive(&mut hs, &mut stream, |_, _| {}).await;
    match outcome {
        Ok(_) => {
            let took = started.elapsed();
            stream.get_mut().1.send_close_notify();
            let _ = stream.flush().timeout(Duration::from_secs(1)).await;
            Ok(took)
        }
        Err(DriveError::Handshake(HandshakeError::WrongCookie | HandshakeError::ProofRejected)) => {
            Err(PingError::CookieRejected { name: name.clone() })
        }
        Err(DriveError::Handshake(HandshakeError::Timeout(_))) => Err(timeout("the cookie handshake")),
        Err(DriveError::Handshake(source)) => Err(PingError::Handshake { name: name.clone(), source }),
        // In TLS 1.3 the node checks our certificate after we consider TLS done: its refusal (an
        // alert) arrives here, as a TLS error.
        Err(DriveError::Io(e)) => Err(tls_err(e.to_string())),
    }
}

/// Why the TLS files given to ping cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum TlsFilesError {
    /// Only some of the three were given.
    #[error("--tls-cert, --tls-key and --tls-ca (SNOW_TLS_CERT/KEY/CA) go together; {0} is missing")]
    Partial(&'static str),
    /// A file could not be read or was refused (the key file has the node's rules: not a symbolic
    /// link, owned by this user, mode 600 or 400), or its PEM contents are unusable. The message
    /// names the file and the fix.
    #[error("cannot use the TLS files (--tls-cert/--tls-key/--tls-ca): {0}")]
    Files(#[from] tls::TlsError),
}

/// Loads the certificate, key and CA given to ping, if any, exactly as a node loads its
/// `SNOW_TLS_*` files ([`TlsMaterial::from_files`]): the private key through the same checked
/// secret-file reader as the cookie (opened once without following a symbolic link, owner and
/// mode checked on the open file, read from it, zeroed when dropped).
pub fn load_tls(files: &PingTls) -> Result<Option<TlsMaterial>, TlsFilesError> {
    let (cert, key, ca) = match (&files.tls_cert, &files.tls_key, &files.tls_ca) {
        (None, None, None) => return Ok(None),
        (Some(c), Some(k), Some(a)) => (c, k, a),
        (None, _, _) => return Err(TlsFilesError::Partial("--tls-cert")),
        (_, None, _) => return Err(TlsFilesError::Partial("--tls-key")),
        (_, _, None) => return Err(TlsFilesError::Partial("--tls-ca")),
    };
    Ok(Some(TlsMaterial::from_files(cert, key, ca)?))
}

/// The `ping` subcommand: returns the process exit code (0 pong, 1 failure, 2 configuration,
/// 3 snow-epmd unreachable) after printing one line.
pub fn run(name: &str, epmd: &str, cookie_file: Option<&Path>, tls_files: &PingTls) -> i32 {
    let name = match NodeName::parse(name) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("snow-epmd: {e}");
            return exit::CONFIG;
        }
    };
    let cookie = match Cookie::from_sources(
        cookie_file,
        std::env::var_os(snow_shared::cookie::ENV_COOKIE),
        std::env::var_os(snow_shared::cookie::ENV_COOKIE_FILE),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("snow-epmd: ping needs the cluster cookie: {e}");
            return exit::CONFIG;
        }
    };
    let material = match load_tls(tls_files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("snow-epmd: {e}");
            return exit::CONFIG;
        }
    };
    match async_io::block_on(ping(epmd, &name, &cookie, material.as_ref())) {
        Ok(took) => {
            println!("pong from {name} in {:.1} ms", took.as_secs_f64() * 1e3);
            0
        }
        Err(e) => {
            eprintln!("snow-epmd: {e}");
            if e.is_epmd_unreachable() {
                exit::UNREACHABLE
            } else {
                exit::NOT_FOUND
            }
        }
    }
}
