//! The term codec (PROTOCOL.md section 1): [`Term`](crate::Term) to bytes and back.
//!
//! An encoded term is one version byte ([`WIRE_VERSION`]) followed by one type-tagged value.
//! Integers 0 to 127 take a single byte; other integers are zigzag varints; every length and count
//! is an unsigned LEB128 varint. The format is specified byte for byte in `shared/PROTOCOL.md`.
//!
//! Decoding is built for hostile input. It never panics, always terminates in time linear in the
//! input, and never allocates more than the input justifies: a declared length or element count is
//! checked against the bytes actually left before anything is reserved, so a 10-byte message that
//! claims a billion elements fails with [`DecodeError::Truncated`] at once. Nesting depth, element
//! count and input size are bounded by [`DecodeLimits`]. Peak memory while decoding is a small
//! constant multiple of `size_of::<Term>()` (32 bytes on 64-bit targets) per input byte, plus the
//! bytes of strings and binaries (each decoded with one copy). [`decode_shared`] decodes from a
//! shared buffer ([`crate::Binary`]) and makes its large binaries views of that buffer, not copies.
//!
//! Repeated atoms and node names are resolved through a small per-thread cache, so a stream of
//! messages that mention `:ok` or the same pid's node does not take the atom table's lock for each.

mod decode;
mod encode;

pub use decode::{decode, decode_prefix, decode_prefix_shared, decode_shared, decode_with};
pub(crate) use decode::{decode_prefix_cached, CacheLookup};
pub use encode::{
    encode, encode_atom_into, encode_into, encode_pid_into, encode_ref_into, encode_term_into, encoded_len,
};
pub(crate) use encode::{encode_into_with, write_bytes, IdKind, InFull, NameWriter};

use crate::name::NameError;

/// The version byte that starts every encoded term. A decoder rejects any other value.
pub const WIRE_VERSION: u8 = 1;

/// Hard ceiling on nesting depth whatever [`DecodeLimits::max_depth`] says: the decoder recurses
/// once per nesting level, and this bound keeps it well inside a 2 MiB thread stack.
pub const MAX_DEPTH_CEILING: usize = 1024;

/// Integers in `0..=SMALL_INT_MAX` are encoded as their own tag byte.
pub(crate) const SMALL_INT_MAX: i64 = 0x7f;

/// Type tags (PROTOCOL.md 1.3). Tags 0x00-0x7F are small integers.
pub(crate) mod tag {
    pub const INT: u8 = 0x80;
    pub const FLOAT: u8 = 0x81;
    pub const UNIT: u8 = 0x82;
    pub const FALSE: u8 = 0x83;
    pub const TRUE: u8 = 0x84;
    pub const ATOM: u8 = 0x85;
    pub const STRING: u8 = 0x86;
    pub const BINARY: u8 = 0x87;
    pub const TUPLE: u8 = 0x88;
    pub const LIST: u8 = 0x89;
    pub const MAP: u8 = 0x8a;
    pub const PID: u8 = 0x8b;
    pub const REF: u8 = 0x8c;
    pub const STRUCT: u8 = 0x8d;
    pub const SUM: u8 = 0x8e;
    /// An atom of the connection's atom cache (PROTOCOL.md 4.4): only inside a cached frame.
    pub const ATOM_REF: u8 = 0x8f;
    /// A pid whose node and creation are an entry of the atom cache (4.4).
    pub const PID_REF: u8 = 0x90;
    /// A reference whose node and creation are an entry of the atom cache (4.4).
    pub const REF_REF: u8 = 0x91;
}

/// Bounds a decoder enforces on one encoded term. Every bound fails with its own [`DecodeError`].
///
/// The defaults suit distribution traffic: deep enough for any real message, large enough for the
/// 100 MB messages README's "Guarantees" mentions, small enough that a peer cannot make a node allocate
/// without bound. Element counts are further limited by the input itself (each element takes at
/// least one byte), so `max_elements` only matters for inputs that are large anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// How many containers (tuple, list, map, struct, sum) may nest inside each other. A scalar at
    /// the top level has depth 0, `[1]` has depth 1, `[[1]]` depth 2. Capped at
    /// [`MAX_DEPTH_CEILING`]. Default 128.
    pub max_depth: usize,
    /// How many terms the whole input may contain, counting every nested term and the top-level
    /// one. Default 16 Mi (16 777 216).
    pub max_elements: usize,
    /// Largest accepted input, version byte included. Default 128 MiB.
    pub max_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> DecodeLimits {
        DecodeLimits { max_depth: 128, max_elements: 16 << 20, max_bytes: 128 << 20 }
    }
}

