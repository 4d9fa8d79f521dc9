//! Gossip between real daemons on loopback: convergence through one seed, and hostile gossip from
//! a hand-driven peer that holds the cookie and its own key: forged entries for another host or
//! in another daemon's name, versions pushed to the maximum, invented daemon ids, table flooding,
//! messages replayed to another daemon, a changed key, bad MACs and garbage. None of it changes
//! what it must not.

mod common;

use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_epmd::client;
use snow_shared::cookie::{derive_key_with_iterations, KeyLabel};
use snow_shared::epmd::auth::Authenticator;
use snow_shared::epmd::gossip::{self, Body, Message, OwnerDigest};
use snow_shared::epmd::identity::Identity;
use snow_shared::epmd::table::{Entry, State, Version};
use snow_shared::epmd::wire::{encode_request, Request, RequestParser};
use snow_shared::NodeName;

fn gossip_key() -> [u8; 32] {
    *derive_key_with_iterations(&cookie(), KeyLabel::Gossip, 1000).expose_secret()
}

fn nonce() -> [u8; 16] {
    rand_bytes()
}

fn rand_bytes() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&N.fetch_add(1, Ordering::SeqCst).to_be_bytes());
    n[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    n
}

/// A hostile daemon: it has the cookie and its own key, listens on loopback (so daemons under
/// test can dial and pin it), and answers their exchanges with Acks it builds by hand.
struct Hostile {
    listener: TcpListener,
    id: String,
    identity: Identity,
    auth: Authenticator,
}

impl Hostile {
    async fn new(seed: u8) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let id = listener.local_addr().unwrap().to_string();
        Hostile {
            listener,
            id,
            identity: Identity::from_seed(&[seed; 32]),
            auth: Authenticator::new(gossip_key(), 30_000, 1 << 12),
        }
    }

    /// An entry owned by `owner`, signed with this peer's key.
    fn entry(&self, name: &str, owner: &str, state: State, version: Version) -> Entry {
        let name = NodeName::parse(name).unwrap();
        let mut e = Entry {
            host: name.host_for_connect().to_owned(),
            name,
            port: 6666,
            creation: 9,
            node_type: 77,
            high_version: 6,
            low_version: 6,
            extra: vec![],
            state,
            owner: owner.into(),
            version,
            changed_at: snow_epmd::now_ms(),
            signature: [0; 64],
        };
        e.signature = self.identity.sign(&e.signed_payload());
        e
    }

    /// Waits for the daemon under test to dial and answers its Syns with an Ack carrying
    /// `entries` (and `key` as this peer's key), until one exchange completes (the daemon sent its
    /// Ack2: it accepted the Ack). Earlier connections the daemon already gave up are skipped.
    async fn answer_next_exchange(&mut self, key: [u8; 32], entries: Vec<Entry>) {
        let end = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < end {
            if self.answer_one(key, &entries).await == Some(true) {
                return;
            }
        }
        panic!("no exchange with the daemon completed");
    }

    /// Answers every exchange for `span`; returns (Syns answered, Ack2s received).
    async fn answer_for(&mut self, span: Duration, key: [u8; 32], entries: Vec<Entry>) -> (usize, usize) {
        let end = std::time::Instant::now() + span;
        let (mut syns, mut acks) = (0, 0);
        while std::time::Instant::now() < end {
            match self.answer_one(key, &entries).await {
                Some(true) => (syns, acks) = (syns + 1, acks + 1),
                Some(false) => syns += 1,
                None => {}
            }
        }
        (syns, acks)
    }

    /// One connection: `None` if no usable Syn came, else whether the daemon sent its Ack2.
    async fn answer_one(&mut self, key: [u8; 32], entries: &[Entry]) -> Option<bool> {
        let (mut s, _) = self.listener.accept().timeout(WAIT).await.expect("the daemon never dialed").ok()?;
        let sealed = read_gossip(&mut s, Duration::from_millis(500)).await?;
        let now = snow_epmd::now_ms();
        let opened = self.auth.open(&sealed, now, None, &self.id).ok()?;
        let syn = gossip::decode(opened.body, now).ok()?;
        let ack = Message {
            sender: self.id.clone(),
            key,
            body: Body::Ack { entries: entries.to_vec(), want: vec![], live_sets: vec![] },
        };
        let reply = self.auth.seal(&gossip::encode(&ack, now), now, nonce(), opened.nonce, &syn.sender);
        s.write_all(&encode_request(&Request::Gossip(reply))).await.ok()?;
        Some(read_gossip(&mut s, Duration::from_secs(1)).await.is_some())
    }

    /// Seals `body` as a Syn from this peer to daemon `to`.
    fn syn_to(&self, to: &str, body: Body) -> Vec<u8> {
        let now = snow_epmd::now_ms();
        let msg = Message { sender: self.id.clone(), key: *self.identity.public_key(), body };
        self.auth.seal(&gossip::encode(&msg, now), now, nonce(), [0; 16], to)
    }
}

