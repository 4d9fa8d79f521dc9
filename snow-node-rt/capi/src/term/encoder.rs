//! Building a term value by value from C ([`snow_encoder`]), in the manner of erl_interface's
//! `ei_x_encode_*`.

use std::collections::BTreeMap;
use std::ffi::c_char;

use snow_shared::codec;
use snow_shared::term::{Struct, Sum};
use snow_shared::{Atom, Term};

use crate::ids::{self, snow_pid, snow_ref};
use crate::status::*;

/// A term under construction. Made by `snow_encoder_new`, freed by `snow_encoder_free`; use it from
/// one thread at a time.
pub struct snow_encoder {
    open: Vec<Open>,
    done: Option<Term>,
    bytes: Vec<u8>,
    failed: bool,
}

/// A container still waiting for values.
enum Open {
    Tuple {
        want: usize,
        items: Vec<Term>,
    },
    List {
        want: usize,
        items: Vec<Term>,
    },
    /// Keys and values alternate.
    Map {
        want: usize,
        items: Vec<Term>,
    },
    Struct {
        name: Atom,
        want: usize,
        fields: Vec<(Atom, Term)>,
        field: Option<Atom>,
    },
    Sum {
        type_name: Atom,
        variant: Atom,
        want: usize,
        items: Vec<Term>,
    },
}

impl Open {
    fn is_full(&self) -> bool {
        match self {
            Open::Tuple { want, items } | Open::List { want, items } | Open::Sum { want, items, .. } => {
                items.len() == *want
            }
            Open::Map { want, items } => items.len() == want * 2,
            Open::Struct { want, fields, .. } => fields.len() == *want,
        }
    }

    fn close(self) -> Outcome<Term> {
        Ok(match self {
            Open::Tuple { items, .. } => Term::Tuple(items),
            Open::List { items, .. } => Term::List(items),
            Open::Map { items, .. } => {
                let mut map = BTreeMap::new();
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    if map.contains_key(&key) {
                        return Err(Failure::new(SNOW_ERR_ENCODER, format!("the map holds the key {key} twice")));
                    }
                    map.insert(key, value);
                }
                Term::Map(map)
            }
            Open::Struct { name, fields, .. } => Term::Struct(Box::new(Struct { name, fields })),
            Open::Sum { type_name, variant, items, .. } => {
                Term::Sum(Box::new(Sum { type_name, variant, fields: items }))
            }
        })
    }
}

impl snow_encoder {
    fn new() -> snow_encoder {
        snow_encoder { open: Vec::new(), done: None, bytes: Vec::new(), failed: false }
    }

    fn check(&self) -> Outcome<()> {
        if self.failed {
            return Err(Failure::new(SNOW_ERR_ENCODER, "an earlier call on this encoder failed; reset it"));
        }
        if self.done.is_some() {
            return Err(Failure::new(SNOW_ERR_ENCODER, "the term is complete; reset the encoder to start another"));
        }
        Ok(())
    }

    /// Adds a complete value where the term is at.
    fn value(&mut self, term: Term) -> Outcome<()> {
        self.check()?;
        let mut term = term;
        loop {
            let Some(top) = self.open.last_mut() else {
                self.done = Some(term);
                return Ok(());
            };
            match top {
                Open::Tuple { items, .. } | Open::List { items, .. } | Open::Sum { items, .. } => items.push(term),
                Open::Map { items, .. } => items.push(term),
                Open::Struct { fields, field, .. } => match field.take() {
                    Some(name) => fields.push((name, term)),
                    None => {
                        return Err(Failure::new(
                            SNOW_ERR_ENCODER,
                            "a struct's value comes after its field name: call snow_encode_field first",
                        ))
                    }
                },
            }
            if !top.is_full() {
                return Ok(());
            }
            let full = self.open.pop().unwrap_or_else(|| unreachable!("the top was just seen"));
            term = full.close()?;
        }
    }

