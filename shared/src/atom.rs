//! Interned atoms.
//!
//! An [`Atom`] is a shared, immutable name (`:ok`, `:EXIT`, a struct's type name, a node name).
//! Atoms are interned in a process-wide table so that decoding the same atom a million times costs
//! one allocation, not a million. Unlike BEAM, the table is bounded: once it holds
//! [`MAX_INTERNED_ATOMS`] names, new atoms are still created and still compare equal to any other
//! atom with the same text, they are simply not shared. A hostile peer therefore cannot exhaust
//! memory by sending fresh atoms, which is a classic way to crash an Erlang node.

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
pub struct Atom(Arc<str>);

fn table() -> &'static RwLock<HashSet<Arc<str>>> {
    static TABLE: OnceLock<RwLock<HashSet<Arc<str>>>> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(HashSet::new()))
}

impl Atom {
    /// The atom with this text, shared with every other use of the same text.
    pub fn new(text: &str) -> Atom {
        // A poisoned lock only means another thread panicked while inserting; the set itself is
        // still a valid set of strings, so keep using it.
        {
            let read = table().read().unwrap_or_else(|e| e.into_inner());
            if let Some(existing) = read.get(text) {
                return Atom(existing.clone());
            }
        }
        let mut write = table().write().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = write.get(text) {
            return Atom(existing.clone());
        }
        let fresh: Arc<str> = Arc::from(text);
        if write.len() < MAX_INTERNED_ATOMS {
            write.insert(fresh.clone());
        }
        Atom(fresh)
    }

    /// The atom's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text can be written bare after `:` (`:ok`) or needs quotes (`:"two words"`).
    fn is_bare(&self) -> bool {
        let mut chars = self.0.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return false,
        }
        chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '?' || c == '!')
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Atom) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
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
        self.0.cmp(&other.0)
    }
}

impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl Borrow<str> for Atom {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Atom {
    fn as_ref(&self) -> &str {
        &self.0
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
            write!(f, ":{}", self.0)
        } else {
            write!(f, ":{:?}", &*self.0)
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
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, b);
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
    fn uninterned_atoms_still_compare_by_text() {
        let a = Atom(Arc::from("not_in_table"));
        let b = Atom::new("not_in_table");
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
    }
}
