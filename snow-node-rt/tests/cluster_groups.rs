//! Process groups across real connections (README, "Process groups"): members on every node,
//! broadcast, join and leave notifications, members that exit or whose node goes down leave on
//! every node, partitions heal, scopes are independent. Several nodes in one OS process.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use snow_node_rt::{GroupError, Node, Pid, Term};
use snow_shared::dist::control::Control;
use support::*;

/// Every node's members of `group` (default scope), once they all are `expected`.
async fn all_see(nodes: &[Node], group: &Term, expected: &[&Pid]) {
    let expected: BTreeSet<Pid> = expected.iter().map(|p| (*p).clone()).collect();
    eventually(&format!("every node sees {group} = {expected:?}"), || {
        nodes.iter().all(|n| n.groups().members(group).into_iter().collect::<BTreeSet<_>>() == expected)
    })
    .await;
}

/// `{reference, change, group, pids}` as a subscriber gets it.
fn notification(reference: &Term, change: &str, group: &Term, pids: &[&Pid]) -> Term {
    Term::tuple([
        reference.clone(),
        Term::atom(change),
        group.clone(),
        Term::List(pids.iter().map(|p| Term::Pid((*p).clone())).collect()),
    ])
}

#[test]
fn members_on_every_node_and_a_broadcast_reaches_each_once() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c", "d"]).await;
        let room = Term::atom("room");
        let members: Vec<(Pid, async_channel::Receiver<Term>)> = nodes.iter().map(collector).collect();
        for (node, (pid, _)) in nodes.iter().zip(&members) {
            node.groups().join(room.clone(), std::slice::from_ref(pid)).unwrap();
        }
        // Joining twice is joining once.
        nodes[0].groups().join(room.clone(), std::slice::from_ref(&members[0].0)).unwrap();
        let all: Vec<&Pid> = members.iter().map(|(p, _)| p).collect();
        all_see(&nodes, &room, &all).await;
        assert_eq!(nodes[1].groups().local_members(&room), vec![members[1].0.clone()]);
        assert_eq!(nodes[2].groups().which_groups(), vec![room.clone()]);
        assert_eq!(nodes[2].groups().which_local_groups(), vec![room.clone()]);
        // A broadcast from a process on d reaches every member once, in order with its sends.
        let sent = in_process(&nodes[3], move |me| async move {
            let room = Term::atom("room");
            let n = me.groups().broadcast(&room, Term::atom("first"));
            me.groups().broadcast(&room, Term::atom("second"));
            n
        })
        .await;
        assert_eq!(sent, 4);
        for (_, rx) in &members {
            assert_eq!(next(rx).await, Term::atom("first"));
            assert_eq!(next(rx).await, Term::atom("second"));
            quiet(rx, "each member gets each broadcast once").await;
        }
        // Leave: gone everywhere; leaving again is NotJoined.
        nodes[1].groups().leave(&room, std::slice::from_ref(&members[1].0)).unwrap();
        let rest: Vec<&Pid> = all.iter().copied().filter(|p| **p != members[1].0).collect();
        all_see(&nodes, &room, &rest).await;
        assert_eq!(
            nodes[1].groups().leave(&room, std::slice::from_ref(&members[1].0)),
            Err(GroupError::NotJoined(room.clone()))
        );
        assert_eq!(nodes[1].groups().which_local_groups(), Vec::<Term>::new());
        shutdown_all(&nodes).await;
    });
}

#[test]
fn only_live_local_processes_join() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b"]).await;
        let remote = idle(&nodes[1]);
        assert_eq!(
            nodes[0].groups().join(Term::atom("g"), std::slice::from_ref(&remote)),
            Err(GroupError::NotLocal(remote))
        );
        let dead = nodes[0].spawn(|_| async {});
        eventually("the process is gone", || !nodes[0].is_alive(&dead)).await;
        assert_eq!(
            nodes[0].groups().join(Term::atom("g"), std::slice::from_ref(&dead)),
            Err(GroupError::NotAlive(dead))
        );
        assert!(nodes[0].groups().which_groups().is_empty());
        assert_eq!(
            Node::local().groups().join(Term::atom("g"), &[]),
            Err(GroupError::NotDistributed),
            "groups need distribution"
        );
        shutdown_all(&nodes).await;
    });
}