async fn read_gossip(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut parser = RequestParser::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).timeout(limit).await?.ok()?;
        if n == 0 {
            return None;
        }
        if let Some(Request::Gossip(sealed)) = parser.feed(&buf[..n]).ok()? {
            return Some(sealed);
        }
    }
}

/// Sends one sealed Syn to `addr` and returns whatever comes back before the daemon closes.
async fn send_gossip(addr: &str, sealed: Vec<u8>) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&encode_request(&Request::Gossip(sealed))).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).timeout(Duration::from_secs(3)).await;
    out
}

fn gossiping(dir: &TempDir, peers: Vec<String>) -> snow_epmd::Config {
    let mut c = config(dir);
    c.cookie = Some(cookie());
    c.peers = peers;
    c
}

fn v(counter: u64) -> Version {
    Version { incarnation: 1, counter }
}

fn entry_named(h: &snow_epmd::ServerHandle, name: &str) -> Option<Entry> {
    h.entries().into_iter().find(|e| e.name.as_str() == name)
}

#[test]
fn three_daemons_learn_each_other_through_one_seed_and_converge() {
    run(async {
        let dirs = [TempDir::new("g0"), TempDir::new("g1"), TempDir::new("g2")];
        let (h0, a0) = start(gossiping(&dirs[0], vec![])).await;
        let mut others = Vec::new();
        for d in &dirs[1..] {
            others.push(start(gossiping(d, vec![a0.clone()])).await);
        }
        let r1 = client::register(&others[0].1, &NodeName::parse("one@127.0.0.1").unwrap(), 7001).await.unwrap();
        let _r2 = client::register(&others[1].1, &NodeName::parse("two@127.0.0.1").unwrap(), 7002).await.unwrap();
        let all_up =
            |h: &snow_epmd::ServerHandle| h.entries().len() == 2 && h.entries().iter().all(|e| e.state == State::Up);
        assert!(eventually(|| all_up(&h0) && all_up(&others[0].0) && all_up(&others[1].0)).await);
        // Daemon 2 learned daemon 1 only through the seed; it shows 1 as origin, and pinned its key.
        let rows = client::list(&others[1].1).await.unwrap();
        let one = rows.iter().find(|r| r.name == "one@127.0.0.1").unwrap();
        assert_eq!(one.origin, others[0].0.id());
        assert!(others[1].0.daemons().contains(&(others[0].0.id().to_owned(), true)));
        // A node leaving reaches everyone as a tombstone.
        drop(r1);
        let one_down =
            |h: &snow_epmd::ServerHandle| entry_named(h, "one@127.0.0.1").is_some_and(|e| e.state == State::Down);
        assert!(eventually(|| one_down(&h0) && one_down(&others[1].0)).await);
        for (h, _) in others {
            h.shutdown().await.unwrap();
        }
        h0.shutdown().await.unwrap();
    })
}

