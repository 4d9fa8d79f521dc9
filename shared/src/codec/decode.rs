//! Decoding with limits, for input that may be hostile.
//!
//! Memory discipline: before a container reserves room for `n` elements, the decoder checks that
//! the input still holds at least one byte per element *not already promised to an enclosing
//! container* (the `pending` count). So the sum of every reserved-but-unfilled slot never exceeds
//! the bytes left, whatever the nesting, and allocation stays proportional to the input.

use std::cell::RefCell;
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
        pending: 0,
        elements: 1,
        max_elements: limits.max_elements,
        max_depth: limits.max_depth.min(MAX_DEPTH_CEILING),
    };
    let mut top = None;
    decoder.term(0, &mut top)?;
    let term = top.ok_or(DecodeError::Truncated)?;
    Ok((term, decoder.pos))
}

/// Where a decoded term goes: the next slot of a container, or the top-level result.
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
    /// Bytes promised to declared elements that have not started yet (at least one each).
    /// Invariant: `pending <= input.len() - pos`.
    pending: usize,
    /// Terms declared so far, the top-level one included.
    elements: usize,
    max_elements: usize,
    max_depth: usize,
}

impl<'a> Decoder<'a> {
    /// Bytes that the current element may still consume.
    fn available(&self) -> usize {
        self.input.len() - self.pos - self.pending
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.available() {
            return Err(DecodeError::Truncated);
        }
        let slice = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let end = self.input.len() - self.pending;
        // One-byte varints (every length under 128) skip the general loop.
        if let Some(&byte) = self.input[..end].get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        let (value, used) = read_varint(&self.input[self.pos..end])?;
        self.pos += used;
        Ok(value)
    }

