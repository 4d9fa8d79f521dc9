//! Async client for snow-epmd (and, for the EPMD requests, Erlang's epmd): registration, lookup
//! by full name, the full listing, PORT_PLEASE2 and NAMES. Used by the CLI and by snow-node-rt.
//! Every call has a deadline ([`DEFAULT_TIMEOUT`] unless given). The functions are plain `async fn`
//! over async-net sockets (async-io's reactor), so they run on any executor. Replies are parsed by
//! the shared decoders of `snow_shared::epmd::wire` and `listing`. The daemon's address may be
//! `host:port`, `a.b.c.d:port` or `[v6]:port`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), snow_epmd::client::ClientError> {
//! use snow_shared::NodeName;
//! let name = NodeName::parse("app@127.0.0.1").unwrap();
//! let reg = snow_epmd::client::register("127.0.0.1:4369", &name, 9100).await?;
//! println!("registered with creation {}", reg.creation());
//! let found = snow_epmd::client::lookup("127.0.0.1:4369", &name).await?;
//! drop(reg); // closes the connection: the daemon marks the node down
//! # Ok(()) }
//! ```

use std::num::NonZeroU32;
use std::time::Duration;

use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_shared::epmd::listing::{decode_list_resp, decode_lookup_resp, Found, ListRow};
use snow_shared::epmd::session::{next_reply, SESSION_ACK, SESSION_OPEN};
use snow_shared::epmd::wire::{
    alive2_resp_len, decode_alive2_resp, decode_names_resp, decode_port2_resp, encode_creation_request, encode_request,
    refusal, Alive2Req, DecodeError, NodeInfo, Request,
};
use snow_shared::NodeName;

/// Deadline for one request (connect, send, receive).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest reply read (a LIST of the maximum table fits easily).
const MAX_REPLY: usize = 32 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot reach snow-epmd at {addr}: {source}; is it running (snow-epmd --listen PORT)?")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The daemon did not answer in time.
    #[error("snow-epmd at {0} did not answer in time")]
    Timeout(String),
    /// The connection failed mid-request.
    #[error("connection to snow-epmd at {addr} failed: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The reply could not be decoded.
    #[error("snow-epmd at {addr} sent an unreadable reply: {source}")]
    BadReply {
        /// The address.
        addr: String,
        /// What was wrong.
        source: DecodeError,
    },
    /// The daemon closed (or reset) the connection instead of opening a lookup session.
    #[error(
        "the daemon at {0} closed the connection instead of opening a lookup session: it does not offer them \
         (Erlang's epmd does not; use one lookup per connection) or it is at its connection limit (try again later)"
    )]
    NoSession(String),
    /// The daemon refused the registration.
    #[error("snow-epmd refused to register {name}: {reason}")]
    Refused {
        /// The node name.
        name: String,
        /// Why, from the result code.
        reason: &'static str,
    },
}

impl ClientError {
    /// True when the daemon could not be reached or did not answer (exit code 3 in the CLI).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. } | ClientError::Timeout(_) | ClientError::Io { .. })
    }
}

/// A live registration. The daemon keeps the node registered while this handle's connection is
/// open; dropping the handle (or [`Registration::close`]) closes it and the node is marked down.
#[derive(Debug)]
pub struct Registration {
    name: NodeName,
    creation: u32,
    stream: TcpStream,
}

