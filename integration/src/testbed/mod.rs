//! The fault-injection testbed: N hosts, each a network namespace with its own hostname
//! (`host1`, `host2`, ...), address (`10.231.0.N/24`), `/etc/hosts` naming every host, and its
//! own `snow-epmd --listen 4369`, joined by a user-space Ethernet switch ([`switch`], the
//! `snow-testbed-switch` binary) in a namespace of its own, which cuts, delays, drops and
//! reorders frames per direction of each host pair. Processes are frozen and thawed
//! (SIGSTOP/SIGCONT), killed with SIGKILL, and restarted by the harness.
//!
//! Everything the testbed creates is named with the test process's pid and a counter (so tests
//! run in parallel, each with its own switch and address space) and removed when the [`Testbed`]
//! drops, also when a test fails or panics: processes first, then the `/etc/netns` files, then
//! the namespaces (with every interface in them). No interface is ever created outside the
//! testbed's namespaces.
//!
//! Hosts are numbered from 1. Host 1's daemon uses host 2's as its gossip seed, every other
//! daemon uses host 1's, as README's "A cluster on several hosts" does with one seed.

pub mod switch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::child::ChildProc;
use crate::cluster::{node_env, TestNode};
use crate::netns::{self, EtcOverlay, Netns};
use crate::tmp::{random_cookie, write_secret, TempDir};

/// The port every host's snow-epmd listens on (inside the host's namespace).
pub const EPMD_PORT: u16 = 4369;

/// The programs the testbed runs (tests get their paths from `env!("CARGO_BIN_EXE_...")`).
#[derive(Clone, Debug)]
pub struct Programs {
    /// snow-epmd (`snow-epmd-it`).
    pub epmd: PathBuf,
    /// The line-driven test node (`snow-test-node`).
    pub node: PathBuf,
    /// The switch (`snow-testbed-switch`).
    pub switch: PathBuf,
}

/// How a testbed is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of hosts (2 to [`switch::MAX_HOSTS`]).
    pub hosts: usize,
    /// `SNOW_TICKTIME` of the nodes, in seconds.
    pub ticktime: u64,
    /// Extra flags for every snow-epmd (e.g. `--gossip-interval 100`).
    pub epmd_flags: Vec<String>,
}

/// Why the testbed cannot run here, or `None` if it can (root, `ip netns`, `unshare`).
pub fn unavailable() -> Option<String> {
    netns::unavailable()
}

/// Fails with a clear message when the testbed cannot run here. Testbed tests call this first:
/// they never pass without running.
pub fn require() {
    if let Some(why) = unavailable() {
        panic!("the testbed cannot run here: {why}; it needs root, iproute2 (`ip netns`) and util-linux (`unshare`)");
    }
}

/// One host: its name, address and processes.
pub struct Host {
    /// `hostN`.
    pub name: String,
    /// `10.231.0.N`.
    pub addr: String,
    epmd: Option<ChildProc>,
    nodes: BTreeMap<String, TestNode>,
}

/// A running testbed (see the module doc). Fields drop in order: processes, switch, `/etc/netns`
/// files, namespaces, files.
pub struct Testbed {
    hosts: Vec<Host>,
    switch: ChildProc,
    _overlays: Vec<EtcOverlay>,
    /// `[0]` is the switch's namespace, `[n]` host n's.
    namespaces: Vec<Netns>,
    /// Private directory: the cookie and the daemons' data.
    pub dir: TempDir,
    /// The cluster's cookie file (mode 600).
    pub cookie: PathBuf,
    programs: Programs,
    config: Config,
}

/// One row of `snow-epmd list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `name@host`.
    pub name: String,
    /// Where to connect.
    pub host: String,
    /// Distribution port.
    pub port: u16,
    /// Creation.
    pub creation: u32,
    /// `up`, `down` or `unconfirmed`.
    pub state: String,
    /// `local` or the id of the daemon the node registered with.
    pub origin: String,
}

/// Parses the table `snow-epmd list` prints (a header line, then one row per node).
pub fn parse_list(table: &str) -> Result<Vec<Listed>, String> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            match cells.as_slice() {
                [name, host, port, creation, state, origin, _age] => Ok(Listed {
                    name: name.to_string(),
                    host: host.to_string(),
                    port: port.parse().map_err(|e| format!("bad port in {line:?}: {e}"))?,
                    creation: creation.parse().map_err(|e| format!("bad creation in {line:?}: {e}"))?,
                    state: state.to_string(),
                    origin: origin.to_string(),
                }),
                _ => Err(format!("unexpected `snow-epmd list` row: {line:?}")),
            }
        })
        .collect()
}