    #[inline]
    fn length(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.varint()?).map_err(|_| DecodeError::LengthOverflow)
    }

    /// Registers `count` elements that need at least `min_bytes` each, failing before any
    /// allocation if the input cannot hold them or the element limit would be passed.
    #[inline]
    fn declare(&mut self, count: usize, terms_each: usize, min_bytes: usize) -> Result<(), DecodeError> {
        let need = count.checked_mul(min_bytes).ok_or(DecodeError::Truncated)?;
        if need > self.available() {
            return Err(DecodeError::Truncated);
        }
        let total = count.checked_mul(terms_each).and_then(|t| t.checked_add(self.elements));
        match total {
            Some(total) if total <= self.max_elements => self.elements = total,
            _ => return Err(DecodeError::TooManyElements { max: self.max_elements }),
        }
        self.pending += need;
        Ok(())
    }

    /// Starts decoding a declared element: its promised bytes become available to it.
    #[inline]
    fn release(&mut self, n: usize) {
        self.pending -= n;
    }

    fn enter(&self, depth: usize) -> Result<usize, DecodeError> {
        if depth >= self.max_depth {
            return Err(DecodeError::TooDeep { max: self.max_depth });
        }
        Ok(depth + 1)
    }

    /// Decodes one term into `sink`. Writing straight into the destination (rather than returning
    /// a `Term`) keeps the hot loop free of store-to-load forwarding stalls on the 56-byte value.
    fn term<S: Sink>(&mut self, depth: usize, sink: &mut S) -> Result<(), DecodeError> {
        let tag = self.byte()?;
        // Scalars are written straight into the sink, each arm on its own, so that the compiler
        // does not build them in a shared temporary and copy it (a store-forwarding stall that
        // used to dominate decoding of integer lists).
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
            _ => {
                let term = self.compound(tag, depth)?;
                sink.put(term);
            }
        }
        Ok(())
    }

    /// Decodes a value whose tag is not a scalar's.
    #[inline(never)]
    fn compound(&mut self, tag: u8, depth: usize) -> Result<Term, DecodeError> {
        Ok(match tag {
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
            tag::STRUCT => {
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
                    self.term(inner, &mut value)?;
                    fields.extend(value.map(|v| (field, v)));
                }
                Term::Struct(Box::new(Struct { name, fields }))
            }
            tag::SUM => {
                let inner = self.enter(depth)?;
                let type_name = self.atom()?;
                let variant = self.atom()?;
                Term::Sum(Box::new(Sum { type_name, variant, fields: self.seq(inner)? }))
            }
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }

    fn seq(&mut self, depth: usize) -> Result<Vec<Term>, DecodeError> {
        let count = self.length()?;
        self.declare(count, 1, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            self.release(1);
            // Integers, the commonest element, are pushed here rather than through `term`.
            match self.input.get(self.pos) {
                Some(&small) if i64::from(small) <= SMALL_INT_MAX => {
                    self.pos += 1;
                    items.push(Term::Int(i64::from(small)));
                }
                Some(&tag::INT) => {
                    self.pos += 1;
                    let value = unzigzag(self.varint()?);
                    items.push(Term::Int(value));
                }
                _ => self.term(depth, &mut items)?,
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
            self.term(depth, &mut flat)?;
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

    #[inline]
    fn atom(&mut self) -> Result<Atom, DecodeError> {
        let len = self.length()?;
        if len > MAX_ATOM_BYTES {
            return Err(DecodeError::AtomTooLong(len));
        }
        cached_atom(self.take(len)?)
    }

    #[inline]
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

/// A cached node name with the bytes it was received as.
type NodeSlot = Option<(Box<[u8]>, NodeName)>;

thread_local! {
    /// Recently decoded atoms, direct-mapped by a hash of their text.
    static ATOMS: RefCell<[Option<Atom>; ATOM_SLOTS]> = const { RefCell::new([const { None }; ATOM_SLOTS]) };
    /// Recently decoded node names, keyed by their bytes as received (which may differ from the
    /// canonical form, e.g. in host case).
    static NODES: RefCell<[NodeSlot; NODE_SLOTS]> =
        const { RefCell::new([const { None }; NODE_SLOTS]) };
}

/// Cache slot for `bytes`: a mix of the length and the first and last (up to) 8 bytes. Constant
/// time whatever the length, which matters for node names read once per pid; collisions only cost
/// a cache miss, never a wrong answer (the slot's key is compared in full).
fn slot(bytes: &[u8], slots: usize) -> usize {
    let word = |chunk: &[u8]| {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(buf)
    };
    let head = word(&bytes[..bytes.len().min(8)]);
    let tail = word(&bytes[bytes.len().saturating_sub(8)..]);
    let mixed = (head ^ tail.rotate_left(29) ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 40) as usize % slots
}

fn new_atom(bytes: &[u8]) -> Result<Atom, DecodeError> {
    Ok(Atom::new(std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)?))
}

#[inline]
fn cached_atom(bytes: &[u8]) -> Result<Atom, DecodeError> {
    let index = slot(bytes, ATOM_SLOTS);
    let cached = ATOMS.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(atom) = &cache[index] {
            if atom.as_str().as_bytes() == bytes {
                return Ok(atom.clone());
            }
        }
        let atom = new_atom(bytes)?;
        cache[index] = Some(atom.clone());
        Ok(atom)
    });
    // The cache is gone only while the thread is being torn down; decode without it then.
    cached.unwrap_or_else(|_| new_atom(bytes))
}

fn parse_node(bytes: &[u8]) -> Result<NodeName, DecodeError> {
    Ok(NodeName::parse(std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)?)?)
}

#[inline]
fn cached_node(bytes: &[u8]) -> Result<NodeName, DecodeError> {
    let index = slot(bytes, NODE_SLOTS);
    let cached = NODES.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((key, node)) = &cache[index] {
            if **key == *bytes {
                return Ok(node.clone());
            }
        }
        let node = parse_node(bytes)?;
        cache[index] = Some((bytes.into(), node.clone()));
        Ok(node)
    });
    cached.unwrap_or_else(|_| parse_node(bytes))
}
