//! Shared binaries (README, "Shared binaries"): a binary over 64 bytes sent to many processes, one
//! by one or by a group broadcast, reaches every one of them without being copied; a small one
//! is copied per send, as before.

mod support;

use snow_node_rt::{Node, Pid, Process, Term};
use support::*;

const RECEIVERS: usize = 1_000;

/// Spawns `n` processes on `node` that each answer the first message they get with
/// `{where its bytes are, the message}` to `report_to`.
fn echoes(me: &Process, n: usize) -> Vec<Pid> {
    let report_to = me.pid().clone();
    (0..n)
        .map(|_| {
            let report_to = report_to.clone();
            me.spawn(move |mut p| async move {
                let msg = p.receive().await;
                let at = msg.as_bytes().map_or(0, |b| b.as_ptr() as usize);
                p.send(&report_to, Term::tuple([Term::Int(at as i64), msg]));
            })
        })
        .collect()
}

/// Receives `n` reports of [`echoes`]: the data address each receiver saw, with what it got.
async fn reports(me: &mut Process, n: usize) -> Vec<(usize, Term)> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let report = within(me.receive()).await;
        match report.into_tuple_array() {
            Ok([Term::Int(at), msg]) => got.push((at as usize, msg)),
            Ok(other) => panic!("unexpected report {other:?}"),
            Err(other) => panic!("unexpected message {other}"),
        }
    }
    got
}

fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_64_kib_binary_sent_to_1000_local_processes_is_not_copied() {
    run(async {
        let node = Node::local();
        let (sent_at, received) = in_process(&node, |mut me| async move {
            let receivers = echoes(&me, RECEIVERS);
            let msg = Term::binary(blob(64 << 10));
            let sent_at = msg.as_binary().unwrap().as_ptr() as usize;
            for pid in &receivers {
                me.send(pid, msg.clone());
            }
            drop(msg);
            (sent_at, reports(&mut me, RECEIVERS).await)
        })
        .await;
        assert_eq!(received.len(), RECEIVERS);
        for (at, msg) in received {
            assert_eq!(at, sent_at, "every receiver sees the sender's bytes, not a copy");
            assert_eq!(msg.as_binary().unwrap().as_ptr() as usize, sent_at);
            assert_eq!(msg.as_bytes(), Some(&blob(64 << 10)[..]));
        }
    });
}

#[test]
fn a_64_kib_binary_broadcast_to_a_group_of_1000_is_not_copied() {
    run(async {
        let epmd = epmd().await;
        let node = node(&epmd, "a").await;
        let (sent_at, received) = in_process(&node, |mut me| async move {
            let members = echoes(&me, RECEIVERS);
            let room = Term::atom("room");
            me.groups().join(room.clone(), &members).unwrap();
            let msg = Term::binary(blob(64 << 10));
            let sent_at = msg.as_binary().unwrap().as_ptr() as usize;
            assert_eq!(me.groups().broadcast(&room, msg), RECEIVERS);
            (sent_at, reports(&mut me, RECEIVERS).await)
        })
        .await;
        assert_eq!(received.len(), RECEIVERS);
        for (at, msg) in received {
            assert_eq!(at, sent_at, "every member sees the sender's bytes, not a copy");
            assert_eq!(msg.as_bytes(), Some(&blob(64 << 10)[..]));
        }
        node.shutdown().await;
    });
}

#[test]
fn a_binary_of_64_bytes_or_less_is_copied_per_send_with_the_same_content() {
    run(async {
        let node = Node::local();
        let (sent_at, received) = in_process(&node, |mut me| async move {
            let receivers = echoes(&me, 10);
            let msg = Term::binary(blob(64));
            let sent_at = msg.as_binary().unwrap().as_ptr() as usize;
            for pid in &receivers {
                me.send(pid, msg.clone());
            }
            (sent_at, reports(&mut me, 10).await)
        })
        .await;
        for (at, msg) in received {
            assert_ne!(at, sent_at, "a small binary is each receiver's own");
            assert_eq!(msg, Term::binary(blob(64)));
        }
    });
}
