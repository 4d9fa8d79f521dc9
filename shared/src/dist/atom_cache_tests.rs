use std::collections::BTreeMap;

use super::*;
use crate::dist::control::{Control, ControlError, DecodeContext, Outgoing};
use crate::dist::inbound::{Inbound, InboundError};
use crate::dist::outbound::{Lane, Outbound, OutboundConfig};
use crate::dist::Flags;
use crate::fragment::ReassemblyLimits;
use crate::{Pid, Ref, Term};

fn node(text: &str) -> NodeName {
    NodeName::parse(text).unwrap()
}

fn pid(node_text: &str, id: u64, creation: u32) -> Pid {
    Pid::new(node(node_text), id, creation)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn inbound() -> Inbound {
    Inbound::new(DecodeContext::new(Flags::ALL), 1 << 20, ReassemblyLimits::default())
}

/// Frames `payload` and feeds it to `rx`; the message it decodes to.
fn receive(rx: &mut Inbound, payload: &[u8]) -> Result<Option<Control>, InboundError> {
    let mut framed = Vec::new();
    crate::frame::encode_frame(payload, &mut framed).unwrap();
    rx.feed(&framed);
    rx.next_message()
}

/// Encodes `msg` with `cache` and reports it written at once (a frame written straight away).
fn encode_written(cache: &mut CacheEncoder, msg: &Control) -> Vec<u8> {
    let mut out = Vec::new();
    let uses = cache.encode(&Outgoing::Control(msg), &mut out);
    cache.written(&uses);
    out
}

#[test]
fn a_repeated_message_names_its_pids_by_index() {
    let msg = Control::Send {
        from: pid("sender@app1.example.com", 41, 7),
        to: pid("receiver@app2.example.com", 9, 3),
        msg: Term::tuple([Term::atom("reading"), Term::Int(7)]),
    };
    let plain = msg.to_bytes();
    let mut cache = CacheEncoder::new();
    let mut rx = inbound();
    let first = encode_written(&mut cache, &msg);
    assert_eq!(first[0], CACHED_DEFINING, "the first use defines");
    assert_eq!(receive(&mut rx, &first), Ok(Some(msg.clone())));
    let again = encode_written(&mut cache, &msg);
    assert_eq!(again[0], CACHED, "later uses only refer");
    assert_eq!(receive(&mut rx, &again), Ok(Some(msg.clone())));
    // Two node names of 20-odd bytes and an atom become an index each.
    assert!(again.len() + 50 < plain.len(), "{} cached bytes against {} in full", again.len(), plain.len());
    assert_eq!(cache.len(), 3);
}

#[test]
fn every_kind_of_message_round_trips_through_the_cache() {
    let a = pid("a@h", 1, 1);
    let b = pid("b@h", 2, 3);
    let r = Ref::new(node("a@h"), 77, 1);
    let messages = [
        Control::RegSend {
            from: a.clone(),
            name: Atom::new("echo"),
            msg: Term::tuple([Term::Pid(a.clone()), 5.into()]),
        },
        Control::Link { from: a.clone(), to: b.clone() },
        Control::Monitor {
            from: a.clone(),
            target: crate::dist::control::MonitorTarget::Name(Atom::new("db")),
            reference: r.clone(),
        },
        Control::AliasSend { from: a.clone(), alias: r.clone(), msg: Term::atom("ok") },
        Control::Exit { from: a.clone(), to: b.clone(), reason: Term::atom("normal") },
        Control::NodeList { nodes: vec![node("c@h"), node("d@h")] },
        Control::SpawnReply { reference: r.clone(), to: b.clone(), result: Ok(a.clone()) },
        Control::Tick,
    ];
    let mut cache = CacheEncoder::new();
    let mut rx = inbound();
    for round in 0..2 {
        for msg in &messages {
            let bytes = encode_written(&mut cache, msg);
            assert_eq!(receive(&mut rx, &bytes), Ok(Some(msg.clone())), "round {round}: {}", msg.name());
        }
    }
}

#[test]
fn without_the_capability_the_queue_encodes_as_before_and_cached_frames_are_refused() {
    let msg = Control::Send { from: pid("a@h", 1, 1), to: pid("b@h", 2, 3), msg: Term::atom("hello") };
    let mut plain = Outbound::new(OutboundConfig::default());
    assert!(!plain.caches());
    let encoded = plain.encode(&Outgoing::Control(&msg));
    assert_eq!(encoded.payload, msg.to_bytes(), "today's encoding, byte for byte");
    plain.push_encoded(Lane::Sender(1), encoded);
    let mut rx =
        Inbound::new(DecodeContext::new(Flags::ALL.without(Flags::ATOM_CACHE)), 1 << 20, ReassemblyLimits::default());
    rx.feed(&plain.pop_batch(usize::MAX));
    assert_eq!(rx.next_message(), Ok(Some(msg.clone())));
    let cached = encode_written(&mut CacheEncoder::new(), &msg);
    assert_eq!(receive(&mut rx, &cached), Err(InboundError::CacheNotNegotiated));
}

#[test]
fn bad_references_and_definitions_are_typed_errors() {
    let bad_term = |result: Result<Option<Control>, InboundError>| match result {
        Err(InboundError::Control(ControlError::BadTerm { source, .. })) => source,
        other => panic!("expected a bad term, got {other:?}"),
    };
    // SEND whose `from` refers to index 5, never defined.
    let undefined = [CACHED, 0x01, 0x01, tag::PID_REF, 5, 1, 0x01, tag::PID_REF, 5, 2, 0x01, 0x2a];
    assert_eq!(
        bad_term(receive(&mut inbound(), &undefined)),
        DecodeError::BadCacheRef { index: 5, problem: "nothing was defined there" }
    );
    // Index 0 defined as the atom `abc`, then used as a pid's node.
    let mut wrong_kind = vec![CACHED_DEFINING, 0x01, 0x01, tag::PID_REF, 0, 1, 0x01, tag::PID_REF, 0, 2, 0x01, 0x2a];
    let definitions = [0, KIND_ATOM, 3, b'a', b'b', b'c'];
    wrong_kind.extend_from_slice(&definitions);
    wrong_kind.extend_from_slice(&(definitions.len() as u16).to_be_bytes());
    assert_eq!(
        bad_term(receive(&mut inbound(), &wrong_kind)),
        DecodeError::BadCacheRef { index: 0, problem: "it holds an atom, not a node" }
    );
    // A reference far outside the cache.
    let far = [
        CACHED,
        0x02,
        0x01,
        0x8b,
        3,
        b'a',
        b'@',
        b'h',
        1,
        0,
        0,
        0,
        1,
        0x01,
        tag::ATOM_REF,
        0xff,
        0xff,
        0x03,
        0x01,
        0x2a,
    ];
    assert_eq!(
        bad_term(receive(&mut inbound(), &far)),
        DecodeError::BadCacheRef { index: 0xffff, problem: "outside the cache" }
    );
    let definition_errors = [
        (vec![CACHED_DEFINING, 0x0c, 0x80, 0x10, KIND_ATOM, 1, b'x', 0, 5], CacheError::IndexOutOfRange(2048)),
        (vec![CACHED_DEFINING, 0x0c, 0, 9, 1, b'x', 0, 4], CacheError::UnknownKind(9)),
        (
            vec![CACHED_DEFINING, 0x0c, 0, KIND_ATOM, 1, 0xff, 0, 4],
            CacheError::BadAtom { index: 0, problem: "not UTF-8" },
        ),
        (
            vec![CACHED_DEFINING, 0x0c, 0, KIND_ATOM, 5, b'x', 0, 4],
            CacheError::Truncated("a definition's text runs past its section"),
        ),
        (
            vec![CACHED_DEFINING, 0x0c, 0, KIND_NODE, 1, b'x', 0, 4],
            CacheError::BadNode { index: 0, source: NameError::MissingAt("x".into()) },
        ),
        (
            vec![CACHED_DEFINING, 0x0c, 0, KIND_NODE, 3, b'a', b'@', b'h', 0, 0, 0, 8],
            CacheError::Truncated("a node definition without its creation"),
        ),
        (vec![CACHED_DEFINING, 0x0c, 0, 9], CacheError::Truncated("definitions longer than the frame")),
        (vec![CACHED_DEFINING, 0x0c], CacheError::Truncated("no definition length")),
    ];
    for (frame, error) in definition_errors {
        assert_eq!(receive(&mut inbound(), &frame), Err(InboundError::Cache(error)), "{}", hex(&frame));
    }
    // A cached frame holds a control message, not another cached frame or a fragment.
    assert!(matches!(
        receive(&mut inbound(), &[CACHED, CACHED, 0x0c]),
        Err(InboundError::Control(ControlError::NotControl(CACHED)))
    ));
    // A plain frame cannot refer to the cache.
    let plain_with_ref = [0x02, 0x01, 0x8b, 3, b'a', b'@', b'h', 1, 0, 0, 0, 1, 0x01, tag::ATOM_REF, 0, 0x01, 0x2a];
    assert_eq!(bad_term(receive(&mut inbound(), &plain_with_ref)), DecodeError::UnknownTag(tag::ATOM_REF));
}

#[test]
fn a_frame_uses_at_most_max_uses_entries_and_writes_the_rest_in_full() {
    let atoms: Vec<Term> = (0..MAX_USES + 10).map(|i| Term::atom(&format!("field_{i}"))).collect();
    let msg = Control::Send { from: pid("a@h", 1, 1), to: pid("b@h", 2, 3), msg: Term::List(atoms) };
    let mut cache = CacheEncoder::new();
    let mut out = Vec::new();
    let uses = cache.encode(&Outgoing::Control(&msg), &mut out);
    assert_eq!(uses.counts(), (MAX_USES, MAX_USES));
    cache.written(&uses);
    assert_eq!(receive(&mut inbound(), &out), Ok(Some(msg)));
}

#[test]
fn a_pinned_entry_is_never_replaced() {
    let mut cache = CacheEncoder::new();
    let from = pid("a@h", 1, 1);
    let to = pid("b@h", 2, 3);
    let send = |cache: &mut CacheEncoder, text: &str| {
        let msg = Control::Send { from: from.clone(), to: to.clone(), msg: Term::atom(text) };
        let mut out = Vec::new();
        let uses = cache.encode(&Outgoing::Control(&msg), &mut out);
        (uses, out)
    };
    // Fill the cache: every frame stays queued, so every entry is pinned.
    let mut queued = Vec::new();
    for i in 0..CACHE_ENTRIES - 2 {
        queued.push(send(&mut cache, &format!("atom_{i}")));
    }
    assert_eq!(cache.len(), CACHE_ENTRIES);
    let (uses, out) = send(&mut cache, "one_more");
    assert_eq!(uses.counts(), (2, 2), "the new atom is written in full, the pids still refer");
    assert!(out.windows(8).any(|w| w == b"one_more"));
    // Once the frames are written, their entries can be replaced.
    for (uses, _) in &queued {
        cache.written(uses);
    }
    cache.written(&uses);
    let (uses, _) = send(&mut cache, "one_more");
    assert_eq!(uses.counts(), (3, 1), "the atom got an entry (defined), the pids are known");
}

/// A small deterministic generator for the reordering test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Many senders, the urgent lane, large messages cut into interleaved fragments and more names
/// than the cache holds (so entries are replaced while frames that use them wait in lanes): every
/// message arrives intact and each sender's messages in order, with definitions applied in
/// frame-arrival order only.
#[test]
fn definitions_reach_the_receiver_before_any_use_whatever_the_queue_reorders() {
    let config = OutboundConfig { fragment_size: 300, atom_cache: true, ..OutboundConfig::default() };
    let mut out = Outbound::new(config);
    assert!(out.caches());
    let mut rx = Inbound::new(DecodeContext::new(Flags::ALL), 1 << 20, ReassemblyLimits::default());
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let nodes: Vec<NodeName> = (0..40).map(|i| node(&format!("node{i}@host{}.example.com", i % 7))).collect();
    let names: Vec<String> = (0..3000).map(|i| format!("name_{i}")).collect();
    let mut sent: BTreeMap<Option<u64>, Vec<Control>> = BTreeMap::new();
    let mut got: BTreeMap<Option<u64>, Vec<Control>> = BTreeMap::new();
    let mut fragmented = 0;
    for step in 0..20_000 {
        let lane = if rng.below(10) == 0 { None } else { Some(1 + rng.below(12) as u64) };
        let from = match lane {
            Some(sender) => Pid::new(nodes[0].clone(), sender, 1),
            None => Pid::new(nodes[0].clone(), 0, 1),
        };
        let to = Pid::new(nodes[rng.below(nodes.len())].clone(), rng.below(1000) as u64, rng.below(3) as u32);
        let mut items: Vec<Term> = (0..rng.below(6)).map(|_| Term::atom(&names[rng.below(names.len())])).collect();
        items.push(Term::Pid(Pid::new(nodes[rng.below(nodes.len())].clone(), 5, 2)));
        if rng.below(40) == 0 {
            items.push(Term::binary(vec![step as u8; 1000 + rng.below(2000)]));
            fragmented += 1;
        }
        let msg = Control::Send { from, to, msg: Term::List(items) };
        let encoded = out.encode(&Outgoing::Control(&msg));
        sent.entry(lane).or_default().push(msg);
        out.push_encoded(lane.map_or(Lane::Urgent, Lane::Sender), encoded);
        // Pop a little now and then, so frames wait in their lanes while others are encoded.
        if rng.below(3) == 0 {
            let batch = out.pop_batch(rng.below(2000));
            for piece in batch.chunks(1 + rng.below(500)) {
                rx.feed(piece);
                while let Some(msg) = rx.next_message().unwrap() {
                    let lane = msg.sender().map(|p| p.id()).filter(|id| *id != 0);
                    got.entry(lane).or_default().push(msg);
                }
            }
        }
    }
    while !out.is_empty() {
        rx.feed(&out.pop_batch(4096));
        while let Some(msg) = rx.next_message().unwrap() {
            let lane = msg.sender().map(|p| p.id()).filter(|id| *id != 0);
            got.entry(lane).or_default().push(msg);
        }
    }
    assert!(fragmented > 100, "large messages were fragmented: {fragmented}");
    assert_eq!(got, sent);
}

/// `cached NAME = hex` (or `cached-reject NAME = hex`) lines of PROTOCOL.md 4.4.
fn documented(kind: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for line in include_str!("../../PROTOCOL.md").lines() {
        let Some((head, hex)) = line.split_once(" = ") else { continue };
        let Some((k, name)) = head.split_once(' ') else { continue };
        if k == kind {
            let bytes = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            assert!(out.insert(name.to_owned(), bytes).is_none(), "{kind} {name} appears twice in PROTOCOL.md");
        }
    }
    out
}

#[test]
fn test_vectors_match_the_spec() {
    let a = pid("a@h", 1, 1);
    let b = pid("b@h", 2, 3);
    let sequence = [
        ("send-first", Control::Send { from: a.clone(), to: b.clone(), msg: Term::Int(42) }),
        ("send-again", Control::Send { from: a.clone(), to: b.clone(), msg: Term::Int(42) }),
        (
            "reg-send",
            Control::RegSend {
                from: a.clone(),
                name: Atom::new("echo"),
                msg: Term::tuple([Term::atom("ping"), Term::Pid(a.clone())]),
            },
        ),
    ];
    let vectors = documented("cached");
    assert_eq!(vectors.len(), sequence.len(), "every cached vector is checked here");
    // Encoding, in this order on a fresh connection, gives the documented bytes...
    let mut cache = CacheEncoder::new();
    for (name, msg) in &sequence {
        assert_eq!(hex(&encode_written(&mut cache, msg)), hex(&vectors[*name]), "encoding of {name}");
    }
    // ...and a fresh receiver decodes them, in the same order, to the same messages.
    let mut rx = inbound();
    for (name, msg) in &sequence {
        assert_eq!(receive(&mut rx, &vectors[*name]).as_ref(), Ok(&Some(msg.clone())), "decoding of {name}");
    }
    let rejects = documented("cached-reject");
    let errors = [
        ("undefined-index", "bad control message from the peer: SEND: field `from` is not a valid term: atom cache reference to index 5: nothing was defined there; the peer's cache is out of step with ours"),
        ("atom-used-as-node", "bad control message from the peer: SEND: field `from` is not a valid term: atom cache reference to index 0: it holds an atom, not a node; the peer's cache is out of step with ours"),
        ("index-out-of-range", "bad atom cache definitions from the peer: atom cache definition for index 2048, outside the cache of 2048 entries"),
        ("definitions-past-frame", "bad atom cache definitions from the peer: cached frame is truncated: definitions longer than the frame"),
    ];
    assert_eq!(rejects.len(), errors.len(), "every cached-reject vector is checked here");
    for (name, error) in errors {
        let got = receive(&mut inbound(), &rejects[name]).map_err(|e| e.to_string());
        assert_eq!(got, Err(error.to_owned()), "cached-reject {name}");
    }
}
