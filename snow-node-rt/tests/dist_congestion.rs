//! Nothing is dropped on a live connection (README, "Guarantees"): a sender that floods a
//! congested connection is suspended at its next `.await` and loses nothing; one that never
//! awaits is stopped at the hard ceiling and loses nothing it sent before; signals are never
//! refused; `{:nodeup, n}` reaches subscribers before anything from `n` and `{:nodedown, n}`
//! after it.

mod support;

use std::time::Duration;

use async_channel::Receiver;
use smol_timeout::TimeoutExt;
use snow_node_rt::{reason, Node, Pid, Term};
use snow_shared::dist::control::Control;
use support::*;

/// A process on `node` that checks it receives `0, 1, 2, ...` and reports how many it got in
/// order, or the first gap, once it has `expected` or gets `:done`.
fn sequence_checker(node: &Node, expected: i64) -> (Pid, Receiver<Result<i64, String>>) {
    let (tx, rx) = async_channel::bounded(1);
    let pid = node.spawn(move |mut me| async move {
        let mut next = 0;
        while next < expected {
            match me.receive().await {
                Term::Tuple(parts) if parts.first() == Some(&Term::Int(next)) => next += 1,
                Term::Atom(a) if a.as_str() == "done" => break,
                other => {
                    let _ = tx.send(Err(format!("expected {next}, got {other}"))).await;
                    return;
                }
            }
        }
        let _ = tx.send(Ok(next)).await;
    });
    (pid, rx)
}

/// Message `seq` of a flood: `{seq, <<payload>>}`.
fn numbered(seq: i64, payload: usize) -> Term {
    Term::tuple([Term::Int(seq), Term::binary(vec![b'x'; payload])])
}

const FLOOD_BUDGET: usize = 1 << 20;
const FLOOD_MESSAGES: i64 = 1_000_000;
const FLOOD_PAYLOAD: usize = 64;
/// The flooding process yields after this many sends: its only suspension point.
const SENDS_PER_YIELD: i64 = 256;

/// The bound on the sending side's queue: the budget, plus what the sender sends between two
/// suspension points after crossing it (each frame is the payload plus under 64 bytes of pids,
/// tags and framing).
fn flood_queue_bound() -> usize {
    FLOOD_BUDGET + SENDS_PER_YIELD as usize * (FLOOD_PAYLOAD + 64)
}

