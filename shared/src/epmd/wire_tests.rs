//! Unit tests of `wire.rs`.
use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn parse_all(bytes: &[u8]) -> Result<Option<Request>, RequestError> {
    RequestParser::new().feed(bytes)
}

fn alive(name: &[u8]) -> Alive2Req {
    Alive2Req {
        port: 0x1234,
        node_type: 77,
        protocol: 0,
        high_version: 6,
        low_version: 5,
        name: name.to_vec(),
        extra: vec![],
    }
}

// The vectors below are the ones in protocol-epmd.md.
#[test]
fn alive2_vector() {
    let v = hex("001078123448000006000500036162630000");
    let mut a = alive(b"abc");
    a.node_type = 72;
    assert_eq!(encode_request(&Request::Alive2(a.clone())), v);
    assert_eq!(parse_all(&v), Ok(Some(Request::Alive2(a))));
    assert_eq!(encode_alive2_resp(0, 0x01020304, false), hex("760001020304"));
    assert_eq!(encode_alive2_resp(0, 0x01020304, true), hex("79000304"));
}

#[test]
fn other_vectors() {
    assert_eq!(encode_request(&Request::PortPlease2(b"abc".to_vec())), hex("00047a616263"));
    assert_eq!(encode_request(&Request::Names), hex("00016e"));
    assert_eq!(encode_request(&Request::Lookup(b"a@h".to_vec())), hex("00044c614068"));
    assert_eq!(encode_request(&Request::List), hex("000146"));
    let info = NodeInfo {
        port: 0x1234,
        node_type: 77,
        protocol: 0,
        high_version: 6,
        low_version: 5,
        name: b"abc".to_vec(),
        extra: vec![],
    };
    let v = hex("770012344d000006000500036162630000");
    assert_eq!(encode_port2_resp(Some(&info)), v);
    assert_eq!(decode_port2_resp(&v), Ok(Some(info)));
    assert_eq!(encode_port2_resp(None), hex("7701"));
    assert_eq!(decode_port2_resp(&hex("7701")), Ok(None));
}

#[test]
fn any_slicing_gives_the_same_request() {
    let bytes = encode_request(&Request::Alive2(alive(b"node")));
    for chunk in 1..bytes.len() {
        let mut p = RequestParser::new();
        let mut got = None;
        for piece in bytes.chunks(chunk) {
            if let Some(r) = p.feed(piece).unwrap() {
                got = Some(r);
            }
        }
        assert_eq!(got, Some(Request::Alive2(alive(b"node"))), "chunk {chunk}");
    }
}

#[test]
fn hostile_framing_is_rejected() {
    assert_eq!(parse_all(&[]), Ok(None));
    assert_eq!(parse_all(&[0]), Ok(None));
    assert_eq!(parse_all(&[0, 0]), Err(RequestError::Empty));
    assert_eq!(
        parse_all(&[0xff, 0xff, ALIVE2_REQ]),
        Err(RequestError::TooLong { tag: 120, declared: 65535, limit: 3057 })
    );
    // Erlang's epmd closes at a declared length of 3058 and takes 3057.
    assert_eq!(
        parse_all(&[0x0b, 0xf2, NAMES_REQ]),
        Err(RequestError::TooLong { tag: 110, declared: 3058, limit: 3057 })
    );
    assert_eq!(parse_all(&[0x0b, 0xf1, NAMES_REQ]), Ok(None));
    assert_eq!(parse_all(&[0, 1, 0xee]), Err(RequestError::UnknownTag(0xee)));
    assert_eq!(
        parse_all(&[0, 2, NAMES_REQ, 0]),
        Err(RequestError::Malformed { tag: 110, what: "unexpected bytes after the tag" })
    );
    // A gossip frame may be long, but the parser still waits for all of it.
    assert_eq!(parse_all(&[0xff, 0xff, SNOW_GOSSIP, 1, 2]), Ok(None));
}

