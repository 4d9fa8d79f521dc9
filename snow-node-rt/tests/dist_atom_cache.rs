//! The atom cache (PROTOCOL.md 4.4) between two nodes of one process: many messages, to a pid and
//! to a registered name, arrive intact and in order with the cache and without it (a peer that
//! does not offer it), and with it a repeated small message costs fewer bytes on the wire.

mod support;

use snow_node_rt::{Node, Term};
use support::*;

const MESSAGES: i64 = 3_000;

/// A message with atoms, a pid and a string inside, different for each `seq`.
fn message(seq: i64, pid: &snow_node_rt::Pid) -> Term {
    Term::tuple([
        Term::atom("reading"),
        Term::Int(seq),
        Term::Pid(pid.clone()),
        Term::List(vec![Term::atom("alpha"), Term::atom(if seq % 2 == 0 { "even" } else { "odd" })]),
        Term::String(format!("sample {seq}")),
    ])
}

/// Sends [`MESSAGES`] messages from a process on `a` to a collector on `b` (half to its pid,
/// half to its registered name) and checks each arrives, in order; returns the frame bytes `a`'s
/// connection wrote per message.
async fn bytes_per_message(a: &Node, b: &Node) -> f64 {
    let (collector, rx) = collector(b);
    b.register("sink", &collector).unwrap();
    a.connect(b.name()).await.unwrap();
    // One message first, so that what the connection writes at its start is not counted.
    let (to, b_name) = (collector.clone(), b.name().clone());
    in_process(a, move |me| async move { me.send(&to, Term::atom("warm_up")) }).await;
    assert_eq!(next(&rx).await, Term::atom("warm_up"));
    let before = a.connection_bytes_written(b.name()).unwrap();
    let to = collector.clone();
    let sender = in_process(a, move |me| async move {
        for seq in 0..MESSAGES {
            let msg = message(seq, me.pid());
            if seq % 2 == 0 {
                me.send(&to, msg);
            } else {
                me.send_named_on("sink", &b_name, msg).unwrap();
            }
        }
        me.pid().clone()
    })
    .await;
    for seq in 0..MESSAGES {
        assert_eq!(next(&rx).await, message(seq, &sender), "message {seq}");
    }
    let written = a.connection_bytes_written(b.name()).unwrap() - before;
    written as f64 / MESSAGES as f64
}

#[test]
fn messages_arrive_intact_with_and_without_the_atom_cache_and_cost_less_with_it() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "cache_sender").start().await.unwrap();
        let b = builder(&epmd, "cache_receiver").start().await.unwrap();
        let cached = bytes_per_message(&a, &b).await;
        // A peer that does not offer the cache: the connection writes every frame in full.
        let c = builder(&epmd, "plain_sender").atom_cache(false).start().await.unwrap();
        let d = builder(&epmd, "plain_receiver").start().await.unwrap();
        let plain = bytes_per_message(&c, &d).await;
        // Full frames name three pids' nodes (over 20 bytes each) and three or four atoms of 3
        // bytes or more (the registered name included); cached, each is an index.
        assert!(cached + 40.0 < plain, "{cached:.1} bytes per message with the cache, {plain:.1} without");
        shutdown_all(&[a, b, c, d]).await;
    });
}
