//! EPMD wire messages (Erlang's `erl_dist_protocol` section "EPMD Protocol") and Snow's extension
//! requests on the same port: a request parser that accepts bytes in any slicing and encoders for
//! every reply, the ALIVE2 refusal codes, and the client-side reply parsers. Byte layouts:
//! PROTOCOL.md section 5.
//!
//! Every request is `Length: u16 BE` followed by `Length` bytes whose first byte is the tag. The
//! parser rejects zero-length requests, lengths over the per-tag limit (as soon as the tag is
//! known, before buffering the body), unknown tags and malformed bodies. It never panics and never
//! buffers more than the limit.

use std::fmt;
use std::num::NonZeroU32;

/// ALIVE2_REQ: register a node (connection stays open while the node lives).
pub const ALIVE2_REQ: u8 = 120;
/// ALIVE2_RESP: old-style registration reply (2-byte creation), for clients with HighVsn < 6.
pub const ALIVE2_RESP: u8 = 121;
/// ALIVE2_X_RESP: registration reply with a 4-byte creation.
pub const ALIVE2_X_RESP: u8 = 118;
/// PORT_PLEASE2_REQ: ask for a node's port by short name.
pub const PORT_PLEASE2_REQ: u8 = 122;
/// PORT2_RESP: reply to PORT_PLEASE2_REQ.
pub const PORT2_RESP: u8 = 119;
/// NAMES_REQ: list locally registered names (text reply).
pub const NAMES_REQ: u8 = 110;
/// DUMP_REQ: operator dump of registrations (text reply, local clients only).
pub const DUMP_REQ: u8 = 100;
/// KILL_REQ: ask the daemon to stop (`OK`), refused with `NO` while nodes are registered.
pub const KILL_REQ: u8 = 107;
/// STOP_REQ: drop a registration by name (only with `--relaxed-command-check`).
pub const STOP_REQ: u8 = 115;
/// Snow extension: look up a node by full `name@host`.
pub const SNOW_LOOKUP_REQ: u8 = b'L';
/// Snow extension: reply to [`SNOW_LOOKUP_REQ`].
pub const SNOW_LOOKUP_RESP: u8 = b'l';
/// Snow extension: full listing of the table.
pub const SNOW_LIST_REQ: u8 = b'F';
/// Snow extension: reply to [`SNOW_LIST_REQ`].
pub const SNOW_LIST_RESP: u8 = b'f';
/// Snow extension: an authenticated gossip message between daemons.
pub const SNOW_GOSSIP: u8 = b'G';
/// Snow extension: turn this connection into a pipelined lookup session (see [`super::session`]).
pub const SNOW_SESSION_REQ: u8 = b'Q';
/// Snow extension: the daemon's acknowledgement of [`SNOW_SESSION_REQ`] (first session reply).
pub const SNOW_SESSION_RESP: u8 = b'q';

/// Largest accepted body (tag included) of any request except gossip: Erlang's epmd reads
/// requests into a buffer of `3 * MAXSYMLEN` bytes and closes on a length of `3 * 1020 - 2` or more.
pub const MAX_REQUEST_LEN: usize = 3 * MAX_EPMD_NAME_LEN - 3;
/// Largest gossip message body (the u16 length field's limit).
pub const MAX_GOSSIP_LEN: usize = u16::MAX as usize;
/// Longest node name Erlang's epmd registers, in bytes (its MAXSYMLEN: 255 characters of UTF-8).
pub const MAX_EPMD_NAME_LEN: usize = 255 * 4;
/// Longest node name Erlang's epmd registers, in characters.
pub const MAX_EPMD_NAME_CHARS: usize = 255;
/// Longest Extra field Erlang's epmd registers.
pub const MAX_EXTRA_LEN: usize = MAX_EPMD_NAME_LEN;
/// The creation field of a refused ALIVE2 reply (Erlang's epmd sends 99).
pub const REFUSED_CREATION: u32 = 99;

/// ALIVE2 result codes (nonzero = refused; Erlang's clients only test for nonzero, and Erlang's
/// epmd itself sends 1 for every refusal).
pub mod refusal {
    /// The name is registered and alive, or Erlang's epmd would refuse it too: over 255
    /// characters or 1020 bytes, not UTF-8, or an Extra field over 1020 bytes.
    pub const TAKEN: u8 = 1;
    /// Sent by earlier snow-epmd versions for names outside Snow's rules; such names are now
    /// registered as Erlang's epmd registers them.
    pub const BAD_NAME: u8 = 2;
    /// Registration from a non-loopback address without `--allow-remote-register`.
    pub const NOT_LOCAL: u8 = 3;
    /// The table or the per-source registration cap is full.
    pub const LIMIT: u8 = 4;
    /// The change could not be made durable.
    pub const STORAGE: u8 = 5;
    /// The Extra field starts like a Snow option but is not one (the request parser rejects such
    /// requests before they get here; this code covers requests built in-process).
    pub const BAD_EXTRA: u8 = 6;

