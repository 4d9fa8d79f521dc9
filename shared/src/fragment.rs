//! Fragmentation of large messages, sans-IO (PROTOCOL.md section 3).
//!
//! A message larger than a chunk is sent as a *sequence* of fragments, each carried in its own
//! frame, so the writer can put ticks, control signals and other senders' small messages between
//! them: a 100 MB message never holds the connection for the time it takes to send 100 MB.
//!
//! - [`Fragmenter`] cuts one payload into fragment payloads on demand, one per call, so a writer can
//!   interleave them with anything else it has queued.
//! - [`Reassembler`] collects the fragments of any number of interleaved sequences and returns each
//!   message whole, under [`ReassemblyLimits`] (sequences in flight, bytes in flight, message size).
//!   An ABORT fragment or [`Reassembler::abort`] frees a sequence whose sender died mid-message.
//!
//! Fragments of one sequence arrive in order because a connection is one ordered stream; fragments
//! of different sequences may interleave arbitrarily. Memory grows with the data actually received
//! (never with the size a START fragment merely announces), at most twice what has arrived.

use std::collections::HashMap;

/// First byte of the fragment that opens a sequence; it carries the message's total length.
pub const FRAGMENT_START: u8 = 0xf0;
/// First byte of every later fragment of a sequence.
pub const FRAGMENT_CONTINUE: u8 = 0xf1;
/// First byte of the fragment that cancels a sequence (the sending process died mid-message).
pub const FRAGMENT_ABORT: u8 = 0xf2;

/// Header size of a START fragment: type, sequence id, total length.
pub const START_HEADER_LEN: usize = 1 + 8 + 8;
/// Header size of a CONTINUE fragment: type, sequence id.
pub const CONTINUE_HEADER_LEN: usize = 1 + 8;
/// Size of an ABORT fragment: type, sequence id.
pub const ABORT_LEN: usize = 1 + 8;

/// Default data bytes per fragment: 64 KiB, a few hundred microseconds on a fast link, so other
/// traffic waits at most that long behind a large message.
pub const DEFAULT_FRAGMENT_SIZE: usize = 64 << 10;

/// Whether `payload` is a fragment (starts with one of the fragment type bytes), as opposed to
/// another kind of frame payload. Fragment type bytes never collide with the codec's
/// [`WIRE_VERSION`](crate::codec::WIRE_VERSION).
pub fn is_fragment(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(&(FRAGMENT_START | FRAGMENT_CONTINUE | FRAGMENT_ABORT)))
}

/// The ABORT fragment for sequence `seq`.
pub fn abort_fragment(seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(ABORT_LEN);
    out.push(FRAGMENT_ABORT);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// How many fragments a payload of `len` bytes becomes with `chunk_size` data bytes per fragment
/// (an empty payload still takes one START fragment).
pub fn fragment_count(len: usize, chunk_size: usize) -> usize {
    len.div_ceil(chunk_size.max(1)).max(1)
}

/// Cuts one message into fragment payloads for sequence `seq`, on demand.
///
/// Each call to [`write_next`](Fragmenter::write_next) (or the iterator) yields one fragment
/// payload: a START with the total length and the first chunk, then CONTINUEs. Put each in its own
/// frame. If the sender gives up before the end, send [`abort`](Fragmenter::abort)'s fragment so
/// the receiver frees what it holds.
#[derive(Debug)]
pub struct Fragmenter {
    seq: u64,
    payload: Vec<u8>,
    offset: usize,
    chunk_size: usize,
    started: bool,
}

impl Fragmenter {
    /// Fragments `payload` as sequence `seq` in chunks of `chunk_size` data bytes (at least 1).
    /// Sequence ids must be unique among the sender's unfinished sequences on a connection.
    pub fn new(seq: u64, payload: Vec<u8>, chunk_size: usize) -> Fragmenter {
        Fragmenter { seq, payload, offset: 0, chunk_size: chunk_size.max(1), started: false }
    }

    /// The sequence id.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Whether every fragment has been produced.
    pub fn is_done(&self) -> bool {
        self.started && self.offset == self.payload.len()
    }

    /// Fragments still to produce.
    pub fn remaining_fragments(&self) -> usize {
        if self.is_done() {
            0
        } else if !self.started {
            fragment_count(self.payload.len(), self.chunk_size)
        } else {
            (self.payload.len() - self.offset).div_ceil(self.chunk_size)
        }
    }

    /// Appends the next fragment payload to `out`; returns false (appending nothing) when done.
    pub fn write_next(&mut self, out: &mut Vec<u8>) -> bool {
        if self.is_done() {
            return false;
        }
        let end = self.payload.len().min(self.offset + self.chunk_size);
        let chunk = &self.payload[self.offset..end];
        if self.started {
            out.reserve(CONTINUE_HEADER_LEN + chunk.len());
            out.push(FRAGMENT_CONTINUE);
            out.extend_from_slice(&self.seq.to_be_bytes());
        } else {
            out.reserve(START_HEADER_LEN + chunk.len());
            out.push(FRAGMENT_START);
            out.extend_from_slice(&self.seq.to_be_bytes());
            out.extend_from_slice(&(self.payload.len() as u64).to_be_bytes());
            self.started = true;
        }
        out.extend_from_slice(chunk);
        self.offset = end;
        true
    }

    /// The ABORT fragment that cancels this sequence at the receiver.
    pub fn abort(self) -> Vec<u8> {
        abort_fragment(self.seq)
    }
}

impl Iterator for Fragmenter {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.write_next(&mut out).then_some(out)
    }
}

