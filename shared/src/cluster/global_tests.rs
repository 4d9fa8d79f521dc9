use super::*;
use crate::dist::control::{decode, DecodeContext};

fn node(text: &str) -> NodeName {
    NodeName::parse(text).unwrap()
}

/// Process `id` of `name@h` in its first start.
fn pid(name: &str, id: u64) -> Pid {
    Pid::new(node(&format!("{name}@h")), id, 1)
}

fn name(text: &str) -> Term {
    Term::atom(text)
}

/// A few registries wired by hand: `connect` reports both sides up, `pump` carries every message
/// (through its byte encoding) until none is left.
struct Net {
    nodes: Vec<Global>,
}

impl Net {
    fn new(names: &[&str]) -> Net {
        Net { nodes: names.iter().map(|n| Global::new(node(&format!("{n}@h")), 1, GlobalConfig::default())).collect() }
    }

    fn name_of(&self, i: usize) -> NodeName {
        self.nodes[i].me.clone()
    }

    fn connect(&mut self, i: usize, j: usize) {
        let (a, b) = (self.name_of(i), self.name_of(j));
        self.nodes[i].node_up(b, 1, Flags::ALL);
        self.nodes[j].node_up(a, 1, Flags::ALL);
    }

    fn disconnect(&mut self, i: usize, j: usize) {
        let (a, b) = (self.name_of(i), self.name_of(j));
        self.nodes[i].node_down(&b);
        self.nodes[j].node_down(&a);
    }

    /// Carries messages until all are delivered; returns how many were.
    fn pump(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(transmit) = self.nodes[i].poll_transmit() {
                    any = true;
                    let from = self.name_of(i);
                    let bytes = transmit.message.to_bytes();
                    for to in &transmit.to {
                        let j = self.nodes.iter().position(|n| &n.me == to).unwrap();
                        let message = decode(&bytes, &DecodeContext::new(Flags::ALL)).unwrap();
                        self.nodes[j].handle_message(&from, message).unwrap();
                        delivered += 1;
                    }
                }
            }
            if !any {
                return delivered;
            }
        }
    }

    fn events(&mut self, i: usize) -> Vec<GlobalEvent> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }

    fn whereis(&self, n: &str) -> Vec<Option<Pid>> {
        self.nodes.iter().map(|g| g.whereis_name(&name(n)).cloned()).collect()
    }
}

