//! Node names (`name@host`, README "Node environment"): parsing, validation and canonical form.
//!
//! The `name` part is 1 to 64 characters of `[A-Za-z0-9_-]` and keeps its case. The `host` part is
//! a DNS name (lowercased, since DNS is case-insensitive), an IPv4 literal, or an IPv6 literal in
//! brackets (rewritten in its canonical compressed form). Two spellings of the same node therefore
//! parse to equal [`NodeName`]s.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, RwLock};

use crate::atom::Atom;

/// Longest `name` part, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// Longest `host` part, in bytes (the DNS limit).
pub const MAX_HOST_LEN: usize = 253;

/// Upper bound on the node names kept in the process-wide node table that decoders' caches point
/// into (see `NodeName::interned`). Past it, names are still parsed and correct, just not cached.
pub const MAX_INTERNED_NODES: usize = 1 << 16;

/// A validated node name in canonical form, cheap to clone and compare.
///
/// One pointer wide, so that a [`Pid`](crate::Pid) and therefore a [`Term`](crate::Term) stay
/// small. Equality, order and hash are those of the canonical text.
#[derive(Clone)]
pub struct NodeName(Arc<Parts>);

struct Parts {
    full: Atom,
    at: usize,
}

impl PartialEq for NodeName {
    fn eq(&self, other: &NodeName) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.full == other.0.full
    }
}

impl Eq for NodeName {}

impl PartialOrd for NodeName {
    fn partial_cmp(&self, other: &NodeName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeName {
    fn cmp(&self, other: &NodeName) -> std::cmp::Ordering {
        self.0.full.cmp(&other.0.full)
    }
}

impl Hash for NodeName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.full.hash(state)
    }
}

/// Why a string is not a node name. Each message says what a valid name looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("node name is empty; expected name@host, e.g. app@db1.example.com")]
    /// The input was empty.
    Empty,
    #[error("node name {0:?} has no '@'; expected name@host, e.g. app@db1.example.com")]
    /// No `@` separates name and host.
    MissingAt(String),
    #[error("node name {0:?} has more than one '@'; expected exactly one, as in name@host")]
    /// More than one `@`.
    MultipleAt(String),
    #[error("node name {0:?} has an empty name before '@'; use 1-64 characters of A-Z a-z 0-9 _ -")]
    /// Nothing before the `@`.
    EmptyName(String),
    #[error("the name part of {0:?} is {1} characters long; the limit is 64")]
    /// The name part is over 64 characters.
    NameTooLong(String, usize),
    #[error("the name part of {0:?} contains {1:?}; only A-Z a-z 0-9 _ - are allowed")]
    /// The name part has a character outside `[A-Za-z0-9_-]`.
    BadNameChar(String, char),
    #[error("node name {0:?} has an empty host after '@'; use a DNS name or an IP address")]
    /// Nothing after the `@`.
    EmptyHost(String),
    #[error("the host part of {0:?} is longer than 253 bytes")]
    /// The host part is over 253 bytes.
    HostTooLong(String),
    #[error("the host part of {0:?} is not a valid DNS name or IP address: {1}")]
    /// The host part is neither a DNS name nor an IP literal.
    BadHost(String, &'static str),
}

impl NodeName {
    /// Parses `name@host`, validating both parts and putting the host in canonical form.
    pub fn parse(text: &str) -> Result<NodeName, NameError> {
        NodeName::parse_as(text, Atom::new)
    }

    /// [`NodeName::parse`] for a name from a peer that has not authenticated: its text is not
    /// added to the process-wide atom table ([`Atom::uninterned`]), so such peers cannot fill it.
    /// The name is equal to the same name parsed with [`NodeName::parse`];
    /// [`NodeName::to_interned`] makes the interned form once the peer has proven itself.
    pub fn parse_uninterned(text: &str) -> Result<NodeName, NameError> {
        NodeName::parse_as(text, Atom::uninterned)
    }

    /// The same name with its text in the atom table (see [`NodeName::parse_uninterned`]).
    pub fn to_interned(&self) -> NodeName {
        if self.0.full.interned().is_some() {
            return self.clone();
        }
        NodeName(Arc::new(Parts { full: self.0.full.to_interned(), at: self.0.at }))
    }

