//! Hostile and broken peers (issue 5, security): wrong cookies, garbage, stalled handshakes,
//! malformed frames, silent peers.

mod support;

use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::io::AsyncWriteExt;
use snow_node_rt::dist::DistError;
use snow_node_rt::Term;
use snow_shared::cookie::Cookie;
use snow_shared::dist::handshake::HandshakeError;
use support::*;

#[test]
fn wrong_cookie_is_rejected_on_both_sides() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = builder(&epmd, "b")
            .cookie(Cookie::from_bytes(b"another-cookie-entirely-1234").unwrap())
            .start()
            .await
            .unwrap();
        // B dials A: A rejects B's proof; B reports it.
        let err = b.connect(&name("a")).await.unwrap_err();
        assert!(matches!(err, DistError::Connect { .. }), "{err}");
        assert!(err.to_string().contains("proof"), "{err}");
        // A dials B: B rejects A's proof.
        let err = a.connect(&name("b")).await.unwrap_err();
        assert!(matches!(err, DistError::Connect { .. }), "{err}");
        assert!(!err.to_string().contains("another-cookie"), "the cookie never appears in errors");
        assert!(a.nodes().is_empty() && b.nodes().is_empty());
        // A process on B sending to A: dropped, nothing delivered.
        let (on_a, rx) = collector(&a);
        b.send(&on_a, Term::atom("sneaky"));
        snow_node_rt::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err());
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn failed_authentications_are_rate_limited_per_address() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a").auth_failures_per_minute(2).start().await.unwrap();
        // From another address than the node's own (a connection from the node's own address is
        // a node of this host, and counts against the total only).
        let source: std::net::IpAddr = "127.0.0.3".parse().unwrap();
        let x = name("x");
        for _ in 0..2 {
            let wrong = raw::Peer {
                name: &x,
                cookie: b"wrong-cookie-wrong-cookie-42",
                flags: None,
                tls: None,
                from: Some(source),
            };
            let err = raw::dial_as(&a, wrong).await.unwrap_err();
            assert!(matches!(err, raw::RawError::Handshake(HandshakeError::ProofRejected)), "{err:?}");
        }
        // Now even the right cookie from this address gets only a close, without a handshake.
        let b = name("b");
        let right = raw::Peer { name: &b, cookie: COOKIE, flags: None, tls: None, from: Some(source) };
        let err = raw::dial_as(&a, right).await.unwrap_err();
        assert!(matches!(err, raw::RawError::Tls(_)), "{err:?}");
        assert!(a.nodes().is_empty());
        // A node of this host still gets in.
        let c = node(&epmd, "c").await;
        c.connect(&a.name().clone()).await.unwrap();
        a.shutdown().await;
        c.shutdown().await;
    });
}

#[test]
fn plain_tcp_and_garbage_get_a_close_and_nothing_else() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let addr = a.listen_addr().unwrap();
        // Plain text instead of TLS.
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        assert!(raw::closes(&mut plain).await);
        // Random bytes.
        let mut junk = TcpStream::connect(addr).await.unwrap();
        junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]).await.unwrap();
        assert!(raw::closes(&mut junk).await);
        // The node still works.
        let b = node(&epmd, "b").await;
        b.connect(&name("a")).await.unwrap();
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// Handshake deadline of the node in the cap test: long, so that a connection closed soon after
/// it was made can only have been closed by the cap, never by the deadline.
const CAP_TEST_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(6);
/// How soon a connection over the cap must be closed. The listener shuts it before TLS as soon as
/// it accepts it (a few ms); 2 s leaves room for a loaded machine and is still far from the
/// 6 s deadline, the only other way such a connection gets closed.
const CAP_CLOSE_BOUND: Duration = Duration::from_secs(2);

/// Whether the other end closes `stream` within `bound`.
async fn closes_within(stream: &mut TcpStream, bound: Duration) -> bool {
    use smol_timeout::TimeoutExt;
    raw::closes(stream).timeout(bound).await.unwrap_or(false)
}

