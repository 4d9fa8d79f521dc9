//! The global registry across real connections (README, "Global registry"): a name maps to one
//! pid on every node, disappears everywhere when its process exits or its node goes down, and a
//! conflict (both sides of a partition, or the same instant) is resolved the same way on every
//! node with the loser told. Several nodes in one OS process; partitions are cut connections
//! (`disconnect`), the nodes keep running.

mod support;

use std::time::{Duration, Instant};

use snow_node_rt::dist::ConflictNotice;
use snow_node_rt::{GlobalError, Node, NodeName, Pid, SendError, Term};
use snow_shared::dist::control::{tag, Control, GlobalEntry};
use snow_shared::dist::Flags;
use support::*;

fn conflict(name: &Term, winner: &Pid) -> Term {
    Term::tuple([Term::atom("global_name_conflict"), name.clone(), Term::Pid(winner.clone())])
}

/// Every node's answer for `name`, once they all agree on `expected`.
async fn all_see(nodes: &[Node], name: &Term, expected: Option<&Pid>) {
    eventually(&format!("every node sees {name} -> {expected:?}"), || {
        nodes.iter().all(|n| n.global().whereis_name(name).as_ref() == expected)
    })
    .await;
}

/// A process on `node` that traps exits and forwards what it receives.
fn trapping(node: &Node) -> (Pid, async_channel::Receiver<Term>) {
    let (pid, rx) = forwarder(node, |me, tx| {
        me.trap_exit(true);
        let _ = tx.try_send(Term::atom("trapping"));
    });
    // An exit is a message only once the process traps: wait for that before anyone can send it
    // one (a conflict's exit could otherwise kill it before it ran at all).
    let deadline = Instant::now() + WAIT;
    while rx.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rx.try_recv().ok(), Some(Term::atom("trapping")), "{pid} did not start within {WAIT:?}");
    (pid, rx)
}

#[test]
fn a_name_is_seen_on_every_node_and_goes_when_its_process_exits() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c", "d"]).await;
        let (svc, rx) = collector(&nodes[0]);
        let name = Term::atom("svc");
        nodes[0].global().register_name(name.clone(), &svc).unwrap();
        // Read your writes: visible on the registering node at once.
        assert_eq!(nodes[0].global().whereis_name(&name), Some(svc.clone()));
        all_see(&nodes, &name, Some(&svc)).await;
        assert_eq!(nodes[3].global().registered_names(), vec![name.clone()]);
        // Sent by name from another node, from outside and from inside a process.
        assert_eq!(nodes[3].global().send(&name, Term::atom("hello")), Ok(svc.clone()));
        assert_eq!(next(&rx).await, Term::atom("hello"));
        let sent =
            in_process(&nodes[2], |me| async move { me.global().send(&Term::atom("svc"), Term::atom("hi")) }).await;
        assert_eq!(sent, Ok(svc.clone()));
        assert_eq!(next(&rx).await, Term::atom("hi"));
        // The process exits: gone everywhere, and sending by name fails.
        nodes[0].exit(&svc, Term::atom("kill"));
        all_see(&nodes, &name, None).await;
        assert!(nodes.iter().all(|n| n.global().registered_names().is_empty()));
        assert_eq!(nodes[1].global().send(&name, Term::atom("late")), Err(SendError::NotRegistered(name.to_string())));
        shutdown_all(&nodes).await;
    });
}