    /// Opens a container; one with no values is complete at once.
    fn open(&mut self, container: Open) -> Outcome<()> {
        self.check()?;
        if let Some(Open::Struct { field: None, .. }) = self.open.last() {
            return Err(Failure::new(
                SNOW_ERR_ENCODER,
                "a struct's value comes after its field name: call snow_encode_field first",
            ));
        }
        if container.is_full() {
            return self.value(container.close()?);
        }
        self.open.push(container);
        Ok(())
    }

    fn field(&mut self, name: Atom) -> Outcome<()> {
        self.check()?;
        match self.open.last_mut() {
            Some(Open::Struct { field: field @ None, .. }) => {
                *field = Some(name);
                Ok(())
            }
            Some(Open::Struct { .. }) => {
                Err(Failure::new(SNOW_ERR_ENCODER, "the previous field name has no value yet"))
            }
            _ => Err(Failure::new(SNOW_ERR_ENCODER, "a field name belongs inside a struct (snow_encode_struct)")),
        }
    }

    /// Runs one encoder call; a failure poisons the encoder until it is reset.
    fn call(&mut self, op: impl FnOnce(&mut snow_encoder) -> Outcome<()>) -> Outcome {
        let result = op(self);
        if result.is_err() && !self.failed {
            // A failure of `check` itself leaves the state as it was; any other leaves it unknown.
            self.failed = self.done.is_none() || !self.open.is_empty();
        }
        result.map(|()| SNOW_OK)
    }
}

/// # Safety
/// `encoder` must be null or an encoder from `snow_encoder_new` not yet freed.
unsafe fn encoder<'a>(encoder: *mut snow_encoder) -> Outcome<&'a mut snow_encoder> {
    // SAFETY: the caller's contract.
    unsafe { encoder.as_mut() }.ok_or_else(|| Failure::argument("encoder is null"))
}

/// A new, empty encoder (never null). Free it with `snow_encoder_free`.
#[no_mangle]
pub extern "C" fn snow_encoder_new() -> *mut snow_encoder {
    Box::into_raw(Box::new(snow_encoder::new()))
}

/// Frees an encoder and the bytes it gave. Null is ignored.
///
/// # Safety
/// `encoder` must be null or an encoder from `snow_encoder_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_encoder_free(encoder: *mut snow_encoder) {
    let _ = catch("snow_encoder_free", || {
        if !encoder.is_null() {
            // SAFETY: the caller's contract: ours, from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(encoder) });
        }
        Ok(())
    });
}

/// Empties the encoder to build another term (keeping its memory); also clears a failure.
///
/// # Safety
/// As `snow_encoder_free`, and not null.
#[no_mangle]
pub unsafe extern "C" fn snow_encoder_reset(encoder: *mut snow_encoder) -> snow_status {
    guard("snow_encoder_reset", || {
        // SAFETY: the caller's contract.
        let e = unsafe { self::encoder(encoder)? };
        e.open.clear();
        e.done = None;
        e.bytes.clear();
        e.failed = false;
        Ok(SNOW_OK)
    })
}