    /// What a refusal code means, for the client's error message.
    pub fn reason(code: u8) -> &'static str {
        match code {
            TAKEN => {
                "the name is already registered and alive, or is not a name Erlang's epmd accepts (1-255 \
                 characters of UTF-8, at most 1020 bytes)"
            }
            BAD_NAME => "not a valid node name (name@host, name of 1-64 chars A-Z a-z 0-9 _ -)",
            NOT_LOCAL => "registrations are accepted from loopback only (daemon flag --allow-remote-register)",
            LIMIT => "a registration limit is reached (--max-entries / --max-per-source)",
            STORAGE => "the daemon cannot write its database",
            BAD_EXTRA => "the Extra field starts with SNOW but is not a valid Snow option",
            _ => "refused",
        }
    }
}

/// Why a node name is one Erlang's epmd would not register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EpmdNameError {
    /// Empty.
    #[error("the node name is empty")]
    Empty,
    /// Longer than 1020 bytes or 255 characters.
    #[error("the node name is over 255 characters or 1020 bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("the node name is not UTF-8")]
    NotUtf8,
    /// Contains a NUL byte.
    #[error("the node name contains a NUL byte")]
    Nul,
}

/// The name as Erlang's epmd accepts it: 1-255 characters of UTF-8, at most 1020 bytes, no NUL.
pub fn epmd_name(raw: &[u8]) -> Result<&str, EpmdNameError> {
    if raw.is_empty() {
        return Err(EpmdNameError::Empty);
    }
    if raw.contains(&0) {
        return Err(EpmdNameError::Nul);
    }
    if raw.len() > MAX_EPMD_NAME_LEN {
        return Err(EpmdNameError::TooLong);
    }
    let text = std::str::from_utf8(raw).map_err(|_| EpmdNameError::NotUtf8)?;
    if text.chars().count() > MAX_EPMD_NAME_CHARS {
        return Err(EpmdNameError::TooLong);
    }
    Ok(text)
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// ALIVE2_REQ.
    Alive2(Alive2Req),
    /// PORT_PLEASE2_REQ with the raw (short) name.
    PortPlease2(Vec<u8>),
    /// NAMES_REQ.
    Names,
    /// DUMP_REQ.
    Dump,
    /// KILL_REQ.
    Kill,
    /// STOP_REQ with the raw name.
    Stop(Vec<u8>),
    /// Snow LOOKUP with the raw full name.
    Lookup(Vec<u8>),
    /// Snow LIST.
    List,
    /// Snow GOSSIP with the sealed message (after the tag).
    Gossip(Vec<u8>),
    /// Snow LOOKUP_SESSION: the connection carries pipelined lookups from now on.
    Session,
}

/// The body of ALIVE2_REQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alive2Req {
    /// The node's distribution listen port.
    pub port: u16,
    /// 77 (normal node) or 72 (hidden node).
    pub node_type: u8,
    /// 0 = TCP/IPv4.
    pub protocol: u8,
    /// Highest distribution version the node speaks.
    pub high_version: u16,
    /// Lowest distribution version the node speaks.
    pub low_version: u16,
    /// The name as sent: a short name (Erlang) or a full `name@host` (Snow).
    pub name: Vec<u8>,
    /// Extra bytes: opaque (returned verbatim in PORT2_RESP), unless they are a Snow registration
    /// option (see [`parse_extra`]), which the daemon consumes instead of storing.
    pub extra: Vec<u8>,
}

/// Why a request was rejected. The daemon logs it (rate-limited) and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The length prefix was zero.
    #[error("zero-length request")]
    Empty,
    /// The declared length is over the limit for this tag.
    #[error("request with tag {tag} declares {declared} bytes, over the limit of {limit}")]
    TooLong {
        /// The tag.
        tag: u8,
        /// The declared length.
        declared: usize,
        /// The limit for that tag.
        limit: usize,
    },
    /// The tag is not a known request.
    #[error("unknown request tag {0}")]
    UnknownTag(u8),
    /// Inside a lookup session, a request other than LOOKUP or PORT_PLEASE2.
    #[error("request tag {0} inside a lookup session (only LOOKUP and PORT_PLEASE2 are allowed)")]
    NotInSession(u8),
    /// The body does not match the tag's layout.
    #[error("malformed request with tag {tag}: {what}")]
    Malformed {
        /// The tag.
        tag: u8,
        /// What is wrong.
        what: &'static str,
    },
}

