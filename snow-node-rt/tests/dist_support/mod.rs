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
    let (tx, rx) = async_std::channel::unbounded();
    let pid = node
        .spawn(move |mut me| async move {
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

/// The next message from a collector, within [`WAIT`].
pub async fn next(rx: &async_std::channel::Receiver<Term>) -> Term {
    use smol_timeout::TimeoutExt;
    rx.recv().timeout(WAIT).await.expect("timed out waiting for a message").unwrap()
}