    fn parse_as(text: &str, atom: fn(&str) -> Atom) -> Result<NodeName, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let mut parts = text.splitn(3, '@');
        let name = parts.next().unwrap_or_default();
        let host = parts.next().ok_or_else(|| NameError::MissingAt(text.to_owned()))?;
        if parts.next().is_some() {
            return Err(NameError::MultipleAt(text.to_owned()));
        }
        validate_name_part(text, name)?;
        let host = canonical_host(text, host)?;
        Ok(NodeName(Arc::new(Parts { full: atom(&format!("{name}@{host}")), at: name.len() })))
    }

    /// Parses `SNOW_NODE`-style input: `name@host`, or a bare `name` which gets `default_host`.
    pub fn parse_with_default_host(text: &str, default_host: &str) -> Result<NodeName, NameError> {
        if text.contains('@') || text.is_empty() {
            NodeName::parse(text)
        } else {
            NodeName::parse(&format!("{text}@{default_host}"))
        }
    }

    /// The name of a runtime that is not distributed (`nonode@nohost`, as in Erlang).
    pub fn local_only() -> NodeName {
        NodeName::from_valid_parts("nonode", "nohost")
    }

    fn from_valid_parts(name: &str, host: &str) -> NodeName {
        NodeName(Arc::new(Parts { full: Atom::new(&format!("{name}@{host}")), at: name.len() }))
    }

    /// The part before `@`.
    pub fn name(&self) -> &str {
        &self.0.full.as_str()[..self.0.at]
    }

    /// The host part, canonical (lowercase DNS name, or IP literal; IPv6 keeps its brackets).
    pub fn host(&self) -> &str {
        &self.0.full.as_str()[self.0.at + 1..]
    }

    /// The host part in a form suitable for connecting (IPv6 without brackets).
    pub fn host_for_connect(&self) -> &str {
        self.host().trim_start_matches('[').trim_end_matches(']')
    }

    /// The whole canonical `name@host`.
    pub fn as_str(&self) -> &str {
        self.0.full.as_str()
    }

    /// The process-wide shared copy of this name, for caches that want to keep node names without
    /// owning anything; `None` once the table holds [`MAX_INTERNED_NODES`] names. Entries are
    /// never removed, so the bound is what keeps the table's memory bounded (at most 64 Ki names
    /// of at most 318 bytes each).
    pub(crate) fn interned(&self) -> Option<&'static NodeName> {
        static TABLE: OnceLock<RwLock<HashMap<&'static str, &'static NodeName>>> = OnceLock::new();
        let table = TABLE.get_or_init(|| RwLock::new(HashMap::new()));
        // A poisoned lock only means another thread panicked while inserting; the map is intact.
        if let Some(&node) = table.read().unwrap_or_else(|e| e.into_inner()).get(self.as_str()) {
            return Some(node);
        }
        let mut write = table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&node) = write.get(self.as_str()) {
            return Some(node);
        }
        if write.len() >= MAX_INTERNED_NODES {
            return None;
        }
        let node: &'static NodeName = Box::leak(Box::new(self.clone()));
        write.insert(node.as_str(), node);
        Some(node)
    }

    /// The canonical name as an interned atom.
    pub fn as_atom(&self) -> &Atom {
        &self.0.full
    }
}

fn validate_name_part(full: &str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::EmptyName(full.to_owned()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(NameError::BadNameChar(full.to_owned(), bad));
    }
    // All characters are ASCII by now, so bytes are characters.
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::NameTooLong(full.to_owned(), name.len()));
    }
    Ok(())
}