/// Incremental parser for one request: feed bytes as they arrive, in any slicing.
#[derive(Debug, Default)]
pub struct RequestParser {
    buf: Vec<u8>,
}

impl RequestParser {
    /// A parser waiting for the first byte.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Adds bytes. Returns `Ok(Some(request))` when a whole request has arrived (bytes after it are
    /// ignored), `Ok(None)` when more are needed, or the reason the input is rejected.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Request>, RequestError> {
        self.feed_prefix(data).map(|(request, _)| request)
    }

    /// [`RequestParser::feed`] that also says how many bytes of `data` it took: the bytes after a
    /// complete request belong to what follows it (a lookup session's first lookups).
    pub fn feed_prefix(&mut self, data: &[u8]) -> Result<(Option<Request>, usize), RequestError> {
        let total = data.len();
        let mut data = data;
        loop {
            let take = data.len().min(self.wanted());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            let used = total - data.len();
            if self.buf.len() < 2 {
                return Ok((None, used));
            }
            let declared = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
            if declared == 0 {
                return Err(RequestError::Empty);
            }
            let Some(&tag) = self.buf.get(2) else { return Ok((None, used)) };
            check_length(tag, declared)?;
            if self.buf.len() >= 2 + declared {
                return parse_body(&self.buf[2..2 + declared]).map(|r| (Some(r), used));
            }
            if data.is_empty() {
                return Ok((None, used));
            }
        }
    }

    /// How many more bytes this parser will take at most (a hint for the reader's buffer).
    pub fn wanted(&self) -> usize {
        if self.buf.len() < 3 {
            return 3 - self.buf.len();
        }
        let declared = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        (2 + declared).saturating_sub(self.buf.len())
    }
}

/// Rejects a declared length over the limit of `tag` (1024 bytes, gossip 65535).
pub fn check_length(tag: u8, declared: usize) -> Result<(), RequestError> {
    let limit = if tag == SNOW_GOSSIP { MAX_GOSSIP_LEN } else { MAX_REQUEST_LEN };
    if declared > limit {
        return Err(RequestError::TooLong { tag, declared, limit });
    }
    Ok(())
}

/// Splits one complete request off the front of `buf` without copying or allocating (except for
/// the parsed request's own fields): `Ok(Some((request, used)))`, or `Ok(None)` if `buf` holds only
/// part of one. Same rules as [`RequestParser`].
pub fn split_request(buf: &[u8]) -> Result<Option<(&[u8], usize)>, RequestError> {
    let Some(head) = buf.get(..2) else { return Ok(None) };
    let declared = usize::from(u16::from_be_bytes([head[0], head[1]]));
    if declared == 0 {
        return Err(RequestError::Empty);
    }
    let Some(&tag) = buf.get(2) else { return Ok(None) };
    check_length(tag, declared)?;
    Ok(buf.get(2..2 + declared).map(|body| (body, 2 + declared)))
}

/// The longest name field accepted in PORT_PLEASE2, STOP and LOOKUP (a raw name, `@`, a host).
pub const MAX_NAME_FIELD: usize = MAX_EPMD_NAME_LEN + 1 + 253;

/// The name of a PORT_PLEASE2 request as Erlang's epmd reads it: one trailing NUL is ignored; the
/// rest must be 1..=[`MAX_NAME_FIELD`] bytes of UTF-8 without NUL (else the request is malformed
/// and the connection closed without a reply, as Erlang's epmd does).
pub fn port_please_name(raw: &[u8]) -> Result<&[u8], &'static str> {
    let name = raw.strip_suffix(&[0]).unwrap_or(raw);
    if name.is_empty() || name.len() > MAX_NAME_FIELD {
        return Err("name is empty or too long");
    }
    if name.contains(&0) || std::str::from_utf8(name).is_err() {
        return Err("name is not UTF-8 or contains a NUL byte");
    }
    Ok(name)
}

