//! Real processes for cluster tests: a snow-epmd daemon (the `snow-epmd-it` binary) and Snow nodes
//! (the `snow-test-node` binary), each a [`ChildProc`] killed on drop. Tests pass the binaries'
//! paths (`env!("CARGO_BIN_EXE_...")`), which Cargo only gives to tests and benches.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::child::ChildProc;
use crate::tmp::{random_cookie, write_secret, TempDir};

/// A cluster's shared files: cookie and the daemons' data directories.
pub struct Cluster {
    /// Private directory, removed on drop.
    pub dir: TempDir,
    /// The cookie file (mode 600).
    pub cookie: PathBuf,
    epmd_exe: PathBuf,
    node_exe: PathBuf,
}

/// A running snow-epmd.
pub struct Epmd {
    /// The process.
    pub proc: ChildProc,
    /// `ip:port` it listens on.
    pub addr: String,
}

/// A running snow-test-node.
pub struct TestNode {
    /// The process.
    pub proc: ChildProc,
    /// Its full name.
    pub name: String,
}

impl Cluster {
    /// A fresh cluster directory with a random cookie.
    pub fn new(epmd_exe: &str, node_exe: &str) -> Result<Cluster, String> {
        let dir = TempDir::new("cluster").map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let cookie = dir.join("cookie");
        write_secret(&cookie, random_cookie().as_bytes()).map_err(|e| format!("cannot write the cookie: {e}"))?;
        Ok(Cluster { dir, cookie, epmd_exe: epmd_exe.into(), node_exe: node_exe.into() })
    }

    /// The snow-epmd binary (to run CLI subcommands).
    pub fn epmd_exe(&self) -> &Path {
        &self.epmd_exe
    }

    /// The command that starts snow-epmd with `args` (wrap it for a namespace with
    /// [`crate::netns::Netns::command`] if needed).
    pub fn epmd_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.epmd_exe);
        cmd.args(args).env("RUST_LOG", "info").env_remove("SNOW_COOKIE").env_remove("SNOW_COOKIE_FILE");
        cmd
    }

    /// Starts a daemon on 127.0.0.1 (`port` 0 = any) with data dir `data`, and waits until it
    /// listens.
    pub fn start_epmd(&self, port: u16, data: &str) -> Result<Epmd, String> {
        let listen = format!("127.0.0.1:{port}");
        let data = self.dir.join(data);
        let cmd = self.epmd_command(&["--listen", &listen, "--data-dir", &data.to_string_lossy()]);
        self.wait_epmd(ChildProc::spawn(format!("snow-epmd {listen}"), cmd).map_err(|e| e.to_string())?)
    }

    /// Waits for a started daemon's "listening on ADDR" log line.
    pub fn wait_epmd(&self, mut proc: ChildProc) -> Result<Epmd, String> {
        let line = proc.expect_err(Duration::from_secs(20), |l| l.contains("listening on "))?;
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
            .ok_or_else(|| format!("no address in: {line}"))?
            .to_owned();
        Ok(Epmd { proc, addr })
    }

    /// The command that starts a node named `name` against snow-epmd at `epmd`.
    pub fn node_command(&self, name: &str, epmd: &str, ticktime: u64) -> Command {
        let mut cmd = Command::new(&self.node_exe);
        node_env(&mut cmd, name, epmd, &self.cookie, ticktime);
        cmd.env("RUST_LOG", "info");
        cmd
    }

    /// Starts a node and waits for its `READY` line.
    pub fn start_node(&self, name: &str, epmd: &str, ticktime: u64) -> Result<TestNode, String> {
        TestNode::start(name, self.node_command(name, epmd, ticktime))
    }
}

/// Sets a node's environment (README, "Node environment") on `cmd`: name, snow-epmd, cookie file and
/// ticktime; clears the other variables so the caller's environment cannot leak in.
pub fn node_env(cmd: &mut Command, name: &str, epmd: &str, cookie: &Path, ticktime: u64) {
    cmd.env("SNOW_NODE", name)
        .env("SNOW_EPMD", epmd)
        .env("SNOW_COOKIE_FILE", cookie)
        .env("SNOW_TICKTIME", ticktime.to_string());
    for var in ["SNOW_COOKIE", "SNOW_DIST_PORT", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"] {
        cmd.env_remove(var);
    }
}

