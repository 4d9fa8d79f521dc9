//! Links, exit signals, trap_exit and monitors, including their races.

mod support;

use std::time::Duration;

use snow_node_rt::{reason, LinkError, Node, Term};
use support::*;

#[test]
fn a_crash_kills_linked_processes_but_normal_does_not() {
    run(async {
        let node = Node::local();
        for (reason_in, survives) in [(reason::normal(), true), (Term::atom("crash"), false)] {
            let partner = idle(&node);
            let rx = watch(&node, &partner).await;
            let (go, gate) = async_channel::bounded::<()>(1);
            let partner2 = partner.clone();
            let r = reason_in.clone();
            let linked = in_process(&node, move |me| async move {
                me.spawn(move |me| async move {
                    me.link(&partner2).unwrap();
                    let _ = gate.recv().await;
                    r
                })
            })
            .await;
            // Wait until the link exists: the linker is parked on the gate after linking.
            snow_node_rt::sleep(Duration::from_millis(20)).await;
            go.send(()).await.unwrap();
            let _ = linked;
            if survives {
                assert!(rx.recv().timeout_ms(100).await.is_none(), "normal exit must not kill the partner");
                assert!(node.is_alive(&partner));
                node.exit(&partner, reason::kill());
            } else {
                assert_eq!(next(&rx).await, Term::atom("crash"));
            }
        }
    });
}

/// Small extension so tests can ask "did anything arrive within N ms".
trait TimeoutMs: std::future::Future + Sized {
    async fn timeout_ms(self, ms: u64) -> Option<Self::Output> {
        smol_timeout::TimeoutExt::timeout(self, Duration::from_millis(ms)).await
    }
}
impl<F: std::future::Future> TimeoutMs for F {}

#[test]
fn trap_exit_turns_signals_into_messages_but_kill_is_untrappable() {
    run(async {
        let node = Node::local();
        let out = in_process(&node, |mut me| async move {
            assert!(!me.trap_exit(true));
            let child = me.spawn_link(|_| async { Term::atom("oops") });
            let crash = me.receive().await;
            let child2 = me.spawn_link(|_| async {});
            let normal = me.receive().await;
            // exit/2 with another reason from an unlinked process also becomes a message.
            let me_pid = me.pid().clone();
            let sender = me.spawn(move |s| async move { s.send_exit(&me_pid, Term::atom("please")) });
            let asked = me.receive().await;
            (child, crash, child2, normal, sender, asked)
        })
        .await;
        let (child, crash, child2, normal, sender, asked) = out;
        assert_eq!(crash, exit_msg(&child, Term::atom("oops")));
        assert_eq!(normal, exit_msg(&child2, reason::normal()));
        assert_eq!(asked, exit_msg(&sender, Term::atom("please")));

        // :kill kills a trapping process with :killed, and its links see :killed.
        let (ready_tx, ready_rx) = async_channel::bounded(1);
        let trapper = node.spawn(move |mut me| async move {
            me.trap_exit(true);
            let _ = ready_tx.send(()).await;
            loop {
                me.receive().await;
            }
            #[allow(unreachable_code)]
            ()
        });
        next(&ready_rx).await;
        let rx = watch(&node, &trapper).await;
        let linked_watcher = in_process(&node, {
            let trapper = trapper.clone();
            move |me| async move {
                me.spawn(move |mut w| async move {
                    w.trap_exit(true);
                    w.link(&trapper).unwrap();
                    w.receive().await
                })
            }
        })
        .await;
        let link_rx = watch(&node, &linked_watcher).await;
        snow_node_rt::sleep(Duration::from_millis(20)).await;
        node.exit(&trapper, reason::kill());
        assert!(!node.is_alive(&trapper), "a killed process is not alive as soon as exit returns");
        assert_eq!(next(&rx).await, reason::killed());
        // The linked watcher returned the {:EXIT, trapper, :killed} message as its exit reason.
        assert_eq!(next(&link_rx).await, exit_msg(&trapper, reason::killed()));
    });
}

#[test]
fn exit_signal_normal_is_ignored_unless_sent_to_self() {
    run(async {
        let node = Node::local();
        let p = idle(&node);
        node.exit(&p, reason::normal());
        snow_node_rt::sleep(Duration::from_millis(20)).await;
        assert!(node.is_alive(&p));
        let rx = watch(&node, &p).await;
        node.exit(&p, Term::atom("go_away"));
        assert_eq!(next(&rx).await, Term::atom("go_away"));

        let reason_seen = in_process(&node, |mut me| async move {
            let (_q, r) = me.spawn_monitor(|me| async move {
                let own = me.pid().clone();
                me.send_exit(&own, reason::normal());
                snow_node_rt::sleep(Duration::from_secs(30)).await;
            });
            let down = me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(x), ..]) if *x == r)).await;
            down.as_tuple().unwrap()[3].clone()
        })
        .await;
        assert_eq!(reason_seen, reason::normal(), "exit(self(), normal) ends the process");
    });
}

