//! The node-to-node distribution protocol, sans-IO (PROTOCOL.md sections 2-4).
//!
//! Each piece is a deterministic value that a driver moves bytes and time through:
//!
//! - [`handshake`]: the cookie handshake that runs inside TLS and proves both sides know the
//!   cluster key, bound to the TLS channel; version and capability negotiation. Its cryptography
//!   (a SPAKE2 exchange and key confirmations) is [`key_exchange`]; [`cert_names`] reads which
//!   hosts a peer's certificate names, in CA-verified mode.
//! - [`atom_cache`]: a connection's cache of atoms and node names, so repeated names cost a small
//!   index on the wire (negotiated as [`Flags::ATOM_CACHE`]).
//! - [`admission`]: which incoming connections may start a handshake (failed authentications and
//!   pending handshakes per source address, pending handshakes in all).
//! - [`control`]: the control messages exchanged once a connection is up (SEND, LINK, MONITOR,
//!   TICK, mesh, global registry, process groups, remote calls, aliases) and their byte encoding.
//! - [`inbound`]: bytes of an established connection in, whole control messages out (framing,
//!   fragment reassembly, decoding, each with limits).
//! - [`liveness`]: when to send a TICK and when to declare a silent peer down.
//! - [`outbound`]: the per-connection output queue that keeps ticks and small messages flowing
//!   while a huge message is on its way, and coalesces small frames into large writes.
//! - [`peer_table`]: which connection serves each peer (connecting or up), where a frame goes,
//!   which of two connections to keep, who watches which node.
//! - [`backoff`] / [`backoff_table`]: reconnect delays with jitter, and which nodes to hold off.
//! - [`tls`]: the rustls configurations (ephemeral self-signed or CA-verified mutual TLS) and the
//!   TLS exporter value the handshake is bound to.
//!
//! Nothing here reads a clock or draws random numbers: times are passed in as [`std::time::Instant`]
//! values and randomness as bytes, so tests run with simulated time.

pub mod admission;
pub mod atom_cache;
pub mod backoff;
pub mod backoff_table;
pub mod cert_names;
pub mod control;
pub mod dial_queue;
pub mod early_refusal;
pub mod handshake;
pub mod inbound;
pub mod key_exchange;
pub mod liveness;
pub mod outbound;
pub mod peer_table;
mod spake2;
#[cfg(any(test, feature = "test-support"))]
pub mod test_ca;
pub mod tls;
mod wire;

use std::fmt;

/// The distribution protocol version this build speaks (negotiated in the handshake). Version 2
/// replaced version 1's cookie proofs (an HMAC over a challenge) with a PAKE; the HELLO layout is
/// the same in both, so a version 1 peer and this build each fail with a version mismatch.
pub const PROTOCOL_VERSION: u16 = 2;

/// Capability flags, advertised in the handshake and intersected: a feature is used on a
/// connection only if both sides advertise it. Bits a receiver does not know are ignored, so a
/// newer node can advertise more without breaking older peers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u64);

impl Flags {
    /// No capabilities.
    pub const NONE: Flags = Flags(0);
    /// Large messages may be sent as interleaved fragments.
    pub const FRAGMENTS: Flags = Flags(1 << 0);
    /// Remote spawn (SPAWN_REQ / SPAWN_REPLY).
    pub const SPAWN: Flags = Flags(1 << 1);
    /// Global registry messages (GLOBAL_*).
    pub const GLOBAL: Flags = Flags(1 << 2);
    /// Process group messages (GROUP_*).
    pub const GROUPS: Flags = Flags(1 << 3);
    /// Mesh formation: the peer sends NODE_LIST and expects us to connect to the nodes in it.
    pub const MESH: Flags = Flags(1 << 4);
    /// The sender may send control messages with tags in the extension range (0x80..=0xFF) that
    /// the receiver does not know; a receiver ignores those instead of closing the connection.
    pub const EXTENSIONS: Flags = Flags(1 << 5);
    /// Remote calls: SPAWN_REQ may carry the CALL and NO_REPLY options (PROTOCOL.md 4.3.8).
    pub const CALLS: Flags = Flags(1 << 6);
    /// Process aliases: ALIAS_SEND, a message to an alias of a process of the receiver.
    pub const ALIAS: Flags = Flags(1 << 7);
    /// The atom cache (PROTOCOL.md 4.4): cached frames name atoms, nodes and creations by an
    /// index the sender defined earlier on the connection.
    pub const ATOM_CACHE: Flags = Flags(1 << 8);
    /// Every capability this build implements.
    pub const ALL: Flags = Flags((1 << 9) - 1);

    /// Flags from their wire bits (unknown bits are kept, so they can be logged).
    pub const fn from_bits(bits: u64) -> Flags {
        Flags(bits)
    }

    /// The wire bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The capabilities both sides have.
    pub const fn intersect(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }

    /// `self` with the bits of `other` added.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// `self` without the bits of `other`.
    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Flags, &str); 9] = [
            (Flags::FRAGMENTS, "FRAGMENTS"),
            (Flags::SPAWN, "SPAWN"),
            (Flags::GLOBAL, "GLOBAL"),
            (Flags::GROUPS, "GROUPS"),
            (Flags::MESH, "MESH"),
            (Flags::EXTENSIONS, "EXTENSIONS"),
            (Flags::CALLS, "CALLS"),
            (Flags::ALIAS, "ALIAS"),
            (Flags::ATOM_CACHE, "ATOM_CACHE"),
        ];
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                f.write_str(if first { "" } else { "|" })?;
                f.write_str(name)?;
                first = false;
            }
        }
        let unknown = self.0 & !Flags::ALL.0;
        if unknown != 0 {
            write!(f, "{}{unknown:#x}", if first { "" } else { "|" })?;
            first = false;
        }
        if first {
            f.write_str("NONE")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_intersect_and_show_unknown_bits() {
        let theirs = Flags::from_bits(Flags::SPAWN.bits() | Flags::MESH.bits() | (1 << 40));
        let ours = Flags::ALL;
        assert_eq!(ours.intersect(theirs), Flags::SPAWN.with(Flags::MESH));
        assert_eq!(format!("{theirs:?}"), "SPAWN|MESH|0x10000000000");
        assert_eq!(format!("{:?}", Flags::NONE), "NONE");
        assert!(!Flags::ALL.without(Flags::GLOBAL).contains(Flags::GLOBAL));
    }
}
