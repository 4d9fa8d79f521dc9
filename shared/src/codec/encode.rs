//! Encoding: one exact-size reservation, then a single pass that appends bytes.

use super::{tag, varint_len, write_varint, zigzag, SMALL_INT_MAX, WIRE_VERSION};
use crate::atom::Atom;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

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
    write_term(term, out);
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
    write_term(term, out);
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

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_atom_body(out: &mut Vec<u8>, atom: &Atom) {
    write_bytes(out, atom.as_str().as_bytes());
}

fn write_seq(out: &mut Vec<u8>, items: &[Term]) {
    write_varint(out, items.len() as u64);
    for item in items {
        write_term(item, out);
    }
}

fn write_id(out: &mut Vec<u8>, node: &NodeName, id: u64, creation: u32) {
    write_bytes(out, node.as_str().as_bytes());
    write_varint(out, id);
    out.extend_from_slice(&creation.to_be_bytes());
}

fn write_term(term: &Term, out: &mut Vec<u8>) {
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
        Term::Atom(a) => {
            out.push(tag::ATOM);
            write_atom_body(out, a);
        }
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
            write_seq(out, items);
        }
        Term::List(items) => {
            out.push(tag::LIST);
            write_seq(out, items);
        }
        Term::Map(map) => {
            out.push(tag::MAP);
            write_varint(out, map.len() as u64);
            for (k, v) in map {
                write_term(k, out);
                write_term(v, out);
            }
        }
        Term::Pid(p) => {
            out.push(tag::PID);
            write_id(out, p.node(), p.id(), p.creation());
        }
        Term::Ref(r) => {
            out.push(tag::REF);
            write_id(out, r.node(), r.id(), r.creation());
        }
        Term::Struct(s) => {
            out.push(tag::STRUCT);
            write_atom_body(out, &s.name);
            write_varint(out, s.fields.len() as u64);
            for (name, value) in &s.fields {
                write_atom_body(out, name);
                write_term(value, out);
            }
        }
        Term::Sum(s) => {
            out.push(tag::SUM);
            write_atom_body(out, &s.type_name);
            write_atom_body(out, &s.variant);
            write_seq(out, &s.fields);
        }
    }
}
