//! The node-to-node connection handshake (PROTOCOL.md 4.2), as a deterministic
//! state machine.
//!
//! It runs inside an established TLS 1.3 session; the driver does TLS and hands in a
//! [`ChannelBinding`]: the session's 32-byte exporter value and, in CA-verified mode, the names of
//! the peer's verified certificate. Messages are length-framed (4-byte big-endian length) and at
//! most [`MAX_HANDSHAKE_FRAME`] bytes. The exchange, with I the side that dialed (initiator) and A
//! the side that accepted:
//!
//! ```text
//! I -> A  HELLO(I, to = A)  PAKE(X)           sent at start
//! A -> I  HELLO(A)                             sent at start
//! A -> I  PAKE(Y)                              once I's HELLO is acceptable
//! I -> A  CONFIRM(role 0x01)                   once A's HELLO and PAKE have arrived
//!         A checks it, then the driver decides (duplicate-connection tie-break)
//! A -> I  CONFIRM(role 0x02)  STATUS(ok | duplicate)
//! ```
//!
//! PAKE and CONFIRM are a balanced password-authenticated key exchange (SPAKE2, keyed by the
//! cookie, bound to the TLS exporter, both node names and roles) and its key confirmations; see
//! [`super::key_exchange`] for the cryptography and why neither side's transcript
//! lets anyone test cookie guesses offline. The initiator confirms first, so an acceptor that does
//! not know the cookie learns only that its one guess was wrong. The confirmations cover both
//! HELLOs (versions, flags, names, creations), so those are authenticated too.
//!
//! In CA-verified mode both sides also check that the peer's certificate names the host of the
//! node name the peer claims in its HELLO ([`CertNames::allows`]), so a certificate for host A
//! cannot be used to speak as `x@B`.
//!
//! Nothing from the peer enters a process-wide table before it has confirmed the key: its names
//! are kept out of the atom table until then ([`NodeName::parse_uninterned`]).
//!
//! On any error the machine drops unsent output, so an unauthenticated peer gets nothing but a
//! close. The driver's loop: [`Handshake::feed`] received bytes, write [`Handshake::take_output`],
//! drain [`Handshake::poll_event`], sleep until [`Handshake::poll_timeout`], then
//! [`Handshake::handle_timeout`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hmac::Mac;
use zeroize::Zeroizing;

use super::cert_names::CertNames;
/// Which side of the TCP connection we are (defined with the key exchange, whose roles it names).
pub use super::key_exchange::Side;
use super::key_exchange::{self, KeyExchange, PakeError, SessionKey, CONFIRM_LEN, PAKE_MESSAGE_LEN};
use super::wire::{put_frame, put_name, Reader};
use super::{Flags, PROTOCOL_VERSION};
use crate::cookie::DerivedKey;
use crate::name::NodeName;

/// Largest handshake message (after the 4-byte length). A HELLO with two maximal names is 657
/// bytes; anything longer is refused before it is buffered.
pub const MAX_HANDSHAKE_FRAME: usize = 1024;
/// Label of the TLS exporter (RFC 8446 section 7.5) whose 32-byte output, with an empty context,
/// the driver passes in as `exporter`.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-snow-dist";
/// Default time allowed for a whole handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Message tags of the handshake phase.
pub mod tag {
    /// HELLO: name, version range, flags, creation, the name the sender believes it talks to.
    pub const HELLO: u8 = 0x01;
    /// STATUS: the acceptor's verdict (one byte, [`super::status`]).
    pub const STATUS: u8 = 0x04;
    /// PAKE: the sender's SPAKE2 message (side byte and a curve point).
    pub const PAKE: u8 = 0x05;
    /// CONFIRM: the sender's key confirmation (32 bytes).
    pub const CONFIRM: u8 = 0x06;
}

/// Values of the STATUS byte.
pub mod status {
    /// The connection is up.
    pub const OK: u8 = 0x00;
    /// The acceptor already has (or is setting up, and wins the tie-break for) a connection with
    /// the initiator; the initiator should use that one.
    pub const DUPLICATE: u8 = 0x01;
}

