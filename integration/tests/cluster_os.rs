//! The global registry, process groups and remote calls with every node its own OS process
//! (README, "Global registry", "Process groups" and "Remote calls"): a real snow-epmd and three `snow-test-node` processes on
//! loopback per test, each test with its own daemon, cookie and names, so tests run in parallel.
//! Nodes are killed with SIGKILL (no goodbye: the others learn from the closed connection) and
//! partitioned by closing connections (`disconnect`) while every process keeps running.

use std::time::{Duration, Instant};

use snow_integration::child::Line;
use snow_integration::cluster::{Cluster, Epmd, TestNode};
use snow_integration::testbed::wait_until;

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");
/// SNOW_TICKTIME: a killed node's connection closes at once on loopback, so ticks play no part.
const TICK: u64 = 20;
/// Bound on a change reaching every node (one or two message delays on loopback; what we allow
/// for process scheduling on a loaded 2-core CI machine).
const CONVERGE: Duration = Duration::from_secs(5);

/// A daemon and three nodes `{prefix}1..3@127.0.0.1`, all connected to each other.
fn three_nodes(prefix: &str) -> (Cluster, Epmd, Vec<TestNode>) {
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let epmd = cluster.start_epmd(0, "epmd").unwrap();
    let names: Vec<String> = (1..=3).map(|i| format!("{prefix}{i}@127.0.0.1")).collect();
    let mut nodes: Vec<TestNode> = names.iter().map(|n| cluster.start_node(n, &epmd.addr, TICK).unwrap()).collect();
    nodes[0].connect(&names[1]).unwrap();
    nodes[0].connect(&names[2]).unwrap();
    for (i, node) in nodes.iter_mut().enumerate() {
        let others: Vec<&str> = names.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, n)| n.as_str()).collect();
        node.await_nodes(&others, Duration::from_secs(15)).unwrap();
    }
    (cluster, epmd, nodes)
}

