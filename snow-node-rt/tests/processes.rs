//! Processes and mailboxes: spawning, exiting, receiving.

mod support;

use std::time::Duration;

use snow_node_rt::{reason, Node, Term};
use support::*;

#[test]
fn self_pid_is_the_spawned_pid_and_local() {
    run(async {
        let node = Node::local();
        let (tx, rx) = async_channel::bounded(1);
        let pid = node.spawn(move |me| async move {
            let _ = tx.send(me.pid().clone()).await;
        });
        let inside = next(&rx).await;
        assert_eq!(&inside, &pid);
        assert!(node.is_local(&inside));
        assert_eq!(inside.to_string(), format!("<0.{}.0>", inside.id()));
    });
}

#[test]
fn exit_normal_with_reason_and_by_panic() {
    run(async {
        let node = Node::local();
        let blocker = |node: &Node| {
            let (go_tx, go_rx) = async_channel::bounded::<()>(1);
            (go_tx, go_rx, node.clone())
        };
        // Normal return.
        let (go, gate, _) = blocker(&node);
        let p = node.spawn(move |_| async move {
            let _ = gate.recv().await;
        });
        let rx = watch(&node, &p).await;
        go.send(()).await.unwrap();
        assert_eq!(next(&rx).await, reason::normal());
        // A returned reason.
        let (go, gate, _) = blocker(&node);
        let p = node.spawn(move |_| async move {
            let _ = gate.recv().await;
            Term::tuple([Term::atom("bad"), Term::Int(7)])
        });
        let rx = watch(&node, &p).await;
        go.send(()).await.unwrap();
        assert_eq!(next(&rx).await.to_string(), "{:bad, 7}");
        // exit/1 stops the body at the await.
        let (go, gate, _) = blocker(&node);
        let (after_tx, after_rx) = async_channel::bounded::<()>(1);
        let p = node.spawn(move |me| async move {
            let _ = gate.recv().await;
            me.exit(Term::atom("quit")).await;
            let _ = after_tx.send(()).await;
        });
        let rx = watch(&node, &p).await;
        go.send(()).await.unwrap();
        assert_eq!(next(&rx).await, Term::atom("quit"));
        assert!(after_rx.recv().await.is_err(), "code after exit().await must not run");
        // A panic becomes {:panic, message}, and the node keeps working.
        let (go, gate, _) = blocker(&node);
        let p = node.spawn(move |_| async move {
            let _ = gate.recv().await;
            if gate.is_empty() {
                panic!("boom {}", 42);
            }
        });
        let rx = watch(&node, &p).await;
        go.send(()).await.unwrap();
        assert_eq!(next(&rx).await, reason::panic("boom 42"));
        let answer = in_process(&node, |_| async { 5 }).await;
        assert_eq!(answer, 5);
        assert!(!node.is_alive(&p));
    });
}

#[test]
fn messages_arrive_in_order_and_receive_waits() {
    run(async {
        let node = Node::local();
        let got = in_process(&node, |mut me| async move {
            let me_pid = me.pid().clone();
            me.spawn(move |s| async move {
                for i in 0..1000 {
                    s.send(&me_pid, Term::Int(i));
                }
            });
            let mut got = Vec::new();
            for _ in 0..1000 {
                got.push(me.receive().await.as_int().unwrap());
            }
            got
        })
        .await;
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    });
}

#[test]
fn receive_timeout_gives_up_and_after_zero_polls_once() {
    run(async {
        let node = Node::local();
        let (empty, zero_with_msg, zero_empty) = in_process(&node, |mut me| async move {
            let empty = me.receive_timeout(Duration::from_millis(30)).await;
            me.send(&me.pid().clone(), Term::Int(1));
            let zero_with_msg = me.receive_timeout(Duration::ZERO).await;
            let zero_empty = me.receive_timeout(Duration::ZERO).await;
            (empty, zero_with_msg, zero_empty)
        })
        .await;
        assert_eq!(empty, None);
        assert_eq!(zero_with_msg, Some(Term::Int(1)));
        assert_eq!(zero_empty, None);
    });
}