#[test]
fn a_link_through_which_kill_arrives_is_trappable_and_kills_with_kill() {
    // Erlang: a process exiting with reason `kill` sends `kill` through its links; that is not
    // the untrappable exit/2 kill, so a non-trapping partner exits with `kill` (not `killed`)
    // and a trapping one gets a message.
    run(async {
        let node = Node::local();
        let (trapped, plain_reason) = in_process(&node, |mut me| async move {
            me.trap_exit(true);
            let c = me.spawn_link(|_| async { reason::kill() });
            let trapped = me.receive().await;
            let (victim, r) = me.spawn_monitor(|me| async move {
                let _c = me.spawn_link(|_| async {
                    snow_node_rt::sleep(Duration::from_millis(10)).await;
                    reason::kill()
                });
                snow_node_rt::sleep(Duration::from_secs(30)).await;
            });
            let down = me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(x), ..]) if *x == r)).await;
            let _ = victim;
            (trapped == exit_msg(&c, reason::kill()), down.as_tuple().unwrap()[3].clone())
        })
        .await;
        assert!(trapped);
        assert_eq!(plain_reason, reason::kill());
    });
}

#[test]
fn linking_to_a_dead_pid_gives_noproc() {
    run(async {
        let node = Node::local();
        let dead = node.spawn(|_| async {});
        next(&watch(&node, &dead).await).await;
        let (plain, trapped, msg) = in_process(&node, move |mut me| async move {
            let plain = me.link(&dead);
            me.trap_exit(true);
            let trapped = me.link(&dead);
            (plain, trapped, me.receive().await)
        })
        .await;
        assert!(matches!(plain, Err(LinkError::NoProc(_))));
        assert!(trapped.is_ok());
        assert_eq!(msg.as_tuple().unwrap()[2], reason::noproc());
        let e = LinkError::NoProc(snow_node_rt::Pid::new(node.name().clone(), 1, 0));
        assert!(e.to_string().contains("no such process"));
    });
}

#[test]
fn unlink_stops_exit_signals() {
    run(async {
        let node = Node::local();
        let alive = in_process(&node, |mut me| async move {
            let c = me.spawn_link(|mut c| async move {
                c.receive().await;
                Term::atom("crash")
            });
            me.unlink(&c);
            let r = me.monitor(&c);
            me.send(&c, Term::atom("go"));
            let down = me.receive().await;
            (down.as_tuple().unwrap()[1] == Term::Ref(r), me.receive_timeout(Duration::from_millis(30)).await)
        })
        .await;
        assert!(alive.0);
        assert_eq!(alive.1, None, "no exit signal after unlink");
    });
}

#[test]
fn monitors_are_unidirectional_many_per_target_and_noproc_for_dead() {
    run(async {
        let node = Node::local();
        let (downs, target_alive_after_watcher_died) = in_process(&node, |mut me| async move {
            let t = me.spawn(|mut t| async move {
                t.receive().await;
                Term::atom("bye")
            });
            let r1 = me.monitor(&t);
            let r2 = me.monitor(&t);
            assert_ne!(r1, r2);
            // A watcher that dies does not affect the target.
            let t2 = t.clone();
            let w = me.spawn(move |w| async move {
                w.monitor(&t2);
            });
            let wr = me.monitor(&w);
            me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(x), ..]) if *x == wr)).await;
            let alive = me.node().is_alive(&t);
            me.send(&t, Term::Unit);
            let a = me.receive().await;
            let b = me.receive().await;
            let dead_ref = me.monitor(&t);
            let c = me.receive().await;
            (vec![(r1, a), (r2, b), (dead_ref, c)], alive)
        })
        .await;
        assert!(target_alive_after_watcher_died);
        let reasons: Vec<Term> = downs
            .iter()
            .map(|(r, m)| {
                let parts = m.as_tuple().unwrap();
                assert!(parts[0].is_atom("DOWN"));
                assert_eq!(&parts[1], &Term::Ref(r.clone()));
                parts[3].clone()
            })
            .collect();
        assert_eq!(reasons, vec![Term::atom("bye"), Term::atom("bye"), reason::noproc()]);
    });
}