/// An inclusive range of protocol versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    /// Oldest version spoken.
    pub min: u16,
    /// Newest version spoken.
    pub max: u16,
}

impl VersionRange {
    /// The versions this build speaks.
    pub const CURRENT: VersionRange = VersionRange { min: PROTOCOL_VERSION, max: PROTOCOL_VERSION };

    /// The highest version both ranges contain, if any.
    pub fn negotiate(self, other: VersionRange) -> Option<u16> {
        let version = self.max.min(other.max);
        (version >= self.min.max(other.min)).then_some(version)
    }
}

/// The pure tie-break for simultaneous connects: of two connections between `local` and
/// `remote`, keep the one that `local` initiated iff this returns true. Both nodes evaluate it
/// with the arguments swapped and reach the same verdict: the connection dialed by the node with
/// the smaller name wins.
pub fn keep_initiated(local: &NodeName, remote: &NodeName) -> bool {
    local < remote
}

/// What this node says about itself in the handshake.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// Our node name.
    pub local: NodeName,
    /// Our creation (nonzero).
    pub creation: u32,
    /// The protocol versions we speak.
    pub versions: VersionRange,
    /// The capabilities we offer.
    pub flags: Flags,
    /// The 32-byte distribution key derived from the cookie (`cookie::derive_key`).
    pub key: DerivedKey,
    /// Time allowed for the whole handshake.
    pub timeout: Duration,
}

impl HandshakeConfig {
    /// A configuration with the current version range, every capability, and the default timeout.
    pub fn new(local: NodeName, creation: u32, key: DerivedKey) -> HandshakeConfig {
        HandshakeConfig {
            local,
            creation,
            versions: VersionRange::CURRENT,
            flags: Flags::ALL,
            key,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// What the peer's TLS certificate says about which node names it may claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCertificate {
    /// Self-signed mode: certificates carry no identity (any is accepted); the cookie is the
    /// only credential, and any node name may be claimed.
    Unchecked,
    /// CA-verified mode: the names of the peer's verified certificate; the peer may only claim a
    /// node name whose host they name.
    Names(CertNames),
}

/// What the handshake learns from the TLS session it runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelBinding {
    /// The session's 32-byte exporter value ([`TLS_EXPORTER_LABEL`], empty context): equal at both
    /// ends of one TLS session, different for two sessions (a man in the middle).
    pub exporter: [u8; 32],
    /// The peer's certificate names (CA-verified mode) or [`PeerCertificate::Unchecked`].
    pub peer_certificate: PeerCertificate,
}

impl ChannelBinding {
    /// A binding in self-signed mode: the exporter only.
    pub fn unchecked(exporter: [u8; 32]) -> ChannelBinding {
        ChannelBinding { exporter, peer_certificate: PeerCertificate::Unchecked }
    }
}

/// What the peer said about itself, and what was negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node name. Before the peer has confirmed the key ([`HandshakeEvent::PeerHello`])
    /// it is not in the atom table; afterwards it is.
    pub name: NodeName,
    /// The peer's creation: a different one than before means the peer node restarted.
    pub creation: u32,
    /// The negotiated protocol version (highest common).
    pub version: u16,
    /// The negotiated capabilities (both sides offer them).
    pub flags: Flags,
    /// The capabilities the peer advertised, including bits we do not know.
    pub peer_flags: Flags,
}

/// Something the driver should know or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeEvent {
    /// The peer's HELLO arrived and is acceptable (not yet authenticated): for logging, and so
    /// the driver knows early which node is on the line.
    PeerHello(PeerInfo),
    /// Acceptor only: the peer proved it knows the key. The driver must now call
    /// [`Handshake::accept`] or [`Handshake::reject_duplicate`] (see [`keep_initiated`]).
    DecisionNeeded(PeerInfo),
    /// The handshake succeeded; the connection is up. Take leftover bytes with
    /// [`Handshake::take_leftover`] and feed them to the connection.
    Established(PeerInfo),
}

