//! The lookup path, where the daemon spends its time when nodes connect to each other.
//!
//! - [`answer_at_once`]: in the accept loop, one non-blocking read of a fresh connection; if it
//!   holds a whole PORT_PLEASE2 or LOOKUP, the reply is encoded from the in-memory table into a
//!   reused buffer, written with one non-blocking write, and the connection closed. No task, no
//!   reactor registration, no timer, no allocation, one uncontended lock. Anything else (the
//!   request is not there yet, or is another request) goes to a task.
//! - [`serve_session`]: the pipelined lookup session (`Q`, PROTOCOL.md 5.3), with an idle
//!   deadline, an absolute lifetime, the request deadline for a partial request, a write deadline
//!   and a bounded output buffer.
//!
//! The answers themselves are the sans-IO `snow_shared::epmd::session::Query::answer`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use async_net::TcpStream;
use futures_lite::AsyncReadExt;
use snow_shared::epmd::session::{next_query, Query, SESSION_ACK};
use snow_shared::epmd::wire::{split_request, MAX_NAME_FIELD, PORT_PLEASE2_REQ, SNOW_LOOKUP_REQ};

use crate::io::{within, write_all};
use crate::state::{SessionSlot, Shared};

/// What the accept loop does with a connection after [`answer_at_once`].
pub(crate) enum Next {
    /// Answered (or refused) and closed.
    Done,
    /// Needs a task: the request is incomplete or not a lookup. Carries the bytes read so far.
    Task(std::net::TcpStream, Vec<u8>),
    /// Answered, but the reply did not fit the socket buffer at once: a task writes the rest.
    Finish(std::net::TcpStream, Vec<u8>),
}

/// Bytes read at once from a fresh connection: any lookup fits.
const FIRST_READ: usize = MAX_NAME_FIELD + 4;

/// Answers a fresh connection in the accept loop if its first bytes are a whole lookup.
/// `out` is the accept loop's reused reply buffer.
pub(crate) fn answer_at_once(
    sh: &Shared,
    mut stream: std::net::TcpStream,
    peer: SocketAddr,
    out: &mut Vec<u8>,
) -> Next {
    if let Err(e) = stream.set_nonblocking(true) {
        sh.log_rejected(&peer.ip().to_string(), "connection", &e);
        return Next::Done;
    }
    let mut buf = [0u8; FIRST_READ];
    let n = match stream.read(&mut buf) {
        Ok(0) => return Next::Done,
        Ok(n) => n,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            return Next::Task(stream, Vec::new())
        }
        Err(_) => return Next::Done,
    };
    let body = match split_request(&buf[..n]) {
        Ok(Some((body, _))) if matches!(body.first(), Some(&PORT_PLEASE2_REQ | &SNOW_LOOKUP_REQ)) => body,
        Ok(_) => return Next::Task(stream, buf[..n].to_vec()),
        Err(e) => {
            sh.log_rejected(&peer.ip().to_string(), "request", &e);
            return Next::Done;
        }
    };
    let query = match Query::from_body(body) {
        Ok(q) => q,
        Err(e) => {
            sh.log_rejected(&peer.ip().to_string(), "request", &e);
            return Next::Done;
        }
    };
    out.clear();
    {
        let st = sh.state();
        query.answer(st.gossip.table(), &st.registry, &sh.host, out);
    }
    match stream.write(out) {
        Ok(w) if w == out.len() => Next::Done,
        Ok(w) => Next::Finish(stream, out[w..].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            Next::Finish(stream, out.clone())
        }
        Err(_) => Next::Done,
    }
}

/// Input buffer of a session: a few hundred pipelined lookups per read.
const SESSION_IN: usize = 4096;
/// Replies are written once this many bytes are pending (bounds a session's memory).
const SESSION_OUT: usize = 16 * 1024;

/// Serves a lookup session until the client closes, idles past `--session-idle`, reaches
/// `--session-lifetime`, leaves a request unfinished past `--request-timeout`, stops reading
/// replies, or sends anything but a lookup. `first` holds bytes that arrived after the `Q`
/// request; `_slot` counts the session against `--max-sessions-per-source` while it lives.
pub(crate) async fn serve_session(
    sh: &Shared,
    mut stream: TcpStream,
    peer: SocketAddr,
    first: &[u8],
    _slot: SessionSlot,
) {
    let who = || peer.ip().to_string();
    let timeout = sh.config.request_timeout;
    let ends = Instant::now() + sh.config.session_lifetime;
    let mut buf = vec![0u8; SESSION_IN];
    let mut len = first.len().min(SESSION_IN);
    buf[..len].copy_from_slice(&first[..len]);
    let mut out = Vec::with_capacity(SESSION_OUT + 1024);
    out.extend_from_slice(&SESSION_ACK);
    // When the oldest unfinished request began (None: the buffer is empty).
    let mut partial_since: Option<Instant> = None;
    let mut answered = 0u64;
    loop {
        let mut start = 0;
        let mut refused = None;
        {
            let st = sh.state();
            let table = st.gossip.table();
            while out.len() < SESSION_OUT {
                match next_query(&buf[start..len]) {
                    Ok(Some((query, used))) => {
                        query.answer_framed(table, &st.registry, &sh.host, &mut out);
                        start += used;
                        answered += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
        }
        buf.copy_within(start..len, 0);
        len -= start;
        if start > 0 || len == 0 {
            partial_since = (len > 0).then(Instant::now);
        }
        if !out.is_empty() {
            if let Err(e) = write_all(&mut stream, &out, timeout).await {
                return sh.log_rejected(&who(), "lookup session", &format!("reply not taken: {e}"));
            }
            out.clear();
        }
        if let Some(e) = refused {
            return sh.log_rejected(&who(), "lookup session", &e);
        }
        let left = ends.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::debug!("snow-epmd {}: lookup session from {peer} reached --session-lifetime after {answered}", sh.id);
            break;
        }
        if len > 0 && next_query(&buf[..len]).is_ok_and(|q| q.is_some()) {
            continue; // more complete requests than one output buffer held
        }
        let (limit, what) = match partial_since {
            Some(since) => (timeout.saturating_sub(since.elapsed()), "request unfinished past the deadline"),
            None => (sh.config.session_idle, ""),
        };
        match within(stream.read(&mut buf[len..]), limit.min(left)).await {
            Some(Ok(0)) | Some(Err(_)) => break,
            Some(Ok(n)) => {
                if len == 0 {
                    partial_since = Some(Instant::now());
                }
                len += n;
            }
            None if Instant::now() >= ends => continue, // the lifetime check above closes it
            None if what.is_empty() => {
                log::debug!("snow-epmd {}: lookup session from {peer} idle, closed after {answered}", sh.id);
                break;
            }
            None => return sh.log_rejected(&who(), "lookup session", &what),
        }
    }
    log::debug!("snow-epmd {}: lookup session from {peer} ended after {answered} lookups", sh.id);
}
