//! Pipelined lookup sessions (Snow request `Q`) against an in-process daemon: answers in order,
//! requests pipelined in one write (even in the same write as `Q`), and the session's limits:
//! non-lookup requests, over-long lengths, an unfinished request, the idle deadline, and the
//! connection cap.

mod common;

use std::time::{Duration, Instant};

use async_net::TcpStream;
use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use snow_epmd::client::{self, ClientError, LookupSession};
use snow_shared::epmd::listing::decode_lookup_resp;
use snow_shared::epmd::session::{next_reply, SESSION_ACK, SESSION_OPEN};
use snow_shared::epmd::wire::{encode_request, Request};
use snow_shared::NodeName;

fn name(s: &str) -> NodeName {
    NodeName::parse(s).unwrap()
}

#[test]
fn a_session_answers_many_lookups_in_order_over_one_connection() {
    run(async {
        let dir = TempDir::new("session");
        let (h, addr) = start(config(&dir)).await;
        let _a = client::register(&addr, &name("a@testhost"), 7001).await.unwrap();
        let _b = client::register(&addr, &name("b@127.0.0.1"), 7002).await.unwrap();
        let mut s = LookupSession::open(&addr).await.unwrap();
        let names = [name("a@testhost"), name("nobody@testhost"), name("b@127.0.0.1"), name("a@TESTHOST")];
        let found = s.lookup_many(&names).await.unwrap();
        let ports: Vec<Option<u16>> = found.iter().map(|f| f.as_ref().map(|f| f.port)).collect();
        assert_eq!(ports, [Some(7001), None, Some(7002), Some(7001)]);
        // EPMD-style lookups by short name in the same session; `b` is registered here as b@127.0.0.1.
        let infos = s.port_please_many(&["a", "b", "zz"]).await.unwrap();
        let ports: Vec<Option<u16>> = infos.iter().map(|i| i.as_ref().map(|i| i.port)).collect();
        assert_eq!(ports, [Some(7001), Some(7002), None]);
        // Many batches on the same connection.
        let batch: Vec<NodeName> =
            (0..500).map(|i| if i % 2 == 0 { name("a@testhost") } else { name("x@h") }).collect();
        for _ in 0..10 {
            let found = s.lookup_many(&batch).await.unwrap();
            assert_eq!(found.iter().filter(|f| f.is_some()).count(), 250);
        }
        assert_eq!(s.lookup(&name("b@127.0.0.1")).await.unwrap().map(|f| f.port), Some(7002));
        drop(s);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn lookups_sent_in_the_same_write_as_the_session_request_are_answered() {
    run(async {
        let dir = TempDir::new("session-first");
        let (h, addr) = start(config(&dir)).await;
        let _a = client::register(&addr, &name("a@testhost"), 7001).await.unwrap();
        let mut bytes = SESSION_OPEN.to_vec();
        for _ in 0..3 {
            bytes.extend(encode_request(&Request::Lookup(b"a@testhost".to_vec())));
        }
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let mut input = Vec::new();
        let mut replies = Vec::new();
        let mut buf = [0u8; 256];
        let end = Instant::now() + Duration::from_secs(5);
        while replies.len() < 4 && Instant::now() < end {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "session closed early");
            input.extend_from_slice(&buf[..n]);
            while let Some((reply, used)) = next_reply(&input).unwrap() {
                replies.push(reply.to_vec());
                input.drain(..used);
            }
        }
        assert_eq!(replies[0], SESSION_ACK[2..]);
        for r in &replies[1..] {
            assert_eq!(decode_lookup_resp(r).unwrap().unwrap().port, 7001);
        }
        h.shutdown().await.unwrap();
    })
}

/// Opens a session by hand, sends `bytes`, and returns everything the daemon sent until it closed.
async fn session_transcript(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&SESSION_OPEN).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_to_close(&mut s).await
}

#[test]
fn anything_but_a_lookup_ends_the_session_and_changes_nothing() {
    run(async {
        let dir = TempDir::new("session-hostile");
        let mut c = config(&dir);
        c.request_timeout = Duration::from_millis(400);
        c.session_idle = Duration::from_millis(300);
        let (h, addr) = start(c).await;
        let lookup = encode_request(&Request::Lookup(b"a@testhost".to_vec()));
        let unknown = [0u8, 2, 0x6c, 1];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("registration inside a session", encode_request(&Request::Alive2(alive(b"sneaky")))),
            ("names inside a session", encode_request(&Request::Names)),
            ("a second session request", SESSION_OPEN.to_vec()),
            ("zero-length request", vec![0, 0]),
            ("length over the limit", vec![0x04, 0x01, b'L']),
            ("empty name", vec![0, 1, b'L']),
            ("unknown tag", vec![0, 1, 0xee]),
        ];
        for (what, bad) in cases {
            // One good lookup first: it is answered, then the bad request ends the session.
            let mut bytes = lookup.clone();
            bytes.extend(&bad);
            bytes.extend(&lookup);
            let got = session_transcript(&addr, &bytes).await;
            let mut expected = SESSION_ACK.to_vec();
            expected.extend(unknown);
            assert_eq!(got, expected, "{what}");
        }
        assert!(h.entries().is_empty());
        // An unfinished request is closed after the request deadline, an idle session after its idle
        // deadline (both short here).
        for (what, bytes) in [("unfinished request", &lookup[..4]), ("idle session", &[][..])] {
            let t = Instant::now();
            let got = session_transcript(&addr, bytes).await;
            assert_eq!(got, SESSION_ACK, "{what}");
            assert!(t.elapsed() >= Duration::from_millis(250), "{what} closed too early: {:?}", t.elapsed());
        }
        // A request trickled a byte at a time within the deadline is served.
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(&SESSION_OPEN).await.unwrap();
        for b in &lookup {
            s.write_all(&[*b]).await.unwrap();
            sleep(Duration::from_millis(20)).await;
        }
        let mut got = [0u8; 8];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 2, b'q', 1, 0, 2, 0x6c, 1]);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn sessions_count_against_the_connection_cap() {
    run(async {
        let dir = TempDir::new("session-cap");
        let mut c = config(&dir);
        c.max_connections = 2;
        let (h, addr) = start(c).await;
        let _a = client::register(&addr, &name("a@testhost"), 7001).await.unwrap();
        // The registration holds one slot, a session the other: the cap is reached.
        let mut s = LookupSession::open(&addr).await.unwrap();
        match LookupSession::open_with(&addr, Duration::from_secs(2)).await {
            Err(ClientError::NoSession(_)) => {}
            other => panic!("a session over the cap must be closed, got {other:?}"),
        }
        assert_eq!(s.lookup(&name("a@testhost")).await.unwrap().map(|f| f.port), Some(7001));
        // Closing the session frees its slot.
        drop(s);
        let end = Instant::now() + Duration::from_secs(5);
        let mut again = LookupSession::open(&addr).await;
        while again.is_err() && Instant::now() < end {
            sleep(Duration::from_millis(20)).await;
            again = LookupSession::open(&addr).await;
        }
        assert_eq!(again.unwrap().lookup(&name("a@testhost")).await.unwrap().map(|f| f.port), Some(7001));
        h.shutdown().await.unwrap();
    })
}

#[test]
fn one_source_holds_at_most_its_sessions_and_a_session_ends_at_its_lifetime() {
    run(async {
        let dir = TempDir::new("session-source");
        let mut c = config(&dir);
        c.max_sessions_per_source = 3;
        c.session_lifetime = Duration::from_millis(1500);
        c.session_idle = Duration::from_secs(30);
        let (h, addr) = start(c).await;
        let _a = client::register(&addr, &name("a@testhost"), 7001).await.unwrap();
        let mut sessions = Vec::new();
        for _ in 0..3 {
            sessions.push(LookupSession::open(&addr).await.unwrap());
        }
        match LookupSession::open_with(&addr, Duration::from_secs(2)).await {
            Err(ClientError::NoSession(_)) => {}
            other => panic!("a fourth session from one address must be closed, got {other:?}"),
        }
        // A busy session still ends at its lifetime: it cannot be held forever.
        let started = Instant::now();
        let mut s = sessions.pop().unwrap();
        let ended = loop {
            match s.lookup(&name("a@testhost")).await {
                Ok(found) => assert_eq!(found.map(|f| f.port), Some(7001)),
                Err(e) => break e,
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the session outlived its lifetime");
            sleep(Duration::from_millis(50)).await;
        };
        assert!(ended.is_unreachable(), "{ended}");
        assert!(started.elapsed() >= Duration::from_millis(1000), "closed too early: {:?}", started.elapsed());
        // Its slot is free again.
        assert!(eventually(|| async_io::block_on(LookupSession::open(&addr)).is_ok()).await);
        h.shutdown().await.unwrap();
    })
}
