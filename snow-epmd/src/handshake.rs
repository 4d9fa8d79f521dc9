//! The one driver of the node handshake (PROTOCOL.md section 4): it moves the bytes of the
//! sans-IO [`Handshake`] over an established TLS stream until the handshake is established or
//! fails, honouring its deadline. Nodes (snow-node-rt, both sides), `snow-epmd ping` and the
//! tests' hand-driven peers all run their handshakes through [`drive`].

use std::future::Future;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    decide: impl FnMut(&mut Handshake, &PeerInfo),
) -> Result<PeerInfo, DriveError> {
    drive_with_timer(hs, stream, decide, |wait| async move {
        async_io::Timer::after(wait).await;
    })
    .await
}

/// [`drive`], waiting for the handshake's deadline with `sleep` instead of async-io's timers. A
/// runtime with timers of its own passes them: each of a handshake's reads arms a timer, and an
/// async-io timer wakes async-io's thread twice (armed, then cancelled), which in a forming mesh
/// is thousands of thread switches.
pub async fn drive_with_timer<S, T>(
    hs: &mut Handshake,
    stream: &mut S,
    mut decide: impl FnMut(&mut Handshake, &PeerInfo),
    sleep: impl Fn(Duration) -> T,
) -> Result<PeerInfo, DriveError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: Future<Output = ()>,
{
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
        let read = async { Some(stream.read(&mut buf).await) };
        let deadline = async {
            sleep(wait).await;
            None
        };
        match futures_lite::future::or(read, deadline).await {
            None => hs.handle_timeout(Instant::now())?,
            Some(Ok(0)) => hs.feed_eof()?,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => hs.feed_eof()?,
            Some(Ok(n)) => hs.feed(&buf[..n])?,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use futures_lite::io::{AsyncRead, AsyncWrite};
    use snow_shared::cookie::DerivedKey;
    use snow_shared::dist::handshake::{ChannelBinding, HandshakeConfig};
    use snow_shared::NodeName;

    use super::*;

    /// A peer that takes every byte and never answers.
    struct Silent;

    impl AsyncRead for Silent {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Silent {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_silent_peer_fails_the_handshake_at_its_deadline_on_the_callers_timer() {
        let name = |n: &str| NodeName::parse(n).unwrap();
        let mut config = HandshakeConfig::new(name("a@127.0.0.1"), 1, DerivedKey::from_bytes([7; 32]));
        config.timeout = Duration::from_millis(100);
        let started = Instant::now();
        let mut hs =
            Handshake::initiator(config, name("b@127.0.0.1"), ChannelBinding::unchecked([1; 32]), [2; 32], started);
        let sleeps = AtomicUsize::new(0);
        let mut peer = Silent;
        let drive = drive_with_timer(
            &mut hs,
            &mut peer,
            |_, _| {},
            |wait| {
                sleeps.fetch_add(1, Ordering::SeqCst);
                async move {
                    async_io::Timer::after(wait).await;
                }
            },
        );
        // A deadline that is not honoured fails here instead of hanging.
        let outcome = async_io::block_on(smol_timeout::TimeoutExt::timeout(drive, Duration::from_secs(5)))
            .expect("the handshake outlived its deadline");
        let took = started.elapsed();
        assert!(matches!(outcome, Err(DriveError::Handshake(_))), "{outcome:?}");
        assert!(sleeps.load(Ordering::SeqCst) >= 1, "the caller's timer was not used");
        assert!(took >= Duration::from_millis(100), "failed before its deadline: {took:?}");
    }
}