#[test]
fn demonitor_with_flush_removes_a_down_that_already_arrived() {
    run(async {
        let node = Node::local();
        let (active, flushed_len, unflushed) = in_process(&node, |mut me| async move {
            let t = me.spawn(|_| async {});
            let r = me.monitor(&t);
            // Wait until the :DOWN is in the mailbox, behind an unrelated message.
            let pid = me.pid().clone();
            me.send(&pid, Term::atom("other"));
            while me.mailbox_len() < 2 {
                snow_node_rt::sleep(Duration::from_millis(1)).await;
            }
            let active = me.demonitor(&r, true);
            let len = me.mailbox_len();
            // Without flush the message stays.
            let t2 = me.spawn(|_| async {});
            let r2 = me.monitor(&t2);
            while me.mailbox_len() < 2 {
                snow_node_rt::sleep(Duration::from_millis(1)).await;
            }
            me.demonitor(&r2, false);
            let _other = me.receive().await;
            (active, len, me.receive().await.as_tuple().unwrap()[1] == Term::Ref(r2))
        })
        .await;
        assert!(!active, "the monitor had already fired");
        assert_eq!(flushed_len, 1);
        assert!(unflushed);
    });
}

#[test]
fn demonitor_before_exit_means_no_down() {
    run(async {
        let node = Node::local();
        let got = in_process(&node, |mut me| async move {
            let t = me.spawn(|mut t| async move {
                t.receive().await;
            });
            let r = me.monitor(&t);
            assert!(me.demonitor(&r, false));
            me.send(&t, Term::Unit);
            me.receive_timeout(Duration::from_millis(50)).await
        })
        .await;
        assert_eq!(got, None);
    });
}

#[test]
fn race_monitor_and_link_while_target_is_dying() {
    // Hammer the window between "target decides to exit" and "target cleaned up": every monitor
    // must produce exactly one :DOWN (real reason or :noproc), every link exactly one exit.
    run(async {
        let node = Node::local();
        for round in 0..200 {
            let (downs, exits) = in_process(&node, move |mut me| async move {
                me.trap_exit(true);
                let t = me.spawn(move |_| async move {
                    if round % 2 == 0 {
                        futures_lite_yield().await;
                    }
                    Term::atom("dying")
                });
                let r = me.monitor(&t);
                let linked = me.link(&t).is_ok();
                let mut downs = 0;
                let mut exits = 0;
                while downs + exits < 2 {
                    let m = within(me.receive()).await;
                    let parts = m.as_tuple().unwrap().to_vec();
                    if parts[0].is_atom("DOWN") {
                        assert_eq!(parts[1], Term::Ref(r.clone()));
                        assert!(parts[3].is_atom("dying") || parts[3].is_atom("noproc"));
                        downs += 1;
                    } else {
                        assert!(parts[2].is_atom("dying") || parts[2].is_atom("noproc"));
                        exits += 1;
                    }
                }
                assert_eq!(me.receive_timeout(Duration::from_millis(2)).await, None, "a duplicate signal arrived");
                assert!(linked);
                (downs, exits)
            })
            .await;
            assert_eq!((downs, exits), (1, 1), "round {round}");
        }
    });
}

async fn futures_lite_yield() {
    snow_node_rt::yield_now().await
}

#[test]
fn race_exit_signals_crossing_between_linked_processes() {
    // Two linked processes kill each other at the same time: both die, each with a reason from
    // the other's signal or its own, nothing hangs, and a trapping third party linked to both
    // sees both exits.
    run(async {
        let node = Node::local();
        for _ in 0..100 {
            let (a_reason, b_reason) = in_process(&node, |mut me| async move {
                me.trap_exit(true);
                let a = me.spawn_link(|mut a| async move {
                    let b = a.receive().await;
                    let b = b.as_pid().unwrap().clone();
                    a.link(&b).ok();
                    a.send(&b, Term::atom("go"));
                    a.send_exit(&b, Term::atom("from_a"));
                    a.receive().await;
                });
                let a2 = a.clone();
                let b = me.spawn_link(move |mut b| async move {
                    b.receive().await;
                    b.send_exit(&a2, Term::atom("from_b"));
                    b.receive().await;
                });
                me.send(&a, Term::Pid(b.clone()));
                let mut got = std::collections::HashMap::new();
                while got.len() < 2 {
                    let m = me.receive().await;
                    let parts = m.as_tuple().unwrap().to_vec();
                    got.insert(parts[1].clone(), parts[2].clone());
                }
                (got[&Term::Pid(a)].clone(), got[&Term::Pid(b)].clone())
            })
            .await;
            assert!(a_reason.is_atom("from_b") || a_reason.is_atom("from_a"), "{a_reason}");
            assert!(b_reason.is_atom("from_a") || b_reason.is_atom("from_b"), "{b_reason}");
        }
        // Nobody is left behind (the probe process may still be finishing its exit).
        within(async {
            while node.process_count() > 0 {
                snow_node_rt::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    });
}
