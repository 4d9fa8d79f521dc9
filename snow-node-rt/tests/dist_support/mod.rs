//! Helpers for the in-process multi-node tests: a snow-epmd daemon on an ephemeral port and
//! nodes started against it with a fast key derivation.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use snow_epmd::{serve, Config, ServerHandle};
use snow_node_rt::dist::NodeBuilder;
use snow_node_rt::{Node, NodeName, Term};
use snow_shared::cookie::Cookie;

pub const COOKIE: &[u8] = b"test-cookie-0123456789-abcdefgh";
/// Every node in these tests derives its key with this many iterations (the same on all nodes).
pub const ITERATIONS: u32 = 1_000;
/// Bound on every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "snow-dist-test-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A snow-epmd daemon on 127.0.0.1 with an ephemeral port and a fresh data directory.
pub async fn epmd() -> ServerHandle {
    init_log();
    serve(Config::new("127.0.0.1:0".parse().unwrap(), temp_dir())).await.unwrap()
}

pub fn name(short: &str) -> NodeName {
    NodeName::parse(&format!("{short}@127.0.0.1")).unwrap()
}

/// A builder for `short@127.0.0.1` registered with `epmd`, listening on loopback.
pub fn builder(epmd: &ServerHandle, short: &str) -> NodeBuilder {
    NodeBuilder::new(name(short))
        .cookie(Cookie::from_bytes(COOKIE).unwrap())
        .epmd(&epmd.local_addr().to_string())
        .listen_ip("127.0.0.1".parse().unwrap())
        .key_derivation_iterations(ITERATIONS)
}

pub async fn node(epmd: &ServerHandle, short: &str) -> Node {
    builder(epmd, short).start().await.unwrap()
}

/// Polls `cond` every 10 ms until it holds; panics after [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        async_std::task::sleep(Duration::from_millis(10)).await;
    }
}

/// A process on `node` that forwards every message it receives to the returned channel.
pub fn collector(node: &Node) -> (snow_node_rt::Pid, async_std::channel::Receiver<Term>) {
    forwarder(node, |_, _| {})
}