#[test]
fn selective_receive_leaves_other_messages_in_order() {
    run(async {
        let node = Node::local();
        let (picked, rest, timed_out, late) = in_process(&node, |mut me| async move {
            let pid = me.pid().clone();
            for i in 1..=5 {
                me.send(&pid, Term::Int(i));
            }
            me.send(&pid, Term::atom("wanted"));
            me.send(&pid, Term::Int(6));
            let picked = me.receive_match(|m| m.is_atom("wanted")).await;
            let even = me.receive_match(|m| m.as_int().is_some_and(|i| i % 2 == 0)).await;
            let timed_out = me.receive_match_timeout(|m| m.is_atom("never"), Duration::from_millis(20)).await;
            // A match that arrives while the selective receive is parked.
            let pid2 = pid.clone();
            let node = me.node().clone();
            node.spawn(move |s| async move {
                snow_node_rt::sleep(Duration::from_millis(10)).await;
                s.send(&pid2, Term::Int(100));
                s.send(&pid2, Term::atom("late"));
            });
            let late = me.receive_match(|m| m.is_atom("late")).await;
            let mut rest = vec![even];
            while let Some(m) = me.receive_timeout(Duration::ZERO).await {
                rest.push(m);
            }
            (picked, rest, timed_out, late)
        })
        .await;
        assert_eq!(picked, Term::atom("wanted"));
        assert_eq!(timed_out, None);
        assert_eq!(late, Term::atom("late"));
        let rest: Vec<i64> = rest.iter().map(|t| t.as_int().unwrap()).collect();
        assert_eq!(rest, vec![2, 1, 3, 4, 5, 6, 100]);
    });
}

#[test]
fn sending_to_a_dead_pid_is_a_silent_no_op() {
    run(async {
        let node = Node::local();
        let p = node.spawn(|_| async {});
        let rx = watch(&node, &p).await;
        next(&rx).await;
        node.send(&p, Term::Int(1));
        let answer = in_process(&node, {
            let dead = p.clone();
            move |me| async move {
                me.send(&dead, Term::Int(2));
                "still here"
            }
        })
        .await;
        assert_eq!(answer, "still here");
        // A pid of this node from an older creation is dead too.
        let stale = snow_node_rt::Pid::new(node.name().clone(), 1, 99);
        assert!(!node.is_alive(&stale));
    });
}

#[test]
fn exiting_with_messages_in_the_mailbox_drops_them_and_still_notifies() {
    run(async {
        let node = Node::local();
        let (go, gate) = async_channel::bounded::<()>(1);
        let p = node.spawn(move |_| async move {
            let _ = gate.recv().await;
            Term::atom("done")
        });
        for i in 0..100 {
            node.send(&p, Term::Int(i));
        }
        let rx = watch(&node, &p).await;
        go.send(()).await.unwrap();
        assert_eq!(next(&rx).await, Term::atom("done"));
        node.send(&p, Term::Int(1));
        assert!(!node.is_alive(&p));
    });
}

#[test]
fn several_nodes_in_one_os_process_are_independent() {
    run(async {
        let a = Node::new(snow_node_rt::NodeName::parse("a@localhost").unwrap(), 1);
        let b = Node::new(snow_node_rt::NodeName::parse("b@localhost").unwrap(), 1);
        let pa = idle(&a);
        let pb = idle(&b);
        assert_eq!(pa.id(), pb.id(), "each node counts its own pids");
        assert!(a.is_alive(&pa) && !a.is_alive(&pb));
        assert_eq!(pa.to_string(), format!("<a@localhost.{}.1>", pa.id()));
        // Without a router, b's pid is unreachable from a: sends go nowhere, monitors fire noproc.
        let down = in_process(&a, move |mut me| async move {
            let r = me.monitor(&pb);
            me.send(&pb, Term::Int(1));
            (r, me.receive().await)
        })
        .await;
        assert_eq!(down.1.as_tuple().unwrap()[3], reason::noproc());
        a.exit(&pa, reason::kill());
    });
}
