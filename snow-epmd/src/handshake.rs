//! The one driver of the node handshake (PROTOCOL.md section 4): it moves the bytes of the
//! sans-IO [`Handshake`] over an established TLS stream until the handshake is established or
//! fails, honouring its deadline. Nodes (snow-node-rt, both sides), `snow-epmd ping` and the
//! tests' hand-driven peers all run their handshakes through [`drive`].

use std::time::Instant;

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_shared::dist::handshake::{Handshake, HandshakeError, HandshakeEvent, PeerInfo};

/// Why a driven handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The handshake itself failed (wrong cookie, version, refusal, deadline...).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The stream failed with something other than a close (a close is the handshake's to judge).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs `hs` over `stream` until it is established (returning the peer) or fails. `decide` is
/// called on the acceptor side once the initiator has proven the cookie; it must call
/// [`Handshake::accept`] or [`Handshake::reject_duplicate`]. A peer that closes, also without a
/// TLS close_notify, is reported to the handshake as end of input, which names what went wrong
/// (a refusal, a wrong cookie) when it can. The handshake's own deadline bounds every wait.
pub async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    hs: &mut Handshake,
    stream: &mut S,
    mut decide: impl FnMut(&mut Handshake, &PeerInfo),
) -> Result<PeerInfo, DriveError> {
    let mut buf = [0u8; 4096];
    loop {
        let out = hs.take_output();
        if !out.is_empty() {
            // A write error means the peer closed: the read below reports why.
            let _ = stream.write_all(&out).await;
            let _ = stream.flush().await;
        }
        let mut decided = false;
        while let Some(event) = hs.poll_event() {
            match event {
                HandshakeEvent::PeerHello(_) => {}
                HandshakeEvent::DecisionNeeded(peer) => {
                    decide(hs, &peer);
                    decided = true;
                }
                HandshakeEvent::Established(peer) => {
                    let rest = hs.take_output();
                    if !rest.is_empty() {
                        stream.write_all(&rest).await?;
                        stream.flush().await?;
                    }
                    return Ok(peer);
                }
            }
        }
        if decided {
            // Write the verdict (and pick up `Established`) before reading again.
            continue;
        }
        hs.result()?;
        let deadline = hs.poll_timeout().unwrap_or_else(Instant::now);
        let wait = deadline.saturating_duration_since(Instant::now());
        match stream.read(&mut buf).timeout(wait).await {
            None => hs.handle_timeout(Instant::now())?,
            Some(Ok(0)) => hs.feed_eof()?,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => hs.feed_eof()?,
            Some(Ok(n)) => hs.feed(&buf[..n])?,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}
