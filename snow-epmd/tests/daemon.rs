//! The daemon in-process: registration lifetime, lookups, listing, EPMD requests, persistence
//! across restarts, grace period and repair.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::*;
use snow_epmd::client::{self, ClientError};
use snow_shared::epmd::table::State;
use snow_shared::NodeName;

fn name(s: &str) -> NodeName {
    NodeName::parse(s).unwrap()
}

#[test]
fn register_lookup_list_and_unregister_on_close() {
    run(async {
        let dir = TempDir::new("basic");
        let (h, addr) = start(config(&dir)).await;
        let reg = client::register(&addr, &name("app@127.0.0.1"), 9100).await.unwrap();
        assert_ne!(reg.creation(), 0);
        let found = client::lookup(&addr, &name("app@127.0.0.1")).await.unwrap().unwrap();
        assert_eq!(
            (found.host.as_str(), found.port, found.creation, found.state),
            ("127.0.0.1", 9100, reg.creation(), State::Up)
        );
        assert_eq!(client::lookup(&addr, &name("nobody@127.0.0.1")).await.unwrap(), None);
        let rows = client::list(&addr).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].origin.as_str(), rows[0].state), ("local", State::Up));
        // EPMD's own requests see it under its short name.
        let info = client::port_please(&addr, "app").await.unwrap().unwrap();
        assert_eq!((info.port, info.name.as_slice()), (9100, &b"app"[..]));
        let (port, text) = client::names(&addr).await.unwrap();
        assert_eq!(port, u32::from(h.local_addr().port()));
        assert_eq!(text, "name app at port 9100\n");
        // Closing the registration connection marks the node down at once.
        drop(reg);
        assert!(eventually(|| h.entries().iter().all(|e| e.state == State::Down)).await, "entry not marked down");
        assert_eq!(client::port_please(&addr, "app").await.unwrap(), None);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_live_name_cannot_be_registered_twice_and_each_registration_has_a_new_creation() {
    run(async {
        let dir = TempDir::new("dup");
        let (h, addr) = start(config(&dir)).await;
        let n = name("dup@testhost");
        let first = client::register(&addr, &n, 1).await.unwrap();
        let err = client::register(&addr, &n, 2).await.unwrap_err();
        assert!(matches!(err, ClientError::Refused { .. }), "{err}");
        let c1 = first.creation();
        first.close();
        let mut c2 = None;
        for _ in 0..100 {
            if let Ok(r) = client::register(&addr, &n, 3).await {
                c2 = Some(r.creation());
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert_ne!(c2.expect("re-registration after close failed"), c1);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn restart_leaves_entries_unconfirmed_until_the_node_returns_or_grace_ends() {
    run(async {
        let dir = TempDir::new("restart");
        let mut cfg = config(&dir);
        cfg.grace = Duration::from_millis(800);
        let (h, addr) = start(cfg.clone()).await;
        let a = client::register(&addr, &name("a@testhost"), 10).await.unwrap();
        let b = client::register(&addr, &name("b@testhost"), 11).await.unwrap();
        let _c = client::register(&addr, &name("c@testhost"), 12).await.unwrap();
        let (old_a, old_b) = (a.creation(), b.creation());
        h.shutdown().await.unwrap();
        drop((a, b));
        // Same data dir, new daemon: the entries come back unconfirmed.
        let (h, addr) = start(cfg).await;
        let states: Vec<State> = h.entries().iter().map(|e| e.state).collect();
        assert_eq!(states, [State::Unconfirmed; 3]);
        // A new start of a (a plain registration) gets a new creation.
        let a = client::register(&addr, &name("a@testhost"), 10).await.unwrap();
        assert_ne!(a.creation(), old_a);
        // b kept running and registers again asking for its creation: it keeps it, everywhere.
        let asked = NonZeroU32::new(old_b).unwrap();
        let b =
            client::register_requesting(&addr, &name("b@testhost"), 11, asked, client::DEFAULT_TIMEOUT).await.unwrap();
        assert_eq!(b.creation(), old_b);
        let found = client::lookup(&addr, &name("b@testhost")).await.unwrap().unwrap();
        assert_eq!((found.creation, found.state), (old_b, State::Up));
        // The Snow option is consumed: EPMD clients see no Extra bytes.
        let info = client::port_please(&addr, "b").await.unwrap().unwrap();
        assert_eq!((info.port, info.extra.as_slice()), (11, &b""[..]));
        // c does not come back: down after the grace period.
        assert!(
            eventually(|| {
                let e = h.entries();
                e[0].state == State::Up && e[1].state == State::Up && e[2].state == State::Down
            })
            .await
        );
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_requested_creation_is_granted_only_to_the_same_node_coming_back() {
    run(async {
        let dir = TempDir::new("asked");
        let (h, addr) = start(config(&dir)).await;
        let timeout = client::DEFAULT_TIMEOUT;
        let n = name("x@testhost");
        // Unknown name (the daemon lost its state): granted.
        let first = client::register_requesting(&addr, &n, 1, NonZeroU32::new(4242).unwrap(), timeout).await.unwrap();
        assert_eq!(first.creation(), 4242);
        // A live duplicate is refused, even asking for the live entry's creation.
        let err = client::register_requesting(&addr, &n, 2, NonZeroU32::new(4242).unwrap(), timeout).await.unwrap_err();
        assert!(matches!(err, ClientError::Refused { .. }), "{err}");
        first.close();
        assert!(eventually(|| h.entries()[0].state == State::Down).await);
        // Down, but asking for another creation than the entry's: ignored, a new one is assigned.
        let other = client::register_requesting(&addr, &n, 3, NonZeroU32::new(7).unwrap(), timeout).await.unwrap();
        assert!(![7, 4242].contains(&other.creation()), "got {}", other.creation());
        let kept = other.creation();
        other.close();
        assert!(eventually(|| h.entries()[0].state == State::Down).await);
        // Down with that very creation (the registration connection broke, the node lives on): kept.
        let back = client::register_requesting(&addr, &n, 3, NonZeroU32::new(kept).unwrap(), timeout).await.unwrap();
        assert_eq!(back.creation(), kept);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_malformed_snow_extra_is_rejected_without_registering() {
    run(async {
        use snow_shared::epmd::wire::{encode_request, Request};
        let dir = TempDir::new("badextra");
        let (h, addr) = start(config(&dir)).await;
        for extra in [&b"SNOW\x01\x00\x00\x00\x00"[..], b"SNOW\x01\x00\x01", b"SNOW\x09\x00\x00\x00\x01"] {
            let mut a = alive(b"bad@testhost");
            a.extra = extra.to_vec();
            assert_eq!(raw(&addr, &encode_request(&Request::Alive2(a))).await, b"", "{extra:?}");
        }
        assert!(h.entries().is_empty());
        // Opaque Extra bytes are still stored and returned verbatim.
        let mut a = alive(b"ok@testhost");
        a.extra = b"opaque".to_vec();
        let mut s = async_net::TcpStream::connect(&addr).await.unwrap();
        futures_lite::AsyncWriteExt::write_all(&mut s, &encode_request(&Request::Alive2(a))).await.unwrap();
        assert!(eventually(|| h.entries().len() == 1).await);
        let info = client::port_please(&addr, "ok").await.unwrap().unwrap();
        assert_eq!(info.extra, b"opaque");
        drop(s);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn unopenable_database_is_a_clear_error_and_repair_starts_empty() {
    run(async {
        let dir = TempDir::new("corrupt");
        let mut cfg = config(&dir);
        // A regular file where the database directory should be.
        std::fs::write(&cfg.data_dir, b"not a database").unwrap();
        let err = match snow_epmd::serve(cfg.clone()).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened a file as a database"),
        };
        assert!(err.contains("--repair"), "{err}");
        cfg.repair = true;
        let (h, addr) = start(cfg).await;
        assert!(h.entries().is_empty());
        client::register(&addr, &name("fresh@testhost"), 1).await.unwrap();
        h.shutdown().await.unwrap();
    })
}

#[test]
fn kill_is_refused_while_nodes_are_registered() {
    run(async {
        use snow_shared::epmd::wire::{encode_request, Request};
        let dir = TempDir::new("kill");
        let (h, addr) = start(config(&dir)).await;
        let reg = client::register(&addr, &name("k@testhost"), 1).await.unwrap();
        assert_eq!(raw(&addr, &encode_request(&Request::Kill)).await, b"NO");
        // STOP is ignored without --relaxed-command-check.
        assert_eq!(raw(&addr, &encode_request(&Request::Stop(b"k".to_vec()))).await, b"");
        drop(reg);
        assert!(eventually(|| h.entries()[0].state == State::Down).await);
        sleep(Duration::from_millis(100)).await;
        assert_eq!(raw(&addr, &encode_request(&Request::Kill)).await, b"OK");
        h.stopped().await;
        h.shutdown().await.unwrap();
    })
}

#[test]
fn dropping_the_handle_does_not_stop_the_daemon() {
    run(async {
        let dir = TempDir::new("dropped");
        let (h, addr) = start(config(&dir)).await;
        drop(h);
        let reg = client::register(&addr, &name("still@testhost"), 5).await.unwrap();
        let found = client::lookup(&addr, &name("still@testhost")).await.unwrap();
        assert_eq!(found.map(|f| f.port), Some(5));
        drop(reg);
    })
}
