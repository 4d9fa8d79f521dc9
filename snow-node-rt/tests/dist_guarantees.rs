//! Delivery guarantees across real connections (README, "Guarantees"): links and monitors that
//! always fire with the real reason or `:noconnection`, exit signals by Erlang's rules, monitors
//! of registered names, remote `spawn_monitor`, and no table entry left behind by a process that
//! exited.

mod support;

use std::time::Duration;

use async_channel::Receiver;
use smol_timeout::TimeoutExt;
use snow_node_rt::{reason, Node, NodeName, Pid, Process, Ref, Term};
use support::*;

/// A process on `node` that traps exits if told, runs `setup`, reports `:ready`, then forwards
/// everything it receives, and exits with `reason` on `{:exit, reason}`.
fn reporter(node: &Node, trap: bool, setup: impl FnOnce(&mut Process) + Send + 'static) -> (Pid, Receiver<Term>) {
    let (tx, rx) = async_channel::unbounded();
    let pid = node.spawn(move |mut me| async move {
        me.trap_exit(trap);
        setup(&mut me);
        let _ = tx.send(Term::atom("ready")).await;
        loop {
            let msg = me.receive().await;
            if let Some(reason) = exit_command_reason(&msg) {
                return reason;
            }
            if tx.send(msg).await.is_err() {
                return reason::normal();
            }
        }
    });
    (pid, rx)
}

/// `{:exit, reason}`: tells a reporter (or a remote child) to exit with `reason`.
fn exit_command(reason: Term) -> Term {
    Term::tuple([Term::atom("exit"), reason])
}

fn exit_command_reason(msg: &Term) -> Option<Term> {
    match msg.as_tuple() {
        Some([tag, reason]) if tag.is_atom("exit") => Some(reason.clone()),
        _ => None,
    }
}

/// Forwards what `me` receives to `tx` until an `{:exit, reason}`; gives that reason.
async fn forward_until_told_to_exit(me: &mut Process, tx: &async_channel::Sender<Term>) -> Term {
    loop {
        let msg = me.receive().await;
        if let Some(reason) = exit_command_reason(&msg) {
            return reason;
        }
        let _ = tx.send(msg).await;
    }
}

/// The body of a process that exits with the reason of the first `{:exit, reason}` it gets.
async fn exits_when_told(mut me: Process) -> Term {
    loop {
        if let Some(reason) = exit_command_reason(&me.receive().await) {
            return reason;
        }
    }
}

/// A node whose allow-list has `reporter` (traps exits, sends `:ready` to the pid given as its
/// only argument, forwards everything there, exits on `{:exit, reason}`) and `exit_at_once`
/// (exits with `:boom` as soon as it runs).
///
/// `reporter` traps exits from its creation (the spawnable is called when the process is made,
/// before it first runs): an exit signal can reach a new process before its body runs a line,
/// and a body that set the flag itself would die of it unreported.
async fn spawn_host(epmd: &snow_epmd::ServerHandle, short: &str) -> Node {
    let node = node(epmd, short).await;
    node.register_spawnable("reporter", |me: Process, args: Term| {
        me.trap_exit(true);
        reporter_body(me, args)
    });
    node.register_spawnable("exit_at_once", |_me: Process, _args: Term| async move { Term::atom("boom") });
    node
}

/// `reporter`'s body, once it traps exits.
async fn reporter_body(mut me: Process, args: Term) -> Term {
    let to = match args {
        Term::List(items) => match items.as_slice() {
            [Term::Pid(to)] => to.clone(),
            _ => return Term::atom("badarg"),
        },
        _ => return Term::atom("badarg"),
    };
    me.send(&to, Term::atom("ready"));
    loop {
        let msg = me.receive().await;
        if let Some(reason) = exit_command_reason(&msg) {
            return reason;
        }
        me.send(&to, msg);
    }
}

/// The reason of an `{:EXIT, from, reason}` or `{:DOWN, ref, item, reason}` message.
fn reason_of(msg: &Term) -> Term {
    msg.as_tuple().and_then(|t| t.last()).cloned().unwrap_or_else(|| panic!("not a signal message: {msg}"))
}

