//! The per-process mailbox limit (README, "Security"): off by default; a process whose mailbox
//! holds its limit when another message arrives is killed with `{:mailbox_overflow, limit}`,
//! untrappable, and its links and monitors fire with that reason; the limit counts what the
//! process took out of the shared inbox but has not received yet, and not what it received; it
//! holds for messages from another node without stopping that connection; `SNOW_MAILBOX_LIMIT`
//! is validated.

mod support;

use std::ffi::OsString;

use snow_node_rt::dist::config::mailbox_limit_from_vars;
use snow_node_rt::dist::{ConfigError, DistConfig, NodeBuilder};
use snow_node_rt::{Node, Pid, Process, Term};
use support::*;

fn overflow(limit: i64) -> Term {
    Term::tuple([Term::atom("mailbox_overflow"), Term::Int(limit)])
}

/// A process that sets its mailbox limit to `limit`, traps exits (which must not save it), and
/// never receives. Returns once the limit is set, so that what is sent next meets it.
async fn hoarder(node: &Node, limit: Option<usize>) -> Pid {
    let (set_tx, set_rx) = async_channel::bounded(1);
    let pid = node.spawn(move |me: Process| async move {
        me.set_mailbox_limit(limit);
        me.trap_exit(true);
        let _ = set_tx.send(()).await;
        std::future::pending::<()>().await
    });
    next(&set_rx).await;
    pid
}

#[test]
fn a_local_flood_kills_the_process_with_the_reason_and_links_and_monitors_see_it() {
    run(async {
        let node = Node::local();
        assert_eq!(node.default_mailbox_limit(), None);
        let (set_tx, set_rx) = async_channel::bounded(1);
        let victim = node.spawn(move |me: Process| async move {
            assert_eq!(me.set_mailbox_limit(Some(10)), None);
            let _ = set_tx.send(me.mailbox_limit()).await;
            me.trap_exit(true);
            std::future::pending::<()>().await
        });
        assert_eq!(next(&set_rx).await, Some(10));
        let down = watch(&node, &victim).await;
        let victim_for_link = victim.clone();
        let (_, linked) = forwarder(&node, move |me, _| {
            me.trap_exit(true);
            me.link(&victim_for_link).unwrap();
        });
        eventually("the link is in place", || node.relation_counts(&victim).is_some_and(|(links, _, _)| links == 1))
            .await;

        // Ten messages fit; the process stays alive with all of them waiting.
        for i in 0..10 {
            node.send(&victim, Term::Int(i));
        }
        assert!(node.is_alive(&victim), "ten messages are within a limit of ten");
        // The eleventh is over: the process dies at once (the sender decided it), trapping or not.
        node.send(&victim, Term::Int(10));
        assert!(!node.is_alive(&victim));
        assert_eq!(next(&down).await, overflow(10));
        assert_eq!(next(&linked).await, exit_msg(&victim, overflow(10)));
        // Further sends to it are no-ops.
        for i in 0..100 {
            node.send(&victim, Term::Int(i));
        }
        eventually("the process is gone from the table", || node.relation_counts(&victim).is_none()).await;
    });
}

#[test]
fn the_node_default_applies_to_new_processes_and_a_process_may_change_its_own() {
    run(async {
        let node = Node::local();
        assert_eq!(node.set_default_mailbox_limit(Some(3)), None);
        assert_eq!(node.default_mailbox_limit(), Some(3));
        let (tx, rx) = async_channel::bounded(1);
        let limited = node.spawn(move |me: Process| async move {
            let _ = tx.send(me.mailbox_limit()).await;
            std::future::pending::<()>().await
        });
        assert_eq!(next(&rx).await, Some(3));
        let down = watch(&node, &limited).await;
        // A process that lifts its own limit is not held to the node's.
        let free = hoarder(&node, None).await;
        let free_down = watch(&node, &free).await;
        for i in 0..4 {
            node.send(&limited, Term::Int(i));
            node.send(&free, Term::Int(i));
        }
        assert_eq!(next(&down).await, overflow(3));
        assert!(node.is_alive(&free));
        quiet(&free_down, "a process without a limit must survive").await;
        // Processes spawned after the default is cleared have no limit.
        assert_eq!(node.set_default_mailbox_limit(None), Some(3));
        let later = in_process(&node, |me: Process| async move { me.mailbox_limit() }).await;
        assert_eq!(later, None);
    });
}

