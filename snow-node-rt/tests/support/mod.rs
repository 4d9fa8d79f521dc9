//! Helpers for snow-node-rt's tests, one module for all of them: one deadline policy ([`WAIT`]
//! for every single wait, [`TEST_DEADLINE`] for a whole test), one way to see what a process
//! receives ([`collector`] / [`forwarder`]), and for distribution tests an in-process snow-epmd
//! on an ephemeral port with a data dir that is removed afterwards, nodes that derive their key
//! quickly, and a hand-driven peer ([`raw`]).
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use smol_timeout::TimeoutExt;
use snow_epmd::{serve, Config, ServerHandle};
use snow_node_rt::dist::NodeBuilder;
use snow_node_rt::{Node, NodeName, Pid, Process, Term};
use snow_shared::cookie::Cookie;
use snow_shared::test_support::TempDir;

/// Bound on every single wait of a test (a message, a condition, a connection).
pub const WAIT: Duration = Duration::from_secs(20);
/// Bound on a whole test.
pub const TEST_DEADLINE: Duration = Duration::from_secs(180);

pub const COOKIE: &[u8] = b"test-cookie-0123456789-abcdefgh";
/// Every node in these tests derives its key with this many iterations (the same on all nodes),
/// instead of the production count that takes a fifth of a second.
pub const ITERATIONS: u32 = 1_000;

/// Runs a test body to completion on this thread, failing the test after [`TEST_DEADLINE`].
pub fn run<T>(body: impl Future<Output = T>) -> T {
    init_log();
    snow_node_rt::block_on(async { body.timeout(TEST_DEADLINE).await.expect("test timed out") })
}

pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    fut.timeout(WAIT).await.expect("timed out waiting")
}

/// The next item of a channel, within [`WAIT`].
pub async fn next<T>(rx: &Receiver<T>) -> T {
    within(rx.recv()).await.expect("channel closed")
}

/// Nothing arrives on `rx` for 300 ms (many loopback round trips): for checks that something
/// does *not* happen.
pub async fn quiet<T: std::fmt::Debug>(rx: &Receiver<T>, what: &str) {
    if let Some(Ok(item)) = rx.recv().timeout(Duration::from_millis(300)).await {
        panic!("{what}: got {item:?}");
    }
}

/// Polls `cond` every 10 ms until it holds; fails after [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        snow_node_rt::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `body` as a process on `node` and returns what it produces.
pub async fn in_process<T, F, Fut>(node: &Node, body: F) -> T
where
    T: Send + 'static,
    F: FnOnce(Process) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |p| {
        let fut = body(p);
        async move {
            let _ = tx.send(fut.await).await;
        }
    });
    within(rx.recv()).await.expect("probe process died before answering")
}

/// A process on `node` that forwards every message it receives to the returned channel.
pub fn collector(node: &Node) -> (Pid, Receiver<Term>) {
    forwarder(node, |_, _| {})
}

/// A process on `node` that first runs `setup` (which may put terms on the channel itself), then
/// forwards every message it receives to the returned channel.
pub fn forwarder(node: &Node, setup: impl FnOnce(&Process, &Sender<Term>) + Send + 'static) -> (Pid, Receiver<Term>) {
    let (tx, rx) = async_channel::unbounded();
    let pid = node.spawn(move |mut me| async move {
        setup(&me, &tx);
        loop {
            let msg = me.receive().await;
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    (pid, rx)
}

/// Starts a process that monitors `target` and reports the reason of its `:DOWN` on the returned
/// channel. Returns once the monitor is in place.
pub async fn watch(node: &Node, target: &Pid) -> Receiver<Term> {
    let (ready_tx, ready_rx) = async_channel::bounded(1);
    let (tx, rx) = async_channel::bounded(1);
    let target = target.clone();
    node.spawn(move |mut me| async move {
        let r = me.monitor(&target);
        let _ = ready_tx.send(()).await;
        let down = me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(x), ..]) if *x == r)).await;
        let _ = tx.send(down.as_tuple().unwrap()[3].clone()).await;
    });
    within(ready_rx.recv()).await.unwrap();
    rx
}

