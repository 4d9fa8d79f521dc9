//! Decoding with limits, for input that may be hostile.
//!
//! Memory discipline: before a container reserves room for `n` elements, the decoder checks that
//! the input still holds at least one byte per element *not already promised to an enclosing
//! container* (the `pending` count). So the sum of every reserved-but-unfilled slot never exceeds
//! the bytes left, whatever the nesting, and allocation stays proportional to the input.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::{read_varint, tag, unzigzag, DecodeError, DecodeLimits, MAX_DEPTH_CEILING, SMALL_INT_MAX, WIRE_VERSION};
use crate::atom::{Atom, MAX_ATOM_BYTES};
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::{Struct, Sum, Term};

/// Decodes one term from the whole of `bytes` (version byte first) with [`DecodeLimits::default`].
#[inline]
pub fn decode(bytes: &[u8]) -> Result<Term, DecodeError> {
    decode_with(bytes, &DecodeLimits::default())
}

/// Decodes one term from the whole of `bytes` under `limits`; leftover bytes are an error.
#[inline]
pub fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Term, DecodeError> {
    let (term, used) = decode_prefix(bytes, limits)?;
    match bytes.len() - used {
        0 => Ok(term),
        extra => Err(DecodeError::TrailingBytes(extra)),
    }
}

/// Decodes the term at the start of `bytes` (version byte first) and returns it with the number of
/// bytes it took, for protocol layers that put more data after a term.
#[inline]
pub fn decode_prefix(bytes: &[u8], limits: &DecodeLimits) -> Result<(Term, usize), DecodeError> {
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
    };
    let term = decoder.value(0)?;
    Ok((term, decoder.pos))
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
}

