//! Pids, references and text as they cross the boundary: value structs with the node name inline
//! (as erl_interface's `erlang_pid`), so C can copy, store and compare them without asking the
//! library to free anything; and the checks that turn C text into names.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};

use snow_shared::{Atom, NodeName, Pid, Ref};

use crate::status::{Failure, Outcome};

/// Longest node name in bytes (`name@host`: a 64-character name, `@`, a 253-byte host).
pub const SNOW_NODE_NAME_MAX: usize = 320;

/// Bytes of the `node` field of [`snow_pid`] and [`snow_ref`]: a node name and its nul.
pub const SNOW_NODE_FIELD: usize = 321;

/// A process identifier: which node, which process on it, which start of that node. A plain
/// value: copy it freely; two pids are the same process when all three fields are equal (the
/// library writes node names in their canonical form, so `strcmp` on `node` is exact for pids it
/// gave). `node` is Erlang's `node(Pid)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct snow_pid {
    /// The node's name, `name@host`, nul-terminated UTF-8.
    pub node: [c_char; SNOW_NODE_FIELD],
    /// The process number on that node (0 names the node itself: sends from outside any process).
    pub id: u64,
    /// The start of the node the pid belongs to (0 for a node that is not distributed).
    pub creation: u32,
}

/// A reference (a monitor's, a request's): the same three fields as a pid, and the same rules.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct snow_ref {
    /// The node that made it, `name@host`, nul-terminated UTF-8.
    pub node: [c_char; SNOW_NODE_FIELD],
    /// Its number (random: references cannot be guessed by other nodes).
    pub id: u64,
    /// The start of the node that made it.
    pub creation: u32,
}

fn node_field(node: &NodeName) -> [c_char; SNOW_NODE_FIELD] {
    let mut field = [0 as c_char; SNOW_NODE_FIELD];
    let text = node.as_str().as_bytes();
    // Node names are validated to at most SNOW_NODE_NAME_MAX bytes; never overrun regardless.
    let len = text.len().min(SNOW_NODE_NAME_MAX);
    for (dst, src) in field.iter_mut().zip(&text[..len]) {
        *dst = *src as c_char;
    }
    field
}

impl snow_pid {
    pub(crate) fn from_pid(pid: &Pid) -> snow_pid {
        snow_pid { node: node_field(pid.node()), id: pid.id(), creation: pid.creation() }
    }

    pub(crate) fn read_pid(&self, what: &str) -> Outcome<Pid> {
        Ok(Pid::new(node_of_field(&self.node, what)?, self.id, self.creation))
    }
}

impl snow_ref {
    pub(crate) fn from_ref(reference: &Ref) -> snow_ref {
        snow_ref { node: node_field(reference.node()), id: reference.id(), creation: reference.creation() }
    }

    pub(crate) fn read_ref(&self, what: &str) -> Outcome<Ref> {
        Ok(Ref::new(node_of_field(&self.node, what)?, self.id, self.creation))
    }
}

thread_local! {
    /// The node names this thread read last, by their text: a send to a pid does not parse and
    /// intern the same name again.
    static RECENT_NODES: RefCell<Vec<(Box<[u8]>, NodeName)>> = const { RefCell::new(Vec::new()) };
}

const RECENT_NODES_KEPT: usize = 8;

/// The node name in a pid's or reference's `node` field.
fn node_of_field(field: &[c_char; SNOW_NODE_FIELD], what: &str) -> Outcome<NodeName> {
    // SAFETY: c_char and u8 have the same size and alignment; the slice covers the field only.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(field.as_ptr().cast::<u8>(), field.len()) };
    let len = bytes.iter().position(|&b| b == 0).ok_or_else(|| {
        Failure::argument(format!("{what}: its node field has no terminating nul within {SNOW_NODE_FIELD} bytes"))
    })?;
    node_name(&bytes[..len], what)
}

/// A node name from its text, through this thread's cache of recent names.
pub(crate) fn node_name(text: &[u8], what: &str) -> Outcome<NodeName> {
    let hit = RECENT_NODES.with(|recent| {
        let recent = recent.borrow();
        recent.iter().find(|(t, _)| **t == *text).map(|(_, n)| n.clone())
    });
    if let Some(name) = hit {
        return Ok(name);
    }
    let utf8 =
        std::str::from_utf8(text).map_err(|_| Failure::argument(format!("{what}: the node name is not UTF-8")))?;
    let name = NodeName::parse(utf8).map_err(|e| Failure::argument(format!("{what}: {e}")))?;
    RECENT_NODES.with(|recent| {
        let mut recent = recent.borrow_mut();
        recent.insert(0, (Box::from(text), name.clone()));
        recent.truncate(RECENT_NODES_KEPT);
    });
    Ok(name)
}

