//! The mesh-scale benchmark: N nodes form a full mesh from one seed, Snow (TLS) against Erlang/OTP
//! (TLS and plain TCP) in the same run. `cargo bench -p snow-integration --bench mesh`.
//!
//! Environment: `SNOW_BENCH_MESH=8,16,32,48,64` (the mesh sizes), `SNOW_BENCH_IDLE_S=10` (seconds
//! of the idle-CPU sample), `SNOW_BENCH_ONLY=snow|erlang`. See `snow_integration::mesh_bench`.

use std::time::Duration;

use snow_integration::erlang::{self, ErlangBaseline, Transport};
use snow_integration::mesh_bench::{self, MeshFigures, Side};

fn sizes() -> Vec<usize> {
    let text = std::env::var("SNOW_BENCH_MESH").unwrap_or_else(|_| "8,16,32,48,64".to_owned());
    text.split(',').filter_map(|s| s.trim().parse().ok()).filter(|&n| n >= 2).collect()
}

fn main() {
    let idle = Duration::from_secs(std::env::var("SNOW_BENCH_IDLE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(10));
    let only = std::env::var("SNOW_BENCH_ONLY").unwrap_or_default();
    let erlang = if (only.is_empty() || only == "erlang") && erlang::available() {
        match ErlangBaseline::prepare() {
            Ok(base) => Some(base),
            Err(e) => {
                eprintln!("Erlang baseline: FAILED: {e}");
                None
            }
        }
    } else {
        eprintln!("Erlang/OTP not run (not found, or SNOW_BENCH_ONLY={only})");
        None
    };
    let mut rows: Vec<(Side, MeshFigures)> = Vec::new();
    for n in sizes() {
        let mut sides = Vec::new();
        if only.is_empty() || only == "snow" {
            sides.push(Side::Snow);
        }
        if erlang.is_some() {
            sides.extend([Side::Erlang(Transport::Tls), Side::Erlang(Transport::Tcp)]);
        }
        for side in sides {
            let result = match (side, &erlang) {
                (Side::Snow, _) => mesh_bench::run_snow(
                    env!("CARGO_BIN_EXE_snow-epmd-it"),
                    env!("CARGO_BIN_EXE_snow-test-node"),
                    n,
                    idle,
                ),
                (Side::Erlang(transport), Some(base)) => mesh_bench::run_erlang(base, transport, n, idle),
                (Side::Erlang(_), None) => continue,
            };
            match result {
                Ok(f) => {
                    eprintln!("{} nodes, {}: formed in {:?}", n, side.label(), f.formation);
                    rows.push((side, f));
                }
                Err(e) => eprintln!("{} nodes, {}: FAILED: {e}", n, side.label()),
            }
        }
    }
    println!("{}", mesh_bench::table(&rows));
}
