//! The output scheduler of one connection (shared/ARCHITECTURE.md, "A remote send"; PROTOCOL.md section 3): what the writer task sends next.
//!
//! - An **urgent lane** (TICK and node-level messages with no sending process) always goes first.
//! - Every sending process has its own **lane**, a FIFO: signals from one process to another must
//!   arrive in the order they were sent (a message, then the sender's EXIT, never the other way
//!   round), so a lane's next message waits until its current one is completely out.
//! - Lanes take turns, one unit per turn: a whole small message, or one fragment of a large one.
//!   A 100 MB message is cut into fragments ([`crate::fragment`], 64 KiB by default) that
//!   interleave with everything else, so it never holds back ticks or other senders.
//! - A new fragmented message starts only while the fragmented messages already started stay
//!   within the peer's reassembly limits ([`OutboundConfig::reassembly`], PROTOCOL.md 3.2): a
//!   lane whose next message would exceed them waits its turn until others finish, so the peer
//!   never has to refuse a well-behaved sender.
//! - A **byte budget** bounds the queue: [`Outbound::try_push`] answers [`Busy`] while the queued
//!   bytes are at or over it, so the driver makes senders wait instead of buffering without end.
//!   (A message is accepted whenever the queue is under budget, so one message larger than the
//!   budget still goes through.)
//! - [`Outbound::pop_batch`] coalesces many frames into one buffer for one TLS write.
//! - With the atom cache negotiated ([`OutboundConfig::atom_cache`], PROTOCOL.md 4.4) the queue
//!   owns the sender's side of the cache ([`CacheEncoder`]): [`Outbound::encode`] writes a frame
//!   with it, and the queue tells the cache when each frame is written in full (a whole message
//!   popped, the last fragment of a fragmented one, or [`Outbound::written_through`]), because
//!   only the order in which frames leave, not the order they were encoded in, says what the
//!   receiver has seen.
//!
//! Everything popped is already framed (4-byte big-endian length + payload).

use std::collections::{HashMap, VecDeque};

use crate::dist::atom_cache::{CacheEncoder, Uses};
use crate::dist::control::Outgoing;
use crate::fragment::{Fragmenter, ReassemblyLimits, DEFAULT_FRAGMENT_SIZE};

/// Default byte budget of one connection's queue.
pub const DEFAULT_BYTE_BUDGET: usize = 64 << 20;

/// Tuning of an [`Outbound`] queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Data bytes per fragment. Messages longer than one and a half fragments are fragmented;
    /// shorter ones go whole, so that the common power-of-two payloads (a 64 KiB binary encodes
    /// to a few bytes over 64 KiB) are not cut into a full fragment and a tiny one that the peer
    /// must then reassemble. Such a message holds the connection for at most 1.5 fragments.
    pub fragment_size: usize,
    /// Queued bytes at which [`Outbound::try_push`] says [`Busy`].
    pub byte_budget: usize,
    /// Whether the peer accepts fragments ([`crate::dist::Flags::FRAGMENTS`] negotiated). Without
    /// them, large messages go out whole and hold the connection while they do.
    pub fragments: bool,
    /// The peer's reassembly limits: fragmented messages started and not finished stay within
    /// its sequence count and byte limits.
    pub reassembly: ReassemblyLimits,
    /// Whether the atom cache was negotiated ([`crate::dist::Flags::ATOM_CACHE`]): then
    /// [`Outbound::encode`] writes cached frames.
    pub atom_cache: bool,
}

impl OutboundConfig {
    /// Longest message sent whole when fragments are allowed.
    fn fragment_threshold(&self) -> usize {
        self.fragment_size.saturating_add(self.fragment_size / 2)
    }
}

impl Default for OutboundConfig {
    fn default() -> OutboundConfig {
        OutboundConfig {
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            byte_budget: DEFAULT_BYTE_BUDGET,
            fragments: true,
            reassembly: ReassemblyLimits::default(),
            atom_cache: false,
        }
    }
}

/// Which queue a message goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Ahead of everything: ticks and node-level messages.
    Urgent,
    /// The FIFO of one sending process (e.g. its local pid number).
    Sender(u64),
}

/// The queue is at its byte budget; the message is handed back so the caller can retry later.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the connection's send queue is full ({queued} bytes queued); wait until it drains")]
pub struct Busy {
    /// The message that was not queued.
    pub payload: Vec<u8>,
    /// Bytes queued at the time.
    pub queued: usize,
}

