//! The receiving half of an established connection: bytes in, whole control messages out.
//!
//! Frames ([`crate::frame`]) are split off the byte stream; fragments ([`crate::fragment`]) are
//! reassembled; a cached frame's atom cache definitions are applied ([`CacheDecoder`], PROTOCOL.md
//! 4.4, in arrival order of the whole messages); each whole payload is decoded
//! ([`control::decode`]). Every stage has a limit
//! (frame size, messages and bytes in reassembly, term limits), so a hostile peer can make the
//! receiver hold at most what those limits allow. After an error the connection must be closed.

use crate::binary::Binary;
use crate::dist::atom_cache::{is_cached, CacheDecoder, CacheError};
use crate::dist::control::{self, Control, ControlError, DecodeContext};
use crate::dist::Flags;
use crate::fragment::{is_fragment, FragmentError, Reassembler, ReassemblyLimits};
use crate::frame::{FrameDecoder, FrameError};
use crate::{NodeName, Pid};

/// Payloads from this size on are decoded with [`control::decode_shared`]. Below it, a binary
/// that could be shared (a quarter of the payload or more) is under 256 bytes: copying it costs
/// less than turning the payload into a shared buffer, which structured messages of a few hundred
/// bytes (a map, a tuple, a 200-byte binary) would otherwise pay on every receive.
const SHARED_PAYLOAD_MIN: usize = 1024;

