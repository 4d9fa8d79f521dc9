//! Reading a term item by item from C ([`snow_decoder`]), in the manner of erl_interface's
//! `ei_decode_*`, and terms as text.

use std::ffi::c_char;

use snow_shared::codec;
use snow_shared::{Atom, Term};

use crate::ids::{self, snow_pid, snow_ref};
use crate::status::*;

/// What a decoded item is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum snow_kind {
    /// `integer` holds it.
    SNOW_INT = 0,
    /// `real` holds it.
    SNOW_FLOAT = 1,
    /// The unit value.
    SNOW_UNIT = 2,
    /// `boolean` holds it.
    SNOW_BOOL = 3,
    /// `text`/`text_len`: the atom's UTF-8 (not nul-terminated).
    SNOW_ATOM = 4,
    /// `text`/`text_len`: the string's UTF-8 (not nul-terminated).
    SNOW_STRING = 5,
    /// `text`/`text_len`: the bytes.
    SNOW_BINARY = 6,
    /// `count` elements follow.
    SNOW_TUPLE = 7,
    /// `count` elements follow.
    SNOW_LIST = 8,
    /// `count` pairs follow: a key, then its value, in the canonical key order.
    SNOW_MAP = 9,
    /// `pid` holds it.
    SNOW_PID = 10,
    /// `reference` holds it.
    SNOW_REF = 11,
    /// `text`/`text_len`: the struct's name; `count` fields follow, each a `SNOW_FIELD` item and
    /// then the field's value.
    SNOW_STRUCT = 12,
    /// `text`/`text_len`: a struct field's name; its value follows.
    SNOW_FIELD = 13,
    /// `text`/`text_len`: the sum type's name, `variant`/`variant_len`: the variant's; `count`
    /// positional fields follow.
    SNOW_SUM = 14,
}

/// One item of a decoded term, in depth-first order. Only the fields of its `kind` are set; text
/// pointers point into the decoder and stay valid until it is freed.
#[repr(C)]
pub struct snow_item {
    /// What the item is; says which of the other fields are set.
    pub kind: snow_kind,
    /// `SNOW_INT`.
    pub integer: i64,
    /// `SNOW_FLOAT`.
    pub real: f64,
    /// `SNOW_BOOL`.
    pub boolean: bool,
    /// `SNOW_ATOM`, `SNOW_STRING`, `SNOW_BINARY`, `SNOW_STRUCT`, `SNOW_FIELD`, `SNOW_SUM`.
    pub text: *const u8,
    /// Bytes at `text`.
    pub text_len: usize,
    /// `SNOW_SUM`: the variant's name.
    pub variant: *const u8,
    /// Bytes at `variant`.
    pub variant_len: usize,
    /// `SNOW_TUPLE`, `SNOW_LIST`, `SNOW_MAP`, `SNOW_STRUCT`, `SNOW_SUM`: how many values (map:
    /// pairs) follow.
    pub count: usize,
    /// `SNOW_PID`.
    pub pid: snow_pid,
    /// `SNOW_REF`.
    pub reference: snow_ref,
}

/// A decoded term, read item by item with `snow_decode_next`. Made by `snow_decoder_new`, freed by
/// `snow_decoder_free`; use it from one thread at a time.
pub struct snow_decoder {
    /// Owns every text the items point into; boxed so that it never moves.
    _term: Box<Term>,
    steps: Vec<Step>,
    next: usize,
}

/// One item: a term, or a struct field's name. The pointers point into `_term`, which is never
/// changed while the decoder lives.
enum Step {
    Term(*const Term),
    Field(*const Atom),
}

fn flatten(term: &Term, steps: &mut Vec<Step>) {
    steps.push(Step::Term(term));
    match term {
        Term::Tuple(items) | Term::List(items) => items.iter().for_each(|t| flatten(t, steps)),
        Term::Map(map) => map.iter().for_each(|(k, v)| {
            flatten(k, steps);
            flatten(v, steps);
        }),
        Term::Struct(s) => s.fields.iter().for_each(|(name, v)| {
            steps.push(Step::Field(name));
            flatten(v, steps);
        }),
        Term::Sum(s) => s.fields.iter().for_each(|t| flatten(t, steps)),
        _ => {}
    }
}

/// Decodes the encoded term of `len` bytes at `data` (checked with the same limits as terms from
/// the network: PROTOCOL.md 1.8) into a new decoder at `*out`. The decoder copies what it needs:
/// `data` may be freed after the call.
///
/// # Safety
/// `data` must point at `len` readable bytes; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn snow_decoder_new(data: *const u8, len: usize, out: *mut *mut snow_decoder) -> snow_status {
    guard("snow_decoder_new", || {
        // SAFETY: the caller's contract.
        let bytes = unsafe { ids::bytes(data, len, "data")? };
        let term = Box::new(decode(bytes)?);
        let mut steps = Vec::new();
        flatten(&term, &mut steps);
        let decoder = Box::new(snow_decoder { _term: term, steps, next: 0 });
        // SAFETY: the caller's contract.
        unsafe { ids::put(out, Box::into_raw(decoder), "out")? };
        Ok(SNOW_OK)
    })
}