#[test]
fn stalled_handshakes_do_not_block_others_and_are_capped_and_timed_out() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a")
            .max_pending_handshakes(4)
            .handshake_timeout(CAP_TEST_HANDSHAKE_TIMEOUT)
            .start()
            .await
            .unwrap();
        let addr = a.listen_addr().unwrap();
        // Three peers connect and say nothing: they hold three of the four handshake slots.
        let stalled_at = Instant::now();
        let mut stalled = Vec::new();
        for _ in 0..3 {
            stalled.push(TcpStream::connect(addr).await.unwrap());
        }
        snow_node_rt::sleep(Duration::from_millis(100)).await;
        // A real node still gets through, concurrently with the stalled ones.
        let b = node(&epmd, "b").await;
        b.connect(&name("a")).await.unwrap();
        // Over the cap, new connections are closed at once (the listener shuts them before TLS: the
        // client reads EOF). The first extra one may take the fourth slot, or may not if B's
        // handshake task has not released its slot yet: at least two of three are over the cap.
        // Each must be closed within CAP_CLOSE_BOUND of being made, long before the deadline.
        let mut checks = Vec::new();
        for _ in 0..3 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            checks.push(snow_node_rt::spawn_task(async move { closes_within(&mut s, CAP_CLOSE_BOUND).await }));
        }
        let mut closed = 0;
        for check in checks {
            if check.await == Some(true) {
                closed += 1;
            }
        }
        assert!(closed >= 2, "connections over the cap are closed at once ({closed} of 3 within {CAP_CLOSE_BOUND:?})");
        // The stalled ones are closed at the handshake deadline, not before.
        for s in stalled.iter_mut() {
            assert!(raw::closes(s).await);
        }
        let waited = stalled_at.elapsed();
        assert!(
            waited + Duration::from_millis(200) >= CAP_TEST_HANDSHAKE_TIMEOUT,
            "stalled handshakes closed after {waited:?}, before the {CAP_TEST_HANDSHAKE_TIMEOUT:?} deadline"
        );
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn malformed_frames_close_that_connection_only() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        b.connect(&name("a")).await.unwrap();
        // An authenticated peer sends an oversized frame header.
        let mut bad = raw::dial(&a, "x", COOKIE).await.unwrap();
        eventually("x connected", || a.nodes().len() == 2).await;
        bad.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
        bad.flush().await.unwrap();
        assert!(raw::closes(&mut bad).await);
        // Another sends an unknown control tag.
        let mut bad = raw::dial(&a, "y", COOKIE).await.unwrap();
        bad.write_all(&[0, 0, 0, 1, 0x7e]).await.unwrap();
        bad.flush().await.unwrap();
        assert!(raw::closes(&mut bad).await);
        // A third starts a fragmented message and disappears mid-way: the connection closes and the
        // partial message is freed with it.
        let mut bad = raw::dial(&a, "z", COOKIE).await.unwrap();
        let mut start = vec![0xf0];
        start.extend_from_slice(&1u64.to_be_bytes());
        start.extend_from_slice(&(10u64 << 20).to_be_bytes());
        start.extend_from_slice(&[0x01; 1000]);
        bad.write_all(&(start.len() as u32).to_be_bytes()).await.unwrap();
        bad.write_all(&start).await.unwrap();
        bad.flush().await.unwrap();
        drop(bad);
        eventually("bad peers gone", || a.nodes() == vec![b.name().clone()]).await;
        // B's connection was not affected.
        let (on_a, rx) = collector(&a);
        b.send(&on_a, Term::atom("still_fine"));
        assert_eq!(next(&rx).await, Term::atom("still_fine"));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn a_silent_peer_is_declared_down_after_the_ticktime() {
    run(async {
        let epmd = epmd().await;
        let a = builder(&epmd, "a").ticktime(Duration::from_millis(400)).start().await.unwrap();
        let (watcher, rx) = collector(&a);
        a.spawn({
            let watcher = watcher.clone();
            move |me| async move {
                me.monitor_nodes(true);
                // Forward this process's node events to the collector.
                let mut me = me;
                loop {
                    let m = me.receive().await;
                    if m.is_atom("stop") {
                        return;
                    }
                    me.send(&watcher, m);
                }
            }
        });
        snow_node_rt::sleep(Duration::from_millis(50)).await;
        // Authenticates, then never sends a byte (not even ticks), while its socket stays open.
        let frozen = raw::dial(&a, "frozen", COOKIE).await.unwrap();
        let up = next(&rx).await;
        let up_at = std::time::Instant::now();
        assert_eq!(up.to_string(), "{:nodeup, :\"frozen@127.0.0.1\"}");
        let down = next(&rx).await;
        let silent_for = up_at.elapsed();
        assert_eq!(down.as_tuple().unwrap()[0], Term::atom("nodedown"));
        // Declared down after a ticktime of silence (400 ms), not much later: the liveness check runs
        // every ticktime/4, so ~500 ms; 2 s leaves room for a loaded machine.
        assert!(
            silent_for >= Duration::from_millis(300) && silent_for < Duration::from_secs(2),
            "nodedown {silent_for:?} after nodeup"
        );
        assert!(a.nodes().is_empty());
        drop(frozen);
        a.shutdown().await;
    });
}
