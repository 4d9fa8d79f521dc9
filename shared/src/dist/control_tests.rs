use super::*;
use crate::binary::Binary;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn node(text: &str) -> NodeName {
    NodeName::parse(text).unwrap()
}

fn ctx() -> DecodeContext {
    DecodeContext::new(Flags::ALL)
}

fn arb_node() -> impl Strategy<Value = NodeName> {
    prop_oneof![Just(node("a@h")), Just(node("bob@host2")), Just(node("n-1@[::1]")), Just(node("x_y@10.0.0.7"))]
}

fn arb_pid() -> impl Strategy<Value = Pid> {
    (arb_node(), any::<u64>(), 1u32..).prop_map(|(n, id, c)| Pid::new(n, id, c))
}

fn arb_ref() -> impl Strategy<Value = Ref> {
    (arb_node(), any::<u64>(), 1u32..).prop_map(|(n, id, c)| Ref::new(n, id, c))
}

fn arb_atom() -> impl Strategy<Value = Atom> {
    "[a-z_]{1,12}".prop_map(|s| Atom::new(&s))
}

fn arb_term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Term::Int),
        any::<bool>().prop_map(Term::Bool),
        arb_atom().prop_map(Term::Atom),
        ".{0,20}".prop_map(Term::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Term::binary),
        proptest::collection::vec(any::<u8>(), 60..200).prop_map(Term::binary),
        arb_pid().prop_map(Term::Pid),
        Just(Term::Unit),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Term::Tuple),
            proptest::collection::vec(inner, 0..6).prop_map(Term::List),
        ]
    })
}

fn arb_target() -> impl Strategy<Value = MonitorTarget> {
    prop_oneof![arb_pid().prop_map(MonitorTarget::Pid), arb_atom().prop_map(MonitorTarget::Name)]
}

fn arb_entry() -> impl Strategy<Value = GlobalEntry> {
    (arb_term(), arb_pid(), 0..=i64::MAX as u64, arb_node(), any::<u32>())
        .prop_map(|(name, pid, stamp, origin, generation)| GlobalEntry { name, pid, stamp, origin, generation })
}

/// Every valid combination of spawn options.
fn arb_spawn_opts() -> impl Strategy<Value = SpawnOpts> {
    let opts = |link, monitor, call, no_reply| SpawnOpts { link, monitor, call, no_reply };
    prop_oneof![
        any::<(bool, bool)>().prop_map(move |(link, monitor)| opts(link, monitor, false, false)),
        any::<bool>().prop_map(move |link| opts(link, true, true, false)),
        Just(opts(false, false, false, true)),
    ]
}