fn lost(events: &[GlobalEvent]) -> Vec<&NameLost> {
    events
        .iter()
        .filter_map(|e| match e {
            GlobalEvent::NameLost(l) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn a_registration_is_decided_locally_and_reaches_every_peer_in_one_message_each() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.connect(0, 1);
    net.connect(0, 2);
    net.connect(1, 2);
    net.pump();
    let p = pid("a", 1);
    net.nodes[0].register_name(name("db"), p.clone(), 1_000).unwrap();
    assert_eq!(net.nodes[0].whereis_name(&name("db")), Some(&p), "visible at once where it was made");
    assert_eq!(net.events(0), [GlobalEvent::Watch(p.clone())]);
    assert_eq!(net.pump(), 2, "one message per peer, no answer");
    assert_eq!(net.whereis("db"), [Some(p.clone()), Some(p.clone()), Some(p.clone())]);
    assert_eq!(net.nodes[1].names_of(&p), &[] as &[Term], "names_of lists local processes only");
    assert_eq!(net.nodes[0].names_of(&p), [name("db")]);
    let entry = net.nodes[2].entry(&name("db")).unwrap();
    assert_eq!((entry.origin, entry.generation, HybridClock::wall_ms(entry.stamp)), (node("a@h"), 0, 1_000));
}

#[test]
fn a_taken_name_and_another_nodes_process_are_refused() {
    let mut net = Net::new(&["a", "b"]);
    net.connect(0, 1);
    net.nodes[0].register_name(name("db"), pid("a", 1), 1).unwrap();
    net.pump();
    assert_eq!(
        net.nodes[1].register_name(name("db"), pid("b", 1), 2),
        Err(RegisterError::Taken { name: name("db"), holder: pid("a", 1) })
    );
    assert_eq!(
        net.nodes[0].register_name(name("db"), pid("a", 1), 2),
        Err(RegisterError::Taken { name: name("db"), holder: pid("a", 1) }),
        "as in Erlang, registering a held name again is refused even for its holder"
    );
    assert_eq!(
        net.nodes[0].register_name(name("x"), pid("b", 1), 2),
        Err(RegisterError::NotLocal { pid: pid("b", 1) })
    );
    // A pid of an earlier start of this node is not a live local process either.
    let old = Pid::new(node("a@h"), 1, 0);
    assert_eq!(net.nodes[0].register_name(name("x"), old.clone(), 2), Err(RegisterError::NotLocal { pid: old }));
    assert_eq!(
        net.nodes[1].unregister_name(&name("db")),
        Err(UnregisterError::NotLocal { name: name("db"), holder: pid("a", 1) })
    );
    assert_eq!(net.nodes[1].unregister_name(&name("nobody")), Ok(()));
}

#[test]
fn simultaneous_registrations_resolve_to_the_earlier_one_on_both_sides_and_the_loser_is_told_once() {
    let mut net = Net::new(&["a", "b"]);
    net.connect(0, 1);
    let (pa, pb) = (pid("a", 1), pid("b", 1));
    // Both decide before either hears of the other; b's clock reads one millisecond later.
    net.nodes[0].register_name(name("leader"), pa.clone(), 1_000).unwrap();
    net.nodes[1].register_name(name("leader"), pb.clone(), 1_001).unwrap();
    net.pump();
    assert_eq!(net.whereis("leader"), [Some(pa.clone()), Some(pa.clone())]);
    let (a_events, b_events) = (net.events(0), net.events(1));
    assert!(lost(&a_events).is_empty());
    let reason = Term::tuple([name("global_name_conflict"), name("leader"), Term::Pid(pa.clone())]);
    assert_eq!(
        b_events,
        [
            GlobalEvent::Watch(pb.clone()),
            GlobalEvent::NameLost(NameLost {
                name: name("leader"),
                pid: pb.clone(),
                winner: pa.clone(),
                cause: LossCause::Conflict,
                notice: Some(Notice::Exit(reason)),
            }),
            GlobalEvent::Unwatch(pb.clone()),
        ]
    );
    // The loser's claim is gone everywhere: one claim left on each node.
    for g in &net.nodes {
        assert_eq!(g.claims()[&name("leader")].len(), 1);
    }
}

#[test]
fn with_equal_clocks_the_origin_node_name_decides_the_same_way_everywhere() {
    let mut net = Net::new(&["b", "a", "c"]);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        net.connect(i, j);
    }
    net.nodes[0].register_name(name("n"), pid("b", 7), 500).unwrap();
    net.nodes[1].register_name(name("n"), pid("a", 9), 500).unwrap();
    net.pump();
    assert_eq!(net.whereis("n"), vec![Some(pid("a", 9)); 3], "a@h sorts before b@h");
    assert_eq!(lost(&net.events(0)).len(), 1);
}

#[test]
fn the_message_notice_is_a_message_not_an_exit() {
    let config = GlobalConfig { conflict_notice: ConflictNotice::Message };
    let mut a = Global::new(node("a@h"), 1, config);
    let mut b = Global::new(node("b@h"), 1, config);
    a.node_up(node("b@h"), 1, Flags::ALL);
    b.node_up(node("a@h"), 1, Flags::ALL);
    a.register_name(name("n"), pid("a", 1), 10).unwrap();
    b.register_name(name("n"), pid("b", 1), 20).unwrap();
    let to_a = b.poll_transmit().unwrap();
    a.handle_message(&node("b@h"), to_a.message).unwrap();
    let events: Vec<GlobalEvent> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.iter().all(|e| !matches!(e, GlobalEvent::NameLost(_))), "a's claim is older: a keeps it");
    let to_b = a.poll_transmit().unwrap();
    b.handle_message(&node("a@h"), to_b.message).unwrap();
    let events: Vec<GlobalEvent> = std::iter::from_fn(|| b.poll_event()).collect();
    let reason = Term::tuple([name("global_name_conflict"), name("n"), Term::Pid(pid("a", 1))]);
    assert_eq!(lost(&events)[0].notice, Some(Notice::Message(reason)));
}

