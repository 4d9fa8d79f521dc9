//! Interned atoms.
//!
//! An [`Atom`] is a shared, immutable name (`:ok`, `:EXIT`, a struct's type name, a node name).
//! Atoms are interned in a process-wide table so that decoding the same atom a million times costs
//! one allocation, not a million, and cloning an interned atom is a pointer copy (no reference
//! count to touch). Unlike BEAM, the table is bounded: once it holds [`MAX_INTERNED_ATOMS`] names,
//! new atoms are still created and still compare equal to any other atom with the same text, they
//! are simply not shared (they are reference-counted and freed when the last clone goes). A hostile
//! peer therefore cannot exhaust memory by sending fresh atoms, which is a classic way to crash an
//! Erlang node: the table holds at most `MAX_INTERNED_ATOMS` texts of at most [`MAX_ATOM_BYTES`].
//!
//! Text from a peer that has not authenticated never enters the table: such names are made with
//! [`Atom::uninterned`] (the handshake's node names, PROTOCOL.md 4.2), so an unauthenticated peer
//! cannot fill the table for everyone else. [`Atom::existing`] looks a text up without adding it.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock};

/// Upper bound on the number of distinct atoms kept in the intern table.
pub const MAX_INTERNED_ATOMS: usize = 1 << 20;

/// Longest atom text accepted, in bytes (BEAM allows 255 characters).
pub const MAX_ATOM_BYTES: usize = 1024;

/// A cheaply clonable, interned name.
///
/// Equality, ordering and hashing are those of the text, so an atom that could not be interned
/// behaves exactly like one that was.
#[derive(Clone)]
pub struct Atom(Repr);

#[derive(Clone)]
enum Repr {
    /// Text owned by the intern table, which lives as long as the process: clones are copies, and
    /// two interned atoms are equal exactly when they point at the same text.
    Interned(&'static str),
    /// Made while the table was full: shared by reference count and freed with its last clone.
    Overflow(Arc<str>),
}

/// The intern table. Entries are never removed, so their text can be handed out as `&'static`;
/// the table's size bound is what keeps that memory bounded.
fn table() -> &'static RwLock<HashSet<&'static str>> {
    static TABLE: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(HashSet::new()))
}

impl Atom {
    /// The atom with this text, shared with every other use of the same text.
    pub fn new(text: &str) -> Atom {
        // A poisoned lock only means another thread panicked while inserting; the set itself is
        // still a valid set of strings, so keep using it.
        {
            let read = table().read().unwrap_or_else(|e| e.into_inner());
            if let Some(&existing) = read.get(text) {
                return Atom(Repr::Interned(existing));
            }
        }
        let mut write = table().write().unwrap_or_else(|e| e.into_inner());
        if let Some(&existing) = write.get(text) {
            return Atom(Repr::Interned(existing));
        }
        if write.len() < MAX_INTERNED_ATOMS {
            let text: &'static str = Box::leak(Box::from(text));
            write.insert(text);
            return Atom(Repr::Interned(text));
        }
        Atom(Repr::Overflow(Arc::from(text)))
    }

    /// An atom with this text that is not added to the intern table: it behaves like any other
    /// atom with the same text, and its memory is freed with its last clone. For text from peers
    /// that have not authenticated yet.
    pub fn uninterned(text: &str) -> Atom {
        Atom(Repr::Overflow(Arc::from(text)))
    }

    /// The interned atom with this text, if the table holds it; never adds to the table (like
    /// Erlang's `list_to_existing_atom`).
    pub fn existing(text: &str) -> Option<Atom> {
        let read = table().read().unwrap_or_else(|e| e.into_inner());
        read.get(text).map(|&existing| Atom(Repr::Interned(existing)))
    }

    /// The same atom, interned if the table has room (a no-op for an interned atom).
    pub fn to_interned(&self) -> Atom {
        match self.0 {
            Repr::Interned(_) => self.clone(),
            Repr::Overflow(ref text) => Atom::new(text),
        }
    }

    /// The atom for text that the intern table handed out (see [`Atom::interned`]): no lookup.
    pub(crate) fn from_interned(text: &'static str) -> Atom {
        Atom(Repr::Interned(text))
    }

    /// The table's copy of the text when this atom is interned, for caches that want to keep
    /// atoms without owning anything.
    pub(crate) fn interned(&self) -> Option<&'static str> {
        match self.0 {
            Repr::Interned(text) => Some(text),
            Repr::Overflow(_) => None,
        }
    }

    /// The atom's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Interned(text) => text,
            Repr::Overflow(text) => text,
        }
    }

    /// Whether the text can be written bare after `:` (`:ok`) or needs quotes (`:"two words"`).
    fn is_bare(&self) -> bool {
        let mut chars = self.as_str().chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return false,
        }
        chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '?' || c == '!')
    }
}

impl PartialEq for Atom {
    #[inline]
    fn eq(&self, other: &Atom) -> bool {
        match (&self.0, &other.0) {
            // The table holds each text once.
            (Repr::Interned(a), Repr::Interned(b)) => std::ptr::eq(*a, *b),
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for Atom {}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Atom) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Atom) -> std::cmp::Ordering {
        if self == other {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl Borrow<str> for Atom {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Atom {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Atom {
    fn from(text: &str) -> Atom {
        Atom::new(text)
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Displays as `:name`, or `:"needs quotes"` when the text is not a plain identifier.
impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_bare() {
            write!(f, ":{}", self.as_str())
        } else {
            write!(f, ":{:?}", self.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_shares_storage() {
        let a = Atom::new("shared_storage_check");
        let b = Atom::new("shared_storage_check");
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(a.interned(), b.interned());
        assert_eq!(a, b);
        assert_ne!(a, Atom::new("shared_storage_check2"));
    }

    #[test]
    fn display_quotes_when_needed() {
        assert_eq!(Atom::new("ok").to_string(), ":ok");
        assert_eq!(Atom::new("EXIT").to_string(), ":EXIT");
        assert_eq!(Atom::new("two words").to_string(), ":\"two words\"");
        assert_eq!(Atom::new("").to_string(), ":\"\"");
        assert_eq!(Atom::new("9lives").to_string(), ":\"9lives\"");
    }

    #[test]
    fn uninterned_atoms_stay_out_of_the_table_until_interned() {
        let text = "atom_test_never_interned_until_asked";
        let a = Atom::uninterned(text);
        assert_eq!(a.as_str(), text);
        assert_eq!(a.interned(), None);
        assert!(Atom::existing(text).is_none(), "making an uninterned atom adds nothing to the table");
        let b = a.to_interned();
        assert_eq!(a, b);
        assert!(b.interned().is_some());
        assert_eq!(Atom::existing(text), Some(b));
    }

    #[test]
    fn uninterned_atoms_still_compare_by_text() {
        let a = Atom::uninterned("not_in_table");
        let b = Atom::new("not_in_table");
        assert_eq!(a, b);
        assert_eq!(b, a);
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert_eq!(a.interned(), None);
        let hash = |atom: &Atom| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            atom.hash(&mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        let other = Atom::uninterned("not_in_table_either");
        assert_ne!(a, other);
        assert_eq!(a.clone(), a);
    }
}
