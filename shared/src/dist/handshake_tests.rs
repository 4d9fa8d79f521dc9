use super::*;
use proptest::prelude::*;

fn name(text: &str) -> NodeName {
    NodeName::parse(text).unwrap()
}

fn config(local: &str, creation: u32, key: u8) -> HandshakeConfig {
    HandshakeConfig::new(name(local), creation, [key; 32])
}

struct Pair {
    i: Handshake,
    a: Handshake,
    i_events: Vec<HandshakeEvent>,
    a_events: Vec<HandshakeEvent>,
}

fn pair_with(i_cfg: HandshakeConfig, a_cfg: HandshakeConfig, i_exp: [u8; 32], a_exp: [u8; 32], now: Instant) -> Pair {
    let i = Handshake::initiator(i_cfg, name("bob@host2"), i_exp, [0x33; 32], now);
    let a = Handshake::acceptor(a_cfg, a_exp, [0x44; 32], now);
    Pair { i, a, i_events: Vec::new(), a_events: Vec::new() }
}

fn pair(i_key: u8, a_key: u8) -> Pair {
    pair_with(config("alice@host1", 1, i_key), config("bob@host2", 2, a_key), [0x22; 32], [0x22; 32], Instant::now())
}

impl Pair {
    /// Moves the first three flights: both HELLOs and CHALLENGEs, then the initiator's PROOF.
    fn up_to_initiator_proof(&mut self) {
        self.a.feed(&self.i.take_output()).unwrap();
        self.i.feed(&self.a.take_output()).unwrap();
        self.a.feed(&self.i.take_output()).unwrap();
    }

    /// Moves bytes both ways until nothing moves; the acceptor's driver accepts when asked. When a
    /// side fails, the other sees the connection close (the real driver closes the socket).
    fn run(&mut self, decide: impl Fn(&mut Handshake)) {
        for _ in 0..20 {
            let to_a = self.i.take_output();
            let to_i = self.a.take_output();
            if !to_a.is_empty() {
                let _ = self.a.feed(&to_a);
            }
            if !to_i.is_empty() {
                let _ = self.i.feed(&to_i);
            }
            while let Some(event) = self.a.poll_event() {
                if matches!(event, HandshakeEvent::DecisionNeeded(_)) {
                    decide(&mut self.a);
                }
                self.a_events.push(event);
            }
            self.i_events.extend(std::iter::from_fn(|| self.i.poll_event()));
            if self.i.result().is_err() && self.a.result().is_ok() && !self.a.is_finished() {
                let _ = self.a.feed_eof();
            }
            if self.a.result().is_err() && self.i.result().is_ok() && !self.i.is_finished() {
                let _ = self.i.feed(&self.a.take_output());
                let _ = self.i.feed_eof();
            }
            if to_a.is_empty() && to_i.is_empty() && (self.i.is_finished() || self.a.is_finished()) {
                break;
            }
        }
    }
}

#[test]
fn handshake_succeeds_and_negotiates() {
    let mut p = pair(7, 7);
    p.run(Handshake::accept);
    assert!(p.i.is_established() && p.a.is_established(), "{:?} {:?}", p.i.result(), p.a.result());
    let i_peer = p.i.peer().unwrap();
    assert_eq!(i_peer.name, name("bob@host2"));
    assert_eq!(i_peer.creation, 2);
    assert_eq!(i_peer.version, PROTOCOL_VERSION);
    assert_eq!(i_peer.flags, Flags::ALL);
    assert_eq!(p.a.peer().unwrap().name, name("alice@host1"));
    assert!(matches!(
        p.a_events[..],
        [HandshakeEvent::PeerHello(_), HandshakeEvent::DecisionNeeded(_), HandshakeEvent::Established(_)]
    ));
    assert!(matches!(p.i_events[..], [HandshakeEvent::PeerHello(_), HandshakeEvent::Established(_)]));
    assert_eq!(p.i.poll_timeout(), None);
}

#[test]
fn byte_at_a_time_delivery_works() {
    let mut p = pair(7, 7);
    for _ in 0..10 {
        for byte in p.i.take_output() {
            p.a.feed(&[byte]).unwrap();
        }
        while let Some(ev) = p.a.poll_event() {
            if matches!(ev, HandshakeEvent::DecisionNeeded(_)) {
                p.a.accept();
            }
        }
        for byte in p.a.take_output() {
            p.i.feed(&[byte]).unwrap();
        }
    }
    assert!(p.i.is_established() && p.a.is_established());
}