impl TestNode {
    /// Starts `cmd` (a snow-test-node command) and waits for `READY`.
    pub fn start(name: &str, cmd: Command) -> Result<TestNode, String> {
        let mut proc = ChildProc::spawn(name, cmd).map_err(|e| format!("cannot start {name}: {e}"))?;
        proc.expect_out(Duration::from_secs(30), |l| l.starts_with("READY ") || l.starts_with("START_FAILED"))
            .and_then(|l| if l.starts_with("READY ") { Ok(()) } else { Err(l) })?;
        Ok(TestNode { proc, name: name.to_owned() })
    }

    /// `connect peer`, waiting for the answer.
    pub fn connect(&mut self, peer: &str) -> Result<(), String> {
        self.proc.send_line(&format!("connect {peer}")).map_err(|e| e.to_string())?;
        let line = self.proc.expect_out(Duration::from_secs(30), |l| {
            l == format!("CONNECTED {peer}") || l.starts_with(&format!("CONNECT_FAILED {peer}"))
        })?;
        if line.starts_with("CONNECTED") {
            Ok(())
        } else {
            Err(line)
        }
    }

    /// The nodes this node is connected to.
    pub fn nodes(&mut self) -> Result<Vec<String>, String> {
        self.proc.send_line("nodes").map_err(|e| e.to_string())?;
        let rest = self.proc.expect_prefix(Duration::from_secs(10), "NODES")?;
        Ok(rest.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }

    /// Polls [`TestNode::nodes`] until it equals `expected` (sorted), or fails after `timeout`.
    pub fn await_nodes(&mut self, expected: &[&str], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        loop {
            let got = self.nodes()?;
            if got == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{}: nodes() is {got:?}, expected {want:?} within {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a message to `peer`'s echo process and waits for the answer.
    pub fn ping(&mut self, peer: &str) -> Result<bool, String> {
        self.proc.send_line(&format!("ping {peer}")).map_err(|e| e.to_string())?;
        let line = self
            .proc
            .expect_out(Duration::from_secs(15), |l| l == format!("PONG {peer}") || l == format!("PANG {peer}"))?;
        Ok(line.starts_with("PONG"))
    }

    /// Waits for the `NODEDOWN peer` event (also found if it was printed while waiting for
    /// something else); returns how long this call waited.
    pub fn await_nodedown(&mut self, peer: &str, timeout: Duration) -> Result<Duration, String> {
        self.await_line(&format!("NODEDOWN {peer}"), timeout)
    }

    /// Waits for the `NODEUP peer` event (also found if already printed).
    pub fn await_nodeup(&mut self, peer: &str, timeout: Duration) -> Result<(), String> {
        self.await_line(&format!("NODEUP {peer}"), timeout).map(|_| ())
    }

    fn await_line(&mut self, want: &str, timeout: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        if self.saw(want) {
            return Ok(Duration::ZERO);
        }
        self.proc.expect_out(timeout, |l| l == want)?;
        Ok(t0.elapsed())
    }

    fn saw(&mut self, want: &str) -> bool {
        let _ = self.proc.transcript();
        self.proc.seen.iter().any(|l| matches!(l, crate::child::Line::Out(t) if t == want))
    }

    /// Whether a `NODEDOWN peer` line was printed so far (without waiting).
    pub fn saw_nodedown(&mut self, peer: &str) -> bool {
        self.saw(&format!("NODEDOWN {peer}"))
    }

    /// How many output lines were seen so far: pass it to [`TestNode::await_since`] to wait only
    /// for events printed after this point.
    pub fn mark(&mut self) -> usize {
        self.proc.drain();
        self.proc.seen.len()
    }

    /// Waits for a stdout line equal to `want` printed after `mark`; returns when it was read.
    pub fn await_since(&mut self, mark: usize, want: &str, timeout: Duration) -> Result<Instant, String> {
        self.proc.expect_out_since(mark, timeout, |l| l == want).map(|(_, at)| at)
    }

    /// Waits for a stdout line starting with `prefix` printed after `mark`; returns the line and
    /// when it was read.
    pub fn await_prefix_since(
        &mut self,
        mark: usize,
        prefix: &str,
        timeout: Duration,
    ) -> Result<(String, Instant), String> {
        self.proc.expect_out_since(mark, timeout, |l| l.starts_with(prefix))
    }

    /// Sends a command line and waits for the answer starting with `answer` (a `BAD_COMMAND`
    /// answer is an error); returns the rest of the answer line.
    pub fn command(&mut self, line: &str, answer: &str, timeout: Duration) -> Result<String, String> {
        self.proc.send_line(line).map_err(|e| format!("{}: cannot send {line:?}: {e}", self.name))?;
        let got = self.proc.expect_out(timeout, |l| l.starts_with(answer) || l.starts_with("BAD_COMMAND"))?;
        match got.strip_prefix(answer) {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(format!("{}: {got}", self.name)),
        }
    }

    /// Starts a holder process labelled `label` (see the test node's `spawn`); returns its pid.
    pub fn spawn_holder(&mut self, label: &str) -> Result<String, String> {
        self.command(&format!("spawn {label}"), &format!("SPAWNED {label} "), Duration::from_secs(10))
    }

    /// Holder `label` links to `pid`.
    pub fn link(&mut self, label: &str, pid: &str) -> Result<(), String> {
        let rest = self.command(&format!("link {label} {pid}"), "LINK", Duration::from_secs(10))?;
        if rest == format!("ED {label} {pid}") {
            Ok(())
        } else {
            Err(format!("{}: LINK{rest}", self.name))
        }
    }

    /// Holder `label` monitors `pid`.
    pub fn monitor(&mut self, label: &str, pid: &str) -> Result<(), String> {
        self.command(&format!("monitor {label} {pid}"), &format!("MONITORING {label} {pid}"), Duration::from_secs(10))
            .map(|_| ())
    }

    /// Sends `{self, :ping}` to `pid` and waits up to `wait` for the answer.
    pub fn ping_pid(&mut self, pid: &str, wait: Duration) -> Result<bool, String> {
        self.proc.send_line(&format!("ping_pid {pid} {}", wait.as_millis())).map_err(|e| e.to_string())?;
        let line = self.proc.expect_out(wait + Duration::from_secs(10), |l| {
            l == format!("PONG_PID {pid}") || l == format!("PANG_PID {pid}") || l.starts_with("BAD_COMMAND")
        })?;
        match line.split_whitespace().next() {
            Some("PONG_PID") => Ok(true),
            Some("PANG_PID") => Ok(false),
            _ => Err(format!("{}: {line}", self.name)),
        }
    }

    /// Starts a sink registered as `name`; returns its pid.
    pub fn sink(&mut self, name: &str) -> Result<String, String> {
        self.command(&format!("sink {name}"), &format!("SINK {name} "), Duration::from_secs(10))
    }

    /// Starts a counted burst: `count` messages `{:seq, tag, N}` to `pid`, with backpressure;
    /// [`TestNode::await_sent`] waits for its end.
    pub fn send_seq(&mut self, tag: &str, count: u64, pid: &str) -> Result<(), String> {
        self.command(&format!("send_seq {tag} {count} {pid}"), &format!("SENDING {tag}"), Duration::from_secs(10))
            .map(|_| ())
    }

    /// Waits until the burst `tag` has sent everything; how long it took, by the node's clock.
    pub fn await_sent(&mut self, tag: &str, timeout: Duration) -> Result<Duration, String> {
        let prefix = format!("SENT {tag} ");
        let (line, _) = self.proc.expect_out_since(0, timeout, |l| l.starts_with(&prefix))?;
        let ms = line.rsplit(' ').next().and_then(|ms| ms.parse().ok()).ok_or_else(|| format!("bad line {line:?}"))?;
        Ok(Duration::from_millis(ms))
    }

    /// Starts a stream `tag` to `pid`: one message every `every` until stopped or until its
    /// monitor of `pid` fires.
    pub fn stream(&mut self, tag: &str, pid: &str, every: Duration) -> Result<(), String> {
        let line = format!("stream {tag} {pid} {}", every.as_millis());
        self.command(&line, &format!("STREAMING {tag}"), Duration::from_secs(10)).map(|_| ())
    }

    /// Stops stream `tag` and returns how it ended (it may have ended earlier, by its monitor).
    pub fn stop_stream(&mut self, tag: &str) -> Result<StreamEnd, String> {
        self.proc.send_line(&format!("stop_stream {tag}")).map_err(|e| e.to_string())?;
        self.stream_end(tag, Duration::from_secs(10))
    }

    /// Waits for stream `tag` to end (stopped, or its monitor fired), looking at every line seen.
    pub fn stream_end(&mut self, tag: &str, timeout: Duration) -> Result<StreamEnd, String> {
        let (stopped, down) = (format!("STREAM_STOPPED {tag} sent="), format!("STREAM_DOWN {tag} sent="));
        let (line, at) = self.proc.expect_out_since(0, timeout, |l| l.starts_with(&stopped) || l.starts_with(&down))?;
        let bad = || format!("{}: bad line {line:?}", self.name);
        if let Some(rest) = line.strip_prefix(&stopped) {
            return Ok(StreamEnd::Stopped { sent: rest.parse().map_err(|_| bad())? });
        }
        let rest = line.strip_prefix(&down).ok_or_else(bad)?;
        let (sent, reason) = rest.split_once(' ').ok_or_else(bad)?;
        Ok(StreamEnd::Down { sent: sent.parse().map_err(|_| bad())?, reason: reason.to_owned(), at })
    }

    /// What sink `name` received so far.
    pub fn report(&mut self, name: &str) -> Result<SinkReport, String> {
        let rest = self.command(&format!("report {name}"), &format!("REPORT {name} "), Duration::from_secs(30))?;
        SinkReport::parse(&rest).ok_or_else(|| format!("{}: bad report {rest:?}", self.name))
    }
}

/// How a stream of the test node ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Stopped on command after sending `sent` messages.
    Stopped {
        /// Messages sent.
        sent: u64,
    },
    /// Its monitor of the receiver fired after `sent` messages.
    Down {
        /// Messages sent.
        sent: u64,
        /// The monitor's reason (e.g. `:noconnection`).
        reason: String,
        /// When the line was read.
        at: Instant,
    },
}

/// What a sink of the test node received: messages per sender tag, and order errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// Messages out of order, repeated or missing before a later one (0 when every tag's
    /// sequence numbers arrived as 1, 2, 3, ...).
    pub errors: u64,
    /// Messages received per tag.
    pub counts: std::collections::BTreeMap<String, u64>,
    /// The first order error (`TAG:expected_N_got_M`), if any.
    pub first_error: Option<String>,
}

impl SinkReport {
    /// Parses `errors=E tags=T:C,... first=WHAT`.
    pub fn parse(text: &str) -> Option<SinkReport> {
        let mut report = SinkReport::default();
        for field in text.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            match key {
                "errors" => report.errors = value.parse().ok()?,
                "tags" => {
                    for pair in value.split(',').filter(|p| !p.is_empty()) {
                        let (tag, count) = pair.rsplit_once(':')?;
                        report.counts.insert(tag.to_owned(), count.parse().ok()?);
                    }
                }
                "first" => report.first_error = (value != "none").then(|| value.to_owned()),
                _ => return None,
            }
        }
        Some(report)
    }

    /// Messages received from `tag` (0 if none).
    pub fn count(&self, tag: &str) -> u64 {
        self.counts.get(tag).copied().unwrap_or(0)
    }
}
