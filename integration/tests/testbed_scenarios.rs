//! Production scenarios on the fault-injection testbed (`snow_integration::testbed`): hosts as
//! network namespaces, each with its own snow-epmd on port 4369 and hostname, joined by the
//! user-space switch that cuts, delays, drops and reorders frames. Each test states what it
//! expects and the bound it holds the measured times to (derived from the configured gossip
//! interval and ticktime), and prints what it measured (`cargo test -- --nocapture` shows it).
//! Each builds its own testbed, so they run in parallel. Needs root: the tests fail (never skip)
//! where the testbed cannot run.

use std::time::{Duration, Instant};

use snow_integration::child::Line;
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
    let meshed = tb.await_full_mesh(&names, Duration::from_secs(5) + SLACK).unwrap();
    eprintln!(
        "scenario a: all 5 daemons list all 5 nodes up {listed:?} after the last registration (bound {bound:?}); \
         full mesh {:?} after the first connect, {meshed:?} after the last",
        start.elapsed()
    );
    assert!(listed <= bound + SLACK);
    assert!(tb.node(&names[4]).ping(&names[3]).unwrap(), "n@host5 reaches n@host4 over a mesh connection");
}

/// Waits for an output line of `node` equal to `want` printed after `mark`; the time from `t0`
/// to when it was read.
fn seen_after(tb: &mut Testbed, node: &str, mark: usize, want: &str, t0: Instant, timeout: Duration) -> Duration {
    let at = tb.node(node).await_since(mark, want, timeout).unwrap_or_else(|e| panic!("{node}: no {want:?}: {e}"));
    at.saturating_duration_since(t0)
}

/// Scenario b. Three hosts, ticktime 2 s. First the link between hosts 1 and 2 alone is cut:
/// their nodes see each other down within ticktime + 3 s while host 3's node sees nobody go, and
/// after healing a `connect` joins them again. Then host 3 is cut off by the switch (frames dropped both
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
    let names = tb.start_mesh(3).unwrap();
    let (n1, n2, n3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let far = tb.node(&n3).spawn_holder("far").unwrap();
    let l = tb.node(&n1).spawn_holder("l").unwrap();
    let m = tb.node(&n1).spawn_holder("m").unwrap();
    tb.node(&n1).link("l", &far).unwrap();
    tb.node(&n1).monitor("m", &far).unwrap();
    tb.node(&n3).spawn_holder("q").unwrap();
    tb.node(&n3).link("q", &m).unwrap();
    tb.node(&n3).monitor("q", &l).unwrap();
    let within = Duration::from_secs(TICK) + SLACK;
    let marks: Vec<usize> = names.iter().map(|n| tb.node(n).mark()).collect();
    let pair_cut = tb.cut_pair(1, 2).unwrap();
    let pair_1 = seen_after(&mut tb, &n1, marks[0], &format!("NODEDOWN {n2}"), pair_cut, within);
    let pair_2 = seen_after(&mut tb, &n2, marks[1], &format!("NODEDOWN {n1}"), pair_cut, within);
    tb.heal_all().unwrap();
    assert!(tb.node(&n3).proc.expect_out_since(marks[2], Duration::ZERO, |l| l.starts_with("NODEDOWN")).is_err());
    tb.connect_retrying(&n1, &n2, Duration::from_secs(10)).unwrap();
    tb.await_full_mesh(&names, Duration::from_secs(10)).unwrap();
    eprintln!(
        "scenario b: pair 1-2 cut: each side saw the other down after {pair_1:?} and {pair_2:?} (bound {within:?})"
    );

    let marks: Vec<usize> = names.iter().map(|n| tb.node(n).mark()).collect();
    let cut = tb.cut_host(3).unwrap();
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
    tb.connect_retrying(&n1, &n3, Duration::from_secs(10)).unwrap();
    let meshed = tb.await_full_mesh(&names, Duration::from_secs(10)).unwrap();
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
    let names = tb.start_mesh(3).unwrap();
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
    let rejoined = tb.await_full_mesh(&names, Duration::from_secs(10)).unwrap();
    eprintln!(
        "scenario c: frozen host 3 declared down by host 1 after {down_1:?}, by host 2 after {down_2:?} \
         (bound {within:?}); full mesh again {:?} after the thaw ({rejoined:?} after the pings)",
        thawed.elapsed()
    );
}

/// The creation host `n`'s daemon lists for `name`, with its state.
fn listed(tb: &Testbed, n: usize, name: &str) -> Option<(u32, String)> {
    tb.list(n).ok()?.into_iter().find(|r| r.name == name).map(|r| (r.creation, r.state))
}

/// How soon a node registers again after its snow-epmd is back: snow-node-rt retries at most 1 s
/// apart (README, snow-epmd's guarantees).
const REREGISTER_WITHIN: Duration = Duration::from_secs(2);

