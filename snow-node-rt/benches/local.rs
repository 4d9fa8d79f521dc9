//! Local process benchmarks, run side by side with the same workloads on Erlang/OTP.
//!
//! `cargo bench -p snow-node-rt --bench local` runs, in order: memory per idle process (RSS delta
//! over 100,000 processes parked in receive), spawn-and-exit rate, message throughput between two
//! processes, ping-pong round trip, a ring of 10,000 processes passing a token, and one 64 KiB
//! binary sent to 1,000 processes that each keep it (time from the first send to the last
//! acknowledgement, and how much the resident set grew while they all hold it). Then it
//! compiles `benches/erlang/snow_bench.erl` with `erlc` into a temporary directory, runs the same
//! workloads with `erl -noshell`, and prints both figures and their ratio. Without `erl` it says
//! so and prints Snow's figures only. `SNOW_BENCH_SCALE=0.1` shrinks every workload (smoke run).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use async_channel::bounded;
use snow_node_rt::{Node, Process, Term};

fn scale(n: u64) -> u64 {
    let factor: f64 = std::env::var("SNOW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64 * factor) as u64).max(10)
}

/// Runs `body` as a process and waits for its result.
fn in_process<T: Send + 'static, Fut>(node: &Node, body: impl FnOnce(Process) -> Fut) -> T
where
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let (tx, rx) = bounded(1);
    node.spawn(move |p| {
        let fut = body(p);
        async move {
            let _ = tx.send(fut.await).await;
        }
    });
    snow_node_rt::block_on(async {
        smol_timeout::TimeoutExt::timeout(rx.recv(), Duration::from_secs(600))
            .await
            .expect("benchmark did not finish within 10 minutes")
            .expect("benchmark process died")
    })
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn memory_per_idle_process(node: &Node, n: u64) -> f64 {
    let before = rss_bytes();
    let pids = in_process(node, move |me| async move {
        let mut pids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            pids.push(me.spawn(|mut p| async move {
                p.receive().await;
            }));
        }
        // Let every process reach its receive and park.
        snow_node_rt::sleep(Duration::from_millis(500)).await;
        pids
    });
    let after = rss_bytes();
    for pid in &pids {
        node.send(pid, Term::Unit);
    }
    while node.process_count() > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The pid vector itself (n * 40 bytes) is not process memory.
    let pid_vec = (n * std::mem::size_of::<snow_node_rt::Pid>() as u64) as f64;
    (after.saturating_sub(before) as f64 - pid_vec) / n as f64
}

