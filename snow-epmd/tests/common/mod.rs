//! Helpers shared by the snow-epmd test files: one deadline policy, one temp directory type,
//! in-process daemons, raw requests, connections from a chosen loopback address.
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_epmd::{Config, ServerHandle};
use snow_shared::cookie::Cookie;

/// The whole of one test must finish within this.
pub const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// A condition awaited with [`eventually`] or a reply awaited with [`read_to_close`] must come
/// within this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs a test body on the current thread, failing it if it outlives [`TEST_DEADLINE`].
pub fn run<T>(body: impl Future<Output = T>) -> T {
    async_io::block_on(body.timeout(TEST_DEADLINE)).expect("test outlived its deadline")
}

/// A temp directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "snow-epmd-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test cookie (gossip key derivation made cheap with few iterations).
pub fn cookie() -> Cookie {
    Cookie::from_bytes(b"test-cookie-0123456789").unwrap()
}

/// A config for an in-process daemon on 127.0.0.1:0 with short timers.
pub fn config(dir: &TempDir) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().join("db"));
    c.hostname = "testhost".into();
    c.request_timeout = Duration::from_millis(1500);
    c.gossip_interval = Duration::from_millis(50);
    c.pbkdf2_iterations = 1000;
    c.threads = 2;
    c
}

pub async fn start(config: Config) -> (ServerHandle, String) {
    let h = snow_epmd::serve(config).await.unwrap();
    let addr = h.local_addr().to_string();
    (h, addr)
}

/// Sends raw bytes and reads until the daemon closes (or [`WAIT`] passes).
pub async fn raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_to_close(&mut s).await
}

/// Everything the daemon sends until it closes; fails the test if it does not close within
/// [`WAIT`].
pub async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let work = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    work.timeout(WAIT).await.expect("daemon did not close the connection");
    out
}

/// Polls `cond` every 20 ms until it holds or [`WAIT`] passes.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
    cond()
}

/// Sleeps (the daemon's own timers are what the test waits for).
pub async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

/// A TCP connection to `to` from the local address `from` (e.g. 127.0.0.2, another source).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let family = if from.is_ipv4() { rustix::net::AddressFamily::INET } else { rustix::net::AddressFamily::INET6 };
    let fd =
        rustix::net::socket_with(family, rustix::net::SocketType::STREAM, rustix::net::SocketFlags::CLOEXEC, None)?;
    rustix::net::bind(&fd, &SocketAddr::new(from, 0))?;
    let std = std::net::TcpStream::from(fd);
    let stream = async_io::Async::new(std)?;
    let _ = rustix::net::connect(stream.get_ref(), &to);
    stream.writable().await?;
    let s: TcpStream = stream.into();
    s.peer_addr()?;
    Ok(s)
}

/// An ALIVE2 request body for `name` (port 4000, normal node, versions 5-6).
pub fn alive(name: &[u8]) -> snow_shared::epmd::wire::Alive2Req {
    snow_shared::epmd::wire::Alive2Req {
        port: 4000,
        node_type: 77,
        protocol: 0,
        high_version: 6,
        low_version: 5,
        name: name.to_vec(),
        extra: vec![],
    }
}
