//! The distribution benchmark: Snow (TLS) against Erlang/OTP (TLS and plain TCP) on this machine,
//! same workloads, same run. `cargo bench -p snow-integration --bench dist`.
//!
//! Environment: `SNOW_BENCH_SCALE` (default 1.0) multiplies the message counts (e.g. 0.1 for a
//! quick look); `SNOW_BENCH_MESSAGES=N64,N1K,N64K` sets the message counts per payload size (to
//! profile one size); `SNOW_BENCH_ONLY=snow|erlang` runs one side. The bench binary also acts as a Snow
//! node when started with `SNOW_BENCH_ROLE` (see `snow_integration::snow_bench`).

use snow_integration::erlang::{self, ErlangBaseline, Transport};
use snow_integration::figures::{table, Figures, Workload};
use snow_integration::snow_bench;

fn workload() -> Workload {
    let scale: f64 = std::env::var("SNOW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
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
    w
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

fn main() {
    if let Some(code) = snow_bench::role_main() {
        std::process::exit(code);
    }
    let work = workload();
    let only = std::env::var("SNOW_BENCH_ONLY").unwrap_or_default();
    eprintln!(
        "workload: {:?} messages of {:?} bytes (ack every {:?}), {} round trips",
        work.messages,
        snow_integration::figures::SIZES,
        work.batch,
        work.round_trips
    );
    let snow = if only.is_empty() || only == "snow" {
        match std::env::current_exe() {
            Ok(exe) => report("Snow (TLS)", snow_bench::run(&exe, &work)),
            Err(e) => report("Snow (TLS)", Err(format!("cannot locate the bench binary: {e}"))),
        }
    } else {
        None
    };
    let (mut erl_tls, mut erl_tcp) = (None, None);
    if only.is_empty() || only == "erlang" {
        if !erlang::available() {
            eprintln!("Erlang/OTP (erl, erlc, epmd) not found: skipping the baseline");
        } else {
            match ErlangBaseline::prepare() {
                Ok(base) => {
                    erl_tls = report("Erlang TLS", base.run(Transport::Tls, &work));
                    erl_tcp = report("Erlang TCP", base.run(Transport::Tcp, &work));
                }
                Err(e) => eprintln!("Erlang baseline: FAILED: {e}"),
            }
        }
    }
    match (&snow, &erl_tls) {
        (Some(s), _) => println!("{}", table(s, erl_tls.as_ref(), erl_tcp.as_ref())),
        (None, Some(e)) => println!("{}", table(e, Some(e), erl_tcp.as_ref()).replace("Snow (TLS)", "(Erlang TLS)")),
        (None, None) => {
            eprintln!("nothing was measured");
            std::process::exit(1);
        }
    }
}