/// Waits until every node in `nodes` answers `expected` for the global name `name`; how long
/// that took.
fn all_see_name(nodes: &mut [&mut TestNode], name: &str, expected: Option<&str>) -> Duration {
    wait_until(&format!("every node sees {name} -> {expected:?}"), CONVERGE, || {
        for node in nodes.iter_mut() {
            if node.whereis(name)?.as_deref() != expected {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .unwrap()
}

/// Waits until every node in `nodes` holds exactly `expected` (sorted) as members of `group`.
fn all_see_members(nodes: &mut [&mut TestNode], group: &str, expected: &[String]) -> Duration {
    let mut want = expected.to_vec();
    want.sort();
    wait_until(&format!("every node sees {group} = {want:?}"), CONVERGE, || {
        for node in nodes.iter_mut() {
            if node.members(group)? != want {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .unwrap()
}

#[test]
fn a_global_name_is_seen_and_called_everywhere_and_goes_with_its_killed_node() {
    let (_cluster, _epmd, nodes) = three_nodes("gn");
    let [mut a, mut b, mut c] = <[TestNode; 3]>::try_from(nodes).ok().unwrap();
    a.spawn_holder("svc").unwrap();
    let svc = a.global_register("billing", "svc").unwrap();
    // Read your writes on the registering node; the others one message delay later.
    assert_eq!(a.whereis("billing").unwrap().as_deref(), Some(svc.as_str()));
    let seen = all_see_name(&mut [&mut b, &mut c], "billing", Some(&svc));
    // Found and called by name alone from the other processes.
    assert!(b.global_ping("billing").unwrap(), "b calls the service by its global name");
    assert!(c.global_ping("billing").unwrap(), "c calls the service by its global name");
    // Taken while held, as every node knows.
    c.spawn_holder("other").unwrap();
    let refused = c.global_register("billing", "other").unwrap_err();
    assert!(refused.contains(&format!("is registered to {svc}")), "{refused}");

    let killed = Instant::now();
    a.proc.signal("KILL").unwrap();
    all_see_name(&mut [&mut b, &mut c], "billing", None);
    let gone = killed.elapsed();
    assert!(!b.global_ping("billing").unwrap(), "nobody answers a name that is gone");
    // The name is free again: c takes it, and b sees c's process.
    let other = c.global_register("billing", "other").unwrap();
    all_see_name(&mut [&mut b, &mut c], "billing", Some(&other));
    eprintln!("global name seen on the 2 other nodes {seen:?} after registration; gone on both {gone:?} after kill -9");
}

#[test]
fn group_members_of_three_processes_and_a_killed_ones_removed_everywhere() {
    let (_cluster, _epmd, nodes) = three_nodes("gg");
    let [mut a, mut b, mut c] = <[TestNode; 3]>::try_from(nodes).ok().unwrap();
    let mut members = Vec::new();
    for node in [&mut a, &mut b, &mut c] {
        node.spawn_holder("m").unwrap();
        members.push(node.join("room", "m").unwrap());
    }
    let seen = all_see_members(&mut [&mut a, &mut b, &mut c], "room", &members);
    // A second group with members on two nodes only, to show groups are independent.
    a.spawn_holder("x").unwrap();
    let x = a.join("other", "x").unwrap();
    c.spawn_holder("x").unwrap();
    let cx = c.join("other", "x").unwrap();
    all_see_members(&mut [&mut a, &mut b, &mut c], "other", &[x.clone(), cx]);

    let killed = Instant::now();
    c.proc.signal("KILL").unwrap();
    all_see_members(&mut [&mut a, &mut b], "room", &members[..2]);
    let removed = killed.elapsed();
    all_see_members(&mut [&mut a, &mut b], "other", std::slice::from_ref(&x));
    eprintln!(
        "3 members seen on every node {seen:?} after the joins; the killed node's members removed on both others \
         {removed:?} after kill -9"
    );
}

#[test]
fn a_name_registered_on_both_sides_of_a_partition_resolves_the_same_everywhere_after_heal() {
    let (_cluster, _epmd, nodes) = three_nodes("gp");
    let [mut a, mut b, mut c] = <[TestNode; 3]>::try_from(nodes).ok().unwrap();
    let (bn, cn) = (b.name.clone(), c.name.clone());
    // Partition: a alone on one side, b and c on the other; every process keeps running.
    assert!(a.disconnect(&bn).unwrap() && a.disconnect(&cn).unwrap());
    a.await_nodes(&[], Duration::from_secs(10)).unwrap();
    b.await_nodes(&[&cn], Duration::from_secs(10)).unwrap();
    c.await_nodes(&[&bn], Duration::from_secs(10)).unwrap();

    // Both sides register `leader`: a first, then (a few ms later by the shared clock) b.
    a.spawn_holder("x").unwrap();
    let on_a = a.global_register("leader", "x").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    b.spawn_holder("y").unwrap();
    let on_b = b.global_register("leader", "y").unwrap();
    // Each side sees its own holder.
    all_see_name(&mut [&mut b, &mut c], "leader", Some(&on_b));
    assert_eq!(a.whereis("leader").unwrap().as_deref(), Some(on_a.as_str()));

    // Heal: one connect; the mesh brings the rest. The older registration wins on every node, and
    // the loser (trapping exits) gets the documented exit signal from the winner, once.
    let marks = [a.mark(), b.mark()];
    let healed = Instant::now();
    a.connect(&bn).unwrap();
    a.await_nodes(&[&bn, &cn], Duration::from_secs(10)).unwrap();
    let connected = healed.elapsed();
    all_see_name(&mut [&mut a, &mut b, &mut c], "leader", Some(&on_a));
    let resolved = healed.elapsed();
    let notice = format!("EXIT y {on_a} {{:global_name_conflict, :leader, {on_a}}}");
    let told = b.await_since(marks[1], &notice, CONVERGE).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    b.proc.drain();
    let exits_b =
        b.proc.seen[marks[1]..].iter().filter(|l| matches!(l, Line::Out(t) if t.starts_with("EXIT y"))).count();
    assert_eq!(exits_b, 1, "the loser is told once:\n{}", b.proc.transcript());
    assert!(
        a.proc.expect_out_since(marks[0], Duration::ZERO, |l| l.starts_with("EXIT x")).is_err(),
        "the winner is told nothing"
    );
    assert!(c.global_ping("leader").unwrap(), "the winner answers by name from the other side");
    eprintln!(
        "partition conflict: every node resolves leader to a's process {resolved:?} after the heal \
         began (the connect and the mesh took {connected:?}); the loser told {:?} after it began",
        told.saturating_duration_since(healed)
    );
}

/// Starts a call from a fresh process on `node` (`call` command of the test node).
fn start_call(node: &mut TestNode, label: &str, peer: &str, timeout_ms: u64, linger_ms: u64, call: &str) {
    node.command(
        &format!("call {label} {peer} {timeout_ms} {linger_ms} {call}"),
        &format!("CALLING {label}"),
        CONVERGE,
    )
    .unwrap();
}

/// The outcome of call `label` (`ok VALUE` or `err KIND ...`) and how many messages reached the
/// caller's mailbox after it.
fn call_result(node: &mut TestNode, label: &str, within: Duration) -> (String, u32) {
    let outcome = node.proc.expect_prefix(within, &format!("CALLED {label} ")).unwrap();
    let stray = node.proc.expect_prefix(within, &format!("MAILBOX {label} ")).unwrap();
    (outcome, stray.parse().unwrap())
}

#[test]
fn remote_calls_return_values_exit_reasons_timeouts_and_noconnection_between_processes() {
    let (_cluster, _epmd, nodes) = three_nodes("rc");
    let [mut a, mut b, c] = <[TestNode; 3]>::try_from(nodes).ok().unwrap();
    let (b_name, c_name) = (b.name.clone(), c.name.clone());

    start_call(&mut a, "double", &b_name, 5000, 0, "calc double 21");
    assert_eq!(call_result(&mut a, "double", CONVERGE), ("ok 42".to_owned(), 0));

    start_call(&mut a, "crash", &c_name, 5000, 0, "calc crash");
    assert_eq!(call_result(&mut a, "crash", CONVERGE).0, "err exit :boom");

    start_call(&mut a, "refused", &b_name, 5000, 0, "no_such_function");
    assert_eq!(call_result(&mut a, "refused", CONVERGE).0, "err not_spawnable");

    // The function would return after 1 s; the call gives up after 200 ms, and the caller then
    // watches its mailbox for 1.5 s: the late result must not land there.
    start_call(&mut a, "late", &c_name, 200, 1500, "calc sleep 1000");
    let (outcome, stray) = call_result(&mut a, "late", CONVERGE);
    assert_eq!((outcome.as_str(), stray), ("err timeout", 0));

    // The callee's node is killed while the function runs.
    start_call(&mut a, "lost", &b_name, 30_000, 0, "calc sleep 20000");
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    b.proc.kill();
    let (outcome, _) = call_result(&mut a, "lost", CONVERGE);
    assert_eq!(outcome, "err noconnection");
    println!("a call to a node killed with SIGKILL failed {:?} after the kill", killed.elapsed());
}
