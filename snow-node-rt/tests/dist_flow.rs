//! Ordering, large messages and connection failures.

mod dist_support;

use std::time::Duration;

use dist_support::*;
use snow_node_rt::dist::DistError;
use snow_node_rt::Term;

#[async_std::test]
async fn one_sender_s_100_000_messages_arrive_in_order() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let b = node(&epmd, "b").await;
    const N: i64 = 100_000;
    let (tx, rx) = async_std::channel::bounded(1);
    let counter = b.spawn(move |mut me| async move {
        let mut expected = 0;
        while expected < N {
            match me.receive().await {
                Term::Int(i) if i == expected => expected += 1,
                other => {
                    let _ = tx.send(Err(format!("expected {expected}, got {other}"))).await;
                    return;
                }
            }
        }
        let _ = tx.send(Ok(expected)).await;
    });
    let to = counter.pid().clone();
    a.spawn(move |me| async move {
        for i in 0..N {
            me.send_async(&to, Term::Int(i)).await;
        }
    });
    let result = async_std::future::timeout(Duration::from_secs(60), rx.recv()).await.unwrap().unwrap();
    assert_eq!(result, Ok(N));
    a.shutdown().await;
    b.shutdown().await;
}

#[async_std::test]
async fn a_100_mb_message_does_not_hold_back_a_small_one() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let b = node(&epmd, "b").await;
    let (sink, rx) = collector(&b);
    a.connect("b@127.0.0.1").await.unwrap();
    let big_to = sink.clone();
    let (sent_tx, sent_rx) = async_std::channel::bounded(1);
    a.spawn(move |me| async move {
        me.send(&big_to, Term::binary(vec![7u8; 100 << 20]));
        let _ = sent_tx.send(()).await;
    });
    sent_rx.recv().await.unwrap();
    // Another process sends a small message after the big one was queued.
    let small_to = sink.clone();
    a.spawn(move |me| async move { me.send(&small_to, Term::atom("small")) });
    let first = next(&rx).await;
    assert_eq!(first, Term::atom("small"), "the small message arrives first");
    let second = async_std::future::timeout(Duration::from_secs(120), rx.recv()).await.unwrap().unwrap();
    match second {
        Term::Binary(bytes) => assert_eq!(bytes.len(), 100 << 20),
        other => panic!("expected the big binary, got {}", other.kind()),
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[async_std::test]
async fn illegal_names_and_nonexistent_nodes_fail_cleanly() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let long = format!("{}@127.0.0.1", "n".repeat(65));
    for bad in ["a@b@c", "", long.as_str(), "no_at_sign", "sp ace@h"] {
        let err = a.connect(bad).await.unwrap_err();
        assert!(matches!(err, DistError::BadNodeName { .. }), "{bad:?}: {err}");
    }
    // 256 connects at once, each to a node nobody registered.
    let handles: Vec<_> = (0..256)
        .map(|i| {
            let a = a.clone();
            async_std::task::spawn(async move { a.connect(&format!("ghost{i}@127.0.0.1")).await })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await);
    }
    for r in &results {
        assert!(matches!(r, Err(DistError::NotRegistered(_))), "{r:?}");
    }
    // Sends to a nonexistent node are dropped; nothing stays behind.
    let ghost = snow_node_rt::Pid::new(name("ghost0"), 1, 1);
    for _ in 0..100 {
        a.send(&ghost, Term::atom("lost"));
    }
    eventually("no pending peers", || a.nodes().is_empty()).await;
    assert_eq!(a.process_count(), 0);
    a.shutdown().await;
}