impl<'a> Decoder<'a> {
    /// The bytes that the current element may still consume.
    #[inline(always)]
    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..self.end).unwrap_or_default()
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let slice = self.rest().get(..n).ok_or(DecodeError::Truncated)?;
        self.pos += n;
        Ok(slice)
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.rest().first().ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let rest = self.rest();
        // One-byte varints (every length under 128) skip the general loop.
        if let Some(&byte) = rest.first() {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        let (value, used) = read_varint(rest)?;
        self.pos += used;
        Ok(value)
    }

    #[inline(always)]
    fn length(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.varint()?).map_err(|_| DecodeError::LengthOverflow)
    }

    /// Registers `count` elements that need at least `min_bytes` each, failing before any
    /// allocation if the input cannot hold them or the element limit would be passed.
    #[inline(always)]
    fn declare(&mut self, count: usize, terms_each: usize, min_bytes: usize) -> Result<(), DecodeError> {
        let need = count.checked_mul(min_bytes).ok_or(DecodeError::Truncated)?;
        if need > self.end - self.pos {
            return Err(DecodeError::Truncated);
        }
        let total = count.checked_mul(terms_each).and_then(|t| t.checked_add(self.elements));
        match total {
            Some(total) if total <= self.max_elements => self.elements = total,
            _ => return Err(DecodeError::TooManyElements { max: self.max_elements }),
        }
        self.end -= need;
        Ok(())
    }

    /// Starts decoding a declared element: its promised bytes become available to it.
    #[inline(always)]
    fn release(&mut self, n: usize) {
        self.end += n;
    }

    #[inline(always)]
    fn enter(&self, depth: usize) -> Result<usize, DecodeError> {
        if depth >= self.max_depth {
            return Err(DecodeError::TooDeep { max: self.max_depth });
        }
        Ok(depth + 1)
    }

    /// Decodes one value (tag and body).
    fn value(&mut self, depth: usize) -> Result<Term, DecodeError> {
        let tag = self.byte()?;
        Ok(match tag {
            small if i64::from(small) <= SMALL_INT_MAX => Term::Int(i64::from(small)),
            tag::INT => Term::Int(unzigzag(self.varint()?)),
            tag::FLOAT => {
                let raw = self.take(8)?;
                let mut bits = [0u8; 8];
                bits.copy_from_slice(raw);
                Term::Float(f64::from_bits(u64::from_be_bytes(bits)))
            }
            tag::UNIT => Term::Unit,
            tag::FALSE => Term::Bool(false),
            tag::TRUE => Term::Bool(true),
            tag::ATOM => Term::Atom(self.atom()?),
            tag::STRING => {
                let len = self.length()?;
                let text = std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::BadUtf8)?;
                Term::String(text.to_owned())
            }
            tag::BINARY => {
                let len = self.length()?;
                Term::Binary(self.take(len)?.to_vec())
            }
            tag::TUPLE => Term::Tuple(self.seq(self.enter(depth)?)?),
            tag::LIST => Term::List(self.seq(self.enter(depth)?)?),
            tag::MAP => Term::Map(self.map(self.enter(depth)?)?),
            tag::PID => {
                let (node, id, creation) = self.id()?;
                Term::Pid(Pid::new(node, id, creation))
            }
            tag::REF => {
                let (node, id, creation) = self.id()?;
                Term::Ref(Ref::new(node, id, creation))
            }
            tag::STRUCT => Term::Struct(Box::new(self.structure(self.enter(depth)?)?)),
            tag::SUM => {
                let inner = self.enter(depth)?;
                let type_name = self.atom()?;
                let variant = self.atom()?;
                Term::Sum(Box::new(Sum { type_name, variant, fields: self.seq(inner)? }))
            }
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }

    fn structure(&mut self, depth: usize) -> Result<Struct, DecodeError> {
        let name = self.atom()?;
        let count = self.length()?;
        // A field is a name (at least its length byte) and a value (at least its tag).
        self.declare(count, 1, 2)?;
        let mut fields = Vec::with_capacity(count);
        for _ in 0..count {
            self.release(2);
            let field = self.atom()?;
            fields.push((field, self.value(depth)?));
        }
        Ok(Struct { name, fields })
    }

    fn seq(&mut self, depth: usize) -> Result<Vec<Term>, DecodeError> {
        let count = self.length()?;
        self.declare(count, 1, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            self.release(1);
            // Integers, the commonest element, are pushed here rather than through `value`.
            match self.rest().first() {
                Some(&small) if i64::from(small) <= SMALL_INT_MAX => {
                    self.pos += 1;
                    items.push(Term::Int(i64::from(small)));
                }
                Some(&tag::INT) => {
                    self.pos += 1;
                    let value = unzigzag(self.varint()?);
                    items.push(Term::Int(value));
                }
                _ => items.push(self.value(depth)?),
            }
        }
        Ok(items)
    }

    fn map(&mut self, depth: usize) -> Result<BTreeMap<Term, Term>, DecodeError> {
        let count = self.length()?;
        self.declare(count, 2, 2)?;
        // Keys and values alternate in `flat`.
        let mut flat = Vec::with_capacity(2 * count);
        for _ in 0..2 * count {
            self.release(1);
            flat.push(self.value(depth)?);
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
                return Err(DecodeError::DuplicateKey);
            }
        }
        Ok(map)
    }

    #[inline(always)]
    fn atom(&mut self) -> Result<Atom, DecodeError> {
        let len = self.length()?;
        if len > MAX_ATOM_BYTES {
            return Err(DecodeError::AtomTooLong(len));
        }
        cached_atom(self.take(len)?)
    }

    #[inline(always)]
    fn id(&mut self) -> Result<(NodeName, u64, u32), DecodeError> {
        let len = self.length()?;
        let node = cached_node(self.take(len)?)?;
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

#[inline(always)]
fn cached_atom(bytes: &[u8]) -> Result<Atom, DecodeError> {
    let index = (slot_hash(bytes) >> (64 - ATOM_SLOTS.trailing_zeros())) as usize;
    let hit = ATOMS.try_with(|cache| cache.get(index).and_then(Cell::get)).ok().flatten();
    match hit {
        Some(text) if text.as_bytes() == bytes => Ok(Atom::from_interned(text)),
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
        Some(node) if node.as_str().as_bytes() == bytes => Ok(node.clone()),
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
