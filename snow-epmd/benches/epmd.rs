//! snow-epmd benchmarks, one command: `cargo bench -p snow-epmd --bench epmd`.
//! Both daemons run as separate child processes (the real `snow-epmd` binary and Erlang's `epmd`,
//! each on an ephemeral port, killed by pid); this process is only the client, with the same code
//! and concurrency for both.
//! - lookups/s (PORT_PLEASE2, one connection per lookup as nodes do) against snow-epmd and against
//!   Erlang's epmd, same run, and the ratio;
//! - registration latency including the sled flush;
//! - resident memory (VmRSS / VmHWM from /proc) of the daemon holding 10,000 live registrations
//!   (10,000 open connections on both sides; the fd limit is checked first);
//! - gossip convergence rounds for 10, 100 and 1,000 simulated daemons (sans-IO core).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use snow_shared::epmd::gossip::{Gossip, GossipConfig};
use snow_shared::epmd::table::{Registration, State, Table, TableLimits};
use snow_shared::NodeName;

/// CPU time (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Lookups/s with one connection per lookup, and the daemon's and this client's CPU time per
/// lookup in µs (the daemon's own cost shows even when the client, sharing the cores, is the
/// bottleneck).
fn lookup_load(pid: u32, addr: &str, name: &str, clients: usize, dur: Duration) -> (f64, f64, f64) {
    let me = std::process::id();
    let (daemon0, client0) = (cpu_time(pid), cpu_time(me));
    let rate = lookups_per_sec(addr, name, clients, dur);
    let lookups = (rate * dur.as_secs_f64()).max(1.0);
    let per_lookup = |now: Option<Duration>, then: Option<Duration>| {
        now.zip(then).map(|(b, a)| b.saturating_sub(a)).unwrap_or_default().as_secs_f64() * 1e6 / lookups
    };
    (rate, per_lookup(cpu_time(pid), daemon0), per_lookup(cpu_time(me), client0))
}