#[test]
fn a_peer_is_pinned_on_first_contact_and_speaks_only_for_its_own_host() {
    run(async {
        let mut evil = Hostile::new(7).await;
        let dir = TempDir::new("pin");
        let (h, _) = start(gossiping(&dir, vec![evil.id.clone()])).await;
        let key = *evil.identity.public_key();
        let own = evil.entry("good@127.0.0.1", &evil.id, State::Up, v(1));
        let other_host = evil.entry("far@otherhost", &evil.id, State::Up, v(2));
        let unknown_owner = evil.entry("relayed@10.1.1.1", "10.1.1.1:4369", State::Up, v(1));
        let pushed =
            evil.entry("max@127.0.0.1", &evil.id, State::Up, Version { incarnation: u64::MAX, counter: u64::MAX });
        evil.answer_next_exchange(key, vec![own, other_host, unknown_owner, pushed]).await;
        assert!(eventually(|| h.daemons().contains(&(evil.id.clone(), true))).await, "{:?}", h.daemons());
        let names: Vec<String> = h.entries().iter().map(|e| e.name.to_string()).collect();
        assert_eq!(names, ["good@127.0.0.1"], "only the peer's own, signed, bounded entry is stored");
        // The version pushed to the maximum did not hide the peer's next real change.
        let down = evil.entry("good@127.0.0.1", &evil.id, State::Down, v(3));
        evil.answer_next_exchange(key, vec![down]).await;
        assert!(eventually(|| entry_named(&h, "good@127.0.0.1").is_some_and(|e| e.state == State::Down)).await);
        // The same id answering with another key (another machine, or an impostor) is refused
        // whole: nothing it sends is applied, and the pin stays.
        let impostor = Identity::from_seed(&[8; 32]);
        let mut forged = evil.entry("new@127.0.0.1", &evil.id, State::Up, v(4));
        forged.signature = impostor.sign(&forged.signed_payload());
        let (syns, accepted) = evil.answer_for(Duration::from_secs(1), *impostor.public_key(), vec![forged]).await;
        assert!(syns > 0 && accepted == 0, "{syns} exchanges, {accepted} accepted");
        assert!(entry_named(&h, "new@127.0.0.1").is_none());
        assert!(snow_epmd::keys::load_known(&dir.path().join("db")).unwrap().contains(&(evil.id.clone(), key)));
        h.shutdown().await.unwrap();
    })
}

#[test]
fn entries_forged_in_another_daemons_name_are_refused() {
    run(async {
        let mut evil = Hostile::new(9).await;
        let (db, dd) = (TempDir::new("victim"), TempDir::new("target"));
        let (b, b_addr) = start(gossiping(&db, vec![])).await;
        let (d, _) = start(gossiping(&dd, vec![b_addr.clone(), evil.id.clone()])).await;
        let _node = client::register(&b_addr, &NodeName::parse("victim@127.0.0.1").unwrap(), 7000).await.unwrap();
        assert!(eventually(|| entry_named(&d, "victim@127.0.0.1").is_some_and(|e| e.state == State::Up)).await);
        let genuine = entry_named(&d, "victim@127.0.0.1").unwrap();
        // The hostile peer relays b's entry, down, and moved to its own address, with b's owner
        // id and a higher version, signed with its own key; and b's genuine entry with another port.
        let mut fake_down = evil.entry("victim@127.0.0.1", b.id(), State::Down, genuine.version);
        fake_down.version.counter += 5;
        fake_down.signature = evil.identity.sign(&fake_down.signed_payload());
        let mut moved = genuine.clone();
        moved.port = 6666;
        evil.answer_next_exchange(*evil.identity.public_key(), vec![fake_down, moved]).await;
        sleep(Duration::from_millis(300)).await;
        let now = entry_named(&d, "victim@127.0.0.1").unwrap();
        assert_eq!((now.state, now.port, now.owner.as_str()), (State::Up, 7000, b.id()));
        d.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    })
}