/// The encoded term, once complete: `*data` and `*len` are set to bytes owned by the encoder,
/// valid until its next call. `SNOW_ERR_ENCODER` while containers are still open.
///
/// # Safety
/// `encoder` as `snow_encoder_free`, not null; `data` and `len` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_encoder_bytes(
    encoder: *mut snow_encoder,
    data: *mut *const u8,
    len: *mut usize,
) -> snow_status {
    guard("snow_encoder_bytes", || {
        // SAFETY: the caller's contract.
        let e = unsafe { self::encoder(encoder)? };
        if e.failed {
            return Err(Failure::new(SNOW_ERR_ENCODER, "an earlier call on this encoder failed; reset it"));
        }
        let Some(term) = &e.done else {
            let waiting: Vec<String> = e
                .open
                .iter()
                .map(|o| match o {
                    Open::Tuple { want, items } => format!("a tuple waiting for {} more", want - items.len()),
                    Open::List { want, items } => format!("a list waiting for {} more", want - items.len()),
                    Open::Map { want, items } => {
                        format!("a map waiting for {} more keys and values", want * 2 - items.len())
                    }
                    Open::Struct { want, fields, .. } => {
                        format!("a struct waiting for {} more fields", want - fields.len())
                    }
                    Open::Sum { want, items, .. } => format!("a sum waiting for {} more fields", want - items.len()),
                })
                .collect();
            let what = if waiting.is_empty() { "nothing was encoded yet".to_owned() } else { waiting.join(", in ") };
            return Err(Failure::new(SNOW_ERR_ENCODER, format!("the term is not complete: {what}")));
        };
        if e.bytes.is_empty() {
            codec::encode_into(term, &mut e.bytes);
        }
        // SAFETY: the caller's contract.
        unsafe {
            ids::put(data, e.bytes.as_ptr(), "data")?;
            ids::put(len, e.bytes.len(), "len")?;
        }
        Ok(SNOW_OK)
    })
}

/// Runs one encoder call for an entry point, whose contract says that `encoder` is null or an
/// encoder from `snow_encoder_new` not yet freed.
fn encode_call(
    entry: &'static str,
    encoder: *mut snow_encoder,
    op: impl FnOnce(&mut snow_encoder) -> Outcome<()>,
) -> snow_status {
    guard(entry, || {
        // SAFETY: the entry point's contract.
        let e = unsafe { self::encoder(encoder)? };
        e.call(op)
    })
}

/// A signed 64-bit integer.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_int(encoder: *mut snow_encoder, value: i64) -> snow_status {
    encode_call("snow_encode_int", encoder, |e| e.value(Term::Int(value)))
}

/// A 64-bit float (any bit pattern).
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_float(encoder: *mut snow_encoder, value: f64) -> snow_status {
    encode_call("snow_encode_float", encoder, |e| e.value(Term::Float(value)))
}

/// The unit value `()`.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_unit(encoder: *mut snow_encoder) -> snow_status {
    encode_call("snow_encode_unit", encoder, |e| e.value(Term::Unit))
}

/// `true` or `false`.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_bool(encoder: *mut snow_encoder, value: bool) -> snow_status {
    encode_call("snow_encode_bool", encoder, |e| e.value(Term::Bool(value)))
}

/// An atom: `len` bytes of UTF-8 (at most 1024).
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_atom(encoder: *mut snow_encoder, text: *const c_char, len: usize) -> snow_status {
    encode_call("snow_encode_atom", encoder, |e| {
        // SAFETY: the caller's contract.
        let atom = unsafe { ids::atom(text, len, "the atom")? };
        e.value(Term::Atom(atom))
    })
}

/// A string: `len` bytes of UTF-8 (copied).
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_string(
    encoder: *mut snow_encoder,
    text: *const c_char,
    len: usize,
) -> snow_status {
    encode_call("snow_encode_string", encoder, |e| {
        // SAFETY: the caller's contract.
        let text = unsafe { ids::text(text, len, "the string")? };
        e.value(Term::String(text.to_owned()))
    })
}

/// A binary: `len` raw bytes (copied).
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_binary(encoder: *mut snow_encoder, data: *const u8, len: usize) -> snow_status {
    encode_call("snow_encode_binary", encoder, |e| {
        // SAFETY: the caller's contract.
        let data = unsafe { ids::bytes(data, len, "the binary")? };
        e.value(Term::binary(data))
    })
}

/// A pid.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_pid(encoder: *mut snow_encoder, pid: *const snow_pid) -> snow_status {
    encode_call("snow_encode_pid", encoder, |e| {
        // SAFETY: the caller's contract.
        let pid = unsafe { ids::get(pid, "pid")? }.read_pid("pid")?;
        e.value(Term::Pid(pid))
    })
}

