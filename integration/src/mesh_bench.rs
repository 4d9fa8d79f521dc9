//! The mesh-scale benchmark (`cargo bench -p snow-integration --bench mesh`): N nodes on this
//! machine, each its own OS process, form a full mesh from one seed; measured are the formation
//! time, each node's resident memory and idle CPU once meshed, and how long the others take to
//! see a node killed with SIGKILL.
//!
//! Snow nodes are `snow-test-node` processes registered with one snow-epmd; Erlang nodes are `erl`
//! processes running `benches/erlang/mesh_bench.erl` with a private epmd, over TLS or plain TCP
//! distribution. Both print `READY`, `NODEUP name` and `NODEDOWN name` lines and take `connect
//! name` on stdin, so [`measure`] drives either the same way: every node but the seed is told to
//! connect to the seed at once, and the mesh is formed when every node has seen every other come
//! up (Snow completes the mesh through the seed's NODE_LIST, Erlang through `global`'s
//! connect-all).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::child::{ChildProc, Line};
use crate::cluster::Cluster;
use crate::erlang::{start_epmd, ErlangBaseline, Transport};
use crate::figures::percentile;
use crate::meter::{clock_ticks_per_s, cpu_ns, cpu_ticks};
use crate::tmp::random_cookie;

/// How long a mesh may take to form before the run counts as failed.
const FORMATION_LIMIT: Duration = Duration::from_secs(120);
/// How long every node may take to start.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Quiet time after formation before the idle CPU is sampled (handshakes and gossip settle).
const SETTLE: Duration = Duration::from_secs(2);
/// Ticktime of both sides (Erlang's default `net_ticktime`).
const TICKTIME_S: u64 = 60;

/// What one mesh of `nodes` nodes measured.
#[derive(Clone, Debug)]
pub struct MeshFigures {
    /// Nodes in the mesh.
    pub nodes: usize,
    /// From the `connect` commands until the last node saw its last peer come up.
    pub formation: Duration,
    /// CPU time (user + system) all nodes together used from the `connect` commands until the
    /// mesh was seen formed: against `formation` times the machine's cores, it tells whether
    /// the formation was bound by CPU or by waiting.
    pub formation_cpu: Duration,
    /// Mean resident memory of a node once meshed, KiB.
    pub rss_kib: u64,
    /// Mean CPU of one idle meshed node, percent of one core, over the sample (from the
    /// scheduler's per-thread account in nanoseconds, [`cpu_ns`]).
    pub idle_cpu_pct: f64,
    /// Highest idle CPU of any one node, percent of one core.
    pub idle_cpu_max_pct: f64,
    /// Median time until a survivor printed `NODEDOWN` for the killed node.
    pub detection_median: Duration,
    /// Slowest survivor's detection.
    pub detection_max: Duration,
}

/// Which implementation a mesh runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// snow-test-node processes over TLS.
    Snow,
    /// Erlang nodes over the given distribution.
    Erlang(Transport),
}

impl Side {
    /// The column label.
    pub fn label(self) -> &'static str {
        match self {
            Side::Snow => "Snow (TLS)",
            Side::Erlang(Transport::Tls) => "Erlang TLS",
            Side::Erlang(Transport::Tcp) => "Erlang TCP",
        }
    }
}

/// Starts `n` Snow nodes (`epmd_exe`, `node_exe`: the binaries) and measures their mesh.
pub fn run_snow(epmd_exe: &str, node_exe: &str, n: usize, idle_sample: Duration) -> Result<MeshFigures, String> {
    let cluster = Cluster::new(epmd_exe, node_exe)?;
    let epmd = cluster.start_epmd(0, "epmd")?;
    let names: Vec<String> = (0..n).map(|i| format!("m{i}@127.0.0.1")).collect();
    let mut nodes = Vec::with_capacity(n);
    for name in &names {
        let mut cmd = cluster.node_command(name, &epmd.addr, TICKTIME_S);
        cmd.env("RUST_LOG", "warn");
        nodes.push(ChildProc::spawn(name.clone(), cmd).map_err(|e| format!("cannot start {name}: {e}"))?);
    }
    measure(&mut nodes, &names, idle_sample)
}

/// Starts `n` Erlang nodes over `transport` and measures their mesh.
pub fn run_erlang(
    base: &ErlangBaseline,
    transport: Transport,
    n: usize,
    idle_sample: Duration,
) -> Result<MeshFigures, String> {
    let (_epmd, port) = start_epmd()?;
    let cookie = random_cookie();
    let names: Vec<String> = (0..n).map(|i| format!("m{i}@127.0.0.1")).collect();
    let mut nodes = Vec::with_capacity(n);
    for name in &names {
        let mut cmd = base.node(name, transport, port, &cookie);
        cmd.args(["-kernel", "net_ticktime", &TICKTIME_S.to_string(), "-s", "mesh_bench", "node"]);
        nodes.push(ChildProc::spawn(name.clone(), cmd).map_err(|e| format!("cannot start erl {name}: {e}"))?);
    }
    measure(&mut nodes, &names, idle_sample)
}