#[test]
fn flags_are_intersected_and_unknown_bits_ignored() {
    let mut i_cfg = config("alice@host1", 1, 7);
    i_cfg.flags = Flags::from_bits(Flags::SPAWN.bits() | Flags::MESH.bits() | (1 << 50));
    let mut p = pair_with(i_cfg, config("bob@host2", 2, 7), [0x22; 32], [0x22; 32], Instant::now());
    p.run(Handshake::accept);
    let peer = p.a.peer().unwrap();
    assert_eq!(peer.flags, Flags::SPAWN.with(Flags::MESH));
    assert!(peer.peer_flags.contains(Flags::from_bits(1 << 50)));
    assert_eq!(p.i.peer().unwrap().flags, Flags::SPAWN.with(Flags::MESH));
}

#[test]
fn leftover_bytes_after_the_handshake_go_to_the_connection() {
    // Bytes that arrive in the same read as the final STATUS belong to the connection.
    let mut p = pair(7, 7);
    p.up_to_initiator_proof();
    while p.a.poll_event().is_some() {}
    p.a.accept();
    let mut last = p.a.take_output();
    last.extend_from_slice(b"\0\0\0\x01X");
    p.i.feed(&last).unwrap();
    assert!(p.i.is_established());
    assert_eq!(p.i.take_leftover(), b"\0\0\0\x01X");
}

#[test]
fn wrong_cookie_is_rejected_on_both_sides() {
    let mut p = pair(7, 8);
    p.run(Handshake::accept);
    assert_eq!(p.a.result(), Err(HandshakeError::WrongCookie));
    assert_eq!(p.i.result(), Err(HandshakeError::ProofRejected));
    assert!(!p.a_events.iter().any(|e| matches!(e, HandshakeEvent::DecisionNeeded(_))));
    // The acceptor never sent its proof: only HELLO and CHALLENGE left it.
    assert!(p.a.take_output().is_empty());
}

#[test]
fn initiator_rejects_a_wrong_acceptor_proof() {
    let mut p = pair(7, 7);
    p.up_to_initiator_proof();
    let mut forged = Vec::new();
    put_frame(&mut forged, &[&[tag::PROOF][..], &[0u8; 32]].concat());
    assert_eq!(p.i.feed(&forged), Err(HandshakeError::WrongCookie));
}

#[test]
fn mitm_with_different_exporters_fails() {
    // A relay terminating TLS on both sides sees two sessions with two exporters.
    let mut p =
        pair_with(config("alice@host1", 1, 7), config("bob@host2", 2, 7), [0x22; 32], [0x23; 32], Instant::now());
    p.run(Handshake::accept);
    assert_eq!(p.a.result(), Err(HandshakeError::WrongCookie));
    assert!(p.i.result().is_err());
}

#[test]
fn echoed_challenge_is_refused() {
    let mut i =
        Handshake::initiator(config("alice@host1", 1, 7), name("bob@host2"), [0x22; 32], [0x33; 32], Instant::now());
    let _ = i.take_output();
    let mut attacker = Vec::new();
    let hello =
        Hello { name: name("bob@host2"), to: None, versions: VersionRange::CURRENT, flags: Flags::ALL, creation: 9 };
    let mut msg = Vec::new();
    hello.write(&mut msg);
    put_frame(&mut attacker, &msg);
    put_frame(&mut attacker, &[&[tag::CHALLENGE][..], &[0x33; 32]].concat());
    assert_eq!(i.feed(&attacker), Err(HandshakeError::ReflectedChallenge));
    assert!(i.take_output().is_empty(), "no proof is given away");
}

#[test]
fn proof_relayed_into_a_second_session_fails() {
    // The attacker (no key) is acceptor "bob" to alice in session 1, and dials alice as "bob" in
    // session 2. It relays alice's session-2 challenge into session 1 to get alice to answer it,
    // and hands that answer back in session 2. Same exporter even, to isolate role and names.
    let now = Instant::now();
    let mut alice_acc = Handshake::acceptor(config("alice@host1", 1, 7), [0x22; 32], [0x55; 32], now);
    let mut alice_init =
        Handshake::initiator(config("alice@host1", 1, 7), name("bob@host2"), [0x22; 32], [0x33; 32], now);
    let mut fake_bob =
        Handshake::initiator(config("bob@host2", 2, 99), name("alice@host1"), [0x22; 32], [0x66; 32], now);
    // Session 2: fake bob dials alice, gets her HELLO and challenge c2 = 0x55..
    alice_acc.feed(&fake_bob.take_output()).unwrap();
    assert!(!alice_acc.take_output().is_empty());
    // Session 1: the attacker answers alice's dial with bob's HELLO and challenge c2.
    let mut to_alice = Vec::new();
    let mut msg = Vec::new();
    Hello { name: name("bob@host2"), to: None, versions: VersionRange::CURRENT, flags: Flags::ALL, creation: 2 }
        .write(&mut msg);
    put_frame(&mut to_alice, &msg);
    put_frame(&mut to_alice, &[&[tag::CHALLENGE][..], &[0x55; 32]].concat());
    let _ = alice_init.take_output();
    alice_init.feed(&to_alice).unwrap();
    let alice_proof = alice_init.take_output();
    assert_eq!(alice_proof.len(), 4 + 33);
    // Session 2: hand alice's own proof to her acceptor side.
    assert_eq!(alice_acc.feed(&alice_proof), Err(HandshakeError::WrongCookie));
}

