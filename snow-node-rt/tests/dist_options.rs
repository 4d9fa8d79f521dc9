//! Distribution options and their observable effects: non-transitive nodes, reconnect backoff,
//! per-connection output budgets (`try_send` / `send_async`), and CA-verified mutual TLS.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_net::TcpListener;
use futures_lite::io::AsyncReadExt;
use smol_timeout::TimeoutExt;
use snow_node_rt::dist::TrySendError;
use snow_node_rt::{Pid, Term};
use snow_shared::dist::test_ca::TestCa;
use support::*;

/// Starts nodes `a` (with `transitive`), `b` and `c` on their own snow-epmd, connects B to C, then
/// A to B; returns `[a, b, c]`.
async fn join_through_b(transitive: bool) -> Vec<snow_node_rt::Node> {
    let epmd = epmd().await;
    let a = builder(&epmd, "a").transitive(transitive).start().await.unwrap();
    let b = node(&epmd, "b").await;
    let c = node(&epmd, "c").await;
    b.connect(&name("c")).await.unwrap();
    a.connect(&name("b")).await.unwrap();
    vec![a, b, c]
}

#[test]
fn a_non_transitive_node_connects_only_where_it_is_told() {
    run(async {
        // The control: a transitive node joining through B meets C too.
        let started = std::time::Instant::now();
        let control = join_through_b(true).await;
        eventually("the control's full mesh", || control[0].nodes().len() == 2).await;
        let control_mesh_time = started.elapsed();
        let nodes = join_through_b(false).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        // Give A several times what the control took to make a transitive connection.
        snow_node_rt::sleep((control_mesh_time * 3).max(Duration::from_millis(300))).await;
        assert_eq!(a.nodes(), vec![b.name().clone()]);
        assert_eq!(c.nodes(), vec![b.name().clone()]);
        // A still reaches C when a message needs it (on-demand connects are not transitive ones).
        let (on_c, rx) = collector(c);
        a.send(&on_c, Term::atom("direct"));
        assert_eq!(next(&rx).await, Term::atom("direct"));
        assert!(a.nodes().contains(c.name()));
        for n in nodes.iter().chain(&control) {
            n.shutdown().await;
        }
    });
}

/// Registers `short@127.0.0.1` with `epmd` at a TCP port that accepts connections and closes them
/// at once; returns the number of connections it has seen.
async fn unreachable_node(
    epmd: &snow_epmd::ServerHandle,
    short: &str,
) -> (Arc<AtomicUsize>, snow_epmd::client::Registration) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dials = Arc::new(AtomicUsize::new(0));
    let counter = dials.clone();
    snow_node_rt::spawn_task(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let registration = snow_epmd::client::register(&epmd.local_addr().to_string(), &name(short), port).await.unwrap();
    (dials, registration)
}

#[test]
fn sends_to_an_unreachable_node_dial_once_per_backoff_period() {
    run(async {
        let epmd = epmd().await;
        let (dials, _registration) = unreachable_node(&epmd, "ghost").await;
        let a = builder(&epmd, "a").connect_attempts(1).start().await.unwrap();
        let ghost = Pid::new(name("ghost"), 1, 1);
        a.send(&ghost, Term::atom("one"));
        eventually("the first dial", || dials.load(Ordering::SeqCst) == 1).await;
        // A flood of sends over 40 ms: the first backoff delay is 50-100 ms, so at most one more
        // dial (if this machine stalled past it), never one per send.
        for _ in 0..40 {
            a.send(&ghost, Term::atom("flood"));
            snow_node_rt::sleep(Duration::from_millis(1)).await;
        }
        snow_node_rt::sleep(Duration::from_millis(20)).await;
        let after_flood = dials.load(Ordering::SeqCst);
        assert!(after_flood <= 2, "{after_flood} dials for 41 sends within the backoff period");
        // Once the delay has passed, a send dials again.
        snow_node_rt::sleep(Duration::from_millis(250)).await;
        a.send(&ghost, Term::atom("later"));
        eventually("a dial after the backoff", || dials.load(Ordering::SeqCst) > after_flood).await;
        // An explicit connect ignores the backoff and reports the failure.
        let before = dials.load(Ordering::SeqCst);
        assert!(a.connect(&name("ghost")).await.is_err());
        assert!(dials.load(Ordering::SeqCst) > before);
        assert!(a.nodes().is_empty());
        a.shutdown().await;
    });
}