/// A reference.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_ref(encoder: *mut snow_encoder, reference: *const snow_ref) -> snow_status {
    encode_call("snow_encode_ref", encoder, |e| {
        // SAFETY: the caller's contract.
        let reference = unsafe { ids::get(reference, "reference")? }.read_ref("reference")?;
        e.value(Term::Ref(reference))
    })
}

/// A tuple of `arity` values: the next `arity` values (each possibly a container) are its
/// elements.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_tuple(encoder: *mut snow_encoder, arity: usize) -> snow_status {
    encode_call("snow_encode_tuple", encoder, |e| e.open(Open::Tuple { want: arity, items: Vec::new() }))
}

/// A list of `count` values, which follow.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_list(encoder: *mut snow_encoder, count: usize) -> snow_status {
    encode_call("snow_encode_list", encoder, |e| e.open(Open::List { want: count, items: Vec::new() }))
}

/// A map of `pairs` entries: a key then its value, `pairs` times. A key given twice fails when
/// the map is complete. The bytes list the keys in the canonical order (PROTOCOL.md 1.7)
/// whatever order they were given in.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_map(encoder: *mut snow_encoder, pairs: usize) -> snow_status {
    encode_call("snow_encode_map", encoder, |e| e.open(Open::Map { want: pairs, items: Vec::new() }))
}

/// A struct named `name` (`name_len` bytes of UTF-8) with `fields` fields: then, for each,
/// `snow_encode_field` and the field's value.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_struct(
    encoder: *mut snow_encoder,
    name: *const c_char,
    name_len: usize,
    fields: usize,
) -> snow_status {
    encode_call("snow_encode_struct", encoder, |e| {
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, name_len, "the struct name")? };
        e.open(Open::Struct { name, want: fields, fields: Vec::new(), field: None })
    })
}

/// The name of a struct's next field; its value follows.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_field(encoder: *mut snow_encoder, name: *const c_char, len: usize) -> snow_status {
    encode_call("snow_encode_field", encoder, |e| {
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, len, "the field name")? };
        e.field(name)
    })
}