/// Scenario d. Three hosts; nodes on hosts 1 and 2 exchange two streams (one message every 5 ms
/// each way) when host 2's snow-epmd is killed with SIGKILL. A third node on host 2 registered
/// just before (its registration acknowledged) is frozen so that it cannot register again by
/// itself. Expected: during the outage the existing connection keeps carrying both streams, and
/// only a new connection from host 2 (which needs a lookup there) fails; restarted on the same
/// data directory, the daemon lists the frozen node's entry with its creation (`unconfirmed`,
/// from disk) and, once thawed, `up` with the same creation; the running node is `up` again with
/// its creation within 2 s (+3 s slack); a lookup from host 2 works again; both streams arrive
/// complete and in order, and no node saw a nodedown.
#[test]
fn d_kill_9_of_a_daemon_mid_traffic_loses_no_registration_and_keeps_connections() {
    let mut tb = testbed("epmdkill", 3, TICK);
    tb.start_all_epmds().unwrap();
    let n1 = tb.start_node(1, "n").unwrap();
    let n2 = tb.start_node(2, "n").unwrap();
    let n3 = tb.start_node(3, "n").unwrap();
    tb.connect_retrying(&n2, &n1, Duration::from_secs(20)).unwrap();
    let s1 = tb.node(&n1).sink("s").unwrap();
    let s2 = tb.node(&n2).sink("s").unwrap();
    tb.node(&n2).stream("d21", &s1, Duration::from_millis(5)).unwrap();
    tb.node(&n1).stream("d12", &s2, Duration::from_millis(5)).unwrap();
    let fresh = tb.start_node(2, "fresh").unwrap();
    let creations: Vec<u32> = [&n2, &fresh]
        .iter()
        .map(|name| match listed(&tb, 2, name) {
            Some((creation, state)) if state == "up" => creation,
            other => panic!("{name} is not listed up before the kill: {other:?}"),
        })
        .collect();
    let marks = [tb.node(&n1).mark(), tb.node(&n2).mark()];
    tb.node(&fresh).proc.signal("STOP").unwrap();

    tb.kill_epmd(2);
    let killed = Instant::now();
    let during = tb.node(&n1).report("s").unwrap().count("d21");
    std::thread::sleep(Duration::from_secs(1));
    let later = tb.node(&n1).report("s").unwrap().count("d21");
    assert!(later > during, "the stream from host 2 stopped during the outage ({during} then {later})");
    assert!(tb.node(&n2).ping(&n1).unwrap(), "the existing connection works without the daemon");
    assert!(tb.node(&n2).connect(&n3).is_err(), "a new connection from host 2 needs its daemon");

    tb.start_epmd(2, &[]).unwrap();
    let back = Instant::now();
    let from_disk = listed(&tb, 2, &fresh);
    assert_eq!(from_disk, Some((creations[1], "unconfirmed".to_owned())), "the frozen node's entry after the restart");
    let reregistered = testbed::wait_until("the running node up again", REREGISTER_WITHIN + SLACK, || {
        Ok(listed(&tb, 2, &n2) == Some((creations[0], "up".to_owned())))
    })
    .unwrap();
    tb.node(&fresh).proc.signal("CONT").unwrap();
    testbed::wait_until("the thawed node up again", REREGISTER_WITHIN + SLACK, || {
        Ok(listed(&tb, 2, &fresh) == Some((creations[1], "up".to_owned())))
    })
    .unwrap();
    tb.connect_retrying(&n2, &n3, Duration::from_secs(5)).unwrap();
    let lookup = tb.epmd_cli(2, &["lookup", &n1]).unwrap();
    assert!(lookup.status.success(), "lookup on host 2: {lookup:?}");

    let sent_21 = match tb.node(&n2).stop_stream("d21").unwrap() {
        snow_integration::cluster::StreamEnd::Stopped { sent } => sent,
        other => panic!("stream d21 ended {other:?}"),
    };
    let sent_12 = match tb.node(&n1).stop_stream("d12").unwrap() {
        snow_integration::cluster::StreamEnd::Stopped { sent } => sent,
        other => panic!("stream d12 ended {other:?}"),
    };
    testbed::wait_until("both streams delivered", Duration::from_secs(10), || {
        let r1 = tb.node(&n1).report("s")?;
        let r2 = tb.node(&n2).report("s")?;
        assert_eq!((r1.errors, r2.errors), (0, 0), "order errors: {r1:?} {r2:?}");
        Ok(r1.count("d21") == sent_21 && r2.count("d12") == sent_12)
    })
    .unwrap();
    assert!(!tb.node(&n1).saw_nodedown(&n2) && !tb.node(&n2).saw_nodedown(&n1));
    for (node, mark) in [(&n1, marks[0]), (&n2, marks[1])] {
        let t = tb.node(node);
        assert!(
            t.proc.expect_out_since(mark, Duration::ZERO, |l| l.starts_with("NODEDOWN")).is_err(),
            "{node} saw a nodedown"
        );
    }
    eprintln!(
        "scenario d: daemon down for {:?}; running node up again {reregistered:?} after the restart (bound \
         {REREGISTER_WITHIN:?}); streams complete: {sent_21} and {sent_12} messages",
        back.duration_since(killed)
    );
}