#[test]
fn subscribers_hear_of_joins_leaves_exits_and_lost_nodes() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        let room = Term::atom("presence");
        let early = idle(&nodes[0]);
        nodes[0].groups().join(room.clone(), std::slice::from_ref(&early)).unwrap();
        all_see(&nodes, &room, &[&early]).await;
        // A subscriber on b: the members now, then every change b sees.
        let (watcher, rx) = collector(&nodes[1]);
        let (reference, now) = nodes[1].groups().monitor_group(room.clone(), &watcher).unwrap();
        assert_eq!(now, vec![early.clone()]);
        let reference = Term::Ref(reference);
        let (scope_ref, snapshot) = nodes[1].groups().monitor_scope(&watcher).unwrap();
        assert_eq!(snapshot, vec![(room.clone(), vec![early.clone()])]);
        let scope_ref = Term::Ref(scope_ref);
        // A join on c.
        let on_c = idle(&nodes[2]);
        nodes[2].groups().join(room.clone(), std::slice::from_ref(&on_c)).unwrap();
        let mut got = vec![next(&rx).await, next(&rx).await];
        got.sort();
        let mut want =
            vec![notification(&reference, "join", &room, &[&on_c]), notification(&scope_ref, "join", &room, &[&on_c])];
        want.sort();
        assert_eq!(got, want);
        nodes[1].groups().demonitor(&match scope_ref {
            Term::Ref(r) => r,
            _ => unreachable!(),
        });
        // The member on a exits: it leaves everywhere.
        nodes[0].exit(&early, Term::atom("kill"));
        assert_eq!(next(&rx).await, notification(&reference, "leave", &room, &[&early]));
        all_see(&nodes, &room, &[&on_c]).await;
        // c goes down: its member leaves on a and b.
        nodes[2].shutdown().await;
        assert_eq!(next(&rx).await, notification(&reference, "leave", &room, &[&on_c]));
        all_see(&nodes[..2], &room, &[]).await;
        quiet(&rx, "nothing more, and nothing on the ended scope subscription").await;
        shutdown_all(&nodes[..2]).await;
    });
}

#[test]
fn groups_converge_after_a_partition_heals() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b"]).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let room = Term::atom("split");
        let on_a = idle(a);
        a.groups().join(room.clone(), std::slice::from_ref(&on_a)).unwrap();
        all_see(&nodes, &room, &[&on_a]).await;
        assert!(a.disconnect(b.name()).unwrap());
        all_see(std::slice::from_ref(b), &room, &[]).await;
        // Both sides change while apart.
        let on_b = idle(b);
        b.groups().join(room.clone(), std::slice::from_ref(&on_b)).unwrap();
        let late = idle(a);
        a.groups().join(room.clone(), std::slice::from_ref(&late)).unwrap();
        a.groups().leave(&room, std::slice::from_ref(&on_a)).unwrap();
        within(a.connect(b.name())).await.unwrap();
        all_see(&nodes, &room, &[&on_b, &late]).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_process_that_exits_while_its_join_is_in_flight_leaves_everywhere() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        let room = Term::atom("brief");
        // Many processes join and exit at once; none may stay a member anywhere.
        for _ in 0..50 {
            nodes[0].spawn(|me| async move {
                me.groups().join(Term::atom("brief"), std::slice::from_ref(me.pid())).unwrap();
            });
        }
        let stays = idle(&nodes[0]);
        nodes[0].groups().join(room.clone(), std::slice::from_ref(&stays)).unwrap();
        all_see(&nodes, &room, &[&stays]).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn scopes_are_independent_and_run_only_where_started() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        for node in &nodes[..2] {
            assert_eq!(node.start_scope("chat"), Ok(true));
        }
        assert_eq!(nodes[0].start_scope("chat"), Ok(false), "already running");
        let group = Term::atom("g");
        let in_chat = idle(&nodes[0]);
        nodes[0].groups_in("chat").join(group.clone(), std::slice::from_ref(&in_chat)).unwrap();
        eventually("b sees the chat member", || nodes[1].groups_in("chat").members(&group) == vec![in_chat.clone()])
            .await;
        assert!(nodes[1].groups().members(&group).is_empty(), "the default scope is another namespace");
        let on_c = idle(&nodes[2]);
        assert_eq!(
            nodes[2].groups_in("chat").join(group.clone(), std::slice::from_ref(&on_c)),
            Err(GroupError::NoScope(snow_node_rt::Atom::new("chat")))
        );
        assert!(nodes[2].groups_in("chat").members(&group).is_empty());
        // c starts the scope late and learns the members.
        assert_eq!(nodes[2].start_scope("chat"), Ok(true));
        eventually("c learns the chat members", || nodes[2].groups_in("chat").members(&group) == vec![in_chat.clone()])
            .await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_peer_joining_a_process_of_another_node_is_disconnected() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let mut x = raw::Conversation::dial(&a, "x", None).await;
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        let join = |pid: Pid| Control::GroupJoin {
            scope: snow_node_rt::Atom::new("pg"),
            group: Term::atom("g"),
            pids: vec![pid],
        };
        let own = Pid::new(name("x"), 1, 7);
        x.send(&join(own.clone())).await;
        eventually("x's member is seen", || a.groups().members(&Term::atom("g")) == vec![own.clone()]).await;
        x.send(&join(Pid::new(name("c"), 1, 3))).await;
        assert!(raw::closes(&mut x.stream).await, "a closes the connection");
        eventually("x and its members gone", || a.groups().members(&Term::atom("g")).is_empty()).await;
        snow_node_rt::sleep(Duration::from_millis(20)).await;
        a.shutdown().await;
    });
}