#[test]
fn roles_give_different_proofs() {
    let mut p = pair(7, 7);
    p.run(Handshake::accept);
    let c = [0x77; 32];
    let by_initiator = p.i.proof_mac(Side::Initiator, &c).finalize().into_bytes();
    let by_acceptor = p.i.proof_mac(Side::Acceptor, &c).finalize().into_bytes();
    assert_ne!(by_initiator, by_acceptor);
    // Both ends compute the same bytes for the same role.
    assert_eq!(by_initiator, p.a.proof_mac(Side::Initiator, &c).finalize().into_bytes());
}

#[test]
fn version_mismatch_is_reported_on_both_sides() {
    let mut i_cfg = config("alice@host1", 1, 7);
    i_cfg.versions = VersionRange { min: 3, max: 4 };
    let mut p = pair_with(i_cfg, config("bob@host2", 2, 7), [0x22; 32], [0x22; 32], Instant::now());
    p.run(Handshake::accept);
    let expect = |ours_min, ours_max, theirs_min, theirs_max| {
        Err(HandshakeError::VersionMismatch { ours_min, ours_max, theirs_min, theirs_max })
    };
    assert_eq!(p.a.result(), expect(1, 1, 3, 4));
    assert_eq!(p.i.result(), expect(3, 4, 1, 1));
}

#[test]
fn highest_common_version_is_chosen() {
    let r = |min, max| VersionRange { min, max };
    assert_eq!(r(1, 5).negotiate(r(3, 9)), Some(5));
    assert_eq!(r(1, 2).negotiate(r(2, 2)), Some(2));
    assert_eq!(r(1, 2).negotiate(r(3, 4)), None);
}

#[test]
fn wrong_node_answering_is_a_name_mismatch() {
    let now = Instant::now();
    let mut i = Handshake::initiator(config("alice@host1", 1, 7), name("bob@host2"), [0x22; 32], [0x33; 32], now);
    let mut a = Handshake::acceptor(config("carol@host2", 3, 7), [0x22; 32], [0x44; 32], now);
    let to_i = a.take_output();
    assert_eq!(
        a.feed(&i.take_output()),
        Err(HandshakeError::NotForUs { wanted: name("bob@host2"), local: name("carol@host2") })
    );
    assert_eq!(
        i.feed(&to_i),
        Err(HandshakeError::NameMismatch { expected: name("bob@host2"), got: name("carol@host2") })
    );
}

#[test]
fn connecting_to_ourselves_fails() {
    let now = Instant::now();
    let mut i = Handshake::initiator(config("bob@host2", 1, 7), name("bob@host2"), [0x22; 32], [0x33; 32], now);
    let mut a = Handshake::acceptor(config("bob@host2", 1, 7), [0x22; 32], [0x44; 32], now);
    assert_eq!(a.feed(&i.take_output()), Err(HandshakeError::SameName(name("bob@host2"))));
}

#[test]
fn duplicate_is_announced_after_authentication() {
    let mut p = pair(7, 7);
    p.run(Handshake::reject_duplicate);
    assert_eq!(p.a.result(), Err(HandshakeError::DuplicateRejected));
    assert_eq!(p.i.result(), Err(HandshakeError::Duplicate));
}

#[test]
fn tie_break_keeps_exactly_one_connection() {
    let (a, b) = (name("alpha@h"), name("beta@h"));
    assert!(keep_initiated(&a, &b) != keep_initiated(&b, &a));
    assert!(keep_initiated(&a, &b));
}