fn lookups_per_sec(addr: &str, name: &str, clients: usize, dur: Duration) -> f64 {
    async_std::task::block_on(async {
        let end = Instant::now() + dur;
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (addr, name) = (addr.to_owned(), name.to_owned());
            tasks.push(async_std::task::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    if let Ok(Some(_)) = snow_epmd::client::port_please(&addr, &name).await {
                        n += 1;
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await;
        }
        total as f64 / dur.as_secs_f64()
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0)).unwrap_or(0)
}

fn converge_rounds(n: usize) -> usize {
    let id = |i: usize| format!("10.0.{}.{}:4369", i / 250, i % 250 + 1);
    let mut ds: Vec<Gossip> = (0..n)
        .map(|i| {
            Gossip::new(
                Table::new(id(i), 1, TableLimits::default()),
                vec![id(0)],
                i as u64 + 1,
                GossipConfig::default(),
            )
        })
        .collect();
    let index = |ds: &Vec<Gossip>, s: &str| ds.iter().position(|d| d.table().me() == s);
    let round = |ds: &mut Vec<Gossip>| {
        for a in 0..ds.len() {
            for t in ds[a].round_targets() {
                let Some(b) = index(ds, &t) else { continue };
                let syn = ds[a].syn();
                let Some(ack) = ds[b].handle_syn(&syn) else { continue };
                let Some((ack2, _)) = ds[a].handle_ack(&ack, 0) else { continue };
                ds[b].handle_ack2(&ack2, 0);
            }
        }
    };
    // Membership first (everyone learns everyone from the one seed), then one change spreads.
    for _ in 0..200 {
        if ds.iter().all(|d| d.table().daemons().count() == n) {
            break;
        }
        round(&mut ds);
    }
    let name = NodeName::parse("bench@h").unwrap();
    let reg =
        Registration { name: name.clone(), port: 1, node_type: 77, high_version: 6, low_version: 6, extra: vec![] };
    if ds[n / 2].table_mut().register(reg, 1, 0).is_err() {
        return usize::MAX;
    }
    for r in 0..100 {
        if ds.iter().all(|d| d.table().get(&name).is_some_and(|e| e.state == State::Up)) {
            return r;
        }
        round(&mut ds);
    }
    usize::MAX
}

/// Number of live registrations for the memory measurement.
const MEMORY_ENTRIES: usize = 10_000;

/// Starts the real daemon binary on an ephemeral port with limits raised for `MEMORY_ENTRIES`.
fn start_daemon(dir: &Path) -> Option<(Child, String)> {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let limit = (MEMORY_ENTRIES + 1000).to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_snow-epmd"))
        .args(["--listen", &addr, "--hostname", "benchhost", "--data-dir"])
        .arg(dir)
        .args(["--max-entries", &limit, "--max-per-source", &limit, "--max-connections", &limit])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Some((child, addr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// (VmRSS, VmHWM) of a process in KiB, from /proc/PID/status.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The soft limit on open files of this process, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Registers `MEMORY_ENTRIES` names (64 at a time) and keeps their connections open.
fn fill(addr: &str) -> Vec<snow_epmd::client::Registration> {
    async_std::task::block_on(async {
        let mut regs = Vec::with_capacity(MEMORY_ENTRIES);
        for chunk in (0..MEMORY_ENTRIES).collect::<Vec<_>>().chunks(64) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let addr = addr.to_owned();
                    async_std::task::spawn(async move {
                        let name = NodeName::parse(&format!("fill{i}@benchhost")).ok()?;
                        snow_epmd::client::register(&addr, &name, 10_000 + i as u16).await.ok()
                    })
                })
                .collect();
            for t in batch {
                if let Some(r) = t.await {
                    regs.push(r);
                }
            }
        }
        regs
    })
}

fn measure_memory(addr: &str, pid: u32) {
    if let Some(n) = open_files_limit().filter(|n| *n < MEMORY_ENTRIES as u64 + 500) {
        println!("memory: skipped, open-files limit {n} < {} (run under `ulimit -n 20000`)", MEMORY_ENTRIES + 500);
        return;
    }
    let before = memory_kib(pid);
    let t = Instant::now();
    let regs = fill(addr);
    let took = t.elapsed();
    let up = async_std::task::block_on(snow_epmd::client::list(addr))
        .map(|rows| rows.iter().filter(|r| r.state == State::Up).count())
        .unwrap_or(0);
    let after = memory_kib(pid);
    let mib = |k: u64| k as f64 / 1024.0;
    match (before, after) {
        (Some((rss0, _)), Some((rss, hwm))) => println!(
            "memory: {up} live entries ({} registrations open, filled in {took:.1?}): VmRSS {:.1} MiB, \
             VmHWM {:.1} MiB (before filling: {:.1} MiB); target < 32 MiB",
            regs.len(),
            mib(rss),
            mib(hwm),
            mib(rss0)
        ),
        _ => println!("memory: /proc/{pid}/status unreadable; skipped"),
    }
    drop(regs);
}

fn main() {
    let dur = Duration::from_secs(3);
    let dir = std::env::temp_dir().join(format!("snow-epmd-bench-{}", std::process::id()));
    let Some((mut daemon, addr)) = start_daemon(&dir) else {
        println!("snow-epmd binary did not start; nothing measured");
        return;
    };
    let pid = daemon.id();
    let Ok(_reg) = async_std::task::block_on(snow_epmd::client::register(
        &addr,
        &NodeName::parse("bench@benchhost").unwrap(),
        9999,
    )) else {
        println!("cannot register with the snow-epmd child; nothing measured");
        let _ = daemon.kill();
        let _ = daemon.wait();
        return;
    };
    // Registration latency (ALIVE2 + flush + reply), median of 200.
    let mut lat: Vec<Duration> = (0..200)
        .filter_map(|i| {
            let n = NodeName::parse(&format!("r{i}@benchhost")).ok()?;
            let t = Instant::now();
            let r = async_std::task::block_on(snow_epmd::client::register(&addr, &n, 1)).ok()?;
            let e = t.elapsed();
            drop(r);
            Some(e)
        })
        .collect();
    lat.sort();
    if lat.len() == 200 {
        println!("registration latency incl. flush: median {:?}, p99 {:?}", lat[100], lat[198]);
    }
    let (snow, snow_cpu, client_cpu) = lookup_load(pid, &addr, "bench", 8, dur);
    println!(
        "snow-epmd lookups/s (1 connection per lookup, 8 clients, daemon in its own process): {snow:.0}; \
         daemon CPU {snow_cpu:.1} µs per lookup, client CPU {client_cpu:.1} µs per lookup"
    );
    // Erlang's epmd on an ephemeral port, as a foreground child killed by pid.
    let port = free_port();
    match Command::new("epmd").args(["-port", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(mut child) => {
            std::thread::sleep(Duration::from_millis(500));
            let eaddr = format!("127.0.0.1:{port}");
            // Register the same short name with Erlang's epmd (plain ALIVE2, short name).
            let reg = async_std::task::block_on(async {
                use async_std::io::{ReadExt, WriteExt};
                use snow_shared::epmd::wire::{encode_request, Alive2Req, Request};
                let mut s = async_std::net::TcpStream::connect(&eaddr).await.ok()?;
                let req = Alive2Req {
                    port: 9999,
                    node_type: 77,
                    protocol: 0,
                    high_version: 6,
                    low_version: 5,
                    name: b"bench".to_vec(),
                    extra: vec![],
                };
                s.write_all(&encode_request(&Request::Alive2(req))).await.ok()?;
                let mut r = [0u8; 6];
                s.read_exact(&mut r).await.ok()?;
                Some(s)
            });
            if reg.is_some() {
                let (erl, erl_cpu, client_cpu) = lookup_load(child.id(), &eaddr, "bench", 8, dur);
                println!(
                    "erlang epmd lookups/s (same load): {erl:.0}; daemon CPU {erl_cpu:.1} µs per lookup, client CPU \
                     {client_cpu:.1} µs per lookup; ratio snow/erlang = {:.2}",
                    snow / erl
                );
            } else {
                println!("erlang epmd: could not register; skipped");
            }
            drop(reg);
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(e) => println!("erlang epmd not available ({e}); skipped"),
    }
    measure_memory(&addr, pid);
    for n in [10, 100, 1000] {
        let t = Instant::now();
        let r = converge_rounds(n);
        println!(
            "gossip: a change reaches {n} simulated daemons in {r} rounds ({:?} CPU for the whole simulation)",
            t.elapsed()
        );
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(dir);
}
