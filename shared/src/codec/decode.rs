//! Decoding with limits, for input that may be hostile.
//!
//! Memory discipline: before a container reserves room for `n` elements, the decoder checks that
//! the input still holds at least one byte per element *not already promised to an enclosing
//! container* (bytes past `Decoder::end`). So the sum of every reserved-but-unfilled slot never exceeds
//! the bytes left, whatever the nesting, and allocation stays proportional to the input.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::{read_varint, tag, unzigzag, DecodeError, DecodeLimits, MAX_DEPTH_CEILING, SMALL_INT_MAX, WIRE_VERSION};
use crate::atom::{Atom, MAX_ATOM_BYTES};
use crate::binary::{Binary, SHARE_THRESHOLD};
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::{Struct, Sum, Term};

/// Resolves references to a connection's atom cache (PROTOCOL.md 4.4) while decoding a cached
/// frame: `crate::dist::atom_cache` implements it.
pub(crate) trait CacheLookup {
    /// The atom at `index`.
    fn atom(&self, index: u64) -> Result<Atom, DecodeError>;
    /// The node and creation at `index`.
    fn node(&self, index: u64) -> Result<(NodeName, u32), DecodeError>;
}

/// [`decode_prefix`] for a field of a cached frame: the cache reference tags resolve through
/// `cache` (without a cache they are unknown tags).
pub(crate) fn decode_prefix_cached(
    bytes: &[u8],
    limits: &DecodeLimits,
    cache: &dyn CacheLookup,
) -> Result<(Term, usize), DecodeError> {
    let mut top = None;
    let used = decode_top(bytes, Source::Copy, limits, &mut top, Some(cache))?;
    Ok((top.ok_or(DecodeError::Truncated)?, used))
}

/// Decodes one term from the whole of `bytes` (version byte first) with [`DecodeLimits::default`].
#[inline]
pub fn decode(bytes: &[u8]) -> Result<Term, DecodeError> {
    decode_with(bytes, &DecodeLimits::default())
}

/// Decodes one term from the whole of `bytes` under `limits`; leftover bytes are an error.
#[inline]
pub fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Term, DecodeError> {
    whole(bytes, Source::Copy, limits)
}

/// Decodes the term at the start of `bytes` (version byte first) and returns it with the number of
/// bytes it took, for protocol layers that put more data after a term.
#[inline]
pub fn decode_prefix(bytes: &[u8], limits: &DecodeLimits) -> Result<(Term, usize), DecodeError> {
    prefix(bytes, Source::Copy, limits)
}

/// Decodes one term from the whole of `buffer` under `limits`, like [`decode_with`], except that a
/// binary larger than [`SHARE_THRESHOLD`] that is at least a quarter of `buffer` comes out as a
/// view of `buffer` ([`Binary::slice`]), not a copy: a received message's large payload is then
/// never copied on its way to the process (README, "Shared binaries").
///
/// A view keeps the whole buffer alive for as long as it lives. The quarter rule bounds that
/// retention: what a kept binary pins is at most four times its own size. Smaller binaries are
/// copied, so a process that keeps one small field of a large message does not pin the message.
#[inline]
pub fn decode_shared(buffer: &Binary, limits: &DecodeLimits) -> Result<Term, DecodeError> {
    whole(buffer, Source::Shared { buffer, base: 0 }, limits)
}

/// [`decode_prefix`] of the bytes of `buffer` from offset `at` on, with large binaries as views
/// of `buffer` as in [`decode_shared`] (the quarter rule counts the whole of `buffer`). An `at`
/// past the end is [`DecodeError::Truncated`].
pub fn decode_prefix_shared(buffer: &Binary, at: usize, limits: &DecodeLimits) -> Result<(Term, usize), DecodeError> {
    let bytes = buffer.get(at..).ok_or(DecodeError::Truncated)?;
    prefix(bytes, Source::Shared { buffer, base: at }, limits)
}

#[inline(always)]
fn whole(bytes: &[u8], source: Source<'_>, limits: &DecodeLimits) -> Result<Term, DecodeError> {
    let mut top = None;
    let used = decode_top(bytes, source, limits, &mut top, None)?;
    match (bytes.len() - used, top) {
        (0, Some(term)) => Ok(term),
        (0, None) => Err(DecodeError::Truncated),
        (extra, _) => Err(DecodeError::TrailingBytes(extra)),
    }
}