/// A process on `node` that first runs `setup` (which may put terms on the channel itself), then
/// forwards every message it receives to the returned channel.
pub fn forwarder(
    node: &Node,
    setup: impl FnOnce(&snow_node_rt::Process, &async_std::channel::Sender<Term>) + Send + 'static,
) -> (snow_node_rt::Pid, async_std::channel::Receiver<Term>) {
    let (tx, rx) = async_std::channel::unbounded();
    let pid = node
        .spawn(move |mut me| async move {
            setup(&me, &tx);
            loop {
                let msg = me.receive().await;
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        })
        .pid()
        .clone();
    (pid, rx)
}

/// A process on `node` subscribed to every node's ups and downs (`monitor_nodes`), forwarding
/// them to the returned channel. Returns once the subscription is in place.
pub async fn node_events(node: &Node) -> async_std::channel::Receiver<Term> {
    let (_, rx) = forwarder(node, |me, tx| {
        me.monitor_nodes(true);
        // The channel is unbounded: the send cannot fail while the receiver is alive.
        let _ = tx.try_send(Term::atom("subscribed"));
    });
    assert_eq!(next(&rx).await, Term::atom("subscribed"));
    rx
}

/// The next message from a collector, within [`WAIT`].
pub async fn next(rx: &async_std::channel::Receiver<Term>) -> Term {
    use smol_timeout::TimeoutExt;
    rx.recv().timeout(WAIT).await.expect("timed out waiting for a message").unwrap()
}

/// A hand-driven peer: TLS and the cookie handshake with `target` as node `short@127.0.0.1`,
/// then raw access to the stream, for tests that misbehave after authenticating.
pub mod raw {
    use std::time::Instant;

    use async_std::net::TcpStream;
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
    use futures_rustls::client::TlsStream;
    use futures_rustls::TlsConnector;
    use snow_node_rt::Node;
    use snow_shared::cookie::{derive_key_with_iterations, Cookie, KeyLabel};
    use snow_shared::dist::handshake::{Handshake, HandshakeConfig, HandshakeError, HandshakeEvent, PeerInfo};
    use snow_shared::dist::tls::TlsMaterial;
    use snow_shared::dist::{tls, Flags};
    use snow_shared::NodeName;

    pub async fn dial(target: &Node, short: &str, cookie: &[u8]) -> Result<TlsStream<TcpStream>, HandshakeError> {
        dial_offering(target, short, cookie, None).await.map(|(stream, _)| stream)
    }

    /// [`dial`] offering `flags` (this build's defaults if `None`); also returns what the node
    /// agreed to.
    pub async fn dial_offering(
        target: &Node,
        short: &str,
        cookie: &[u8],
        flags: Option<Flags>,
    ) -> Result<(TlsStream<TcpStream>, PeerInfo), HandshakeError> {
        let name = super::name(short);
        let peer = Peer { name: &name, cookie, flags, tls: None, from: None };
        match dial_as(target, peer).await {
            Ok(done) => Ok(done),
            Err(RawError::Handshake(e)) => Err(e),
            Err(RawError::Tls(e)) => panic!("TLS with {} failed: {e}", target.self_node()),
        }
    }

    /// How a hand-driven peer presents itself.
    pub struct Peer<'a> {
        /// The node name it claims in its HELLO.
        pub name: &'a NodeName,
        /// The cookie it knows.
        pub cookie: &'a [u8],
        /// The capabilities it offers (this build's defaults if `None`).
        pub flags: Option<Flags>,
        /// Its certificate, for a node with CA-verified TLS (none: no client certificate).
        pub tls: Option<&'a TlsMaterial>,
        /// The loopback address it connects from (default: the kernel's choice, 127.0.0.1).
        pub from: Option<std::net::IpAddr>,
    }

    /// Why a hand-driven dial failed.
    #[derive(Debug)]
    pub enum RawError {
        /// The node refused the TLS handshake.
        Tls(std::io::Error),
        /// The cookie handshake failed.
        Handshake(HandshakeError),
    }

    /// TLS (with `peer.tls`' certificate if given) and the cookie handshake with `target` as
    /// `peer` says; the stream once established.
    pub async fn dial_as(target: &Node, peer: Peer<'_>) -> Result<(TlsStream<TcpStream>, PeerInfo), RawError> {
        let to = target.listen_addr().unwrap();
        let tcp = match peer.from {
            Some(from) => connect_from(from, to),
            None => TcpStream::connect(to).await.unwrap(),
        };
        let ca_verified = peer.tls.is_some_and(TlsMaterial::is_ca_verified);
        let config = match peer.tls {
            Some(material) => tls::client_config(material).unwrap(),
            None => tls::client_only_config().unwrap(),
        };
        let server_name = tls::server_name(ca_verified, target.self_node().host_for_connect());
        let mut stream = TlsConnector::from(config).connect(server_name, tcp).await.map_err(RawError::Tls)?;
        let binding = tls::channel_binding(stream.get_ref().1, ca_verified).unwrap();
        let key = derive_key_with_iterations(
            &Cookie::from_bytes(peer.cookie).unwrap(),
            KeyLabel::Distribution,
            super::ITERATIONS,
        );
        let mut config = HandshakeConfig::new(peer.name.clone(), 7, key);
        if let Some(flags) = peer.flags {
            config.flags = flags;
        }
        let mut hs = Handshake::initiator(config, target.self_node(), binding, rand::random(), Instant::now());
        let mut buf = [0u8; 4096];
        loop {
            let out = hs.take_output();
            // A write may fail once the node has closed: the read below reports why.
            let _ = stream.write_all(&out).await;
            let _ = stream.flush().await;
            while let Some(ev) = hs.poll_event() {
                if let HandshakeEvent::Established(info) = ev {
                    return Ok((stream, info));
                }
            }
            hs.result().map_err(RawError::Handshake)?;
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                hs.feed_eof().map_err(RawError::Handshake)?;
            } else {
                hs.feed(&buf[..n]).map_err(RawError::Handshake)?;
            }
        }
    }

    /// A TCP connection to `to` from the local address `from` (e.g. 127.0.0.2, another source
    /// on the loopback network). Blocking connect: loopback answers at once.
    pub fn connect_from(from: std::net::IpAddr, to: std::net::SocketAddr) -> TcpStream {
        use rustix::net::{AddressFamily, SocketType};
        let family = if from.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
        let fd = rustix::net::socket(family, SocketType::STREAM, None).unwrap();
        rustix::net::bind(&fd, &std::net::SocketAddr::new(from, 0)).unwrap();
        rustix::net::connect(&fd, &to).unwrap();
        TcpStream::from(std::net::TcpStream::from(fd))
    }

    /// Whether the other end closes `stream` (EOF or error) within the test bound, reading and
    /// discarding anything it sends first.
    pub async fn closes<S: futures_lite::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
        use smol_timeout::TimeoutExt;
        let mut buf = vec![0u8; 64 << 10];
        let work = async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        };
        work.timeout(super::WAIT).await.unwrap_or(false)
    }
}