#[test]
fn a_flood_of_a_million_plain_sends_loses_nothing_keeps_order_and_bounds_the_queue() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a").byte_budget(FLOOD_BUDGET).start().await.unwrap();
        let b = node(&epmd, "b").await;
        let (checker, result) = sequence_checker(&b, FLOOD_MESSAGES);
        let (tx, sent) = async_channel::bounded(1);
        a.spawn(move |me| async move {
            for seq in 0..FLOOD_MESSAGES {
                me.send(&checker, numbered(seq, FLOOD_PAYLOAD));
                if seq % SENDS_PER_YIELD == SENDS_PER_YIELD - 1 {
                    snow_node_rt::yield_now().await;
                }
            }
            let _ = tx.send(()).await;
        });
        sent.recv().timeout(TEST_DEADLINE).await.expect("the sender finished").unwrap();
        let got = result.recv().timeout(TEST_DEADLINE).await.expect("the receiver finished").unwrap();
        assert_eq!(got, Ok(FLOOD_MESSAGES), "every message arrived, in order");
        let high_water = a.send_queue_high_water(b.name()).expect("still connected");
        eprintln!("flood: send queue high water {high_water} bytes (bound {})", flood_queue_bound());
        assert!(high_water > FLOOD_BUDGET, "the connection was congested ({high_water} bytes at most)");
        assert!(high_water <= flood_queue_bound(), "the queue grew to {high_water} bytes");
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_sender_that_never_awaits_stops_at_the_ceiling_and_loses_nothing_before() {
    run(async {
        let epmd = epmd().await;
        let budget = 256 << 10;
        let a = builder(&epmd, "a").byte_budget(budget).queue_ceiling(2 * budget).start().await.unwrap();
        let b = node(&epmd, "b").await;
        // b forwards the sequence numbers it gets, in arrival order.
        let (seq_tx, seqs) = async_channel::unbounded();
        let checker = b.spawn(move |mut me| async move {
            loop {
                let msg = me.receive().await;
                let seq = msg.as_tuple().and_then(|t| t[0].as_int()).unwrap_or(-1);
                if seq_tx.send(seq).await.is_err() {
                    return;
                }
            }
        });
        let (tx, ended) = async_channel::bounded(1);
        a.spawn(move |mut me| async move {
            // 64 KiB messages, never an `.await`: the ceiling (512 KiB) is reached long before
            // the 10,000th.
            me.spawn_monitor(move |flooder| async move {
                for seq in 0..10_000 {
                    flooder.send(&checker, numbered(seq, 64 << 10));
                }
            });
            let _ = tx.send(me.receive().await).await;
        });
        let down = ended.recv().timeout(WAIT).await.expect("the flooder ended").unwrap();
        let reason = down.as_tuple().unwrap()[3].clone();
        assert_eq!(reason, reason::send_queue_overflow(b.name()), "the flooder is stopped, visibly");
        // Everything it queued before the refused message arrives, in order, with no gap; then
        // nothing (it sent nothing after it was stopped).
        let mut arrived = Vec::new();
        while let Some(Ok(seq)) = seqs.recv().timeout(Duration::from_millis(500)).await {
            arrived.push(seq);
        }
        let expected: Vec<i64> = (0..arrived.len() as i64).collect();
        assert_eq!(arrived, expected, "a gapless prefix of the flood");
        assert!(arrived.len() >= 8, "at least what fits under the ceiling arrived ({} messages)", arrived.len());
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn signals_sent_while_the_queue_is_over_budget_all_arrive() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a").byte_budget(64 << 10).start().await.unwrap();
        // x authenticates, then reads nothing until everything is queued: a's writes stall.
        let mut x = raw::Conversation::dial(&a, "x", None).await;
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        let x_pid = |id| Pid::new(name("x"), id, 7);
        // A process fills the socket and then the queue with 64 KiB messages; it yields after
        // each, so it is suspended once the queue is over the budget (and not stopped).
        a.spawn(move |me| async move {
            for seq in 0..256 {
                me.send(&x_pid(1), numbered(seq, 64 << 10));
                snow_node_rt::yield_now().await;
            }
        });
        eventually("the queue is over its budget", || {
            a.send_queue_high_water(&name("x")).is_some_and(|bytes| bytes > 64 << 10)
        })
        .await;
        // Meanwhile 500 processes each link to, monitor and send an exit to a process of x.
        const SIGNALLERS: u64 = 500;
        let (tx, done) = async_channel::unbounded();
        for id in 0..SIGNALLERS {
            let tx = tx.clone();
            a.spawn(move |me| async move {
                me.trap_exit(true);
                let target = x_pid(100 + id);
                me.link(&target).unwrap();
                me.monitor(&target);
                me.send_exit(&target, Term::atom("signal"));
                let _ = tx.send(()).await;
                // Stay alive: an exit would add signals of its own.
                snow_node_rt::sleep(WAIT).await;
            });
        }
        for _ in 0..SIGNALLERS {
            done.recv().timeout(WAIT).await.unwrap().unwrap();
        }
        // x reads everything now: every message in order, and every signal.
        let (mut links, mut monitors, mut exits, mut next_seq) = (0, 0, 0, 0);
        while links < SIGNALLERS || monitors < SIGNALLERS || exits < SIGNALLERS || next_seq < 256 {
            match x.next().await {
                Control::Link { .. } => links += 1,
                Control::Monitor { .. } => monitors += 1,
                Control::Exit2 { .. } => exits += 1,
                Control::Send { msg, .. } => {
                    assert_eq!(msg.as_tuple().unwrap()[0], Term::Int(next_seq), "messages in order");
                    next_seq += 1;
                }
                _ => {}
            }
        }
        a.shutdown().await;
    });
}

#[test]
fn a_message_from_outside_any_process_at_the_ceiling_closes_the_connection() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a").byte_budget(64 << 10).queue_ceiling(128 << 10).start().await.unwrap();
        let events = node_events(&a).await;
        let _x = raw::Conversation::dial(&a, "x", None).await;
        assert_eq!(next(&events).await.to_string(), "{:nodeup, :\"x@127.0.0.1\"}");
        // x never reads: the socket fills, then the queue reaches its ceiling.
        let to = Pid::new(name("x"), 1, 7);
        for seq in 0..1024 {
            a.send(&to, numbered(seq, 64 << 10));
        }
        assert_eq!(next(&events).await.to_string(), "{:nodedown, :\"x@127.0.0.1\"}", "the loss is visible");
        a.shutdown().await;
    });
}

#[test]
fn nodeup_comes_before_anything_from_a_node_over_1000_reconnects() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        // One process gets its node events and b's messages in one mailbox, in mailbox order.
        let (tx, mailbox) = async_channel::unbounded();
        let inbox = a.spawn(move |mut me| async move {
            me.monitor_nodes(true);
            let _ = tx.send(Term::atom("subscribed")).await;
            loop {
                let msg = me.receive().await;
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        assert_eq!(next(&mailbox).await, Term::atom("subscribed"));
        let nodeup = Term::tuple([Term::atom("nodeup"), Term::Atom(b.name().clone().as_atom().clone())]);
        let nodedown = Term::tuple([Term::atom("nodedown"), Term::Atom(b.name().clone().as_atom().clone())]);
        for round in 0..1000 {
            // b sends as soon as it connects: the message is queued while connecting and is the
            // first frame on the new connection.
            let to = inbox.clone();
            b.spawn(move |me| async move { me.send(&to, Term::Int(round)) });
            assert_eq!(next(&mailbox).await, nodeup, "round {round}: nodeup first");
            assert_eq!(next(&mailbox).await, Term::Int(round), "round {round}: then the message");
            a.disconnect(b.name()).unwrap();
            assert_eq!(next(&mailbox).await, nodedown, "round {round}: nodedown after it");
            eventually("b saw the connection go", || b.nodes().is_empty()).await;
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}
