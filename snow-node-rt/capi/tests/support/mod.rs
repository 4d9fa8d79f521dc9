//! What the C-program tests and the boundary benchmark share: compiling a C program against the
//! static library with the system C compiler, child processes that are killed (by pid) when
//! dropped and whose output lines are read with a deadline, and an in-process snow-epmd on a free
//! loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use snow_shared::test_support::TempDir;

/// Bound on every single wait (a line, an exit).
pub const WAIT: Duration = Duration::from_secs(30);

pub const COOKIE: &str = "capi-test-cookie-0123456789abcdef";

/// The target directory of the build that made this executable (`target/<profile>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<this executable>
    exe.parent().and_then(Path::parent).expect("the executable is in target/<profile>/deps").to_path_buf()
}

/// The static library, as the build of this crate left it beside its test or bench binaries:
/// `target/<profile>/libsnow_node_capi.a` (uplifted by `cargo build`) or, in the build of a test or
/// bench, `target/<profile>/deps/libsnow_node_capi.a`; the newer if both exist.
pub fn static_library() -> PathBuf {
    let dir = profile_dir();
    let candidates = [dir.join("libsnow_node_capi.a"), dir.join("deps").join("libsnow_node_capi.a")];
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    candidates
        .iter()
        .filter_map(|p| modified(p).map(|t| (t, p.clone())))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no libsnow_node_capi.a in {} or its deps/: build the crate first", dir.display()))
}

/// The link flags a program that links the static library needs (README, "Embedding").
pub const LINK_FLAGS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"];

/// Compiles `tests/c/<name>.c` (or `benches/c/<name>.c` with `dir`) into `out`, with warnings as
/// errors, against the checked-in header and the static library.
pub fn compile_c(dir: &str, name: &str, out: &Path, extra: &[&str]) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = crate_dir.join(dir).join(format!("{name}.c"));
    let exe = out.join(name);
    let output = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-g"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg("-I")
        .arg(crate_dir.join("tests/c"))
        .args(extra)
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .arg(static_library())
        .args(LINK_FLAGS)
        .output()
        .expect("the system C compiler `cc` runs (install gcc)");
    assert!(
        output.status.success(),
        "cc failed on {}:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// A child process started by a test: its stdout read line by line, its stderr kept for the
/// failure message; killed (SIGKILL, by its pid) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Receiver<String>,
    errors: Receiver<String>,
    pub seen: Vec<String>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let pipe = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let lines = pipe(Box::new(child.stdout.take().expect("piped")));
        let errors = pipe(Box::new(child.stderr.take().expect("piped")));
        Proc { name: name.to_owned(), child, lines, errors, seen: Vec::new() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.errors.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// The next line of its stdout, within [`WAIT`].
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("{}: no line within {WAIT:?}; so far {:?}; stderr:\n{}", self.name, self.seen, self.stderr())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: output ended; so far {:?}; stderr:\n{}", self.name, self.seen, self.stderr())
            }
        }
    }

    /// The next line, which must start with `prefix`; returns the rest.
    pub fn expect(&mut self, prefix: &str) -> String {
        let line = self.line();
        match line.strip_prefix(prefix) {
            Some(rest) => rest.trim_start().to_owned(),
            None => panic!(
                "{}: expected a line starting with {prefix:?}, got {line:?}; so far {:?}; stderr:\n{}",
                self.name,
                self.seen,
                self.stderr()
            ),
        }
    }

    /// Waits (within [`WAIT`]) for the process to exit on its own.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {WAIT:?}; stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills it with SIGKILL (by its pid) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A snow-epmd on 127.0.0.1 with an ephemeral port, in this process; stopped and its data
/// directory removed when dropped.
pub struct Epmd {
    pub handle: Option<snow_epmd::ServerHandle>,
    pub dir: TempDir,
}

impl Epmd {
    pub fn start() -> Epmd {
        let dir = TempDir::new("capi-test").expect("a temp dir");
        let config = snow_epmd::Config::new("127.0.0.1:0".parse().expect("an address"), dir.join("epmd"));
        let handle = snow_node_rt::block_on(snow_epmd::serve(config)).expect("snow-epmd starts");
        Epmd { handle: Some(handle), dir }
    }

    pub fn addr(&self) -> String {
        self.handle.as_ref().expect("running").local_addr().to_string()
    }

    /// Sets the environment of a node named `name` registered with this daemon.
    pub fn node_env(&self, cmd: &mut Command, name: &str) {
        for var in
            ["SNOW_COOKIE_FILE", "SNOW_DIST_PORT", "SNOW_TICKTIME", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"]
        {
            cmd.env_remove(var);
        }
        cmd.env("SNOW_NODE", name)
            .env("SNOW_COOKIE", COOKIE)
            .env("SNOW_EPMD", self.addr())
            .env("SNOW_DIST_ADDR", "127.0.0.1");
    }
}

impl Drop for Epmd {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = snow_node_rt::block_on(handle.shutdown());
        }
    }
}

/// The examples of this crate, built by `cargo test` beside the test binaries.
pub fn example(name: &str) -> PathBuf {
    let exe = profile_dir().join("examples").join(name);
    assert!(
        exe.exists(),
        "{} is missing: build the examples first (cargo build -p snow-node-capi --examples)",
        exe.display()
    );
    exe
}

/// Starts the Rust echo node `name` (examples/echo_peer.rs) and waits until it is up.
pub fn echo_peer(epmd: &Epmd, name: &str) -> Proc {
    let mut cmd = Command::new(example("echo_peer"));
    epmd.node_env(&mut cmd, name);
    let mut peer = Proc::spawn("echo_peer", cmd);
    assert_eq!(peer.expect("UP"), name);
    peer
}

/// Polls `cond` every 10 ms until it holds; an error naming `what` after [`WAIT`]. For the body of
/// a process, which reports its failures instead of panicking.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > WAIT {
            return Err(format!("timed out after {WAIT:?} waiting for {what}"));
        }
        snow_node_rt::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
