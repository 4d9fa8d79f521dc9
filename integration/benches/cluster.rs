//! The cluster benchmark: Snow's global registry and process groups against Erlang/OTP's `global`
//! and `pg`, five nodes as separate OS processes over TLS on both sides, same workloads, same run.
//! `cargo bench -p snow-integration --bench cluster`.
//!
//! Environment: `SNOW_BENCH_RUNS` (default 1) repeats the comparison and ends with the ratio of
//! each run and their range; `SNOW_BENCH_SCALE` (default 1.0) multiplies the amounts (200
//! registrations and joins, 200,000 lookups, 300 broadcasts to 1,000 members, 20,000 calls);
//! `SNOW_BENCH_ONLY=snow|erlang` runs one side. The bench binary also acts as a cluster node when
//! started with `SNOW_CLUSTER_ROLE` (see `snow_integration::cluster_bench`).

use snow_integration::cluster_bench::{self, ClusterFigures, ClusterWork};
use snow_integration::erlang::{self, ErlangBaseline};
use snow_integration::table::{cluster_rows, render, summary};

fn env_f64(key: &str) -> Option<f64> {
    std::env::var(key).ok().and_then(|s| s.parse().ok())
}

fn report(label: &str, result: Result<ClusterFigures, String>) -> Option<ClusterFigures> {
    match result {
        Ok(f) => {
            eprintln!("{label}: done");
            Some(f)
        }
        Err(e) => {
            eprintln!("{label}: FAILED: {e}");
            None
        }
    }
}

fn main() {
    if let Some(code) = cluster_bench::role_main() {
        std::process::exit(code);
    }
    let scale = env_f64("SNOW_BENCH_SCALE").unwrap_or(1.0);
    let d = ClusterWork::DEFAULT;
    let scaled = |n: u64, min: u64| ((n as f64 * scale) as u64).max(min);
    let work = ClusterWork {
        rounds: scaled(d.rounds, 20),
        lookups: scaled(d.lookups, 1000),
        broadcasts: scaled(d.broadcasts, 10),
        calls: scaled(d.calls, 160),
    };
    let runs = env_f64("SNOW_BENCH_RUNS").map_or(1, |r| r.max(1.0) as usize);
    let only = std::env::var("SNOW_BENCH_ONLY").unwrap_or_default();
    eprintln!("workload: {work:?}, {} nodes; {runs} run(s)", cluster_bench::NODES);
    let baseline = if only.is_empty() || only == "erlang" {
        if !erlang::available() {
            eprintln!("Erlang/OTP (erl, erlc, epmd) not found: skipping the baseline");
            None
        } else {
            ErlangBaseline::prepare().map_err(|e| eprintln!("Erlang baseline: FAILED: {e}")).ok()
        }
    } else {
        None
    };
    let mut all = Vec::new();
    for run in 1..=runs {
        if runs > 1 {
            println!("## Run {run} of {runs}\n");
        }
        let snow = if only.is_empty() || only == "snow" {
            match std::env::current_exe() {
                Ok(exe) => report("Snow (TLS)", cluster_bench::run(&exe, &work)),
                Err(e) => report("Snow (TLS)", Err(format!("cannot locate the bench binary: {e}"))),
            }
        } else {
            None
        };
        let erl = baseline.as_ref().and_then(|b| report("Erlang TLS", b.run_cluster(&work)));
        if snow.is_none() && erl.is_none() {
            eprintln!("nothing was measured");
            std::process::exit(1);
        }
        let rows = cluster_rows(snow.as_ref(), erl.as_ref());
        println!("{}", render(&["Snow (TLS)", "Erlang TLS (global, pg, erpc)"], &rows));
        all.push(rows);
    }
    if runs > 1 {
        println!("## Ratios over {runs} runs\n\n{}", summary(&all));
    }
}