#[test]
fn messages_received_do_not_count_and_messages_skipped_by_a_selective_receive_do() {
    run(async {
        let node = Node::local();
        // Limit 4, received one by one: far more than four messages go through.
        let (echo_tx, echo_rx) = async_channel::unbounded();
        let echo = node.spawn(move |mut me: Process| async move {
            me.set_mailbox_limit(Some(4));
            loop {
                let msg = me.receive().await;
                if echo_tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        for round in 0..50 {
            for i in 0..4 {
                node.send(&echo, Term::Int(round * 4 + i));
            }
            for i in 0..4 {
                assert_eq!(next(&echo_rx).await, Term::Int(round * 4 + i));
            }
        }
        assert!(node.is_alive(&echo), "received messages must not count against the limit");

        // A selective receive for :go leaves three :junk messages in the process's private queue;
        // they still count.
        let (go_tx, go_rx) = async_channel::unbounded();
        let picky = node.spawn(move |mut me: Process| async move {
            me.set_mailbox_limit(Some(4));
            loop {
                me.receive_match(|m| m.is_atom("go")).await;
                if go_tx.send(me.mailbox_len()).await.is_err() {
                    return;
                }
            }
        });
        let down = watch(&node, &picky).await;
        for _ in 0..3 {
            node.send(&picky, Term::atom("junk"));
        }
        node.send(&picky, Term::atom("go"));
        assert_eq!(next(&go_rx).await, 3, "the junk waits in the mailbox");
        node.send(&picky, Term::atom("junk"));
        assert!(node.is_alive(&picky), "four waiting messages are within a limit of four");
        node.send(&picky, Term::atom("junk"));
        assert_eq!(next(&down).await, overflow(4));
    });
}

#[test]
fn off_by_default_a_large_mailbox_is_fine() {
    run(async {
        let node = Node::local();
        assert_eq!(node.default_mailbox_limit(), None);
        let (ready_tx, ready_rx) = async_channel::bounded(1);
        let (count_tx, count_rx) = async_channel::bounded(1);
        let pid = node.spawn(move |mut me: Process| async move {
            let _ = ready_tx.send(me.mailbox_limit()).await;
            // Wait until everything is queued, then take it all.
            me.receive_match(|m| m.is_atom("go")).await;
            let mut taken = 0u64;
            while me.try_receive().is_some() {
                taken += 1;
            }
            let _ = count_tx.send(taken).await;
        });
        assert_eq!(next(&ready_rx).await, None);
        for i in 0..200_000 {
            node.send(&pid, Term::Int(i));
        }
        assert!(node.is_alive(&pid));
        node.send(&pid, Term::atom("go"));
        assert_eq!(next(&count_rx).await, 200_000);
    });
}

#[test]
fn a_remote_flood_kills_only_its_target_and_the_connection_keeps_serving() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "limit_a").mailbox_limit(Some(50)).start().await.unwrap();
        let b = node(&epmd, "limit_b").await;
        assert_eq!(a.default_mailbox_limit(), Some(50));
        assert_eq!(b.default_mailbox_limit(), None);
        // Watching before connecting: each side's nodeup is taken here, whenever it comes, so a
        // late one cannot pass for a reconnection below.
        let a_events = node_events(&a).await;
        let b_events = node_events(&b).await;
        within(b.connect(a.name())).await.unwrap();
        let nodeup = |n: &Node| Term::tuple([Term::atom("nodeup"), Term::Atom(n.name().as_atom().clone())]);
        assert_eq!(next(&a_events).await, nodeup(&b));
        assert_eq!(next(&b_events).await, nodeup(&a));

        // On a: a process that never receives (limit 50, the node's default), and one that does.
        let (tx, rx) = async_channel::bounded(1);
        let victim = a.spawn(move |me: Process| async move {
            let _ = tx.send(me.mailbox_limit()).await;
            me.trap_exit(true);
            std::future::pending::<()>().await
        });
        assert_eq!(next(&rx).await, Some(50));
        // (It lifts its own limit: the connection may deliver a burst faster than it forwards.)
        let (bystander, seen) = forwarder(&a, |me, tx| {
            me.set_mailbox_limit(None);
            // The channel is unbounded: the send cannot fail while the receiver is alive.
            let _ = tx.try_send(Term::atom("unlimited"));
        });
        assert_eq!(next(&seen).await, Term::atom("unlimited"));
        let local_down = watch(&a, &victim).await;
        let remote_down = watch(&b, &victim).await;

        // From b, one process floods the victim, then writes to the bystander on the same
        // connection.
        let (victim2, bystander2) = (victim.clone(), bystander.clone());
        let sent = in_process(&b, move |me: Process| async move {
            for i in 0..2_000 {
                me.send(&victim2, Term::Int(i));
            }
            for i in 0..100 {
                me.send(&bystander2, Term::Int(i));
            }
            true
        })
        .await;
        assert!(sent);
        assert_eq!(next(&local_down).await, overflow(50));
        assert_eq!(next(&remote_down).await, overflow(50), "the reason crosses the wire");
        for i in 0..100 {
            assert_eq!(next(&seen).await, Term::Int(i), "the connection goes on delivering");
        }
        assert!(a.is_alive(&bystander));
        assert_eq!(a.nodes(), vec![b.name().clone()]);
        assert_eq!(b.nodes(), vec![a.name().clone()]);
        quiet(&a_events, "the connection must stay up").await;
        quiet(&b_events, "the connection must stay up").await;
        shutdown_all(&[a, b]).await;
    });
}

