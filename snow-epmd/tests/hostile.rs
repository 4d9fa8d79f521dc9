//! Hostile input, after the classes of cases in Erlang's erts/epmd/test/epmd_SUITE.erl, plus
//! idle clients, connection floods and registration floods. Every case checks that the daemon
//! keeps answering and that the table is unchanged.

mod common;

use std::time::{Duration, Instant};

use async_std::io::WriteExt;
use async_std::net::TcpStream;
use common::*;
use snow_epmd::client;
use snow_epmd::server::refusal;
use snow_shared::epmd::table::State;
use snow_shared::epmd::wire::{encode_request, Request, ALIVE2_REQ};
use snow_shared::NodeName;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// The daemon still answers, and holds no entries.
async fn still_healthy_and_empty(h: &snow_epmd::ServerHandle, addr: &str) {
    let n = NodeName::parse("probe@testhost").unwrap();
    assert_eq!(client::lookup(addr, &n).await.unwrap(), None);
    assert!(h.entries().is_empty(), "table changed: {:?}", h.entries());
}

#[async_std::test]
async fn malformed_requests_are_closed_without_reply_and_change_nothing() {
    let dir = TempDir::new("malformed");
    let (h, addr) = start(config(&dir)).await;
    let full = encode_request(&Request::Alive2(alive(b"node")));
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero-length packet", vec![0, 0]),
        ("declared length far over the limit", vec![0xff, 0xff, ALIVE2_REQ, 1, 2, 3]),
        ("length just over the limit", {
            let mut v = vec![0x04, 0x01, ALIVE2_REQ];
            v.extend(std::iter::repeat(b'a').take(1025));
            v
        }),
        ("unknown tag", vec![0, 1, 0xee]),
        ("name length past the end, no filler", frame(&[ALIVE2_REQ, 0, 1, 77, 0, 0, 6, 0, 5, 0xff, 0xf0, b'a'])),
        ("name length past the end, with filler", {
            let mut body = vec![ALIVE2_REQ, 0, 1, 77, 0, 0, 6, 0, 5, 0x03, 0xf0];
            body.extend(std::iter::repeat(b'a').take(900));
            frame(&body)
        }),
        ("name over 255 bytes", encode_request(&Request::Alive2(alive(&[b'a'; 300])))),
        ("NAMES with trailing garbage", vec![0, 2, 110, 0]),
    ];
    for cut in [1, 3, 5, 9, 11] {
        cases.push(("truncated ALIVE2", frame(&full[2..2 + cut])));
    }
    for (what, bytes) in cases {
        let reply = raw(&addr, &bytes).await;
        assert!(reply.is_empty(), "{what}: unexpected reply {reply:?}");
        still_healthy_and_empty(&h, &addr).await;
    }
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn invalid_names_are_refused_with_a_result_code() {
    let dir = TempDir::new("names");
    let (h, addr) = start(config(&dir)).await;
    let long = vec![b'n'; 65];
    for name in [&b"a\0b"[..], &long, b"bad name", b"x@", b"a@b@c", &[0xff, 0xfe]] {
        let reply = raw(&addr, &encode_request(&Request::Alive2(alive(name)))).await;
        assert_eq!(reply, [118, refusal::BAD_NAME, 0, 0, 0, 0], "{name:?}");
    }
    still_healthy_and_empty(&h, &addr).await;
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn idle_and_one_byte_clients_are_closed_after_the_deadline() {
    let dir = TempDir::new("idle");
    let (h, addr) = start(config(&dir)).await;
    let started = Instant::now();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut one = TcpStream::connect(&addr).await.unwrap();
    one.write_all(&[0]).await.unwrap();
    assert!(read_to_close(&mut idle, Duration::from_secs(10)).await.is_empty());
    assert!(read_to_close(&mut one, Duration::from_secs(10)).await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1000), "closed before the 1.5 s deadline");
    still_healthy_and_empty(&h, &addr).await;
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn a_slow_request_a_few_bytes_at_a_time_is_served() {
    let dir = TempDir::new("slow");
    let (h, addr) = start(config(&dir)).await;
    let bytes = encode_request(&Request::Alive2(alive(b"slow")));
    let mut s = TcpStream::connect(&addr).await.unwrap();
    for chunk in bytes.chunks(3) {
        s.write_all(chunk).await.unwrap();
        async_std::task::sleep(Duration::from_millis(60)).await;
    }
    let mut reply = [0u8; 6];
    async_std::io::ReadExt::read_exact(&mut s, &mut reply).await.unwrap();
    assert_eq!(reply[..2], [118, 0]);
    assert_eq!(h.entries()[0].name.as_str(), "slow@testhost");
    drop(s);
    assert!(eventually(Duration::from_secs(3), || h.entries()[0].state == State::Down).await);
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn a_client_gone_before_the_reply_leaves_no_zombie() {
    let dir = TempDir::new("reset");
    let (h, addr) = start(config(&dir)).await;
    for i in 0..20 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(&encode_request(&Request::Alive2(alive(format!("z{i}").as_bytes())))).await.unwrap();
        drop(s);
    }
    assert!(
        eventually(Duration::from_secs(5), || {
            let e = h.entries();
            e.iter().all(|e| e.state == State::Down)
        })
        .await,
        "zombie entries: {:?}",
        h.entries()
    );
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn register_unregister_churn_up_to_the_entry_limit() {
    let dir = TempDir::new("churn");
    let mut cfg = config(&dir);
    cfg.max_entries = 40;
    let (h, addr) = start(cfg).await;
    for round in 0..3 {
        let mut regs = Vec::new();
        for i in 0..40 {
            let n = NodeName::parse(&format!("c{i}@testhost")).unwrap();
            regs.push(
                client::register(&addr, &n, 5000 + i).await.unwrap_or_else(|e| panic!("round {round} #{i}: {e}")),
            );
        }
        let extra = NodeName::parse("one-too-many@testhost").unwrap();
        let err = client::register(&addr, &extra, 1).await.unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        drop(regs);
        assert!(eventually(Duration::from_secs(5), || h.entries().iter().all(|e| e.state == State::Down)).await);
    }
    assert_eq!(h.entries().len(), 40);
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn a_registration_flood_from_one_source_hits_a_cap_with_a_clear_refusal() {
    let dir = TempDir::new("flood");
    let mut cfg = config(&dir);
    cfg.max_per_source = 5;
    let (h, addr) = start(cfg).await;
    let mut regs = Vec::new();
    for i in 0..5 {
        regs.push(client::register(&addr, &NodeName::parse(&format!("f{i}@testhost")).unwrap(), 1).await.unwrap());
    }
    for i in 5..50 {
        let reply = raw(&addr, &encode_request(&Request::Alive2(alive(format!("f{i}").as_bytes())))).await;
        assert_eq!(reply, [118, refusal::LIMIT, 0, 0, 0, 0]);
    }
    assert_eq!(h.entries().len(), 5);
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn a_thousand_simultaneous_connections_do_not_stop_the_daemon_answering() {
    let dir = TempDir::new("conns");
    let (h, addr) = start(config(&dir)).await;
    let _reg = client::register(&addr, &NodeName::parse("busy@testhost").unwrap(), 7).await.unwrap();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        match TcpStream::connect(&addr).await {
            Ok(s) => idle.push(s),
            Err(e) => {
                eprintln!(
                    "SKIPPED part of the test: could only open {} connections ({e}); raise `ulimit -n`",
                    idle.len()
                );
                break;
            }
        }
    }
    assert!(idle.len() >= 500, "could not open enough connections to test");
    // Others are still served while the idle ones wait for their deadline.
    for _ in 0..20 {
        let found = client::lookup(&addr, &NodeName::parse("busy@testhost").unwrap()).await.unwrap();
        assert_eq!(found.unwrap().port, 7);
    }
    // And every idle connection is closed by the daemon.
    for s in idle.iter_mut() {
        read_to_close(s, Duration::from_secs(10)).await;
    }
    h.shutdown().await.unwrap();
}