/// Why bytes are not a valid encoded term. Every variant means the sender is broken, hostile, or
/// speaks another version; the receiver should drop the message (and usually the connection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value, or a declared length/count exceeds the bytes left.
    #[error("encoded term is truncated: the input ends before the value it declares; check that the whole message was received")]
    Truncated,
    /// The first byte is not [`WIRE_VERSION`].
    #[error("unsupported wire version {0} (this node speaks version {WIRE_VERSION}); upgrade the older node")]
    BadVersion(u8),
    /// A type tag that this version does not define.
    #[error("unknown type tag 0x{0:02x} in encoded term; the peer is sending a newer or corrupt format")]
    UnknownTag(u8),
    /// Containers nest deeper than [`DecodeLimits::max_depth`].
    #[error("encoded term nests deeper than the limit of {max} levels; flatten the message or raise DecodeLimits::max_depth")]
    TooDeep {
        /// The depth limit in force.
        max: usize,
    },
    /// More terms than [`DecodeLimits::max_elements`].
    #[error("encoded term has more than {max} elements; split the message or raise DecodeLimits::max_elements")]
    TooManyElements {
        /// The element limit in force.
        max: usize,
    },
    /// The input is longer than [`DecodeLimits::max_bytes`].
    #[error("encoded term is {len} bytes, over the limit of {max}; send it in parts or raise DecodeLimits::max_bytes")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// The size limit in force.
        max: usize,
    },
    /// A string, atom or node name is not valid UTF-8.
    #[error("string or atom in encoded term is not valid UTF-8")]
    BadUtf8,
    /// An atom is longer than [`crate::atom::MAX_ATOM_BYTES`].
    #[error("atom of {0} bytes in encoded term is over the {max} byte limit", max = crate::atom::MAX_ATOM_BYTES)]
    AtomTooLong(usize),
    /// A pid or ref names a node whose name is not a valid `name@host`.
    #[error("pid or ref in encoded term carries an invalid node name: {0}")]
    BadNodeName(Box<NameError>),
    /// Bytes remain after the term.
    #[error("{0} unexpected bytes after the encoded term; the message framing is probably wrong")]
    TrailingBytes(usize),
    /// A varint is longer than 10 bytes or does not fit in 64 bits.
    #[error("varint in encoded term overflows 64 bits")]
    VarintOverflow,
    /// A length or count does not fit in this machine's address space.
    #[error("length in encoded term does not fit in memory on this machine")]
    LengthOverflow,
    /// A map holds the same key twice.
    #[error("map in encoded term holds a duplicate key; the sender must send each key once")]
    DuplicateKey,
    /// A reference to the connection's atom cache (PROTOCOL.md 4.4) names an index that holds
    /// nothing, or an entry of the other kind (an atom where a node is needed, or the reverse).
    #[error("atom cache reference to index {index}: {problem}; the peer's cache is out of step with ours")]
    BadCacheRef {
        /// The index referred to.
        index: u64,
        /// What is wrong with it.
        problem: &'static str,
    },
}

// Boxed so that `Result<Term, DecodeError>`, which the decoder moves at every level, stays small.
impl From<NameError> for DecodeError {
    fn from(error: NameError) -> DecodeError {
        DecodeError::BadNodeName(Box::new(error))
    }
}

/// Zigzag mapping of signed to unsigned so that small negative numbers get short varints.
pub(crate) fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Bytes an unsigned LEB128 varint of `v` takes (1 to 10).
pub fn varint_len(v: u64) -> usize {
    // 7 payload bits per byte; zero still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `v` as an unsigned LEB128 varint (PROTOCOL.md 1.2).
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint from the start of `input`: the value and the bytes it took.
///
/// Overlong encodings (extra `0x80` groups) are accepted as long as the value fits in 64 bits and
/// the varint is at most 10 bytes; the encoder always writes the shortest form.
pub fn read_varint(input: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let payload = u64::from(byte & 0x7f);
        if i == 9 && payload > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        value |= payload << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if input.len() >= 10 {
        Err(DecodeError::VarintOverflow)
    } else {
        Err(DecodeError::Truncated)
    }
}

#[cfg(test)]
mod tests;