/// Bounds on what a [`Reassembler`] holds for one connection: the reassembly memory one peer can
/// make a node hold (PROTOCOL.md 3.3). Buffers grow only with data that arrived and never past
/// a sequence's announced length, so the bytes held for one connection are at most
/// `max_in_flight_bytes`, whatever the peer announces. Senders keep within the same limits
/// (PROTOCOL.md 3.2), so a well-behaved peer is never refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Sequences that may be open at once. Default 64.
    pub max_in_flight: usize,
    /// Sum of the announced lengths of open sequences. Default 128 MiB: one message of the
    /// largest size, or several smaller ones.
    pub max_in_flight_bytes: usize,
    /// Largest message. Default 128 MiB, the codec's default
    /// [`max_bytes`](crate::codec::DecodeLimits::max_bytes).
    pub max_message: usize,
}

/// Default of [`ReassemblyLimits::max_in_flight`].
pub const DEFAULT_MAX_OPEN_SEQUENCES: usize = 64;
/// Default of [`ReassemblyLimits::max_in_flight_bytes`] and [`ReassemblyLimits::max_message`].
pub const DEFAULT_REASSEMBLY_BYTES: usize = 128 << 20;

impl Default for ReassemblyLimits {
    fn default() -> ReassemblyLimits {
        ReassemblyLimits {
            max_in_flight: DEFAULT_MAX_OPEN_SEQUENCES,
            max_in_flight_bytes: DEFAULT_REASSEMBLY_BYTES,
            max_message: DEFAULT_REASSEMBLY_BYTES,
        }
    }
}

/// Why a fragment was rejected. The peer broke the protocol or exceeded a limit; the offending
/// sequence (if any) has been freed, and the caller should normally close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// The fragment is shorter than its header.
    #[error("fragment of {0} bytes is shorter than its header; the peer's framing is broken")]
    Truncated(usize),
    /// The first byte is not a fragment type.
    #[error("frame payload starting with 0x{0:02x} is not a fragment")]
    UnknownType(u8),
    /// A START for a sequence that is already open.
    #[error("fragment sequence {0} started twice; the peer reuses sequence ids of unfinished messages")]
    DuplicateSequence(u64),
    /// A CONTINUE for a sequence that is not open (never started, finished, aborted or rejected).
    #[error("fragment for unknown sequence {0}; it was never started or was already finished or rejected")]
    UnknownSequence(u64),
    /// Too many sequences open at once.
    #[error("more than {max} fragmented messages in flight; raise ReassemblyLimits::max_in_flight")]
    TooManyInFlight {
        /// The limit in force.
        max: usize,
    },
    /// The announced lengths of open sequences would exceed the byte limit.
    #[error("fragmented messages in flight would total {requested} bytes, over the limit of {max}; raise ReassemblyLimits::max_in_flight_bytes")]
    TooManyBytesInFlight {
        /// Bytes in flight if the sequence were accepted.
        requested: usize,
        /// The limit in force.
        max: usize,
    },
    /// One message is announced larger than the limit.
    #[error("fragmented message of {len} bytes is over the limit of {max}; raise ReassemblyLimits::max_message")]
    MessageTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A sequence received more data than its START announced.
    #[error("fragment sequence {seq} carries more than the {total} bytes it announced")]
    Overrun {
        /// The sequence id.
        seq: u64,
        /// The announced length.
        total: usize,
    },
}

