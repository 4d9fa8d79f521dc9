//! Lookups: the answer to PORT_PLEASE2 and LOOKUP straight from the table, and Snow's pipelined
//! lookup session (PROTOCOL.md 5.3, request `Q`).
//!
//! EPMD closes the connection after every PORT_PLEASE2 reply, so a client pays a TCP connection
//! per lookup. A client that sends `LOOKUP_SESSION` (`00 01 51`) instead keeps the connection:
//! the daemon acknowledges with the frame `00 02 71 01` (`q`, session version 1), then answers
//! every following request, which must be LOOKUP (`L`) or PORT_PLEASE2 (`z`) in the usual
//! framing, with the usual reply prefixed by its length (`Length u16`, reply). Replies come in
//! request order, so a client may send many requests before reading (pipelining). Any other tag,
//! a malformed request, or a length over 1024 ends the session (the daemon closes without a
//! reply); the daemon also closes a session that sends nothing within its idle deadline.
//!
//! Everything here works on borrowed bytes and appends to a caller's buffer: the daemon answers
//! a lookup without allocating, without interning the asked-for name, and without touching its
//! database (the table is in memory).

use super::listing::put_lookup_resp;
use super::registry::Registry;
use super::table::{Entry, State, Table};
use super::wire::{
    port_please_name, put_port2_found, split_request, DecodeError, RequestError, MAX_NAME_FIELD, PORT2_RESP,
    PORT_PLEASE2_REQ, SNOW_LOOKUP_REQ, SNOW_SESSION_REQ, SNOW_SESSION_RESP,
};
use crate::name::{NodeName, MAX_HOST_LEN};

/// Version of the session protocol the daemon speaks (second byte of the acknowledgement).
pub const SESSION_VERSION: u8 = 1;
/// The request that opens a session: `Length = 1`, tag `Q`.
pub const SESSION_OPEN: [u8; 3] = [0, 1, SNOW_SESSION_REQ];
/// The daemon's acknowledgement, the first frame of every session.
pub const SESSION_ACK: [u8; 4] = [0, 2, SNOW_SESSION_RESP, SESSION_VERSION];