#[test]
fn bad_snow_mailbox_limit_values_are_refused_with_the_variable_named() {
    let vars = |value: Option<&str>| {
        let value = value.map(OsString::from);
        move |var: &str| if var == "SNOW_MAILBOX_LIMIT" { value.clone() } else { None }
    };
    assert_eq!(mailbox_limit_from_vars(vars(None)).unwrap(), None);
    assert_eq!(mailbox_limit_from_vars(vars(Some(" 25 "))).unwrap(), Some(25));
    for bad in ["0", "-1", "lots", "1.5", "", "1e6", "99999999999999999999999"] {
        let err = mailbox_limit_from_vars(vars(Some(bad))).unwrap_err();
        assert!(matches!(err, ConfigError::BadMailboxLimit(ref v) if v == bad), "{bad:?}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("SNOW_MAILBOX_LIMIT={bad:?}")), "{text}");
        assert!(text.contains("unset it for no limit"), "{text}");
    }
    // A distributed node's settings refuse it the same way, and carry a good one to the node.
    let dist = |limit: &str| {
        let limit = OsString::from(limit);
        DistConfig::from_vars(
            move |var| match var {
                "SNOW_NODE" => Some("app@127.0.0.1".into()),
                "SNOW_COOKIE" => Some(OsString::from(std::str::from_utf8(COOKIE).unwrap())),
                "SNOW_MAILBOX_LIMIT" => Some(limit.clone()),
                _ => None,
            },
            "localhost",
        )
    };
    let err = dist("none").unwrap_err();
    assert!(err.to_string().contains("SNOW_MAILBOX_LIMIT=\"none\""), "{err}");
    let config = dist("7").unwrap().unwrap();
    assert_eq!(config.mailbox_limit, Some(7));
    assert_eq!(NodeBuilder::from_config(config).default_mailbox_limit(), Some(7));
}
