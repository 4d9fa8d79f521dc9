use super::*;
use crate::dist::control::{decode, tag, DecodeContext};

fn node(text: &str) -> NodeName {
    NodeName::parse(text).unwrap()
}

fn pid(name: &str, id: u64) -> Pid {
    Pid::new(node(&format!("{name}@h")), id, 1)
}

fn reference(id: u64) -> Ref {
    Ref::new(node("a@h"), id, 1)
}

fn pg() -> Atom {
    Atom::new("pg")
}

fn rooms() -> Atom {
    Atom::new("rooms")
}

fn group(text: &str) -> Term {
    Term::atom(text)
}

/// A few nodes' groups wired by hand: `connect` reports both sides up, `pump` carries every
/// message (through its byte encoding) until none is left.
struct Net {
    nodes: Vec<Groups>,
    /// Messages carried, per tag.
    carried: Vec<u8>,
}

impl Net {
    /// Nodes running the given scopes.
    fn new(nodes: &[(&str, &[Atom])]) -> Net {
        let nodes = nodes
            .iter()
            .map(|(name, scopes)| {
                let mut g = Groups::new(node(&format!("{name}@h")), 1);
                for scope in *scopes {
                    g.add_scope(scope.clone());
                }
                g
            })
            .collect();
        Net { nodes, carried: Vec::new() }
    }

    fn connect(&mut self, i: usize, j: usize) {
        let (a, b) = (self.nodes[i].me.clone(), self.nodes[j].me.clone());
        self.nodes[i].node_up(b, 1, Flags::ALL);
        self.nodes[j].node_up(a, 1, Flags::ALL);
    }

    fn disconnect(&mut self, i: usize, j: usize) {
        let (a, b) = (self.nodes[i].me.clone(), self.nodes[j].me.clone());
        self.nodes[i].node_down(&b);
        self.nodes[j].node_down(&a);
    }

    fn pump(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(transmit) = self.nodes[i].poll_transmit() {
                    any = true;
                    let from = self.nodes[i].me.clone();
                    let bytes = transmit.message.to_bytes();
                    for to in &transmit.to {
                        let j = self.nodes.iter().position(|n| &n.me == to).unwrap();
                        let message = decode(&bytes, &DecodeContext::new(Flags::ALL)).unwrap();
                        self.carried.push(message.tag());
                        self.nodes[j].handle_message(&from, message).unwrap();
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    fn events(&mut self, i: usize) -> Vec<GroupEvent> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }

    /// Members of a group on each node, sorted.
    fn members(&self, scope: &Atom, g: &str) -> Vec<Vec<Pid>> {
        self.nodes
            .iter()
            .map(|n| {
                let mut pids: Vec<Pid> = n.members(scope, &group(g)).cloned().collect();
                pids.sort();
                pids
            })
            .collect()
    }
}

fn notifications(events: &[GroupEvent]) -> Vec<(Change, Vec<Pid>)> {
    events
        .iter()
        .filter_map(|e| match e {
            GroupEvent::Notify(n) => {
                let mut pids = n.pids.clone();
                pids.sort();
                Some((n.change, pids))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_join_is_announced_only_to_the_peers_that_run_its_scope() {
    let mut net = Net::new(&[("a", &[pg(), rooms()]), ("b", &[pg()]), ("c", &[pg(), rooms()])]);
    net.connect(0, 1);
    net.connect(0, 2);
    net.connect(1, 2);
    net.pump();
    net.carried.clear();
    net.nodes[0].join(&rooms(), group("lobby"), &[pid("a", 1)]).unwrap();
    net.pump();
    assert_eq!(net.carried, [tag::GROUP_JOIN], "c runs rooms, b does not");
    assert_eq!(net.members(&rooms(), "lobby"), [vec![pid("a", 1)], vec![], vec![pid("a", 1)]]);
    net.carried.clear();
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 1), pid("a", 2)]).unwrap();
    net.pump();
    assert_eq!(net.carried, [tag::GROUP_JOIN, tag::GROUP_JOIN]);
    assert_eq!(net.members(&pg(), "g"), vec![vec![pid("a", 1), pid("a", 2)]; 3]);
}

#[test]
fn lookups_answer_from_the_local_view() {
    let mut net = Net::new(&[("a", &[pg()]), ("b", &[pg()])]);
    net.connect(0, 1);
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 1), pid("a", 2)]).unwrap();
    net.nodes[1].join(&pg(), group("g"), &[pid("b", 1)]).unwrap();
    net.nodes[1].join(&pg(), group("h"), &[pid("b", 2)]).unwrap();
    net.pump();
    let a = &net.nodes[0];
    assert_eq!(a.member_count(&pg(), &group("g")), 3);
    let mut local = a.local_members(&pg(), &group("g")).to_vec();
    local.sort();
    assert_eq!(local, [pid("a", 1), pid("a", 2)]);
    let mut by_node: Vec<(NodeName, usize)> =
        a.members_by_node(&pg(), &group("g")).map(|(n, pids)| (n.clone(), pids.len())).collect();
    by_node.sort();
    assert_eq!(by_node, [(node("a@h"), 2), (node("b@h"), 1)]);
    let mut groups: Vec<&Term> = a.which_groups(&pg()).collect();
    groups.sort();
    assert_eq!(groups, [&group("g"), &group("h")]);
    assert_eq!(a.which_local_groups(&pg()).collect::<Vec<_>>(), [&group("g")]);
    // Unknown scope or group: empty, not an error.
    assert_eq!(a.members(&rooms(), &group("g")).count(), 0);
    assert_eq!(a.members(&pg(), &group("none")).count(), 0);
    assert!(a.local_members(&pg(), &group("h")).is_empty());
    assert_eq!(a.which_groups(&rooms()).count(), 0);
}

