//! Multi-process cluster tests on loopback: a real snow-epmd process and real node processes
//! (`snow-test-node`). Each test has its own daemon on a free port, its own cookie and data dir,
//! so tests run in parallel. Timeouts are generous upper bounds; what is asserted is the events.

use std::time::{Duration, Instant};

use snow_integration::cluster::{Cluster, Epmd, TestNode};

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");
/// SNOW_TICKTIME for the failure-detection tests.
const TICK: u64 = 2;
/// Slack on top of the ticktime for process scheduling on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_secs(3);

fn setup() -> (Cluster, Epmd) {
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let epmd = cluster.start_epmd(0, "epmd").unwrap();
    (cluster, epmd)
}

/// Two connected nodes `{prefix}1` and `{prefix}2` with the short ticktime.
fn connected_pair(cluster: &Cluster, epmd: &Epmd, prefix: &str) -> (TestNode, TestNode) {
    let mut a = cluster.start_node(&format!("{prefix}1@127.0.0.1"), &epmd.addr, TICK).unwrap();
    let mut b = cluster.start_node(&format!("{prefix}2@127.0.0.1"), &epmd.addr, TICK).unwrap();
    a.connect(&b.name).unwrap();
    b.await_nodeup(&a.name, Duration::from_secs(5)).unwrap();
    (a, b)
}

#[test]
fn three_nodes_form_a_full_mesh_from_one_connect_each() {
    let (cluster, epmd) = setup();
    let names = ["m1@127.0.0.1", "m2@127.0.0.1", "m3@127.0.0.1"];
    let mut nodes: Vec<_> = names.iter().map(|n| cluster.start_node(n, &epmd.addr, 20).unwrap()).collect();
    // m2 and m3 each connect to m1 only; the mesh connects m2 and m3 to each other.
    nodes[1].connect(names[0]).unwrap();
    nodes[2].connect(names[0]).unwrap();
    for (i, node) in nodes.iter_mut().enumerate() {
        let others: Vec<&str> = names.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, n)| *n).collect();
        node.await_nodes(&others, Duration::from_secs(15)).unwrap();
    }
    nodes[1].await_nodeup(names[2], Duration::from_secs(5)).unwrap();
    nodes[2].await_nodeup(names[1], Duration::from_secs(5)).unwrap();
    assert!(nodes[1].ping(names[2]).unwrap(), "m2 reaches m3's echo over the mesh connection");
}

#[test]
fn kill_9_of_a_node_fires_nodedown() {
    let (cluster, epmd) = setup();
    let (mut a, b) = connected_pair(&cluster, &epmd, "k");
    b.proc.signal("KILL").unwrap();
    let took = a.await_nodedown("k2@127.0.0.1", Duration::from_secs(TICK) + SLACK).unwrap();
    eprintln!("nodedown after kill -9 in {took:?}");
    assert_eq!(a.nodes().unwrap(), Vec::<String>::new());
}

#[test]
fn a_frozen_node_is_declared_down_by_ticks_although_tcp_stays_open() {
    let (cluster, epmd) = setup();
    let (mut a, mut b) = connected_pair(&cluster, &epmd, "f");
    b.proc.signal("STOP").unwrap();
    let result = a.await_nodedown("f2@127.0.0.1", Duration::from_secs(TICK) + SLACK);
    b.proc.signal("CONT").unwrap();
    let took = result.unwrap();
    eprintln!("nodedown of a SIGSTOPped node in {took:?}");
    assert!(took >= Duration::from_millis(TICK * 1000 / 2), "the frozen node's socket was open: only ticks can tell");
    // Once thawed, b notices the connection is gone too (a closed it), and the pair can reconnect.
    b.await_nodedown("f1@127.0.0.1", Duration::from_secs(TICK) + SLACK).unwrap();
    a.connect(&b.name).unwrap();
    assert!(a.ping(&b.name).unwrap());
}

#[test]
fn epmd_restart_keeps_connections_and_nodes_register_again() {
    let (cluster, epmd) = setup();
    let (mut a, mut b) = connected_pair(&cluster, &epmd, "r");
    let addr = epmd.addr.clone();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    drop(epmd); // SIGKILL: the daemon dies without a goodbye.
    let restarted = cluster.start_epmd(port, "epmd").unwrap();
    let up_at = Instant::now();
    // Both nodes register again (their registration connection broke) within 2 s of the restart.
    let list = |epmd: &str| {
        let out =
            std::process::Command::new(cluster.epmd_exe()).args(["list", "--json", "--epmd", epmd]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let up = |json: &str, name: &str| {
        json.contains(&format!("\"name\":\"{name}\",")) && {
            let entry = json.split(&format!("\"name\":\"{name}\"")).nth(1).unwrap_or("");
            entry.split('}').next().unwrap_or("").contains("\"state\":\"up\"")
        }
    };
    loop {
        let json = list(&restarted.addr);
        if up(&json, "r1@127.0.0.1") && up(&json, "r2@127.0.0.1") {
            break;
        }
        assert!(up_at.elapsed() < Duration::from_secs(2) + SLACK, "not re-registered in time: {json}");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("both nodes registered again {:?} after the restart", up_at.elapsed());
    // The established connection was never disturbed.
    assert!(a.ping(&b.name).unwrap());
    assert_eq!(a.nodes().unwrap(), vec![b.name.clone()]);
    assert!(!a.saw_nodedown(&b.name) && !b.saw_nodedown(&a.name), "no nodedown during the epmd restart");
}
