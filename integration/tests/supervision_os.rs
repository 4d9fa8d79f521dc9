//! Supervision across nodes with separate OS processes (README, "Supervision across nodes"): a
//! supervisor on one node keeps its child running on another, and when that node's process is
//! killed with SIGKILL the child is restarted on the next candidate node. Each test has its own
//! snow-epmd on a free port, its own cookie and data dir; timeouts are generous upper bounds.

use std::time::Duration;

use snow_integration::cluster::Cluster;

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");
/// SNOW_TICKTIME: short, though a SIGKILLed process's connections close at once anyway.
const TICK: u64 = 2;
/// Bound on each wait, for process start-up and scheduling on a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(20);

/// The pid in a `WORKER S PID` line.
fn worker_pid(line: &str) -> String {
    line.rsplit(' ').next().unwrap_or_default().to_owned()
}

#[test]
fn a_child_on_a_node_killed_with_sigkill_is_restarted_on_the_next_candidate() {
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let epmd = cluster.start_epmd(0, "epmd").unwrap();
    let names = ["sup_a@127.0.0.1", "sup_b@127.0.0.1", "sup_c@127.0.0.1"];
    let mut a = cluster.start_node(names[0], &epmd.addr, TICK).unwrap();
    let b = cluster.start_node(names[1], &epmd.addr, TICK).unwrap();
    let mut c = cluster.start_node(names[2], &epmd.addr, TICK).unwrap();
    a.connect(names[1]).unwrap();
    a.connect(names[2]).unwrap();

    let mark = a.mark();
    a.command(&format!("supervise S {},{}", names[1], names[2]), "SUPERVISING S ", WAIT).unwrap();
    let (line, _) = a.await_prefix_since(mark, "WORKER S ", WAIT).unwrap();
    let first = worker_pid(&line);
    assert!(first.starts_with(&format!("<{}.", names[1])), "started on the first candidate: {line}");

    let mark = a.mark();
    b.proc.signal("KILL").unwrap();
    let (line, _) = a.await_prefix_since(mark, "WORKER S ", WAIT).unwrap();
    let second = worker_pid(&line);
    assert!(second.starts_with(&format!("<{}.", names[2])), "restarted on the next candidate: {line}");
    assert!(c.ping_pid(&second, Duration::from_secs(5)).unwrap(), "the new child runs on {}", names[2]);
    assert!(a.ping_pid(&second, Duration::from_secs(5)).unwrap(), "and answers the supervisor's node");
    drop(b);
}