#[test]
fn requests_check_the_scope_and_that_every_pid_is_local() {
    let mut net = Net::new(&[("a", &[pg()])]);
    let a = &mut net.nodes[0];
    assert_eq!(a.join(&rooms(), group("g"), &[pid("a", 1)]), Err(GroupError::NoScope { scope: rooms() }));
    assert_eq!(a.join(&pg(), group("g"), &[pid("a", 1), pid("b", 1)]), Err(GroupError::NotLocal { pid: pid("b", 1) }));
    assert_eq!(a.members(&pg(), &group("g")).count(), 0, "all or nothing");
    a.join(&pg(), group("g"), &[pid("a", 1)]).unwrap();
    a.join(&pg(), group("g"), &[pid("a", 1)]).unwrap();
    a.join(&pg(), group("empty"), &[]).unwrap();
    assert_eq!(a.member_count(&pg(), &group("g")), 1, "a set: joining twice is joining once");
    assert_eq!(a.which_groups(&pg()).count(), 1, "joining nobody makes no group");
    assert_eq!(a.leave(&pg(), &group("g"), &[pid("a", 2)]), Err(GroupError::NotJoined { group: group("g") }));
    a.leave(&pg(), &group("g"), &[pid("a", 1), pid("a", 2)]).unwrap();
    assert_eq!(a.which_groups(&pg()).count(), 0, "an empty group is gone");
    assert!(!a.add_scope(pg()), "already running");
    assert!(a.has_scope(&pg()) && !a.has_scope(&rooms()));
    let events = net.events(0);
    assert_eq!(events, [GroupEvent::Watch(pid("a", 1)), GroupEvent::Unwatch(pid("a", 1))]);
}

#[test]
fn an_exit_leaves_every_group_everywhere() {
    let mut net = Net::new(&[("a", &[pg(), rooms()]), ("b", &[pg(), rooms()])]);
    net.connect(0, 1);
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 1), pid("a", 2)]).unwrap();
    net.nodes[0].join(&rooms(), group("r"), &[pid("a", 1)]).unwrap();
    // The exit comes before the joins were delivered: the leaves follow them on the same link.
    net.nodes[0].process_exited(&pid("a", 1));
    net.pump();
    assert_eq!(net.members(&pg(), "g"), vec![vec![pid("a", 2)]; 2]);
    assert_eq!(net.members(&rooms(), "r"), vec![vec![]; 2]);
    let events = net.events(0);
    assert!(!events.contains(&GroupEvent::Unwatch(pid("a", 1))), "no Unwatch for a process that is gone");
    net.nodes[0].process_exited(&pid("b", 7));
}

#[test]
fn a_node_that_goes_down_leaves_every_group_and_returns_with_its_current_members() {
    let mut net = Net::new(&[("a", &[pg()]), ("b", &[pg()]), ("c", &[pg()])]);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        net.connect(i, j);
    }
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 1)]).unwrap();
    net.nodes[1].join(&pg(), group("g"), &[pid("b", 1)]).unwrap();
    net.pump();
    // b is cut off; both sides change.
    net.disconnect(0, 1);
    net.disconnect(1, 2);
    assert_eq!(net.members(&pg(), "g")[0], [pid("a", 1)]);
    net.nodes[1].join(&pg(), group("g"), &[pid("b", 2)]).unwrap();
    net.nodes[1].leave(&pg(), &group("g"), &[pid("b", 1)]).unwrap();
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 2)]).unwrap();
    net.pump();
    net.connect(0, 1);
    net.connect(1, 2);
    net.pump();
    assert_eq!(net.members(&pg(), "g"), vec![vec![pid("a", 1), pid("a", 2), pid("b", 2)]; 3]);
}

