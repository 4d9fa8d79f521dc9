//! I/O helpers of the daemon's tasks: deadlines, whole writes, and reading one framed request.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_shared::epmd::wire::{Request, RequestError, RequestParser};

/// Why reading a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("no complete request before the deadline")]
    Timeout,
    #[error("connection closed before a complete request")]
    Closed,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Bad(#[from] RequestError),
}

/// Scratch space for reading a request, kept inside the connection's future: an idle connection
/// (waiting for its request) or a registration costs no heap buffer.
const SMALL_READ: usize = 256;
/// Largest single read for big requests (gossip), allocated only when such a request arrives.
const BIG_READ: usize = 16 * 1024;

/// Runs `fut` with a deadline, starting the timer only if `fut` is not ready at once: most reads,
/// writes and accepts complete on their first poll, and a timer costs a reactor update (and
/// often a `timerfd_settime`) per use. `smol_timeout` polls its timer first, so it always pays.
pub(crate) async fn within<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(output) => Some(output),
        Poll::Pending => fut.timeout(limit).await,
    }
}

/// Writes all of `bytes` within `timeout`.
pub(crate) async fn write_all(stream: &mut TcpStream, bytes: &[u8], timeout: Duration) -> std::io::Result<()> {
    match within(stream.write_all(bytes), timeout).await {
        Some(r) => r,
        None => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline passed")),
    }
}

/// Reads one framed request within `timeout`.
pub(crate) async fn read_request(stream: &mut TcpStream, timeout: Duration) -> Result<Request, ReadError> {
    read_request_after(stream, timeout, &[]).await.map(|(request, _)| request)
}

/// [`read_request`] starting with the bytes already read (`first`); also returns the bytes that
/// arrived after the request (the first lookups of a session).
pub(crate) async fn read_request_after(
    stream: &mut TcpStream,
    timeout: Duration,
    first: &[u8],
) -> Result<(Request, Vec<u8>), ReadError> {
    let deadline = Instant::now() + timeout;
    let mut parser = RequestParser::new();
    if !first.is_empty() {
        if let (Some(request), used) = parser.feed_prefix(first)? {
            return Ok((request, first[used..].to_vec()));
        }
    }
    let mut small = [0u8; SMALL_READ];
    let mut big = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let want = parser.wanted().max(1);
        // Small requests are read greedily (the parser ignores what follows a request; clients
        // send nothing more before the reply): a lookup takes one read instead of two.
        let buf: &mut [u8] = if want <= SMALL_READ {
            &mut small[..]
        } else {
            if big.is_empty() {
                big = vec![0u8; BIG_READ];
            }
            &mut big[..want.min(BIG_READ)]
        };
        match within(stream.read(buf), left).await {
            None => return Err(ReadError::Timeout),
            Some(Err(e)) => return Err(ReadError::Io(e)),
            Some(Ok(0)) => return Err(ReadError::Closed),
            Some(Ok(n)) => {
                let read = if want <= SMALL_READ { &small[..n] } else { &big[..n] };
                if let (Some(request), used) = parser.feed_prefix(read)? {
                    return Ok((request, read[used..].to_vec()));
                }
            }
        }
    }
}
