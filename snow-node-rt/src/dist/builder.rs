//! The settings of a distributed node ([`NodeBuilder`], or the environment through
//! [`DistConfig`]) and the start-up of its distribution.
//!
//! Start-up order: settings are validated, the TLS identity is loaded (or generated), the cookie
//! key derived, the listener opened, and the node registered with snow-epmd, whose reply gives
//! the node's creation ([`NodeBuilder::prepare`]). Only then is the host of the node's processes
//! created (its pids carry that creation) and distribution started for it ([`Prepared::start`]).
//! Any failure returns an error and leaves nothing running.
//!
//! Where the listener binds: the address given with [`NodeBuilder::listen_ip`] (`SNOW_DIST_ADDR`),
//! else where the node's name says: all IPv6 addresses (`::`) when the host of its name is an
//! IPv6 address or resolves only to IPv6 addresses, all IPv4 addresses (`0.0.0.0`) otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::reactor::tcp::TcpListener;
use snow_shared::cluster::global::ConflictNotice;
use snow_shared::cookie::{derive_key_with_iterations, Cookie, KeyLabel, PBKDF2_ITERATIONS};
use snow_shared::dist::handshake::HandshakeConfig;
use snow_shared::dist::tls::{self, TlsMaterial};
use snow_shared::dist::Flags;
use snow_shared::NodeName;
use zeroize::Zeroizing;

use super::config::{DistConfig, TlsSource, DEFAULT_EPMD};
use super::error::StartError;
use super::service::Service;
use super::state::{offered_flags, Driver, Options};
use crate::seam::{Distribution, Host, Runtime};

/// How many incoming connections the kernel may queue before the listener accepts them. A node
/// every other node dials at once (a seed, or any node while a mesh forms) must not overflow it:
/// the kernel answers an overflow by dropping the connection's handshake and retrying a whole
/// second later. `std` asks for 128; Linux caps this at `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: i32 = 4096;

/// The node's listening socket on `addr`, with a queue of [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    // Listening again on a listening socket only changes its queue.
    rustix::net::listen(&listener, LISTEN_BACKLOG)?;
    TcpListener::new(listener)
}

/// Where the TLS identity comes from.
#[derive(Clone)]
enum Identity {
    SelfSigned,
    Files {
        cert: PathBuf,
        key: PathBuf,
        ca: PathBuf,
    },
    /// The private key is zeroed when dropped.
    Pem {
        cert: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
        ca: Vec<u8>,
    },
}

/// Shows file names, never key bytes.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::SelfSigned => f.write_str("SelfSigned"),
            Identity::Files { cert, key, ca } => {
                f.debug_struct("Files").field("cert", cert).field("key", key).field("ca", ca).finish()
            }
            Identity::Pem { cert, ca, .. } => f
                .debug_struct("Pem")
                .field("cert", &format_args!("<{} bytes>", cert.len()))
                .field("key", &format_args!("<hidden>"))
                .field("ca", &format_args!("<{} bytes>", ca.len()))
                .finish(),
        }
    }
}

/// The settings of a distributed node: the programmatic equivalent of the environment variables.
/// [`NodeBuilder::start`] starts a [`Node`](crate::Node) with them.
///
/// ```no_run
/// # async fn demo() -> Result<(), snow_node_rt::dist::StartError> {
/// use snow_node_rt::dist::NodeBuilder;
/// use snow_node_rt::NodeName;
/// use snow_shared::cookie::Cookie;
///
/// let cookie = Cookie::from_bytes(b"a-long-shared-cluster-secret").unwrap();
/// let node = NodeBuilder::new(NodeName::parse("app@127.0.0.1").unwrap())
///     .cookie(cookie)
///     .epmd("127.0.0.1:4369")
///     .start()
///     .await?;
/// assert!(node.is_distributed());
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    name: NodeName,
    cookie: Option<Cookie>,
    epmd: String,
    /// `None`: where the node's name says (module documentation).
    listen_ip: Option<IpAddr>,
    listen_port: u16,
    identity: Identity,
    opts: Options,
    iterations: u32,
    /// Default mailbox limit of the node's processes; applied by the host (`NodeBuilder::start`).
    mailbox_limit: Option<usize>,
}

impl NodeBuilder {
    /// A builder for node `name` with the defaults of README's "Node environment" (snow-epmd at
    /// `127.0.0.1:4369`, any free port on all addresses of the family of the name's host,
    /// self-signed TLS, ticktime 20 s). A cookie must still be given.
    pub fn new(name: NodeName) -> NodeBuilder {
        NodeBuilder {
            name,
            cookie: None,
            epmd: DEFAULT_EPMD.to_owned(),
            listen_ip: None,
            listen_port: 0,
            identity: Identity::SelfSigned,
            opts: Options::default(),
            iterations: PBKDF2_ITERATIONS,
            mailbox_limit: None,
        }
    }