#[inline(always)]
fn prefix(bytes: &[u8], source: Source<'_>, limits: &DecodeLimits) -> Result<(Term, usize), DecodeError> {
    let mut top = None;
    let used = decode_top(bytes, source, limits, &mut top, None)?;
    Ok((top.ok_or(DecodeError::Truncated)?, used))
}

/// Where binaries come from: copies of the input, or views of the buffer the input is part of.
#[derive(Clone, Copy)]
enum Source<'a> {
    Copy,
    /// The input is `buffer[base..]`.
    Shared {
        buffer: &'a Binary,
        base: usize,
    },
}

/// A binary is a view of the buffer when it is at least `1 / SLICE_FRACTION` of it
/// ([`decode_shared`]).
const SLICE_FRACTION: usize = 4;

/// Checks the envelope, decodes the top-level value into `top` and returns the bytes used.
#[inline(always)]
fn decode_top<'a>(
    bytes: &'a [u8],
    source: Source<'a>,
    limits: &DecodeLimits,
    top: &mut Option<Term>,
    cache: Option<&'a dyn CacheLookup>,
) -> Result<usize, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { len: bytes.len(), max: limits.max_bytes });
    }
    match bytes.first() {
        None => return Err(DecodeError::Truncated),
        Some(&WIRE_VERSION) => {}
        Some(&other) => return Err(DecodeError::BadVersion(other)),
    }
    if limits.max_elements == 0 {
        return Err(DecodeError::TooManyElements { max: 0 });
    }
    let mut decoder = Decoder {
        input: bytes,
        pos: 1,
        end: bytes.len(),
        elements: 1,
        max_elements: limits.max_elements,
        max_depth: limits.max_depth.min(MAX_DEPTH_CEILING),
        source,
        error: None,
        cache,
    };
    match decoder.value(0, top) {
        Ok(()) => Ok(decoder.pos),
        // `fail` always records the reason before stopping.
        Err(Stop) => Err(decoder.error.take().unwrap_or(DecodeError::Truncated)),
    }
}

/// Decoding stopped; the reason is in [`Decoder::error`]. A unit error keeps every `?` in the hot
/// path a flag test instead of a copy of a [`DecodeError`].
struct Stop;

type Step<T> = Result<T, Stop>;

/// Where a decoded value goes: the next slot of a container, or the top-level result. Each value
/// is built straight in its destination instead of being returned and moved.
trait Sink {
    fn put(&mut self, term: Term);
}

impl Sink for Vec<Term> {
    #[inline(always)]
    fn put(&mut self, term: Term) {
        self.push(term);
    }
}

impl Sink for Option<Term> {
    #[inline(always)]
    fn put(&mut self, term: Term) {
        *self = Some(term);
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    /// Where the element being decoded must stop: the input's end minus the bytes promised to
    /// declared elements that have not started yet (at least one each).
    /// Invariant: `pos <= end <= input.len()`.
    end: usize,
    /// Terms declared so far, the top-level one included.
    elements: usize,
    max_elements: usize,
    max_depth: usize,
    /// Where binaries come from.
    source: Source<'a>,
    /// Why decoding stopped, once it has.
    error: Option<DecodeError>,
    /// The atom cache that resolves reference tags, in a cached frame (PROTOCOL.md 4.4).
    cache: Option<&'a dyn CacheLookup>,
}

impl<'a> Decoder<'a> {
    /// Records why decoding stops.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, error: DecodeError) -> Stop {
        self.error = Some(error);
        Stop
    }