#[test]
fn registration_rules_taken_foreign_dead_and_who_may_unregister() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        let name = Term::atom("leader");
        let first = idle(&nodes[0]);
        let second = idle(&nodes[1]);
        nodes[0].global().register_name(name.clone(), &first).unwrap();
        all_see(&nodes, &name, Some(&first)).await;
        // Taken, as known on another node.
        assert_eq!(
            nodes[1].global().register_name(name.clone(), &second),
            Err(GlobalError::Taken { name: name.clone(), holder: first.clone() })
        );
        // Only local processes, only live ones.
        assert_eq!(
            nodes[0].global().register_name(Term::atom("x"), &second),
            Err(GlobalError::NotLocal(second.clone()))
        );
        let dead = nodes[2].spawn(|_| async {});
        eventually("the process is gone", || !nodes[2].is_alive(&dead)).await;
        assert_eq!(nodes[2].global().register_name(Term::atom("x"), &dead), Err(GlobalError::NotAlive(dead.clone())));
        // Only the holder's node withdraws the name.
        assert_eq!(
            nodes[1].global().unregister_name(&name),
            Err(GlobalError::HeldElsewhere { name: name.clone(), holder: first.clone() })
        );
        nodes[0].global().unregister_name(&name).unwrap();
        all_see(&nodes, &name, None).await;
        assert_eq!(nodes[0].global().unregister_name(&name), Ok(()), "a name nobody holds unregisters fine");
        // re_register_name moves a name between processes of one node, everywhere.
        let third = idle(&nodes[1]);
        nodes[1].global().register_name(name.clone(), &second).unwrap();
        all_see(&nodes, &name, Some(&second)).await;
        nodes[1].global().re_register_name(name.clone(), &third).unwrap();
        all_see(&nodes, &name, Some(&third)).await;
        assert!(nodes[1].is_alive(&second), "the previous holder is not told, as in Erlang");
        // Any term can be a name.
        let tuple_name = Term::tuple([Term::atom("shard"), Term::Int(7)]);
        nodes[2].global().register_name(tuple_name.clone(), &idle(&nodes[2])).unwrap();
        eventually("tuple name seen", || nodes[0].global().whereis_name(&tuple_name).is_some()).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_node_that_goes_down_takes_its_names_with_it() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        let name = Term::atom("on_c");
        let holder = idle(&nodes[2]);
        nodes[2].global().register_name(name.clone(), &holder).unwrap();
        all_see(&nodes, &name, Some(&holder)).await;
        nodes[2].shutdown().await;
        all_see(&nodes[..2], &name, None).await;
        assert!(nodes[2].is_alive(&holder), "the process itself still runs on its node");
        shutdown_all(&nodes[..2]).await;
    });
}

#[test]
fn a_partition_conflict_is_resolved_the_same_everywhere_and_the_loser_is_told() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b"]).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        assert!(a.disconnect(b.name()).unwrap());
        eventually("partitioned", || a.nodes().is_empty() && b.nodes().is_empty()).await;
        let name = Term::atom("singleton");
        let (on_a, a_rx) = trapping(a);
        let (on_b, b_rx) = trapping(b);
        a.global().register_name(name.clone(), &on_a).unwrap();
        // Stamps are milliseconds: make a's registration clearly the older one.
        snow_node_rt::sleep(Duration::from_millis(5)).await;
        b.global().register_name(name.clone(), &on_b).unwrap();
        assert_eq!(b.global().whereis_name(&name), Some(on_b.clone()), "each side has its own holder");
        // Heal: the older registration wins on both nodes, and only the loser hears of it.
        within(a.connect(b.name())).await.unwrap();
        all_see(&nodes, &name, Some(&on_a)).await;
        assert_eq!(next(&b_rx).await, exit_msg(&on_a, conflict(&name, &on_a)));
        quiet(&a_rx, "the winner is told nothing").await;
        quiet(&b_rx, "the loser is told once").await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_conflict_seen_only_by_a_node_in_the_middle_is_still_resolved() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        // a and b cannot see each other; c sees both (overlapping partitions).
        assert!(a.disconnect(b.name()).unwrap());
        eventually("a and b apart", || !a.nodes().contains(b.name()) && !b.nodes().contains(a.name())).await;
        let name = Term::atom("middle");
        let (on_a, _a_rx) = trapping(a);
        let (on_b, b_rx) = trapping(b);
        a.global().register_name(name.clone(), &on_a).unwrap();
        snow_node_rt::sleep(Duration::from_millis(5)).await;
        // b learned a's claim through nobody, so it registers too; c holds both claims.
        b.global().register_name(name.clone(), &on_b).unwrap();
        assert_eq!(next(&b_rx).await, exit_msg(&on_a, conflict(&name, &on_a)), "c tells b's node");
        eventually("c answers with the winner", || c.global().whereis_name(&name) == Some(on_a.clone())).await;
        eventually("b withdrew its claim", || b.global().whereis_name(&name).is_none()).await;
        assert_eq!(a.global().whereis_name(&name), Some(on_a.clone()));
        assert!(!a.nodes().contains(b.name()), "the registry never reconnects a partition by itself");
        shutdown_all(&nodes).await;
    });
}