/// Why a handshake failed. Each message says what is most likely wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer's key confirmation does not match: it uses a different cookie (or someone in
    /// between relays two TLS sessions).
    #[error("the peer's cookie proof is wrong: both nodes must use the same cookie (SNOW_COOKIE / SNOW_COOKIE_FILE)")]
    WrongCookie,
    /// No protocol version in common.
    #[error(
        "no common protocol version: we speak {ours_min}..={ours_max}, the peer {theirs_min}..={theirs_max}; \
         upgrade the older node (all nodes of a cluster must speak a common version)"
    )]
    VersionMismatch {
        /// Oldest version we speak.
        ours_min: u16,
        /// Newest version we speak.
        ours_max: u16,
        /// Oldest version the peer speaks.
        theirs_min: u16,
        /// Newest version the peer speaks.
        theirs_max: u16,
    },
    /// The peer broke the message format.
    #[error("malformed handshake message from the peer: {0}")]
    BadMessage(&'static str),
    /// We dialed one node and another answered (stale snow-epmd entry, port reused).
    #[error("dialed {expected} but {got} answered: its snow-epmd entry is probably stale")]
    NameMismatch {
        /// The node we meant to reach.
        expected: NodeName,
        /// The node that answered.
        got: NodeName,
    },
    /// The peer dialed another node than us.
    #[error("the peer wanted to reach {wanted}, but this is {local}: its snow-epmd entry is probably stale")]
    NotForUs {
        /// The node the peer meant to reach.
        wanted: NodeName,
        /// Our name.
        local: NodeName,
    },
    /// The peer has our own name.
    #[error("the peer claims our own name {0}: a node cannot connect to itself, or two nodes share a name")]
    SameName(NodeName),
    /// In CA-verified mode, the peer claims a node name whose host its certificate does not name.
    #[error(
        "the peer claims to be {claimed}, but its certificate ({names}) does not name host {}: each host needs a \
         certificate naming the host of its nodes (DNS or IP subject alternative name)",
        claimed.host()
    )]
    CertificateNameMismatch {
        /// The node name the peer claimed.
        claimed: NodeName,
        /// What its certificate names.
        names: CertNames,
    },
    /// The peer sent back our own key-exchange message, or one made for our side.
    #[error("the peer sent our own key-exchange message back: refusing a reflection attempt")]
    ReflectedChallenge,
    /// The acceptor keeps another connection with us (simultaneous connect, or already connected).
    #[error("the peer already has a connection with this node; that one is used")]
    Duplicate,
    /// We refused the peer's connection as a duplicate ([`Handshake::reject_duplicate`]).
    #[error("refused a duplicate connection from the peer; the existing one is used")]
    DuplicateRejected,
    /// The deadline passed.
    #[error("handshake timed out while {0}; the peer is slow, overloaded, or not a Snow node")]
    Timeout(&'static str),
    /// The peer closed after receiving our key confirmation: it did not accept it.
    #[error("the peer closed the connection after checking our cookie proof: the cookies most likely differ")]
    ProofRejected,
    /// The peer closed the connection.
    #[error("the peer closed the connection while {0}")]
    Closed(&'static str),
}

#[derive(Clone, Debug)]
enum State {
    AwaitHello,
    AwaitPake,
    AwaitConfirm,
    AwaitDecision,
    AwaitStatus,
    Established,
    Failed(HandshakeError),
}

impl State {
    fn doing(&self) -> &'static str {
        match self {
            State::AwaitHello => "waiting for the peer's HELLO",
            State::AwaitPake => "waiting for the peer's key exchange message",
            State::AwaitConfirm => "waiting for the peer's cookie proof",
            State::AwaitDecision => "waiting for the local duplicate-connection decision",
            State::AwaitStatus => "waiting for the peer's final status",
            State::Established => "established",
            State::Failed(_) => "failed",
        }
    }
}

/// The four messages the confirmations cover, as payloads, by who sent them.
#[derive(Default)]
struct Transcript {
    our_hello: Vec<u8>,
    peer_hello: Vec<u8>,
    our_pake: Vec<u8>,
    peer_pake: Vec<u8>,
}

