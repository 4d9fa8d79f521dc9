//! [`Binary`]: the bytes of a `Term::Binary`, owned when small and reference-counted when large,
//! so that sending one large binary to many processes shares it instead of copying it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Bound, Deref, RangeBounds};
use std::sync::Arc;

/// Binaries of at most this many bytes are owned by each value; larger ones are shared.
///
/// The same line as BEAM's between heap binaries and reference-counted ones: below it a copy
/// (one small allocation and a short `memcpy`) costs about what a shared count costs (an atomic
/// increment and decrement on a cache line every clone touches), and a small value that keeps
/// nothing else alive cannot pin a large buffer.
pub const SHARE_THRESHOLD: usize = 64;

/// Immutable bytes, cheap to clone when large: what `Term::Binary` holds.
///
/// A binary of at most [`SHARE_THRESHOLD`] bytes owns its bytes, and cloning it copies them. A
/// larger one is a view of a reference-counted buffer: cloning it, and so sending it to a
/// thousand processes or to every member of a group, copies no byte. The buffer is either the
/// binary's own or one it shares with other binaries, such as a received message whose large
/// binaries are decoded as slices of it (README, "Shared binaries"); [`Binary::slice`] makes
/// such views. A view keeps its whole buffer alive, which is why the decoder only slices binaries
/// that are a large part of the buffer (see [`crate::codec::decode_shared`]).
///
/// Equality, order and hashing are by content, whatever the representation, and agree with those
/// of `[u8]` (and `Vec<u8>`), so a binary can be looked up by a byte slice.
///
/// ```
/// use snow_shared::Binary;
///
/// let big = Binary::from(vec![7u8; 65_536]);
/// let copy = big.clone();
/// assert_eq!(copy.as_ptr(), big.as_ptr(), "a large binary is shared, not copied");
/// let small = Binary::from(&b"hello"[..]);
/// assert_eq!(&*small, b"hello");
/// assert_eq!(big.slice(..3).unwrap(), Binary::from(vec![7u8; 3]));
/// ```
#[derive(Clone)]
pub struct Binary(Repr);

#[derive(Clone)]
enum Repr {
    /// At most [`SHARE_THRESHOLD`] bytes.
    Small(Box<[u8]>),
    /// More than [`SHARE_THRESHOLD`] bytes: `buf[start..end]`, with `start <= end <= buf.len()`.
    Shared { buf: Arc<Vec<u8>>, start: usize, end: usize },
}

impl Binary {
    /// The empty binary.
    pub fn new() -> Binary {
        Binary(Repr::Small(Box::default()))
    }

    /// A binary holding a copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Binary {
        if bytes.len() <= SHARE_THRESHOLD {
            Binary(Repr::Small(bytes.into()))
        } else {
            Binary::shared(Arc::new(bytes.to_vec()))
        }
    }

    /// The whole of `buf` as a shared binary (`buf` is larger than the threshold).
    fn shared(buf: Arc<Vec<u8>>) -> Binary {
        let end = buf.len();
        Binary(Repr::Shared { buf, start: 0, end })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Small(bytes) => bytes,
            // The invariant keeps the range inside the buffer; the fallback is never taken.
            Repr::Shared { buf, start, end } => buf.get(*start..*end).unwrap_or_default(),
        }
    }

    /// Whether this binary is a view of a reference-counted buffer (it is larger than
    /// [`SHARE_THRESHOLD`]), so that cloning it copies no byte.
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared { .. })
    }

    /// The bytes in `range` (indices into this binary), or `None` if the range is out of bounds or
    /// decreasing. A result larger than [`SHARE_THRESHOLD`] shares this binary's buffer (no copy;
    /// it keeps the whole buffer alive); a smaller one is a copy.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Option<Binary> {
        let len = self.len();
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1)?,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => len,
        };
        if from > to || to > len {
            return None;
        }
        match &self.0 {
            Repr::Shared { buf, start, .. } if to - from > SHARE_THRESHOLD => {
                Some(Binary(Repr::Shared { buf: Arc::clone(buf), start: start + from, end: start + to }))
            }
            _ => Some(Binary::copy_from_slice(self.as_slice().get(from..to)?)),
        }
    }

    /// The bytes as a vector: without a copy when this binary is the only user of its whole
    /// buffer (a large binary made from a `Vec` and never cloned), else copied.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Small(bytes) => bytes.into_vec(),
            Repr::Shared { buf, start, end } => {
                if start == 0 && end == buf.len() {
                    Arc::try_unwrap(buf).unwrap_or_else(|buf| buf.as_slice().to_vec())
                } else {
                    buf.get(start..end).unwrap_or_default().to_vec()
                }
            }
        }
    }
}

impl Default for Binary {
    fn default() -> Binary {
        Binary::new()
    }
}

