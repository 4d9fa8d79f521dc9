//! Checks every test vector in `shared/PROTOCOL.md` in both directions, so the document and the
//! implementation cannot drift apart and an accidental format change fails here.

use std::collections::BTreeMap;

use snow_shared::codec::{decode, encode, DecodeError};
use snow_shared::fragment::{abort_fragment, Fragmenter, Reassembler};
use snow_shared::frame::{encode_frame, FrameDecoder};
use snow_shared::{NodeName, Pid, Ref, Term};

/// `kind name = hex` lines from PROTOCOL.md, by kind then name.
fn vectors() -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let doc = include_str!("../PROTOCOL.md");
    let mut out: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for line in doc.lines() {
        let Some((head, hex)) = line.split_once(" = ") else { continue };
        let mut words = head.split_whitespace();
        let (Some(kind), Some(name), None) = (words.next(), words.next(), words.next()) else { continue };
        if !["vector", "reject", "frame", "fragment"].contains(&kind) {
            continue;
        }
        let bytes = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        let previous = out.entry(kind.to_owned()).or_default().insert(name.to_owned(), bytes);
        assert!(previous.is_none(), "{kind} {name} appears twice in PROTOCOL.md");
    }
    out
}

fn terms() -> BTreeMap<&'static str, Term> {
    let pid = Term::Pid(Pid::new(NodeName::parse("app@db1.example.com").unwrap(), 4242, 7));
    BTreeMap::from([
        ("int-0", Term::Int(0)),
        ("int-127", Term::Int(127)),
        ("int-128", Term::Int(128)),
        ("int-minus-1", Term::Int(-1)),
        ("int-minus-300", Term::Int(-300)),
        ("int-max", Term::Int(i64::MAX)),
        ("int-min", Term::Int(i64::MIN)),
        ("float-1.5", Term::Float(1.5)),
        ("float-neg-zero", Term::Float(-0.0)),
        ("float-nan", Term::Float(f64::from_bits(0x7ff8_0000_0000_0000))),
        ("unit", Term::Unit),
        ("false", Term::Bool(false)),
        ("true", Term::Bool(true)),
        ("atom-ok", Term::atom("ok")),
        ("atom-empty", Term::atom("")),
        ("string", Term::string("héllo")),
        ("string-empty", Term::string("")),
        ("binary", Term::binary([1u8, 2, 255])),
        ("tuple-empty", Term::tuple([])),
        ("tuple", Term::tuple([Term::atom("ok"), Term::Int(1)])),
        ("list", Term::list([1, 2, 3])),
        ("list-nested", Term::list([Term::list(Vec::<Term>::new())])),
        ("map", Term::map([(Term::atom("a"), Term::Int(1)), (Term::atom("b"), Term::string("x"))])),
        ("pid", pid.clone()),
        ("ref", Term::Ref(Ref::new(NodeName::parse("b@[::1]").unwrap(), 1 << 40, 0xdead_beef))),
        ("struct", Term::structure("Point", [("x", 1), ("y", -2)])),
        ("sum", Term::sum("Shape", "Circle", [Term::Float(1.5)])),
        ("sum-no-fields", Term::sum("Option", "None", [])),
        ("message", Term::tuple([Term::atom("msg"), pid, Term::Int(42), Term::binary(*b"data")])),
    ])
}

#[test]
fn term_vectors_match_in_both_directions() {
    let all = vectors();
    let documented = &all["vector"];
    let expected = terms();
    let doc_names: Vec<&String> = documented.keys().collect();
    let code_names: Vec<&&str> = expected.keys().collect();
    assert_eq!(doc_names, code_names, "PROTOCOL.md and this test list different vectors");
    for (name, term) in expected {
        let bytes = &documented[name];
        assert_eq!(&encode(&term), bytes, "encoding of vector {name} ({term})");
        assert_eq!(decode(bytes).as_ref(), Ok(&term), "decoding of vector {name}");
    }
}

#[test]
fn reject_vectors_fail_with_the_documented_error() {
    let all = vectors();
    let rejects = &all["reject"];
    let check = |name: &str, ok: fn(&DecodeError) -> bool| {
        let result = decode(&rejects[name]);
        assert!(matches!(&result, Err(e) if ok(e)), "reject {name} gave {result:?}");
    };
    check("truncated", |e| *e == DecodeError::Truncated);
    check("bad-version", |e| *e == DecodeError::BadVersion(2));
    check("unknown-tag", |e| *e == DecodeError::UnknownTag(0x8f));
    check("trailing-bytes", |e| *e == DecodeError::TrailingBytes(1));
    check("count-beyond-input", |e| *e == DecodeError::Truncated);
    check("nested-counts-beyond-input", |e| *e == DecodeError::Truncated);
    check("varint-overflow", |e| *e == DecodeError::VarintOverflow);
    check("bad-utf8", |e| *e == DecodeError::BadUtf8);
    check("duplicate-key", |e| *e == DecodeError::DuplicateKey);
    check("bad-node-name", |e| matches!(e, DecodeError::BadNodeName(_)));
    assert_eq!(rejects.len(), 10, "every reject vector in PROTOCOL.md is checked here");
}

#[test]
fn frame_vectors_match_in_both_directions() {
    let all = vectors();
    let frames = &all["frame"];
    assert_eq!(frames.len(), 2);
    for (name, payload) in [("empty", &b""[..]), ("abc", b"abc")] {
        let mut out = Vec::new();
        encode_frame(payload, &mut out).unwrap();
        assert_eq!(&out, &frames[name], "frame {name}");
        let mut decoder = FrameDecoder::default();
        decoder.feed(&frames[name]);
        assert_eq!(decoder.next_frame(), Ok(Some(payload.to_vec())), "frame {name}");
    }
}

#[test]
fn fragment_vectors_match_in_both_directions() {
    let all = vectors();
    let documented = &all["fragment"];
    assert_eq!(documented.len(), 3);
    let produced: Vec<Vec<u8>> = Fragmenter::new(258, b"abcde".to_vec(), 3).collect();
    assert_eq!(produced, [documented["start"].clone(), documented["continue"].clone()]);
    assert_eq!(abort_fragment(7), documented["abort"]);
    let mut reassembler = Reassembler::default();
    assert_eq!(reassembler.push(&documented["start"]), Ok(None));
    assert_eq!(reassembler.push(&documented["continue"]), Ok(Some(b"abcde".to_vec())));
    reassembler.push(&documented["start"]).unwrap();
    assert_eq!(reassembler.push(&documented["abort"]), Ok(None));
    assert_eq!(reassembler.in_flight(), 1, "ABORT of another sequence leaves sequence 258 open");
}