/// Frees a decoder; the text pointers of its items become invalid. Null is ignored.
///
/// # Safety
/// `decoder` must be null or a decoder from `snow_decoder_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_decoder_free(decoder: *mut snow_decoder) {
    let _ = catch("snow_decoder_free", || {
        if !decoder.is_null() {
            // SAFETY: the caller's contract: ours, from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(decoder) });
        }
        Ok(())
    });
}

/// The next item into `*item`: `SNOW_OK`, or `SNOW_ERR_END` after the last one.
///
/// # Safety
/// `decoder` must be a decoder from `snow_decoder_new` not yet freed; `item` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_decode_next(decoder: *mut snow_decoder, item: *mut snow_item) -> snow_status {
    guard("snow_decode_next", || {
        // SAFETY: the caller's contract.
        let d = unsafe { decoder.as_mut() }.ok_or_else(|| Failure::argument("decoder is null"))?;
        // SAFETY: the caller's contract.
        let out = unsafe { item.as_mut() }.ok_or_else(|| Failure::argument("item is null"))?;
        let Some(step) = d.steps.get(d.next) else {
            return Err(Failure::new(SNOW_ERR_END, "the decoder has given every item of its term"));
        };
        d.next += 1;
        let set_text = |out: &mut snow_item, text: &[u8]| {
            out.text = text.as_ptr();
            out.text_len = text.len();
        };
        match *step {
            Step::Field(name) => {
                // SAFETY: points into the decoder's term, alive and unchanged.
                let name = unsafe { &*name };
                out.kind = snow_kind::SNOW_FIELD;
                set_text(out, name.as_str().as_bytes());
            }
            Step::Term(term) => {
                // SAFETY: points into the decoder's term, alive and unchanged.
                let term = unsafe { &*term };
                out.kind = match term {
                    Term::Int(i) => {
                        out.integer = *i;
                        snow_kind::SNOW_INT
                    }
                    Term::Float(x) => {
                        out.real = *x;
                        snow_kind::SNOW_FLOAT
                    }
                    Term::Unit => snow_kind::SNOW_UNIT,
                    Term::Bool(b) => {
                        out.boolean = *b;
                        snow_kind::SNOW_BOOL
                    }
                    Term::Atom(a) => {
                        set_text(out, a.as_str().as_bytes());
                        snow_kind::SNOW_ATOM
                    }
                    Term::String(s) => {
                        set_text(out, s.as_bytes());
                        snow_kind::SNOW_STRING
                    }
                    Term::Binary(b) => {
                        set_text(out, b);
                        snow_kind::SNOW_BINARY
                    }
                    Term::Tuple(items) => {
                        out.count = items.len();
                        snow_kind::SNOW_TUPLE
                    }
                    Term::List(items) => {
                        out.count = items.len();
                        snow_kind::SNOW_LIST
                    }
                    Term::Map(map) => {
                        out.count = map.len();
                        snow_kind::SNOW_MAP
                    }
                    Term::Pid(pid) => {
                        out.pid = snow_pid::from_pid(pid);
                        snow_kind::SNOW_PID
                    }
                    Term::Ref(reference) => {
                        out.reference = snow_ref::from_ref(reference);
                        snow_kind::SNOW_REF
                    }
                    Term::Struct(s) => {
                        set_text(out, s.name.as_str().as_bytes());
                        out.count = s.fields.len();
                        snow_kind::SNOW_STRUCT
                    }
                    Term::Sum(s) => {
                        set_text(out, s.type_name.as_str().as_bytes());
                        out.variant = s.variant.as_str().as_ptr();
                        out.variant_len = s.variant.as_str().len();
                        out.count = s.fields.len();
                        snow_kind::SNOW_SUM
                    }
                };
            }
        }
        Ok(SNOW_OK)
    })
}

