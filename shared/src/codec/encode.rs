//! Encoding: one exact-size reservation, then a single pass that appends bytes.

use super::{tag, varint_len, write_varint, zigzag, SMALL_INT_MAX, WIRE_VERSION};
use crate::atom::Atom;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

/// How the encoder writes the atoms, pids and references of a term: [`InFull`] as PROTOCOL.md
/// section 1 specifies, or as references to a connection's atom cache (PROTOCOL.md 4.4,
/// `crate::dist::atom_cache`). Generic, so the plain encoder pays nothing for the hook.
pub(crate) trait NameWriter {
    /// Writes `atom` as one tagged value.
    fn atom(&mut self, atom: &Atom, out: &mut Vec<u8>);
    /// Writes a pid (`kind` [`IdKind::Pid`]) or a reference as one tagged value.
    fn id(&mut self, kind: IdKind, node: &NodeName, id: u64, creation: u32, out: &mut Vec<u8>);
}

/// Which of the two node-qualified identifiers (PROTOCOL.md 1.4) a [`NameWriter`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// A process identifier (`PID`).
    Pid,
    /// A reference (`REF`).
    Ref,
}

/// The [`NameWriter`] of section 1: names written out in full.
pub(crate) struct InFull;

impl NameWriter for InFull {
    #[inline(always)]
    fn atom(&mut self, atom: &Atom, out: &mut Vec<u8>) {
        out.push(tag::ATOM);
        write_atom_body(out, atom);
    }

    #[inline(always)]
    fn id(&mut self, kind: IdKind, node: &NodeName, id: u64, creation: u32, out: &mut Vec<u8>) {
        out.push(match kind {
            IdKind::Pid => tag::PID,
            IdKind::Ref => tag::REF,
        });
        write_id(out, node, id, creation);
    }
}

/// Appends the version byte and `term`, writing names through `names`. Reserves nothing: the
/// caller sizes `out` (names written as cache references take no more than written in full,
/// definitions aside).
pub(crate) fn encode_into_with<N: NameWriter>(term: &Term, out: &mut Vec<u8>, names: &mut N) {
    out.push(WIRE_VERSION);
    write_term(term, out, names);
}

/// Encodes `term` with its version byte into a new buffer of exactly [`encoded_len`] bytes.
pub fn encode(term: &Term) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(term));
    push_version_and_term(term, &mut out);
    out
}

/// Appends the version byte and `term` to `out`, reserving the exact size first (one allocation at
/// most), so a writer can put several messages in one buffer.
pub fn encode_into(term: &Term, out: &mut Vec<u8>) {
    out.reserve(encoded_len(term));
    push_version_and_term(term, out);
}

/// Appends `term` *without* a version byte: for protocol layers that put several terms after one
/// version byte of their own. Decode such a sequence with [`super::decode_prefix`] on bytes that
/// start with the version byte, or prepend [`WIRE_VERSION`] yourself.
pub fn encode_term_into(term: &Term, out: &mut Vec<u8>) {
    out.reserve(term_len(term));
    write_term(term, out, &mut InFull);
}

/// Appends the version byte and `pid` as [`encode_into`] would for `Term::Pid(pid)`, without
/// building that term (no reference-count traffic on the node name).
pub fn encode_pid_into(pid: &Pid, out: &mut Vec<u8>) {
    out.reserve(2 + node_len(pid.node()) + varint_len(pid.id()) + 4);
    out.push(WIRE_VERSION);
    out.push(tag::PID);
    write_id(out, pid.node(), pid.id(), pid.creation());
}

/// Appends the version byte and `reference` as [`encode_into`] would for `Term::Ref`.
pub fn encode_ref_into(reference: &Ref, out: &mut Vec<u8>) {
    out.reserve(2 + node_len(reference.node()) + varint_len(reference.id()) + 4);
    out.push(WIRE_VERSION);
    out.push(tag::REF);
    write_id(out, reference.node(), reference.id(), reference.creation());
}

/// Appends the version byte and `atom` as [`encode_into`] would for `Term::Atom`.
pub fn encode_atom_into(atom: &Atom, out: &mut Vec<u8>) {
    out.reserve(2 + bytes_len(atom.as_str().len()));
    out.push(WIRE_VERSION);
    out.push(tag::ATOM);
    write_atom_body(out, atom);
}

/// Exact size of [`encode`]'s output, version byte included.
pub fn encoded_len(term: &Term) -> usize {
    1 + term_len(term)
}