/// An encoded message payload (no frame header) and the atom cache entries it uses.
#[must_use = "a frame that uses cache entries must be queued or reported written, or its entries stay pinned"]
#[derive(Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The payload.
    pub payload: Vec<u8>,
    uses: Uses,
}

impl Encoded {
    /// A payload encoded in full (no cache entries).
    pub fn plain(payload: Vec<u8>) -> Encoded {
        Encoded { payload, uses: Uses::NONE }
    }

    /// The cache entries it uses.
    pub fn uses(&self) -> &Uses {
        &self.uses
    }
}

/// The large message a lane is sending.
struct Current {
    fragmenter: Fragmenter,
    /// Its length.
    len: usize,
    /// Its data bytes not yet sent.
    remaining: usize,
    /// What it uses of the atom cache: reported written with its last fragment.
    uses: Uses,
}

#[derive(Default)]
struct LaneQueue {
    messages: VecDeque<Encoded>,
    current: Option<Current>,
}

impl LaneQueue {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.current.is_none()
    }
}

/// The output queue of one connection. See the module documentation.
pub struct Outbound {
    config: OutboundConfig,
    /// The sender's side of the atom cache, if negotiated.
    cache: Option<CacheEncoder>,
    /// Frame bytes (headers included) that left the queue or were written through.
    written_bytes: u64,
    urgent: VecDeque<Encoded>,
    lanes: HashMap<u64, LaneQueue>,
    /// Lanes with something to send, in turn order.
    ring: VecDeque<u64>,
    queued: usize,
    /// The most bytes ever queued at once.
    high_water: usize,
    next_seq: u64,
    /// Fragmented messages started and not finished, and the sum of their lengths.
    open_sequences: usize,
    open_bytes: usize,
}

impl Outbound {
    /// An empty queue.
    pub fn new(config: OutboundConfig) -> Outbound {
        let config = OutboundConfig { fragment_size: config.fragment_size.max(1), ..config };
        Outbound {
            cache: config.atom_cache.then(CacheEncoder::new),
            config,
            written_bytes: 0,
            urgent: VecDeque::new(),
            lanes: HashMap::new(),
            ring: VecDeque::new(),
            queued: 0,
            high_water: 0,
            next_seq: 0,
            open_sequences: 0,
            open_bytes: 0,
        }
    }

    /// Queues one message payload (an encoded control message, without frame header) on `lane`,
    /// unless the queue is at its byte budget.
    pub fn try_push(&mut self, lane: Lane, payload: Vec<u8>) -> Result<(), Busy> {
        if self.queued >= self.config.byte_budget {
            return Err(Busy { payload, queued: self.queued });
        }
        self.push(lane, payload);
        Ok(())
    }

    /// Queues a message whatever the budget: for ticks and other tiny node-level messages that
    /// must never wait behind application data.
    pub fn push(&mut self, lane: Lane, payload: Vec<u8>) {
        self.push_encoded(lane, Encoded::plain(payload));
    }

    /// Encodes `msg` for this connection: a cached frame if the atom cache was negotiated
    /// (PROTOCOL.md 4.4), else in full. Hand the result to [`Outbound::push_encoded`], or write
    /// it yourself and call [`Outbound::written_through`].
    pub fn encode(&mut self, msg: &Outgoing<'_>) -> Encoded {
        self.encode_sized(msg, msg.term_len())
    }

    /// [`Outbound::encode`] for a caller that knows the message term's size in full
    /// ([`Outgoing::term_len`]): the one buffer is sized from it.
    pub fn encode_sized(&mut self, msg: &Outgoing<'_>, term_len: usize) -> Encoded {
        match &mut self.cache {
            Some(cache) => {
                let mut payload = Outgoing::buffer(term_len);
                let uses = cache.encode(msg, &mut payload);
                Encoded { payload, uses }
            }
            None => Encoded::plain(msg.to_bytes()),
        }
    }

    /// Whether [`Outbound::encode`] writes cached frames.
    pub fn caches(&self) -> bool {
        self.cache.is_some()
    }

    /// A message encoded here was written to the connection directly, ahead of everything still
    /// queued (the caller holds what orders writes): its cache definitions are now known.
    pub fn written_through(&mut self, encoded: &Encoded) {
        self.written_bytes += 4 + encoded.payload.len() as u64;
        self.written(&encoded.uses);
    }