/// The bytes of `len` bytes at `data`; a null `data` is allowed only with `len == 0`.
///
/// # Safety
/// `data` must point at `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn bytes<'a>(data: *const u8, len: usize, what: &str) -> Outcome<&'a [u8]> {
    if data.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(Failure::argument(format!("{what} is null"))) };
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// UTF-8 text of `len` bytes at `data`.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn text<'a>(data: *const c_char, len: usize, what: &str) -> Outcome<&'a str> {
    // SAFETY: the caller's contract.
    let raw = unsafe { bytes(data.cast::<u8>(), len, what)? };
    std::str::from_utf8(raw).map_err(|_| Failure::argument(format!("{what} is not UTF-8")))
}

/// A nul-terminated UTF-8 string.
///
/// # Safety
/// `data` must be null or point at a nul-terminated string that stays unchanged during the call.
pub(crate) unsafe fn c_text<'a>(data: *const c_char, what: &str) -> Outcome<&'a str> {
    if data.is_null() {
        return Err(Failure::argument(format!("{what} is null")));
    }
    // SAFETY: the caller's contract.
    let raw = unsafe { CStr::from_ptr(data) };
    raw.to_str().map_err(|_| Failure::argument(format!("{what} is not UTF-8")))
}

/// A node name given as a nul-terminated string.
///
/// # Safety
/// As [`c_text`].
pub(crate) unsafe fn c_node_name(data: *const c_char, what: &str) -> Outcome<NodeName> {
    // SAFETY: the caller's contract.
    let text = unsafe { c_text(data, what)? };
    node_name(text.as_bytes(), what)
}

/// An atom (a registered name, a function name) given as `len` bytes of UTF-8.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn atom(data: *const c_char, len: usize, what: &str) -> Outcome<Atom> {
    // SAFETY: the caller's contract.
    let text = unsafe { text(data, len, what)? };
    checked_atom(text, what)
}

pub(crate) fn checked_atom(text: &str, what: &str) -> Outcome<Atom> {
    if text.len() > snow_shared::atom::MAX_ATOM_BYTES {
        return Err(Failure::argument(format!(
            "{what} is {} bytes; an atom is at most {} bytes",
            text.len(),
            snow_shared::atom::MAX_ATOM_BYTES
        )));
    }
    Ok(Atom::new(text))
}

/// `*out = value` for an out-parameter, which must not be null.
///
/// # Safety
/// `out` must be null or valid for a write of a `T`.
pub(crate) unsafe fn put<T>(out: *mut T, value: T, what: &str) -> Outcome<()> {
    if out.is_null() {
        return Err(Failure::argument(format!("{what} is null")));
    }
    // SAFETY: non-null, and the caller's contract says writable.
    unsafe { out.write(value) };
    Ok(())
}

/// `&*ptr` for an input struct, which must not be null.
///
/// # Safety
/// `ptr` must be null or point at a valid `T` for the call.
pub(crate) unsafe fn get<'a, T>(ptr: *const T, what: &str) -> Outcome<&'a T> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::argument(format!("{what} is null")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_cross_and_come_back() {
        let node: NodeName = "app@db1.example.com".parse().unwrap();
        let pid = Pid::new(node, 4242, 7);
        let c = snow_pid::from_pid(&pid);
        assert_eq!(c.read_pid("pid").unwrap(), pid);
        let longest = format!(
            "{}@{}",
            "n".repeat(64),
            ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".")
        );
        assert_eq!(longest.len(), 318);
        let pid = Pid::new(longest.parse().unwrap(), 1, 2);
        assert_eq!(snow_pid::from_pid(&pid).read_pid("pid").unwrap(), pid);
    }

    #[test]
    fn a_node_field_without_nul_or_with_a_bad_name_is_refused() {
        let mut c = snow_pid::from_pid(&Pid::new("a@h".parse().unwrap(), 1, 1));
        c.node = [b'a' as c_char; SNOW_NODE_FIELD];
        let err = c.read_pid("to").unwrap_err();
        assert_eq!(err.status, crate::status::SNOW_ERR_ARGUMENT);
        assert!(err.message.contains("nul"), "{}", err.message);
        c.node[3] = 0;
        assert!(c.read_pid("to").unwrap_err().message.contains("'@'"));
    }
}
