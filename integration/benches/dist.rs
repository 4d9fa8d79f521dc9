//! The distribution benchmark: Snow (TLS) against Erlang/OTP (TLS and plain TCP) on this machine,
//! same workloads, same run. `cargo bench -p snow-integration --bench dist`.
//!
//! Besides the throughput, round-trip and connection figures, each run measures request/reply with
//! 16 and 64 concurrent callers, fan-in of structured messages, what every workload cost each node
//! in CPU, the idle CPU of a connected pair and bytes on the wire per message
//! (`snow_integration::meter`).
//!
//! Environment: `SNOW_BENCH_RUNS` (default 1) repeats the whole comparison and ends with the
//! ratio of each run and their range; `SNOW_BENCH_SCALE` (default 1.0) multiplies the message
//! counts (e.g. 0.1 for a quick look); `SNOW_BENCH_MESSAGES=N64,N1K,N64K` sets the message counts
//! per payload size (to profile one size); `SNOW_BENCH_IDLE_SECS` (default 10) is the idle
//! measurement's length (0 skips it); `SNOW_BENCH_ONLY=snow|erlang` runs one side. The bench binary
//! also acts as a Snow node when started with `SNOW_BENCH_ROLE` (see `snow_integration::snow_bench`).

use snow_integration::erlang::{self, ErlangBaseline, Transport};
use snow_integration::figures::{Figures, Service, Workload};
use snow_integration::snow_bench;
use snow_integration::table::{cost_rows, dist_rows, render, summary, Row};

fn env_f64(key: &str) -> Option<f64> {
    std::env::var(key).ok().and_then(|s| s.parse().ok())
}

fn workload() -> (Workload, Service) {
    let scale = env_f64("SNOW_BENCH_SCALE").unwrap_or(1.0);
    let mut w = Workload::DEFAULT;
    for (n, k) in w.messages.iter_mut().zip(w.batch) {
        *n = ((*n as f64 * scale) as u64).max(k * 5);
    }
    w.round_trips = ((w.round_trips as f64 * scale) as u64).max(100);
    w.flood = ((w.flood as f64 * scale) as u64).max(1000);
    // Per-size message counts, e.g. for profiling one payload size: SNOW_BENCH_MESSAGES=2000000,0,0
    // (0 means the minimum: five batches).
    if let Ok(list) = std::env::var("SNOW_BENCH_MESSAGES") {
        for ((n, k), v) in w.messages.iter_mut().zip(w.batch).zip(list.split(',')) {
            if let Ok(v) = v.trim().parse::<u64>() {
                *n = v.max(k * 5);
            }
        }
    }
    let mut s = Service::DEFAULT;
    s.calls = ((s.calls as f64 * scale) as u64).max(640);
    s.fanin = ((s.fanin as f64 * scale) as u64).max(1000);
    s.idle_secs = env_f64("SNOW_BENCH_IDLE_SECS").map_or(s.idle_secs, |v| v as u64);
    (w, s)
}

fn report(label: &str, result: Result<Figures, String>) -> Option<Figures> {
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

/// One comparison: Snow, then Erlang over TLS and over TCP; the rows of both tables, or `None` if
/// nothing was measured.
fn one_run(work: &Workload, service: &Service, only: &str, baseline: Option<&ErlangBaseline>) -> Option<Vec<Row>> {
    let snow = if only.is_empty() || only == "snow" {
        match std::env::current_exe() {
            Ok(exe) => report("Snow (TLS)", snow_bench::run_with(&exe, work, service)),
            Err(e) => report("Snow (TLS)", Err(format!("cannot locate the bench binary: {e}"))),
        }
    } else {
        None
    };
    let (tls, tcp) = match baseline {
        Some(base) => (
            report("Erlang TLS", base.run(Transport::Tls, work, service)),
            report("Erlang TCP", base.run(Transport::Tcp, work, service)),
        ),
        None => (None, None),
    };
    if snow.is_none() && tls.is_none() && tcp.is_none() {
        return None;
    }
    let sides = ["Snow (TLS)", "Erlang TLS", "Erlang TCP"];
    let rows = dist_rows(snow.as_ref(), tls.as_ref(), tcp.as_ref());
    let costs = cost_rows(snow.as_ref(), tls.as_ref(), tcp.as_ref());
    println!("{}", render(&sides, &rows));
    println!("What it cost (CPU time of each node's OS process per message; bytes from the kernel's TCP counters):\n");
    println!("{}", render(&sides, &costs));
    Some(rows.into_iter().chain(costs).collect())
}

fn main() {
    if let Some(code) = snow_bench::role_main() {
        std::process::exit(code);
    }
    let (work, service) = workload();
    let runs = env_f64("SNOW_BENCH_RUNS").map_or(1, |r| r.max(1.0) as usize);
    let only = std::env::var("SNOW_BENCH_ONLY").unwrap_or_default();
    eprintln!(
        "workload: {:?} messages of {:?} bytes (ack every {:?}), {} round trips, {service:?}; {runs} run(s)",
        work.messages,
        snow_integration::figures::SIZES,
        work.batch,
        work.round_trips
    );
    let baseline = if only.is_empty() || only == "erlang" {
        if !erlang::available() {
            eprintln!("Erlang/OTP (erl, erlc, epmd) not found: skipping the baseline");
            None
        } else {
            match ErlangBaseline::prepare() {
                Ok(base) => Some(base),
                Err(e) => {
                    eprintln!("Erlang baseline: FAILED: {e}");
                    None
                }
            }
        }
    } else {
        None
    };
    let mut all = Vec::new();
    for run in 1..=runs {
        if runs > 1 {
            println!("## Run {run} of {runs}\n");
        }
        match one_run(&work, &service, &only, baseline.as_ref()) {
            Some(rows) => all.push(rows),
            None => {
                eprintln!("nothing was measured");
                std::process::exit(1);
            }
        }
    }
    if runs > 1 {
        println!("## Ratios over {runs} runs\n\n{}", summary(&all));
    }
}
