//! TCP sockets on the [`Reactor`](super::Reactor): the listener the node accepts on and the
//! streams its connections run over.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use super::{Async, Direction};

/// A connected TCP stream. Clones share the socket (a connection's reader, writer and senders).
#[derive(Clone)]
pub(crate) struct TcpStream {
    inner: Arc<Async<std::net::TcpStream>>,
}

impl TcpStream {
    fn from_std(stream: std::net::TcpStream, connected: bool) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream { inner: Arc::new(Async::new(stream, connected)?) })
    }

    /// Connects to `host:port`, trying each address `host` resolves to in turn (a name is
    /// resolved on a thread of its own, as the standard library's resolver blocks).
    pub(crate) async fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
        let addrs = async_net::resolve((host, port)).await?;
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, format!("{host} resolves to no address"));
        for addr in addrs {
            match TcpStream::connect_addr(addr).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    /// Connects to `addr` without blocking the thread.
    pub(crate) async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
        let fd =
            rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC, None)?;
        match rustix::net::connect(&fd, &addr) {
            Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
            Err(err) => return Err(err.into()),
        }
        let stream = TcpStream::from_std(std::net::TcpStream::from(fd), false)?;
        std::future::poll_fn(|cx| stream.inner.poll_ready(Direction::Write, cx)).await;
        match rustix::net::sockopt::socket_error(stream.inner.get_ref())? {
            Ok(()) => Ok(stream),
            Err(err) => Err(err.into()),
        }
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(on)
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_io(Direction::Read, cx, |mut s| s.read(buf))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_io(Direction::Write, cx, |mut s| s.write(buf))
    }

    pub(crate) fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.inner.poll_io(Direction::Write, cx, |mut s| s.write_vectored(bufs))
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        TcpStream::poll_read(&self, cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        TcpStream::poll_write(&self, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_write_vectored(&self, cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

/// A listening TCP socket.
pub(crate) struct TcpListener {
    inner: Async<std::net::TcpListener>,
}

impl TcpListener {
    /// Listens on `listener`, which is bound and listening.
    pub(crate) fn new(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener { inner: Async::new(listener, true)? })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The next connection.
    pub(crate) async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = std::future::poll_fn(|cx| self.inner.poll_io(Direction::Read, cx, |l| l.accept())).await?;
        Ok((TcpStream::from_std(stream, true)?, addr))
    }
}