    /// The bytes that the current element may still consume.
    #[inline(always)]
    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..self.end).unwrap_or_default()
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        match self.rest().get(..n) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(self.fail(DecodeError::Truncated)),
        }
    }

    #[inline(always)]
    fn byte(&mut self) -> Step<u8> {
        match self.rest().first() {
            Some(&byte) => {
                self.pos += 1;
                Ok(byte)
            }
            None => Err(self.fail(DecodeError::Truncated)),
        }
    }

    #[inline(always)]
    fn varint(&mut self) -> Step<u64> {
        let rest = self.rest();
        // One- and two-byte varints (lengths under 128, integers up to about ±8000) skip the
        // general loop.
        match *rest {
            [byte, ..] if byte < 0x80 => {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
            [low, high, ..] if high < 0x80 => {
                self.pos += 2;
                return Ok(u64::from(low & 0x7f) | u64::from(high) << 7);
            }
            _ => {}
        }
        match read_varint(rest) {
            Ok((value, used)) => {
                self.pos += used;
                Ok(value)
            }
            Err(error) => Err(self.fail(error)),
        }
    }

    #[inline(always)]
    fn length(&mut self) -> Step<usize> {
        let value = self.varint()?;
        usize::try_from(value).map_err(|_| self.fail(DecodeError::LengthOverflow))
    }

    /// Registers `count` elements that need at least `min_bytes` each, failing before any
    /// allocation if the input cannot hold them or the element limit would be passed.
    #[inline(always)]
    fn declare(&mut self, count: usize, terms_each: usize, min_bytes: usize) -> Step<()> {
        match count.checked_mul(min_bytes) {
            Some(need) if need <= self.end - self.pos => {
                let total = count.checked_mul(terms_each).and_then(|t| t.checked_add(self.elements));
                match total {
                    Some(total) if total <= self.max_elements => {
                        self.elements = total;
                        self.end -= need;
                        Ok(())
                    }
                    _ => Err(self.fail(DecodeError::TooManyElements { max: self.max_elements })),
                }
            }
            _ => Err(self.fail(DecodeError::Truncated)),
        }
    }

    /// Starts decoding a declared element: its promised bytes become available to it.
    #[inline(always)]
    fn release(&mut self, n: usize) {
        self.end += n;
    }

    #[inline(always)]
    fn enter(&mut self, depth: usize) -> Step<usize> {
        if depth >= self.max_depth {
            return Err(self.fail(DecodeError::TooDeep { max: self.max_depth }));
        }
        Ok(depth + 1)
    }

    /// Decodes one value (tag and body) into `sink`. Inlined into its callers (the top level and
    /// the sequence loop) so that the common scalar cases run without a call and are built in
    /// place; containers recurse through [`Decoder::container`].
    #[inline(always)]
    fn value<S: Sink>(&mut self, depth: usize, sink: &mut S) -> Step<()> {
        let tag = self.byte()?;
        match tag {
            small if i64::from(small) <= SMALL_INT_MAX => sink.put(Term::Int(i64::from(small))),
            tag::INT => {
                let value = unzigzag(self.varint()?);
                sink.put(Term::Int(value));
            }
            tag::FLOAT => {
                let raw = self.take(8)?;
                let mut bits = [0u8; 8];
                bits.copy_from_slice(raw);
                sink.put(Term::Float(f64::from_bits(u64::from_be_bytes(bits))));
            }
            tag::UNIT => sink.put(Term::Unit),
            tag::FALSE => sink.put(Term::Bool(false)),
            tag::TRUE => sink.put(Term::Bool(true)),
            tag::ATOM => {
                let atom = self.atom()?;
                sink.put(Term::Atom(atom));
            }
            tag::STRING => {
                let len = self.length()?;
                let bytes = self.take(len)?;
                match std::str::from_utf8(bytes) {
                    Ok(text) => sink.put(Term::String(text.to_owned())),
                    Err(_) => return Err(self.fail(DecodeError::BadUtf8)),
                }
            }
            tag::BINARY => {
                let len = self.length()?;
                let at = self.pos;
                let bytes = self.take(len)?;
                sink.put(Term::Binary(self.binary(at, bytes)));
            }
            tag::PID => {
                let (node, id, creation) = self.id()?;
                sink.put(Term::Pid(Pid::new(node, id, creation)));
            }
            tag::REF => {
                let (node, id, creation) = self.id()?;
                sink.put(Term::Ref(Ref::new(node, id, creation)));
            }
            other => {
                let term = self.container(other, depth)?;
                sink.put(term);
            }
        }
        Ok(())
    }

    /// Decodes a value whose tag is not a scalar's: a container, or an unknown tag.
    #[inline(never)]
    fn container(&mut self, tag: u8, depth: usize) -> Step<Term> {
        Ok(match tag {
            tag::TUPLE => Term::Tuple(self.seq(depth)?),
            tag::LIST => Term::List(self.seq(depth)?),
            tag::MAP => Term::Map(self.map(depth)?),
            tag::STRUCT => Term::Struct(Box::new(self.structure(depth)?)),
            tag::SUM => {
                let type_name = self.atom()?;
                let variant = self.atom()?;
                Term::Sum(Box::new(Sum { type_name, variant, fields: self.seq(depth)? }))
            }
            tag::ATOM_REF | tag::PID_REF | tag::REF_REF if self.cache.is_some() => self.cache_ref(tag)?,
            other => return Err(self.fail(DecodeError::UnknownTag(other))),
        })
    }

    /// A reference to the atom cache (PROTOCOL.md 4.4): an index, and for pids and references
    /// the id.
    fn cache_ref(&mut self, tag: u8) -> Step<Term> {
        let Some(cache) = self.cache else { return Err(self.fail(DecodeError::UnknownTag(tag))) };
        let index = self.varint()?;
        if tag == tag::ATOM_REF {
            return cache.atom(index).map(Term::Atom).map_err(|error| self.fail(error));
        }
        let (node, creation) = cache.node(index).map_err(|error| self.fail(error))?;
        let id = self.varint()?;
        Ok(if tag == tag::PID_REF {
            Term::Pid(Pid::new(node, id, creation))
        } else {
            Term::Ref(Ref::new(node, id, creation))
        })
    }

    /// A struct body; `depth` is the struct's own (its fields are one level deeper).
    fn structure(&mut self, depth: usize) -> Step<Struct> {
        let inner = self.enter(depth)?;
        let name = self.atom()?;
        let count = self.length()?;
        // A field is a name (at least its length byte) and a value (at least its tag).
        self.declare(count, 1, 2)?;
        let mut fields = Vec::with_capacity(count);
        for _ in 0..count {
            self.release(2);
            let field = self.atom()?;
            let mut value = None;
            self.value(inner, &mut value)?;
            fields.extend(value.map(|v| (field, v)));
        }
        Ok(Struct { name, fields })
    }

    /// A count and that many values; `depth` is the container's own.
    fn seq(&mut self, depth: usize) -> Step<Vec<Term>> {
        let inner = self.enter(depth)?;
        let count = self.length()?;
        self.declare(count, 1, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            self.release(1);
            self.value(inner, &mut items)?;
        }
        Ok(items)
    }

    /// A map body; `depth` is the map's own.
    fn map(&mut self, depth: usize) -> Step<BTreeMap<Term, Term>> {
        let inner = self.enter(depth)?;
        let count = self.length()?;
        self.declare(count, 2, 2)?;
        // Keys and values alternate in `flat`.
        let mut flat = Vec::with_capacity(2 * count);
        for _ in 0..2 * count {
            self.release(1);
            self.value(inner, &mut flat)?;
        }
        let ascending = flat.iter().step_by(2).zip(flat.iter().skip(2).step_by(2)).all(|(a, b)| a < b);
        let mut rest = flat.into_iter();
        let pairs = std::iter::from_fn(|| Some((rest.next()?, rest.next()?)));
        if ascending {
            // What encoders send: bulk-build without per-key searches.
            return Ok(pairs.collect());
        }
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            if map.insert(key, value).is_some() {
                return Err(self.fail(DecodeError::DuplicateKey));
            }
        }
        Ok(map)
    }

    /// The binary `bytes`, found at `at` in the input: a view of the shared buffer when
    /// [`decode_shared`]'s rule allows, else a copy.
    #[inline(always)]
    fn binary(&self, at: usize, bytes: &[u8]) -> Binary {
        if let Source::Shared { buffer, base } = self.source {
            let len = bytes.len();
            if len > SHARE_THRESHOLD && len.saturating_mul(SLICE_FRACTION) >= buffer.len() {
                if let Some(view) = buffer.slice(base + at..base + at + len) {
                    return view;
                }
            }
        }
        Binary::copy_from_slice(bytes)
    }

    #[inline(always)]
    fn atom(&mut self) -> Step<Atom> {
        let len = self.length()?;
        if len > MAX_ATOM_BYTES {
            return Err(self.fail(DecodeError::AtomTooLong(len)));
        }
        let bytes = self.take(len)?;
        cached_atom(bytes).map_err(|error| self.fail(error))
    }

    #[inline(always)]
    fn id(&mut self) -> Step<(NodeName, u64, u32)> {
        let len = self.length()?;
        let bytes = self.take(len)?;
        let node = cached_node(bytes).map_err(|error| self.fail(error))?;
        let id = self.varint()?;
        let raw = self.take(4)?;
        let creation = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        Ok((node, id, creation))
    }
}

