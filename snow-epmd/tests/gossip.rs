//! Gossip between real daemons on loopback: convergence through one seed, and hostile gossip
//! (bad MAC, replay, claims on entries another daemon owns) that changes nothing.

mod common;

use std::time::Duration;

use async_std::io::{ReadExt, WriteExt};
use async_std::net::TcpStream;
use common::*;
use snow_epmd::client;
use snow_shared::cookie::{derive_key_with_iterations, KeyLabel};
use snow_shared::epmd::auth::Authenticator;
use snow_shared::epmd::gossip::{self, Body, Message};
use snow_shared::epmd::table::{Entry, State, Version};
use snow_shared::epmd::wire::{encode_request, Request};
use snow_shared::NodeName;

#[async_std::test]
async fn three_daemons_learn_each_other_through_one_seed_and_converge() {
    let dirs = [TempDir::new("g0"), TempDir::new("g1"), TempDir::new("g2")];
    let mut c0 = config(&dirs[0]);
    c0.cookie = Some(cookie());
    let (h0, a0) = start(c0).await;
    let mut others = Vec::new();
    for d in &dirs[1..] {
        let mut c = config(d);
        c.cookie = Some(cookie());
        c.peers = vec![a0.clone()];
        others.push(start(c).await);
    }
    let r1 = client::register(&others[0].1, &NodeName::parse("one@127.0.0.1").unwrap(), 7001).await.unwrap();
    let _r2 = client::register(&others[1].1, &NodeName::parse("two@127.0.0.1").unwrap(), 7002).await.unwrap();
    let all_up =
        |h: &snow_epmd::ServerHandle| h.entries().len() == 2 && h.entries().iter().all(|e| e.state == State::Up);
    assert!(eventually(Duration::from_secs(10), || all_up(&h0) && all_up(&others[0].0) && all_up(&others[1].0)).await);
    // Daemon 2 learned daemon 1 only through the seed; it shows 1 as origin.
    let rows = client::list(&others[1].1).await.unwrap();
    let one = rows.iter().find(|r| r.name.as_str() == "one@127.0.0.1").unwrap();
    assert_eq!(one.origin, others[0].0.id());
    // A node leaving reaches everyone as a tombstone.
    drop(r1);
    let one_down = |h: &snow_epmd::ServerHandle| {
        h.entries().iter().any(|e| e.name.as_str() == "one@127.0.0.1" && e.state == State::Down)
    };
    assert!(eventually(Duration::from_secs(10), || one_down(&h0) && one_down(&others[1].0)).await);
    for (h, _) in others {
        h.shutdown().await.unwrap();
    }
    h0.shutdown().await.unwrap();
}

async fn send_gossip(addr: &str, sealed: Vec<u8>) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&encode_request(&Request::Gossip(sealed))).await.unwrap();
    let mut out = Vec::new();
    let _ = async_std::io::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    out
}

fn forged_ack2(owner: &str) -> Message {
    let e = Entry {
        name: NodeName::parse("victim@127.0.0.1").unwrap(),
        host: "203.0.113.9".into(),
        port: 6666,
        creation: 9,
        node_type: 77,
        high_version: 6,
        low_version: 6,
        extra: vec![],
        state: State::Up,
        owner: owner.into(),
        version: Version { incarnation: 99, counter: 99 },
        changed_at: 0,
    };
    Message { sender: "attacker:1".into(), body: Body::Ack2 { entries: vec![e], live_sets: vec![] } }
}

#[async_std::test]
async fn bad_mac_replay_and_ownership_claims_change_nothing() {
    let dir = TempDir::new("ghostile");
    let mut c = config(&dir);
    c.cookie = Some(cookie());
    let (h, addr) = start(c).await;
    let _victim = client::register(&addr, &NodeName::parse("victim@127.0.0.1").unwrap(), 7000).await.unwrap();
    let before = h.entries();
    let now = snow_epmd::now_ms();
    let syn = Message { sender: "attacker:1".into(), body: Body::Syn { digests: vec![], complete: true } };
    // Wrong cookie: no reply, nothing learned.
    let wrong = Authenticator::new([1; 32], 30_000, 16);
    let reply = send_gossip(&addr, wrong.seal(&gossip::encode(&syn, now), now, [1; 16], [0; 16])).await;
    assert!(reply.is_empty());
    // Right key: a reply; replaying the same sealed message gets none.
    let key = derive_key_with_iterations(&cookie(), KeyLabel::Gossip, 1000);
    let right = Authenticator::new(*key.expose_secret(), 30_000, 16);
    let sealed = right.seal(&gossip::encode(&syn, now), now, [2; 16], [0; 16]);
    assert!(!send_gossip(&addr, sealed.clone()).await.is_empty());
    assert!(send_gossip(&addr, sealed).await.is_empty(), "replay was answered");
    // An authenticated message that claims the daemon's own live entry (owner = the daemon, or
    // another daemon): sent as a Syn-position Ack2 it is refused by kind; as data it is refused by
    // ownership. Either way the entry is unchanged.
    for owner in [h.id().to_owned(), "other:1".to_owned()] {
        let msg = forged_ack2(&owner);
        let n: [u8; 16] = rand_nonce();
        assert!(send_gossip(&addr, right.seal(&gossip::encode(&msg, now), now, n, [0; 16])).await.is_empty());
    }
    // Garbage under a valid MAC.
    let garbage = right.seal(&[9, 9, 9], now, rand_nonce(), [0; 16]);
    assert!(send_gossip(&addr, garbage).await.is_empty());
    assert_eq!(h.entries(), before);
    h.shutdown().await.unwrap();
}

fn rand_nonce() -> [u8; 16] {
    use std::sync::atomic::{AtomicU8, Ordering};
    static N: AtomicU8 = AtomicU8::new(100);
    [N.fetch_add(1, Ordering::SeqCst); 16]
}