#[test]
fn a_registration_made_after_seeing_another_never_wins_against_it_even_with_a_slow_clock() {
    // a's clock is far ahead of b's. a registers; b sees it; the link drops (b forgets a's claim)
    // and b registers the same name. When they meet again, a's registration wins, because b's
    // stamp is above everything b had seen.
    let mut net = Net::new(&["a", "b"]);
    net.connect(0, 1);
    net.nodes[0].register_name(name("n"), pid("a", 1), 90_000).unwrap();
    net.pump();
    net.disconnect(0, 1);
    net.nodes[1].register_name(name("n"), pid("b", 1), 1_000).unwrap();
    let b_stamp = net.nodes[1].entry(&name("n")).unwrap().stamp;
    assert!(HybridClock::wall_ms(b_stamp) >= 90_000, "b's stamp follows what it saw, not its clock");
    net.connect(0, 1);
    net.pump();
    assert_eq!(net.whereis("n"), [Some(pid("a", 1)), Some(pid("a", 1))]);
    assert_eq!(lost(&net.events(1)).len(), 1);
}

#[test]
fn an_exit_withdraws_the_processs_names_everywhere() {
    let mut net = Net::new(&["a", "b"]);
    net.connect(0, 1);
    let p = pid("a", 1);
    net.nodes[0].register_name(name("x"), p.clone(), 1).unwrap();
    net.nodes[0].register_name(name("y"), p.clone(), 2).unwrap();
    net.pump();
    assert_eq!(net.nodes[1].len(), 2);
    net.events(0);
    net.nodes[0].process_exited(&p);
    assert!(net.events(0).is_empty(), "no Unwatch for a process that is gone");
    net.nodes[0].process_exited(&pid("b", 1));
    net.nodes[0].process_exited(&p);
    assert_eq!(net.pump(), 2);
    assert!(net.nodes.iter().all(Global::is_empty));
}

#[test]
fn unregister_withdraws_everywhere_and_ends_the_watch() {
    let mut net = Net::new(&["a", "b"]);
    net.connect(0, 1);
    let p = pid("a", 1);
    net.nodes[0].register_name(name("x"), p.clone(), 1).unwrap();
    net.pump();
    net.events(0);
    net.nodes[0].unregister_name(&name("x")).unwrap();
    assert_eq!(net.events(0), [GlobalEvent::Unwatch(p)]);
    net.pump();
    assert_eq!(net.whereis("x"), [None, None]);
}

#[test]
fn a_node_going_down_takes_its_names_with_it_and_brings_them_back_when_it_returns() {
    let mut net = Net::new(&["a", "b", "c"]);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        net.connect(i, j);
    }
    net.nodes[0].register_name(name("x"), pid("a", 1), 1).unwrap();
    net.nodes[1].register_name(name("y"), pid("b", 1), 2).unwrap();
    net.pump();
    net.disconnect(0, 2);
    net.disconnect(1, 2);
    assert_eq!(net.whereis("x"), [Some(pid("a", 1)), Some(pid("a", 1)), None]);
    assert!(net.nodes[2].is_empty());
    net.connect(0, 2);
    net.connect(1, 2);
    net.pump();
    assert_eq!(net.whereis("x"), vec![Some(pid("a", 1)); 3]);
    assert_eq!(net.whereis("y"), vec![Some(pid("b", 1)); 3]);
}

#[test]
fn a_restarted_peer_reported_up_again_loses_its_old_claims() {
    let mut net = Net::new(&["a", "b"]);
    net.connect(0, 1);
    net.nodes[1].register_name(name("y"), pid("b", 1), 2).unwrap();
    net.pump();
    // b restarts (creation 2) and a hears of the new connection before the old one's end.
    net.nodes[1] = Global::new(node("b@h"), 2, GlobalConfig::default());
    net.nodes[0].node_up(node("b@h"), 2, Flags::ALL);
    assert_eq!(net.nodes[0].whereis_name(&name("y")), None);
    // The new start may not speak for the old one's processes.
    let stale = Control::GlobalRegister(GlobalEntry {
        name: name("z"),
        pid: pid("b", 5),
        stamp: 1,
        origin: node("b@h"),
        generation: 0,
    });
    assert!(matches!(net.nodes[0].handle_message(&node("b@h"), stale), Err(PeerError::ForeignPid { .. })));
}