/// Drives started nodes (any side) through formation, the idle sample and a kill.
pub fn measure(nodes: &mut [ChildProc], names: &[String], idle_sample: Duration) -> Result<MeshFigures, String> {
    let n = nodes.len();
    for node in nodes.iter_mut() {
        node.expect_out(START_LIMIT, |l| l == "READY" || l.starts_with("READY "))?;
    }
    let marks: Vec<usize> = nodes.iter_mut().map(|p| p.seen.len()).collect();
    let seed = &names[0];
    let pids: Vec<u32> = nodes.iter().map(ChildProc::pid).collect();
    let cpu_before = total_cpu_ticks(&pids)?;
    let start = Instant::now();
    for node in nodes.iter_mut().skip(1) {
        node.send_line(&format!("connect {seed}")).map_err(|e| format!("{}: {e}", node.label))?;
    }
    let deadline = start + FORMATION_LIMIT;
    let mut formed = start;
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut up: HashSet<String> = HashSet::new();
        let mut from = marks[i];
        loop {
            node.drain();
            for (line, at) in node.seen.iter().zip(&node.seen_at).skip(from) {
                if let Line::Out(text) = line {
                    if let Some(peer) = text.strip_prefix("NODEUP ") {
                        if up.insert(peer.to_owned()) {
                            formed = formed.max(*at);
                        }
                    }
                }
            }
            from = node.seen.len();
            if up.len() >= n - 1 {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            node.expect_out_since(from, left, |l| l.starts_with("NODEUP "))?;
        }
    }
    let formation = formed - start;
    // Read once every node has seen the mesh formed: the few milliseconds since the last nodeup
    // are counted too.
    let ticks = clock_ticks_per_s();
    let formation_cpu = Duration::from_secs_f64((total_cpu_ticks(&pids)? - cpu_before) as f64 / ticks as f64);

    std::thread::sleep(SETTLE);
    // In nanoseconds: at 10 ms ticks, one tick was 0.1% of a 10 s sample, as much as a node spends.
    let before: Vec<u64> = pids.iter().map(|&p| cpu_ns(p)).collect::<Result<_, _>>()?;
    let sample_start = Instant::now();
    std::thread::sleep(idle_sample);
    let after: Vec<u64> = pids.iter().map(|&p| cpu_ns(p)).collect::<Result<_, _>>()?;
    let sampled = sample_start.elapsed().as_secs_f64();
    let pct: Vec<f64> =
        before.iter().zip(&after).map(|(b, a)| a.saturating_sub(*b) as f64 / 1e9 / sampled * 100.0).collect();
    let idle_cpu_pct = pct.iter().sum::<f64>() / n as f64;
    let idle_cpu_max_pct = pct.iter().cloned().fold(0.0, f64::max);
    let rss_kib = pids.iter().map(|&p| rss_kib(p)).collect::<Result<Vec<_>, _>>()?.iter().sum::<u64>() / n as u64;

    let victim = n - 1;
    let marks: Vec<usize> = nodes.iter_mut().map(|p| p.seen.len()).collect();
    let killed_at = Instant::now();
    nodes[victim].kill();
    let want = format!("NODEDOWN {}", names[victim]);
    let mut detections = Vec::with_capacity(n - 1);
    for (i, node) in nodes.iter_mut().enumerate().take(victim) {
        let (_, at) = node.expect_out_since(marks[i], Duration::from_secs(TICKTIME_S * 2), |l| l == want)?;
        detections.push(at.saturating_duration_since(killed_at));
    }
    detections.sort();
    for node in nodes.iter_mut() {
        let _ = node.send_line("quit");
    }
    Ok(MeshFigures {
        nodes: n,
        formation,
        formation_cpu,
        rss_kib,
        idle_cpu_pct,
        idle_cpu_max_pct,
        detection_median: percentile(&detections, 50),
        detection_max: detections.last().copied().unwrap_or_default(),
    })
}

/// CPU ticks (user + system) of all of `pids` so far.
fn total_cpu_ticks(pids: &[u32]) -> Result<u64, String> {
    pids.iter().map(|&p| cpu_ticks(p)).sum()
}

/// Resident memory of process `pid`, KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no VmRSS"))
}

/// The comparison table (markdown) for one mesh size.
pub fn table(rows: &[(Side, MeshFigures)]) -> String {
    let mut out = String::from("| nodes | side | formation | CPU of all nodes while forming | memory per node | idle CPU per node (mean / max) | kill -9 seen by all (median / max) |\n|---|---|---|---|---|---|---|\n");
    for (side, f) in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.1} MiB | {:.4}% / {:.4}% | {:.1} / {:.1} ms |\n",
            f.nodes,
            side.label(),
            f.formation.as_secs_f64() * 1e3,
            f.formation_cpu.as_secs_f64() * 1e3,
            f.rss_kib as f64 / 1024.0,
            f.idle_cpu_pct,
            f.idle_cpu_max_pct,
            f.detection_median.as_secs_f64() * 1e3,
            f.detection_max.as_secs_f64() * 1e3,
        ));
    }
    out
}