/// `{:EXIT, from, reason}`.
pub fn exit_msg(from: &Pid, reason: Term) -> Term {
    Term::tuple([Term::atom("EXIT"), Term::Pid(from.clone()), reason])
}

/// A process that waits until killed or sent `:stop`.
pub fn idle(node: &Node) -> Pid {
    node.spawn(|mut me| async move {
        loop {
            if me.receive().await.is_atom("stop") {
                return;
            }
        }
    })
}

/// A process on `node` subscribed to every node's ups and downs (`monitor_nodes`), forwarding
/// them to the returned channel. Returns once the subscription is in place.
pub async fn node_events(node: &Node) -> Receiver<Term> {
    let (_, rx) = forwarder(node, |me, tx| {
        me.monitor_nodes(true);
        // The channel is unbounded: the send cannot fail while the receiver is alive.
        let _ = tx.try_send(Term::atom("subscribed"));
    });
    assert_eq!(next(&rx).await, Term::atom("subscribed"));
    rx
}

/// A snow-epmd daemon on 127.0.0.1 with an ephemeral port; its data directory is removed when
/// this value is dropped.
pub struct Epmd {
    handle: ServerHandle,
    _dir: TempDir,
}

impl std::ops::Deref for Epmd {
    type Target = ServerHandle;

    fn deref(&self) -> &ServerHandle {
        &self.handle
    }
}

