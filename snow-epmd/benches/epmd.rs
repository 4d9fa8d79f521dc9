//! snow-epmd benchmarks, one command: `cargo bench -p snow-epmd --bench epmd`.
//! Both daemons run as separate child processes (the real `snow-epmd` binary and Erlang's `epmd`,
//! each on an ephemeral port, killed by pid); this process is only the client, with the same code
//! and concurrency for both.
//! - lookups/s against snow-epmd and Erlang's epmd, both running for the whole run and measured
//!   alternately in rounds, with the same load generator (blocking std sockets on a few threads):
//!   PORT_PLEASE2 with one connection per lookup (as nodes do) against both, Snow's LOOKUP against
//!   snow-epmd, and Snow's pipelined lookup session over one connection (Erlang's epmd has no
//!   such request: it closes after every reply). Daemon and client CPU per lookup are printed
//!   too: on a small machine the client shares the cores with the daemon.
//!   Knobs: SNOW_BENCH_MS (per measure, 2000), SNOW_BENCH_CLIENTS (4), SNOW_BENCH_DEPTH (64),
//!   SNOW_BENCH_ROUNDS (3), SNOW_BENCH_SKIP_MEMORY=1;
//! - registration latency including the sled flush;
//! - resident memory (VmRSS / VmHWM from /proc) of the daemon holding 10,000 live registrations
//!   (10,000 open connections on both sides; the fd limit is checked first);
//! - gossip convergence rounds for 10, 100 and 1,000 simulated daemons (sans-IO core).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use snow_shared::epmd::gossip::{Gossip, GossipConfig};
use snow_shared::epmd::identity::Identity;
use snow_shared::epmd::session::{next_reply, SESSION_ACK, SESSION_OPEN};
use snow_shared::epmd::table::{Registration, State, Table, TableLimits};
use snow_shared::epmd::wire::{encode_request, Alive2Req, Request, PORT2_RESP, SNOW_LOOKUP_RESP};
use snow_shared::NodeName;

/// CPU time (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// One measured load: lookups per second, and the daemon's and this client's CPU per lookup (µs).
struct Load {
    rate: f64,
    daemon_us: f64,
    client_us: f64,
}

/// Runs `work` (which returns the number of answered lookups) and measures it.
fn measure(pid: u32, dur: Duration, work: impl FnOnce() -> u64) -> Load {
    let me = std::process::id();
    let (daemon0, client0) = (cpu_time(pid), cpu_time(me));
    let t = Instant::now();
    let lookups = work();
    let took = t.elapsed().max(dur / 2);
    let per_lookup = |now: Option<Duration>, then: Option<Duration>| {
        let spent = now.zip(then).map(|(b, a)| b.saturating_sub(a)).unwrap_or_default();
        spent.as_secs_f64() * 1e6 / lookups.max(1) as f64
    };
    Load {
        rate: lookups as f64 / took.as_secs_f64(),
        daemon_us: per_lookup(cpu_time(pid), daemon0),
        client_us: per_lookup(cpu_time(me), client0),
    }
}

/// The load generator for one connection per lookup, identical for both daemons: `threads` OS
/// threads with blocking std sockets, each connecting, sending `request`, and reading the reply
/// until the daemon closes. Counts replies that start with `found` (the reply tag and result 0).
fn per_connection(addr: SocketAddr, request: &[u8], found: [u8; 2], threads: usize, dur: Duration) -> u64 {
    let end = Instant::now() + dur;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    let mut buf = [0u8; 512];
                    while Instant::now() < end {
                        let Ok(mut s) = std::net::TcpStream::connect(addr) else { continue };
                        if s.write_all(request).is_err() {
                            continue;
                        }
                        let mut got = 0;
                        while let Ok(k) = s.read(&mut buf[got..]) {
                            if k == 0 || got + k == buf.len() {
                                break;
                            }
                            got += k;
                        }
                        if got >= 2 && buf[..2] == found {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    })
}

/// Pipelined lookups over one connection (Snow's lookup session): batches of `depth` copies of
/// `request` in one write, then reading the `depth` framed replies.
fn pipelined(addr: SocketAddr, request: &[u8], found: [u8; 2], depth: usize, dur: Duration) -> u64 {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return 0 };
    let _ = s.set_nodelay(true);
    let mut ack = [0u8; SESSION_ACK.len()];
    if s.write_all(&SESSION_OPEN).is_err() || s.read_exact(&mut ack).is_err() || ack != SESSION_ACK {
        return 0;
    }
    let batch: Vec<u8> = (0..depth).flat_map(|_| request.iter().copied()).collect();
    let (mut input, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
    let end = Instant::now() + dur;
    let mut n = 0u64;
    while Instant::now() < end {
        if s.write_all(&batch).is_err() {
            return n;
        }
        let mut replies = 0;
        while replies < depth {
            match next_reply(&input) {
                Ok(Some((reply, used))) => {
                    n += u64::from(reply.get(..2) == Some(&found[..]));
                    replies += 1;
                    input.drain(..used);
                }
                Ok(None) => match s.read(&mut buf) {
                    Ok(0) | Err(_) => return n,
                    Ok(k) => input.extend_from_slice(&buf[..k]),
                },
                Err(_) => return n,
            }
        }
    }
    n
}