const ATOM_SLOTS: usize = 64;
const NODE_SLOTS: usize = 16;

thread_local! {
    /// Recently decoded atoms, direct-mapped by [`slot_hash`] of their text. The slots point into
    /// the atom table (which never frees), so the cache owns nothing and needs no destructor.
    static ATOMS: [Cell<Option<&'static str>>; ATOM_SLOTS] = const { [const { Cell::new(None) }; ATOM_SLOTS] };
    /// Recently decoded node names, direct-mapped the same way and pointing into the node table.
    /// Keyed by their canonical text, which is what encoders send.
    static NODES: [Cell<Option<&'static NodeName>>; NODE_SLOTS] =
        const { [const { Cell::new(None) }; NODE_SLOTS] };
}

/// A hash of `bytes` for picking a cache slot (take its top bits): a mix of the length and the
/// first and last (up to) 8 bytes, constant time whatever the length. Collisions only cost a
/// cache miss, never a wrong answer (a slot's text is compared in full).
#[inline(always)]
fn slot_hash(bytes: &[u8]) -> u64 {
    let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
        _ => {
            let at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
            let len = bytes.len();
            (at(0) | at(1) << 8 | at(len / 2) << 16 | at(len.wrapping_sub(1)) << 24, 0)
        }
    };
    (head ^ tail.rotate_left(29) ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `a == b`, without a call to `memcmp` for the short texts that atoms and node names are: two
/// overlapping fixed-size loads from each end cover every length from 4 to 32 bytes.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn ends<const N: usize>(a: &[u8], b: &[u8]) -> Option<bool> {
        Some(a.first_chunk::<N>()? == b.first_chunk::<N>()? && a.last_chunk::<N>()? == b.last_chunk::<N>()?)
    }
    if a.len() != b.len() {
        return false;
    }
    let same = match a.len() {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => ends::<4>(a, b).unwrap_or(false),
        8..=15 => ends::<8>(a, b).unwrap_or(false),
        16..=32 => ends::<16>(a, b).unwrap_or(false),
        _ => a == b,
    };
    same
}

#[inline(always)]
fn cached_atom(bytes: &[u8]) -> Result<Atom, DecodeError> {
    let index = (slot_hash(bytes) >> (64 - ATOM_SLOTS.trailing_zeros())) as usize;
    let hit = ATOMS.try_with(|cache| cache.get(index).and_then(Cell::get)).ok().flatten();
    match hit {
        Some(text) if same_bytes(text.as_bytes(), bytes) => Ok(Atom::from_interned(text)),
        _ => new_atom(bytes, index),
    }
}

/// Cache miss: interns the atom and caches it when the table took it.
#[inline(never)]
fn new_atom(bytes: &[u8], index: usize) -> Result<Atom, DecodeError> {
    let atom = Atom::new(std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)?);
    if let Some(text) = atom.interned() {
        // The cache is gone only while the thread is being torn down; then skip it.
        let _ = ATOMS.try_with(|cache| cache.get(index).map(|slot| slot.set(Some(text))));
    }
    Ok(atom)
}

#[inline(always)]
fn cached_node(bytes: &[u8]) -> Result<NodeName, DecodeError> {
    let index = (slot_hash(bytes) >> (64 - NODE_SLOTS.trailing_zeros())) as usize;
    let hit = NODES.try_with(|cache| cache.get(index).and_then(Cell::get)).ok().flatten();
    match hit {
        Some(node) if same_bytes(node.as_str().as_bytes(), bytes) => Ok(node.clone()),
        _ => new_node(bytes, index),
    }
}

/// Cache miss: parses and validates the name, and caches it when `bytes` are its canonical form
/// (a name sent in another spelling is parsed every time: correct, only slower).
#[inline(never)]
fn new_node(bytes: &[u8], index: usize) -> Result<NodeName, DecodeError> {
    let node = NodeName::parse(std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)?)?;
    if node.as_str().as_bytes() == bytes {
        if let Some(shared) = node.interned() {
            let _ = NODES.try_with(|cache| cache.get(index).map(|slot| slot.set(Some(shared))));
            return Ok(shared.clone());
        }
    }
    Ok(node)
}