/// Starts a snow-epmd daemon for one test.
pub async fn epmd() -> Epmd {
    init_log();
    let dir = TempDir::new("node-rt-test").expect("a temp dir");
    let handle = serve(Config::new("127.0.0.1:0".parse().unwrap(), dir.join("epmd"))).await.expect("snow-epmd starts");
    Epmd { handle, _dir: dir }
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

/// Nodes `shorts` registered with `epmd`, all connected to each other (the first dials the
/// others; the transitive mesh does the rest).
pub async fn mesh(epmd: &ServerHandle, shorts: &[&str]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for short in shorts {
        nodes.push(node(epmd, short).await);
    }
    for other in &nodes[1..] {
        within(nodes[0].connect(other.name())).await.expect("connects");
    }
    let n = nodes.len();
    eventually("a full mesh", || nodes.iter().all(|node| node.nodes().len() == n - 1)).await;
    nodes
}

/// Shuts every node down.
pub async fn shutdown_all(nodes: &[Node]) {
    for node in nodes {
        node.shutdown().await;
    }
}

/// An example's binary, built by `cargo test` in `target/<profile>/examples/` (run a test that
/// needs one alone after `cargo build --examples`).
pub fn example(name: &str) -> std::path::PathBuf {
    let test_exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let profile_dir = test_exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let exe = profile_dir.join("examples").join(name);
    assert!(exe.exists(), "{} is missing: build the examples first (cargo build --examples)", exe.display());
    exe
}

/// A program started by a test (an example) with piped stdin and stdout, its stdout read line by
/// line on a thread; killed (SIGKILL to its own pid) and reaped when dropped.
pub struct ChildProgram {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line read so far, for failure messages.
    pub seen: Vec<String>,
}

impl ChildProgram {
    /// Starts `cmd` (stderr goes to the test's stderr).
    pub fn start(mut cmd: std::process::Command) -> ChildProgram {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the program starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = async_channel::unbounded();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send_blocking(line).is_err() {
                    return;
                }
            }
        });
        ChildProgram { stdin: child.stdin.take(), child, lines, seen: Vec::new() }
    }

    /// The next stdout line that satisfies `accept` (earlier ones are skipped), within [`WAIT`].
    pub async fn expect_line(&mut self, what: &str, mut accept: impl FnMut(&str) -> bool) -> String {
        loop {
            match self.lines.recv().timeout(WAIT).await {
                Some(Ok(line)) => {
                    self.seen.push(line.clone());
                    if accept(&line) {
                        return line;
                    }
                }
                Some(Err(_)) => panic!("output ended before {what}; output:\n{}", self.seen.join("\n")),
                None => panic!("no {what} within {WAIT:?}; output:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Writes `line` to the program's stdin.
    pub fn write_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("the program reads its stdin");
    }

    /// Closes the program's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the program to exit by itself, within [`WAIT`]; its exit status.
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the program's status") {
                return status;
            }
            assert!(start.elapsed() < WAIT, "the program did not exit within {WAIT:?}");
            snow_node_rt::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the program with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProgram {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hand-driven peer: TLS and the cookie handshake with `target` as node `short@127.0.0.1`,
/// then raw access to the stream, for tests that misbehave after authenticating.
pub mod raw {
    use std::time::Instant;

    use async_net::TcpStream;
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
    use futures_rustls::client::TlsStream;
    use futures_rustls::TlsConnector;
    use smol_timeout::TimeoutExt;
    use snow_epmd::handshake::DriveError;
    use snow_node_rt::Node;
    use snow_shared::cookie::{derive_key_with_iterations, Cookie, KeyLabel};
    use snow_shared::dist::control::{Control, DecodeContext};
    use snow_shared::dist::handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo};
    use snow_shared::dist::inbound::Inbound;
    use snow_shared::dist::tls::TlsMaterial;
    use snow_shared::dist::{tls, Flags};
    use snow_shared::fragment::ReassemblyLimits;
    use snow_shared::frame::{encode_frame, DEFAULT_MAX_FRAME};
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
            Err(RawError::Tls(e)) => panic!("TLS with {} failed: {e}", target.name()),
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
        let server_name = tls::server_name(ca_verified, target.name().host_for_connect());
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
        let mut hs = Handshake::initiator(config, target.name().clone(), binding, rand::random(), Instant::now());
        // The same driver nodes and `snow-epmd ping` use; read errors other than a close are the
        // node refusing TLS late (an alert).
        match snow_epmd::handshake::drive(&mut hs, &mut stream, |_, _| {}).await {
            Ok(info) => Ok((stream, info)),
            Err(DriveError::Handshake(e)) => Err(RawError::Handshake(e)),
            Err(DriveError::Io(e)) => Err(RawError::Tls(e)),
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
        TcpStream::try_from(std::net::TcpStream::from(fd)).unwrap()
    }

    /// A hand-driven peer after the cookie handshake: reads the node's control messages, writes
    /// its own.
    pub struct Conversation {
        pub stream: TlsStream<TcpStream>,
        pub info: PeerInfo,
        inbound: Inbound,
        buf: Vec<u8>,
    }

    impl Conversation {
        /// Dials `target` as `short@127.0.0.1` offering `flags` (this build's if `None`).
        pub async fn dial(target: &Node, short: &str, flags: Option<Flags>) -> Conversation {
            let (stream, info) = dial_offering(target, short, super::COOKIE, flags).await.expect("authenticates");
            let inbound = Inbound::new(DecodeContext::new(info.flags), DEFAULT_MAX_FRAME, ReassemblyLimits::default());
            Conversation { stream, info, inbound, buf: vec![0; 256 << 10] }
        }

        /// The next control message, within [`super::WAIT`].
        pub async fn next(&mut self) -> Control {
            self.next_within(super::WAIT).await.expect("a control message within the bound")
        }

        /// The next control message if one comes within `wait` (`None` also if the node closes
        /// the connection).
        pub async fn next_within(&mut self, wait: std::time::Duration) -> Option<Control> {
            let deadline = Instant::now() + wait;
            loop {
                if let Some(msg) = self.inbound.next_message().expect("well-formed frames") {
                    return Some(msg);
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                let n = self.stream.read(&mut self.buf).timeout(left).await?.ok()?;
                if n == 0 {
                    return None;
                }
                self.inbound.feed(&self.buf[..n]);
            }
        }

        /// Writes `msg` as one frame.
        pub async fn send(&mut self, msg: &Control) {
            let mut frame = Vec::new();
            encode_frame(&msg.to_bytes(), &mut frame).unwrap();
            self.stream.write_all(&frame).await.unwrap();
            self.stream.flush().await.unwrap();
        }
    }

    /// Whether the other end closes `stream` (EOF or error) within the test bound, reading and
    /// discarding anything it sends first.
    pub async fn closes<S: futures_lite::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
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
