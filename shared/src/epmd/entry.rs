//! One node's entry in a daemon's table and what describes it: its [`Version`] under its owner,
//! its [`State`], the bytes its owner signs, which host a daemon speaks for, and the
//! [`Registration`] a node asks for. The table that holds entries and the rules for taking them
//! from gossip are in [`table`](super::table) (PROTOCOL.md 5.5).

use std::net::IpAddr;

use super::identity::Signature;
use super::wire::put_bytes16;
use crate::name::NodeName;

/// Identity of a daemon: its advertised `host:port`. Also used as the gossip peer address.
pub type DaemonId = String;

/// Version of an entry: `(owner incarnation, counter)`, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// The owner's incarnation (bumped on every daemon start).
    pub incarnation: u64,
    /// Change counter within that incarnation.
    pub counter: u64,
}

/// State of an entry as shown by `snow-epmd list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The node is registered and its registration connection is open.
    Up,
    /// The node left (tombstone); removed after the tombstone TTL.
    Down,
    /// Loaded after an owner restart; waits for the node to register again or the grace period.
    Unconfirmed,
}

impl State {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            State::Up => 0,
            State::Down => 1,
            State::Unconfirmed => 2,
        }
    }
    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<State> {
        match v {
            0 => Some(State::Up),
            1 => Some(State::Down),
            2 => Some(State::Unconfirmed),
            _ => None,
        }
    }
    /// Lowercase name, as `list` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unconfirmed => "unconfirmed",
        }
    }
    /// Up or unconfirmed: the name is taken.
    pub fn is_live(self) -> bool {
        self != State::Down
    }
}

/// One node's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full node name.
    pub name: NodeName,
    /// Address to connect to (the name's host, without IPv6 brackets).
    pub host: String,
    /// Distribution port.
    pub port: u16,
    /// Creation of this registration (nonzero). New on every registration, except when a node
    /// registering again asks for the creation it already has (see [`Table::register_requesting`](super::table::Table::register_requesting)).
    pub creation: u32,
    /// EPMD node type (77 normal, 72 hidden).
    pub node_type: u8,
    /// Highest distribution version (EPMD field).
    pub high_version: u16,
    /// Lowest distribution version (EPMD field).
    pub low_version: u16,
    /// Extra bytes from ALIVE2_REQ.
    pub extra: Vec<u8>,
    /// Up, down or unconfirmed.
    pub state: State,
    /// The owning daemon.
    pub owner: DaemonId,
    /// Version under the owner.
    pub version: Version,
    /// Local time (ms) of the last change, for `age` and the grace/TTL timers.
    pub changed_at: u64,
    /// The owner's Ed25519 signature over [`Entry::signed_payload`]; relays forward it unchanged.
    pub signature: Signature,
}

/// Domain separation for entry signatures.
const ENTRY_SIGNATURE_CONTEXT: &[u8] = b"snow-epmd-entry-v1";

impl Entry {
    /// The bytes the owner signs: every field except the local time, in the gossip layout
    /// (PROTOCOL.md 5.5).
    pub fn signed_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.name.as_str().len() + self.host.len() + self.extra.len());
        out.extend_from_slice(ENTRY_SIGNATURE_CONTEXT);
        put_bytes16(&mut out, self.name.as_str().as_bytes());
        put_bytes16(&mut out, self.host.as_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.creation.to_be_bytes());
        out.push(self.state.to_u8());
        out.push(self.node_type);
        out.extend_from_slice(&self.high_version.to_be_bytes());
        out.extend_from_slice(&self.low_version.to_be_bytes());
        put_bytes16(&mut out, &self.extra);
        put_bytes16(&mut out, self.owner.as_bytes());
        out.extend_from_slice(&self.version.incarnation.to_be_bytes());
        out.extend_from_slice(&self.version.counter.to_be_bytes());
        out
    }
}

/// The host a daemon speaks for: the host part of its id `host:port` (IPv6 without brackets).
pub fn daemon_host(id: &str) -> &str {
    if let Some(rest) = id.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    id.rsplit_once(':').map_or(id, |(h, _)| h)
}

/// Whether daemon `owner` speaks for `host`: the host of its id, compared as addresses when both
/// are IP literals, else as DNS names (case-insensitive, a trailing dot ignored).
pub fn speaks_for(owner: &str, host: &str) -> bool {
    let own = daemon_host(owner);
    match (own.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => false,
        _ => own.trim_end_matches('.').eq_ignore_ascii_case(host.trim_end_matches('.')),
    }
}

/// A new registration, as the daemon builds it from ALIVE2_REQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Full node name.
    pub name: NodeName,
    /// Distribution port.
    pub port: u16,
    /// EPMD node type.
    pub node_type: u8,
    /// Highest distribution version.
    pub high_version: u16,
    /// Lowest distribution version.
    pub low_version: u16,
    /// Extra bytes.
    pub extra: Vec<u8>,
}
