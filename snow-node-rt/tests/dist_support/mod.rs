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
    use snow_shared::dist::{tls, Flags};

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
        let tcp = TcpStream::connect(target.listen_addr().unwrap()).await.unwrap();
        let config = tls::client_only_config().unwrap();
        let mut stream = TlsConnector::from(config).connect(tls::server_name(false, "x"), tcp).await.unwrap();
        let exporter = tls::exporter(stream.get_ref().1).unwrap();
        let key =
            derive_key_with_iterations(&Cookie::from_bytes(cookie).unwrap(), KeyLabel::Distribution, super::ITERATIONS);
        let mut config = HandshakeConfig::new(super::name(short), 7, key);
        if let Some(flags) = flags {
            config.flags = flags;
        }
        let mut hs = Handshake::initiator(config, target.self_node(), exporter, rand::random(), Instant::now());
        let mut buf = [0u8; 4096];
        loop {
            let out = hs.take_output();
            stream.write_all(&out).await.unwrap();
            stream.flush().await.unwrap();
            while let Some(ev) = hs.poll_event() {
                if let HandshakeEvent::Established(peer) = ev {
                    return Ok((stream, peer));
                }
            }
            hs.result()?;
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                hs.feed_eof()?;
            } else {
                hs.feed(&buf[..n])?;
            }
        }
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