#[test]
fn a_losing_claim_whose_winner_goes_down_takes_the_name_on_the_nodes_that_hold_it() {
    // c holds both claims (a's wins); before b withdraws its own, a goes down.
    let mut c = Global::new(node("c@h"), 1, GlobalConfig::default());
    c.node_up(node("a@h"), 1, Flags::ALL);
    c.node_up(node("b@h"), 1, Flags::ALL);
    let entry =
        |p: Pid, stamp| GlobalEntry { name: name("n"), pid: p.clone(), stamp, origin: p.node().clone(), generation: 0 };
    c.handle_message(&node("a@h"), Control::GlobalRegister(entry(pid("a", 1), 10))).unwrap();
    c.handle_message(&node("b@h"), Control::GlobalRegister(entry(pid("b", 1), 20))).unwrap();
    assert_eq!(c.whereis_name(&name("n")), Some(&pid("a", 1)));
    c.node_down(&node("a@h"));
    assert_eq!(c.whereis_name(&name("n")), Some(&pid("b", 1)));
    c.handle_message(&node("b@h"), Control::GlobalUnregister { name: name("n"), pid: pid("b", 1) }).unwrap();
    assert!(c.is_empty());
}

#[test]
fn re_register_moves_the_name_and_the_old_holder_is_not_sent_a_notice() {
    let mut net = Net::new(&["a", "b", "c"]);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        net.connect(i, j);
    }
    net.nodes[0].register_name(name("svc"), pid("a", 1), 100).unwrap();
    net.pump();
    net.events(0);
    net.nodes[1].re_register_name(name("svc"), pid("b", 1), 200).unwrap();
    assert_eq!(net.nodes[1].whereis_name(&name("svc")), Some(&pid("b", 1)));
    let delivered = net.pump();
    assert_eq!(net.whereis("svc"), vec![Some(pid("b", 1)); 3]);
    assert_eq!(
        net.events(0),
        [
            GlobalEvent::NameLost(NameLost {
                name: name("svc"),
                pid: pid("a", 1),
                winner: pid("b", 1),
                cause: LossCause::Replaced,
                notice: None,
            }),
            GlobalEvent::Unwatch(pid("a", 1)),
        ]
    );
    assert_eq!(delivered, 4, "REGISTER to two peers, UNREGISTER to two: no conflict notices");
    let entry = net.nodes[2].entry(&name("svc")).unwrap();
    assert_eq!((HybridClock::wall_ms(entry.stamp), entry.origin, entry.generation), (100, node("a@h"), 1));
    // Again, on the holder's own node, to another local process.
    net.nodes[1].re_register_name(name("svc"), pid("b", 2), 300).unwrap();
    let events = net.events(1);
    assert_eq!(events[0], GlobalEvent::Watch(pid("b", 1)));
    assert!(events.contains(&GlobalEvent::Watch(pid("b", 2))));
    assert!(events.contains(&GlobalEvent::Unwatch(pid("b", 1))));
    assert_eq!(lost(&events)[0].cause, LossCause::Replaced);
    net.pump();
    assert_eq!(net.whereis("svc"), vec![Some(pid("b", 2)); 3]);
    assert!(net.nodes.iter().all(|g| g.claims()[&name("svc")].len() == 1));
    // Re-registering the holder is a no-op; an unheld name is registered as new.
    net.nodes[1].re_register_name(name("svc"), pid("b", 2), 400).unwrap();
    net.nodes[1].re_register_name(name("new"), pid("b", 2), 400).unwrap();
    assert_eq!(net.nodes[1].entry(&name("new")).unwrap().generation, 0);
}

