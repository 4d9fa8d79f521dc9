//! Production scenarios on the fault-injection testbed (`snow_integration::testbed`): hosts as
//! network namespaces, each with its own snow-epmd on port 4369 and hostname, joined by the
//! user-space switch that cuts, delays, drops and reorders frames. Each test states what it
//! expects and the bound it holds the measured times to (derived from the configured gossip
//! interval and ticktime), and prints what it measured (`cargo test -- --nocapture` shows it).
//! Each builds its own testbed, so they run in parallel. Needs root: the tests fail (never skip)
//! where the testbed cannot run.

use std::time::{Duration, Instant};

use snow_integration::testbed::{self, Config, Testbed};

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");
const SWITCH: &str = env!("CARGO_BIN_EXE_snow-testbed-switch");

/// snow-epmd's default gossip round period (`--gossip-interval`), which the scenarios keep.
const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
/// SNOW_TICKTIME for the failure-detection scenarios (the runtime's minimum is 1 s).
const TICK: u64 = 2;
/// What a loaded 2-core CI machine adds to a deadline: process scheduling, our own polling.
const SLACK: Duration = Duration::from_secs(3);

fn testbed(label: &str, hosts: usize, ticktime: u64) -> Testbed {
    Testbed::new(label, testbed::programs(EPMD, NODE, SWITCH), Config { hosts, ticktime, epmd_flags: Vec::new() })
        .unwrap_or_else(|e| panic!("cannot build the testbed: {e}"))
}

/// Whether every name in `names` is listed `up` by host `n`'s daemon.
fn lists_all_up(tb: &Testbed, n: usize, names: &[String]) -> Result<bool, String> {
    let rows = tb.list(n)?;
    Ok(names.iter().all(|name| rows.iter().any(|r| &r.name == name && r.state == "up")))
}

/// Whether node `name` is connected to exactly `others`.
fn connected_to(tb: &mut Testbed, name: &str, others: &[String]) -> Result<bool, String> {
    let mut want: Vec<String> = others.to_vec();
    want.sort();
    Ok(tb.node(name).nodes()? == want)
}

fn others(names: &[String], me: &str) -> Vec<String> {
    names.iter().filter(|n| *n != me).cloned().collect()
}