/// Parses a request body (tag first, no length prefix).
pub fn parse_body(body: &[u8]) -> Result<Request, RequestError> {
    let (&tag, rest) = body.split_first().ok_or(RequestError::Empty)?;
    let mut r = Reader::new(rest);
    let malformed = |what| RequestError::Malformed { tag, what };
    let request = match tag {
        ALIVE2_REQ => {
            let port = r.u16().map_err(|_| malformed("truncated before the port"))?;
            let node_type = r.u8().map_err(|_| malformed("truncated before the node type"))?;
            let protocol = r.u8().map_err(|_| malformed("truncated before the protocol"))?;
            let high_version = r.u16().map_err(|_| malformed("truncated before the highest version"))?;
            let low_version = r.u16().map_err(|_| malformed("truncated before the lowest version"))?;
            let name = r.bytes16().map_err(|_| malformed("name length runs past the end"))?.to_vec();
            let extra = r.bytes16().map_err(|_| malformed("extra length runs past the end"))?.to_vec();
            // Erlang's epmd closes without a reply on these; a name it would refuse for its length
            // or encoding gets result 1 instead (the registration policy's decision).
            if name.is_empty() {
                return Err(malformed("name is empty"));
            }
            if name.contains(&0) {
                return Err(malformed("name contains a NUL byte"));
            }
            if !r.is_empty() {
                return Err(malformed("bytes after the extra field"));
            }
            parse_extra(&extra).map_err(|e| malformed(e.what()))?;
            Request::Alive2(Alive2Req { port, node_type, protocol, high_version, low_version, name, extra })
        }
        PORT_PLEASE2_REQ => Request::PortPlease2(port_please_name(rest).map_err(malformed)?.to_vec()),
        STOP_REQ | SNOW_LOOKUP_REQ => {
            if rest.is_empty() || rest.len() > MAX_NAME_FIELD {
                return Err(malformed("name is empty or too long"));
            }
            match tag {
                STOP_REQ => Request::Stop(rest.to_vec()),
                _ => Request::Lookup(rest.to_vec()),
            }
        }
        NAMES_REQ | DUMP_REQ | KILL_REQ | SNOW_LIST_REQ | SNOW_SESSION_REQ => {
            if !rest.is_empty() {
                return Err(malformed("unexpected bytes after the tag"));
            }
            match tag {
                NAMES_REQ => Request::Names,
                DUMP_REQ => Request::Dump,
                KILL_REQ => Request::Kill,
                SNOW_SESSION_REQ => Request::Session,
                _ => Request::List,
            }
        }
        SNOW_GOSSIP => Request::Gossip(rest.to_vec()),
        other => return Err(RequestError::UnknownTag(other)),
    };
    Ok(request)
}

/// Encodes a request with its length prefix (used by clients and tests).
pub fn encode_request(request: &Request) -> Vec<u8> {
    let mut body = Vec::new();
    match request {
        Request::Alive2(a) => {
            body.push(ALIVE2_REQ);
            body.extend_from_slice(&a.port.to_be_bytes());
            body.push(a.node_type);
            body.push(a.protocol);
            body.extend_from_slice(&a.high_version.to_be_bytes());
            body.extend_from_slice(&a.low_version.to_be_bytes());
            put_bytes16(&mut body, &a.name);
            put_bytes16(&mut body, &a.extra);
        }
        Request::PortPlease2(n) => tagged(&mut body, PORT_PLEASE2_REQ, n),
        Request::Names => body.push(NAMES_REQ),
        Request::Dump => body.push(DUMP_REQ),
        Request::Kill => body.push(KILL_REQ),
        Request::Stop(n) => tagged(&mut body, STOP_REQ, n),
        Request::Lookup(n) => tagged(&mut body, SNOW_LOOKUP_REQ, n),
        Request::List => body.push(SNOW_LIST_REQ),
        Request::Gossip(g) => tagged(&mut body, SNOW_GOSSIP, g),
        Request::Session => body.push(SNOW_SESSION_REQ),
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&(body.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn tagged(body: &mut Vec<u8>, tag: u8, rest: &[u8]) {
    body.push(tag);
    body.extend_from_slice(rest);
}

/// First bytes of a Snow registration option in ALIVE2_REQ's Extra field. Erlang's nodes send an
/// empty Extra and Erlang's epmd stores Extra without looking at it, so the option is invisible
/// to Erlang's tools; Snow's daemon consumes it and stores no Extra for that registration.
pub const SNOW_EXTRA_MAGIC: [u8; 4] = *b"SNOW";
/// Snow Extra option kind: the client asks for a creation (`Creation u32`, nonzero, follows).
pub const SNOW_EXTRA_REQUEST_CREATION: u8 = 1;
/// Length of the only Snow Extra option defined: magic, kind, creation.
pub const SNOW_EXTRA_LEN: usize = SNOW_EXTRA_MAGIC.len() + 1 + 4;

/// ALIVE2_REQ's Extra field as Snow's daemon reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extra<'a> {
    /// The creation the client asks for (a node registering again after the daemon dropped its
    /// registration asks for the creation its pids carry). The daemon decides whether to honour it.
    pub requested_creation: Option<NonZeroU32>,
    /// Opaque bytes to store and return in PORT2_RESP (empty when the field was a Snow option).
    pub opaque: &'a [u8],
}

/// Why an Extra field that starts with [`SNOW_EXTRA_MAGIC`] is not a valid Snow option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtraError {
    /// The magic is followed by an option kind this version does not know.
    #[error("unknown Snow extra option {0}")]
    UnknownOption(u8),
    /// The option is shorter or longer than its layout.
    #[error("Snow extra option has {0} bytes, expected 9")]
    BadLength(usize),
    /// The requested creation is 0 (creations are nonzero).
    #[error("Snow extra option requests creation 0")]
    ZeroCreation,
}

impl ExtraError {
    /// A static description, for [`RequestError::Malformed`].
    pub fn what(self) -> &'static str {
        match self {
            ExtraError::UnknownOption(_) => "unknown Snow option in the extra field",
            ExtraError::BadLength(_) => "Snow option in the extra field has the wrong length",
            ExtraError::ZeroCreation => "Snow option in the extra field requests creation 0",
        }
    }
}