#[test]
fn a_scope_started_later_exchanges_members_both_ways() {
    // b starts `rooms` after connecting, and joins before a's answer arrives.
    let mut net = Net::new(&[("a", &[pg(), rooms()]), ("b", &[pg()])]);
    net.connect(0, 1);
    net.nodes[0].join(&rooms(), group("r"), &[pid("a", 1)]).unwrap();
    net.pump();
    net.carried.clear();
    assert!(net.nodes[1].add_scope(rooms()));
    net.nodes[1].join(&rooms(), group("r"), &[pid("b", 1)]).unwrap();
    net.pump();
    assert_eq!(net.carried, [tag::GROUP_DISCOVER, tag::GROUP_SYNC, tag::GROUP_SYNC]);
    assert_eq!(net.members(&rooms(), "r"), vec![vec![pid("a", 1), pid("b", 1)]; 2]);
    // From now on, joins go both ways.
    net.nodes[0].join(&rooms(), group("r"), &[pid("a", 2)]).unwrap();
    net.nodes[1].join(&rooms(), group("r"), &[pid("b", 2)]).unwrap();
    net.pump();
    assert_eq!(net.members(&rooms(), "r")[0], net.members(&rooms(), "r")[1]);
    assert_eq!(net.members(&rooms(), "r")[0].len(), 4);
}

#[test]
fn connecting_costs_one_discover_and_one_sync_per_scope_each_way() {
    let mut net = Net::new(&[("a", &[pg(), rooms()]), ("b", &[pg(), rooms()])]);
    net.connect(0, 1);
    net.pump();
    let mut carried = net.carried.clone();
    carried.sort_unstable();
    let expected: Vec<u8> = [tag::GROUP_SYNC; 4].into_iter().chain([tag::GROUP_DISCOVER; 4]).collect();
    assert_eq!(carried, expected);
}