impl Transcript {
    fn hash(&self, side: Side) -> [u8; 32] {
        match side {
            Side::Initiator => {
                key_exchange::transcript_hash([&self.our_hello, &self.peer_hello, &self.our_pake, &self.peer_pake])
            }
            Side::Acceptor => {
                key_exchange::transcript_hash([&self.peer_hello, &self.our_hello, &self.peer_pake, &self.our_pake])
            }
        }
    }
}

/// One side of a handshake. See the module documentation for the exchange.
pub struct Handshake {
    config: HandshakeConfig,
    side: Side,
    /// Initiator: the node we dialed.
    expected: Option<NodeName>,
    channel: ChannelBinding,
    /// The caller's random bytes for our key-exchange scalar (zeroed on drop).
    random: Zeroizing<[u8; 32]>,
    exchange: Option<KeyExchange>,
    session_key: Option<SessionKey>,
    transcript: Transcript,
    peer: Option<PeerInfo>,
    /// Whether the peer's key confirmation verified.
    peer_authenticated: bool,
    state: State,
    deadline: Instant,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    events: VecDeque<HandshakeEvent>,
}

impl Handshake {
    /// Starts the dialing side towards `expected`. `channel` comes from the TLS session, `random`
    /// is 32 fresh random bytes from the caller's CSPRNG (the key exchange's secret).
    pub fn initiator(
        config: HandshakeConfig,
        expected: NodeName,
        channel: ChannelBinding,
        random: [u8; 32],
        now: Instant,
    ) -> Handshake {
        let mut hs = Handshake::new(config, Side::Initiator, Some(expected.clone()), channel, random, now);
        hs.send_hello();
        let exchange = KeyExchange::start(
            Side::Initiator,
            &hs.config.key,
            &hs.channel.exporter,
            &hs.config.local,
            &expected,
            &hs.random,
        );
        hs.send_pake(exchange);
        hs
    }

    /// Starts the accepting side. Arguments as for [`Handshake::initiator`].
    pub fn acceptor(config: HandshakeConfig, channel: ChannelBinding, random: [u8; 32], now: Instant) -> Handshake {
        let mut hs = Handshake::new(config, Side::Acceptor, None, channel, random, now);
        hs.send_hello();
        hs
    }

    fn new(
        config: HandshakeConfig,
        side: Side,
        expected: Option<NodeName>,
        channel: ChannelBinding,
        random: [u8; 32],
        now: Instant,
    ) -> Handshake {
        let deadline = now.checked_add(config.timeout).unwrap_or(now);
        Handshake {
            config,
            side,
            expected,
            channel,
            random: Zeroizing::new(random),
            exchange: None,
            session_key: None,
            transcript: Transcript::default(),
            peer: None,
            peer_authenticated: false,
            state: State::AwaitHello,
            deadline,
            inbuf: Vec::new(),
            out: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Which side we are.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Processes bytes received from the peer. Returns the error that ended the handshake, if it
    /// has ended in failure (now or before). Bytes after the last handshake message are kept for
    /// the connection ([`Handshake::take_leftover`]).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), HandshakeError> {
        if self.is_finished() && !self.is_established() {
            return self.result();
        }
        self.inbuf.extend_from_slice(bytes);
        if matches!(self.state, State::AwaitDecision) && !self.inbuf.is_empty() {
            // The initiator must wait for our verdict before sending anything more.
            self.fail(HandshakeError::BadMessage("data sent before the acceptor's final status"));
        }
        while !matches!(self.state, State::Established | State::Failed(_) | State::AwaitDecision) {
            if self.inbuf.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes([self.inbuf[0], self.inbuf[1], self.inbuf[2], self.inbuf[3]]) as usize;
            if len > MAX_HANDSHAKE_FRAME {
                self.fail(HandshakeError::BadMessage("frame longer than the 1024-byte handshake limit"));
                break;
            }
            if self.inbuf.len() < 4 + len {
                break;
            }
            let frame: Vec<u8> = self.inbuf.drain(..4 + len).skip(4).collect();
            if let Err(err) = self.handle_message(&frame) {
                self.fail(err);
            }
        }
        self.result()
    }

    /// The peer closed its side of the connection.
    pub fn feed_eof(&mut self) -> Result<(), HandshakeError> {
        if !matches!(self.state, State::Established | State::Failed(_)) {
            let err = match (&self.state, self.side) {
                (State::AwaitConfirm, Side::Initiator) => HandshakeError::ProofRejected,
                (state, _) => HandshakeError::Closed(state.doing()),
            };
            self.fail(err);
        }
        self.result()
    }

    /// Bytes to send to the peer (empty when there is nothing to send).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<HandshakeEvent> {
        self.events.pop_front()
    }