/// Writes the encoded term at `data` as text (Snow's display form, e.g. `{:echo, "hello"}`) into
/// `buf` (`cap` bytes, nul-terminated; truncated if too small) and the text's full length, nul not
/// counted, into `*needed` (when not null). `SNOW_ERR_BUFFER` if it did not fit.
///
/// # Safety
/// `data` must point at `len` readable bytes; `buf` at `cap` writable bytes (or be null with
/// `cap == 0`); `needed` null or writable.
#[no_mangle]
pub unsafe extern "C" fn snow_term_to_text(
    data: *const u8,
    len: usize,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> snow_status {
    guard("snow_term_to_text", || {
        // SAFETY: the caller's contract.
        let bytes = unsafe { ids::bytes(data, len, "data")? };
        let text = decode(bytes)?.to_string();
        if !needed.is_null() {
            // SAFETY: the caller's contract.
            unsafe { needed.write(text.len()) };
        }
        if cap == 0 || buf.is_null() {
            return Err(Failure::new(SNOW_ERR_BUFFER, format!("the text needs {} bytes and a nul", text.len())));
        }
        let n = text.len().min(cap - 1);
        // SAFETY: `buf` has `cap` writable bytes and n + 1 <= cap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
        if n < text.len() {
            return Err(Failure::new(SNOW_ERR_BUFFER, format!("the text needs {} bytes and a nul", text.len())));
        }
        Ok(SNOW_OK)
    })
}

/// Decodes bytes from C into a term, with the limits of terms from the network.
pub(crate) fn decode(bytes: &[u8]) -> Outcome<Term> {
    codec::decode(bytes).map_err(|e| Failure::new(SNOW_ERR_BAD_TERM, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use snow_shared::{NodeName, Pid};

    #[test]
    fn the_decoder_gives_items_depth_first() {
        let pid = Pid::new(NodeName::parse("app@db1.example.com").unwrap(), 4242, 7);
        let term = Term::tuple([
            Term::atom("ok"),
            Term::List(vec![Term::Int(-5), Term::binary([1u8, 2, 255])]),
            Term::structure("P", [("x", Term::Bool(true))]),
            Term::Pid(pid.clone()),
        ]);
        let bytes = codec::encode(&term);
        let mut d = std::ptr::null_mut();
        // SAFETY: bytes with their length; writable out-parameters; the decoder freed once.
        unsafe {
            assert_eq!(snow_decoder_new(bytes.as_ptr(), bytes.len(), &mut d), SNOW_OK);
            let mut item: snow_item = std::mem::zeroed();
            let mut seen = Vec::new();
            while snow_decode_next(d, &mut item) == SNOW_OK {
                let text: &[u8] =
                    if item.text.is_null() { &[] } else { std::slice::from_raw_parts(item.text, item.text_len) };
                seen.push(match item.kind {
                    snow_kind::SNOW_INT => format!("int {}", item.integer),
                    snow_kind::SNOW_BOOL => format!("bool {}", item.boolean),
                    snow_kind::SNOW_PID => format!("pid {}", item.pid.read_pid("pid").unwrap()),
                    k @ (snow_kind::SNOW_TUPLE | snow_kind::SNOW_LIST | snow_kind::SNOW_STRUCT) => {
                        format!("{k:?} {}", item.count)
                    }
                    k => format!("{k:?} {text:?}"),
                });
                item.text = std::ptr::null();
                item.text_len = 0;
            }
            assert_eq!(
                seen,
                [
                    "SNOW_TUPLE 4",
                    "SNOW_ATOM [111, 107]",
                    "SNOW_LIST 2",
                    "int -5",
                    "SNOW_BINARY [1, 2, 255]",
                    "SNOW_STRUCT 1",
                    "SNOW_FIELD [120]",
                    "bool true",
                    &format!("pid {pid}"),
                ]
            );
            assert_eq!(snow_decode_next(d, &mut item), SNOW_ERR_END);
            snow_decoder_free(d);
            // A bad term: the codec's reason.
            assert_eq!(snow_decoder_new([1u8, 0x8f].as_ptr(), 2, &mut d), SNOW_ERR_BAD_TERM);
            let why = std::ffi::CStr::from_ptr(crate::status::snow_last_error()).to_str().unwrap();
            assert!(why.contains("unknown type tag 0x8f"), "{why}");
        }
    }

    #[test]
    fn terms_read_as_text() {
        let bytes = codec::encode(&Term::tuple([Term::atom("echo"), Term::string("hello")]));
        let mut buf = [0 as c_char; 64];
        let mut needed = 0;
        // SAFETY: bytes with their length, a buffer with its size.
        unsafe {
            assert_eq!(snow_term_to_text(bytes.as_ptr(), bytes.len(), buf.as_mut_ptr(), 64, &mut needed), SNOW_OK);
            assert_eq!(std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "{:echo, \"hello\"}");
            assert_eq!(needed, 16);
            assert_eq!(
                snow_term_to_text(bytes.as_ptr(), bytes.len(), buf.as_mut_ptr(), 5, &mut needed),
                SNOW_ERR_BUFFER
            );
            assert_eq!(std::ffi::CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "{:ec");
        }
    }
}