#[test]
fn deadline_gives_timeout_and_not_before() {
    let now = Instant::now();
    let mut p = pair_with(config("alice@host1", 1, 7), config("bob@host2", 2, 7), [0x22; 32], [0x22; 32], now);
    // Only the first flight moves; the acceptor then waits for a decision that never comes.
    p.a.feed(&p.i.take_output()).unwrap();
    let deadline = p.a.poll_timeout().unwrap();
    assert_eq!(deadline, now + DEFAULT_HANDSHAKE_TIMEOUT);
    assert_eq!(p.a.handle_timeout(deadline - Duration::from_millis(1)), Ok(()));
    assert_eq!(p.a.handle_timeout(deadline), Err(HandshakeError::Timeout("waiting for the peer's cookie proof")));
    assert!(p.a.take_output().is_empty());
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn oversized_frame_is_refused_before_buffering() {
    let mut a = Handshake::acceptor(config("bob@host2", 2, 7), [0x22; 32], [0x44; 32], Instant::now());
    let _ = a.take_output();
    let header = ((MAX_HANDSHAKE_FRAME + 1) as u32).to_be_bytes();
    assert!(matches!(a.feed(&header), Err(HandshakeError::BadMessage(_))));
    assert!(a.take_output().is_empty());
}

#[test]
fn truncated_and_garbage_messages_are_bad_messages() {
    let hello = {
        let mut msg = Vec::new();
        Hello { name: name("alice@host1"), to: None, versions: VersionRange::CURRENT, flags: Flags::ALL, creation: 1 }
            .write(&mut msg);
        msg
    };
    let mut cases: Vec<Vec<u8>> = (0..hello.len() - 1).map(|n| hello[..n].to_vec()).collect();
    cases.push(vec![0xEE, 1, 2, 3]);
    cases.push(vec![tag::PROOF; 33]);
    let mut zero_creation = hello.clone();
    zero_creation[13..17].copy_from_slice(&[0; 4]);
    cases.push(zero_creation);
    let mut bad_range = hello.clone();
    bad_range[1..5].copy_from_slice(&[0, 2, 0, 1]);
    cases.push(bad_range);
    for case in cases {
        let mut a = Handshake::acceptor(config("bob@host2", 2, 7), [0x22; 32], [0x44; 32], Instant::now());
        let mut framed = Vec::new();
        put_frame(&mut framed, &case);
        assert!(matches!(a.feed(&framed), Err(HandshakeError::BadMessage(_))), "{case:02x?}");
    }
}

#[test]
fn eof_mid_handshake_names_the_step() {
    let mut a = Handshake::acceptor(config("bob@host2", 2, 7), [0x22; 32], [0x44; 32], Instant::now());
    a.feed(&[0, 0]).unwrap();
    assert_eq!(a.feed_eof(), Err(HandshakeError::Closed("waiting for the peer's HELLO")));
}

#[test]
fn data_before_the_verdict_is_refused() {
    let mut p = pair(7, 7);
    p.up_to_initiator_proof();
    assert!(matches!(p.a.feed(b"early"), Err(HandshakeError::BadMessage(_))));
}

#[test]
fn test_vectors_match_the_spec() {
    // Vectors from notes/protocol-dist.md, computed independently with Python's hmac module.
    let mut p = pair(0x11, 0x11);
    let hello = p.i.take_output();
    let hello_frame = "000000290100010001000000000000003f00000001000b616c69636540686f7374310009626f6240686f737432";
    assert_eq!(hex(&hello[..hello_frame.len() / 2]), hello_frame);
    p.a.feed(&hello).unwrap();
    p.i.feed(&p.a.take_output()).unwrap();
    let i_proof = p.i.take_output();
    assert_eq!(hex(&i_proof[5..]), "955e5b835f2bed4b87b21b7934715b1d8d6fd31a7c4f2e409e181fa4ab373507");
    p.a.feed(&i_proof).unwrap();
    while p.a.poll_event().is_some() {}
    p.a.accept();
    let last = p.a.take_output();
    assert_eq!(hex(&last[5..37]), "4add21ae4633ef8ffbc797d48709e4a1f3454866572823e877f8afa9fefad017");
    assert_eq!(hex(&last[37..]), "000000020400");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..8)) {
        for side in [Side::Initiator, Side::Acceptor] {
            let now = Instant::now();
            let mut hs = match side {
                Side::Initiator => Handshake::initiator(config("alice@host1", 1, 7), name("bob@host2"), [1; 32], [2; 32], now),
                Side::Acceptor => Handshake::acceptor(config("bob@host2", 2, 7), [1; 32], [3; 32], now),
            };
            for chunk in &chunks {
                let _ = hs.feed(chunk);
                while hs.poll_event().is_some() {
                    hs.accept();
                }
            }
            prop_assert!(!hs.is_established());
        }
    }

    #[test]
    fn mutated_valid_flights_never_establish_with_a_bad_proof(pos in 0usize..200, bit in 0u8..8) {
        // Flip one bit in the initiator's proof flight: the acceptor must not accept it.
        let mut p = pair(7, 7);
        p.a.feed(&p.i.take_output()).unwrap();
        p.i.feed(&p.a.take_output()).unwrap();
        let mut proof = p.i.take_output();
        let pos = 5 + pos % 32;
        proof[pos] ^= 1 << bit;
        prop_assert_eq!(p.a.feed(&proof), Err(HandshakeError::WrongCookie));
    }
}