    /// When the driver must call [`Handshake::handle_timeout`]; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_finished()).then_some(self.deadline)
    }

    /// Tells the machine the time; past the deadline an unfinished handshake fails with
    /// [`HandshakeError::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        if !self.is_finished() && now >= self.deadline {
            let doing = self.state.doing();
            self.fail(HandshakeError::Timeout(doing));
        }
        self.result()
    }

    /// Whether the handshake has succeeded or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Established | State::Failed(_))
    }

    /// Whether the connection is up.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    /// Whether the peer has proven it knows the cookie (its key confirmation verified), whatever
    /// happened afterwards. A handshake that ends without it is a failed authentication.
    pub fn peer_authenticated(&self) -> bool {
        self.peer_authenticated
    }

    /// The error that ended the handshake, or `Ok` while it runs or once it has succeeded.
    pub fn result(&self) -> Result<(), HandshakeError> {
        match &self.state {
            State::Failed(err) => Err(err.clone()),
            _ => Ok(()),
        }
    }

    /// The peer's details, once its HELLO has been accepted.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// Received bytes that follow the handshake (the first connection frames), once established.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        if self.is_established() {
            std::mem::take(&mut self.inbuf)
        } else {
            Vec::new()
        }
    }

    /// Acceptor, after [`HandshakeEvent::DecisionNeeded`]: keep this connection. Sends our key
    /// confirmation and STATUS ok; the handshake is then established. Ignored in any other state.
    pub fn accept(&mut self) {
        if matches!(self.state, State::AwaitDecision) {
            self.send_confirm();
            self.send_status(status::OK);
            self.state = State::Established;
            self.session_key = None;
            if let Some(peer) = self.peer.clone() {
                self.events.push_back(HandshakeEvent::Established(peer));
            }
        }
    }

    /// Acceptor, after [`HandshakeEvent::DecisionNeeded`]: refuse this connection because another
    /// one with the same peer is kept. Sends our key confirmation (so the peer can trust the
    /// verdict) and STATUS duplicate; the driver writes the output, then closes. Ignored in any
    /// other state.
    pub fn reject_duplicate(&mut self) {
        if matches!(self.state, State::AwaitDecision) {
            self.send_confirm();
            self.send_status(status::DUPLICATE);
            self.state = State::Failed(HandshakeError::DuplicateRejected);
            self.session_key = None;
        }
    }

    fn fail(&mut self, err: HandshakeError) {
        // Nothing more goes to a peer that failed: the driver just closes.
        self.out.clear();
        self.inbuf.clear();
        self.exchange = None;
        self.session_key = None;
        self.state = State::Failed(err);
    }

    fn handle_message(&mut self, msg: &[u8]) -> Result<(), HandshakeError> {
        let mut r = Reader::new(msg);
        let tag = r.u8("empty message").map_err(HandshakeError::BadMessage)?;
        match (&self.state, tag) {
            (State::AwaitHello, tag::HELLO) => self.on_hello(msg, &mut r),
            (State::AwaitPake, tag::PAKE) => self.on_pake(msg, &mut r),
            (State::AwaitConfirm, tag::CONFIRM) => self.on_confirm(&mut r),
            (State::AwaitStatus, tag::STATUS) => self.on_status(&mut r),
            _ => Err(HandshakeError::BadMessage("unexpected message for this step of the handshake")),
        }
    }

    fn on_hello(&mut self, msg: &[u8], r: &mut Reader<'_>) -> Result<(), HandshakeError> {
        let hello = Hello::read(r).map_err(HandshakeError::BadMessage)?;
        let local = &self.config.local;
        if hello.name == *local {
            return Err(HandshakeError::SameName(hello.name));
        }
        if let Some(expected) = &self.expected {
            if hello.name != *expected {
                return Err(HandshakeError::NameMismatch { expected: expected.clone(), got: hello.name });
            }
        }
        if let Some(wanted) = hello.to.filter(|to| to != local) {
            return Err(HandshakeError::NotForUs { wanted, local: local.clone() });
        }
        if let PeerCertificate::Names(names) = &self.channel.peer_certificate {
            if !names.allows(&hello.name) {
                return Err(HandshakeError::CertificateNameMismatch { claimed: hello.name, names: names.clone() });
            }
        }
        let ours = self.config.versions;
        let version = ours.negotiate(hello.versions).ok_or(HandshakeError::VersionMismatch {
            ours_min: ours.min,
            ours_max: ours.max,
            theirs_min: hello.versions.min,
            theirs_max: hello.versions.max,
        })?;
        let peer = PeerInfo {
            name: hello.name,
            creation: hello.creation,
            version,
            flags: self.config.flags.intersect(hello.flags),
            peer_flags: hello.flags,
        };
        self.transcript.peer_hello = msg.to_vec();
        if self.side == Side::Acceptor {
            let exchange = KeyExchange::start(
                Side::Acceptor,
                &self.config.key,
                &self.channel.exporter,
                &peer.name,
                &self.config.local,
                &self.random,
            );
            self.send_pake(exchange);
        }
        self.events.push_back(HandshakeEvent::PeerHello(peer.clone()));
        self.peer = Some(peer);
        self.state = State::AwaitPake;
        Ok(())
    }

    fn on_pake(&mut self, msg: &[u8], r: &mut Reader<'_>) -> Result<(), HandshakeError> {
        let message = r.bytes(PAKE_MESSAGE_LEN, "PAKE shorter than 33 bytes").map_err(HandshakeError::BadMessage)?;
        r.finish("PAKE longer than 33 bytes").map_err(HandshakeError::BadMessage)?;
        let exchange = self.exchange.take().ok_or(HandshakeError::BadMessage("PAKE before HELLO"))?;
        let key = exchange.finish(message).map_err(|e| match e {
            PakeError::Reflected => HandshakeError::ReflectedChallenge,
            PakeError::Corrupt => HandshakeError::BadMessage("PAKE message is not a valid curve point"),
        })?;
        self.transcript.peer_pake = msg.to_vec();
        self.session_key = Some(key);
        if self.side == Side::Initiator {
            self.send_confirm();
        }
        self.state = State::AwaitConfirm;
        Ok(())
    }

    fn on_confirm(&mut self, r: &mut Reader<'_>) -> Result<(), HandshakeError> {
        let confirm = r.bytes(CONFIRM_LEN, "CONFIRM shorter than 32 bytes").map_err(HandshakeError::BadMessage)?;
        r.finish("CONFIRM longer than 32 bytes").map_err(HandshakeError::BadMessage)?;
        let key = self.session_key.as_ref().ok_or(HandshakeError::BadMessage("CONFIRM before PAKE"))?;
        let transcript = self.transcript.hash(self.side);
        let expected = key.confirmation(self.side.other(), &self.channel.exporter, &transcript);
        expected.verify_slice(confirm).map_err(|_| HandshakeError::WrongCookie)?;
        self.peer_authenticated = true;
        // The peer has proven the cookie: its name may now enter the atom table.
        let peer = self.peer.as_mut().ok_or(HandshakeError::BadMessage("CONFIRM before HELLO"))?;
        peer.name = peer.name.to_interned();
        let peer = peer.clone();
        match self.side {
            Side::Acceptor => {
                self.state = State::AwaitDecision;
                self.events.push_back(HandshakeEvent::DecisionNeeded(peer));
            }
            Side::Initiator => {
                self.session_key = None;
                self.state = State::AwaitStatus;
            }
        }
        Ok(())
    }

    fn on_status(&mut self, r: &mut Reader<'_>) -> Result<(), HandshakeError> {
        let verdict = r.u8("STATUS without its status byte").map_err(HandshakeError::BadMessage)?;
        r.finish("STATUS longer than 1 byte").map_err(HandshakeError::BadMessage)?;
        match verdict {
            status::OK => {
                self.state = State::Established;
                if let Some(peer) = self.peer.clone() {
                    self.events.push_back(HandshakeEvent::Established(peer));
                }
                Ok(())
            }
            status::DUPLICATE => Err(HandshakeError::Duplicate),
            _ => Err(HandshakeError::BadMessage("unknown STATUS value")),
        }
    }

    fn send_hello(&mut self) {
        let hello = Hello {
            name: self.config.local.clone(),
            to: self.expected.clone(),
            versions: self.config.versions,
            flags: self.config.flags,
            creation: self.config.creation,
        };
        let mut msg = Vec::with_capacity(64);
        hello.write(&mut msg);
        put_frame(&mut self.out, &msg);
        self.transcript.our_hello = msg;
    }

    fn send_pake(&mut self, exchange: KeyExchange) {
        let mut msg = Vec::with_capacity(1 + PAKE_MESSAGE_LEN);
        msg.push(tag::PAKE);
        msg.extend_from_slice(exchange.message());
        put_frame(&mut self.out, &msg);
        self.transcript.our_pake = msg;
        self.exchange = Some(exchange);
    }

    fn send_confirm(&mut self) {
        let Some(key) = &self.session_key else { return };
        let transcript = self.transcript.hash(self.side);
        let confirm = key.confirmation(self.side, &self.channel.exporter, &transcript).finalize().into_bytes();
        let mut msg = Vec::with_capacity(1 + CONFIRM_LEN);
        msg.push(tag::CONFIRM);
        msg.extend_from_slice(&confirm);
        put_frame(&mut self.out, &msg);
    }

    fn send_status(&mut self, verdict: u8) {
        put_frame(&mut self.out, &[tag::STATUS, verdict]);
    }
}