/// Scenario e. Three hosts; host 3's node is killed with SIGKILL and started again under the
/// same name. Expected: a link (host 1) and monitors (hosts 1 and 2) on a process of the old node
/// fire (`:noconnection`) within ticktime + 3 s; the new node has another creation, in
/// `snow-epmd list` on every host and in its pids; a message to the old pid is dropped on hosts 1
/// and 2 (no answer within 1 s, although the new node's process has the same number), while the
/// new pid answers; linking to or monitoring the old pid afterwards fires `:noproc` at once.
#[test]
fn e_a_restarted_node_gets_a_new_creation_and_its_old_pids_are_dead_everywhere() {
    let mut tb = testbed("restart", 3, TICK);
    tb.start_all_epmds().unwrap();
    let names = tb.start_mesh(3).unwrap();
    let (n1, n2, n3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let old_creation = listed(&tb, 3, &n3).unwrap().0;
    let old = tb.node(&n3).spawn_holder("p").unwrap();
    tb.node(&n1).spawn_holder("l").unwrap();
    tb.node(&n1).link("l", &old).unwrap();
    tb.node(&n1).spawn_holder("m").unwrap();
    tb.node(&n1).monitor("m", &old).unwrap();
    tb.node(&n2).spawn_holder("m").unwrap();
    tb.node(&n2).monitor("m", &old).unwrap();
    let marks = [tb.node(&n1).mark(), tb.node(&n2).mark()];

    let killed = Instant::now();
    tb.kill_node(&n3);
    let within = Duration::from_secs(TICK) + SLACK;
    let link = seen_after(&mut tb, &n1, marks[0], &format!("EXIT l {old} :noconnection"), killed, within);
    let mon_1 = seen_after(&mut tb, &n1, marks[0], &format!("DOWN m {old} :noconnection"), killed, within);
    let mon_2 = seen_after(&mut tb, &n2, marks[1], &format!("DOWN m {old} :noconnection"), killed, within);

    tb.start_node(3, "n").unwrap();
    let new = tb.node(&n3).spawn_holder("p").unwrap();
    let new_creation =
        testbed::wait_until("every daemon lists the new creation", Duration::from_secs(5) + SLACK, || {
            Ok((1..=3).all(|h| listed(&tb, h, &n3).is_some_and(|(c, s)| c != old_creation && s == "up")))
        })
        .map(|_| listed(&tb, 3, &n3).unwrap().0)
        .unwrap();
    assert!(new.ends_with(&format!(".{new_creation}>")), "the new pid {new} carries creation {new_creation}");
    // Usually the new process even has the old one's number, and only the creation tells them
    // apart; either way, nothing sent to the old pid may reach it.
    let same_number = old.trim_end_matches(|c: char| c != '.') == new.trim_end_matches(|c: char| c != '.');
    for node in [&n1, &n2] {
        assert!(!tb.node(node).ping_pid(&old, Duration::from_secs(1)).unwrap(), "{node}: the old pid answered");
        assert!(tb.node(node).ping_pid(&new, Duration::from_secs(5)).unwrap(), "{node}: the new pid is silent");
        let mark = tb.node(node).mark();
        tb.node(node).spawn_holder("late").unwrap();
        tb.node(node).link("late", &old).unwrap();
        tb.node(node).await_since(mark, &format!("EXIT late {old} :noproc"), Duration::from_secs(5)).unwrap();
        tb.node(node).monitor("late", &old).unwrap();
        tb.node(node).await_since(mark, &format!("DOWN late {old} :noproc"), Duration::from_secs(5)).unwrap();
    }
    eprintln!(
        "scenario e: link fired after {link:?}, monitors after {mon_1:?} and {mon_2:?} (bound {within:?}); \
         creation {old_creation} -> {new_creation} (old and new process have the same number: {same_number})"
    );
}

/// Messages per sender in scenario f (fixed by the scenario).
const BULK_MESSAGES: u64 = 250_000;

/// Scenario f. Three hosts; every frame between any two of them is delayed 5 ms, 1% are dropped
/// and 10% are held 5 ms longer (so later frames overtake them). Two senders on host 1 and two on
/// host 2 each send 250,000 sequence-numbered messages to one receiver on host 3, with
/// backpressure. Expected: all 1,000,000 arrive, each sender's in the order sent (TCP repairs loss
/// and reordering; nothing above it may lose or reorder), and the switch's counters show that it
/// really dropped, delayed and reordered frames. Bounded at 10 minutes; the measured time and
/// rate are printed.
#[test]
fn f_a_million_messages_arrive_complete_and_in_order_under_loss_latency_and_reordering() {
    let mut tb = testbed("lossy", 3, 20);
    tb.start_all_epmds().unwrap();
    let senders = [tb.start_node(1, "n").unwrap(), tb.start_node(2, "n").unwrap()];
    let receiver = tb.start_node(3, "n").unwrap();
    for sender in &senders {
        tb.connect_retrying(sender, &receiver, Duration::from_secs(20)).unwrap();
    }
    let sink = tb.node(&receiver).sink("bulk").unwrap();
    tb.switch("set * * delay_ms=5 loss=0.01 reorder=0.1").unwrap();
    let before = tb.switch_stats().unwrap();
    let start = Instant::now();
    let tags = ["a1", "a2", "b1", "b2"];
    for (i, tag) in tags.iter().enumerate() {
        tb.node(&senders[i / 2]).send_seq(tag, BULK_MESSAGES, &sink).unwrap();
    }
    let limit = Duration::from_secs(600);
    for (i, tag) in tags.iter().enumerate() {
        tb.node(&senders[i / 2]).await_sent(tag, limit).unwrap();
    }
    let sent = start.elapsed();
    let mut report = Default::default();
    testbed::wait_until("every message received", Duration::from_secs(60), || {
        report = tb.node(&receiver).report("bulk")?;
        Ok(tags.iter().all(|t| report.count(t) == BULK_MESSAGES) || report.errors > 0)
    })
    .unwrap_or_else(|e| panic!("{e}: {report:?}"));
    let took = start.elapsed();
    assert_eq!(report.errors, 0, "messages out of order or missing: {report:?}");
    let after = tb.switch_stats().unwrap();
    let delta = |k: &str| after[k] - before[k];
    eprintln!(
        "scenario f: 4 x {BULK_MESSAGES} messages sent in {sent:?}, all received in order after {took:?} \
         ({:.0} msg/s); switch: {} frames forwarded, {} lost, {} delayed, {} reordered",
        (4 * BULK_MESSAGES) as f64 / took.as_secs_f64(),
        delta("forwarded"),
        delta("lost"),
        delta("delayed"),
        delta("reordered"),
    );
    assert!(
        delta("lost") > 0 && delta("delayed") > 0 && delta("reordered") > 0,
        "the switch shaped nothing: {after:?}"
    );
    assert_eq!(after["send_errors"], 0, "the switch failed to forward frames: {after:?}");
}

/// A stream of scenario g: from host `from`'s node to host `to`'s sink.
struct Flow {
    tag: String,
    from: usize,
    to: usize,
}

/// Starts a stream from host `from` to host `to`'s current sink.
fn start_flow(
    tb: &mut Testbed,
    names: &[String],
    sinks: &[String],
    counter: &mut usize,
    from: usize,
    to: usize,
) -> Flow {
    *counter += 1;
    let tag = format!("f{counter}h{from}to{to}");
    tb.node(&names[from - 1]).stream(&tag, &sinks[to - 1], Duration::from_millis(10)).unwrap();
    Flow { tag, from, to }
}

/// Stops `flow` and waits until its sink received everything it sent, in order; how many.
fn stop_and_check_flow(tb: &mut Testbed, names: &[String], flow: &Flow) -> u64 {
    let sent = match tb.node(&names[flow.from - 1]).stop_stream(&flow.tag).unwrap() {
        snow_integration::cluster::StreamEnd::Stopped { sent } => sent,
        other => panic!("stream {} to a node that stayed up ended {other:?}", flow.tag),
    };
    let sink_node = names[flow.to - 1].clone();
    testbed::wait_until(&format!("{} delivered to {sink_node}", flow.tag), Duration::from_secs(10), || {
        let report = tb.node(&sink_node).report("s")?;
        assert_eq!(report.errors, 0, "order errors at {sink_node}: {report:?}");
        Ok(report.count(&flow.tag) == sent)
    })
    .unwrap();
    sent
}

/// Scenario g. Five hosts restarted one at a time (stop the node, kill and restart the daemon,
/// start the node again under its name) while every node streams to every other (one message every
/// 10 ms per pair, each stream monitoring its receiver). Before a host goes, its own streams are
/// stopped and must have arrived in full at the four nodes that stay up. Expected: every message
/// sent to a node that stayed up arrives, in order; every stream to the node being restarted ends
/// by its monitor firing (so each loss is reported) within ticktime + 3 s; the restarted node
/// rejoins the full mesh within 10 s; at the end every stream still running arrives in full.
#[test]
fn g_a_rolling_restart_loses_only_messages_to_restarted_nodes_and_monitors_report_them() {
    let hosts = 5;
    let mut tb = testbed("rolling", hosts, TICK);
    tb.start_all_epmds().unwrap();
    let names = tb.start_mesh(hosts).unwrap();
    let mut sinks: Vec<String> = names.iter().map(|n| tb.node(n).sink("s").unwrap()).collect();
    let mut counter = 0;
    let mut flows = Vec::new();
    for from in 1..=hosts {
        for to in (1..=hosts).filter(|&to| to != from) {
            flows.push(start_flow(&mut tb, &names, &sinks, &mut counter, from, to));
        }
    }
    let (mut delivered, mut reported, mut worst_report, mut worst_rejoin) = (0, 0, Duration::ZERO, Duration::ZERO);
    for k in 1..=hosts {
        std::thread::sleep(Duration::from_millis(300));
        let (outgoing, rest): (Vec<Flow>, Vec<Flow>) = flows.into_iter().partition(|f| f.from == k);
        for flow in &outgoing {
            delivered += stop_and_check_flow(&mut tb, &names, flow);
        }
        let (incoming, others): (Vec<Flow>, Vec<Flow>) = rest.into_iter().partition(|f| f.to == k);
        let stopped = Instant::now();
        tb.stop_node(&names[k - 1]).unwrap();
        for flow in &incoming {
            match tb.node(&names[flow.from - 1]).stream_end(&flow.tag, Duration::from_secs(TICK) + SLACK).unwrap() {
                snow_integration::cluster::StreamEnd::Down { at, reason, .. } => {
                    assert_eq!(reason, ":noconnection", "{}", flow.tag);
                    worst_report = worst_report.max(at.saturating_duration_since(stopped));
                    reported += 1;
                }
                other => panic!("stream {} to the restarted node ended {other:?}", flow.tag),
            }
        }
        tb.kill_epmd(k);
        tb.start_epmd(k, &[]).unwrap();
        let restarted = Instant::now();
        tb.start_node(k, "n").unwrap();
        let seed = if k == 1 { 2 } else { 1 };
        tb.connect_retrying(&names[k - 1], &names[seed - 1], Duration::from_secs(10)).unwrap();
        tb.await_full_mesh(&names, Duration::from_secs(10)).unwrap();
        worst_rejoin = worst_rejoin.max(restarted.elapsed());
        sinks[k - 1] = tb.node(&names[k - 1]).sink("s").unwrap();
        flows = others;
        for other in (1..=hosts).filter(|&o| o != k) {
            flows.push(start_flow(&mut tb, &names, &sinks, &mut counter, k, other));
            flows.push(start_flow(&mut tb, &names, &sinks, &mut counter, other, k));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for flow in &flows {
        delivered += stop_and_check_flow(&mut tb, &names, flow);
    }
    eprintln!(
        "scenario g: {delivered} messages to nodes that stayed up all arrived in order; {reported} streams to \
         restarted nodes ended by their monitor, at most {worst_report:?} after the stop (bound {:?}); restarted \
         hosts rejoined the full mesh at most {worst_rejoin:?} after their daemon restarted",
        Duration::from_secs(TICK) + SLACK
    );
    assert_eq!(reported, hosts * (hosts - 1), "every stream into each restarted node was reported down");
}

/// README.md, whose "A cluster on several hosts" scenario h follows.
const README: &str = include_str!("../../README.md");

/// The commands scenario h runs, as README's "A cluster on several hosts" writes them (hosts,
/// paths and programs substituted); the test fails if README no longer says them.
const README_COOKIE: &str = "snow-epmd gen-cookie > cookie && chmod 600 cookie";
const README_DAEMON: &str = "snow-epmd --listen 4369 --peer db1.example.com:4369 --cookie-file /etc/snow/cookie";
const README_NODE: &str = "SNOW_NODE=app SNOW_COOKIE_FILE=/etc/snow/cookie ./my-snow-program";
const README_PING: &str = "snow-epmd ping app@db1.example.com --cookie-file /etc/snow/cookie";

/// README's openssl recipe (the `sh` block of step 5): the CA part, and the per-host part
/// written for `db1.example.com`.
fn readme_openssl_recipe() -> (String, String) {
    let section = README.split("## A cluster on several hosts").nth(1).expect("README has the section");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("step 5's sh block");
    let block: String = block.lines().map(str::trim).collect::<Vec<_>>().join("\n");
    let at = block.find("openssl req -newkey").expect("the per-host part of the recipe");
    (block[..at].to_owned(), block[at..].to_owned())
}

/// Runs `script` with `sh -e` in `dir` on host `n`.
fn sh(tb: &Testbed, n: usize, dir: &std::path::Path, script: &str) {
    let mut cmd = tb.command(n, "sh");
    cmd.args(["-e", "-c", script]).current_dir(dir);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Scenario h. README's "A cluster on several hosts", step by step, on three hosts named
/// `host1`..`host3` (they resolve through each host's /etc/hosts): one cookie made with
/// `gen-cookie` and `chmod 600`; on every host the daemon exactly as step 2 writes it, seeded
/// with one other host, its data in the default place (`XDG_STATE_HOME`, per host); a node
/// started as step 3 writes it (`SNOW_NODE=app`, which means `app@<hostname>`); then step 6's
/// checks. Expected: `snow-epmd list` on every host shows the three `app` nodes up within
/// 25 gossip rounds (5 s); `snow-epmd ping` from every host answers `pong` from every node.
/// CA-verified variant (step 5): certificates made with README's openssl recipe, one per host;
/// nodes started with `SNOW_TLS_*` answer a ping that presents a certificate of the CA and refuse
/// one without (`TLS with NAME failed`), and connect to each other.
#[test]
fn h_readme_cluster_steps_work_as_written_with_and_without_a_ca() {
    for text in [README_COOKIE, README_DAEMON, README_NODE, README_PING] {
        assert!(README.contains(text), "README no longer says `{text}`: update scenario h");
    }
    let mut tb = testbed("readme", 3, 20);
    let etc = tb.dir.join("etc-snow");
    std::fs::create_dir_all(&etc).unwrap();
    let epmd = tb.programs().epmd.clone();
    let cookie_cmd = README_COOKIE.replace("snow-epmd", &epmd.to_string_lossy());
    sh(&tb, 1, &etc, &cookie_cmd);
    let cookie = etc.join("cookie");
    let mut daemons = Vec::new();
    for n in 1..=3 {
        let seed = if n == 1 { "host2" } else { "host1" };
        let line =
            README_DAEMON.replace("db1.example.com", seed).replace("/etc/snow/cookie", &cookie.to_string_lossy());
        let mut cmd = tb.command(n, &epmd);
        cmd.args(line.split_whitespace().skip(1)).env("XDG_STATE_HOME", tb.dir.join(&format!("state-host{n}")));
        cmd.env("RUST_LOG", "info")
            .env_remove("SNOW_COOKIE")
            .env_remove("SNOW_COOKIE_FILE")
            .env_remove("SNOW_EPMD_PEERS");
        let mut proc = snow_integration::child::ChildProc::spawn(format!("README daemon on host{n}"), cmd).unwrap();
        proc.expect_err(Duration::from_secs(20), |l| l.contains("listening on ")).unwrap();
        daemons.push(proc);
    }
    let start_node = |tb: &mut Testbed, n: usize, short: &str, tls: Option<&std::path::Path>| {
        let mut cmd = tb.command(n, &tb.programs().node);
        for var in [
            "SNOW_EPMD",
            "SNOW_COOKIE",
            "SNOW_DIST_PORT",
            "SNOW_TICKTIME",
            "SNOW_TLS_CERT",
            "SNOW_TLS_KEY",
            "SNOW_TLS_CA",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("SNOW_NODE", short).env("SNOW_COOKIE_FILE", &cookie);
        if let Some(dir) = tls {
            cmd.env("SNOW_TLS_CERT", dir.join(format!("host{n}.pem")))
                .env("SNOW_TLS_KEY", dir.join(format!("host{n}.key")))
                .env("SNOW_TLS_CA", dir.join("ca.pem"));
        }
        tb.start_node_with(n, short, cmd).unwrap()
    };
    let apps: Vec<String> = (1..=3).map(|n| start_node(&mut tb, n, "app", None)).collect();
    assert_eq!(apps, ["app@host1", "app@host2", "app@host3"], "`app` alone means app@<hostname>");
    let listed = testbed::wait_until("every host lists the three app nodes up", GOSSIP_INTERVAL * 25 + SLACK, || {
        Ok((1..=3).all(|n| lists_all_up(&tb, n, &apps).unwrap_or(false)))
    })
    .unwrap();
    let ping = |tb: &Testbed, from: usize, target: &str, extra: &[String]| {
        let line =
            README_PING.replace("app@db1.example.com", target).replace("/etc/snow/cookie", &cookie.to_string_lossy());
        let mut args: Vec<String> = line.split_whitespace().skip(1).map(str::to_owned).collect();
        args.extend_from_slice(extra);
        tb.epmd_cli(from, &args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap()
    };
    for from in 1..=3 {
        for app in &apps {
            let out = ping(&tb, from, app, &[]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && stdout.starts_with(&format!("pong from {app} in ")), "host{from}: {out:?}");
        }
    }

    // Step 5: the CA-verified variant, certificates from README's own recipe.
    let pki = tb.dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let (ca_part, host_part) = readme_openssl_recipe();
    sh(&tb, 1, &pki, &ca_part);
    for n in 1..=3 {
        sh(
            &tb,
            1,
            &pki,
            &host_part.replace("db1.example.com", &format!("host{n}")).replace("db1", &format!("host{n}")),
        );
    }
    let secure: Vec<String> = (1..=3).map(|n| start_node(&mut tb, n, "secure", Some(&pki))).collect();
    testbed::wait_until("every host lists the secure nodes up", GOSSIP_INTERVAL * 25 + SLACK, || {
        Ok((1..=3).all(|n| lists_all_up(&tb, n, &secure).unwrap_or(false)))
    })
    .unwrap();
    for from in 1..=3 {
        let certs: Vec<String> = [
            ("--tls-cert", format!("host{from}.pem")),
            ("--tls-key", format!("host{from}.key")),
            ("--tls-ca", "ca.pem".into()),
        ]
        .into_iter()
        .flat_map(|(flag, file)| [flag.to_owned(), pki.join(file).to_string_lossy().into_owned()])
        .collect();
        for node in &secure {
            let out = ping(&tb, from, node, &certs);
            assert!(out.status.success(), "host{from} pings {node} with a certificate: {out:?}");
            let refused = ping(&tb, from, node, &[]);
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(!refused.status.success() && stderr.contains(&format!("TLS with {node} failed")), "{refused:?}");
        }
    }
    tb.connect_retrying(&secure[1], &secure[0], Duration::from_secs(10)).unwrap();
    tb.connect_retrying(&secure[2], &secure[0], Duration::from_secs(10)).unwrap();
    tb.await_full_mesh(&secure, Duration::from_secs(10)).unwrap();
    eprintln!(
        "scenario h: README's cluster listed everywhere {listed:?} after the last node started; every ping answered"
    );
    drop(daemons);
}

/// How soon after the mesh is back every host must agree on the registry and the groups: two
/// message delays (a GLOBAL_SYNC or GROUP_DISCOVER, then the answer: README, "Global registry"
/// and "Process groups"), well under a millisecond on the testbed's switch; 1 s (plus [`SLACK`])
/// leaves room for the processes' scheduling and our polling.
const CONVERGE: Duration = Duration::from_secs(1);

/// Cuts host `n` off and waits until its node and every other node declared each other down
/// (ticktime + 3 s).
fn partition_host(tb: &mut Testbed, names: &[String], n: usize) -> Duration {
    let marks: Vec<usize> = names.iter().map(|name| tb.node(name).mark()).collect();
    let cut = tb.cut_host(n).unwrap();
    let within = Duration::from_secs(TICK) + SLACK;
    let lone = &names[n - 1];
    let mut worst = Duration::ZERO;
    for (i, name) in names.iter().enumerate().filter(|(_, name)| *name != lone) {
        worst = worst.max(seen_after(tb, name, marks[i], &format!("NODEDOWN {lone}"), cut, within));
        worst = worst.max(seen_after(tb, lone, marks[n - 1], &format!("NODEDOWN {name}"), cut, within));
    }
    worst
}

/// Heals every cut, connects host 1's node to host `n`'s and waits for the full mesh; when the
/// heal began and when the mesh was back.
fn heal_and_mesh(tb: &mut Testbed, names: &[String], n: usize) -> (Instant, Instant) {
    let healed = tb.heal_all().unwrap();
    tb.connect_retrying(&names[0], &names[n - 1], Duration::from_secs(10)).unwrap();
    tb.await_full_mesh(names, Duration::from_secs(10)).unwrap();
    (healed, Instant::now())
}

/// Scenario i. Three hosts, ticktime 2 s; host 3 is cut off, and once both sides declared the
/// other down, each side registers the global name `leader`: host 3 first, host 1 20 ms later
/// (the hosts share one clock). Each side then sees its own holder. Expected after the heal (one
/// `connect`, the mesh does the rest): within 1 s (+3 s slack) of the mesh being back, every host
/// resolves `leader` to host 3's process (the older registration wins: README, "Global registry");
/// host 1's process (trapping exits) gets the exit signal `{:global_name_conflict, :leader,
/// winner}` from the winner, once; the winner is told nothing and answers by name from host 2.
#[test]
fn i_a_global_name_conflict_after_a_partition_heals_resolves_the_same_on_every_host() {
    let mut tb = testbed("gconf", 3, TICK);
    tb.start_all_epmds().unwrap();
    let names = tb.start_mesh(3).unwrap();
    let (n1, n2, n3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let down = partition_host(&mut tb, &names, 3);
    tb.node(&n3).spawn_holder("x").unwrap();
    let older = tb.node(&n3).global_register("leader", "x").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    tb.node(&n1).spawn_holder("y").unwrap();
    let newer = tb.node(&n1).global_register("leader", "y").unwrap();
    testbed::wait_until("each side sees its own holder", CONVERGE + SLACK, || {
        Ok(tb.node(&n2).whereis("leader")?.as_ref() == Some(&newer)
            && tb.node(&n3).whereis("leader")?.as_ref() == Some(&older))
    })
    .unwrap();

    let marks = [tb.node(&n1).mark(), tb.node(&n3).mark()];
    let (healed, meshed) = heal_and_mesh(&mut tb, &names, 3);
    testbed::wait_until("every host resolves leader to the older registration", CONVERGE + SLACK, || {
        for name in &names {
            if tb.node(name).whereis("leader")?.as_ref() != Some(&older) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .unwrap();
    let resolved = meshed.elapsed();
    let notice = format!("EXIT y {older} {{:global_name_conflict, :leader, {older}}}");
    let told = seen_after(&mut tb, &n1, marks[0], &notice, healed, CONVERGE + SLACK);
    assert!(tb.node(&n2).global_ping("leader").unwrap(), "the winner answers by name");
    let exits = |tb: &mut Testbed, node: &str, mark: usize, prefix: &str| {
        let t = tb.node(node);
        t.proc.drain();
        t.proc.seen[mark..].iter().filter(|l| matches!(l, Line::Out(text) if text.starts_with(prefix))).count()
    };
    assert_eq!(exits(&mut tb, &n1, marks[0], "EXIT y "), 1, "the loser is told once");
    assert_eq!(exits(&mut tb, &n3, marks[1], "EXIT x "), 0, "the winner is told nothing");
    eprintln!(
        "scenario i: partition declared on both sides after {down:?}; mesh back {:?} after the heal; every host \
         resolved leader to the older registration {resolved:?} after that (bound {:?}); the loser was told {told:?} \
         after the heal",
        meshed.saturating_duration_since(healed),
        CONVERGE + SLACK
    );
}

/// Scenario j. Three hosts, ticktime 2 s; before the cut, a process on host 1 and one on host 3
/// are in the group `room`. Host 3 is cut off; each side drops the other's member. While cut, a
/// process on each of hosts 1, 2 and 3 joins `room`, and host 3's old member leaves. Expected
/// after the heal (one `connect`): within 1 s (+3 s slack) of the mesh being back, every host
/// holds exactly the four current members (host 1's two, host 2's, host 3's new one) and not the
/// member that left during the cut (README, "Process groups": each node announces its own
/// members when a connection comes up).
#[test]
fn j_groups_joined_on_both_sides_of_a_partition_converge_after_heal() {
    let mut tb = testbed("gconv", 3, TICK);
    tb.start_all_epmds().unwrap();
    let names = tb.start_mesh(3).unwrap();
    let (n1, n2, n3) = (names[0].clone(), names[1].clone(), names[2].clone());
    let members_everywhere = |tb: &mut Testbed, hosts: &[&String], want: &[&String]| {
        let mut want: Vec<String> = want.iter().map(|p| p.to_string()).collect();
        want.sort();
        testbed::wait_until(&format!("{hosts:?} hold room = {want:?}"), CONVERGE + SLACK, || {
            for host in hosts {
                if tb.node(host).members("room")? != want {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .unwrap()
    };
    for (name, label) in [(&n1, "old"), (&n3, "old")] {
        tb.node(name).spawn_holder(label).unwrap();
    }
    let old_1 = tb.node(&n1).join("room", "old").unwrap();
    let old_3 = tb.node(&n3).join("room", "old").unwrap();
    members_everywhere(&mut tb, &[&n1, &n2, &n3], &[&old_1, &old_3]);

    let down = partition_host(&mut tb, &names, 3);
    members_everywhere(&mut tb, &[&n1, &n2], &[&old_1]);
    members_everywhere(&mut tb, &[&n3], &[&old_3]);
    let mut new = Vec::new();
    for name in [&n1, &n2, &n3] {
        tb.node(name).spawn_holder("new").unwrap();
        new.push(tb.node(name).join("room", "new").unwrap());
    }
    tb.node(&n3).leave("room", "old").unwrap();
    members_everywhere(&mut tb, &[&n1, &n2], &[&old_1, &new[0], &new[1]]);
    members_everywhere(&mut tb, &[&n3], &[&new[2]]);

    let (healed, meshed) = heal_and_mesh(&mut tb, &names, 3);
    members_everywhere(&mut tb, &[&n1, &n2, &n3], &[&old_1, &new[0], &new[1], &new[2]]);
    let converged = meshed.elapsed();
    eprintln!(
        "scenario j: partition declared on both sides after {down:?}; mesh back {:?} after the heal; all 3 hosts \
         held the same 4 members {converged:?} after that (bound {:?})",
        meshed.saturating_duration_since(healed),
        CONVERGE + SLACK
    );
}