#[test]
fn spawn_link_remote_propagates_an_exit_both_ways() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, spawn_host(&epmd, "b").await);
        for child_exits_first in [true, false] {
            // The child reports to `inbox`; the requester (trapping) forwards to `parent_rx`.
            let (inbox, child_rx) = reporter(&a, false, |_| {});
            assert_eq!(next(&child_rx).await, Term::atom("ready"));
            let (tx, parent_rx) = async_channel::unbounded();
            let b_name = b.name().clone();
            let requester = a.spawn(move |mut me| async move {
                me.trap_exit(true);
                let child = me.spawn_link_remote(&b_name, "reporter", vec![Term::Pid(inbox)]).await.unwrap();
                let _ = tx.send(Term::Pid(child)).await;
                forward_until_told_to_exit(&mut me, &tx).await
            });
            let Term::Pid(child) = next(&parent_rx).await else { panic!("no child pid") };
            assert_eq!(next(&child_rx).await, Term::atom("ready"));
            if child_exits_first {
                a.send(&child, exit_command(Term::atom("child_crash")));
                assert_eq!(next(&parent_rx).await, reason::exit_message(&child, Term::atom("child_crash")));
            } else {
                a.send(&requester, exit_command(Term::atom("parent_crash")));
                assert_eq!(next(&child_rx).await, reason::exit_message(&requester, Term::atom("parent_crash")));
            }
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// A remote spawn whose requester stops waiting (here its future is dropped after one poll, as a
/// `select` against a timer would) is abandoned, as with Erlang's `spawn_request_abandon`: the
/// late reply does not link the requester to the child; the child gets an exit `:abandoned`.
#[test]
fn a_spawn_link_remote_dropped_before_its_reply_abandons_the_child() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, spawn_host(&epmd, "b").await);
        within(a.connect(b.name())).await.unwrap();
        let (inbox, child_rx) = reporter(&a, false, |_| {});
        assert_eq!(next(&child_rx).await, Term::atom("ready"));
        let (tx, requester_rx) = async_channel::unbounded();
        let b_name = b.name().clone();
        let requester = a.spawn(move |mut me| async move {
            me.trap_exit(true);
            let request = me.spawn_link_remote(&b_name, "reporter", vec![Term::Pid(inbox)]);
            let polled = futures_lite::future::poll_once(request).await;
            let _ = tx.send(Term::atom(if polled.is_none() { "dropped" } else { "replied" })).await;
            forward_until_told_to_exit(&mut me, &tx).await
        });
        assert_eq!(next(&requester_rx).await, Term::atom("dropped"), "the request was pending after one poll");
        // The child starts, then the late reply makes `a` tell it the request was abandoned.
        assert_eq!(next(&child_rx).await, Term::atom("ready"));
        let told = next(&child_rx).await;
        assert_eq!(told, reason::exit_message(&requester, reason::abandoned()));
        quiet(&requester_rx, "no link, so no exit reaches the requester").await;
        a.send(&requester, exit_command(reason::normal()));
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// A remote spawn with a monitor whose requester stops waiting after the reply was handled (the
/// future is dropped between its last poll and the drop): the monitor the reply recorded is
/// forgotten too, so no `:DOWN` with a reference the requester never saw reaches it, not even a
/// `:noconnection` one when the node goes away.
#[test]
fn a_spawn_monitor_remote_dropped_after_its_reply_leaves_no_monitor_behind() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, spawn_host(&epmd, "b").await);
        within(a.connect(b.name())).await.unwrap();
        let (inbox, child_rx) = reporter(&a, false, |_| {});
        assert_eq!(next(&child_rx).await, Term::atom("ready"));
        let (tx, requester_rx) = async_channel::unbounded();
        let (go, go_rx) = async_channel::bounded::<()>(1);
        let b_name = b.name().clone();
        let requester = a.spawn(move |mut me| async move {
            {
                let request = me.spawn_monitor_remote(&b_name, "reporter", vec![Term::Pid(inbox)]);
                let mut request = std::pin::pin!(request);
                let polled = futures_lite::future::poll_once(&mut request).await;
                let _ = tx.send(Term::atom(if polled.is_none() { "pending" } else { "replied" })).await;
                // Held, unpolled, while the reply arrives and is handled; then dropped.
                let _ = go_rx.recv().await;
            }
            let _ = tx.send(Term::atom("dropped")).await;
            forward_until_told_to_exit(&mut me, &tx).await
        });
        assert_eq!(next(&requester_rx).await, Term::atom("pending"), "the request was pending after one poll");
        // The child's first message follows the spawn reply on the same connection: once it is
        // here, the reply has been handled and the monitor recorded.
        assert_eq!(next(&child_rx).await, Term::atom("ready"));
        go.send(()).await.unwrap();
        assert_eq!(next(&requester_rx).await, Term::atom("dropped"));
        assert!(a.disconnect(b.name()).unwrap(), "a and b were connected");
        quiet(&requester_rx, "the abandoned monitor must not fire on nodedown").await;
        a.send(&requester, exit_command(reason::normal()));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_remote_unlink_then_an_exit_leaves_the_other_side_alive() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        // Both directions: the side that unlinks exits, and the side that was unlinked exits.
        for unlinker_exits in [true, false] {
            let (remote, remote_rx) = reporter(&b, false, |_| {});
            assert_eq!(next(&remote_rx).await, Term::atom("ready"));
            let target = remote.clone();
            let (local, local_rx) = reporter(&a, false, move |me| {
                me.link(&target).unwrap();
                me.unlink(&target);
            });
            assert_eq!(next(&local_rx).await, Term::atom("ready"));
            // Watch both from a third process on each node.
            let (_, watch_a) = reporter(&a, false, {
                let local = local.clone();
                move |me| {
                    me.monitor(&local);
                }
            });
            let (_, watch_b) = reporter(&b, false, {
                let remote = remote.clone();
                move |me| {
                    me.monitor(&remote);
                }
            });
            assert_eq!(next(&watch_a).await, Term::atom("ready"));
            assert_eq!(next(&watch_b).await, Term::atom("ready"));
            let (dies, dies_watch, lives, lives_watch) = if unlinker_exits {
                (&local, &watch_a, &remote, &watch_b)
            } else {
                (&remote, &watch_b, &local, &watch_a)
            };
            a.send(dies, exit_command(Term::atom("crash")));
            assert_eq!(reason_of(&next(dies_watch).await), Term::atom("crash"));
            quiet(lives_watch, "the unlinked process must stay alive").await;
            a.send(lives, Term::atom("still_here"));
            let lives_rx = if unlinker_exits { &remote_rx } else { &local_rx };
            assert_eq!(next(lives_rx).await, Term::atom("still_here"));
            a.send(lives, exit_command(reason::normal()));
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn send_exit_across_nodes_follows_erlangs_rules() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        let custom = Term::tuple([Term::atom("custom"), Term::Int(7)]);
        // (reason sent, target traps exits, what the target's monitor or mailbox shows)
        let cases = [
            (reason::kill(), false, Some(reason::killed())),
            (reason::kill(), true, Some(reason::killed())),
            (reason::normal(), false, None),
            (reason::normal(), true, None),
            (custom.clone(), false, Some(custom.clone())),
            (custom.clone(), true, None),
        ];
        for (sent, trap, dies_with) in cases {
            let (target, target_rx) = reporter(&b, trap, |_| {});
            assert_eq!(next(&target_rx).await, Term::atom("ready"));
            let (_, watch) = reporter(&b, false, {
                let target = target.clone();
                move |me| {
                    me.monitor(&target);
                }
            });
            assert_eq!(next(&watch).await, Term::atom("ready"));
            let (sender, sender_rx) = reporter(&a, false, {
                let (target, sent) = (target.clone(), sent.clone());
                move |me| me.send_exit(&target, sent)
            });
            assert_eq!(next(&sender_rx).await, Term::atom("ready"));
            let case = format!("exit/2 with {sent} to a {} process", if trap { "trapping" } else { "non-trapping" });
            match dies_with {
                Some(reason) => assert_eq!(reason_of(&next(&watch).await), reason, "{case}"),
                None => {
                    if trap {
                        assert_eq!(next(&target_rx).await, reason::exit_message(&sender, sent), "{case}");
                    }
                    quiet(&watch, &case).await;
                    b.send(&target, exit_command(reason::normal()));
                    assert_eq!(reason_of(&next(&watch).await), reason::normal(), "{case}");
                }
            }
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_remote_demonitor_with_flush_leaves_no_message() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        let (tx, rx) = async_channel::unbounded();
        for fired_before in [false, true] {
            let target = b.spawn(exits_when_told);
            let (t, tx) = (target.clone(), tx.clone());
            a.spawn(move |mut me| async move {
                let reference = me.monitor(&t);
                if fired_before {
                    // The :DOWN is in the mailbox, not yet received, when demonitor runs.
                    me.send(&t, exit_command(Term::atom("bye")));
                    while me.mailbox_len() == 0 {
                        snow_node_rt::sleep(Duration::from_millis(5)).await;
                    }
                    assert!(!me.demonitor(&reference, true), "the monitor had fired");
                } else {
                    assert!(me.demonitor(&reference, true), "the monitor was active");
                    me.send(&t, exit_command(Term::atom("bye")));
                }
                let left = me.receive_timeout(Duration::from_millis(300)).await;
                let _ = tx.send(left.unwrap_or(Term::atom("nothing"))).await;
            });
            assert_eq!(next(&rx).await, Term::atom("nothing"), "fired before demonitor: {fired_before}");
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_registered_name_on_another_node_can_be_monitored() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        let b_name = b.name().clone();
        let item = |name: &str| Term::tuple([Term::atom(name), Term::Atom(b_name.as_atom().clone())]);
        let service = b.spawn(exits_when_told);
        b.register("service", &service).unwrap();
        let (watcher, rx) = reporter(&a, false, {
            let b_name = b_name.clone();
            move |me| {
                me.monitor_name("service", &b_name);
                me.monitor_name("nobody", &b_name);
            }
        });
        assert_eq!(next(&rx).await, Term::atom("ready"));
        let noproc = next(&rx).await;
        assert_eq!(noproc.as_tuple().unwrap()[2], item("nobody"));
        assert_eq!(reason_of(&noproc), reason::noproc());
        b.send(&service, exit_command(Term::atom("gone")));
        let down = next(&rx).await;
        assert!(down.as_tuple().unwrap()[0].is_atom("DOWN"));
        assert_eq!(down.as_tuple().unwrap()[2], item("service"), "named by {{name, node}}, as in Erlang");
        assert_eq!(reason_of(&down), Term::atom("gone"));

        // Demonitor of a name monitor: no :DOWN when the process later exits; and a name
        // monitor fires :noconnection when the connection goes.
        let second = b.spawn(exits_when_told);
        b.register("service", &second).unwrap();
        let third = b.spawn(exits_when_told);
        b.register("other", &third).unwrap();
        let (tx, refs) = async_channel::unbounded();
        let (_, rx) = reporter(&a, false, {
            let b_name = b_name.clone();
            move |me| {
                let cancelled = me.monitor_name("service", &b_name);
                let kept = me.monitor_name("other", &b_name);
                assert!(me.demonitor(&cancelled, false));
                let _ = tx.try_send(Term::Ref(kept));
            }
        });
        assert_eq!(next(&rx).await, Term::atom("ready"));
        let Term::Ref(kept) = next(&refs).await else { panic!() };
        // The demonitor reached b before this message: the entry on `second` is gone.
        eventually("the cancelled name monitor is removed on b", || {
            b.relation_counts(&second).is_some_and(|(_, watchers, _)| watchers == 0)
        })
        .await;
        b.send(&second, exit_command(Term::atom("unseen")));
        a.disconnect(&b_name).unwrap();
        let down = next(&rx).await;
        assert_eq!(down.as_tuple().unwrap()[1], Term::Ref(kept));
        assert_eq!(down.as_tuple().unwrap()[2], item("other"));
        assert_eq!(reason_of(&down), reason::noconnection());
        quiet(&rx, "no :DOWN for the cancelled monitor").await;
        drop(watcher);
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn remote_spawn_monitor_reports_the_real_reason_even_for_an_instant_exit() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, spawn_host(&epmd, "b").await);
        let (inbox, inbox_rx) = reporter(&a, false, |_| {});
        assert_eq!(next(&inbox_rx).await, Term::atom("ready"));
        let (tx, rx) = async_channel::unbounded();
        let b_name = b.name().clone();
        a.spawn(move |mut me| async move {
            let (quick, quick_ref) = me.spawn_monitor_remote(&b_name, "exit_at_once", vec![]).await.unwrap();
            let (slow, slow_ref) = me.spawn_monitor_remote(&b_name, "reporter", vec![Term::Pid(inbox)]).await.unwrap();
            me.send(&slow, exit_command(Term::atom("asked_to")));
            for (pid, reference) in [(quick, quick_ref), (slow, slow_ref)] {
                let down =
                    me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(r), ..]) if *r == reference)).await;
                assert_eq!(down.as_tuple().unwrap()[2], Term::Pid(pid));
                let _ = tx.send(reason_of(&down)).await;
            }
        });
        assert_eq!(next(&rx).await, Term::atom("boom"), "not :noproc: the monitor existed before the child ran");
        assert_eq!(next(&inbox_rx).await, Term::atom("ready"));
        assert_eq!(next(&rx).await, Term::atom("asked_to"));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn tables_of_processes_that_exited_return_to_their_size() {
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        a.connect(b.name()).await.unwrap();
        let baseline = a.dist_table_sizes();
        let target = b.spawn(exits_when_told);
        for round in 0..2 {
            let (tx, rx) = async_channel::unbounded();
            for _ in 0..50 {
                let (b_name, target, tx) = (b.name().clone(), target.clone(), tx.clone());
                a.spawn(move |me| async move {
                    me.monitor_node(&b_name);
                    me.monitor_node(&b_name);
                    me.monitor_nodes(true);
                    me.monitor(&target);
                    let _ = tx.send(()).await;
                });
            }
            for _ in 0..50 {
                rx.recv().timeout(WAIT).await.unwrap().unwrap();
            }
            eventually(&format!("round {round}: a's tables back to {baseline:?}"), || a.dist_table_sizes() == baseline)
                .await;
            eventually(&format!("round {round}: the remote monitors on b's process are gone"), || {
                b.relation_counts(&target) == Some((0, 0, 0))
            })
            .await;
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn references_are_unique_and_not_sequential() {
    let node = Node::local();
    let refs: Vec<Ref> = (0..100_000).map(|_| node.make_ref()).collect();
    let unique: std::collections::HashSet<u64> = refs.iter().map(Ref::id).collect();
    assert_eq!(unique.len(), refs.len());
    let steps_of_one = refs.windows(2).filter(|w| w[1].id().wrapping_sub(w[0].id()) == 1).count();
    assert!(steps_of_one < 10, "{steps_of_one} consecutive references differ by one: guessable");
    let high_bits_used = refs.iter().filter(|r| r.id() >> 48 != 0).count();
    assert!(high_bits_used > 90_000, "references use the whole 64-bit range");
}

#[test]
fn a_name_monitor_on_this_node_names_the_name() {
    run(async {
        let node = Node::local();
        let me_node: NodeName = node.name().clone();
        let service = node.spawn(exits_when_told);
        node.register("service", &service).unwrap();
        let (_, rx) = reporter(&node, false, {
            let me_node = me_node.clone();
            move |me| {
                me.monitor_name("service", &me_node);
                me.monitor_name("absent", &me_node);
            }
        });
        assert_eq!(next(&rx).await, Term::atom("ready"));
        let item = |n: &str| Term::tuple([Term::atom(n), Term::Atom(me_node.as_atom().clone())]);
        let noproc = next(&rx).await;
        assert_eq!((noproc.as_tuple().unwrap()[2].clone(), reason_of(&noproc)), (item("absent"), reason::noproc()));
        node.send(&service, exit_command(Term::atom("stopped")));
        let down = next(&rx).await;
        assert_eq!((down.as_tuple().unwrap()[2].clone(), reason_of(&down)), (item("service"), Term::atom("stopped")));
    });
}

/// A node's shutdown lets its connections write what its processes sent before it closes them
/// (within a second), so messages sent just before a shutdown are not lost. 100 messages of
/// 64 KiB: several megabytes are still queued when the shutdown begins.
#[test]
fn messages_sent_just_before_a_shutdown_arrive() {
    const SENDERS: i64 = 100;
    run(async {
        let epmd = epmd().await;
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        within(a.connect(b.name())).await.unwrap();
        let (sink, got) = forwarder(&b, |_, _| {});
        let (sent_tx, sent) = async_channel::unbounded();
        for i in 0..SENDERS {
            let (sink, sent_tx) = (sink.clone(), sent_tx.clone());
            a.spawn(move |me| async move {
                me.send(&sink, Term::tuple([Term::Int(i), Term::binary(vec![7u8; 64 << 10])]));
                let _ = sent_tx.send(()).await;
            });
        }
        for _ in 0..SENDERS {
            next(&sent).await;
        }
        a.shutdown().await;
        let mut seen = Vec::new();
        for _ in 0..SENDERS {
            let msg = next(&got).await;
            match msg.as_tuple() {
                Some([Term::Int(i), Term::Binary(bytes)]) if bytes.len() == 64 << 10 => seen.push(*i),
                _ => panic!("unexpected message {msg}"),
            }
        }
        seen.sort();
        assert_eq!(seen, (0..SENDERS).collect::<Vec<_>>());
        b.shutdown().await;
    });
}