/// Why the received stream is unacceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// The framing is broken (a frame over the size limit).
    #[error("bad frame from the peer: {0}")]
    Frame(#[from] FrameError),
    /// A fragment is bad or over a reassembly limit.
    #[error("bad fragment from the peer: {0}")]
    Fragment(#[from] FragmentError),
    /// A fragment arrived although fragments were not negotiated.
    #[error("the peer sent a fragment although fragmentation was not negotiated")]
    FragmentsNotNegotiated,
    /// A whole message does not decode.
    #[error("bad control message from the peer: {0}")]
    Control(#[from] ControlError),
    /// A cached frame's definitions are bad (PROTOCOL.md 4.4).
    #[error("bad atom cache definitions from the peer: {0}")]
    Cache(#[from] CacheError),
    /// A cached frame arrived although the atom cache was not negotiated.
    #[error("the peer sent a cached frame although the atom cache was not negotiated")]
    CacheNotNegotiated,
    /// A message claims a sender that is not a process of the peer (see [`Inbound::only_from`]).
    #[error(
        "{message} claims to come from {from}, a process of another node; a peer speaks only for its own processes"
    )]
    ForeignSender {
        /// The message's name.
        message: &'static str,
        /// The sender it claimed.
        from: Pid,
    },
}

/// Decodes one connection's incoming byte stream into [`Control`] messages, in arrival order of
/// their last byte.
pub struct Inbound {
    frames: FrameDecoder,
    reassembler: Reassembler,
    ctx: DecodeContext,
    /// The peer's atom cache definitions (used if [`Flags::ATOM_CACHE`] was negotiated).
    cache: CacheDecoder,
    /// The node every sender must belong to, if checked.
    peer: Option<NodeName>,
}

impl Inbound {
    /// A decoder for a connection negotiated as `ctx`, refusing frames over `max_frame` bytes.
    pub fn new(ctx: DecodeContext, max_frame: usize, limits: ReassemblyLimits) -> Inbound {
        Inbound {
            frames: FrameDecoder::new(max_frame),
            reassembler: Reassembler::new(limits),
            ctx,
            cache: CacheDecoder::new(),
            peer: None,
        }
    }

    /// Refuses messages whose sender is not a process of `peer` (the authenticated node on the
    /// other end): a signal claiming a third node's process is forged, and could fake its exits
    /// or links. Erlang's distribution rules the same.
    pub fn only_from(mut self, peer: NodeName) -> Inbound {
        self.peer = Some(peer);
        self
    }

    /// Adds received bytes (e.g. the handshake's leftover, then each read).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.frames.feed(bytes);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed, or the error that makes the
    /// connection unusable.
    pub fn next_message(&mut self) -> Result<Option<Control>, InboundError> {
        while let Some(frame) = self.frames.next_frame()? {
            let whole = if is_fragment(&frame) {
                if !self.ctx.flags.contains(Flags::FRAGMENTS) {
                    return Err(InboundError::FragmentsNotNegotiated);
                }
                match self.reassembler.push(&frame)? {
                    Some(whole) => whole,
                    None => continue,
                }
            } else {
                frame
            };
            let msg = if is_cached(&whole) {
                if !self.ctx.flags.contains(Flags::ATOM_CACHE) {
                    return Err(InboundError::CacheNotNegotiated);
                }
                let body = self.cache.open(&whole)?;
                control::decode_cached(body, &self.ctx, &self.cache)?
            } else if whole.len() >= SHARED_PAYLOAD_MIN {
                // A large payload becomes the shared buffer its large binaries are views of
                // (README, "Shared binaries"); it is moved, not copied.
                control::decode_shared(&Binary::from(whole), &self.ctx)?
            } else {
                control::decode(&whole, &self.ctx)?
            };
            if let (Some(peer), Some(from)) = (&self.peer, msg.sender()) {
                if from.node() != peer {
                    return Err(InboundError::ForeignSender { message: msg.name(), from: from.clone() });
                }
            }
            return Ok(Some(msg));
        }
        Ok(None)
    }

    /// Bytes held: unframed input plus partly reassembled messages.
    pub fn buffered_bytes(&self) -> usize {
        self.frames.buffered() + self.reassembler.buffered_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::outbound::{Lane, Outbound, OutboundConfig};
    use crate::Term;

    fn pid(id: u64) -> Pid {
        Pid::new(NodeName::parse("a@h").unwrap(), id, 1)
    }

    fn inbound(flags: Flags) -> Inbound {
        Inbound::new(DecodeContext::new(flags), 1 << 20, ReassemblyLimits::default())
    }

    #[test]
    fn outbound_to_inbound_round_trip_with_fragments() {
        let mut out = Outbound::new(OutboundConfig { fragment_size: 4096, ..OutboundConfig::default() });
        let big = Control::Send { from: pid(1), to: pid(2), msg: Term::binary(vec![7u8; 100_000]) };
        let small = Control::Send { from: pid(3), to: pid(2), msg: Term::atom("hi") };
        out.push(Lane::Sender(1), big.to_bytes());
        out.push(Lane::Sender(3), small.to_bytes());
        out.push(Lane::Urgent, Control::Tick.to_bytes());
        let mut rx = inbound(Flags::ALL);
        let mut got = Vec::new();
        while !out.is_empty() {
            // Deliver in awkward pieces, as a socket might.
            for piece in out.pop_batch(10_000).chunks(777) {
                rx.feed(piece);
                while let Some(msg) = rx.next_message().unwrap() {
                    got.push(msg);
                }
            }
        }
        assert_eq!(got, [Control::Tick, small, big]);
        assert_eq!(rx.buffered_bytes(), 0);
    }

    #[test]
    fn a_peer_speaks_only_for_its_own_processes() {
        let other = Pid::new(NodeName::parse("c@h").unwrap(), 1, 1);
        let mut rx = inbound(Flags::ALL).only_from(NodeName::parse("a@h").unwrap());
        for msg in [
            Control::Send { from: pid(1), to: pid(2), msg: Term::atom("own") },
            Control::Tick,
            Control::Exit { from: other.clone(), to: pid(2), reason: Term::atom("kill") },
        ] {
            let mut bytes = Vec::new();
            crate::frame::encode_frame(&msg.to_bytes(), &mut bytes).unwrap();
            rx.feed(&bytes);
        }
        assert!(matches!(rx.next_message(), Ok(Some(Control::Send { .. }))));
        assert_eq!(rx.next_message(), Ok(Some(Control::Tick)), "node-level messages have no sender");
        assert_eq!(rx.next_message(), Err(InboundError::ForeignSender { message: "EXIT", from: other }));
    }

    #[test]
    fn fragments_need_the_flag() {
        let mut out = Outbound::new(OutboundConfig { fragment_size: 16, ..OutboundConfig::default() });
        out.push(Lane::Sender(1), Control::Send { from: pid(1), to: pid(2), msg: Term::binary([0; 64]) }.to_bytes());
        let mut rx = inbound(Flags::ALL.without(Flags::FRAGMENTS));
        rx.feed(&out.pop_batch(1));
        assert_eq!(rx.next_message(), Err(InboundError::FragmentsNotNegotiated));
    }

    #[test]
    fn oversized_frames_and_bad_messages_are_errors() {
        let mut rx = inbound(Flags::ALL);
        rx.feed(&(2u32 << 20).to_be_bytes());
        assert!(matches!(rx.next_message(), Err(InboundError::Frame(_))));
        let mut rx = inbound(Flags::ALL);
        rx.feed(&[0, 0, 0, 2, 0x01, 0xff]);
        assert!(matches!(rx.next_message(), Err(InboundError::Control(_))));
    }
}