    /// A builder from settings read with [`DistConfig::from_env`].
    pub fn from_config(config: DistConfig) -> NodeBuilder {
        let mut b =
            NodeBuilder::new(config.name).cookie(config.cookie).epmd(&config.epmd).listen_port(config.listen_port);
        b.listen_ip = config.listen_ip;
        b.opts.ticktime = config.ticktime;
        b.mailbox_limit = config.mailbox_limit;
        if let TlsSource::Files { cert, key, ca } = config.tls {
            b.identity = Identity::Files { cert, key, ca };
        }
        b
    }

    /// The cluster cookie (required).
    pub fn cookie(mut self, cookie: Cookie) -> NodeBuilder {
        self.cookie = Some(cookie);
        self
    }

    /// `host:port` of the snow-epmd to register with and ask (`SNOW_EPMD`).
    pub fn epmd(mut self, addr: &str) -> NodeBuilder {
        addr.clone_into(&mut self.epmd);
        self
    }

    /// The distribution port (`SNOW_DIST_PORT`; 0 = any free port).
    pub fn listen_port(mut self, port: u16) -> NodeBuilder {
        self.listen_port = port;
        self
    }

    /// The address the distribution listener binds (`SNOW_DIST_ADDR`, like Erlang's
    /// `inet_dist_use_interface`), e.g. a private interface's address, `127.0.0.1`, or `::` for
    /// all IPv6 (and, where the system allows it, IPv4) addresses. Default: where the node's name
    /// says (module documentation).
    pub fn listen_ip(mut self, ip: IpAddr) -> NodeBuilder {
        self.listen_ip = Some(ip);
        self
    }

    /// CA-verified mutual TLS from PEM bytes: certificate chain, key, CA (`SNOW_TLS_*` files).
    /// The key bytes are zeroed when the builder and the node's TLS material are dropped.
    pub fn tls_pem(mut self, cert: Vec<u8>, key: Vec<u8>, ca: Vec<u8>) -> NodeBuilder {
        self.identity = Identity::Pem { cert, key: Zeroizing::new(key), ca };
        self
    }

    /// Silence after which a peer is declared down; ticks go out every quarter of it
    /// (`SNOW_TICKTIME`).
    pub fn ticktime(mut self, ticktime: Duration) -> NodeBuilder {
        self.opts.ticktime = ticktime.max(Duration::from_millis(4));
        self
    }