#[test]
fn subscribers_see_every_change_of_the_local_view() {
    let mut net = Net::new(&[("a", &[pg()]), ("b", &[pg()])]);
    net.connect(0, 1);
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 1)]).unwrap();
    net.pump();
    let watcher = pid("a", 100);
    let now = net.nodes[0].monitor_group(&pg(), group("g"), watcher.clone(), reference(1)).unwrap();
    assert_eq!(now, [pid("a", 1)]);
    let scope_now = net.nodes[0].monitor_scope(&pg(), watcher.clone(), reference(2)).unwrap();
    assert_eq!(scope_now, [(group("g"), vec![pid("a", 1)])]);
    assert_eq!(net.events(0), [GroupEvent::Watch(pid("a", 1)), GroupEvent::Watch(watcher.clone())]);
    // A remote join, a local leave, a remote node going down.
    net.nodes[1].join(&pg(), group("g"), &[pid("b", 1), pid("b", 2)]).unwrap();
    net.nodes[1].join(&pg(), group("other"), &[pid("b", 3)]).unwrap();
    net.pump();
    net.nodes[0].leave(&pg(), &group("g"), &[pid("a", 1)]).unwrap();
    net.disconnect(0, 1);
    let events = net.events(0);
    let by_ref = |r: u64| -> Vec<(Change, Vec<Pid>)> {
        notifications(
            &events
                .iter()
                .filter(|e| matches!(e, GroupEvent::Notify(n) if n.reference == reference(r)))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    let b12 = vec![pid("b", 1), pid("b", 2)];
    assert_eq!(
        by_ref(1),
        [(Change::Join, b12.clone()), (Change::Leave, vec![pid("a", 1)]), (Change::Leave, b12.clone())]
    );
    assert_eq!(by_ref(2).len(), 5, "the scope subscription also sees group `other` come and go");
    let GroupEvent::Notify(first) = &events[0] else { panic!("{events:?}") };
    assert_eq!(
        first.message(),
        Term::tuple([
            Term::Ref(first.reference.clone()),
            Term::atom("join"),
            group("g"),
            Term::List(first.pids.iter().cloned().map(Term::Pid).collect())
        ])
    );
    // Demonitor one; the watcher's exit ends the other.
    assert!(net.nodes[0].demonitor(&pg(), &reference(1)));
    assert!(!net.nodes[0].demonitor(&pg(), &reference(1)));
    net.nodes[0].process_exited(&watcher);
    net.nodes[0].join(&pg(), group("g"), &[pid("a", 5)]).unwrap();
    assert!(notifications(&net.events(0)).is_empty(), "no subscriber left");
    assert_eq!(
        net.nodes[0].monitor_scope(&pg(), pid("b", 1), reference(3)),
        Err(GroupError::NotLocal { pid: pid("b", 1) })
    );
}

#[test]
fn demonitoring_the_last_subscription_of_a_process_ends_its_watch() {
    let mut net = Net::new(&[("a", &[pg()])]);
    let watcher = pid("a", 1);
    net.nodes[0].monitor_group(&pg(), group("g"), watcher.clone(), reference(1)).unwrap();
    assert!(net.nodes[0].demonitor(&pg(), &reference(1)));
    assert_eq!(net.events(0), [GroupEvent::Watch(watcher.clone()), GroupEvent::Unwatch(watcher)]);
    assert!(!net.nodes[0].demonitor(&rooms(), &reference(1)));
}

#[test]
fn a_sync_replaces_what_was_known_of_its_sender() {
    let mut a = Groups::new(node("a@h"), 1);
    a.add_scope(pg());
    a.node_up(node("b@h"), 1, Flags::ALL);
    let from = node("b@h");
    a.handle_message(&from, Control::GroupJoin { scope: pg(), group: group("g"), pids: vec![pid("b", 1)] }).unwrap();
    a.handle_message(&from, Control::GroupJoin { scope: pg(), group: group("h"), pids: vec![pid("b", 2)] }).unwrap();
    let sync = Control::GroupSync {
        scope: pg(),
        groups: vec![
            (group("g"), vec![pid("b", 3), pid("b", 3)]),
            (group("k"), vec![pid("b", 4)]),
            (group("e"), vec![]),
        ],
    };
    a.handle_message(&from, sync).unwrap();
    assert_eq!(a.members(&pg(), &group("g")).collect::<Vec<_>>(), [&pid("b", 3)]);
    assert_eq!(a.member_count(&pg(), &group("h")), 0);
    assert_eq!(a.member_count(&pg(), &group("k")), 1);
    let mut groups: Vec<&Term> = a.which_groups(&pg()).collect();
    groups.sort();
    assert_eq!(groups, [&group("g"), &group("k")], "no empty group is kept");
    a.handle_message(&from, Control::GroupLeave { scope: pg(), group: group("k"), pids: vec![pid("b", 4)] }).unwrap();
    a.handle_message(&from, Control::GroupLeave { scope: pg(), group: group("zz"), pids: vec![pid("b", 4)] }).unwrap();
    assert_eq!(a.which_groups(&pg()).count(), 1);
}

#[test]
fn peers_speak_only_for_their_own_processes_and_other_scopes_are_ignored() {
    let mut a = Groups::new(node("a@h"), 1);
    a.add_scope(pg());
    let join = |p: Pid| Control::GroupJoin { scope: pg(), group: group("g"), pids: vec![p] };
    assert!(matches!(
        a.handle_message(&node("b@h"), join(pid("b", 1))),
        Err(PeerError::UnknownPeer { flag: Flags::GROUPS, .. })
    ));
    a.node_up(node("b@h"), 1, Flags::ALL);
    assert!(matches!(a.handle_message(&node("b@h"), join(pid("c", 1))), Err(PeerError::ForeignPid { .. })));
    let stale = Pid::new(node("b@h"), 1, 7);
    assert!(a.handle_message(&node("b@h"), join(stale.clone())).is_err());
    let sync = Control::GroupSync { scope: pg(), groups: vec![(group("g"), vec![pid("b", 1), stale])] };
    assert!(a.handle_message(&node("b@h"), sync).is_err());
    assert_eq!(a.member_count(&pg(), &group("g")), 0, "nothing of a refused message is kept");
    let other = Control::GroupJoin { scope: rooms(), group: group("g"), pids: vec![pid("b", 1)] };
    assert_eq!(a.handle_message(&node("b@h"), other), Ok(()));
    assert_eq!(a.which_groups(&rooms()).count(), 0);
    assert_eq!(a.handle_message(&node("b@h"), Control::GroupDiscover { scope: rooms() }), Ok(()));
    assert!(a.poll_transmit().is_some_and(|t| matches!(t.message, Control::GroupDiscover { .. })), "a's own discover");
    assert!(a.poll_transmit().is_none(), "no answer for a scope a does not run");
    assert_eq!(
        a.handle_message(&node("b@h"), Control::Tick),
        Err(PeerError::NotHandled { message: "TICK", handler: "Groups" })
    );
}

#[test]
fn a_peer_without_the_capability_is_never_sent_group_messages() {
    let mut a = Groups::new(node("a@h"), 1);
    a.add_scope(pg());
    a.node_up(node("old@h"), 1, Flags::ALL.without(Flags::GROUPS));
    a.join(&pg(), group("g"), &[pid("a", 1)]).unwrap();
    assert!(a.poll_transmit().is_none());
    a.add_scope(rooms());
    assert!(a.poll_transmit().is_none());
}