    /// Frame bytes (4-byte headers included) popped or written through so far: what this
    /// connection put on the wire before encryption.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    fn written(&mut self, uses: &Uses) {
        if let (false, Some(cache)) = (uses.is_empty(), &mut self.cache) {
            cache.written(uses);
        }
    }

    /// Queues an encoded message whatever the budget ([`Outbound::push`]).
    pub fn push_encoded(&mut self, lane: Lane, payload: Encoded) {
        self.queued += payload.payload.len();
        self.high_water = self.high_water.max(self.queued);
        match lane {
            Lane::Urgent => self.urgent.push_back(payload),
            Lane::Sender(key) => {
                let queue = self.lanes.entry(key).or_default();
                if queue.is_empty() {
                    self.ring.push_back(key);
                }
                queue.messages.push_back(payload);
            }
        }
    }

    /// Payload bytes queued and not yet popped.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// The most bytes that were ever queued at once: what the queue cost at its peak.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// Whether anything is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.ring.is_empty()
    }

    /// Whether [`Outbound::try_push`] would accept a message now.
    pub fn has_room(&self) -> bool {
        self.queued < self.config.byte_budget
    }

    /// Appends framed units to `out` until it holds at least `max_bytes` or the queue is empty,
    /// taking urgent messages first and then one unit per lane in turn. At least one unit is taken
    /// if any is queued, even if it alone exceeds `max_bytes`. Returns the number of frames added.
    pub fn pop_batch_into(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let mut frames = 0;
        while frames == 0 || out.len() - start < max_bytes {
            if !self.pop_unit(out) {
                break;
            }
            frames += 1;
        }
        self.written_bytes += (out.len() - start) as u64;
        frames
    }

    /// [`Outbound::pop_batch_into`] into a new buffer (empty when nothing is queued).
    pub fn pop_batch(&mut self, max_bytes: usize) -> Vec<u8> {
        let mut out = Vec::new();
        self.pop_batch_into(max_bytes, &mut out);
        out
    }

    /// Fragmented messages started and not yet finished.
    pub fn open_sequences(&self) -> usize {
        self.open_sequences
    }

    /// Whether a fragmented message of `len` bytes may start now without the peer's open
    /// sequences exceeding its reassembly limits. With none open, any message may start (one
    /// over the peer's message limit is its to refuse).
    fn may_open(&self, len: usize) -> bool {
        let limits = &self.config.reassembly;
        self.open_sequences == 0
            || (self.open_sequences < limits.max_in_flight
                && self.open_bytes.saturating_add(len) <= limits.max_in_flight_bytes)
    }

    /// Appends the next framed unit; false if nothing is queued.
    fn pop_unit(&mut self, out: &mut Vec<u8>) -> bool {
        if let Some(message) = self.urgent.pop_front() {
            self.queued -= message.payload.len();
            put_whole(out, &message.payload);
            self.written(&message.uses);
            return true;
        }
        // A lane that would open a sequence beyond the peer's limits passes its turn. Some lane
        // can always go: with sequences open, their lanes can; with none, anything may start.
        for _ in 0..self.ring.len() {
            let Some(key) = self.ring.pop_front() else { return false };
            let Some(queue) = self.lanes.get(&key) else { continue };
            let starts_sequence = queue.current.is_none()
                && queue
                    .messages
                    .front()
                    .is_some_and(|m| self.config.fragments && m.payload.len() > self.config.fragment_threshold());
            if starts_sequence && !queue.messages.front().is_some_and(|m| self.may_open(m.payload.len())) {
                self.ring.push_back(key);
                continue;
            }
            self.pop_from(key, out);
            return true;
        }
        false
    }

    /// Appends the next unit of lane `key` (which has one) and gives the lane its next turn.
    fn pop_from(&mut self, key: u64, out: &mut Vec<u8>) {
        let Some(queue) = self.lanes.get_mut(&key) else { return };
        let mut written = None;
        if queue.current.is_none() {
            if let Some(Encoded { payload, uses }) = queue.messages.pop_front() {
                if self.config.fragments && payload.len() > self.config.fragment_threshold() {
                    let len = payload.len();
                    let fragmenter = Fragmenter::new(self.next_seq, payload, self.config.fragment_size);
                    queue.current = Some(Current { fragmenter, len, remaining: len, uses });
                    self.next_seq = self.next_seq.wrapping_add(1);
                    self.open_sequences += 1;
                    self.open_bytes += len;
                } else {
                    self.queued -= payload.len();
                    put_whole(out, &payload);
                    written = Some(uses);
                }
            }
        }
        if let Some(current) = &mut queue.current {
            let header_at = out.len();
            out.extend_from_slice(&[0; 4]);
            current.fragmenter.write_next(out);
            let frame_len = (out.len() - header_at - 4) as u32;
            out[header_at..header_at + 4].copy_from_slice(&frame_len.to_be_bytes());
            let data = current.remaining.min(self.config.fragment_size);
            current.remaining -= data;
            self.queued -= data;
            if current.fragmenter.is_done() {
                self.open_sequences -= 1;
                self.open_bytes -= current.len;
                written = Some(current.uses);
                queue.current = None;
            }
        }
        if queue.is_empty() {
            self.lanes.remove(&key);
        } else {
            self.ring.push_back(key);
        }
        if let Some(uses) = written {
            self.written(&uses);
        }
    }
}