    /// Deadline of a whole connection set-up (TLS and cookie handshake). Default 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> NodeBuilder {
        self.opts.handshake_timeout = timeout;
        self.opts.connect_timeout = self.opts.connect_timeout.min(timeout);
        self
    }

    /// Incoming handshakes allowed to run at once; more are closed at once. Default 64.
    pub fn max_pending_handshakes(mut self, n: usize) -> NodeBuilder {
        self.opts.max_pending_handshakes = n.max(1);
        self
    }

    /// Incoming handshakes allowed to run at once from one source address (an IPv4 address or an
    /// IPv6 /64); more from it are closed at once. Default 8.
    pub fn max_pending_handshakes_per_address(mut self, n: usize) -> NodeBuilder {
        self.opts.max_pending_per_address = n.max(1);
        self
    }

    /// Byte budget of each connection's send queue: past it a process that sends is suspended at
    /// its next `.await` until the queue drains (`send_async` waits, `try_send` says busy).
    /// Default 64 MiB.
    pub fn byte_budget(mut self, bytes: usize) -> NodeBuilder {
        self.opts.byte_budget = bytes.max(1);
        self
    }

    /// Hard ceiling of each connection's send queue: a process whose message finds the queue at
    /// it (it kept sending without awaiting) exits with `{:send_queue_overflow, node}`, and a
    /// message from outside any process closes the connection. Signals are never refused.
    /// Default twice the byte budget; never below it.
    pub fn queue_ceiling(mut self, bytes: usize) -> NodeBuilder {
        self.opts.queue_ceiling = Some(bytes);
        self
    }

    /// How a process that loses a global name in a conflict (two registrations that did not know
    /// of each other, e.g. on both sides of a partition) is told: an exit signal
    /// `{:global_name_conflict, name, winner}` (the default), or that message. README, "Global
    /// registry".
    pub fn global_conflict_notice(mut self, notice: ConflictNotice) -> NodeBuilder {
        self.opts.conflict_notice = notice;
        self
    }

    /// Whether to connect to the nodes our peers are connected to (transitive mesh). Default on.
    pub fn transitive(mut self, on: bool) -> NodeBuilder {
        self.opts.transitive = on;
        self
    }

    /// Whether to offer the atom cache (PROTOCOL.md 4.4): with a peer that offers it too, repeated
    /// atoms, node names and creations go on the wire as small indices. Default on; off, every
    /// frame is written in full (as to a peer without it).
    pub fn atom_cache(mut self, on: bool) -> NodeBuilder {
        self.opts.atom_cache = on;
        self
    }

    /// Failed authentications from one address per minute before its connections are refused
    /// without a handshake. Default 10. Every handshake that ends before the peer proved the
    /// cookie counts: a wrong cookie, a malformed message, a TLS failure, a timeout, a close.
    pub fn auth_failures_per_minute(mut self, n: u32) -> NodeBuilder {
        self.opts.auth_failures_per_minute = n.max(1);
        self
    }

    /// Tries per connection attempt for network failures (with backoff in between). Default 3.
    pub fn connect_attempts(mut self, n: u32) -> NodeBuilder {
        self.opts.connect_attempts = n.max(1);
        self
    }

    /// PBKDF2 iterations of the cookie key derivation. Every node of a cluster must use the same
    /// value; only tests should lower it (the default is slow on purpose: README, "Security").
    pub fn key_derivation_iterations(mut self, iterations: u32) -> NodeBuilder {
        self.iterations = iterations.max(1);
        self
    }

    /// The mailbox limit the node's processes start with (`SNOW_MAILBOX_LIMIT`; default `None`, no
    /// limit): a process whose mailbox holds that many messages when another arrives, from this
    /// node or another, is killed with `{:mailbox_overflow, limit}` (README, "Security"). Each
    /// process may change its own with [`Process::set_mailbox_limit`](crate::Process::set_mailbox_limit).
    /// Applied by [`NodeBuilder::start`]; a foreign host started with
    /// [`NodeBuilder::prepare`] reads it with [`NodeBuilder::default_mailbox_limit`] and keeps its
    /// own mailboxes.
    pub fn mailbox_limit(mut self, limit: Option<usize>) -> NodeBuilder {
        self.mailbox_limit = limit;
        self
    }

    /// The mailbox limit set with [`NodeBuilder::mailbox_limit`] or `SNOW_MAILBOX_LIMIT`.
    pub fn default_mailbox_limit(&self) -> Option<usize> {
        self.mailbox_limit
    }

    /// Does everything that can fail before a host exists: loads the TLS identity, derives the
    /// key, opens the listener and registers with snow-epmd, whose reply gives the node's
    /// creation. The host of the node's processes is then made with that name and creation, and
    /// handed to [`Prepared::start`]. [`NodeBuilder::start`] does both for this crate's local
    /// process layer; a foreign host (Snow's own scheduler) calls them itself.
    pub async fn prepare(self) -> Result<Prepared, StartError> {
        let cookie = self.cookie.ok_or(StartError::NoCookie)?;
        let material = match &self.identity {
            Identity::SelfSigned => TlsMaterial::self_signed()?,
            Identity::Pem { cert, key, ca } => TlsMaterial::from_pem(cert, key, ca)?,
            Identity::Files { cert, key, ca } => TlsMaterial::from_files(cert, key, ca)?,
        };
        if material.is_ca_verified() {
            // Peers would refuse every connection: say so now, not at each connect.
            let names = material.certificate_names();
            if !names.allows(&self.name) {
                return Err(StartError::CertificateHost { name: self.name.clone(), names });
            }
        }
        let tls_client = tls::dialer_config(&material, &self.name)?;
        let tls_server = tls::server_config(&material)?;
        let ca_verified = material.is_ca_verified();
        // rustls holds its own copy of the key; ours is zeroed now.
        drop(material);
        let iterations = self.iterations;
        let (listen_ip, host) = (self.listen_ip, self.name.host_for_connect().to_owned());
        // The derivation takes a fraction of a second on purpose, and finding the listen address
        // may ask DNS: both off the caller's thread.
        let (key_tx, key_rx) = async_channel::bounded(1);
        std::thread::Builder::new()
            .name("snow-key-derivation".into())
            .spawn(move || {
                let key = derive_key_with_iterations(&cookie, KeyLabel::Distribution, iterations);
                snow_shared::dist::key_exchange::prepare();
                let _ = key_tx.send_blocking((key, listen_ip.unwrap_or_else(|| default_listen_ip(&host))));
            })
            .map_err(StartError::KeyDerivation)?;
        let (key, listen_ip) = key_rx.recv().await.map_err(|_| {
            StartError::KeyDerivation(std::io::Error::other("the key derivation thread ended without a key"))
        })?;
        let bind = SocketAddr::new(listen_ip, self.listen_port);
        // The scheduler's workers drive the sockets' reactor, also for a node whose tasks run on
        // an embedder's scheduler (the C ABI's `schedule` callback).
        crate::sched::start();
        let listener = listen(bind).map_err(|source| StartError::Listen { addr: bind, source })?;
        let local = listener.local_addr().map_err(|source| StartError::Listen { addr: bind, source })?;
        let registration = snow_epmd::client::register(&self.epmd, &self.name, local.port()).await?;
        let creation = registration.creation().max(1);
        let mut hs = HandshakeConfig::new(self.name.clone(), creation, key);
        hs.flags = offered_flags(self.opts.transitive, self.opts.atom_cache);
        hs.timeout = self.opts.handshake_timeout;
        Ok(Prepared {
            hs,
            tls_client,
            tls_server,
            ca_verified,
            epmd: self.epmd,
            opts: self.opts,
            listener,
            local,
            registration,
        })
    }
}