#[test]
fn a_re_registration_beats_a_concurrent_fresh_registration_only_if_its_lineage_is_older() {
    // Partition {a, b} | {c}: a registers n at t=100, b re-registers it at t=300; c registers n
    // fresh at t=200. The a/b registration started at 100, so it wins; c's process is told of a
    // conflict, not a replacement.
    let mut net = Net::new(&["a", "b", "c"]);
    net.connect(0, 1);
    net.nodes[0].register_name(name("n"), pid("a", 1), 100).unwrap();
    net.pump();
    net.nodes[1].re_register_name(name("n"), pid("b", 1), 300).unwrap();
    net.nodes[2].register_name(name("n"), pid("c", 1), 200).unwrap();
    net.pump();
    net.connect(0, 2);
    net.connect(1, 2);
    net.pump();
    assert_eq!(net.whereis("n"), vec![Some(pid("b", 1)); 3]);
    let c_lost = net.events(2);
    assert_eq!(lost(&c_lost).len(), 1);
    assert_eq!(lost(&c_lost)[0].cause, LossCause::Conflict);
}

#[test]
fn in_an_overlapping_partition_the_node_in_the_middle_resolves_the_conflict() {
    // a - b - c, a and c cannot talk.
    let mut net = Net::new(&["a", "b", "c"]);
    net.connect(0, 1);
    net.connect(1, 2);
    net.nodes[0].register_name(name("n"), pid("a", 1), 100).unwrap();
    net.nodes[2].register_name(name("n"), pid("c", 1), 200).unwrap();
    net.pump();
    let c_events = net.events(2);
    assert_eq!(lost(&c_events).len(), 1, "c learned of its loss from b's GLOBAL_CONFLICT");
    assert_eq!(lost(&c_events)[0].winner, pid("a", 1));
    assert_eq!(net.whereis("n"), [Some(pid("a", 1)), Some(pid("a", 1)), None]);
    assert_eq!(net.nodes[1].claims()[&name("n")].len(), 1, "c's withdrawal reached b");
    // The same when the losing claim arrives at b second.
    net.nodes[2].register_name(name("m"), pid("c", 2), 300).unwrap();
    net.pump();
    net.nodes[0].register_name(name("m"), pid("a", 2), 250).unwrap();
    net.pump();
    assert_eq!(net.whereis("m"), [Some(pid("a", 2)), Some(pid("a", 2)), None]);
    assert_eq!(lost(&net.events(2)).len(), 1);
}

#[test]
fn stale_or_forged_conflict_notices_change_nothing() {
    let mut a = Global::new(node("a@h"), 1, GlobalConfig::default());
    a.node_up(node("b@h"), 1, Flags::ALL);
    a.register_name(name("n"), pid("a", 1), 100).unwrap();
    let held = a.entry(&name("n")).unwrap();
    let notice = |loser: Pid, winner: GlobalEntry| Control::GlobalConflict { loser, winner };
    // A "winner" that does not beat our claim.
    let later = GlobalEntry { stamp: held.stamp + 1, pid: pid("b", 1), origin: node("b@h"), ..held.clone() };
    a.handle_message(&node("b@h"), notice(pid("a", 1), later)).unwrap();
    // A notice about a process that holds no claim on the name.
    let earlier = GlobalEntry { stamp: 1, pid: pid("b", 1), origin: node("b@h"), ..held.clone() };
    a.handle_message(&node("b@h"), notice(pid("a", 2), earlier.clone())).unwrap();
    // A notice naming our own process as the winner.
    let ours = GlobalEntry { pid: pid("a", 3), ..earlier.clone() };
    a.handle_message(&node("b@h"), notice(pid("a", 1), ours)).unwrap();
    assert_eq!(a.whereis_name(&name("n")), Some(&pid("a", 1)));
    // A notice about another node's process is a protocol error.
    assert!(matches!(
        a.handle_message(&node("b@h"), notice(pid("b", 9), earlier.clone())),
        Err(PeerError::ForeignPid { message: "GLOBAL_CONFLICT", .. })
    ));
    // A genuine one takes effect.
    a.handle_message(&node("b@h"), notice(pid("a", 1), earlier)).unwrap();
    assert_eq!(a.whereis_name(&name("n")), None);
}