fn put_whole(out: &mut Vec<u8>, payload: &[u8]) {
    out.reserve(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::control::tag;
    use crate::fragment::{is_fragment, Reassembler, ReassemblyLimits};
    use crate::frame::FrameDecoder;

    /// Decodes a byte stream back into whole messages, in arrival order.
    struct Receiver {
        frames: FrameDecoder,
        reassembler: Reassembler,
    }

    impl Receiver {
        fn new() -> Receiver {
            let limits = ReassemblyLimits { max_message: 200 << 20, ..ReassemblyLimits::default() };
            Receiver { frames: FrameDecoder::new(1 << 20), reassembler: Reassembler::new(limits) }
        }

        fn receive(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
            self.frames.feed(bytes);
            let mut messages = Vec::new();
            while let Some(frame) = self.frames.next_frame().unwrap() {
                if is_fragment(&frame) {
                    messages.extend(self.reassembler.push(&frame).unwrap());
                } else {
                    messages.push(frame);
                }
            }
            messages
        }
    }

    fn msg(marker: u8, len: usize) -> Vec<u8> {
        let mut m = vec![marker; len];
        m[0] = tag::SEND;
        m
    }

    #[test]
    fn huge_message_does_not_hold_back_tick_or_small_message() {
        let mut out = Outbound::new(OutboundConfig::default());
        out.push(Lane::Sender(1), msg(0xAA, 100 << 20));
        out.push(Lane::Urgent, vec![tag::TICK]);
        out.push(Lane::Sender(2), msg(0xBB, 100));
        let mut rx = Receiver::new();
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.extend(rx.receive(&out.pop_batch(256 << 10)));
        }
        assert!(seen.contains(&vec![tag::TICK]));
        assert!(seen.contains(&msg(0xBB, 100)));
        assert!(out.queued_bytes() > 99 << 20, "the big message is still mostly queued");
    }

    #[test]
    fn large_messages_reassemble_and_each_sender_stays_in_order() {
        let mut out = Outbound::new(OutboundConfig { fragment_size: 1000, ..OutboundConfig::default() });
        let sent_1 = [msg(1, 5_500), msg(2, 10), msg(3, 2_000)];
        let sent_2 = [msg(4, 3_000), msg(5, 20)];
        for m in &sent_1 {
            out.push(Lane::Sender(1), m.clone());
        }
        for m in &sent_2 {
            out.push(Lane::Sender(2), m.clone());
        }
        let mut rx = Receiver::new();
        let mut got = Vec::new();
        while !out.is_empty() {
            got.extend(rx.receive(&out.pop_batch(1500)));
            out.push(Lane::Urgent, vec![tag::TICK]);
            got.extend(rx.receive(&out.pop_batch(0)));
        }
        let from = |marker_range: std::ops::RangeInclusive<u8>| -> Vec<Vec<u8>> {
            got.iter().filter(|m| m.len() > 1 && marker_range.contains(&m[1])).cloned().collect()
        };
        assert_eq!(from(1..=3), sent_1);
        assert_eq!(from(4..=5), sent_2);
        // Sender 2's small message overtook sender 1's large one: the lanes interleaved.
        let pos = |m: &Vec<u8>| got.iter().position(|g| g == m).unwrap();
        assert!(pos(&sent_2[1]) < pos(&sent_1[0]));
        assert_eq!(out.queued_bytes(), 0);
    }

    #[test]
    fn messages_up_to_one_and_a_half_fragments_go_whole() {
        let mut out = Outbound::new(OutboundConfig { fragment_size: 1000, ..OutboundConfig::default() });
        out.push(Lane::Sender(1), msg(1, 1_500));
        out.push(Lane::Sender(1), msg(2, 1_501));
        let mut frames = FrameDecoder::new(1 << 20);
        frames.feed(&out.pop_batch(1 << 20));
        let first = frames.next_frame().unwrap().unwrap();
        assert_eq!(first, msg(1, 1_500), "1.5 fragments' worth goes out whole");
        let second = frames.next_frame().unwrap().unwrap();
        assert!(crate::fragment::is_fragment(&second), "anything longer is fragmented");
    }

    #[test]
    fn open_sequences_stay_within_the_peers_reassembly_limits() {
        // Many senders with large messages at once: the peer, with the same small limits, never
        // has to refuse a sequence, and everything arrives.
        let limits = ReassemblyLimits { max_in_flight: 3, max_in_flight_bytes: 10_000, max_message: 10_000 };
        let config = OutboundConfig { fragment_size: 500, reassembly: limits, ..OutboundConfig::default() };
        let mut out = Outbound::new(config);
        let mut sent = Vec::new();
        for lane in 0..12u8 {
            for (i, len) in [4_000, 9_000, 800, 10_000].into_iter().enumerate() {
                let m = msg(lane * 4 + i as u8, len);
                sent.push(m.clone());
                out.push(Lane::Sender(u64::from(lane)), m);
            }
        }
        let mut frames = FrameDecoder::new(1 << 20);
        let mut peer = Reassembler::new(limits);
        let mut got = 0;
        let mut most_open = 0;
        while !out.is_empty() {
            frames.feed(&out.pop_batch(700));
            while let Some(frame) = frames.next_frame().unwrap() {
                if is_fragment(&frame) {
                    got += usize::from(peer.push(&frame).expect("within the peer's limits").is_some());
                } else {
                    got += 1;
                }
                most_open = most_open.max(peer.in_flight());
            }
        }
        assert_eq!(got, sent.len());
        assert!((2..=3).contains(&most_open), "senders interleave, within the limit: {most_open}");
        assert_eq!(out.open_sequences(), 0);
    }

    #[test]
    fn lanes_take_turns() {
        let mut out = Outbound::new(OutboundConfig::default());
        for i in 0..3 {
            out.push(Lane::Sender(1), msg(10 + i, 4));
        }
        out.push(Lane::Sender(2), msg(20, 4));
        let mut rx = Receiver::new();
        let got = rx.receive(&out.pop_batch(usize::MAX));
        let markers: Vec<u8> = got.iter().map(|m| m[1]).collect();
        assert_eq!(markers, [10, 20, 11, 12]);
    }

    #[test]
    fn budget_makes_senders_wait() {
        let mut out = Outbound::new(OutboundConfig { byte_budget: 1000, ..OutboundConfig::default() });
        assert!(out.try_push(Lane::Sender(1), msg(1, 1500)).is_ok(), "an oversized message fits an empty queue");
        let busy = out.try_push(Lane::Sender(1), msg(2, 10)).unwrap_err();
        assert_eq!(busy.payload, msg(2, 10));
        assert!(!out.has_room());
        // Ticks are never refused.
        out.push(Lane::Urgent, vec![tag::TICK]);
        out.pop_batch(usize::MAX);
        assert!(out.has_room());
        assert!(out.try_push(Lane::Sender(1), busy.payload).is_ok());
    }

    #[test]
    fn batches_coalesce_and_respect_the_size_target() {
        let mut out = Outbound::new(OutboundConfig::default());
        for i in 0..100 {
            out.push(Lane::Sender(i), msg(1, 96));
        }
        let batch = out.pop_batch(1000);
        assert_eq!(batch.len(), 1000, "ten 100-byte frames");
        assert_eq!(out.pop_batch_into(usize::MAX, &mut Vec::new()), 90);
        assert!(out.pop_batch(10).is_empty());
    }

    #[test]
    fn without_fragments_large_messages_go_whole() {
        let mut out =
            Outbound::new(OutboundConfig { fragment_size: 100, fragments: false, ..OutboundConfig::default() });
        out.push(Lane::Sender(1), msg(1, 1000));
        let batch = out.pop_batch(10);
        assert_eq!(batch.len(), 1004);
        assert!(!is_fragment(&batch[4..]));
    }
}
