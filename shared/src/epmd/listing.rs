//! Snow extension replies: LOOKUP (one node by full name) and LIST (the whole table with state,
//! origin and age), as `snow-epmd lookup` / `snow-epmd list` and node runtimes read them.

use super::registry::LocalName;
use super::table::{Entry, State};
use super::wire::{put_bytes16, DecodeError, Reader, SNOW_LIST_RESP, SNOW_LOOKUP_RESP};

/// What a lookup returns about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Address to connect to.
    pub host: String,
    /// Distribution port.
    pub port: u16,
    /// Creation of the current registration.
    pub creation: u32,
    /// Up, down or unconfirmed.
    pub state: State,
}

/// LOOKUP_RESP: `l`, result (0 found, 1 unknown), then for found: port u16, creation u32,
/// state u8, host (u16 length + bytes).
pub fn encode_lookup_resp(found: Option<&Found>) -> Vec<u8> {
    let mut out = Vec::new();
    match found {
        Some(f) => put_lookup_found(&mut out, &f.host, f.port, f.creation, f.state),
        None => out.extend_from_slice(&[SNOW_LOOKUP_RESP, 1]),
    }
    out
}

/// Appends LOOKUP_RESP for `entry` (or "unknown") to `out`, straight from the table.
pub fn put_lookup_resp(out: &mut Vec<u8>, entry: Option<&Entry>) {
    match entry {
        Some(e) => put_lookup_found(out, &e.host, e.port, e.creation, e.state),
        None => out.extend_from_slice(&[SNOW_LOOKUP_RESP, 1]),
    }
}

fn put_lookup_found(out: &mut Vec<u8>, host: &str, port: u16, creation: u32, state: State) {
    out.extend_from_slice(&[SNOW_LOOKUP_RESP, 0]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&creation.to_be_bytes());
    out.push(state.to_u8());
    put_bytes16(out, host.as_bytes());
}

/// Decodes LOOKUP_RESP.
pub fn decode_lookup_resp(bytes: &[u8]) -> Result<Option<Found>, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != SNOW_LOOKUP_RESP {
        return Err(DecodeError::BadTag);
    }
    match r.u8()? {
        1 => return Ok(None),
        0 => {}
        _ => return Err(DecodeError::Invalid("lookup result")),
    }
    let port = r.u16()?;
    let creation = r.u32()?;
    let state = State::from_u8(r.u8()?).ok_or(DecodeError::Invalid("state"))?;
    let host = r.str16()?.to_owned();
    Ok(Some(Found { host, port, creation, state }))
}

/// One row of `snow-epmd list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// Full node name (`name@host`), or a name registered here outside Snow's rules as it was
    /// registered (Erlang's epmd accepts any UTF-8 name), shown with `@` and this daemon's host.
    pub name: String,
    /// Address to connect to.
    pub host: String,
    /// Distribution port.
    pub port: u16,
    /// Creation.
    pub creation: u32,
    /// Up, down or unconfirmed.
    pub state: State,
    /// `local`, or the id (`host:port`) of the owning daemon.
    pub origin: String,
    /// Milliseconds since the entry last changed.
    pub age_ms: u64,
}

impl ListRow {
    /// The row for `e` as seen by daemon `me` at local time `now`.
    pub fn from_entry(e: &Entry, me: &str, now: u64) -> ListRow {
        ListRow {
            name: e.name.as_str().to_owned(),
            host: e.host.clone(),
            port: e.port,
            creation: e.creation,
            state: e.state,
            origin: if e.owner == me { "local".to_owned() } else { e.owner.clone() },
            age_ms: now.saturating_sub(e.changed_at),
        }
    }
}

impl ListRow {
    /// The row for a name registered at daemon `me` outside Snow's rules; `host` is the
    /// daemon's host for short names.
    pub fn from_local(l: &LocalName, host: &str, now: u64) -> ListRow {
        ListRow {
            name: format!("{}@{host}", l.name),
            host: host.to_owned(),
            port: l.request.port,
            creation: l.creation,
            state: State::Up,
            origin: "local".to_owned(),
            age_ms: now.saturating_sub(l.since),
        }
    }
}

/// LIST_RESP: `f`, count u32, then per row: name, host (u16-length strings), port u16,
/// creation u32, state u8, origin (u16-length string), age_ms u64. The daemon closes after it.
pub fn encode_list_resp(rows: &[ListRow]) -> Vec<u8> {
    let mut out = vec![SNOW_LIST_RESP];
    out.extend_from_slice(&(rows.len() as u32).to_be_bytes());
    for r in rows {
        put_bytes16(&mut out, r.name.as_bytes());
        put_bytes16(&mut out, r.host.as_bytes());
        out.extend_from_slice(&r.port.to_be_bytes());
        out.extend_from_slice(&r.creation.to_be_bytes());
        out.push(r.state.to_u8());
        put_bytes16(&mut out, r.origin.as_bytes());
        out.extend_from_slice(&r.age_ms.to_be_bytes());
    }
    out
}

/// Decodes LIST_RESP.
pub fn decode_list_resp(bytes: &[u8]) -> Result<Vec<ListRow>, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != SNOW_LIST_RESP {
        return Err(DecodeError::BadTag);
    }
    let n = r.u32()?;
    let mut rows = Vec::new();
    for _ in 0..n {
        let name = r.str16()?.to_owned();
        let host = r.str16()?.to_owned();
        let port = r.u16()?;
        let creation = r.u32()?;
        let state = State::from_u8(r.u8()?).ok_or(DecodeError::Invalid("state"))?;
        let origin = r.str16()?.to_owned();
        let age_ms = r.u64()?;
        rows.push(ListRow { name, host, port, creation, state, origin, age_ms });
    }
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after the list"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_vector_and_round_trip() {
        let f = Found { host: "h".into(), port: 0x1234, creation: 5, state: State::Up };
        let v = encode_lookup_resp(Some(&f));
        assert_eq!(v, [0x6c, 0, 0x12, 0x34, 0, 0, 0, 5, 0, 0, 1, b'h']);
        assert_eq!(decode_lookup_resp(&v), Ok(Some(f)));
        assert_eq!(decode_lookup_resp(&[0x6c, 1]), Ok(None));
        assert!(decode_lookup_resp(&v[..5]).is_err());
    }

    #[test]
    fn list_round_trip_and_truncation() {
        let row = ListRow {
            name: "a@h".into(),
            host: "h".into(),
            port: 1,
            creation: 2,
            state: State::Unconfirmed,
            origin: "local".into(),
            age_ms: 3,
        };
        let v = encode_list_resp(std::slice::from_ref(&row));
        assert_eq!(decode_list_resp(&v), Ok(vec![row]));
        for cut in 0..v.len() {
            assert!(decode_list_resp(&v[..cut]).is_err());
        }
        // A count far larger than the bytes present fails without allocating for it.
        assert!(decode_list_resp(&[b'f', 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