/// Scenario a. Five hosts, each daemon seeded with one other (host 1's), each with one node.
/// Expected: every daemon lists all five nodes `up` within 25 gossip rounds (5 s at the default
/// 200 ms) of the last registration: a daemon learns the others' addresses from the seed in its
/// first exchanges, and a change reaches all five daemons in a few rounds at fanout 3. Then each
/// node connects to host 1's node only, and the full mesh (every node connected to the four
/// others) forms within 5 s: the mesh introduces nodes to each other over the existing connections.
#[test]
fn a_five_hosts_form_a_full_mesh_from_one_seed() {
    let mut tb = testbed("mesh", 5, 20);
    tb.start_all_epmds().unwrap();
    let names: Vec<String> = (1..=5).map(|n| tb.start_node(n, "n").unwrap()).collect();
    let bound = GOSSIP_INTERVAL * 25;
    let listed = testbed::wait_until("every daemon lists all five nodes up", bound + SLACK, || {
        for n in 1..=5 {
            if !lists_all_up(&tb, n, &names)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .unwrap();
    let start = Instant::now();
    for name in &names[1..] {
        tb.node(name).connect(&names[0]).unwrap();
    }
    let meshed = testbed::wait_until("every node connected to the four others", Duration::from_secs(5) + SLACK, || {
        for name in &names {
            if !connected_to(&mut tb, name, &others(&names, name))? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .unwrap();
    eprintln!(
        "scenario a: all 5 daemons list all 5 nodes up {listed:?} after the last registration (bound {bound:?}); \
         full mesh {:?} after the first connect, {meshed:?} after the last",
        start.elapsed()
    );
    assert!(listed <= bound + SLACK);
    assert!(tb.node(&names[4]).ping(&names[3]).unwrap(), "n@host5 reaches n@host4 over a mesh connection");
}

/// Starts `short@hostN` on hosts `1..=hosts` and connects each to host 1's node; returns the
/// names once every node is connected to all the others.
fn meshed_nodes(tb: &mut Testbed, hosts: usize) -> Vec<String> {
    let names: Vec<String> = (1..=hosts).map(|n| tb.start_node(n, "n").unwrap()).collect();
    for name in &names[1..] {
        connect_retrying(tb, name, &names[0], Duration::from_secs(20));
    }
    await_full_mesh(tb, &names, Duration::from_secs(10)).unwrap();
    names
}

/// `connect` from `from` to `to` until it succeeds (gossip may not have brought `to`'s address
/// to `from`'s daemon yet).
fn connect_retrying(tb: &mut Testbed, from: &str, to: &str, timeout: Duration) -> Duration {
    testbed::wait_until(&format!("{from} connects to {to}"), timeout, || match tb.node(from).connect(to) {
        Ok(()) => Ok(true),
        Err(e) => Err(e),
    })
    .unwrap()
}

/// Waits until every node in `names` is connected to every other; how long that took.
fn await_full_mesh(tb: &mut Testbed, names: &[String], timeout: Duration) -> Result<Duration, String> {
    testbed::wait_until("full mesh", timeout, || {
        for name in names {
            if !connected_to(tb, name, &others(names, name))? {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

/// Waits for an output line of `node` equal to `want` printed after `mark`; the time from `t0`
/// to when it was read.
fn seen_after(tb: &mut Testbed, node: &str, mark: usize, want: &str, t0: Instant, timeout: Duration) -> Duration {
    let at = tb.node(node).await_since(mark, want, timeout).unwrap_or_else(|e| panic!("{node}: no {want:?}: {e}"));
    at.saturating_duration_since(t0)
}

/// Scenario b. Three hosts, ticktime 2 s; host 3 is cut off by the switch (frames dropped both
/// ways; sockets stay open, so only ticks can tell). Expected within ticktime + 3 s of the cut,
/// and not before half the ticktime (ticks, not a closed socket): hosts 1 and 2 see nodedown of
/// host 3's node and host 3's node sees nodedown of both; a link and a monitor from host 1 to a
/// process on host 3 fire `:noconnection`, and so do a link and a monitor from host 3 to
/// processes on host 1. After healing, one `connect` from host 1 restores the full mesh within
/// 10 s, and the pid of the process on host 3 (whose node was not restarted) answers again.
#[test]
fn b_a_partitioned_host_is_declared_down_on_both_sides_and_works_again_after_heal() {
    let mut tb = testbed("part", 3, TICK);
    tb.start_all_epmds().unwrap();
    let names = meshed_nodes(&mut tb, 3);
    let (n1, n2, n3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let far = tb.node(&n3).spawn_holder("far").unwrap();
    let l = tb.node(&n1).spawn_holder("l").unwrap();
    let m = tb.node(&n1).spawn_holder("m").unwrap();
    tb.node(&n1).link("l", &far).unwrap();
    tb.node(&n1).monitor("m", &far).unwrap();
    tb.node(&n3).spawn_holder("q").unwrap();
    tb.node(&n3).link("q", &m).unwrap();
    tb.node(&n3).monitor("q", &l).unwrap();
    let marks: Vec<usize> = names.iter().map(|n| tb.node(n).mark()).collect();

    let cut = tb.cut_host(3).unwrap();
    let within = Duration::from_secs(TICK) + SLACK;
    let down_1 = seen_after(&mut tb, &n1, marks[0], &format!("NODEDOWN {n3}"), cut, within);
    let down_2 = seen_after(&mut tb, &n2, marks[1], &format!("NODEDOWN {n3}"), cut, within);
    let down_3a = seen_after(&mut tb, &n3, marks[2], &format!("NODEDOWN {n1}"), cut, within);
    let down_3b = seen_after(&mut tb, &n3, marks[2], &format!("NODEDOWN {n2}"), cut, within);
    let link_1 = seen_after(&mut tb, &n1, marks[0], &format!("EXIT l {far} :noconnection"), cut, within);
    let mon_1 = seen_after(&mut tb, &n1, marks[0], &format!("DOWN m {far} :noconnection"), cut, within);
    let link_3 = seen_after(&mut tb, &n3, marks[2], &format!("EXIT q {m} :noconnection"), cut, within);
    let mon_3 = seen_after(&mut tb, &n3, marks[2], &format!("DOWN q {l} :noconnection"), cut, within);
    let stats = tb.switch_stats().unwrap();
    eprintln!(
        "scenario b: nodedown of host 3 on host 1 after {down_1:?}, on host 2 after {down_2:?}; host 3 saw \
         hosts 1 and 2 down after {down_3a:?} and {down_3b:?}; link/monitor :noconnection on host 1 after \
         {link_1:?}/{mon_1:?}, on host 3 after {link_3:?}/{mon_3:?} (bound {within:?}); switch dropped {} frames",
        stats["cut"]
    );
    for took in [down_1, down_2, down_3a, down_3b] {
        assert!(took >= Duration::from_secs(TICK) / 2, "declared down after {took:?}: sooner than ticks can tell");
    }
    assert!(stats["cut"] > 0, "the switch dropped frames of the cut host: {stats:?}");

    let healed = tb.heal_all().unwrap();
    connect_retrying(&mut tb, &n1, &n3, Duration::from_secs(10));
    let meshed = await_full_mesh(&mut tb, &names, Duration::from_secs(10)).unwrap();
    assert!(tb.node(&n1).ping_pid(&far, Duration::from_secs(5)).unwrap(), "the process on host 3 answers its old pid");
    eprintln!(
        "scenario b: full mesh again {:?} after the heal (connect from host 1, then {meshed:?})",
        healed.elapsed()
    );
}

/// Scenario c. Three hosts, ticktime 2 s; every process of host 3 is frozen (SIGSTOP: its
/// snow-epmd and its node; sockets stay open). Expected: hosts 1 and 2 declare host 3's node down
/// within ticktime + 3 s of the freeze, and not before half the ticktime. Thawed, the node rejoins:
/// a ping from host 1 reconnects on demand and the full mesh is back within 10 s of the thaw.
#[test]
fn c_a_frozen_host_is_declared_down_within_ticktime_and_rejoins_when_thawed() {
    let mut tb = testbed("freeze", 3, TICK);
    tb.start_all_epmds().unwrap();
    let names = meshed_nodes(&mut tb, 3);
    let (n1, n2, n3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let marks: Vec<usize> = names.iter().map(|n| tb.node(n).mark()).collect();
    tb.freeze_host(3).unwrap();
    let frozen = Instant::now();
    let within = Duration::from_secs(TICK) + SLACK;
    let result = (|| -> Result<(Duration, Duration), String> {
        let d1 = tb.node(&n1).await_since(marks[0], &format!("NODEDOWN {n3}"), within)?;
        let d2 = tb.node(&n2).await_since(marks[1], &format!("NODEDOWN {n3}"), within)?;
        Ok((d1.saturating_duration_since(frozen), d2.saturating_duration_since(frozen)))
    })();
    tb.thaw_host(3).unwrap();
    let thawed = Instant::now();
    let (down_1, down_2) = result.unwrap();
    for took in [down_1, down_2] {
        assert!(took >= Duration::from_secs(TICK) / 2, "declared down after {took:?}: sooner than ticks can tell");
    }
    // The thawed node finds its connections gone (its peers closed them) and reconnects on demand.
    seen_after(&mut tb, &n3, marks[2], &format!("NODEDOWN {n1}"), thawed, within);
    assert!(tb.node(&n1).ping(&n3).unwrap(), "host 1 reaches the thawed node");
    tb.node(&n2).ping(&n3).unwrap();
    let rejoined = await_full_mesh(&mut tb, &names, Duration::from_secs(10)).unwrap();
    eprintln!(
        "scenario c: frozen host 3 declared down by host 1 after {down_1:?}, by host 2 after {down_2:?} \
         (bound {within:?}); full mesh again {:?} after the thaw ({rejoined:?} after the pings)",
        thawed.elapsed()
    );
}