impl Deref for Binary {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Binary {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Binary {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Takes the vector without copying its bytes when it is larger than [`SHARE_THRESHOLD`].
impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Binary {
        if bytes.len() <= SHARE_THRESHOLD {
            Binary(Repr::Small(bytes.into_boxed_slice()))
        } else {
            Binary::shared(Arc::new(bytes))
        }
    }
}

impl From<&[u8]> for Binary {
    fn from(bytes: &[u8]) -> Binary {
        Binary::copy_from_slice(bytes)
    }
}

impl From<&Vec<u8>> for Binary {
    fn from(bytes: &Vec<u8>) -> Binary {
        Binary::copy_from_slice(bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Binary {
    fn from(bytes: &[u8; N]) -> Binary {
        Binary::copy_from_slice(bytes)
    }
}

impl<const N: usize> From<[u8; N]> for Binary {
    fn from(bytes: [u8; N]) -> Binary {
        Binary::copy_from_slice(&bytes)
    }
}

impl From<Box<[u8]>> for Binary {
    fn from(bytes: Box<[u8]>) -> Binary {
        Binary::from(bytes.into_vec())
    }
}

/// The text's UTF-8 bytes, taken without a copy when larger than [`SHARE_THRESHOLD`].
impl From<String> for Binary {
    fn from(text: String) -> Binary {
        Binary::from(text.into_bytes())
    }
}

/// The text's UTF-8 bytes.
impl From<&str> for Binary {
    fn from(text: &str) -> Binary {
        Binary::copy_from_slice(text.as_bytes())
    }
}

impl From<Binary> for Vec<u8> {
    fn from(binary: Binary) -> Vec<u8> {
        binary.into_vec()
    }
}

impl PartialEq for Binary {
    fn eq(&self, other: &Binary) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Binary {}

impl PartialEq<[u8]> for Binary {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for Binary {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialOrd for Binary {
    fn partial_cmp(&self, other: &Binary) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Binary {
    fn cmp(&self, other: &Binary) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

/// Hashes exactly as the byte slice does (which is also how `Vec<u8>` hashes).
impl Hash for Binary {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        let mut state = DefaultHasher::new();
        value.hash(&mut state);
        state.finish()
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn small_binaries_are_owned_and_large_ones_shared() {
        for n in [0, 1, SHARE_THRESHOLD] {
            let small = Binary::from(bytes(n));
            assert!(!small.is_shared(), "{n} bytes");
            assert_eq!(small, bytes(n));
            if n > 0 {
                assert_ne!(small.clone().as_ptr(), small.as_ptr(), "a clone of a small binary is a copy");
            }
        }
        let large = Binary::from(bytes(SHARE_THRESHOLD + 1));
        assert!(large.is_shared());
        assert_eq!(large.clone().as_ptr(), large.as_ptr());
        assert!(Binary::copy_from_slice(&bytes(1000)).is_shared());
    }

    #[test]
    fn a_large_vector_is_taken_without_a_copy_and_given_back_without_one() {
        let v = bytes(4096);
        let at = v.as_ptr();
        let binary = Binary::from(v);
        assert_eq!(binary.as_ptr(), at);
        let back = binary.into_vec();
        assert_eq!(back.as_ptr(), at, "sole owner of the whole buffer");
        let binary = Binary::from(bytes(4096));
        let other = binary.clone();
        let copy = binary.into_vec();
        assert_ne!(copy.as_ptr(), other.as_ptr(), "still shared: copied out");
        assert_eq!(copy, bytes(4096));
    }

    #[test]
    fn slices_share_when_large_and_copy_when_small() {
        let whole = Binary::from(bytes(1000));
        let mid = whole.slice(100..900).unwrap();
        assert_eq!(mid, bytes(1000)[100..900]);
        assert_eq!(mid.as_ptr(), whole[100..].as_ptr(), "a view, not a copy");
        let inner = mid.slice(..=99).unwrap();
        assert_eq!(inner.as_ptr(), whole[100..].as_ptr(), "a view of a view is a view of the buffer");
        assert_eq!(inner, bytes(1000)[100..200]);
        let small = whole.slice(10..10 + SHARE_THRESHOLD).unwrap();
        assert!(!small.is_shared());
        assert_eq!(small, bytes(1000)[10..10 + SHARE_THRESHOLD]);
        assert_eq!(mid.clone().into_vec(), bytes(1000)[100..900]);
        assert_eq!(whole.slice(..), Some(whole.clone()));
        assert_eq!(whole.slice(1000..), Some(Binary::new()));
        assert_eq!(whole.slice(..1001), None);
        let (five, four) = (5, 4);
        assert_eq!(whole.slice(five..four), None);
        assert_eq!(whole.slice(..=usize::MAX), None);
        assert_eq!(Binary::from(b"abc"), Binary::from(&b"abc"[..]));
        assert_eq!(Binary::from(b"abc").slice(1..=1), Some(Binary::from(b"b")));
    }

    #[test]
    fn equality_order_and_hash_are_by_content_across_representations() {
        let buffer = Binary::from([vec![0u8; 10], bytes(500), vec![0u8; 10]].concat());
        let view = buffer.slice(10..510).unwrap();
        let own = Binary::from(bytes(500));
        assert!(view.is_shared() && own.is_shared());
        assert_eq!(view, own);
        assert_eq!(hash_of(&view), hash_of(&own));
        assert_eq!(hash_of(&own), hash_of(&bytes(500)), "hashes as Vec<u8> does");
        assert_eq!(hash_of(&own), hash_of(&bytes(500)[..]), "and as [u8] does");
        assert_eq!(view.cmp(&own), Ordering::Equal);

        let mut sorted = [
            Binary::from(vec![1u8; 100]),
            Binary::from(&[1u8, 0][..]),
            Binary::new(),
            buffer.slice(12..200).unwrap(),
            Binary::from(vec![1u8; 64]),
        ];
        sorted.sort();
        let as_vecs: Vec<Vec<u8>> = sorted.iter().map(|b| b.to_vec()).collect();
        let mut expected = as_vecs.clone();
        expected.sort();
        assert_eq!(as_vecs, expected, "the order is the byte slices' order");
        assert_eq!(format!("{:?}", Binary::from(&[1u8, 2])), "[1, 2]");
    }
}
