//! Multi-host test with real network namespaces (DESIGN.md 6): two "hosts" linked by a veth pair
//! (10.231.7.1/24 and 10.231.7.2/24, only inside namespaces this test creates and deletes), a
//! snow-epmd per host gossiping with the other, a node per host. The node on host B finds the node
//! on host A through gossip and connects; then the link goes down (a partition), and both sides
//! see `nodedown` within the ticktime although neither process died. Skipped, with a message,
//! when not root or without `ip netns`.

use std::time::{Duration, Instant};

use snow_integration::child::ChildProc;
use snow_integration::cluster::{Cluster, Epmd, TestNode};
use snow_integration::netns::{self, Netns};

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");
const TICK: u64 = 2;
/// The daemons' port inside the namespaces (each namespace has its own port space).
const EPMD_PORT: u16 = 14369;

fn host_epmd(cluster: &Cluster, ns: &Netns, me: &str, peer: &str) -> Epmd {
    let data = cluster.dir.join(&format!("epmd-{me}"));
    let mut cmd = ns.command(EPMD);
    cmd.args(["--listen", &EPMD_PORT.to_string(), "--data-dir"])
        .arg(data)
        .args(["--advertise", &format!("{me}:{EPMD_PORT}"), "--peer", &format!("{peer}:{EPMD_PORT}")])
        .args(["--gossip-interval", "100", "--cookie-file"])
        .arg(&cluster.cookie)
        .env("RUST_LOG", "info");
    cluster.wait_epmd(ChildProc::spawn(format!("snow-epmd on {me}"), cmd).unwrap()).unwrap()
}

fn host_node(cluster: &Cluster, ns: &Netns, name: &str) -> TestNode {
    let local_epmd = format!("127.0.0.1:{EPMD_PORT}");
    let plain = cluster.node_command(name, &local_epmd, TICK);
    let mut cmd = ns.command(plain.get_program());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    TestNode::start(name, cmd).unwrap()
}

#[test]
fn partition_between_two_hosts_fires_nodedown_on_both_sides() {
    if let Some(why) = netns::unavailable() {
        eprintln!(
            "SKIPPED partition_between_two_hosts_fires_nodedown_on_both_sides: {why} (needs root and `ip netns`)"
        );
        return;
    }
    // Namespaces first: locals drop in reverse order, so the processes die before the namespaces go.
    let host_a = Netns::create("host-a").unwrap();
    let host_b = Netns::create("host-b").unwrap();
    netns::veth(&host_a, "10.231.7.1/24", &host_b, "10.231.7.2/24", "veth0").unwrap();
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let _epmd_a = host_epmd(&cluster, &host_a, "10.231.7.1", "10.231.7.2");
    let _epmd_b = host_epmd(&cluster, &host_b, "10.231.7.2", "10.231.7.1");
    let mut a = host_node(&cluster, &host_a, "na@10.231.7.1");
    let mut b = host_node(&cluster, &host_b, "nb@10.231.7.2");

    // b's daemon learns of na only through gossip from a's daemon.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match b.connect(&a.name) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("nb never reached na across the hosts: {e}"),
        }
    }
    a.await_nodeup(&b.name, Duration::from_secs(5)).unwrap();
    assert!(b.ping(&a.name).unwrap());

    host_a.ip(&["link", "set", "veth0", "down"]).unwrap();
    let slack = Duration::from_secs(TICK + 3);
    let took_a = a.await_nodedown(&b.name, slack).unwrap();
    let took_b = b.await_nodedown(&a.name, slack).unwrap();
    eprintln!("partition: nodedown on host A after {took_a:?}, on host B after {took_b:?}");
}
