//! The atom cache of one connection (PROTOCOL.md 4.4): atoms and (node, creation) pairs that a
//! sender has defined once on a connection, so that later messages name them by a small index.
//! A repeated small message then carries a few bytes of identity instead of the sender's and the
//! receiver's full node names (the role of the atom cache in Erlang's distribution header).
//!
//! Used only when both sides negotiated [`Flags::ATOM_CACHE`](crate::dist::Flags::ATOM_CACHE);
//! a plain frame (section 4.3) stays valid on such a connection.
//!
//! - The sender's side, [`CacheEncoder`], assigns indices on first use (at most
//!   [`CACHE_ENTRIES`]; when full, a clock sweep replaces an entry that no queued frame uses) and
//!   writes a cached frame: the control message with references, then the definitions of the
//!   entries the receiver may not know yet.
//! - The receiver's side, [`CacheDecoder`], applies a frame's definitions, then resolves its
//!   references. A reference to an index that holds nothing, or the other kind of entry, is a
//!   typed error that closes the connection.
//!
//! Ordering. The output queue ([`crate::dist::outbound`]) reorders frames (the urgent lane, the
//! lanes' turns, fragments interleaved), so "defined earlier" must mean earlier *on the wire*,
//! not earlier encoded. The rule: an entry is *committed* once a frame that defines it has been
//! written in full (its last fragment included), which the queue reports through
//! [`CacheEncoder::written`]. A frame that uses an entry not committed carries the entry's
//! definition itself; since the receiver applies definitions in frame-arrival order (on the whole,
//! reassembled message), every frame encoded after the commit arrives after a definition. An entry
//! used by a frame that is not written yet is *pinned* and never replaced, so a definition never
//! overtakes a frame that means the old entry.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::atom::{Atom, MAX_ATOM_BYTES};
use crate::codec::{read_varint, tag, write_bytes, write_varint, CacheLookup, DecodeError, IdKind, InFull, NameWriter};
use crate::name::{NameError, NodeName};

/// Entries in one direction of a connection: indices are `0..CACHE_ENTRIES`.
pub const CACHE_ENTRIES: usize = 2048;

/// Most distinct entries one frame uses by reference; further names in it are written in full.
pub const MAX_USES: usize = 16;

/// Frame kind of a cached frame without definitions: `0xf3`, then one control message whose
/// fields may hold cache references (PROTOCOL.md 4.4).
pub const CACHED: u8 = 0xf3;

/// Frame kind of a cached frame with definitions: `0xf4`, the control message, the definitions,
/// and their length as a big-endian `u16` (PROTOCOL.md 4.4).
pub const CACHED_DEFINING: u8 = 0xf4;

/// Whether a frame payload (or a reassembled message) is a cached frame.
pub fn is_cached(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(&(CACHED | CACHED_DEFINING)))
}

/// Definition kind: an atom (its text).
const KIND_ATOM: u8 = 0;
/// Definition kind: a node and creation (the node's text, then the creation).
const KIND_NODE: u8 = 1;

/// Atoms shorter than this are written in full: a reference (tag and index) would save nothing.
const MIN_CACHED_ATOM: usize = 3;

/// The cache entries one encoded frame uses, and which of them it defines: what the sender's
/// cache must be told when the frame has been written ([`CacheEncoder::written`]). Plain frames
/// use none ([`Uses::NONE`]). Fixed size, so queueing a frame allocates nothing for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uses {
    slots: [u16; MAX_USES],
    len: u8,
    /// Bit `i` set: the frame defines `slots[i]`.
    defines: u16,
}

impl Uses {
    /// A frame that uses no cache entry.
    pub const NONE: Uses = Uses { slots: [0; MAX_USES], len: 0, defines: 0 };

    /// Whether the frame uses no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many entries the frame uses, and how many of those it defines.
    pub fn counts(&self) -> (usize, usize) {
        (usize::from(self.len), self.defines.count_ones() as usize)
    }

    fn iter(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.slots[..usize::from(self.len)]
            .iter()
            .enumerate()
            .map(|(i, &slot)| (usize::from(slot), self.defines & (1 << i) != 0))
    }
}