/// Polls `check` every 50 ms until it says yes; how long that took, or an error naming `what`
/// (with the last error or `false`) after `timeout`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool, String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => "not yet".to_owned(),
            Err(e) => e,
        };
        if start.elapsed() > timeout {
            return Err(format!("{what}: not within {timeout:?} ({last})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok_or_output(what: &str, out: std::io::Result<Output>) -> Result<String, String> {
    let out = out.map_err(|e| format!("{what}: cannot run: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{what}: {}; stdout: {stdout} stderr: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Testbed {
    /// Builds a testbed of `config.hosts` hosts named after `label` (letters and digits, at most
    /// 8), with the switch running and a fresh cookie; no daemon or node runs yet.
    pub fn new(label: &str, programs: Programs, config: Config) -> Result<Testbed, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        require();
        if !(2..=switch::MAX_HOSTS).contains(&config.hosts) {
            return Err(format!("a testbed has 2 to {} hosts, not {}", switch::MAX_HOSTS, config.hosts));
        }
        let id = format!("{label}{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let dir = TempDir::new(&format!("testbed-{id}")).map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let cookie = dir.join("cookie");
        write_secret(&cookie, random_cookie().as_bytes()).map_err(|e| format!("cannot write the cookie: {e}"))?;
        let mut namespaces = vec![Netns::create(&format!("{id}-sw"))?];
        let mut overlays = Vec::new();
        let mut hosts = Vec::new();
        let hosts_file: String = std::iter::once("127.0.0.1\tlocalhost\n".to_owned())
            .chain((1..=config.hosts).map(|n| format!("10.231.0.{n}\thost{n}\n")))
            .collect();
        for n in 1..=config.hosts {
            let ns = Netns::create(&format!("{id}-h{n}"))?;
            let port = format!("p{n}");
            netns::veth_pair(&ns, "eth0", &namespaces[0], &port)?;
            let mac = switch::host_mac(n).to_string();
            // One segment per frame (no TSO/GSO): the switch forwards frames of at most the MTU.
            ns.ip(&["link", "set", "eth0", "address", &mac, "gso_max_segs", "1"])?;
            ns.ip(&["addr", "add", &format!("10.231.0.{n}/24"), "dev", "eth0"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            namespaces[0].ip(&["link", "set", &port, "up"])?;
            overlays.push(EtcOverlay::create(&ns, &[("hosts", hosts_file.clone())])?);
            namespaces.push(ns);
            hosts.push(Host {
                name: format!("host{n}"),
                addr: format!("10.231.0.{n}"),
                epmd: None,
                nodes: BTreeMap::new(),
            });
        }
        let mut cmd = namespaces[0].command(&programs.switch);
        cmd.args((1..=config.hosts).map(|n| format!("p{n}={}", switch::host_mac(n))));
        let mut switch =
            ChildProc::spawn(format!("switch {id}"), cmd).map_err(|e| format!("cannot start the switch: {e}"))?;
        switch.expect_out(Duration::from_secs(10), |l| l == "READY")?;
        Ok(Testbed { hosts, switch, _overlays: overlays, namespaces, dir, cookie, programs, config })
    }

    /// The number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether the testbed has no host (never: it has at least 2).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The programs the testbed was built with.
    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// A command that runs `program` on host `n`: in its namespace, with its hostname.
    pub fn command(&self, n: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = self.namespaces[n].command("unshare");
        cmd.args(["--uts", "--", "sh", "-c", "hostname \"$0\" && exec \"$@\""])
            .arg(&self.hosts[n - 1].name)
            .arg(program);
        cmd
    }

    /// `snow-epmd ARGS` on host `n` (exit status and output, whatever they are).
    pub fn epmd_cli(&self, n: usize, args: &[&str]) -> Result<Output, String> {
        let mut cmd = self.command(n, &self.programs.epmd);
        cmd.args(args);
        for var in ["SNOW_COOKIE", "SNOW_COOKIE_FILE", "SNOW_EPMD", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"] {
            cmd.env_remove(var);
        }
        cmd.output().map_err(|e| format!("cannot run snow-epmd {} on host{n}: {e}", args.join(" ")))
    }

    /// What host `n`'s snow-epmd lists.
    pub fn list(&self, n: usize) -> Result<Vec<Listed>, String> {
        let out = ok_or_output(
            &format!("snow-epmd list on host{n}"),
            self.epmd_cli(n, &["list"]).map_err(std::io::Error::other),
        );
        parse_list(&out?)
    }

    /// Starts host `n`'s snow-epmd (`--listen 4369`, its data dir under [`Testbed::dir`], the
    /// cookie, its seed, the configured flags and `extra`) and waits until it listens.
    pub fn start_epmd(&mut self, n: usize, extra: &[&str]) -> Result<(), String> {
        let seed = if n == 1 { 2 } else { 1 };
        let data = self.dir.join(&format!("epmd-host{n}"));
        let mut cmd = self.command(n, &self.programs.epmd);
        cmd.args(["--listen", &EPMD_PORT.to_string(), "--peer", &format!("host{seed}:{EPMD_PORT}"), "--cookie-file"])
            .arg(&self.cookie)
            .arg("--data-dir")
            .arg(&data)
            .args(&self.config.epmd_flags)
            .args(extra)
            .env("RUST_LOG", "info");
        for var in ["SNOW_COOKIE", "SNOW_COOKIE_FILE", "SNOW_EPMD_PEERS", "SNOW_EPMD_DATA"] {
            cmd.env_remove(var);
        }
        let mut proc = ChildProc::spawn(format!("snow-epmd on host{n}"), cmd)
            .map_err(|e| format!("cannot start snow-epmd on host{n}: {e}"))?;
        proc.expect_err(Duration::from_secs(20), |l| l.contains("listening on "))?;
        self.hosts[n - 1].epmd = Some(proc);
        Ok(())
    }

    /// Starts every host's snow-epmd.
    pub fn start_all_epmds(&mut self) -> Result<(), String> {
        (1..=self.len()).try_for_each(|n| self.start_epmd(n, &[]))
    }

    /// Kills host `n`'s snow-epmd with SIGKILL (no goodbye, no flush beyond what it acknowledged).
    pub fn kill_epmd(&mut self, n: usize) {
        if let Some(mut proc) = self.hosts[n - 1].epmd.take() {
            proc.kill();
        }
    }

    /// The command that starts node `short@hostN` on host `n` (its local snow-epmd, the cookie,
    /// the configured ticktime), for callers that add to its environment.
    pub fn node_command(&self, n: usize, short: &str) -> Command {
        let mut cmd = self.command(n, &self.programs.node);
        let name = format!("{short}@host{n}");
        node_env(&mut cmd, &name, &format!("127.0.0.1:{EPMD_PORT}"), &self.cookie, self.config.ticktime);
        cmd.env("RUST_LOG", "info");
        cmd
    }

    /// Starts node `short@hostN` on host `n` and waits for `READY`; returns its full name.
    pub fn start_node(&mut self, n: usize, short: &str) -> Result<String, String> {
        let cmd = self.node_command(n, short);
        self.start_node_with(n, short, cmd)
    }

    /// Starts node `short@hostN` on host `n` with `cmd` (from [`Testbed::node_command`]).
    pub fn start_node_with(&mut self, n: usize, short: &str, cmd: Command) -> Result<String, String> {
        let name = format!("{short}@host{n}");
        let node = TestNode::start(&name, cmd)?;
        self.hosts[n - 1].nodes.insert(name.clone(), node);
        Ok(name)
    }

    /// The running node `name`. Panics if the testbed has no such node (a bug in the test).
    pub fn node(&mut self, name: &str) -> &mut TestNode {
        self.hosts
            .iter_mut()
            .find_map(|h| h.nodes.get_mut(name))
            .unwrap_or_else(|| panic!("the testbed runs no node {name}"))
    }

    /// Takes node `name` out of the testbed (the caller owns it now; dropping it kills it).
    pub fn take_node(&mut self, name: &str) -> TestNode {
        self.hosts
            .iter_mut()
            .find_map(|h| h.nodes.remove(name))
            .unwrap_or_else(|| panic!("the testbed runs no node {name}"))
    }

    /// Kills node `name` with SIGKILL and forgets it.
    pub fn kill_node(&mut self, name: &str) {
        self.take_node(name).proc.kill();
    }

    /// Stops node `name` the way a service manager would: `quit` (distribution shuts down,
    /// connections close, it unregisters), then waits for it to exit.
    pub fn stop_node(&mut self, name: &str) -> Result<(), String> {
        let mut node = self.take_node(name);
        node.proc.send_line("quit").map_err(|e| format!("{name}: cannot send quit: {e}"))?;
        match node.proc.finish(Duration::from_secs(15)) {
            (_, Some(status)) if status.success() => Ok(()),
            (_, status) => {
                Err(format!("{name} did not exit cleanly after quit ({status:?}):\n{}", node.proc.transcript()))
            }
        }
    }

    /// Freezes every process of host `n` (SIGSTOP): the host stops answering, its sockets stay
    /// open.
    pub fn freeze_host(&mut self, n: usize) -> Result<(), String> {
        self.signal_host(n, "STOP")
    }

    /// Thaws host `n` (SIGCONT).
    pub fn thaw_host(&mut self, n: usize) -> Result<(), String> {
        self.signal_host(n, "CONT")
    }

    fn signal_host(&mut self, n: usize, signal: &str) -> Result<(), String> {
        let host = &self.hosts[n - 1];
        let procs = host.epmd.iter().chain(host.nodes.values().map(|node| &node.proc));
        for proc in procs {
            proc.signal(signal).map_err(|e| format!("SIG{signal} to {}: {e}", proc.label))?;
        }
        Ok(())
    }

    /// Sends a control line to the switch and returns its answer (`OK` or `STATS ...`).
    pub fn switch(&mut self, line: &str) -> Result<String, String> {
        self.switch.send_line(line).map_err(|e| format!("cannot talk to the switch: {e}"))?;
        let answer = self.switch.expect_out(Duration::from_secs(10), |_| true)?;
        if answer.starts_with("ERROR") {
            Err(format!("switch refused {line:?}: {answer}"))
        } else {
            Ok(answer)
        }
    }

    /// Cuts host `n` off from every other host (both directions); returns when the switch has
    /// applied it.
    pub fn cut_host(&mut self, n: usize) -> Result<Instant, String> {
        self.switch(&format!("cut {n} *")).map(|_| Instant::now())
    }

    /// Cuts the link between hosts `a` and `b` only (both directions); each still reaches the
    /// others.
    pub fn cut_pair(&mut self, a: usize, b: usize) -> Result<Instant, String> {
        self.switch(&format!("cut {a} {b}")).map(|_| Instant::now())
    }

    /// Restores every cut link (other shaping stays).
    pub fn heal_all(&mut self) -> Result<Instant, String> {
        self.switch("heal * *").map(|_| Instant::now())
    }

    /// The switch's counters (`received`, `forwarded`, `cut`, `lost`, `delayed`, `reordered`,
    /// `unknown`, `send_errors`).
    pub fn switch_stats(&mut self) -> Result<BTreeMap<String, u64>, String> {
        let line = self.switch("stats")?;
        Ok(switch::parse_stats(&line)?.into_iter().collect())
    }
}

/// Meshes: starting nodes on several hosts and connecting them, waiting for every pair.
impl Testbed {
    /// Starts `n@hostN` on hosts `1..=hosts` and connects each to host 1's node; returns the
    /// names once every node is connected to all the others.
    pub fn start_mesh(&mut self, hosts: usize) -> Result<Vec<String>, String> {
        let names = (1..=hosts).map(|n| self.start_node(n, "n")).collect::<Result<Vec<String>, String>>()?;
        for name in &names[1..] {
            self.connect_retrying(name, &names[0], Duration::from_secs(20))?;
        }
        self.await_full_mesh(&names, Duration::from_secs(10))?;
        Ok(names)
    }

    /// `connect` from `from` to `to` until it succeeds (gossip may not have brought `to`'s
    /// address to `from`'s daemon yet); how long that took.
    pub fn connect_retrying(&mut self, from: &str, to: &str, timeout: Duration) -> Result<Duration, String> {
        wait_until(&format!("{from} connects to {to}"), timeout, || self.node(from).connect(to).map(|()| true))
    }

    /// Whether node `name` is connected to exactly `others`.
    pub fn connected_to(&mut self, name: &str, others: &[String]) -> Result<bool, String> {
        let mut want: Vec<String> = others.to_vec();
        want.sort();
        Ok(self.node(name).nodes()? == want)
    }

    /// Waits until every node in `names` is connected to every other; how long that took.
    pub fn await_full_mesh(&mut self, names: &[String], timeout: Duration) -> Result<Duration, String> {
        wait_until("full mesh", timeout, || {
            for name in names {
                let others: Vec<String> = names.iter().filter(|n| *n != name).cloned().collect();
                if !self.connected_to(name, &others)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
}

/// The binaries' paths as the testbed's tests name them (Cargo sets `CARGO_BIN_EXE_*` for
/// integration tests of this crate only, so tests pass them in).
pub fn programs(epmd: &str, node: &str, switch: &str) -> Programs {
    Programs { epmd: Path::new(epmd).into(), node: Path::new(node).into(), switch: Path::new(switch).into() }
}
