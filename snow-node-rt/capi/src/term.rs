//! Encode and decode helpers: C code builds an encoded term value by value ([`snow_encoder`]) and
//! reads one item by item ([`snow_decoder`]), in the manner of erl_interface's `ei_x_encode_*` /
//! `ei_decode_*`. The bytes are PROTOCOL.md section 1's; the codec of `snow_shared` makes and
//! checks them, so what C builds is exactly what a Rust node sends.

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