fn canonical_host(full: &str, host: &str) -> Result<String, NameError> {
    if host.is_empty() {
        return Err(NameError::EmptyHost(full.to_owned()));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(NameError::HostTooLong(full.to_owned()));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner =
            inner.strip_suffix(']').ok_or_else(|| NameError::BadHost(full.to_owned(), "'[' without a closing ']'"))?;
        let ip: Ipv6Addr =
            inner.parse().map_err(|_| NameError::BadHost(full.to_owned(), "not an IPv6 address inside [ ]"))?;
        return Ok(format!("[{ip}]"));
    }
    if host.contains(':') {
        return Err(NameError::BadHost(full.to_owned(), "IPv6 addresses must be written in brackets, e.g. app@[::1]"));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| NameError::BadHost(full.to_owned(), "looks like an IPv4 address but is not one"))?;
        return Ok(ip.to_string());
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    for label in host.split('.') {
        if label.is_empty() {
            return Err(NameError::BadHost(full.to_owned(), "empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(NameError::BadHost(full.to_owned(), "a label is longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(NameError::BadHost(full.to_owned(), "only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::BadHost(full.to_owned(), "a label may not start or end with '-'"));
        }
    }
    Ok(host.to_ascii_lowercase())
}

impl FromStr for NodeName {
    type Err = NameError;
    fn from_str(text: &str) -> Result<NodeName, NameError> {
        NodeName::parse(text)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> NameError {
        NodeName::parse(text).expect_err(text)
    }

    #[test]
    fn parses_and_splits() {
        let n = NodeName::parse("app-1_x@db1.example.com").unwrap();
        assert_eq!(n.name(), "app-1_x");
        assert_eq!(n.host(), "db1.example.com");
        assert_eq!(n.as_str(), "app-1_x@db1.example.com");
    }

    #[test]
    fn canonical_forms_compare_equal() {
        assert_eq!(NodeName::parse("a@HOST.Example.COM.").unwrap(), NodeName::parse("a@host.example.com").unwrap());
        let v6 = NodeName::parse("a@[0:0:0:0:0:0:0:1]").unwrap();
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.host_for_connect(), "::1");
        assert_eq!(NodeName::parse("a@127.0.0.1").unwrap().host(), "127.0.0.1");
        // The name part keeps its case: A@h and a@h are different nodes.
        assert_ne!(NodeName::parse("A@h").unwrap(), NodeName::parse("a@h").unwrap());
    }

    #[test]
    fn each_kind_of_bad_name_has_its_own_error() {
        assert_eq!(err(""), NameError::Empty);
        assert!(matches!(err("app"), NameError::MissingAt(_)));
        assert!(matches!(err("a@b@c"), NameError::MultipleAt(_)));
        assert!(matches!(err("@host"), NameError::EmptyName(_)));
        assert!(matches!(err("app@"), NameError::EmptyHost(_)));
        assert!(matches!(err(&format!("{}@h", "x".repeat(65))), NameError::NameTooLong(_, 65)));
        assert!(matches!(err("a b@h"), NameError::BadNameChar(_, ' ')));
        assert!(matches!(err("a\0@h"), NameError::BadNameChar(_, '\0')));
        assert!(matches!(err("é@h"), NameError::BadNameChar(_, 'é')));
        assert!(matches!(err(&format!("a@{}", "h".repeat(254))), NameError::HostTooLong(_)));
        assert!(matches!(err("a@::1"), NameError::BadHost(..)));
        assert!(matches!(err("a@[::1"), NameError::BadHost(..)));
        assert!(matches!(err("a@[nope]"), NameError::BadHost(..)));
        assert!(matches!(err("a@300.1.1.1"), NameError::BadHost(..)));
        assert!(matches!(err("a@x..y"), NameError::BadHost(..)));
        assert!(matches!(err("a@-x.y"), NameError::BadHost(..)));
        assert!(matches!(err("a@x_y"), NameError::BadHost(..)));
    }

    #[test]
    fn interned_names_are_shared() {
        let a = NodeName::parse("interned@host.example").unwrap();
        let b = NodeName::parse("interned@HOST.example").unwrap();
        let (ia, ib) = (a.interned().unwrap(), b.interned().unwrap());
        assert!(std::ptr::eq(ia, ib));
        assert_eq!(*ia, a);
        assert_ne!(*NodeName::parse("other@host.example").unwrap().interned().unwrap(), a);
    }

    #[test]
    fn uninterned_names_equal_interned_ones_and_stay_out_of_the_atom_table() {
        let text = "never-interned-name@Host.Example";
        let loose = NodeName::parse_uninterned(text).unwrap();
        assert_eq!(loose.as_str(), "never-interned-name@host.example");
        assert!(Atom::existing(loose.as_str()).is_none());
        let firm = loose.to_interned();
        assert_eq!(loose, firm);
        assert_eq!(firm, NodeName::parse(text).unwrap());
        assert!(Atom::existing(loose.as_str()).is_some());
        assert!(NodeName::parse_uninterned("a b@h").is_err());
    }

    #[test]
    fn max_length_name_is_accepted() {
        let text = format!("{}@h", "n".repeat(64));
        assert_eq!(NodeName::parse(&text).unwrap().name().len(), 64);
    }

    #[test]
    fn bare_name_gets_default_host() {
        let n = NodeName::parse_with_default_host("app", "Box7").unwrap();
        assert_eq!(n.as_str(), "app@box7");
        let n = NodeName::parse_with_default_host("app@other", "box7").unwrap();
        assert_eq!(n.host(), "other");
        assert!(NodeName::parse_with_default_host("", "box7").is_err());
    }

    #[test]
    fn error_messages_say_what_is_expected() {
        assert!(err("app").to_string().contains("name@host"));
        assert!(err("a b@h").to_string().contains("A-Z a-z 0-9 _ -"));
    }
}