/// A value of a sum type (`Shape.Circle(1.5)`): the type's and variant's names, and `fields`
/// positional fields, which follow.
///
/// # Safety
/// `encoder` must be an encoder from `snow_encoder_new` not yet freed; pointer arguments must
/// point at as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_encode_sum(
    encoder: *mut snow_encoder,
    type_name: *const c_char,
    type_len: usize,
    variant: *const c_char,
    variant_len: usize,
    fields: usize,
) -> snow_status {
    encode_call("snow_encode_sum", encoder, |e| {
        // SAFETY: the caller's contract.
        let type_name = unsafe { ids::atom(type_name, type_len, "the type name")? };
        // SAFETY: the caller's contract.
        let variant = unsafe { ids::atom(variant, variant_len, "the variant name")? };
        e.open(Open::Sum { type_name, variant, want: fields, items: Vec::new() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use snow_shared::{NodeName, Pid};

    fn finish(e: *mut snow_encoder) -> Vec<u8> {
        let (mut data, mut len) = (std::ptr::null(), 0usize);
        // SAFETY: a live encoder and writable out-parameters.
        assert_eq!(unsafe { snow_encoder_bytes(e, &mut data, &mut len) }, SNOW_OK);
        // SAFETY: the encoder owns `len` bytes at `data` until its next call.
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    }

    #[test]
    fn the_encoder_builds_what_the_codec_encodes() {
        let pid = Pid::new(NodeName::parse("app@db1.example.com").unwrap(), 4242, 7);
        let e = snow_encoder_new();
        // SAFETY: a live encoder; texts with their lengths.
        unsafe {
            assert_eq!(snow_encode_tuple(e, 4), SNOW_OK);
            assert_eq!(snow_encode_atom(e, c"msg".as_ptr(), 3), SNOW_OK);
            assert_eq!(snow_encode_pid(e, &snow_pid::from_pid(&pid)), SNOW_OK);
            assert_eq!(snow_encode_map(e, 2), SNOW_OK);
            // Given out of order: the bytes are canonical anyway.
            assert_eq!(snow_encode_atom(e, c"b".as_ptr(), 1), SNOW_OK);
            assert_eq!(snow_encode_list(e, 0), SNOW_OK);
            assert_eq!(snow_encode_atom(e, c"a".as_ptr(), 1), SNOW_OK);
            assert_eq!(snow_encode_struct(e, c"Point".as_ptr(), 5, 1), SNOW_OK);
            assert_eq!(snow_encode_field(e, c"x".as_ptr(), 1), SNOW_OK);
            assert_eq!(snow_encode_float(e, 1.5), SNOW_OK);
            assert_eq!(snow_encode_sum(e, c"Option".as_ptr(), 6, c"None".as_ptr(), 4, 0), SNOW_OK);
            // Complete: one more value is refused, and the bytes are still there.
            assert_eq!(snow_encode_int(e, 1), SNOW_ERR_ENCODER);
        }
        let expected = Term::tuple([
            Term::atom("msg"),
            Term::Pid(pid),
            Term::Map(BTreeMap::from([
                (Term::atom("a"), Term::structure("Point", [("x", Term::Float(1.5))])),
                (Term::atom("b"), Term::List(vec![])),
            ])),
            Term::sum("Option", "None", []),
        ]);
        assert_eq!(finish(e), codec::encode(&expected));
        // SAFETY: ours, freed once.
        unsafe { snow_encoder_free(e) };
    }

    #[test]
    fn the_encoder_refuses_what_is_not_a_term() {
        let e = snow_encoder_new();
        // SAFETY: a live encoder; texts with their lengths.
        unsafe {
            assert_eq!(snow_encode_tuple(e, 2), SNOW_OK);
            let (mut data, mut len) = (std::ptr::null(), 0usize);
            assert_eq!(snow_encoder_bytes(e, &mut data, &mut len), SNOW_ERR_ENCODER);
            assert!(std::ffi::CStr::from_ptr(crate::status::snow_last_error())
                .to_str()
                .unwrap()
                .contains("tuple waiting for 2"));
            assert_eq!(snow_encode_string(e, c"\xff".as_ptr(), 1), SNOW_ERR_ARGUMENT);
            // Poisoned until reset.
            assert_eq!(snow_encode_int(e, 1), SNOW_ERR_ENCODER);
            assert_eq!(snow_encoder_reset(e), SNOW_OK);
            assert_eq!(snow_encode_map(e, 2), SNOW_OK);
            assert_eq!(snow_encode_int(e, 1), SNOW_OK);
            assert_eq!(snow_encode_int(e, 2), SNOW_OK);
            assert_eq!(snow_encode_int(e, 1), SNOW_OK);
            // The value completes the map, whose key 1 is there twice.
            assert_eq!(snow_encode_int(e, 3), SNOW_ERR_ENCODER);
            let why = std::ffi::CStr::from_ptr(crate::status::snow_last_error()).to_str().unwrap();
            assert!(why.contains("holds the key 1 twice"), "{why}");
            assert_eq!(snow_encoder_reset(e), SNOW_OK);
            assert_eq!(snow_encode_struct(e, c"S".as_ptr(), 1, 1), SNOW_OK);
            assert_eq!(snow_encode_int(e, 1), SNOW_ERR_ENCODER);
            assert_eq!(snow_encode_field(e, std::ptr::null(), 3), SNOW_ERR_ARGUMENT);
            snow_encoder_free(e);
            assert_eq!(snow_encode_int(std::ptr::null_mut(), 1), SNOW_ERR_ARGUMENT);
        }
    }
}
