//! Property tests: codec round trips, hostile bytes, framing splits, interleaved fragments.

use proptest::prelude::*;
use snow_shared::binary::SHARE_THRESHOLD;
use snow_shared::codec::{decode, decode_shared, decode_with, encode, encoded_len, DecodeLimits, WIRE_VERSION};
use snow_shared::fragment::{Fragmenter, Reassembler};
use snow_shared::frame::{encode_frame, FrameDecoder};
use snow_shared::{Atom, Binary, NodeName, Pid, Ref, Struct, Sum, Term};

fn node() -> impl Strategy<Value = NodeName> {
    prop_oneof![
        Just("a@h"),
        Just("node-1@db1.example.com"),
        Just("x_y@10.0.0.1"),
        Just("v6@[::1]"),
        Just("nonode@nohost")
    ]
    .prop_map(|text| NodeName::parse(text).unwrap())
}

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![Just("ok".to_owned()), Just("EXIT".to_owned()), ".{0,12}"].prop_map(|s| Atom::new(&s))
}

fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        any::<i64>().prop_map(Term::Int),
        (0i64..200).prop_map(Term::Int),
        any::<u64>().prop_map(|bits| Term::Float(f64::from_bits(bits))),
        Just(Term::Float(f64::NAN)),
        Just(Term::Unit),
        any::<bool>().prop_map(Term::Bool),
        atom().prop_map(Term::Atom),
        ".{0,20}".prop_map(Term::String),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Term::binary),
        // Past the sharing threshold: reference-counted, and views when decoded from a buffer.
        prop::collection::vec(any::<u8>(), 60..300).prop_map(Term::binary),
        (node(), any::<u64>(), any::<u32>()).prop_map(|(n, id, c)| Term::Pid(Pid::new(n, id, c))),
        (node(), any::<u64>(), any::<u32>()).prop_map(|(n, id, c)| Term::Ref(Ref::new(n, id, c))),
    ]
}

fn term() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Term::Tuple),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Term::List),
            prop::collection::btree_map(inner.clone(), inner.clone(), 0..5).prop_map(Term::Map),
            (atom(), prop::collection::vec((atom(), inner.clone()), 0..4))
                .prop_map(|(name, fields)| Term::Struct(Box::new(Struct { name, fields }))),
            (atom(), atom(), prop::collection::vec(inner, 0..4))
                .prop_map(|(type_name, variant, fields)| Term::Sum(Box::new(Sum { type_name, variant, fields }))),
        ]
    })
}

/// Every binary in `t`, depth first.
fn binaries_of<'a>(t: &'a Term, out: &mut Vec<&'a Binary>) {
    match t {
        Term::Binary(b) => out.push(b),
        Term::Tuple(items) | Term::List(items) => items.iter().for_each(|i| binaries_of(i, out)),
        Term::Map(map) => map.iter().for_each(|(k, v)| {
            binaries_of(k, out);
            binaries_of(v, out);
        }),
        Term::Struct(s) => s.fields.iter().for_each(|(_, v)| binaries_of(v, out)),
        Term::Sum(s) => s.fields.iter().for_each(|v| binaries_of(v, out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_inverts_encode(t in term()) {
        let bytes = encode(&t);
        prop_assert_eq!(bytes.len(), encoded_len(&t));
        prop_assert_eq!(decode(&bytes).unwrap(), t);
    }

    #[test]
    fn decoding_from_a_shared_buffer_gives_the_same_term_with_large_binaries_as_views(t in term()) {
        let buffer = Binary::from(encode(&t));
        let decoded = decode_shared(&buffer, &DecodeLimits::default()).unwrap();
        prop_assert_eq!(&decoded, &t);
        let inside = buffer.as_ptr_range();
        let mut binaries = Vec::new();
        binaries_of(&decoded, &mut binaries);
        for b in binaries {
            let view = b.len() > SHARE_THRESHOLD && 4 * b.len() >= buffer.len();
            prop_assert_eq!(inside.contains(&b.as_ptr()), view, "{} bytes of {}", b.len(), buffer.len());
        }
    }

    #[test]
    fn every_strict_prefix_of_an_encoding_is_an_error(t in term()) {
        let bytes = encode(&t);
        for cut in 0..bytes.len() {
            prop_assert!(decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_error(mut bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        // Most random inputs die at the version byte; also try them as a body.
        bytes.insert(0, WIRE_VERSION);
        let tight = DecodeLimits { max_depth: 8, max_elements: 64, max_bytes: 1024 };
        let _ = decode_with(&bytes, &tight);
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_encodings_decode_or_error(t in term(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = encode(&t);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(decoded) = decode(&bytes) {
            // Whatever decodes must itself round-trip.
            prop_assert_eq!(decode(&encode(&decoded)).unwrap(), decoded);
        }
    }

    #[test]
    fn framing_is_independent_of_how_the_stream_is_split(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut stream = Vec::new();
        for p in &payloads {
            encode_frame(p, &mut stream).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::new(300);
        let mut got = Vec::new();
        for pair in points.windows(2) {
            decoder.feed(&stream[pair[0]..pair[1]]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                got.push(frame);
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn interleaved_fragments_reassemble_exactly(
        messages in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..500), 1usize..64), 1..6),
        schedule in prop::collection::vec(any::<prop::sample::Index>(), 0..400),
    ) {
        let mut senders: Vec<Fragmenter> = messages
            .iter()
            .enumerate()
            .map(|(seq, (payload, chunk))| Fragmenter::new(seq as u64 * 1_000_003, payload.clone(), *chunk))
            .collect();
        let mut receiver = Reassembler::default();
        let mut done: Vec<Option<Vec<u8>>> = vec![None; messages.len()];
        let mut deliver = |i: usize, fragment: Vec<u8>, receiver: &mut Reassembler| -> Result<(), TestCaseError> {
            if let Some(message) = receiver.push(&fragment).unwrap() {
                prop_assert!(done[i].is_none());
                done[i] = Some(message);
            }
            Ok(())
        };
        // Follow the random schedule, then drain whatever is left in order.
        for pick in schedule {
            let i = pick.index(senders.len());
            if let Some(fragment) = senders[i].next() {
                deliver(i, fragment, &mut receiver)?;
            }
        }
        for (i, sender) in senders.iter_mut().enumerate() {
            for fragment in sender.by_ref() {
                deliver(i, fragment, &mut receiver)?;
            }
        }
        let expected: Vec<Option<Vec<u8>>> = messages.into_iter().map(|(p, _)| Some(p)).collect();
        prop_assert_eq!(done, expected);
        prop_assert_eq!(receiver.in_flight(), 0);
        prop_assert_eq!(receiver.buffered_bytes(), 0);
    }
}