fn push_version_and_term(term: &Term, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    write_term(term, out, &mut InFull);
}

fn bytes_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

fn node_len(node: &NodeName) -> usize {
    bytes_len(node.as_str().len())
}

fn term_len(term: &Term) -> usize {
    match term {
        Term::Int(i) if (0..=SMALL_INT_MAX).contains(i) => 1,
        Term::Int(i) => 1 + varint_len(zigzag(*i)),
        Term::Float(_) => 9,
        Term::Unit | Term::Bool(_) => 1,
        Term::Atom(a) => 1 + bytes_len(a.as_str().len()),
        Term::String(s) => 1 + bytes_len(s.len()),
        Term::Binary(b) => 1 + bytes_len(b.len()),
        Term::Tuple(items) | Term::List(items) => 1 + seq_len(items),
        Term::Map(map) => {
            1 + varint_len(map.len() as u64) + map.iter().map(|(k, v)| term_len(k) + term_len(v)).sum::<usize>()
        }
        Term::Pid(p) => 1 + node_len(p.node()) + varint_len(p.id()) + 4,
        Term::Ref(r) => 1 + node_len(r.node()) + varint_len(r.id()) + 4,
        Term::Struct(s) => {
            1 + bytes_len(s.name.as_str().len())
                + varint_len(s.fields.len() as u64)
                + s.fields.iter().map(|(k, v)| bytes_len(k.as_str().len()) + term_len(v)).sum::<usize>()
        }
        Term::Sum(s) => {
            1 + bytes_len(s.type_name.as_str().len()) + bytes_len(s.variant.as_str().len()) + seq_len(&s.fields)
        }
    }
}

fn seq_len(items: &[Term]) -> usize {
    varint_len(items.len() as u64) + items.iter().map(term_len).sum::<usize>()
}

pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_atom_body(out: &mut Vec<u8>, atom: &Atom) {
    write_bytes(out, atom.as_str().as_bytes());
}

fn write_seq<N: NameWriter>(out: &mut Vec<u8>, items: &[Term], names: &mut N) {
    write_varint(out, items.len() as u64);
    for item in items {
        write_term(item, out, names);
    }
}

fn write_id(out: &mut Vec<u8>, node: &NodeName, id: u64, creation: u32) {
    write_bytes(out, node.as_str().as_bytes());
    write_varint(out, id);
    out.extend_from_slice(&creation.to_be_bytes());
}

fn write_term<N: NameWriter>(term: &Term, out: &mut Vec<u8>, names: &mut N) {
    match term {
        Term::Int(i) if (0..=SMALL_INT_MAX).contains(i) => out.push(*i as u8),
        Term::Int(i) => {
            out.push(tag::INT);
            write_varint(out, zigzag(*i));
        }
        Term::Float(f) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Term::Unit => out.push(tag::UNIT),
        Term::Bool(false) => out.push(tag::FALSE),
        Term::Bool(true) => out.push(tag::TRUE),
        Term::Atom(a) => names.atom(a, out),
        Term::String(s) => {
            out.push(tag::STRING);
            write_bytes(out, s.as_bytes());
        }
        Term::Binary(b) => {
            out.push(tag::BINARY);
            write_bytes(out, b.as_slice());
        }
        Term::Tuple(items) => {
            out.push(tag::TUPLE);
            write_seq(out, items, names);
        }
        Term::List(items) => {
            out.push(tag::LIST);
            write_seq(out, items, names);
        }
        Term::Map(map) => {
            out.push(tag::MAP);
            write_varint(out, map.len() as u64);
            for (k, v) in map {
                write_term(k, out, names);
                write_term(v, out, names);
            }
        }
        Term::Pid(p) => names.id(IdKind::Pid, p.node(), p.id(), p.creation(), out),
        Term::Ref(r) => names.id(IdKind::Ref, r.node(), r.id(), r.creation(), out),
        Term::Struct(s) => {
            out.push(tag::STRUCT);
            write_atom_body(out, &s.name);
            write_varint(out, s.fields.len() as u64);
            for (name, value) in &s.fields {
                write_atom_body(out, name);
                write_term(value, out, names);
            }
        }
        Term::Sum(s) => {
            out.push(tag::SUM);
            write_atom_body(out, &s.type_name);
            write_atom_body(out, &s.variant);
            write_seq(out, &s.fields, names);
        }
    }
}
