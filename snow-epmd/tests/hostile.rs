//! Hostile input, after the classes of cases in Erlang's erts/epmd/test/epmd_SUITE.erl, plus
//! idle clients, connection floods from one source, registration floods, and the names Erlang's
//! epmd accepts or refuses. Every case checks that the daemon keeps answering and that the table
//! is unchanged where it must be.

mod common;

use std::time::{Duration, Instant};

use async_net::TcpStream;
use common::*;
use futures_lite::AsyncWriteExt;
use snow_epmd::client;
use snow_shared::epmd::table::State;
use snow_shared::epmd::wire::refusal;
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

#[test]
fn malformed_requests_are_closed_without_reply_and_change_nothing() {
    run(async {
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
            ("empty name", encode_request(&Request::Alive2(alive(b"")))),
            ("NUL in the name", encode_request(&Request::Alive2(alive(b"a\0b")))),
            ("PORT_PLEASE2 with a name that is not UTF-8", vec![0, 3, b'z', 0xff, 0xfe]),
            ("length 3058, one over Erlang's buffer", {
                let mut v = vec![0x0b, 0xf2, ALIVE2_REQ];
                v.extend(std::iter::repeat(b'a').take(3057));
                v
            }),
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
    })
}

#[test]
fn names_erlangs_epmd_refuses_get_result_1_and_the_others_register() {
    run(async {
        let dir = TempDir::new("names");
        let (h, addr) = start(config(&dir)).await;
        let clef = "\u{1d11e}";
        let refused: Vec<Vec<u8>> =
            vec![vec![b'n'; 256], vec![b'n'; 1021], clef.repeat(256).into_bytes(), vec![0xff, 0xfe]];
        for name in &refused {
            let reply = raw(&addr, &encode_request(&Request::Alive2(alive(name)))).await;
            assert_eq!(reply, [118, refusal::TAKEN, 0, 0, 0, 99], "{} bytes", name.len());
            // An old client (highest version 5) gets the old reply, as from Erlang's epmd.
            let mut old = alive(name);
            old.high_version = 5;
            assert_eq!(raw(&addr, &encode_request(&Request::Alive2(old))).await, [121, refusal::TAKEN, 0, 99]);
        }
        still_healthy_and_empty(&h, &addr).await;
        // Names outside Snow's rules that Erlang's epmd takes are registered, here only.
        let mut held = Vec::new();
        let long = "\u{e9}".repeat(255);
        for name in ["bad name", "x@", "a@b@c", "\u{e9}t\u{e9}", &long, &clef.repeat(255)] {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(&encode_request(&Request::Alive2(alive(name.as_bytes())))).await.unwrap();
            let mut reply = [0u8; 6];
            futures_lite::AsyncReadExt::read_exact(&mut s, &mut reply).await.unwrap();
            assert_eq!(reply[..2], [118, 0], "{name}");
            held.push(s);
            let info = client::port_please(&addr, name).await.unwrap().unwrap();
            assert_eq!((info.port, info.name), (4000, name.as_bytes().to_vec()));
        }
        assert!(h.entries().is_empty(), "none of them is a Snow node name");
        let (_, names) = client::names(&addr).await.unwrap();
        assert!(
            names.contains("name bad name at port 4000\n") && names.contains("name a@b@c at port 4000\n"),
            "{names}"
        );
        let listed = client::list(&addr).await.unwrap();
        assert!(listed.iter().any(|r| r.name == "x@@testhost"), "{listed:?}");
        drop(held);
        assert!(eventually(|| client_names_empty(&addr)).await);
        h.shutdown().await.unwrap();
    })
}

fn client_names_empty(addr: &str) -> bool {
    async_io::block_on(client::names(addr)).is_ok_and(|(_, text)| text.is_empty())
}