/// Registers `name` (a short name) with any EPMD-speaking daemon; the connection holds it.
fn register_short(addr: SocketAddr, name: &str) -> Option<std::net::TcpStream> {
    let req = Alive2Req {
        port: 9999,
        node_type: 77,
        protocol: 0,
        high_version: 6,
        low_version: 5,
        name: name.as_bytes().to_vec(),
        extra: vec![],
    };
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(&encode_request(&Request::Alive2(req))).ok()?;
    let mut r = [0u8; 6];
    s.read_exact(&mut r).ok()?;
    (r[1] == 0).then_some(s)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0)).unwrap_or(0)
}

fn converge_rounds(n: usize) -> usize {
    let id = |i: usize| format!("10.0.{}.{}:4369", i / 250, i % 250 + 1);
    let limits = TableLimits { max_daemons: n + 1, ..TableLimits::default() };
    let mut ds: Vec<Gossip> = (0..n)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut table = Table::new(id(i), Identity::from_seed(&seed), 1, limits);
            // Convergence is measured here, not Ed25519 (the simulation in snow-shared checks
            // signatures for real on its smaller runs).
            table.set_verifier(|_, _, _| true);
            Gossip::new(table, vec![id(0)], i as u64 + 1, GossipConfig::default())
        })
        .collect();
    let index: std::collections::HashMap<String, usize> = (0..n).map(|i| (id(i), i)).collect();
    let round = |ds: &mut Vec<Gossip>| {
        for a in 0..ds.len() {
            for t in ds[a].round_targets() {
                let Some(&b) = index.get(&t.peer) else { continue };
                let syn = ds[a].syn_for(&t);
                let Ok(ack) = ds[b].handle_syn(&syn, t.probe) else { continue };
                let Ok((ack2, _)) = ds[a].handle_ack(&ack, &t.peer, 0) else { continue };
                let _ = ds[b].handle_ack2(&ack2, 0);
            }
        }
    };
    // Membership first (everyone learns and pins everyone from the one seed), then one change
    // spreads.
    for _ in 0..300 {
        if ds.iter().all(|d| d.table().pinned_count() == n - 1) {
            break;
        }
        round(&mut ds);
    }
    let name = NodeName::parse(&format!("bench@{}", &id(n / 2)[..id(n / 2).len() - 5])).unwrap();
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
        .args(["--max-connections-per-source", &limit])
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
    let ex = async_executor::LocalExecutor::new();
    async_io::block_on(ex.run(async {
        let mut regs = Vec::with_capacity(MEMORY_ENTRIES);
        for chunk in (0..MEMORY_ENTRIES).collect::<Vec<_>>().chunks(64) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let addr = addr.to_owned();
                    ex.spawn(async move {
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
    }))
}

fn measure_memory(addr: &str, pid: u32) {
    if std::env::var_os("SNOW_BENCH_SKIP_MEMORY").is_some() {
        println!("memory: skipped (SNOW_BENCH_SKIP_MEMORY)");
        return;
    }
    if let Some(n) = open_files_limit().filter(|n| *n < MEMORY_ENTRIES as u64 + 500) {
        println!("memory: skipped, open-files limit {n} < {} (run under `ulimit -n 20000`)", MEMORY_ENTRIES + 500);
        return;
    }
    let before = memory_kib(pid);
    let t = Instant::now();
    let regs = fill(addr);
    let took = t.elapsed();
    let up = async_io::block_on(snow_epmd::client::list(addr))
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

/// Lookups/s against snow-epmd and Erlang's epmd, both running side by side for the whole run,
/// measured alternately `rounds` times so that load from other processes hits both.
fn lookup_benchmarks(snow: (u32, SocketAddr), erl: Option<(u32, SocketAddr)>) {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let dur = Duration::from_millis(env("SNOW_BENCH_MS", 2000));
    let threads = env("SNOW_BENCH_CLIENTS", 4) as usize;
    let depth = env("SNOW_BENCH_DEPTH", 64) as usize;
    let rounds = env("SNOW_BENCH_ROUNDS", 3);
    let port_please = encode_request(&Request::PortPlease2(b"bench".to_vec()));
    let lookup = encode_request(&Request::Lookup(b"bench@benchhost".to_vec()));
    let (p2, lk) = ([PORT2_RESP, 0], [SNOW_LOOKUP_RESP, 0]);
    println!(
        "lookups: {threads} client threads with blocking sockets (one connection per lookup), or one connection \
         with batches of {depth} (pipelined); {:?} per measure, {rounds} rounds; CPU per lookup from /proc",
        dur
    );
    let show = |what: &str, l: &Load| {
        println!(
            "  {what:<58} {:>9.0} lookups/s   daemon {:>5.1} µs/lookup   client {:>5.1} µs/lookup",
            l.rate, l.daemon_us, l.client_us
        )
    };
    let (mut best_snow, mut best_erl, mut best_pipe) = (0f64, 0f64, 0f64);
    for round in 1..=rounds {
        println!("round {round}:");
        let s = measure(snow.0, dur, || per_connection(snow.1, &port_please, p2, threads, dur));
        show("snow-epmd   PORT_PLEASE2, 1 connection per lookup", &s);
        best_snow = best_snow.max(s.rate);
        if let Some(erl) = erl {
            let e = measure(erl.0, dur, || per_connection(erl.1, &port_please, p2, threads, dur));
            show("erlang epmd PORT_PLEASE2, 1 connection per lookup", &e);
            best_erl = best_erl.max(e.rate);
            println!("  ratio snow/erlang, same request, 1 connection per lookup: {:.2}", s.rate / e.rate);
        }
        let l = measure(snow.0, dur, || per_connection(snow.1, &lookup, lk, threads, dur));
        show("snow-epmd   LOOKUP (full name), 1 connection per lookup", &l);
        let p = measure(snow.0, dur, || pipelined(snow.1, &lookup, lk, depth, dur));
        show("snow-epmd   LOOKUP pipelined over 1 connection (session)", &p);
        let q = measure(snow.0, dur, || pipelined(snow.1, &port_please, p2, depth, dur));
        show("snow-epmd   PORT_PLEASE2 pipelined over 1 connection", &q);
        best_pipe = best_pipe.max(p.rate);
    }
    if best_erl > 0.0 {
        println!(
            "best of {rounds}: snow-epmd {best_snow:.0}/s vs erlang epmd {best_erl:.0}/s with 1 connection per lookup \
             (ratio {:.2}); snow-epmd pipelined {best_pipe:.0}/s vs erlang epmd's 1 connection per lookup \
             (ratio {:.1}; Erlang's epmd cannot pipeline: it closes after every reply)",
            best_snow / best_erl,
            best_pipe / best_erl
        );
    }
}

/// Starts Erlang's epmd on a free port (a foreground child, killed by pid) with `bench`
/// registered; `None` (with a message) if it is not installed or does not answer.
fn start_erlang_epmd() -> Option<(Child, SocketAddr, std::net::TcpStream)> {
    let port = free_port();
    let mut child = match Command::new("epmd")
        .args(["-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("erlang epmd not available ({e}); measuring snow-epmd alone");
            return None;
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(reg) = register_short(addr, "bench") {
            return Some((child, addr, reg));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("erlang epmd did not accept a registration; measuring snow-epmd alone");
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn main() {
    let dir = std::env::temp_dir().join(format!("snow-epmd-bench-{}", std::process::id()));
    let Some((mut daemon, addr)) = start_daemon(&dir) else {
        println!("snow-epmd binary did not start; nothing measured");
        return;
    };
    let pid = daemon.id();
    let Ok(_reg) =
        async_io::block_on(snow_epmd::client::register(&addr, &NodeName::parse("bench@benchhost").unwrap(), 9999))
    else {
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
            let r = async_io::block_on(snow_epmd::client::register(&addr, &n, 1)).ok()?;
            let e = t.elapsed();
            drop(r);
            Some(e)
        })
        .collect();
    lat.sort();
    if lat.len() == 200 {
        println!("registration latency incl. flush: median {:?}, p99 {:?}", lat[100], lat[198]);
    }
    let erl = start_erlang_epmd();
    match addr.parse::<SocketAddr>() {
        Ok(snow_addr) => lookup_benchmarks((pid, snow_addr), erl.as_ref().map(|(c, a, _)| (c.id(), *a))),
        Err(e) => println!("snow-epmd address {addr} unreadable ({e}); lookups not measured"),
    }
    if let Some((mut child, _, reg)) = erl {
        drop(reg);
        let _ = child.kill();
        let _ = child.wait();
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