fn spawn_rate(node: &Node, n: u64) -> f64 {
    let t = Instant::now();
    in_process(node, move |mut me| async move {
        let parent = me.pid().clone();
        for _ in 0..n {
            let parent = parent.clone();
            me.spawn(move |p| async move { p.send(&parent, Term::Unit) });
        }
        for _ in 0..n {
            me.receive().await;
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn throughput(node: &Node, n: u64) -> f64 {
    let t = Instant::now();
    in_process(node, move |mut me| async move {
        let parent = me.pid().clone();
        let receiver = me.spawn(move |mut p| async move {
            for _ in 0..n {
                p.receive().await;
            }
            p.send(&parent, Term::atom("done"));
        });
        for i in 0..n {
            me.send(&receiver, Term::Int(i as i64));
        }
        me.receive().await;
    });
    n as f64 / t.elapsed().as_secs_f64()
}

fn ping_pong(node: &Node, n: u64) -> f64 {
    let t = Instant::now();
    in_process(node, move |mut me| async move {
        let parent = me.pid().clone();
        let ponger = me.spawn(move |mut p| async move {
            for _ in 0..n {
                p.receive().await;
                p.send(&parent, Term::atom("pong"));
            }
        });
        for _ in 0..n {
            me.send(&ponger, Term::atom("ping"));
            me.receive().await;
        }
    });
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn ring(node: &Node, size: u64, hops: u64) -> (f64, f64) {
    let t = Instant::now();
    let (setup, pass) = in_process(node, move |mut me| async move {
        // Each member forwards every token to the next; the last one sends to us.
        let mut next = me.pid().clone();
        for _ in 0..size - 1 {
            let to = next.clone();
            next = me.spawn(move |mut p| async move {
                loop {
                    let m = p.receive().await;
                    let stop = m == Term::atom("stop");
                    p.send(&to, m);
                    if stop {
                        return;
                    }
                }
            });
        }
        let setup = t.elapsed();
        let start = Instant::now();
        me.send(&next, Term::Int(hops as i64));
        loop {
            let m = me.receive().await;
            let left = m.as_int().unwrap_or(0) - (size as i64);
            if left <= 0 {
                break;
            }
            me.send(&next, Term::Int(left));
        }
        let pass = start.elapsed();
        me.send(&next, Term::atom("stop"));
        me.receive().await;
        (setup, pass)
    });
    let rounds = hops.div_ceil(size) * size;
    (setup.as_secs_f64() * 1e3, rounds as f64 / pass.as_secs_f64())
}

/// `rounds` times: 1,000 fresh processes each receive one 64 KiB binary, acknowledge it and keep
/// it until told to stop. Returns the mean microseconds from the first send to the last
/// acknowledgement, and the largest growth of the resident set over a round while all 1,000
/// hold it (in KiB: 64 MiB if every receiver had its own copy).
fn binary_fan_out(node: &Node, rounds: u64) -> (f64, f64) {
    const RECEIVERS: usize = 1_000;
    in_process(node, move |mut me| async move {
        let parent = me.pid().clone();
        let msg = Term::binary(vec![7u8; 64 << 10]);
        let (mut total, mut peak) = (Duration::ZERO, 0u64);
        for _ in 0..rounds {
            let holders: Vec<_> = (0..RECEIVERS)
                .map(|_| {
                    let parent = parent.clone();
                    me.spawn(move |mut p| async move {
                        let _kept = p.receive().await;
                        p.send(&parent, Term::atom("got"));
                        p.receive().await;
                    })
                })
                .collect();
            let before = rss_bytes();
            let t = Instant::now();
            for pid in &holders {
                me.send(pid, msg.clone());
            }
            for _ in 0..RECEIVERS {
                me.receive().await;
            }
            total += t.elapsed();
            peak = peak.max(rss_bytes().saturating_sub(before));
            for pid in &holders {
                me.send(pid, Term::atom("stop"));
            }
        }
        (total.as_secs_f64() * 1e6 / rounds as f64, peak as f64 / 1024.0)
    })
}

struct Figures(BTreeMap<&'static str, f64>);

fn run_snow() -> Figures {
    let node = Node::local();
    let mut f = BTreeMap::new();
    f.insert("memory_bytes_per_idle_process", memory_per_idle_process(&node, scale(100_000)));
    f.insert("spawn_exit_per_sec", spawn_rate(&node, scale(200_000)));
    f.insert("send_throughput_msgs_per_sec", throughput(&node, scale(2_000_000)));
    f.insert("ping_pong_round_trip_us", ping_pong(&node, scale(200_000)));
    let (setup_ms, hops) = ring(&node, 10_000, scale(1_000_000));
    f.insert("ring_10k_setup_ms", setup_ms);
    f.insert("ring_10k_hops_per_sec", hops);
    let (fan_out_us, fan_out_kib) = binary_fan_out(&node, scale(100));
    f.insert("binary_64k_to_1k_procs_us", fan_out_us);
    f.insert("binary_64k_to_1k_rss_kib", fan_out_kib);
    Figures(f)
}

fn run_erlang() -> Result<Figures, String> {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/erlang/snow_bench.erl");
    let dir = std::env::temp_dir().join(format!("snow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = Command::new("erlc")
        .arg("-o")
        .arg(&dir)
        .arg(&source)
        .output()
        .map_err(|e| format!("erlc not runnable ({e}); install Erlang/OTP (erlang-base) for the comparison"))?;
    if !out.status.success() {
        return Err(format!("erlc failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let scale_arg = std::env::var("SNOW_BENCH_SCALE").unwrap_or_else(|_| "1.0".into());
    let out = Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(&dir)
        .args(["-run", "snow_bench", "main", &scale_arg, "-s", "init", "stop"])
        .output()
        .map_err(|e| format!("erl not runnable ({e})"))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!("erl failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut f = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        if let (Some("RESULT"), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next()) {
            if let (Some(key), Ok(v)) = (KEYS.iter().find(|k| **k == name), value.parse::<f64>()) {
                f.insert(*key, v);
            }
        }
    }
    if f.is_empty() {
        return Err(format!("erl printed no results: {}", String::from_utf8_lossy(&out.stdout)));
    }
    Ok(Figures(f))
}

const KEYS: [&str; 8] = [
    "memory_bytes_per_idle_process",
    "spawn_exit_per_sec",
    "send_throughput_msgs_per_sec",
    "ping_pong_round_trip_us",
    "ring_10k_setup_ms",
    "ring_10k_hops_per_sec",
    "binary_64k_to_1k_procs_us",
    "binary_64k_to_1k_rss_kib",
];

/// Whether a larger value is better for this figure.
fn higher_is_better(key: &str) -> bool {
    key.ends_with("per_sec")
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need: a test run
    // only checks that the binary builds.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let snow = run_snow();
    let erlang = run_erlang();
    println!("\n{:<34} {:>16} {:>16} {:>22}", "workload", "snow", "erlang/otp", "snow vs erlang");
    for key in KEYS {
        let s = snow.0.get(key).copied().unwrap_or(f64::NAN);
        match &erlang {
            Ok(e) => {
                let b = e.0.get(key).copied().unwrap_or(f64::NAN);
                let ratio = if higher_is_better(key) { s / b } else { b / s };
                println!("{key:<34} {s:>16.2} {b:>16.2} {:>21.2}x", ratio);
            }
            Err(_) => println!("{key:<34} {s:>16.2} {:>16} {:>22}", "-", "-"),
        }
    }
    println!("(ratio > 1 means Snow is better: faster, or less memory)");
    if let Err(why) = erlang {
        println!("Erlang/OTP comparison skipped: {why}");
    }
}