#[derive(Debug)]
struct Partial {
    total: usize,
    data: Vec<u8>,
}

/// Reassembles interleaved fragment sequences of one connection.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    open: HashMap<u64, Partial>,
    /// Sum of the announced totals of open sequences.
    announced: usize,
    /// Bytes actually held.
    held: usize,
}

fn seq_of(fragment: &[u8]) -> Result<u64, FragmentError> {
    match fragment.get(1..9) {
        Some(raw) => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(raw);
            Ok(u64::from_be_bytes(bytes))
        }
        None => Err(FragmentError::Truncated(fragment.len())),
    }
}

impl Reassembler {
    /// An empty reassembler with these limits.
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        Reassembler { limits, open: HashMap::new(), announced: 0, held: 0 }
    }

    /// Takes one fragment payload. Returns the whole message when this fragment completes it,
    /// `Ok(None)` when more fragments are needed (or after an ABORT), or why the fragment is bad.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, FragmentError> {
        let kind = *fragment.first().ok_or(FragmentError::Truncated(0))?;
        match kind {
            FRAGMENT_START => self.start(fragment),
            FRAGMENT_CONTINUE => {
                let seq = seq_of(fragment)?;
                self.append(seq, &fragment[CONTINUE_HEADER_LEN..])
            }
            FRAGMENT_ABORT => {
                // The whole fragment is the header; an ABORT for a sequence we do not hold (e.g.
                // one we rejected) has nothing to free.
                self.abort(seq_of(fragment)?);
                Ok(None)
            }
            other => Err(FragmentError::UnknownType(other)),
        }
    }

    fn start(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, FragmentError> {
        let seq = seq_of(fragment)?;
        let total = match fragment.get(9..START_HEADER_LEN) {
            Some(raw) => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(raw);
                u64::from_be_bytes(bytes)
            }
            None => return Err(FragmentError::Truncated(fragment.len())),
        };
        if self.abort(seq) {
            return Err(FragmentError::DuplicateSequence(seq));
        }
        let total = match usize::try_from(total) {
            Ok(t) if t <= self.limits.max_message => t,
            _ => return Err(FragmentError::MessageTooLarge { len: total, max: self.limits.max_message }),
        };
        if self.open.len() >= self.limits.max_in_flight {
            return Err(FragmentError::TooManyInFlight { max: self.limits.max_in_flight });
        }
        let requested = self.announced.saturating_add(total);
        if requested > self.limits.max_in_flight_bytes {
            return Err(FragmentError::TooManyBytesInFlight { requested, max: self.limits.max_in_flight_bytes });
        }
        self.open.insert(seq, Partial { total, data: Vec::new() });
        self.announced += total;
        self.append(seq, &fragment[START_HEADER_LEN..])
    }

    fn append(&mut self, seq: u64, data: &[u8]) -> Result<Option<Vec<u8>>, FragmentError> {
        let partial = self.open.get_mut(&seq).ok_or(FragmentError::UnknownSequence(seq))?;
        let len = partial.data.len();
        if data.len() > partial.total - len {
            let total = partial.total;
            self.abort(seq);
            return Err(FragmentError::Overrun { seq, total });
        }
        let needed = len + data.len();
        if needed > partial.data.capacity() {
            // Grow with what arrives, never to the announced size at once: at most double what is
            // held, never past the total.
            let target = partial.total.min(needed.max(2 * len));
            partial.data.reserve_exact(target - len);
        }
        partial.data.extend_from_slice(data);
        self.held += data.len();
        if partial.data.len() < partial.total {
            return Ok(None);
        }
        let done = self.open.remove(&seq).map(|p| p.data).unwrap_or_default();
        self.announced -= done.len();
        self.held -= done.len();
        Ok(Some(done))
    }

    /// Drops sequence `seq` and frees its memory (its sender died, or the connection layer gave up
    /// on it). Returns whether the sequence was open.
    pub fn abort(&mut self, seq: u64) -> bool {
        match self.open.remove(&seq) {
            Some(partial) => {
                self.announced -= partial.total;
                self.held -= partial.data.len();
                true
            }
            None => false,
        }
    }

    /// Sequences currently open.
    pub fn in_flight(&self) -> usize {
        self.open.len()
    }

    /// Sum of the announced lengths of open sequences (what the byte limit counts).
    pub fn in_flight_bytes(&self) -> usize {
        self.announced
    }

    /// Data bytes actually held for open sequences.
    pub fn buffered_bytes(&self) -> usize {
        self.held
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReassemblyLimits {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_in_flight: usize, max_in_flight_bytes: usize, max_message: usize) -> ReassemblyLimits {
        ReassemblyLimits { max_in_flight, max_in_flight_bytes, max_message }
    }

    #[test]
    fn fragments_have_the_documented_layout() {
        let frags: Vec<Vec<u8>> = Fragmenter::new(0x0102, b"abcde".to_vec(), 3).collect();
        assert_eq!(frags[0], [0xf0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 5, b'a', b'b', b'c']);
        assert_eq!(frags[1], [0xf1, 0, 0, 0, 0, 0, 0, 1, 2, b'd', b'e']);
        assert_eq!(frags.len(), 2);
        assert_eq!(abort_fragment(7), [0xf2, 0, 0, 0, 0, 0, 0, 0, 7]);
    }

    #[test]
    fn fragment_counts() {
        assert_eq!(fragment_count(0, 10), 1);
        assert_eq!(fragment_count(10, 10), 1);
        assert_eq!(fragment_count(11, 10), 2);
        let mut f = Fragmenter::new(1, vec![0; 25], 10);
        assert_eq!(f.remaining_fragments(), 3);
        f.next();
        assert_eq!(f.remaining_fragments(), 2);
        assert_eq!(f.by_ref().count(), 2);
        assert!(f.is_done());
        assert_eq!(Fragmenter::new(2, Vec::new(), 0).count(), 1);
    }

    #[test]
    fn interleaved_sequences_reassemble() {
        let a: Vec<u8> = (0..100u8).collect();
        let b: Vec<u8> = (100..=255u8).collect();
        let mut fa = Fragmenter::new(1, a.clone(), 7);
        let mut fb = Fragmenter::new(2, b.clone(), 11);
        let mut r = Reassembler::default();
        let mut done = Vec::new();
        loop {
            let (x, y) = (fa.next(), fb.next());
            if x.is_none() && y.is_none() {
                break;
            }
            for frag in [x, y].into_iter().flatten() {
                done.extend(r.push(&frag).unwrap());
            }
        }
        assert_eq!(done, [a, b]);
        assert_eq!((r.in_flight(), r.in_flight_bytes(), r.buffered_bytes()), (0, 0, 0));
    }

    #[test]
    fn empty_message_completes_at_once() {
        let mut r = Reassembler::default();
        let start = Fragmenter::new(9, Vec::new(), 4).next().unwrap();
        assert_eq!(r.push(&start), Ok(Some(Vec::new())));
    }

    #[test]
    fn abort_frees_the_sequence() {
        let mut r = Reassembler::default();
        let mut f = Fragmenter::new(5, vec![1; 100], 10);
        r.push(&f.next().unwrap()).unwrap();
        r.push(&f.next().unwrap()).unwrap();
        assert_eq!((r.in_flight(), r.in_flight_bytes(), r.buffered_bytes()), (1, 100, 20));
        assert_eq!(r.push(&f.abort()), Ok(None));
        assert_eq!((r.in_flight(), r.in_flight_bytes(), r.buffered_bytes()), (0, 0, 0));
        assert!(!r.abort(5));
        let cont = [FRAGMENT_CONTINUE, 0, 0, 0, 0, 0, 0, 0, 5, 1];
        assert_eq!(r.push(&cont), Err(FragmentError::UnknownSequence(5)));
    }

    #[test]
    fn limits_are_enforced() {
        let start = |seq: u64, total: u64| {
            let mut out = vec![FRAGMENT_START];
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&total.to_be_bytes());
            out
        };
        let mut r = Reassembler::new(limits(2, 100, 60));
        assert_eq!(r.push(&start(1, 61)), Err(FragmentError::MessageTooLarge { len: 61, max: 60 }));
        assert_eq!(r.push(&start(1, u64::MAX)), Err(FragmentError::MessageTooLarge { len: u64::MAX, max: 60 }));
        assert_eq!(r.push(&start(1, 60)), Ok(None));
        assert_eq!(r.push(&start(2, 41)), Err(FragmentError::TooManyBytesInFlight { requested: 101, max: 100 }));
        assert_eq!(r.push(&start(2, 40)), Ok(None));
        assert_eq!(r.push(&start(3, 1)), Err(FragmentError::TooManyInFlight { max: 2 }));
        assert_eq!(r.push(&start(2, 5)), Err(FragmentError::DuplicateSequence(2)));
        assert_eq!(r.in_flight(), 1);
        // Nothing is reserved for an announced size before data arrives.
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.open[&1].data.capacity(), 0);
    }

    #[test]
    fn overrun_and_malformed_fragments() {
        let mut r = Reassembler::default();
        let mut f = Fragmenter::new(3, vec![0; 4], 2);
        r.push(&f.next().unwrap()).unwrap();
        let too_much = [FRAGMENT_CONTINUE, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
        assert_eq!(r.push(&too_much), Err(FragmentError::Overrun { seq: 3, total: 4 }));
        assert_eq!(r.in_flight(), 0);
        assert_eq!(r.push(&[]), Err(FragmentError::Truncated(0)));
        assert_eq!(r.push(&[FRAGMENT_START, 0, 0]), Err(FragmentError::Truncated(3)));
        assert_eq!(r.push(&[FRAGMENT_ABORT, 0]), Err(FragmentError::Truncated(2)));
        assert_eq!(r.push(&[0x01, 0]), Err(FragmentError::UnknownType(1)));
        assert!(is_fragment(&[FRAGMENT_ABORT]) && !is_fragment(&[crate::codec::WIRE_VERSION]) && !is_fragment(&[]));
    }

    #[test]
    fn default_limits_bound_one_peer_to_one_maximal_message() {
        let start = |seq: u64, total: u64| {
            let mut out = vec![FRAGMENT_START];
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&total.to_be_bytes());
            out
        };
        let mut r = Reassembler::default();
        assert_eq!(r.push(&start(1, 100 << 20)), Ok(None));
        let requested = (100 << 20) + (29 << 20);
        assert_eq!(r.push(&start(2, 29 << 20)), Err(FragmentError::TooManyBytesInFlight { requested, max: 128 << 20 }));
        assert_eq!(r.push(&start(3, 28 << 20)), Ok(None));
        let mut r = Reassembler::default();
        for seq in 0..64 {
            assert_eq!(r.push(&start(seq, 1000)), Ok(None));
        }
        assert_eq!(r.push(&start(64, 1000)), Err(FragmentError::TooManyInFlight { max: 64 }));
    }

    #[test]
    fn memory_grows_with_received_data_only() {
        let mut r = Reassembler::default();
        let mut f = Fragmenter::new(1, vec![7; 1 << 20], 1000);
        r.push(&f.next().unwrap()).unwrap();
        assert!(r.open[&1].data.capacity() <= 1000);
        for _ in 0..100 {
            r.push(&f.next().unwrap()).unwrap();
        }
        let held = r.buffered_bytes();
        assert_eq!(held, 101_000);
        assert!(r.open[&1].data.capacity() <= 2 * held);
    }
}