#[test]
fn truncated_and_overrunning_alive2_is_rejected() {
    let full = encode_request(&Request::Alive2(alive(b"node")));
    // Every truncation of the body, with the length field fixed up so the frame is complete.
    for cut in 1..full.len() - 2 {
        let mut v = ((cut) as u16).to_be_bytes().to_vec();
        v.extend_from_slice(&full[2..2 + cut]);
        assert!(matches!(parse_all(&v), Err(RequestError::Malformed { tag: 120, .. })), "cut {cut}");
    }
    // A name length that points past the end, with and without filler bytes.
    let mut body = vec![ALIVE2_REQ, 0, 1, 77, 0, 0, 6, 0, 5, 0xff, 0xf0, b'a'];
    let mut v = (body.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    assert!(matches!(parse_all(&v), Err(RequestError::Malformed { .. })));
    body.extend(std::iter::repeat(b'a').take(900));
    let mut v = (body.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    assert!(matches!(parse_all(&v), Err(RequestError::Malformed { .. })));
    // An empty name or a NUL byte in the name: malformed (Erlang's epmd closes too). A name
    // too long for Erlang's epmd parses; the registration policy answers it with result 1.
    for bad in [&b""[..], b"a\0b"] {
        let v = encode_request(&Request::Alive2(alive(bad)));
        assert!(matches!(parse_all(&v), Err(RequestError::Malformed { .. })), "{bad:?}");
    }
    let long = encode_request(&Request::Alive2(alive(&[b'a'; 1021])));
    assert!(matches!(parse_all(&long), Ok(Some(Request::Alive2(_)))));
}

#[test]
fn creation_request_vector_and_round_trip() {
    let c = NonZeroU32::new(0x01020304).unwrap();
    let extra = encode_creation_request(c);
    assert_eq!(extra, hex("534e4f570101020304"));
    assert_eq!(parse_extra(&extra), Ok(Extra { requested_creation: Some(c), opaque: &[] }));
    // The whole ALIVE2_REQ (PROTOCOL.md 5.6): name `abc`, extra = the option.
    let mut a = alive(b"abc");
    a.extra = extra;
    let v = hex("00197812344d000006000500036162630009534e4f570101020304");
    assert_eq!(encode_request(&Request::Alive2(a.clone())), v);
    assert_eq!(parse_all(&v), Ok(Some(Request::Alive2(a))));
}

#[test]
fn other_extra_bytes_stay_opaque() {
    for extra in [&b""[..], b"x", b"SNO", b"snow\x01\x00\x00\x00\x01", b"\x00SNOW\x01\x00\x00\x00\x01"] {
        assert_eq!(parse_extra(extra), Ok(Extra { requested_creation: None, opaque: extra }), "{extra:?}");
    }
}

#[test]
fn malformed_snow_extra_is_rejected() {
    let good = encode_creation_request(NonZeroU32::new(7).unwrap());
    assert_eq!(parse_extra(b"SNOW"), Err(ExtraError::BadLength(4)));
    for cut in 5..good.len() {
        assert_eq!(parse_extra(&good[..cut]), Err(ExtraError::BadLength(cut)), "cut {cut}");
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(parse_extra(&long), Err(ExtraError::BadLength(10)));
    assert_eq!(parse_extra(b"SNOW\x02\x00\x00\x00\x07"), Err(ExtraError::UnknownOption(2)));
    assert_eq!(parse_extra(b"SNOW\x01\x00\x00\x00\x00"), Err(ExtraError::ZeroCreation));
    // Inside a request, the whole ALIVE2_REQ is malformed.
    let mut a = alive(b"abc");
    a.extra = b"SNOW\x01\x00\x00\x00\x00".to_vec();
    assert_eq!(
        parse_all(&encode_request(&Request::Alive2(a))),
        Err(RequestError::Malformed { tag: ALIVE2_REQ, what: ExtraError::ZeroCreation.what() })
    );
}

proptest::proptest! {
    /// Any Extra, Snow-looking or not: no panic, and an accepted option round-trips.
    #[test]
    fn any_extra_is_parsed_or_refused_without_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16), snow in proptest::prelude::any::<bool>()) {
        let mut extra = if snow { SNOW_EXTRA_MAGIC.to_vec() } else { Vec::new() };
        extra.extend_from_slice(&tail);
        match parse_extra(&extra) {
            Ok(Extra { requested_creation: Some(c), opaque }) => {
                proptest::prop_assert!(opaque.is_empty());
                proptest::prop_assert_eq!(encode_creation_request(c), extra);
            }
            Ok(Extra { requested_creation: None, opaque }) => {
                proptest::prop_assert!(!extra.starts_with(&SNOW_EXTRA_MAGIC));
                proptest::prop_assert_eq!(opaque, &extra[..]);
            }
            Err(_) => proptest::prop_assert!(extra.starts_with(&SNOW_EXTRA_MAGIC)),
        }
    }
}

#[test]
fn epmd_names_follow_erlangs_limits() {
    assert_eq!(epmd_name("été".as_bytes()), Ok("été"));
    assert_eq!(epmd_name(&[b'a'; 255]).map(str::len), Ok(255));
    assert_eq!(epmd_name(&[b'a'; 256]), Err(EpmdNameError::TooLong));
    let clefs = "\u{1d11e}".repeat(255);
    assert_eq!(epmd_name(clefs.as_bytes()).map(str::len), Ok(1020));
    assert_eq!(epmd_name("\u{1d11e}".repeat(256).as_bytes()), Err(EpmdNameError::TooLong));
    assert_eq!(epmd_name(&[0xff, 0xfe]), Err(EpmdNameError::NotUtf8));
    assert_eq!(epmd_name(b"a\0"), Err(EpmdNameError::Nul));
    assert_eq!(epmd_name(b""), Err(EpmdNameError::Empty));
    for odd in ["a b", "x@", "a@b@c"] {
        assert_eq!(epmd_name(odd.as_bytes()), Ok(odd));
    }
}

#[test]
fn port_please_names_lose_one_trailing_nul() {
    assert_eq!(port_please_name(b"abc\0"), Ok(&b"abc"[..]));
    assert!(port_please_name(b"a\0b").is_err());
    assert!(port_please_name(b"\0").is_err());
    assert!(port_please_name(&[0xff]).is_err());
}

#[test]
fn registration_replies_decode() {
    let ok = encode_alive2_resp(0, 0x01020304, false);
    assert_eq!(alive2_resp_len(ok[0]), Some(ok.len()));
    assert_eq!(decode_alive2_resp(&ok), Ok(Alive2Resp { result: 0, creation: 0x01020304 }));
    let old = encode_alive2_resp(refusal::TAKEN, REFUSED_CREATION, true);
    assert_eq!(old, [ALIVE2_RESP, 1, 0, 99]);
    assert_eq!(decode_alive2_resp(&old), Ok(Alive2Resp { result: 1, creation: 99 }));
    assert_eq!(decode_alive2_resp(&ok[..5]), Err(DecodeError::Truncated));
    assert_eq!(alive2_resp_len(b'w'), None);
    assert_eq!(decode_names_resp(&[0, 0, 0x11, 0x11, b'x']), Ok((0x1111, "x".to_owned())));
    assert!(decode_names_resp(&[0, 0]).is_err());
}

#[test]
fn reader_never_reads_past_the_end() {
    let mut r = Reader::new(&[0, 5, 1]);
    assert_eq!(r.bytes16(), Err(DecodeError::Truncated));
    let mut r = Reader::new(&[1]);
    assert_eq!(r.u64(), Err(DecodeError::Truncated));
}