#[test]
fn peers_speak_only_for_their_own_processes_and_only_when_connected() {
    let mut a = Global::new(node("a@h"), 1, GlobalConfig::default());
    let entry = GlobalEntry { name: name("n"), pid: pid("b", 1), stamp: 5, origin: node("b@h"), generation: 0 };
    assert!(matches!(
        a.handle_message(&node("b@h"), Control::GlobalRegister(entry.clone())),
        Err(PeerError::UnknownPeer { flag: Flags::GLOBAL, .. })
    ));
    a.node_up(node("b@h"), 1, Flags::ALL);
    a.node_up(node("c@h"), 1, Flags::ALL);
    assert!(matches!(
        a.handle_message(&node("c@h"), Control::GlobalRegister(entry.clone())),
        Err(PeerError::ForeignPid { .. })
    ));
    // One foreign entry spoils the whole sync.
    let mixed = vec![GlobalEntry { name: name("ok"), pid: pid("c", 1), ..entry.clone() }, entry.clone()];
    assert!(a.handle_message(&node("c@h"), Control::GlobalSync { entries: mixed }).is_err());
    assert!(a.is_empty());
    assert!(a.handle_message(&node("c@h"), Control::GlobalUnregister { name: name("n"), pid: pid("b", 1) }).is_err());
    assert_eq!(
        a.handle_message(&node("b@h"), Control::Tick),
        Err(PeerError::NotHandled { message: "TICK", handler: "Global" })
    );
    a.handle_message(&node("b@h"), Control::GlobalRegister(entry)).unwrap();
    assert_eq!(a.whereis_name(&name("n")), Some(&pid("b", 1)));
}

#[test]
fn a_peer_without_the_capability_is_never_sent_global_messages() {
    let mut a = Global::new(node("a@h"), 1, GlobalConfig::default());
    a.node_up(node("old@h"), 1, Flags::ALL.without(Flags::GLOBAL));
    a.node_up(node("b@h"), 1, Flags::ALL);
    a.register_name(name("n"), pid("a", 1), 1).unwrap();
    let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, [node("b@h")]);
    // Its messages are refused (the connection's decoder refuses them first).
    let entry = GlobalEntry {
        name: name("m"),
        pid: Pid::new(node("old@h"), 1, 1),
        stamp: 5,
        origin: node("old@h"),
        generation: 0,
    };
    assert!(a.handle_message(&node("old@h"), Control::GlobalRegister(entry)).is_err());
}

#[test]
fn a_large_table_is_synced_in_chunks_of_own_claims_only() {
    let mut a = Global::new(node("a@h"), 1, GlobalConfig::default());
    a.node_up(node("c@h"), 1, Flags::ALL);
    for i in 0..(2 * SYNC_CHUNK as u64 + 10) {
        a.register_name(Term::Int(i as i64), pid("a", i), 1).unwrap();
    }
    let theirs = GlobalEntry { name: name("c"), pid: pid("c", 1), stamp: 5, origin: node("c@h"), generation: 0 };
    a.handle_message(&node("c@h"), Control::GlobalRegister(theirs)).unwrap();
    while a.poll_transmit().is_some() {}
    a.node_up(node("b@h"), 1, Flags::ALL);
    let syncs: Vec<Vec<GlobalEntry>> = std::iter::from_fn(|| a.poll_transmit())
        .map(|t| match t.message {
            Control::GlobalSync { entries } if t.to == [node("b@h")] => entries,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(syncs.iter().map(Vec::len).collect::<Vec<_>>(), [SYNC_CHUNK, SYNC_CHUNK, 10]);
    assert!(syncs.iter().flatten().all(|e| e.pid.node() == &node("a@h")), "only a's own claims");
    // A node with nothing of its own sends nothing.
    let mut empty = Global::new(node("e@h"), 1, GlobalConfig::default());
    empty.node_up(node("b@h"), 1, Flags::ALL);
    assert!(empty.poll_transmit().is_none());
}