#[test]
fn simultaneous_registrations_end_with_one_holder_and_every_loser_told() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c", "d"]).await;
        let name = Term::atom("race");
        // Each node registers its own process at the same time, with nothing in between.
        let contenders: Vec<(Pid, async_channel::Receiver<Term>)> = nodes.iter().map(trapping).collect();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(nodes.len()));
        let threads: Vec<_> = nodes
            .iter()
            .zip(&contenders)
            .map(|(node, (pid, _))| {
                let (node, pid, name, barrier) = (node.clone(), pid.clone(), name.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    node.global().register_name(name, &pid).is_ok()
                })
            })
            .collect();
        let accepted: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(accepted.iter().any(|ok| *ok), "some registration was accepted");
        // One winner everywhere; every accepted loser is told, once.
        eventually("one holder everywhere", || {
            let seen: Vec<Option<Pid>> = nodes.iter().map(|n| n.global().whereis_name(&name)).collect();
            seen[0].is_some() && seen.iter().all(|s| *s == seen[0])
        })
        .await;
        let winner = nodes[0].global().whereis_name(&name).unwrap();
        let pids: Vec<Pid> = contenders.iter().map(|(pid, _)| pid.clone()).collect();
        for ((pid, rx), ok) in contenders.iter().zip(&accepted) {
            if *ok && *pid != winner {
                // Told by the claim that beat it (the final winner, or one that lost to it later).
                let told = next(rx).await;
                assert!(
                    pids.iter().any(|by| *by != *pid && told == exit_msg(by, conflict(&name, by))),
                    "{pid} was told {told}"
                );
            }
            quiet(rx, "told at most once, the winner never").await;
        }
        shutdown_all(&nodes).await;
    });
}

#[test]
fn the_loser_may_be_told_by_a_message_instead() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a").global_conflict_notice(ConflictNotice::Message).start().await.unwrap();
        let b = node(&epmd, "b").await;
        let name = Term::atom("notice");
        // b's registration is the older one: a's process loses, and a tells it by a message.
        let on_b = idle(&b);
        b.global().register_name(name.clone(), &on_b).unwrap();
        snow_node_rt::sleep(Duration::from_millis(5)).await;
        let (on_a, a_rx) = collector(&a);
        a.global().register_name(name.clone(), &on_a).unwrap();
        within(a.connect(b.name())).await.unwrap();
        assert_eq!(next(&a_rx).await, conflict(&name, &on_b));
        assert!(a.is_alive(&on_a), "a message does not stop the process");
        all_see(&[a.clone(), b.clone()], &name, Some(&on_b)).await;
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_node_that_is_not_distributed_has_no_global_registry() {
    run(async {
        let node = Node::local();
        let pid = idle(&node);
        assert_eq!(node.global().register_name(Term::atom("x"), &pid), Err(GlobalError::NotDistributed));
        assert_eq!(node.global().whereis_name(&Term::atom("x")), None);
        assert_eq!(node.global().send(&Term::atom("x"), Term::atom("nil")), Err(SendError::NotDistributed));
    });
}

#[test]
fn a_peer_without_the_capability_is_never_sent_registry_messages() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let flags = Flags::FRAGMENTS.with(Flags::SPAWN).with(Flags::EXTENSIONS);
        let mut x = raw::Conversation::dial(&a, "x", Some(flags)).await;
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        a.global().register_name(Term::atom("quiet"), &idle(&a)).unwrap();
        while let Some(msg) = x.next_within(Duration::from_millis(300)).await {
            let tag = msg.to_bytes()[0];
            assert!(!(tag::GLOBAL_REGISTER..=tag::GROUP_DISCOVER).contains(&tag), "x was sent {msg:?}");
        }
        a.shutdown().await;
    });
}

#[test]
fn a_peer_claiming_a_name_for_a_process_of_another_node_is_disconnected() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let mut x = raw::Conversation::dial(&a, "x", None).await;
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        // Its own process: accepted.
        let own = Pid::new(name("x"), 1, 7);
        let claim = |pid: Pid, name: &str| {
            Control::GlobalRegister(GlobalEntry {
                name: Term::atom(name),
                pid,
                stamp: 1,
                origin: NodeName::parse("x@127.0.0.1").unwrap(),
                generation: 0,
            })
        };
        x.send(&claim(own.clone(), "fine")).await;
        eventually("x's claim is seen", || a.global().whereis_name(&Term::atom("fine")) == Some(own.clone())).await;
        // A process of c: forged; the connection goes, and x's claims with it.
        x.send(&claim(Pid::new(name("c"), 1, 3), "forged")).await;
        assert!(raw::closes(&mut x.stream).await, "a closes the connection");
        eventually("x gone", || a.nodes().is_empty()).await;
        assert_eq!(a.global().whereis_name(&Term::atom("forged")), None);
        assert_eq!(a.global().whereis_name(&Term::atom("fine")), None);
        a.shutdown().await;
    });
}
