use super::*;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

fn pid() -> Term {
    Term::Pid(Pid::new(NodeName::parse("a@h").unwrap(), 300, 7))
}

#[test]
fn varints_round_trip_and_have_expected_sizes() {
    for (v, len) in [(0u64, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (u64::MAX, 10)] {
        assert_eq!(varint_len(v), len, "{v}");
        let mut out = Vec::new();
        write_varint(&mut out, v);
        assert_eq!(out.len(), len);
        assert_eq!(read_varint(&out).unwrap(), (v, len));
    }
}

#[test]
fn varint_overflow_and_truncation() {
    assert_eq!(read_varint(&[0xff; 10]), Err(DecodeError::VarintOverflow));
    assert_eq!(
        read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
        Err(DecodeError::VarintOverflow)
    );
    assert_eq!(read_varint(&[0x80, 0x80]), Err(DecodeError::Truncated));
    assert_eq!(read_varint(&[]), Err(DecodeError::Truncated));
    // Overlong but in range is accepted.
    assert_eq!(read_varint(&[0x81, 0x00]), Ok((1, 2)));
}

#[test]
fn zigzag_maps_small_magnitudes_to_small_values() {
    for (i, u) in [(0i64, 0u64), (-1, 1), (1, 2), (-2, 3), (i64::MAX, u64::MAX - 1), (i64::MIN, u64::MAX)] {
        assert_eq!(zigzag(i), u);
        assert_eq!(unzigzag(u), i);
    }
}

#[test]
fn small_ints_take_one_byte() {
    assert_eq!(encode(&Term::Int(0)), [WIRE_VERSION, 0x00]);
    assert_eq!(encode(&Term::Int(127)), [WIRE_VERSION, 0x7f]);
    assert_eq!(encode(&Term::Int(128)), [WIRE_VERSION, tag::INT, 0x80, 0x02]);
    assert_eq!(encode(&Term::Int(-1)), [WIRE_VERSION, tag::INT, 0x01]);
}

#[test]
fn encoded_len_is_exact() {
    let terms = [
        Term::tuple([Term::atom("msg"), pid(), Term::Int(42), Term::binary([0u8; 32])]),
        Term::map([("k", Term::list([1i64, -1, 1 << 40])), ("z", Term::Float(f64::NAN))]),
        Term::structure("Point", [("x", 1), ("y", 2)]),
        Term::sum("Shape", "Circle", [Term::Float(1.5), Term::Unit, Term::Bool(true)]),
        Term::Ref(Ref::new(NodeName::parse("b@[::1]").unwrap(), u64::MAX, u32::MAX)),
    ];
    for t in terms {
        let bytes = encode(&t);
        assert_eq!(bytes.len(), encoded_len(&t), "{t}");
        assert_eq!(bytes.capacity(), bytes.len(), "{t}");
        assert_eq!(decode(&bytes).unwrap(), t);
    }
}

#[test]
fn encode_into_appends_and_decode_prefix_reports_length() {
    let mut out = vec![0xaa];
    encode_into(&Term::atom("ok"), &mut out);
    encode_into(&Term::Int(5), &mut out);
    let (first, used) = decode_prefix(&out[1..], &DecodeLimits::default()).unwrap();
    assert_eq!(first, Term::atom("ok"));
    assert_eq!(decode(&out[1 + used..]).unwrap(), Term::Int(5));
    let mut bare = vec![WIRE_VERSION];
    encode_term_into(&Term::Unit, &mut bare);
    assert_eq!(decode(&bare).unwrap(), Term::Unit);
}

#[test]
fn header_errors() {
    assert_eq!(decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(decode(&[2, 0]), Err(DecodeError::BadVersion(2)));
    assert_eq!(decode(&[WIRE_VERSION]), Err(DecodeError::Truncated));
    assert_eq!(decode(&[WIRE_VERSION, 0xff]), Err(DecodeError::UnknownTag(0xff)));
    assert_eq!(decode(&[WIRE_VERSION, 1, 2]), Err(DecodeError::TrailingBytes(1)));
}

#[test]
fn declared_counts_beyond_the_input_fail_before_allocating() {
    // A list claiming u32::MAX elements in a 7-byte message.
    assert_eq!(decode(&[WIRE_VERSION, tag::LIST, 0xff, 0xff, 0xff, 0xff, 0x0f]), Err(DecodeError::Truncated));
    // A binary claiming more bytes than are left.
    assert_eq!(decode(&[WIRE_VERSION, tag::BINARY, 3, 1, 2]), Err(DecodeError::Truncated));
    // Nested lists whose counts are each plausible alone but not together.
    let nested = [WIRE_VERSION, tag::LIST, 3, tag::LIST, 3, 0, 0, 0, 0];
    assert_eq!(decode(&nested), Err(DecodeError::Truncated));
    // A huge varint length does not overflow anything.
    let huge = [WIRE_VERSION, tag::BINARY, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(matches!(decode(&huge), Err(DecodeError::Truncated | DecodeError::LengthOverflow)));
}

#[test]
fn depth_limit() {
    let mut t = Term::Int(1);
    for _ in 0..5 {
        t = Term::list([t]);
    }
    let bytes = encode(&t);
    let at = |max_depth| DecodeLimits { max_depth, ..DecodeLimits::default() };
    assert_eq!(decode_with(&bytes, &at(5)).unwrap(), t);
    assert_eq!(decode_with(&bytes, &at(4)), Err(DecodeError::TooDeep { max: 4 }));
    assert_eq!(decode_with(&encode(&Term::Int(1)), &at(0)).unwrap(), Term::Int(1));
    // The ceiling applies even to a configured limit above it.
    let mut deep = vec![WIRE_VERSION];
    deep.extend(std::iter::repeat([tag::LIST, 1]).take(MAX_DEPTH_CEILING + 1).flatten());
    deep.push(0);
    assert_eq!(decode_with(&deep, &at(usize::MAX)), Err(DecodeError::TooDeep { max: MAX_DEPTH_CEILING }));
}

#[test]
fn element_and_size_limits() {
    let t = Term::list(0..10i64);
    let bytes = encode(&t);
    let with = |max_elements, max_bytes| DecodeLimits { max_elements, max_bytes, ..DecodeLimits::default() };
    assert_eq!(decode_with(&bytes, &with(11, 100)).unwrap(), t);
    assert_eq!(decode_with(&bytes, &with(10, 100)), Err(DecodeError::TooManyElements { max: 10 }));
    assert_eq!(decode_with(&bytes, &with(11, 5)), Err(DecodeError::TooLarge { len: bytes.len(), max: 5 }));
    let map = encode(&Term::map([(1, 2), (3, 4)]));
    assert_eq!(decode_with(&map, &with(4, 100)), Err(DecodeError::TooManyElements { max: 4 }));
    assert!(decode_with(&map, &with(5, 100)).is_ok());
}

#[test]
fn content_errors() {
    assert_eq!(decode(&[WIRE_VERSION, tag::STRING, 1, 0xff]), Err(DecodeError::BadUtf8));
    assert_eq!(decode(&[WIRE_VERSION, tag::ATOM, 2, 0xc3, 0x28]), Err(DecodeError::BadUtf8));
    let mut long_atom = vec![WIRE_VERSION, tag::ATOM];
    write_varint(&mut long_atom, 2000);
    long_atom.extend([b'a'; 2000]);
    assert_eq!(decode(&long_atom), Err(DecodeError::AtomTooLong(2000)));
    let bad_node = [WIRE_VERSION, tag::PID, 3, b'a', b'@', b'@', 1, 0, 0, 0, 1];
    assert!(matches!(decode(&bad_node), Err(DecodeError::BadNodeName(_))));
    let dup = [WIRE_VERSION, tag::MAP, 2, 1, 2, 1, 3];
    assert_eq!(decode(&dup), Err(DecodeError::DuplicateKey));
}

#[test]
fn node_names_are_canonicalised_and_cached_by_wire_bytes() {
    let upper = [WIRE_VERSION, tag::PID, 5, b'a', b'@', b'H', b'.', b'x', 1, 0, 0, 0, 1];
    let lower = [WIRE_VERSION, tag::PID, 5, b'a', b'@', b'h', b'.', b'x', 1, 0, 0, 0, 1];
    let first = decode(&upper).unwrap();
    assert_eq!(first, decode(&lower).unwrap());
    assert_eq!(first, decode(&upper).unwrap());
    assert_eq!(first.as_pid().unwrap().node().as_str(), "a@h.x");
}

#[test]
fn repeated_atoms_share_storage() {
    let t = Term::list([Term::atom("repeat_me"), Term::atom("repeat_me")]);
    let Term::List(items) = decode(&encode(&t)).unwrap() else { panic!("not a list") };
    let (Term::Atom(a), Term::Atom(b)) = (&items[0], &items[1]) else { panic!("not atoms") };
    assert!(std::ptr::eq(a.as_str().as_ptr(), b.as_str().as_ptr()));
}

#[test]
fn structs_and_sums_count_towards_depth() {
    let at = |max_depth| DecodeLimits { max_depth, ..DecodeLimits::default() };
    let inner = Term::sum("Option", "Some", [Term::list([1])]);
    let outer = Term::structure("Box", [("v", inner)]);
    let bytes = encode(&outer);
    assert_eq!(decode_with(&bytes, &at(3)).unwrap(), outer);
    assert_eq!(decode_with(&bytes, &at(2)), Err(DecodeError::TooDeep { max: 2 }));
}

#[test]
fn atom_cache_collisions_never_change_the_answer() {
    // Far more distinct atoms than cache slots, several sharing length and first/last bytes.
    let texts: Vec<String> = (0..500).map(|i| format!("a{i:03}z")).chain((0..50).map(|i| "x".repeat(i))).collect();
    let t = Term::list(texts.iter().map(|s| Term::atom(s)));
    let bytes = encode(&t);
    for _ in 0..3 {
        assert_eq!(decode(&bytes).unwrap(), t);
    }
}

#[test]
fn node_cache_collisions_never_change_the_answer() {
    let pids: Vec<Term> = (0..64)
        .map(|i| Term::Pid(Pid::new(NodeName::parse(&format!("n{i}@host{}.example", i % 3)).unwrap(), i, 1)))
        .collect();
    let t = Term::list(pids);
    let bytes = encode(&t);
    for _ in 0..3 {
        let back = decode(&bytes).unwrap();
        assert_eq!(back, t);
        let Term::List(items) = back else { panic!("not a list") };
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item.as_pid().unwrap().node().as_str(), format!("n{i}@host{}.example", i % 3));
        }
    }
}

#[test]
fn cached_atoms_compare_every_byte() {
    // Same length and same first and last bytes as a cached atom, different in one middle byte.
    for len in 1..40usize {
        let base: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let cached = Term::atom(&base);
        assert_eq!(decode(&encode(&cached)).unwrap(), cached);
        for at in 0..len {
            let mut other = base.clone().into_bytes();
            other[at] = b'_';
            let other = Term::atom(std::str::from_utf8(&other).unwrap());
            assert_eq!(decode(&encode(&other)).unwrap(), other, "length {len}, byte {at}");
        }
    }
}

#[test]
fn borrowed_encoders_write_what_encode_into_writes() {
    let node = NodeName::parse("bob@host2").unwrap();
    for (id, creation) in [(0u64, 1u32), (300, 7), (u64::MAX, u32::MAX)] {
        let p = Pid::new(node.clone(), id, creation);
        let (mut fast, mut slow) = (vec![9], vec![9]);
        encode_pid_into(&p, &mut fast);
        encode_into(&Term::Pid(p), &mut slow);
        assert_eq!(fast, slow);
        let r = Ref::new(node.clone(), id, creation);
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        encode_ref_into(&r, &mut fast);
        encode_into(&Term::Ref(r), &mut slow);
        assert_eq!(fast, slow);
    }
    for name in ["a", "ok", &"x".repeat(300)] {
        let atom = crate::atom::Atom::new(name);
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        encode_atom_into(&atom, &mut fast);
        encode_into(&Term::Atom(atom), &mut slow);
        assert_eq!(fast, slow);
    }
}
