//! Setting a connection up: TCP, TLS 1.3 (futures-rustls), then the cookie handshake
//! (PROTOCOL.md section 4, the sans-IO [`Handshake`], driven by `snow_epmd::handshake::drive_with_timer` on the runtime's timers)
//! over the TLS stream, all under one deadline.
//! Both directions: [`dial`] for the side that connects, [`accept`] for the listener's side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::reactor::tcp::TcpStream;
use futures_lite::AsyncWriteExt;
use futures_rustls::{LazyConfigAcceptor, TlsConnector};

use snow_shared::dist::admission::Outcome;
use snow_shared::dist::early_refusal;
use snow_shared::dist::handshake::{Handshake, HandshakeError, PeerInfo};
use snow_shared::dist::tls;
use snow_shared::epmd::table::State;
use snow_shared::NodeName;

use super::connection::{self, Conn};
use super::error::DistError;
use super::link::Link;
use super::state::{Connected, Decision, Driver};
use crate::sync::lock;

/// Why setting up a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no complete handshake within {0:?}")]
    Deadline(std::time::Duration),
    /// Refused before TLS: this node is dialing the node the dialer named itself, and that
    /// connection is kept (`early_refusal`).
    #[error("refused a duplicate connection from {0} before TLS; ours to it is kept")]
    RefusedEarly(NodeName),
}

/// A TLS failure of a dial: the acceptor's refusal of a duplicate reads as the `Duplicate` verdict.
fn dial_tls_error(e: std::io::Error) -> SessionError {
    let refused = e.get_ref().and_then(|inner| inner.downcast_ref::<futures_rustls::rustls::Error>());
    if refused.is_some_and(early_refusal::is_refusal) {
        return SessionError::Handshake(HandshakeError::Duplicate);
    }
    SessionError::Tls(e.to_string())
}

impl From<snow_epmd::handshake::DriveError> for SessionError {
    fn from(e: snow_epmd::handshake::DriveError) -> SessionError {
        match e {
            snow_epmd::handshake::DriveError::Handshake(e) => SessionError::Handshake(e),
            snow_epmd::handshake::DriveError::Io(e) => SessionError::Io(e),
        }
    }
}

/// An incoming connection that was kept: itself, and the connection it replaced (the peer
/// restarted), if any.
type Accepted = (Arc<Conn>, Option<Arc<dyn Link>>, Connected);

/// Fresh secret randomness for one handshake's key exchange.
fn handshake_random() -> [u8; 32] {
    rand::random()
}

/// Whether a failed dial is worth retrying soon (the network, not the peer's answer).
pub(crate) struct DialFailure {
    pub error: DistError,
    pub retriable: bool,
}

