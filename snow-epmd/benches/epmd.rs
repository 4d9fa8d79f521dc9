//! snow-epmd benchmarks, one command: `cargo bench -p snow-epmd --bench epmd`.
//! - lookups/s (PORT_PLEASE2, one connection per lookup as nodes do) against snow-epmd and against
//!   Erlang's epmd (started on an ephemeral port as a child process, killed by pid), same run;
//! - registration latency including the sled flush;
//! - gossip convergence rounds for 10, 100 and 1,000 simulated daemons (sans-IO core).

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use snow_shared::epmd::gossip::{Gossip, GossipConfig};
use snow_shared::epmd::table::{Registration, State, Table, TableLimits};
use snow_shared::NodeName;

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

fn main() {
    let dur = Duration::from_secs(3);
    let dir = std::env::temp_dir().join(format!("snow-epmd-bench-{}", std::process::id()));
    let mut config = snow_epmd::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.hostname = "benchhost".into();
    let h = async_std::task::block_on(snow_epmd::serve(config)).unwrap();
    let addr = h.local_addr().to_string();
    let _reg = async_std::task::block_on(snow_epmd::client::register(
        &addr,
        &NodeName::parse("bench@benchhost").unwrap(),
        9999,
    ))
    .unwrap();
    // Registration latency (ALIVE2 + flush + reply), median of 200.
    let mut lat: Vec<Duration> = (0..200)
        .map(|i| {
            let n = NodeName::parse(&format!("r{i}@benchhost")).unwrap();
            let t = Instant::now();
            let r = async_std::task::block_on(snow_epmd::client::register(&addr, &n, 1)).unwrap();
            let e = t.elapsed();
            drop(r);
            e
        })
        .collect();
    lat.sort();
    println!("registration latency incl. flush: median {:?}, p99 {:?}", lat[100], lat[198]);
    let snow = lookups_per_sec(&addr, "bench", 8, dur);
    println!("snow-epmd lookups/s (1 connection per lookup, 8 clients): {snow:.0}");
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
                let erl = lookups_per_sec(&eaddr, "bench", 8, dur);
                println!("erlang epmd lookups/s (same load): {erl:.0}; ratio snow/erlang = {:.2}", snow / erl);
            } else {
                println!("erlang epmd: could not register; skipped");
            }
            drop(reg);
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(e) => println!("erlang epmd not available ({e}); skipped"),
    }
    for n in [10, 100, 1000] {
        let t = Instant::now();
        let r = converge_rounds(n);
        println!(
            "gossip: a change reaches {n} simulated daemons in {r} rounds ({:?} CPU for the whole simulation)",
            t.elapsed()
        );
    }
    let _ = async_std::task::block_on(h.shutdown());
    let _ = std::fs::remove_dir_all(dir);
}