fn arb_control() -> impl Strategy<Value = Control> {
    let pids = || proptest::collection::vec(arb_pid(), 0..5);
    prop_oneof![
        (arb_pid(), arb_pid(), arb_term()).prop_map(|(from, to, msg)| Control::Send { from, to, msg }),
        (arb_pid(), arb_atom(), arb_term()).prop_map(|(from, name, msg)| Control::RegSend { from, name, msg }),
        (arb_pid(), arb_pid()).prop_map(|(from, to)| Control::Link { from, to }),
        (arb_pid(), arb_pid()).prop_map(|(from, to)| Control::Unlink { from, to }),
        (arb_pid(), arb_pid(), arb_term()).prop_map(|(from, to, reason)| Control::Exit { from, to, reason }),
        (arb_pid(), arb_pid(), arb_term()).prop_map(|(from, to, reason)| Control::Exit2 { from, to, reason }),
        (arb_pid(), arb_target(), arb_ref()).prop_map(|(from, target, reference)| Control::Monitor {
            from,
            target,
            reference
        }),
        (arb_pid(), arb_target(), arb_ref()).prop_map(|(from, target, reference)| Control::Demonitor {
            from,
            target,
            reference
        }),
        (arb_target(), arb_pid(), arb_ref(), arb_term())
            .prop_map(|(from, to, reference, reason)| Control::MonitorExit { from, to, reference, reason }),
        (arb_ref(), arb_pid(), arb_atom(), proptest::collection::vec(arb_term(), 0..4), arb_spawn_opts()).prop_map(
            |(reference, from, function, args, opts)| Control::SpawnReq { reference, from, function, args, opts }
        ),
        (arb_pid(), arb_ref(), arb_term()).prop_map(|(from, alias, msg)| Control::AliasSend { from, alias, msg }),
        (arb_ref(), arb_pid(), prop_oneof![arb_pid().prop_map(Ok), arb_term().prop_map(Err)])
            .prop_map(|(reference, to, result)| Control::SpawnReply { reference, to, result }),
        Just(Control::Tick),
        proptest::collection::vec(arb_node(), 0..5).prop_map(|nodes| Control::NodeList { nodes }),
        arb_entry().prop_map(Control::GlobalRegister),
        (arb_term(), arb_pid()).prop_map(|(name, pid)| Control::GlobalUnregister { name, pid }),
        proptest::collection::vec(arb_entry(), 0..4).prop_map(|entries| Control::GlobalSync { entries }),
        (arb_pid(), arb_entry()).prop_map(|(loser, winner)| Control::GlobalConflict { loser, winner }),
        (arb_atom(), arb_term(), pids()).prop_map(|(scope, group, pids)| Control::GroupJoin { scope, group, pids }),
        (arb_atom(), arb_term(), pids()).prop_map(|(scope, group, pids)| Control::GroupLeave { scope, group, pids }),
        (arb_atom(), proptest::collection::vec((arb_term(), pids()), 0..4))
            .prop_map(|(scope, groups)| Control::GroupSync { scope, groups }),
        arb_atom().prop_map(|scope| Control::GroupDiscover { scope }),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(msg in arb_control()) {
        let bytes = msg.to_bytes();
        prop_assert_eq!(bytes[0], msg.tag());
        prop_assert_eq!(decode_shared(&Binary::from(bytes.clone()), &ctx()), Ok(msg.clone()));
        prop_assert_eq!(decode(&bytes, &ctx()), Ok(msg));
    }

    #[test]
    fn send_to_bytes_is_the_encoding_of_send(from in arb_pid(), to in arb_pid(), msg in arb_term()) {
        let bytes = Control::send_to_bytes(&from, &to, &msg);
        prop_assert_eq!(&bytes, &Control::Send { from, to, msg }.to_bytes());
    }

    #[test]
    fn an_outgoing_message_encodes_the_same_sized_or_not(from in arb_pid(), to in arb_pid(), msg in arb_term(), control in arb_control()) {
        let send = Outgoing::Send { from: &from, to: &to, msg: &msg };
        prop_assert_eq!(send.to_bytes_sized(send.term_len()), send.to_bytes());
        let control = Outgoing::Control(&control);
        prop_assert_eq!(control.to_bytes_sized(control.term_len()), control.to_bytes());
    }

    #[test]
    fn every_truncation_is_an_error(msg in arb_control()) {
        let bytes = msg.to_bytes();
        for cut in 0..bytes.len() {
            // TICK is complete with its tag alone; anything shorter than a message must fail.
            prop_assert!(decode(&bytes[..cut], &ctx()).is_err(), "{} cut at {}", msg.name(), cut);
            prop_assert!(decode_shared(&Binary::from(&bytes[..cut]), &ctx()).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes, &ctx());
        let _ = decode(&bytes, &DecodeContext::new(Flags::NONE));
        let _ = decode_shared(&Binary::from(bytes), &ctx());
    }

    #[test]
    fn valid_tag_with_garbage_never_panics(tag in 0u8..=0x1b, body in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut bytes = vec![tag];
        bytes.extend(body);
        let _ = decode(&bytes, &ctx());
    }
}

/// The registry and group messages, with longer lists than `arb_control` makes.
fn arb_cluster_message() -> impl Strategy<Value = Control> {
    let pids = || proptest::collection::vec(arb_pid(), 0..12);
    prop_oneof![
        arb_entry().prop_map(Control::GlobalRegister),
        (arb_term(), arb_pid()).prop_map(|(name, pid)| Control::GlobalUnregister { name, pid }),
        proptest::collection::vec(arb_entry(), 0..24).prop_map(|entries| Control::GlobalSync { entries }),
        (arb_pid(), arb_entry()).prop_map(|(loser, winner)| Control::GlobalConflict { loser, winner }),
        (arb_atom(), arb_term(), pids()).prop_map(|(scope, group, pids)| Control::GroupJoin { scope, group, pids }),
        (arb_atom(), arb_term(), pids()).prop_map(|(scope, group, pids)| Control::GroupLeave { scope, group, pids }),
        (arb_atom(), proptest::collection::vec((arb_term(), pids()), 0..12))
            .prop_map(|(scope, groups)| Control::GroupSync { scope, groups }),
        arb_atom().prop_map(|scope| Control::GroupDiscover { scope }),
    ]
}

proptest! {
    #[test]
    fn cluster_messages_round_trip_and_their_mutations_decode_or_error(
        msg in arb_cluster_message(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let bytes = msg.to_bytes();
        prop_assert_eq!(decode(&bytes, &ctx()), Ok(msg.clone()));
        let without = DecodeContext::new(Flags::ALL.without(msg.required_flag().unwrap()));
        prop_assert!(decode(&bytes, &without).is_err(), "{} decoded without its capability", msg.name());
        let mut mutated = bytes;
        for (at, value) in edits {
            let i = at.index(mutated.len());
            mutated[i] = value;
        }
        // Whatever a corrupted message decodes to must itself round-trip.
        if let Ok(decoded) = decode(&mutated, &ctx()) {
            prop_assert_eq!(decode(&decoded.to_bytes(), &ctx()), Ok(decoded));
        }
    }
}

#[test]
fn test_vectors_match_the_spec() {
    let send = Control::Send { from: Pid::new(node("a@h"), 1, 1), to: Pid::new(node("b@h"), 2, 3), msg: Term::Int(42) };
    let hex: String = send.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "01018b036140680100000001018b036240680200000003012a");
    assert_eq!(Control::Tick.to_bytes(), [0x0c]);
    let link = Control::Link { from: Pid::new(node("a@h"), 1, 1), to: Pid::new(node("b@h"), 2, 3) };
    let hex: String = link.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "03018b036140680100000001018b036240680200000003");
}

#[test]
fn a_large_binary_of_a_shared_payload_is_a_view_of_it_and_a_small_one_a_copy() {
    let (from, to) = (Pid::new(node("a@h"), 1, 1), Pid::new(node("b@h"), 2, 1));
    let blob = vec![0xabu8; 64 << 10];
    let msg = Term::tuple([Term::atom("put"), Term::binary(&blob), Term::binary([1u8; 64])]);
    let payload = Binary::from(Control::Send { from: from.clone(), to: to.clone(), msg }.to_bytes());
    let Ok(Control::Send { msg, .. }) = decode_shared(&payload, &ctx()) else { panic!("not a SEND") };
    let Some([_, Term::Binary(large), Term::Binary(small)]) = msg.as_tuple() else { panic!("{msg}") };
    assert_eq!(large, &blob);
    let inside = payload.as_ptr_range();
    assert!(inside.contains(&large.as_ptr()), "the 64 KiB binary is a view of the received payload");
    assert!(!inside.contains(&small.as_ptr()), "a 64-byte binary is copied");
    assert_eq!(small, &vec![1u8; 64]);

    // Under a quarter of the payload: copied, so that keeping it cannot pin the message.
    let msg = Term::tuple([Term::binary(vec![1u8; 1000]), Term::binary(vec![2u8; 5000])]);
    let payload = Binary::from(Control::Send { from, to, msg }.to_bytes());
    let Ok(Control::Send { msg, .. }) = decode_shared(&payload, &ctx()) else { panic!("not a SEND") };
    let inside = payload.as_ptr_range();
    let Some([part, most]) = msg.as_tuple() else { panic!("{msg}") };
    assert!(!inside.contains(&part.as_bytes().unwrap().as_ptr()), "1000 of about 6000 bytes: copied");
    assert!(inside.contains(&most.as_bytes().unwrap().as_ptr()), "5000 of about 6000 bytes: a view");
}

#[test]
fn unknown_tags_are_ignored_only_when_negotiated() {
    let ext = [0x90, 1, 2, 3];
    assert_eq!(decode(&ext, &ctx()), Ok(Control::Unknown { tag: 0x90 }));
    let strict = DecodeContext::new(Flags::ALL.without(Flags::EXTENSIONS));
    assert_eq!(decode(&ext, &strict), Err(ControlError::UnknownTag(0x90)));
    // Below the extension range an unknown tag is always an error.
    assert_eq!(decode(&[0x30], &ctx()), Err(ControlError::UnknownTag(0x30)));
    // Fragments and reserved kinds are not control messages.
    for kind in [0x00, 0xf0, 0xf1, 0xf2, 0xff] {
        assert_eq!(decode(&[kind, 0], &ctx()), Err(ControlError::NotControl(kind)));
    }
    assert_eq!(decode(&[], &ctx()), Err(ControlError::Empty));
}

#[test]
fn capability_messages_need_their_flag() {
    let spawn = Control::SpawnReply {
        reference: Ref::new(node("a@h"), 1, 1),
        to: Pid::new(node("a@h"), 2, 1),
        result: Err(Term::atom("not_spawnable")),
    };
    let no_spawn = DecodeContext::new(Flags::ALL.without(Flags::SPAWN));
    assert_eq!(
        decode(&spawn.to_bytes(), &no_spawn),
        Err(ControlError::NotNegotiated { message: "SPAWN_REPLY", flag: Flags::SPAWN })
    );
    assert_eq!(spawn.required_flag(), Some(Flags::SPAWN));
    assert_eq!(Control::Tick.required_flag(), None);
    let groups = Control::GroupSync { scope: Atom::new("pg"), groups: vec![] };
    assert!(decode(&groups.to_bytes(), &DecodeContext::new(Flags::NONE)).is_err());
}

#[test]
fn wrong_field_kinds_are_named() {
    // SEND whose `to` is an integer.
    let mut bytes = vec![tag::SEND];
    encode_into(&Term::Pid(Pid::new(node("a@h"), 1, 1)), &mut bytes);
    encode_into(&Term::Int(5), &mut bytes);
    encode_into(&Term::Unit, &mut bytes);
    assert_eq!(
        decode(&bytes, &ctx()),
        Err(ControlError::BadField { message: "SEND", field: "to", expected: "a pid", got: "an integer" })
    );
    // SPAWN_REQ with an unknown option bit.
    let mut bytes = vec![tag::SPAWN_REQ];
    encode_into(&Term::Ref(Ref::new(node("a@h"), 1, 1)), &mut bytes);
    encode_into(&Term::Pid(Pid::new(node("a@h"), 1, 1)), &mut bytes);
    encode_into(&Term::atom("worker"), &mut bytes);
    encode_into(&Term::List(vec![]), &mut bytes);
    encode_into(&Term::Int(4), &mut bytes);
    assert!(matches!(decode(&bytes, &ctx()), Err(ControlError::BadField { field: "opts", .. })));
    // A call option is refused on a connection without CALLS, and never reaches the opts check.
    let call = Control::SpawnReq {
        reference: Ref::new(node("a@h"), 1, 1),
        from: Pid::new(node("a@h"), 1, 1),
        function: Atom::new("worker"),
        args: vec![],
        opts: SpawnOpts { monitor: true, call: true, ..SpawnOpts::default() },
    };
    assert_eq!(call.required_flag(), Some(Flags::SPAWN.with(Flags::CALLS)));
    assert_eq!(
        decode(&call.to_bytes(), &DecodeContext::new(Flags::ALL.without(Flags::CALLS))),
        Err(ControlError::NotNegotiated { message: "SPAWN_REQ with call options", flag: Flags::CALLS })
    );
    // A node list holding something that is not a node name.
    let mut bytes = vec![tag::NODE_LIST];
    encode_into(&Term::List(vec![Term::atom("nohost")]), &mut bytes);
    assert!(matches!(decode(&bytes, &ctx()), Err(ControlError::BadField { field: "nodes", .. })));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = Control::Tick.to_bytes();
    bytes.push(0);
    assert_eq!(decode(&bytes, &ctx()), Err(ControlError::TrailingBytes { message: "TICK", extra: 1 }));
}

#[test]
fn term_limits_apply_to_fields() {
    let deep = (0..50).fold(Term::Int(1), |t, _| Term::List(vec![t]));
    let msg = Control::Send { from: Pid::new(node("a@h"), 1, 1), to: Pid::new(node("b@h"), 2, 3), msg: deep };
    let mut tight = ctx();
    tight.limits.max_depth = 10;
    assert!(matches!(decode(&msg.to_bytes(), &tight), Err(ControlError::BadTerm { field: "msg", .. })));
    assert!(decode(&msg.to_bytes(), &ctx()).is_ok());
}

#[test]
fn sender_is_the_ordering_key() {
    let p = Pid::new(node("a@h"), 1, 1);
    let send = Control::Send { from: p.clone(), to: p.clone(), msg: Term::Unit };
    assert_eq!(send.sender(), Some(&p));
    assert_eq!(Control::Tick.sender(), None);
    assert_eq!(Control::NodeList { nodes: vec![] }.sender(), None);
}

/// `control NAME = hex` (or `control-reject NAME = hex` when `reject`) lines of PROTOCOL.md 4.3.7.
fn documented_control_vectors(reject: bool) -> BTreeMap<String, Vec<u8>> {
    let kind = if reject { "control-reject" } else { "control" };
    let mut out = BTreeMap::new();
    for line in include_str!("../../PROTOCOL.md").lines() {
        let Some((head, hex)) = line.split_once(" = ") else { continue };
        let Some((k, name)) = head.split_once(' ') else { continue };
        if k != kind {
            continue;
        }
        let bytes = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        assert!(out.insert(name.to_owned(), bytes).is_none(), "{kind} {name} appears twice in PROTOCOL.md");
    }
    out
}

/// The messages PROTOCOL.md 4.3.7 and 4.3.8 describe in their tables.
fn vector_messages() -> BTreeMap<String, Control> {
    let a1 = Pid::new(node("a@h"), 1, 1);
    let a2 = Pid::new(node("a@h"), 2, 1);
    let stamp = (1_700_000_000_000u64 << 16) | 3;
    assert_eq!(stamp, 111_411_200_000_000_003, "the stamp the document quotes");
    let db = GlobalEntry { name: Term::atom("db"), pid: a1.clone(), stamp, origin: node("a@h"), generation: 0 };
    let cache =
        GlobalEntry { name: Term::string("cache"), pid: a2.clone(), stamp: 5, origin: node("b@h"), generation: 2 };
    let pg = || Atom::new("pg");
    let chat = Term::tuple([Term::atom("chat"), Term::Int(7)]);
    [
        ("global-register", Control::GlobalRegister(db.clone())),
        ("global-unregister", Control::GlobalUnregister { name: Term::atom("db"), pid: a1.clone() }),
        ("global-sync", Control::GlobalSync { entries: vec![db.clone(), cache] }),
        ("global-conflict", Control::GlobalConflict { loser: Pid::new(node("b@h"), 2, 3), winner: db }),
        (
            "group-join",
            Control::GroupJoin { scope: pg(), group: Term::atom("room"), pids: vec![a1.clone(), a2.clone()] },
        ),
        ("group-leave", Control::GroupLeave { scope: pg(), group: Term::atom("room"), pids: vec![a2.clone()] }),
        (
            "group-sync",
            Control::GroupSync { scope: pg(), groups: vec![(Term::atom("room"), vec![a1]), (chat, vec![a2])] },
        ),
        ("group-discover", Control::GroupDiscover { scope: pg() }),
        (
            "spawn-call",
            Control::SpawnReq {
                reference: call_ref(),
                from: caller(),
                function: Atom::new("double"),
                args: vec![Term::Int(21)],
                opts: SpawnOpts { monitor: true, call: true, ..SpawnOpts::default() },
            },
        ),
        (
            "spawn-cast",
            Control::SpawnReq {
                reference: Ref::new(node("a@h"), 8, 1),
                from: caller(),
                function: Atom::new("log"),
                args: vec![Term::string("hi")],
                opts: SpawnOpts { no_reply: true, ..SpawnOpts::default() },
            },
        ),
        (
            "call-return",
            Control::MonitorExit {
                from: MonitorTarget::Pid(Pid::new(node("b@h"), 2, 3)),
                to: caller(),
                reference: call_ref(),
                reason: Term::tuple([Term::Ref(call_ref()), Term::atom("return"), Term::Int(42)]),
            },
        ),
        (
            "alias-send",
            Control::AliasSend { from: caller(), alias: Ref::new(node("b@h"), 9, 3), msg: Term::atom("ping") },
        ),
    ]
    .into_iter()
    .map(|(name, message)| (name.to_owned(), message))
    .collect()
}

/// The caller of the call vectors, `<a@h.1.1>`.
fn caller() -> Pid {
    Pid::new(node("a@h"), 1, 1)
}

/// The reference of the call vectors, `#Ref<a@h.7.1>`.
fn call_ref() -> Ref {
    Ref::new(node("a@h"), 7, 1)
}

#[test]
fn cluster_call_and_alias_vectors_match_the_spec() {
    let documented = documented_control_vectors(false);
    let expected = vector_messages();
    assert_eq!(documented.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (name, message) in &expected {
        assert_eq!(&message.to_bytes(), &documented[name], "encoding of {name}");
        assert_eq!(decode(&documented[name], &ctx()).as_ref(), Ok(message), "decoding of {name}");
        // Each needs its capability (MONITOR_EXIT needs none).
        if let Some(flag) = message.required_flag() {
            for needed in [Flags::SPAWN, Flags::CALLS, Flags::ALIAS, Flags::GLOBAL, Flags::GROUPS] {
                if flag.contains(needed) {
                    let without = DecodeContext::new(Flags::ALL.without(needed));
                    assert!(decode(&documented[name], &without).is_err(), "{name} decoded without {needed:?}");
                }
            }
        }
    }
    let rejects = documented_control_vectors(true);
    let field = |name: &str| match decode(&rejects[name], &ctx()) {
        Err(ControlError::BadField { field, .. }) => field,
        other => panic!("control-reject {name} gave {other:?}"),
    };
    assert_eq!(field("generation-too-large"), "generation");
    assert_eq!(field("negative-stamp"), "stamp");
    assert_eq!(field("origin-not-a-node-name"), "origin");
    assert_eq!(field("sync-entry-of-four"), "entries");
    assert_eq!(field("join-scope-not-an-atom"), "scope");
    assert_eq!(field("call-without-monitor"), "opts");
    assert_eq!(field("cast-with-link"), "opts");
    assert_eq!(field("spawn-unknown-option"), "opts");
    assert_eq!(field("alias-send-to-a-pid"), "alias");
    assert_eq!(rejects.len(), 9, "every reject vector is checked here");
}
