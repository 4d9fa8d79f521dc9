//! The daemon in-process: registration lifetime, lookups, listing, EPMD requests, persistence
//! across restarts, grace period and repair.

mod common;

use std::time::Duration;

use common::*;
use snow_epmd::client::{self, ClientError};
use snow_shared::epmd::table::State;
use snow_shared::NodeName;

fn name(s: &str) -> NodeName {
    NodeName::parse(s).unwrap()
}

#[async_std::test]
async fn register_lookup_list_and_unregister_on_close() {
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
    assert!(
        eventually(Duration::from_secs(3), || h.entries().iter().all(|e| e.state == State::Down)).await,
        "entry not marked down"
    );
    assert_eq!(client::port_please(&addr, "app").await.unwrap(), None);
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn a_live_name_cannot_be_registered_twice_and_each_registration_has_a_new_creation() {
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
        async_std::task::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(c2.expect("re-registration after close failed"), c1);
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn restart_leaves_entries_unconfirmed_until_the_node_returns_or_grace_ends() {
    let dir = TempDir::new("restart");
    let mut cfg = config(&dir);
    cfg.grace = Duration::from_millis(800);
    let (h, addr) = start(cfg.clone()).await;
    let a = client::register(&addr, &name("a@testhost"), 10).await.unwrap();
    let _b = client::register(&addr, &name("b@testhost"), 11).await.unwrap();
    let old_creation = a.creation();
    h.shutdown().await.unwrap();
    drop(a);
    // Same data dir, new daemon: both entries come back unconfirmed.
    let (h, addr) = start(cfg).await;
    let states: Vec<State> = h.entries().iter().map(|e| e.state).collect();
    assert_eq!(states, [State::Unconfirmed, State::Unconfirmed]);
    // a comes back: up with a new creation. b does not: down after the grace period.
    let a = client::register(&addr, &name("a@testhost"), 10).await.unwrap();
    assert_ne!(a.creation(), old_creation);
    assert!(
        eventually(Duration::from_secs(5), || {
            let e = h.entries();
            e[0].state == State::Up && e[1].state == State::Down
        })
        .await
    );
    h.shutdown().await.unwrap();
}

#[async_std::test]
async fn unopenable_database_is_a_clear_error_and_repair_starts_empty() {
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
}

#[async_std::test]
async fn kill_is_refused_while_nodes_are_registered() {
    use snow_shared::epmd::wire::{encode_request, Request};
    let dir = TempDir::new("kill");
    let (h, addr) = start(config(&dir)).await;
    let reg = client::register(&addr, &name("k@testhost"), 1).await.unwrap();
    assert_eq!(raw(&addr, &encode_request(&Request::Kill)).await, b"NO");
    // STOP is ignored without --relaxed-command-check.
    assert_eq!(raw(&addr, &encode_request(&Request::Stop(b"k".to_vec()))).await, b"");
    drop(reg);
    assert!(eventually(Duration::from_secs(3), || h.entries()[0].state == State::Down).await);
    async_std::task::sleep(Duration::from_millis(100)).await;
    assert_eq!(raw(&addr, &encode_request(&Request::Kill)).await, b"OK");
    h.stopped().await;
    h.shutdown().await.unwrap();
}