impl Registration {
    /// The registered name.
    pub fn name(&self) -> &NodeName {
        &self.name
    }
    /// The creation the daemon gave this registration: new on every registration, unless it
    /// honoured a creation asked for with [`register_requesting`].
    pub fn creation(&self) -> u32 {
        self.creation
    }
    /// Unregisters now.
    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
    /// Waits until the daemon closes the registration connection (daemon stopped or STOP_REQ).
    pub async fn closed(&mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    match TcpStream::connect(addr).timeout(timeout).await {
        None => Err(ClientError::Timeout(addr.to_owned())),
        Some(Err(source)) => Err(ClientError::Unreachable { addr: addr.to_owned(), source }),
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

fn io_err(addr: &str) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Io { addr: addr.to_owned(), source }
}

/// Sends one request and reads the reply until the daemon closes the connection.
pub async fn request(addr: &str, request: &Request, timeout: Duration) -> Result<Vec<u8>, ClientError> {
    let work = async {
        let mut s = connect(addr, timeout).await?;
        s.write_all(&encode_request(request)).await.map_err(io_err(addr))?;
        let mut reply = Vec::new();
        (&mut s).take(MAX_REPLY as u64).read_to_end(&mut reply).await.map_err(io_err(addr))?;
        Ok(reply)
    };
    work.timeout(timeout).await.unwrap_or_else(|| Err(ClientError::Timeout(addr.to_owned())))
}

/// Registers `name` with distribution port `port` (ALIVE2_REQ with the full name).
pub async fn register(addr: &str, name: &NodeName, port: u16) -> Result<Registration, ClientError> {
    register_with(addr, name, port, DEFAULT_TIMEOUT).await
}

/// [`register`] with an explicit deadline.
pub async fn register_with(
    addr: &str,
    name: &NodeName,
    port: u16,
    timeout: Duration,
) -> Result<Registration, ClientError> {
    register_sending(addr, name, port, Vec::new(), timeout).await
}

/// Registers `name` again, asking for `creation` (a Snow option in ALIVE2_REQ's Extra field,
/// PROTOCOL.md 5.2): a running node whose registration the daemon dropped (daemon restart) asks
/// for the creation its pids carry. snow-epmd honours it only if the name is unknown there or its
/// entry is this daemon's, not up, and has that creation; otherwise (and with Erlang's epmd,
/// which ignores Extra) the daemon assigns a creation as usual. Compare
/// [`Registration::creation`] with `creation` to know which happened. A new node start must use
/// [`register`] instead, so that it gets a new creation (README "Guarantees and limits").
pub async fn register_requesting(
    addr: &str,
    name: &NodeName,
    port: u16,
    creation: NonZeroU32,
    timeout: Duration,
) -> Result<Registration, ClientError> {
    register_sending(addr, name, port, encode_creation_request(creation), timeout).await
}

/// Sends ALIVE2_REQ with `extra` and reads the reply.
async fn register_sending(
    addr: &str,
    name: &NodeName,
    port: u16,
    extra: Vec<u8>,
    timeout: Duration,
) -> Result<Registration, ClientError> {
    let req = Request::Alive2(Alive2Req {
        port,
        node_type: 77,
        protocol: 0,
        high_version: 6,
        low_version: 6,
        name: name.as_str().as_bytes().to_vec(),
        extra,
    });
    let work = async {
        let mut s = connect(addr, timeout).await?;
        s.write_all(&encode_request(&req)).await.map_err(io_err(addr))?;
        let mut reply = [0u8; 6];
        s.read_exact(&mut reply[..1]).await.map_err(io_err(addr))?;
        let bad = |source| ClientError::BadReply { addr: addr.to_owned(), source };
        let len = alive2_resp_len(reply[0]).ok_or(bad(DecodeError::BadTag))?;
        s.read_exact(&mut reply[1..len]).await.map_err(io_err(addr))?;
        let resp = decode_alive2_resp(&reply[..len]).map_err(bad)?;
        if resp.result != 0 {
            return Err(ClientError::Refused { name: name.to_string(), reason: refusal::reason(resp.result) });
        }
        Ok(Registration { name: name.clone(), creation: resp.creation, stream: s })
    };
    work.timeout(timeout).await.unwrap_or_else(|| Err(ClientError::Timeout(addr.to_owned())))
}

/// Looks a node up by full name (Snow LOOKUP). `Ok(None)`: unknown.
pub async fn lookup(addr: &str, name: &NodeName) -> Result<Option<Found>, ClientError> {
    let reply = request(addr, &Request::Lookup(name.as_str().as_bytes().to_vec()), DEFAULT_TIMEOUT).await?;
    decode_lookup_resp(&reply).map_err(|source| ClientError::BadReply { addr: addr.to_owned(), source })
}

/// The daemon's whole table (Snow LIST).
pub async fn list(addr: &str) -> Result<Vec<ListRow>, ClientError> {
    let reply = request(addr, &Request::List, DEFAULT_TIMEOUT).await?;
    decode_list_resp(&reply).map_err(|source| ClientError::BadReply { addr: addr.to_owned(), source })
}

/// EPMD PORT_PLEASE2 by short name, as Erlang nodes ask.
pub async fn port_please(addr: &str, short_name: &str) -> Result<Option<NodeInfo>, ClientError> {
    let reply = request(addr, &Request::PortPlease2(short_name.as_bytes().to_vec()), DEFAULT_TIMEOUT).await?;
    decode_port2_resp(&reply).map_err(|source| ClientError::BadReply { addr: addr.to_owned(), source })
}

/// EPMD NAMES: the daemon's port and the `name N at port P` text.
pub async fn names(addr: &str) -> Result<(u32, String), ClientError> {
    let reply = request(addr, &Request::Names, DEFAULT_TIMEOUT).await?;
    decode_names_resp(&reply).map_err(|source| ClientError::BadReply { addr: addr.to_owned(), source })
}

/// A pipelined lookup session (Snow request `Q`, PROTOCOL.md 5.3): many lookups over one
/// connection, each batch sent in one write and answered in order. The daemon closes a session
/// that stays silent longer than its `--session-idle` (default 10 s) or lasts longer than its
/// `--session-lifetime` (default 300 s), and refuses more than `--max-sessions-per-source` (16) from
/// one address; open a new one when a call fails.
///
/// ```no_run
/// # async fn demo() -> Result<(), snow_epmd::client::ClientError> {
/// use snow_shared::NodeName;
/// let names = [NodeName::parse("a@db1").unwrap(), NodeName::parse("b@db2").unwrap()];
/// let mut session = snow_epmd::client::LookupSession::open("127.0.0.1:4369").await?;
/// let found = session.lookup_many(&names).await?; // one round trip for both
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LookupSession {
    addr: String,
    stream: TcpStream,
    input: Vec<u8>,
    timeout: Duration,
}

impl LookupSession {
    /// Connects and opens a session (waits for the daemon's acknowledgement).
    pub async fn open(addr: &str) -> Result<LookupSession, ClientError> {
        Self::open_with(addr, DEFAULT_TIMEOUT).await
    }

    /// [`LookupSession::open`] with an explicit deadline for the opening and for each batch.
    pub async fn open_with(addr: &str, timeout: Duration) -> Result<LookupSession, ClientError> {
        let work = async {
            let mut stream = connect(addr, timeout).await?;
            // A daemon that refuses closes the connection; with our request unread, that is a
            // reset as often as an end of stream, seen by the write or by the read.
            let refused = |e: &std::io::Error| {
                use std::io::ErrorKind::*;
                matches!(e.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe)
            };
            let mut ack = [0u8; SESSION_ACK.len()];
            let opened = match stream.write_all(&SESSION_OPEN).await {
                Ok(()) => stream.read_exact(&mut ack).await,
                Err(e) => Err(e),
            };
            match opened {
                Ok(()) if ack == SESSION_ACK => {}
                Ok(()) => return Err(ClientError::BadReply { addr: addr.to_owned(), source: DecodeError::BadTag }),
                Err(e) if refused(&e) => return Err(ClientError::NoSession(addr.into())),
                Err(e) => return Err(io_err(addr)(e)),
            }
            Ok(LookupSession { addr: addr.to_owned(), stream, input: Vec::new(), timeout })
        };
        work.timeout(timeout).await.unwrap_or_else(|| Err(ClientError::Timeout(addr.to_owned())))
    }

    /// Looks up one node by full name.
    pub async fn lookup(&mut self, name: &NodeName) -> Result<Option<Found>, ClientError> {
        let mut found = self.lookup_many(std::slice::from_ref(name)).await?;
        Ok(found.pop().flatten())
    }

    /// Looks up every name in one round trip; the answers are in the order of `names`.
    pub async fn lookup_many(&mut self, names: &[NodeName]) -> Result<Vec<Option<Found>>, ClientError> {
        let requests = names.iter().map(|n| Request::Lookup(n.as_str().as_bytes().to_vec()));
        let replies = self.exchange(requests, names.len()).await?;
        replies.iter().map(|r| decode_lookup_resp(r).map_err(|source| self.bad(source))).collect()
    }

    /// PORT_PLEASE2 for every short name in one round trip, in order.
    pub async fn port_please_many(&mut self, short_names: &[&str]) -> Result<Vec<Option<NodeInfo>>, ClientError> {
        let requests = short_names.iter().map(|n| Request::PortPlease2(n.as_bytes().to_vec()));
        let replies = self.exchange(requests, short_names.len()).await?;
        replies.iter().map(|r| decode_port2_resp(r).map_err(|source| self.bad(source))).collect()
    }

    fn bad(&self, source: DecodeError) -> ClientError {
        ClientError::BadReply { addr: self.addr.clone(), source }
    }

    async fn exchange(
        &mut self,
        requests: impl Iterator<Item = Request>,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let addr = self.addr.clone();
        let timeout = self.timeout;
        let work = async {
            let mut out = Vec::new();
            for r in requests {
                out.extend_from_slice(&encode_request(&r));
            }
            self.stream.write_all(&out).await.map_err(io_err(&addr))?;
            let mut replies = Vec::with_capacity(count);
            let mut buf = [0u8; 4096];
            while replies.len() < count {
                match next_reply(&self.input).map_err(|source| ClientError::BadReply { addr: addr.clone(), source })? {
                    Some((reply, used)) => {
                        replies.push(reply.to_vec());
                        self.input.drain(..used);
                    }
                    None => match self.stream.read(&mut buf).await.map_err(io_err(&addr))? {
                        0 => {
                            let eof =
                                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "session closed by the daemon");
                            return Err(io_err(&addr)(eof));
                        }
                        n => self.input.extend_from_slice(&buf[..n]),
                    },
                }
            }
            Ok(replies)
        };
        work.timeout(timeout).await.unwrap_or_else(|| Err(ClientError::Timeout(self.addr.clone())))
    }
}