/// Reads ALIVE2_REQ's Extra: a field that starts with [`SNOW_EXTRA_MAGIC`] must be exactly
/// `"SNOW" | 1 | Creation u32 (nonzero)` (the magic is reserved, so a malformed option is an
/// error rather than opaque bytes); anything else is opaque. Never panics.
pub fn parse_extra(extra: &[u8]) -> Result<Extra<'_>, ExtraError> {
    let Some(rest) = extra.strip_prefix(&SNOW_EXTRA_MAGIC[..]) else {
        return Ok(Extra { requested_creation: None, opaque: extra });
    };
    match rest.first() {
        Some(&SNOW_EXTRA_REQUEST_CREATION) => {}
        Some(&other) => return Err(ExtraError::UnknownOption(other)),
        None => return Err(ExtraError::BadLength(extra.len())),
    }
    if extra.len() != SNOW_EXTRA_LEN {
        return Err(ExtraError::BadLength(extra.len()));
    }
    let mut r = Reader::new(&rest[1..]);
    let creation = r.u32().map_err(|_| ExtraError::BadLength(extra.len()))?;
    let creation = NonZeroU32::new(creation).ok_or(ExtraError::ZeroCreation)?;
    Ok(Extra { requested_creation: Some(creation), opaque: &[] })
}

/// The Extra field with which a client asks for `creation` (see [`parse_extra`]).
pub fn encode_creation_request(creation: NonZeroU32) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNOW_EXTRA_LEN);
    out.extend_from_slice(&SNOW_EXTRA_MAGIC);
    out.push(SNOW_EXTRA_REQUEST_CREATION);
    out.extend_from_slice(&creation.get().to_be_bytes());
    out
}

/// ALIVE2_X_RESP (or ALIVE2_RESP with a 2-byte creation for `old_client`). `result` 0 = ok.
pub fn encode_alive2_resp(result: u8, creation: u32, old_client: bool) -> Vec<u8> {
    if old_client {
        let mut out = vec![ALIVE2_RESP, result];
        out.extend_from_slice(&((creation & 0xffff) as u16).to_be_bytes());
        out
    } else {
        let mut out = vec![ALIVE2_X_RESP, result];
        out.extend_from_slice(&creation.to_be_bytes());
        out
    }
}

/// What PORT2_RESP returns about a node: exactly the fields of its registration (the name as
/// registered; PORT2_RESP gives the short name).
pub type NodeInfo = Alive2Req;

/// PORT2_RESP: `Some(info)` found, `None` not found (result 1, nothing else).
pub fn encode_port2_resp(info: Option<&NodeInfo>) -> Vec<u8> {
    let mut out = Vec::new();
    match info {
        Some(i) => {
            put_port2_found(&mut out, i.port, i.node_type, i.protocol, i.high_version, i.low_version, &i.name, &i.extra)
        }
        None => out.extend_from_slice(&[PORT2_RESP, 1]),
    }
    out
}