#[test]
fn idle_and_one_byte_clients_are_closed_after_the_deadline() {
    run(async {
        let dir = TempDir::new("idle");
        let (h, addr) = start(config(&dir)).await;
        let started = Instant::now();
        let mut idle = TcpStream::connect(&addr).await.unwrap();
        let mut one = TcpStream::connect(&addr).await.unwrap();
        one.write_all(&[0]).await.unwrap();
        assert!(read_to_close(&mut idle).await.is_empty());
        assert!(read_to_close(&mut one).await.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(1000), "closed before the 1.5 s deadline");
        still_healthy_and_empty(&h, &addr).await;
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_slow_request_a_few_bytes_at_a_time_is_served() {
    run(async {
        let dir = TempDir::new("slow");
        let (h, addr) = start(config(&dir)).await;
        let bytes = encode_request(&Request::Alive2(alive(b"slow")));
        let mut s = TcpStream::connect(&addr).await.unwrap();
        for chunk in bytes.chunks(3) {
            s.write_all(chunk).await.unwrap();
            sleep(Duration::from_millis(60)).await;
        }
        let mut reply = [0u8; 6];
        futures_lite::AsyncReadExt::read_exact(&mut s, &mut reply).await.unwrap();
        assert_eq!(reply[..2], [118, 0]);
        assert_eq!(h.entries()[0].name.as_str(), "slow@testhost");
        drop(s);
        assert!(eventually(|| h.entries()[0].state == State::Down).await);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_client_gone_before_the_reply_leaves_no_zombie() {
    run(async {
        let dir = TempDir::new("reset");
        let (h, addr) = start(config(&dir)).await;
        for i in 0..20 {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(&encode_request(&Request::Alive2(alive(format!("z{i}").as_bytes())))).await.unwrap();
            drop(s);
        }
        assert!(
            eventually(|| {
                let e = h.entries();
                e.iter().all(|e| e.state == State::Down)
            })
            .await,
            "zombie entries: {:?}",
            h.entries()
        );
        h.shutdown().await.unwrap();
    })
}

#[test]
fn register_unregister_churn_up_to_the_entry_limit() {
    run(async {
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
            assert!(eventually(|| h.entries().iter().all(|e| e.state == State::Down)).await);
        }
        assert_eq!(h.entries().len(), 40);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_registration_flood_from_one_source_hits_a_cap_with_a_clear_refusal() {
    run(async {
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
            assert_eq!(reply, [118, refusal::LIMIT, 0, 0, 0, 99]);
        }
        assert_eq!(h.entries().len(), 5);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_thousand_simultaneous_connections_do_not_stop_the_daemon_answering() {
    run(async {
        let dir = TempDir::new("conns");
        let mut c = config(&dir);
        c.max_connections_per_source = 2_000;
        let (h, addr) = start(c).await;
        let _reg = client::register(&addr, &NodeName::parse("busy@testhost").unwrap(), 7).await.unwrap();
        let mut idle = Vec::new();
        for _ in 0..1000 {
            idle.push(TcpStream::connect(&addr).await.expect("cannot open 1,000 connections: raise `ulimit -n`"));
        }
        // Others are still served while the idle ones wait for their deadline.
        for _ in 0..20 {
            let found = client::lookup(&addr, &NodeName::parse("busy@testhost").unwrap()).await.unwrap();
            assert_eq!(found.unwrap().port, 7);
        }
        // And every idle connection is closed by the daemon.
        for s in idle.iter_mut() {
            read_to_close(s).await;
        }
        h.shutdown().await.unwrap();
    })
}

#[test]
fn one_source_cannot_hold_more_than_its_share_of_connections() {
    run(async {
        let dir = TempDir::new("per-source");
        let mut c = config(&dir);
        c.max_connections_per_source = 20;
        c.request_timeout = std::time::Duration::from_secs(20);
        let (h, addr) = start(c).await;
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        let _reg = client::register(&addr.to_string(), &NodeName::parse("busy@testhost").unwrap(), 7).await.unwrap();
        let hog: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..20 {
            held.push(connect_from(hog, addr).await.unwrap());
        }
        sleep(std::time::Duration::from_millis(200)).await;
        // The 21st from the same address is closed at once (long before the 20 s request timeout).
        let started = Instant::now();
        let mut extra = connect_from(hog, addr).await.unwrap();
        assert!(read_to_close(&mut extra).await.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        // Another source is served, and registrations do not count against the share.
        let other = connect_from("127.0.0.3".parse().unwrap(), addr).await.unwrap();
        drop(other);
        let found = client::lookup(&addr.to_string(), &NodeName::parse("busy@testhost").unwrap()).await.unwrap();
        assert_eq!(found.unwrap().port, 7);
        let mut others = Vec::new();
        for i in 0..25 {
            let n = NodeName::parse(&format!("r{i}@testhost")).unwrap();
            others.push(client::register(&addr.to_string(), &n, 1).await.unwrap());
        }
        // Closing the hog's connections frees its share.
        drop(held);
        assert!(
            eventually(|| async_io::block_on(async {
                let mut s = connect_from(hog, addr).await.unwrap();
                s.write_all(&encode_request(&Request::Names)).await.unwrap();
                !read_to_close(&mut s).await.is_empty()
            }))
            .await
        );
        h.shutdown().await.unwrap();
    })
}