/// A node's distribution, ready to start once its host exists: the listener is open and the
/// node registered with snow-epmd (dropping this unregisters it and closes the listener).
pub struct Prepared {
    hs: HandshakeConfig,
    tls_client: Arc<rustls::ClientConfig>,
    tls_server: Arc<rustls::ServerConfig>,
    ca_verified: bool,
    epmd: String,
    opts: Options,
    listener: TcpListener,
    local: SocketAddr,
    registration: snow_epmd::client::Registration,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("name", &self.hs.local).field("creation", &self.hs.creation).finish()
    }
}

impl Prepared {
    /// The node's name.
    pub fn name(&self) -> &NodeName {
        &self.hs.local
    }

    /// The node's creation, given by snow-epmd: the host must mint its pids with it.
    pub fn creation(&self) -> u32 {
        self.hs.creation
    }

    /// Starts distribution for `host` (whose name and creation must be [`Prepared::name`] and
    /// [`Prepared::creation`]), running its tasks on `runtime`. The host installs the returned
    /// [`Distribution`] and routes every operation on a pid of another node through it.
    ///
    /// Remote calls and aliases are offered to peers only if the host has them
    /// ([`Host::supports_calls`], [`Host::supports_aliases`]).
    pub fn start(mut self, host: Weak<dyn Host>, runtime: Arc<dyn Runtime>) -> Arc<dyn Distribution> {
        let port = self.local.port();
        let creation = self.hs.creation;
        let (calls, aliases) = host.upgrade().map_or((false, false), |h| (h.supports_calls(), h.supports_aliases()));
        if !calls {
            self.hs.flags = self.hs.flags.without(Flags::CALLS);
        }
        if !aliases {
            self.hs.flags = self.hs.flags.without(Flags::ALIAS);
        }
        let dist = Driver::new(
            host,
            runtime,
            self.hs,
            self.tls_client,
            self.tls_server,
            self.ca_verified,
            self.epmd,
            self.opts,
            self.local,
        );
        let dist = Arc::new(dist);
        dist.spawn(super::mesh::run(dist.clone()));
        dist.spawn(super::listener::run(dist.clone(), self.listener));
        dist.spawn(super::epmd::keep_registered(dist.clone(), self.registration, port));
        log::info!(
            "{}: distribution up on {} (creation {creation}, TLS {}, snow-epmd {})",
            dist.name,
            self.local,
            if self.ca_verified { "CA-verified mutual" } else { "self-signed" },
            dist.epmd
        );
        Arc::new(Service(dist))
    }
}

/// Where a node whose name's host is `host` (IPv6 without brackets) listens when no address is
/// set: all IPv6 addresses if the host is an IPv6 address or resolves only to IPv6 addresses,
/// else all IPv4 addresses (also when it does not resolve: the snow-epmd entry names the host,
/// and peers resolve it themselves). Blocking (name resolution).
fn default_listen_ip(host: &str) -> IpAddr {
    let v6_only = match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_ipv6(),
        Err(_) => match (host, 0).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                !addrs.is_empty() && addrs.iter().all(SocketAddr::is_ipv6)
            }
            Err(_) => false,
        },
    };
    if v6_only {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    /// Far more connections than `std`'s queue of 128, all made before the first is accepted.
    const BURST: usize = 300;

    #[test]
    fn the_listener_queues_a_burst_of_connections_std_would_overflow() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // With an overflowing queue the kernel drops the SYN and retries after a second: a
        // connection past the queue would time out here.
        let clients: Vec<TcpStream> = (0..BURST)
            .map(|i| {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connection {i} was not queued: {e}"))
            })
            .collect();
        assert_eq!(clients.len(), BURST);
    }
}
