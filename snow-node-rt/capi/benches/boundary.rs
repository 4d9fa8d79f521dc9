//! What the C ABI costs: remote send throughput (64 B and 1 KiB binaries) and the round trip of a
//! small message, from a C program through the static library (`benches/c/bench_client.c`) and
//! from the Rust API (the distribution bench's client, `snow_integration::snow_bench`), against
//! the same Rust server node, alternating in the same run. Each side is its own OS process, as in
//! production. `cargo bench -p snow-node-capi --bench boundary`.
//!
//! Environment: `SNOW_BENCH_ROUNDS` (default 5) rounds of both; `SNOW_BENCH_SCALE` (default 1.0)
//! multiplies the message counts (300,000 x 64 B, 100,000 x 1 KiB, 10,000 round trips).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use snow_integration::cluster::node_env;
use snow_integration::figures::Workload;
use snow_integration::snow_bench::{self, ROLE_ENV};
use snow_integration::tmp::{random_cookie, write_secret};
use snow_shared::test_support::TempDir;

/// One run's figures: 64 B and 1 KiB messages per second, round-trip median and p99 in µs.
#[derive(Clone, Copy, Debug)]
struct Run {
    tput64: f64,
    tput1k: f64,
    rtt_median_us: f64,
    rtt_p99_us: f64,
}

struct Counts {
    n64: u64,
    n1k: u64,
    rtt: u64,
}

fn rust_run(exe: &Path, counts: &Counts) -> Result<Run, String> {
    let work = Workload {
        messages: [counts.n64, counts.n1k, 80],
        batch: [1000, 500, 16],
        round_trips: counts.rtt,
        flood: 1000,
    };
    let f = snow_bench::run(exe, &work)?;
    Ok(Run {
        tput64: f.throughput[0].msgs_per_s(),
        tput1k: f.throughput[1].msgs_per_s(),
        rtt_median_us: f.rtt_median.as_secs_f64() * 1e6,
        rtt_p99_us: f.rtt_p99.as_secs_f64() * 1e6,
    })
}

fn c_run(exe: &Path, client: &Path, counts: &Counts) -> Result<Run, String> {
    let epmd = support::Epmd::start();
    let cookie = epmd.dir.join("cookie");
    write_secret(&cookie, random_cookie().as_bytes()).map_err(|e| format!("cannot write the cookie: {e}"))?;
    let mut server_cmd = Command::new(exe);
    server_cmd.env(ROLE_ENV, "server");
    node_env(&mut server_cmd, "b@127.0.0.1", &epmd.addr(), &cookie, 20);
    let mut server = support::Proc::spawn("bench server", server_cmd);
    server.expect("READY");
    let mut cmd = Command::new(client);
    node_env(&mut cmd, "a@127.0.0.1", &epmd.addr(), &cookie, 20);
    cmd.env("BENCH_SERVER", "b@127.0.0.1")
        .env("BENCH_N64", counts.n64.to_string())
        .env("BENCH_N1K", counts.n1k.to_string())
        .env("BENCH_RTT", counts.rtt.to_string());
    let mut c = support::Proc::spawn("C bench client", cmd);
    let mut values = HashMap::new();
    while values.len() < 6 {
        let line = c.line();
        let mut words = line.split_whitespace();
        if let (Some("RESULT"), Some(key), Some(value)) = (words.next(), words.next(), words.next()) {
            values.insert(key.to_owned(), value.parse::<f64>().map_err(|e| format!("{line}: {e}"))?);
        }
    }
    let status = c.wait();
    if !status.success() {
        return Err(format!("the C client exited with {status}: {}", c.stderr()));
    }
    let get = |k: &str| values.get(k).copied().ok_or_else(|| format!("no RESULT {k}"));
    Ok(Run {
        tput64: get("tput_64_msgs")? / get("tput_64_ns")? * 1e9,
        tput1k: get("tput_1024_msgs")? / get("tput_1024_ns")? * 1e9,
        rtt_median_us: get("rtt_median_ns")? / 1e3,
        rtt_p99_us: get("rtt_p99_ns")? / 1e3,
    })
}

/// A table row: its name, the figure of a run, its unit, and whether more is better.
type Row = (&'static str, fn(&Run) -> f64, &'static str, bool);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Some(code) = snow_bench::role_main() {
        std::process::exit(code);
    }
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (rounds, scale) = (env("SNOW_BENCH_ROUNDS", 5.0) as usize, env("SNOW_BENCH_SCALE", 1.0));
    let counts = Counts {
        n64: ((300_000.0 * scale) as u64).max(5000),
        n1k: ((100_000.0 * scale) as u64).max(2500),
        rtt: ((10_000.0 * scale) as u64).max(100),
    };
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let dir = TempDir::new("capi-bench").expect("a temp dir");
    let client = support::compile_c("benches/c", "bench_client", dir.path(), &[]);
    eprintln!("{rounds} rounds of {} x 64 B, {} x 1 KiB, {} round trips", counts.n64, counts.n1k, counts.rtt);
    let (mut rust, mut c) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so that neither always runs on a warmer machine.
        let order: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
        for is_rust in order {
            let result = if is_rust { rust_run(&exe, &counts) } else { c_run(&exe, &client, &counts) };
            match result {
                Ok(run) => {
                    eprintln!("round {round} {}: {run:?}", if is_rust { "Rust" } else { "C" });
                    if is_rust {
                        rust.push(run)
                    } else {
                        c.push(run)
                    }
                }
                Err(e) => {
                    eprintln!("round {round} {}: FAILED: {e}", if is_rust { "Rust" } else { "C" });
                    std::process::exit(1);
                }
            }
        }
    }
    println!("| workload | Rust API | C ABI | C vs Rust (medians; per round) |");
    println!("|---|---|---|---|");
    let rows: [Row; 4] = [
        ("send 64 B", |r| r.tput64 / 1e6, "M msg/s", true),
        ("send 1 KiB", |r| r.tput1k / 1e6, "M msg/s", true),
        ("round trip median", |r| r.rtt_median_us, "µs", false),
        ("round trip p99", |r| r.rtt_p99_us, "µs", false),
    ];
    for (name, get, unit, higher_is_better) in rows {
        let rs: Vec<f64> = rust.iter().map(get).collect();
        let cs: Vec<f64> = c.iter().map(get).collect();
        let range = |v: &[f64]| {
            let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            format!("{lo:.2}-{hi:.2} {unit} (median {:.2})", median(v.to_vec()))
        };
        let ratio = |r: f64, c: f64| if higher_is_better { c / r } else { r / c };
        let per_round: Vec<String> = rs.iter().zip(&cs).map(|(r, c)| format!("{:.3}", ratio(*r, *c))).collect();
        println!(
            "| {name} | {} | {} | {:.3} ({}) |",
            range(&rs),
            range(&cs),
            ratio(median(rs.clone()), median(cs.clone())),
            per_round.join(", ")
        );
    }
    println!("(C vs Rust: 1.0 = the same; below 1 = the C program is slower, i.e. the boundary costs.)");
}