/// Dials `node` once: snow-epmd lookup, TCP, TLS, handshake. On success the connection is
/// installed and running. On `Duplicate`, waits for the connection the peer keeps instead.
pub(crate) async fn dial(dist: &Arc<Driver>, node: &NodeName) -> Result<(), DialFailure> {
    let fail = |error, retriable| DialFailure { error, retriable };
    let found = super::epmd_lookup::lookup(&dist.epmd, node, snow_epmd::client::DEFAULT_TIMEOUT)
        .await
        .map_err(|e| fail(DistError::Epmd { node: node.clone(), reason: e.to_string() }, true))?
        .ok_or_else(|| fail(DistError::NotRegistered(node.clone()), false))?;
    if found.state == State::Down {
        return Err(fail(DistError::NodeDown(node.clone()), false));
    }
    let addr = if found.host.contains(':') {
        format!("[{}]:{}", found.host, found.port)
    } else {
        format!("{}:{}", found.host, found.port)
    };
    let connect_err = |reason: String, retriable| {
        fail(DistError::Connect { node: node.clone(), addr: addr.clone(), reason }, retriable)
    };
    let tcp = match dist.within(dist.opts.connect_timeout, TcpStream::connect(&found.host, found.port)).await {
        None => return Err(connect_err(format!("no TCP answer within {:?}", dist.opts.connect_timeout), true)),
        Some(Err(e)) => return Err(connect_err(e.to_string(), true)),
        Some(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let handle = tcp.clone();
    let timeout = dist.opts.handshake_timeout;
    let work = async {
        let name = tls::server_name(dist.ca_verified, node.host_for_connect());
        let mut stream =
            TlsConnector::from(dist.tls_client.clone()).connect(name, tcp).await.map_err(dial_tls_error)?;
        let binding =
            tls::channel_binding(stream.get_ref().1, dist.ca_verified).map_err(|e| SessionError::Tls(e.to_string()))?;
        let mut hs = Handshake::initiator(dist.hs.clone(), node.clone(), binding, handshake_random(), Instant::now());
        let peer =
            snow_epmd::handshake::drive_with_timer(&mut hs, &mut stream, |_, _| {}, |wait| dist.sleep(wait)).await?;
        Ok::<_, SessionError>((stream, hs.take_leftover(), peer))
    };
    let result = dist.within(timeout, work).await.unwrap_or(Err(SessionError::Deadline(timeout)));
    match result {
        Ok((stream, leftover, peer)) => {
            let conn = Conn::new(dist, &peer, handle);
            let link: Arc<dyn Link> = conn.clone();
            let (replaced, connected) = dist.install(&link);
            if let Some(old) = replaced {
                dist.connection_replaced(&*old);
            }
            // Nodeup first: every subscriber hears of the node before its reader delivers anything.
            dist.connection_up(&*conn, &addr);
            // Then whoever waits in `connect`: the node list this node sent reflects the
            // connections it had until now, not one made after `connect` returned.
            connected.wake();
            let (_, tls) = stream.into_inner();
            connection::start(dist.clone(), conn.clone(), tls.into(), leftover);
            Ok(())
        }
        Err(SessionError::Handshake(HandshakeError::Duplicate)) => {
            let _ = handle.shutdown(std::net::Shutdown::Both);
            log::debug!("{}: {node} keeps its own connection to us; waiting for it", dist.name);
            wait_for_other(dist, node).await.map_err(|e| fail(e, false))
        }
        Err(e) => {
            let _ = handle.shutdown(std::net::Shutdown::Both);
            let retriable = matches!(e, SessionError::Io(_) | SessionError::Deadline(_));
            Err(connect_err(e.to_string(), retriable))
        }
    }
}

/// After a `Duplicate` verdict: the peer's own connection to us is on its way; wait for it.
async fn wait_for_other(dist: &Arc<Driver>, node: &NodeName) -> Result<(), DistError> {
    let (tx, rx) = async_channel::bounded(1);
    let waiting = lock(&dist.peers).wait_for(node, tx);
    match waiting {
        Ok(()) => {}
        Err((_, true)) => return Ok(()),
        Err((_, false)) => return Err(DistError::ConnectionLost(node.clone())),
    }
    match dist.within(dist.opts.handshake_timeout, rx.recv()).await {
        Some(Ok(result)) => result,
        Some(Err(_)) => Err(DistError::ConnectionLost(node.clone())),
        None => Err(DistError::Timeout(node.clone())),
    }
}

/// An incoming handshake from a connection that named its dialer, listed in
/// [`Driver::incoming`] while it runs.
struct Claim<'a> {
    dist: &'a Driver,
    dialer: NodeName,
}

impl<'a> Claim<'a> {
    fn new(dist: &'a Driver, dialer: NodeName) -> Claim<'a> {
        lock(&dist.incoming).add(&dialer);
        Claim { dist, dialer }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let wanted = lock(&self.dist.incoming).remove(&self.dialer);
        if wanted {
            self.dist.dial_held_off(&self.dialer);
        }
    }
}

/// Runs the accepting side of one incoming connection, under the handshake deadline. Returns
/// whether the peer proved the cookie, or was refused before TLS as a duplicate; anything else
/// (TLS failure, malformed messages, timeout, close, wrong cookie) is a failed authentication of
/// its source.
pub(crate) async fn accept(dist: Arc<Driver>, tcp: TcpStream, addr: SocketAddr) -> Outcome {
    let _ = tcp.set_nodelay(true);
    let handle = tcp.clone();
    let timeout = dist.opts.handshake_timeout;
    // The connection kept, and the one of the peer's previous creation it replaced.
    let mut accepted: Option<Accepted> = None;
    let mut authenticated = false;
    let result = {
        let accepted = &mut accepted;
        let authenticated = &mut authenticated;
        let dist = &dist;
        let handle = &handle;
        let work = async move {
            let hello =
                LazyConfigAcceptor::new(Default::default(), tcp).await.map_err(|e| SessionError::Tls(e.to_string()))?;
            let dialer = early_refusal::named_dialer(hello.client_hello().alpn().into_iter().flatten());
            if let Some(dialer) = dialer.as_ref().filter(|d| lock(&dist.peers).refuses_before_tls(d)) {
                let mut tcp = handle.clone();
                let _ = tcp.write_all(&early_refusal::REFUSAL_RECORD).await;
                return Err(SessionError::RefusedEarly(dialer.clone()));
            }
            let _claim = dialer.map(|dialer| Claim::new(dist, dialer));
            let mut stream =
                hello.into_stream(dist.tls_server.clone()).await.map_err(|e| SessionError::Tls(e.to_string()))?;
            let binding = tls::channel_binding(stream.get_ref().1, dist.ca_verified)
                .map_err(|e| SessionError::Tls(e.to_string()))?;
            let mut hs = Handshake::acceptor(dist.hs.clone(), binding, handshake_random(), Instant::now());
            let decide = |hs: &mut Handshake, peer: &PeerInfo| {
                // Asked only once the peer's key confirmation verified.
                *authenticated = true;
                let conn = Conn::new(dist, peer, handle.clone());
                let link: Arc<dyn Link> = conn.clone();
                match dist.decide(peer, || link) {
                    (Decision::Accept, replaced, connected) => {
                        hs.accept();
                        *accepted = Some((conn, replaced, connected));
                    }
                    (Decision::Duplicate, _, _) => hs.reject_duplicate(),
                }
            };
            let peer =
                snow_epmd::handshake::drive_with_timer(&mut hs, &mut stream, decide, |wait| dist.sleep(wait)).await?;
            Ok::<_, SessionError>((stream, hs.take_leftover(), peer))
        };
        dist.within(timeout, work).await.unwrap_or(Err(SessionError::Deadline(timeout)))
    };
    match (result, accepted) {
        (Ok((stream, leftover, _peer)), Some((conn, replaced, connected))) => {
            if let Some(old) = replaced {
                dist.connection_replaced(&*old);
            }
            dist.connection_up(&*conn, &addr.to_string());
            connected.wake();
            let (_, tls) = stream.into_inner();
            connection::start(dist.clone(), conn.clone(), tls.into(), leftover);
        }
        (Err(e), Some((conn, _, connected))) => {
            // Accepted, but the verdict could not be delivered. The waiters were the
            // connection's: they hear it came up, then its nodedown.
            connected.wake();
            dist.connection_down(&*conn, &format!("handshake with {addr} failed after acceptance: {e}"));
        }
        (Ok(_), None) => {
            let _ = handle.shutdown(std::net::Shutdown::Both);
        }
        (Err(e), None) => {
            let _ = handle.shutdown(std::net::Shutdown::Both);
            match &e {
                SessionError::Handshake(HandshakeError::DuplicateRejected) => {
                    log::debug!("{}: refused a duplicate connection from {addr}", dist.name)
                }
                SessionError::RefusedEarly(_) => {
                    log::debug!("{}: {e} ({addr})", dist.name);
                    return Outcome::Refused;
                }
                _ => log::warn!("{}: handshake with {addr} failed: {e}", dist.name),
            }
        }
    }
    if authenticated {
        Outcome::Authenticated
    } else {
        Outcome::Failed
    }
}