#[test]
fn a_peer_that_stops_reading_makes_try_send_busy_and_send_async_wait() {
    run(async {
        let epmd = epmd().await;
        let budget = 256 << 10;
        let a = builder(&epmd, "a").byte_budget(budget).start().await.unwrap();
        // An authenticated peer that never reads: A's queue to it can only grow until the budget.
        let mut stuck = raw::dial(&a, "stuck", COOKIE).await.unwrap();
        eventually("stuck connected", || a.nodes().len() == 1).await;
        let target = Pid::new(name("stuck"), 1, 7);
        let (busy_tx, busy_rx) = async_channel::unbounded();
        let (done_tx, done_rx) = async_channel::unbounded();
        let payload = Term::binary(vec![7u8; 16 << 10]);
        a.spawn(move |me| async move {
            // Loopback socket buffers take a few MiB before the queue itself fills: send until
            // `try_send` has said Busy for 200 ms in a row.
            let mut sent = 0usize;
            let mut first_busy = None;
            let mut busy_for = 0;
            while busy_for < 10 && sent <= 256 << 20 {
                match me.try_send(&target, payload.clone()) {
                    Ok(()) => {
                        sent += 16 << 10;
                        busy_for = 0;
                        if sent % (1 << 20) == 0 {
                            snow_node_rt::yield_now().await;
                        }
                    }
                    Err(TrySendError::Busy { msg, node }) => {
                        first_busy.get_or_insert((msg == payload, node.to_string(), sent));
                        busy_for += 1;
                        snow_node_rt::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            busy_tx.send((busy_for == 10).then_some(first_busy).flatten()).await.unwrap();
            // A waiting send completes only when the peer reads again.
            me.send_async(&target, Term::atom("after_busy")).await;
            done_tx.send(()).await.unwrap();
        });
        let outcome = busy_rx.recv().timeout(WAIT).await.unwrap().unwrap();
        let (returned, busy_node, sent) = outcome.expect("try_send never said Busy");
        assert!(returned, "Busy did not give the message back");
        assert_eq!(busy_node, "stuck@127.0.0.1");
        assert!(sent >= budget, "Busy after {sent} bytes, under the {budget}-byte budget");
        assert!(
            done_rx.recv().timeout(Duration::from_millis(300)).await.is_none(),
            "send_async returned while the connection was over its budget"
        );
        // The peer reads again: the queue drains and the waiting sender goes on.
        let drain = snow_node_rt::spawn_task(async move {
            let mut buf = vec![0u8; 1 << 16];
            let _ = async { while stuck.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {} }
                .timeout(Duration::from_secs(10))
                .await;
        });
        done_rx.recv().timeout(WAIT).await.expect("send_async still waiting after the peer read").unwrap();
        a.shutdown().await;
        let _ = drain.cancel().await;
    });
}

/// PEM certificate, key and CA for a node whose host is 127.0.0.1.
fn leaf_for_localhost(ca: &TestCa) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let leaf = ca.leaf("127.0.0.1");
    (leaf.cert.into_bytes(), leaf.key.into_bytes(), leaf.ca.into_bytes())
}

#[test]
fn a_ca_verified_cluster_admits_only_certificates_of_its_ca() {
    run(async {
        let epmd = epmd().await;
        let ca = TestCa::new();
        let with_ca = |short: &str, (cert, key, ca): (Vec<u8>, Vec<u8>, Vec<u8>)| {
            builder(&epmd, short).tls_pem(cert, key, ca).connect_attempts(1)
        };
        let a = with_ca("a", leaf_for_localhost(&ca)).start().await.unwrap();
        let b = with_ca("b", leaf_for_localhost(&ca)).start().await.unwrap();
        let (on_b, rx) = collector(&b);
        a.send(&on_b, Term::atom("verified"));
        assert_eq!(next(&rx).await, Term::atom("verified"));
        assert_eq!(b.nodes(), vec![a.name().clone()]);
        // The right cookie is not enough: a certificate from another CA is refused both ways.
        let outsider = with_ca("outsider", leaf_for_localhost(&TestCa::new())).start().await.unwrap();
        assert!(outsider.connect(&name("b")).await.is_err());
        assert!(b.connect(&name("outsider")).await.is_err());
        // So is a node with the default self-signed certificate.
        let plain = builder(&epmd, "plain").connect_attempts(1).start().await.unwrap();
        assert!(plain.connect(&name("b")).await.is_err());
        assert_eq!(b.nodes(), vec![a.name().clone()]);
        for n in [a, b, outsider, plain] {
            n.shutdown().await;
        }
    });
}