#[test]
fn invented_daemon_ids_are_capped_and_forgotten() {
    run(async {
        let evil = Hostile::new(11).await;
        let dir = TempDir::new("owners");
        let mut c = gossiping(&dir, vec![]);
        c.max_daemons = 20;
        let (h, addr) = start(c).await;
        // A thousand daemon ids (as many as fit one message) nobody answers at (unbound loopback
        // ports).
        let digests: Vec<OwnerDigest> = (1..=1000u32)
            .map(|p| OwnerDigest { owner: format!("127.0.0.1:{}", 10_000 + p), max: v(1), live_hash: 0 })
            .collect();
        let syn = evil.syn_to(h.id(), Body::Syn { digests, complete: false });
        assert!(!send_gossip(&addr, syn).await.is_empty(), "an authenticated Syn is answered");
        let known = h.daemons().len();
        assert!(known <= 20, "{known} daemons known");
        // None answers: they are forgotten, so invented ids do not stay gossip targets.
        assert!(eventually(|| h.daemons().len() <= 2).await, "{:?}", h.daemons());
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_flood_of_remote_entries_cannot_crowd_out_local_registrations() {
    run(async {
        let mut evil = Hostile::new(13).await;
        let dir = TempDir::new("flood");
        let mut c = gossiping(&dir, vec![evil.id.clone()]);
        c.max_entries = 5;
        c.max_entries_per_daemon = 8;
        let (h, addr) = start(c).await;
        let flood: Vec<Entry> =
            (0..300).map(|i| evil.entry(&format!("f{i}@127.0.0.1"), &evil.id, State::Up, v(i + 1))).collect();
        evil.answer_next_exchange(*evil.identity.public_key(), flood).await;
        assert!(eventually(|| h.entries().len() == 8).await, "{} entries", h.entries().len());
        for i in 0..5 {
            client::register(&addr, &NodeName::parse(&format!("mine{i}@127.0.0.1")).unwrap(), 1)
                .await
                .map(std::mem::forget)
                .unwrap_or_else(|e| panic!("local registration {i} refused: {e}"));
        }
        assert_eq!(h.entries().len(), 13);
        h.shutdown().await.unwrap();
    })
}

#[test]
fn a_gossip_message_replayed_to_a_second_daemon_is_refused() {
    run(async {
        let evil = Hostile::new(15).await;
        let (da, db) = (TempDir::new("ra"), TempDir::new("rb"));
        let (a, a_addr) = start(gossiping(&da, vec![])).await;
        let (b, b_addr) = start(gossiping(&db, vec![])).await;
        let syn = evil.syn_to(a.id(), Body::Syn { digests: vec![], complete: true });
        assert!(send_gossip(&b_addr, syn.clone()).await.is_empty(), "a Syn for a was answered by b");
        assert!(!send_gossip(&a_addr, syn).await.is_empty(), "the Syn is valid for a");
        // A Syn for nobody in particular is answered only as a probe.
        let anonymous = evil.syn_to("", Body::Syn { digests: vec![], complete: true });
        assert!(send_gossip(&b_addr, anonymous).await.is_empty());
        let probe = evil.syn_to("", Body::Syn { digests: vec![], complete: false });
        assert!(!send_gossip(&b_addr, probe).await.is_empty());
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    })
}

#[test]
fn bad_mac_replay_and_garbage_change_nothing() {
    run(async {
        let dir = TempDir::new("ghostile");
        let (h, addr) = start(gossiping(&dir, vec![])).await;
        let _victim = client::register(&addr, &NodeName::parse("victim@127.0.0.1").unwrap(), 7000).await.unwrap();
        let before = h.entries();
        let now = snow_epmd::now_ms();
        let evil = Hostile::new(17).await;
        let msg = Message {
            sender: evil.id.clone(),
            key: *evil.identity.public_key(),
            body: Body::Syn { digests: vec![], complete: true },
        };
        // Wrong cookie: no reply, nothing learned.
        let wrong = Authenticator::new([1; 32], 30_000, 16);
        assert!(send_gossip(&addr, wrong.seal(&gossip::encode(&msg, now), now, nonce(), [0; 16], h.id()))
            .await
            .is_empty());
        // Right key: a reply; replaying the same sealed message gets none.
        let sealed = evil.syn_to(h.id(), Body::Syn { digests: vec![], complete: true });
        assert!(!send_gossip(&addr, sealed.clone()).await.is_empty());
        assert!(send_gossip(&addr, sealed).await.is_empty(), "replay was answered");
        // An Ack2 in a Syn's place, and garbage under a valid MAC.
        let ack2 = Message {
            sender: evil.id.clone(),
            key: *evil.identity.public_key(),
            body: Body::Ack2 { entries: vec![evil.entry("victim@127.0.0.1", h.id(), State::Down, v(99))] },
        };
        assert!(send_gossip(&addr, evil.auth.seal(&gossip::encode(&ack2, now), now, nonce(), [0; 16], h.id()))
            .await
            .is_empty());
        assert!(send_gossip(&addr, evil.auth.seal(&[9, 9, 9], now, nonce(), [0; 16], h.id())).await.is_empty());
        assert_eq!(h.entries(), before);
        h.shutdown().await.unwrap();
    })
}