/// One lookup, borrowing the name from the request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query<'a> {
    /// PORT_PLEASE2: a short name (or a full `name@host`); answered with PORT2_RESP.
    PortPlease2(&'a [u8]),
    /// Snow LOOKUP: a full `name@host`; answered with LOOKUP_RESP.
    Lookup(&'a [u8]),
}

impl<'a> Query<'a> {
    /// The lookup in a request body (tag first), if it is one.
    pub fn from_body(body: &'a [u8]) -> Result<Query<'a>, RequestError> {
        let (&tag, name) = body.split_first().ok_or(RequestError::Empty)?;
        match tag {
            PORT_PLEASE2_REQ => {
                port_please_name(name).map(Query::PortPlease2).map_err(|what| RequestError::Malformed { tag, what })
            }
            SNOW_LOOKUP_REQ if name.is_empty() || name.len() > MAX_NAME_FIELD => {
                Err(RequestError::Malformed { tag, what: "name is empty or too long" })
            }
            SNOW_LOOKUP_REQ => Ok(Query::Lookup(name)),
            other => Err(RequestError::NotInSession(other)),
        }
    }

    /// Appends the reply (PORT2_RESP or LOOKUP_RESP, unframed) to `out`. `default_host` is the
    /// canonical host given to short names (the daemon's `--hostname`); `registry` holds the
    /// names registered here outside Snow's rules.
    pub fn answer(self, table: &Table, registry: &Registry, default_host: &str, out: &mut Vec<u8>) {
        match self {
            Query::Lookup(raw) => put_lookup_resp(out, lookup(table, raw)),
            Query::PortPlease2(raw) if !registry.is_empty() && registry.local_name(raw).is_some() => {
                if let Some(l) = registry.local_name(raw) {
                    let r = &l.request;
                    put_port2_found(
                        out,
                        r.port,
                        r.node_type,
                        r.protocol,
                        r.high_version,
                        r.low_version,
                        &r.name,
                        &r.extra,
                    );
                }
            }
            Query::PortPlease2(raw) => match port_please(table, default_host, raw) {
                Some(e) => put_port2_found(
                    out,
                    e.port,
                    e.node_type,
                    0,
                    e.high_version,
                    e.low_version,
                    e.name.name().as_bytes(),
                    &e.extra,
                ),
                None => out.extend_from_slice(&[PORT2_RESP, 1]),
            },
        }
    }

    /// Appends the reply as a session frame (`Length u16`, reply).
    pub fn answer_framed(self, table: &Table, registry: &Registry, default_host: &str, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.answer(table, registry, default_host, out);
        // Replies are far below 64 KiB: a name of at most 1,274 bytes, extra of at most 3 KiB.
        let len = (out.len() - at - 2).min(usize::from(u16::MAX)) as u16;
        out[at..at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// Splits the next complete lookup off the front of a session's input: `Ok(Some((query, used)))`,
/// `Ok(None)` if only part of one is there, or why the session must end. A tag other than `L` or
/// `z` is refused as soon as it arrives, before its body is buffered.
pub fn next_query(buf: &[u8]) -> Result<Option<(Query<'_>, usize)>, RequestError> {
    if let Some(&tag) = buf.get(2) {
        if tag != PORT_PLEASE2_REQ && tag != SNOW_LOOKUP_REQ {
            return Err(RequestError::NotInSession(tag));
        }
    }
    match split_request(buf)? {
        None => Ok(None),
        Some((body, used)) => Ok(Some((Query::from_body(body)?, used))),
    }
}

/// Splits the next reply frame off the front of a client's input: `Ok(Some((reply, used)))`,
/// `Ok(None)` if incomplete. A zero length is invalid.
pub fn next_reply(buf: &[u8]) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(head) = buf.get(..2) else { return Ok(None) };
    let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
    if len == 0 {
        return Err(DecodeError::Invalid("empty session frame"));
    }
    Ok(buf.get(2..2 + len).map(|reply| (reply, 2 + len)))
}

/// The entry for a LOOKUP of `raw` (a full name). The canonical spelling is found without
/// building a [`NodeName`]; only a name that may be spelled differently (upper-case host letters,
/// a bracketed IPv6 host, a trailing dot) is parsed into its canonical form.
pub fn lookup<'t>(table: &'t Table, raw: &[u8]) -> Option<&'t Entry> {
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(e) = table.get_by_str(text) {
        return Some(e);
    }
    let host = text.split_once('@')?.1;
    let other_spelling = host.bytes().any(|b| b.is_ascii_uppercase()) || host.starts_with('[') || host.ends_with('.');
    if !other_spelling {
        return None;
    }
    table.get(&NodeName::parse(text).ok()?)
}

/// The live entry for a PORT_PLEASE2 of `raw`: a short name means `raw@default_host`; failing
/// that, a node registered with this daemon under that short name and another host spelling
/// (a Snow node `a@127.0.0.1` answers Erlang's PORT_PLEASE2 for `a`).
pub fn port_please<'t>(table: &'t Table, default_host: &str, raw: &[u8]) -> Option<&'t Entry> {
    let up = |e: &&Entry| e.state == State::Up;
    if raw.contains(&b'@') {
        return lookup(table, raw).filter(up);
    }
    let mut full = [0u8; MAX_NAME_FIELD + 1 + MAX_HOST_LEN];
    let len = raw.len() + 1 + default_host.len();
    if let Some(slot) = full.get_mut(..len) {
        slot[..raw.len()].copy_from_slice(raw);
        slot[raw.len()] = b'@';
        slot[raw.len() + 1..].copy_from_slice(default_host.as_bytes());
        if let Some(e) = std::str::from_utf8(slot).ok().and_then(|t| table.get_by_str(t)).filter(up) {
            return Some(e);
        }
    }
    table.entries().find(|e| e.owner == table.me() && e.state == State::Up && e.name.name().as_bytes() == raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epmd::identity::Identity;
    use crate::epmd::listing::{decode_lookup_resp, Found};
    use crate::epmd::registry::RegistryPolicy;
    use crate::epmd::sim::reg;
    use crate::epmd::table::TableLimits;
    use crate::epmd::wire::{decode_port2_resp, encode_request, Request};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn table() -> Table {
        let mut t = Table::new("h:1".into(), Identity::from_seed(&[1; 32]), 1, TableLimits::default());
        let mut r = reg("a@h");
        r.port = 0x1234;
        t.register(r, 5, 0).unwrap();
        t.register(reg("snow@127.0.0.1"), 6, 0).unwrap();
        t
    }

    fn registry() -> Registry {
        Registry::new(RegistryPolicy { allow_remote: false, max_per_source: 10, default_host: "h".into() })
    }

    // PROTOCOL.md 5.6: the session vectors.
    #[test]
    fn session_vectors() {
        assert_eq!(encode_request(&Request::Session).as_slice(), SESSION_OPEN);
        assert_eq!(SESSION_OPEN.to_vec(), hex("000151"));
        assert_eq!(SESSION_ACK.to_vec(), hex("00027101"));
        // Two pipelined lookups in one buffer: LOOKUP a@h, then PORT_PLEASE2 nobody.
        let mut input = hex("00044c614068");
        input.extend(hex("00077a6e6f626f6479"));
        let t = table();
        let mut out = Vec::new();
        let mut at = 0;
        while let Some((q, used)) = next_query(&input[at..]).unwrap() {
            q.answer_framed(&t, &registry(), "h", &mut out);
            at += used;
        }
        assert_eq!(at, input.len());
        assert_eq!(out, hex("000c6c001234000000050000016800027701"));
    }

    #[test]
    fn answers_match_the_plain_replies() {
        let t = table();
        let mut out = Vec::new();
        Query::Lookup(b"a@H").answer(&t, &registry(), "h", &mut out);
        let found = Found { host: "h".into(), port: 0x1234, creation: 5, state: State::Up };
        assert_eq!(decode_lookup_resp(&out), Ok(Some(found)));
        out.clear();
        Query::Lookup(b"zz@h").answer(&t, &registry(), "h", &mut out);
        assert_eq!(decode_lookup_resp(&out), Ok(None));
        out.clear();
        Query::PortPlease2(b"a").answer(&t, &registry(), "h", &mut out);
        let info = decode_port2_resp(&out).unwrap().unwrap();
        assert_eq!((info.port, info.name.as_slice()), (0x1234, &b"a"[..]));
        // A short name registered here under another host spelling.
        out.clear();
        Query::PortPlease2(b"snow").answer(&t, &registry(), "h", &mut out);
        assert_eq!(decode_port2_resp(&out).unwrap().unwrap().name, b"snow");
        out.clear();
        Query::PortPlease2(&[b'x'; 1300]).answer(&t, &registry(), "h", &mut out);
        assert_eq!(decode_port2_resp(&out), Ok(None));
        // A name registered here outside Snow's rules.
        let mut r = registry();
        let mut t = table();
        let req = crate::epmd::wire::Alive2Req {
            port: 99,
            node_type: 72,
            protocol: 0,
            high_version: 6,
            low_version: 5,
            name: "été".as_bytes().to_vec(),
            extra: b"x".to_vec(),
        };
        r.register(&mut t, std::net::Ipv4Addr::LOCALHOST.into(), &req, 3, 0).unwrap();
        out.clear();
        Query::PortPlease2("été".as_bytes()).answer(&t, &r, "h", &mut out);
        assert_eq!(decode_port2_resp(&out), Ok(Some(req)));
    }

    #[test]
    fn hostile_session_input_ends_the_session() {
        assert_eq!(next_query(&[]), Ok(None));
        assert_eq!(next_query(&[0, 4, b'L', b'a']), Ok(None));
        assert_eq!(next_query(&[0, 0]), Err(RequestError::Empty));
        assert_eq!(next_query(&[0xff, 0xff, b'G']), Err(RequestError::NotInSession(b'G')));
        assert_eq!(next_query(&[0, 1, b'x']), Err(RequestError::NotInSession(b'x')));
        assert_eq!(
            next_query(&[0x0b, 0xf2, b'L']),
            Err(RequestError::TooLong { tag: b'L', declared: 3058, limit: 3057 })
        );
        assert!(matches!(next_query(&[0, 1, b'L']), Err(RequestError::Malformed { .. })));
        assert_eq!(next_reply(&[0, 0]), Err(DecodeError::Invalid("empty session frame")));
        assert_eq!(next_reply(&[0, 2, b'q']), Ok(None));
        assert_eq!(next_reply(&SESSION_ACK), Ok(Some((&SESSION_ACK[2..], 4))));
    }

    #[test]
    fn any_slicing_gives_the_same_answers() {
        let mut input = Vec::new();
        for name in ["a@h", "snow@127.0.0.1", "zz@h"] {
            input.extend(encode_request(&Request::Lookup(name.as_bytes().to_vec())));
        }
        let t = table();
        let answer = |chunk: usize| {
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some((q, used)) = next_query(&buf).unwrap() {
                    q.answer_framed(&t, &registry(), "h", &mut out);
                    buf.drain(..used);
                }
            }
            out
        };
        let whole = answer(input.len());
        for chunk in 1..input.len() {
            assert_eq!(answer(chunk), whole, "chunk {chunk}");
        }
    }
}