/// Appends a PORT2_RESP for a found node (result 0) to `out`: the daemon's lookup path encodes
/// straight from its table into a reused buffer.
#[allow(clippy::too_many_arguments)]
pub fn put_port2_found(
    out: &mut Vec<u8>,
    port: u16,
    node_type: u8,
    protocol: u8,
    high_version: u16,
    low_version: u16,
    name: &[u8],
    extra: &[u8],
) {
    out.extend_from_slice(&[PORT2_RESP, 0]);
    out.extend_from_slice(&port.to_be_bytes());
    out.push(node_type);
    out.push(protocol);
    out.extend_from_slice(&high_version.to_be_bytes());
    out.extend_from_slice(&low_version.to_be_bytes());
    put_bytes16(out, name);
    put_bytes16(out, extra);
}

/// Decodes PORT2_RESP (for the client and tests).
pub fn decode_port2_resp(bytes: &[u8]) -> Result<Option<NodeInfo>, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != PORT2_RESP {
        return Err(DecodeError::BadTag);
    }
    if r.u8()? != 0 {
        return Ok(None);
    }
    let info = NodeInfo {
        port: r.u16()?,
        node_type: r.u8()?,
        protocol: r.u8()?,
        high_version: r.u16()?,
        low_version: r.u16()?,
        name: r.bytes16()?.to_vec(),
        extra: r.bytes16()?.to_vec(),
    };
    Ok(Some(info))
}

/// The reply to ALIVE2_REQ as the client reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alive2Resp {
    /// 0 registered; otherwise a [`refusal`] code.
    pub result: u8,
    /// The creation given (meaningless when refused).
    pub creation: u32,
}

/// Length of the whole ALIVE2 reply whose first byte is `tag` (6 for ALIVE2_X_RESP, 4 for
/// ALIVE2_RESP), so a client can read exactly that much; `None` for any other tag.
pub fn alive2_resp_len(tag: u8) -> Option<usize> {
    match tag {
        ALIVE2_X_RESP => Some(6),
        ALIVE2_RESP => Some(4),
        _ => None,
    }
}

/// Decodes ALIVE2_X_RESP or ALIVE2_RESP (the whole reply, [`alive2_resp_len`] bytes).
pub fn decode_alive2_resp(bytes: &[u8]) -> Result<Alive2Resp, DecodeError> {
    let mut r = Reader::new(bytes);
    let tag = r.u8()?;
    let result = r.u8()?;
    let creation = match tag {
        ALIVE2_X_RESP => r.u32()?,
        ALIVE2_RESP => u32::from(r.u16()?),
        _ => return Err(DecodeError::BadTag),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after the registration reply"));
    }
    Ok(Alive2Resp { result, creation })
}

/// Decodes a NAMES_RESP: the daemon's port (u32) and the `name N at port P` text.
pub fn decode_names_resp(bytes: &[u8]) -> Result<(u32, String), DecodeError> {
    let mut r = Reader::new(bytes);
    let port = r.u32()?;
    let text = std::str::from_utf8(r.rest()).map_err(|_| DecodeError::Invalid("names text is not UTF-8"))?;
    Ok((port, text.to_owned()))
}

/// NAMES_REQ / DUMP_REQ reply head: the daemon's own port as u32, then text lines follow.
pub fn encode_names_head(epmd_port: u16) -> Vec<u8> {
    u32::from(epmd_port).to_be_bytes().to_vec()
}

/// One NAMES_REQ line, exactly as Erlang's epmd writes it.
pub fn names_line(name: &str, port: u16) -> String {
    format!("name {name} at port {port}\n")
}

/// Error from decoding a reply or a gossip body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before a field did.
    #[error("message truncated")]
    Truncated,
    /// The first byte is not the expected tag.
    #[error("unexpected message tag")]
    BadTag,
    /// A field holds a value outside its range.
    #[error("invalid field value: {0}")]
    Invalid(&'static str),
}

/// A bounds-checked cursor over a byte slice: every read either succeeds or returns
/// [`DecodeError::Truncated`]; nothing panics and nothing is allocated beyond the input.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    /// True when everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    /// The rest of the input.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A u16 length followed by that many bytes.
    pub fn bytes16(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// A u16-length-prefixed UTF-8 string.
    pub fn str16(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes16()?).map_err(|_| DecodeError::Invalid("string is not UTF-8"))
    }
}

/// Appends a u16 length (saturated at 65535 bytes, longer input is cut) and the bytes.
pub fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..n]);
}

/// Hex rendering for logs and test vectors.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