/// The HELLO message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) name: NodeName,
    pub(crate) to: Option<NodeName>,
    pub(crate) versions: VersionRange,
    pub(crate) flags: Flags,
    pub(crate) creation: u32,
}

impl Hello {
    /// Layout: tag, version min (u16), version max (u16), flags (u64), creation (u32), name
    /// (u16 length + text), to (u16 length + text, empty if unknown). Bytes after these fields
    /// are ignored (room for later versions) but covered by the key confirmations.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::HELLO);
        out.extend_from_slice(&self.versions.min.to_be_bytes());
        out.extend_from_slice(&self.versions.max.to_be_bytes());
        out.extend_from_slice(&self.flags.bits().to_be_bytes());
        out.extend_from_slice(&self.creation.to_be_bytes());
        put_name(out, Some(&self.name));
        put_name(out, self.to.as_ref());
    }

    /// Reads the fields after the tag. Names are not added to the atom table.
    fn read(r: &mut Reader<'_>) -> Result<Hello, &'static str> {
        let min = r.u16("HELLO truncated in its version range")?;
        let max = r.u16("HELLO truncated in its version range")?;
        if min > max {
            return Err("HELLO has an empty version range (min > max)");
        }
        let flags = Flags::from_bits(r.u64("HELLO truncated in its flags")?);
        let creation = r.u32("HELLO truncated in its creation")?;
        if creation == 0 {
            return Err("HELLO has creation 0 (creations are nonzero)");
        }
        let name = r.opt_name("HELLO has a missing or invalid node name")?.ok_or("HELLO has an empty node name")?;
        let to = r.opt_name("HELLO has an invalid recipient name")?;
        r.rest();
        Ok(Hello { name, to, versions: VersionRange { min, max }, flags, creation })
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