/// What an entry stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Atom(Atom),
    Node(NodeName, u32),
}

impl Key {
    /// Whether the entry holds exactly the text at `ptr` (and the creation): the entry keeps its
    /// text alive, so no other text can be at that address while it does.
    fn is_at(&self, kind: IdKindOrAtom, ptr: usize, len: usize, creation: u32) -> bool {
        let at = |text: &str| text.as_ptr() as usize == ptr && text.len() == len;
        match (self, kind) {
            (Key::Atom(a), IdKindOrAtom::Atom) => at(a.as_str()),
            (Key::Node(n, c), IdKindOrAtom::Node) => *c == creation && at(n.as_str()),
            _ => false,
        }
    }

    fn matches(&self, kind: IdKindOrAtom, text: &str, creation: u32) -> bool {
        match (self, kind) {
            (Key::Atom(a), IdKindOrAtom::Atom) => a.as_str() == text,
            (Key::Node(n, c), IdKindOrAtom::Node) => *c == creation && n.as_str() == text,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum IdKindOrAtom {
    Atom,
    Node,
}

/// One entry of the sender's cache.
#[derive(Debug)]
struct Slot {
    key: Key,
    /// Its [`fingerprint`], the key of [`CacheEncoder::index`].
    hash: u64,
    /// Frames encoded with this entry and not yet written: while any, the entry stays.
    pending: u32,
    /// A frame defining it has been written: later frames may use it without a definition.
    committed: bool,
    /// Used since the clock hand last passed (second chance).
    recent: bool,
}

/// A hasher for keys that are already hashes ([`fingerprint`]).
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A 64-bit hash of an entry's kind, text and creation (multiply-rotate over 8-byte words). Two
/// keys with one fingerprint only cost the second one its caching: it is written in full.
fn fingerprint(kind: IdKindOrAtom, text: &str, creation: u32) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (u64::from(creation) << 8 | u64::from(kind == IdKindOrAtom::Node)) ^ (text.len() as u64) << 40;
    for chunk in text.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^ h >> 29
}

/// Slots of [`CacheEncoder::recent`].
const RECENT: usize = 32;

/// A name recently looked up, by the address of its text (interned atoms and node names share
/// one text per name, so the same name is at the same address every time).
#[derive(Clone, Copy, Debug, Default)]
struct Recent {
    ptr: usize,
    slot: u16,
}

/// The sending side of a connection's atom cache. Owned by the connection's output queue, which
/// encodes frames with it and reports when each is written (module documentation).
#[derive(Debug, Default)]
pub struct CacheEncoder {
    slots: Vec<Slot>,
    index: HashMap<u64, u16, BuildHasherDefault<Prehashed>>,
    /// Direct-mapped by text address and creation: a hit finds the entry without hashing the
    /// text (checked against the entry, so a stale one only costs the slow path).
    recent: [Recent; RECENT],
    /// The clock hand of the replacement sweep.
    hand: usize,
}

impl CacheEncoder {
    /// An empty cache.
    pub fn new() -> CacheEncoder {
        CacheEncoder::default()
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no entry has been assigned yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Appends `msg` as a cached frame payload ([`CACHED`] or [`CACHED_DEFINING`]) to `out` and
    /// returns the entries it uses, which the caller hands to [`CacheEncoder::written`] once the
    /// whole frame is on its way to the socket (and not before: see the module documentation).
    pub fn encode(&mut self, msg: &crate::dist::control::Outgoing<'_>, out: &mut Vec<u8>) -> Uses {
        let start = out.len();
        out.push(CACHED);
        let mut writer = FrameWriter { cache: self, uses: Uses::NONE };
        msg.encode_with(&mut writer, out);
        let uses = writer.uses;
        if uses.defines != 0 {
            out[start] = CACHED_DEFINING;
            self.write_definitions(&uses, out);
        }
        uses
    }

    /// The frame that used `uses` has been written (all of it: for a fragmented message, its
    /// last fragment): its definitions are now known to the receiver ahead of anything written
    /// later, and its entries may be replaced again once no other queued frame uses them.
    pub fn written(&mut self, uses: &Uses) {
        for (slot, defines) in uses.iter() {
            if let Some(slot) = self.slots.get_mut(slot) {
                slot.pending = slot.pending.saturating_sub(1);
                slot.committed |= defines;
            }
        }
    }

    /// The index for the name, assigning one if needed; `None` to write it in full.
    fn slot_for(&mut self, kind: IdKindOrAtom, text: &str, creation: u32, key: impl FnOnce() -> Key) -> Option<usize> {
        let ptr = text.as_ptr() as usize;
        let memo = (ptr >> 3 ^ creation as usize) % RECENT;
        let recent = self.recent[memo];
        if recent.ptr == ptr {
            let slot = usize::from(recent.slot);
            if self.slots.get(slot).is_some_and(|s| s.key.is_at(kind, ptr, text.len(), creation)) {
                return Some(slot);
            }
        }
        let slot = self.find_or_assign(kind, text, creation, key)?;
        self.recent[memo] = Recent { ptr, slot: slot as u16 };
        Some(slot)
    }

    fn find_or_assign(
        &mut self,
        kind: IdKindOrAtom,
        text: &str,
        creation: u32,
        key: impl FnOnce() -> Key,
    ) -> Option<usize> {
        let hash = fingerprint(kind, text, creation);
        if let Some(&slot) = self.index.get(&hash) {
            let slot = usize::from(slot);
            return self.slots.get(slot).filter(|s| s.key.matches(kind, text, creation)).map(|_| slot);
        }
        let fresh = Slot { key: key(), hash, pending: 0, committed: false, recent: true };
        let slot = if self.slots.len() < CACHE_ENTRIES {
            self.slots.push(fresh);
            self.slots.len() - 1
        } else {
            let slot = self.victim()?;
            let old = std::mem::replace(&mut self.slots[slot], fresh);
            self.index.remove(&old.hash);
            slot
        };
        self.index.insert(hash, slot as u16);
        Some(slot)
    }

    /// An entry to replace: the first one the clock hand finds unused since its last pass and not
    /// pinned by a queued frame. `None` if every entry is pinned.
    fn victim(&mut self) -> Option<usize> {
        for _ in 0..2 * self.slots.len() {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let slot = &mut self.slots[at];
            if slot.pending == 0 && !slot.recent {
                return Some(at);
            }
            slot.recent = false;
        }
        None
    }

    /// The definition section and its length (PROTOCOL.md 4.4).
    fn write_definitions(&self, uses: &Uses, out: &mut Vec<u8>) {
        let start = out.len();
        for (index, _) in uses.iter().filter(|(_, defines)| *defines) {
            let Some(slot) = self.slots.get(index) else { continue };
            write_varint(out, index as u64);
            match &slot.key {
                Key::Atom(atom) => {
                    out.push(KIND_ATOM);
                    write_bytes(out, atom.as_str().as_bytes());
                }
                Key::Node(node, creation) => {
                    out.push(KIND_NODE);
                    write_bytes(out, node.as_str().as_bytes());
                    out.extend_from_slice(&creation.to_be_bytes());
                }
            }
        }
        // At most MAX_USES definitions of at most 1,033 bytes each: well under 64 KiB.
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Writes one frame's names through the cache, collecting what the frame uses.
struct FrameWriter<'a> {
    cache: &'a mut CacheEncoder,
    uses: Uses,
}

impl FrameWriter<'_> {
    /// Pins `slot` for this frame (once) and schedules its definition if the receiver may not
    /// know it; `false` if the frame already uses [`MAX_USES`] entries.
    fn take(&mut self, slot: usize) -> bool {
        let uses = &mut self.uses;
        if uses.slots[..usize::from(uses.len)].contains(&(slot as u16)) {
            return true;
        }
        let i = usize::from(uses.len);
        if i == MAX_USES {
            return false;
        }
        let entry = &mut self.cache.slots[slot];
        entry.pending += 1;
        entry.recent = true;
        uses.slots[i] = slot as u16;
        uses.len += 1;
        if !entry.committed {
            uses.defines |= 1 << i;
        }
        true
    }

    /// The index to write for a name, or `None` to write it in full.
    fn reference(&mut self, kind: IdKindOrAtom, text: &str, creation: u32, key: impl FnOnce() -> Key) -> Option<u64> {
        if usize::from(self.uses.len) == MAX_USES {
            // Still fine if this frame already uses the name.
            let slot = *self.cache.index.get(&fingerprint(kind, text, creation))?;
            let used = self.uses.slots.contains(&slot);
            let same = self.cache.slots.get(usize::from(slot)).is_some_and(|s| s.key.matches(kind, text, creation));
            return (used && same).then_some(u64::from(slot));
        }
        let slot = self.cache.slot_for(kind, text, creation, key)?;
        self.take(slot).then_some(slot as u64)
    }
}

impl NameWriter for FrameWriter<'_> {
    fn atom(&mut self, atom: &Atom, out: &mut Vec<u8>) {
        let text = atom.as_str();
        if text.len() >= MIN_CACHED_ATOM {
            if let Some(index) = self.reference(IdKindOrAtom::Atom, text, 0, || Key::Atom(atom.clone())) {
                out.push(tag::ATOM_REF);
                write_varint(out, index);
                return;
            }
        }
        InFull.atom(atom, out);
    }

    fn id(&mut self, kind: IdKind, node: &NodeName, id: u64, creation: u32, out: &mut Vec<u8>) {
        match self.reference(IdKindOrAtom::Node, node.as_str(), creation, || Key::Node(node.clone(), creation)) {
            Some(index) => {
                out.push(if kind == IdKind::Pid { tag::PID_REF } else { tag::REF_REF });
                write_varint(out, index);
                write_varint(out, id);
            }
            None => InFull.id(kind, node, id, creation, out),
        }
    }
}

/// Why a cached frame's definitions are unacceptable. The peer is broken or hostile; the
/// connection is closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The payload is not a cached frame.
    #[error("frame kind 0x{0:02x} is not a cached frame")]
    NotCached(u8),
    /// The definition section's length or a definition runs past the frame.
    #[error("cached frame is truncated: {0}")]
    Truncated(&'static str),
    /// A definition for an index outside the cache.
    #[error("atom cache definition for index {0}, outside the cache of {CACHE_ENTRIES} entries")]
    IndexOutOfRange(u64),
    /// A definition of an unknown kind.
    #[error("atom cache definition of unknown kind {0} (0 atom, 1 node)")]
    UnknownKind(u8),
    /// An atom definition that is not UTF-8 or is too long.
    #[error("atom cache definition of index {index}: {problem}")]
    BadAtom {
        /// The index defined.
        index: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// A node definition that is not a valid node name.
    #[error("atom cache definition of index {index}: not a node name: {source}")]
    BadNode {
        /// The index defined.
        index: u64,
        /// Why the name is invalid.
        source: NameError,
    },
}

/// What the receiver holds at one index.
#[derive(Clone, Debug, Default)]
enum Entry {
    #[default]
    Empty,
    Atom(Atom),
    Node(NodeName, u32),
}

/// The receiving side of a connection's atom cache: the entries the peer defined, in the order
/// its frames arrived.
#[derive(Debug, Default)]
pub struct CacheDecoder {
    /// Grows to the highest index defined (at most [`CACHE_ENTRIES`]).
    entries: Vec<Entry>,
}

impl CacheDecoder {
    /// An empty cache.
    pub fn new() -> CacheDecoder {
        CacheDecoder::default()
    }

    /// Applies the definitions of a cached frame (a whole, reassembled payload starting with
    /// [`CACHED`] or [`CACHED_DEFINING`]) and returns its control message, whose references
    /// resolve through `self`.
    pub fn open<'p>(&mut self, payload: &'p [u8]) -> Result<&'p [u8], CacheError> {
        match payload.split_first() {
            Some((&CACHED, body)) => Ok(body),
            Some((&CACHED_DEFINING, rest)) => {
                let (rest, len) = match rest.split_last_chunk::<2>() {
                    Some((rest, len)) => (rest, usize::from(u16::from_be_bytes(*len))),
                    None => return Err(CacheError::Truncated("no definition length")),
                };
                let split =
                    rest.len().checked_sub(len).ok_or(CacheError::Truncated("definitions longer than the frame"))?;
                let (body, definitions) = rest.split_at(split);
                self.define(definitions)?;
                Ok(body)
            }
            Some((&other, _)) => Err(CacheError::NotCached(other)),
            None => Err(CacheError::Truncated("empty frame")),
        }
    }

    fn define(&mut self, mut section: &[u8]) -> Result<(), CacheError> {
        let truncated = |_| CacheError::Truncated("a definition runs past its section");
        while !section.is_empty() {
            let (index, used) = read_varint(section).map_err(truncated)?;
            section = &section[used..];
            let slot =
                usize::try_from(index).ok().filter(|i| *i < CACHE_ENTRIES).ok_or(CacheError::IndexOutOfRange(index))?;
            let (&kind, rest) = section.split_first().ok_or(CacheError::Truncated("a definition without its kind"))?;
            let (len, used) = read_varint(rest).map_err(truncated)?;
            let rest = &rest[used..];
            let len = usize::try_from(len)
                .ok()
                .filter(|len| *len <= rest.len())
                .ok_or(CacheError::Truncated("a definition's text runs past its section"))?;
            let (text, rest) = rest.split_at(len);
            let entry = match kind {
                KIND_ATOM => {
                    if len > MAX_ATOM_BYTES {
                        return Err(CacheError::BadAtom { index, problem: "longer than 1024 bytes" });
                    }
                    let text =
                        std::str::from_utf8(text).map_err(|_| CacheError::BadAtom { index, problem: "not UTF-8" })?;
                    section = rest;
                    Entry::Atom(Atom::new(text))
                }
                KIND_NODE => {
                    let text = std::str::from_utf8(text)
                        .map_err(|_| CacheError::BadNode { index, source: NameError::Empty })
                        .and_then(|text| {
                            NodeName::parse(text).map_err(|source| CacheError::BadNode { index, source })
                        })?;
                    let (creation, rest) = rest
                        .split_first_chunk::<4>()
                        .ok_or(CacheError::Truncated("a node definition without its creation"))?;
                    section = rest;
                    Entry::Node(text, u32::from_be_bytes(*creation))
                }
                other => return Err(CacheError::UnknownKind(other)),
            };
            if self.entries.len() <= slot {
                self.entries.resize(slot + 1, Entry::Empty);
            }
            self.entries[slot] = entry;
        }
        Ok(())
    }

    fn entry(&self, index: u64) -> &Entry {
        usize::try_from(index).ok().and_then(|i| self.entries.get(i)).unwrap_or(&Entry::Empty)
    }
}

impl CacheLookup for CacheDecoder {
    fn atom(&self, index: u64) -> Result<Atom, DecodeError> {
        match self.entry(index) {
            Entry::Atom(atom) => Ok(atom.clone()),
            Entry::Node(..) => Err(DecodeError::BadCacheRef { index, problem: "it holds a node, not an atom" }),
            Entry::Empty => Err(DecodeError::BadCacheRef { index, problem: undefined(index) }),
        }
    }

    fn node(&self, index: u64) -> Result<(NodeName, u32), DecodeError> {
        match self.entry(index) {
            Entry::Node(node, creation) => Ok((node.clone(), *creation)),
            Entry::Atom(_) => Err(DecodeError::BadCacheRef { index, problem: "it holds an atom, not a node" }),
            Entry::Empty => Err(DecodeError::BadCacheRef { index, problem: undefined(index) }),
        }
    }
}

fn undefined(index: u64) -> &'static str {
    if index < CACHE_ENTRIES as u64 {
        "nothing was defined there"
    } else {
        "outside the cache"
    }
}

#[cfg(test)]
#[path = "atom_cache_tests.rs"]
mod tests;
