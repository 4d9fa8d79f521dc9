//! Conversions between [`Term`] and Rust types.
//!
//! Into a term: integers, floats, `bool`, `&str`/`String` (strings), `Vec<u8>`/`&[u8]`/[`Binary`]
//! (binaries), `Vec<T>` of the common element types (lists), tuples up to 8 elements,
//! `HashMap`/`BTreeMap` (maps), `Option<T>` (the sum values `Option.Some(x)` / `Option.None`, which
//! keeps `Some(None)` distinct from `None`), `()` (unit), atoms, pids and refs.
//! Out of a term: the same types through `TryFrom<Term>`, failing with a [`ConversionError`]
//! that names what was expected and what was found.
//!
//! `Vec<u8>` is a binary, not a list of small integers: that is what byte buffers almost always
//! mean; build a list of bytes with [`Term::list`] if you need one.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::atom::Atom;
use crate::binary::Binary;
use crate::pid::{Pid, Ref};
use crate::term::{Sum, Term};

/// A term did not have the shape a conversion asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ConversionError {
    /// What the conversion needed, e.g. "an integer".
    pub expected: &'static str,
    /// What the term was, e.g. "an atom".
    pub found: &'static str,
}

impl From<std::convert::Infallible> for ConversionError {
    fn from(never: std::convert::Infallible) -> ConversionError {
        match never {}
    }
}

fn mismatch(expected: &'static str, found: &Term) -> ConversionError {
    ConversionError { expected, found: found.kind() }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Term {
            fn from(v: $t) -> Term { Term::Int(i64::from(v)) }
        }
        impl TryFrom<Term> for $t {
            type Error = ConversionError;
            fn try_from(t: Term) -> Result<$t, ConversionError> {
                match t {
                    Term::Int(i) => <$t>::try_from(i)
                        .map_err(|_| ConversionError { expected: concat!("an integer that fits ", stringify!($t)), found: "an integer out of range" }),
                    other => Err(mismatch("an integer", &other)),
                }
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! try_from_wide_int {
    ($($t:ty),*) => {$(
        impl TryFrom<$t> for Term {
            type Error = ConversionError;
            fn try_from(v: $t) -> Result<Term, ConversionError> {
                i64::try_from(v).map(Term::Int).map_err(|_| ConversionError { expected: "an integer that fits i64", found: "a larger integer" })
            }
        }
        impl TryFrom<Term> for $t {
            type Error = ConversionError;
            fn try_from(t: Term) -> Result<$t, ConversionError> {
                match t {
                    Term::Int(i) => <$t>::try_from(i)
                        .map_err(|_| ConversionError { expected: concat!("an integer that fits ", stringify!($t)), found: "an integer out of range" }),
                    other => Err(mismatch("an integer", &other)),
                }
            }
        }
    )*};
}
try_from_wide_int!(u64, usize);

impl From<f64> for Term {
    fn from(v: f64) -> Term {
        Term::Float(v)
    }
}

impl From<f32> for Term {
    fn from(v: f32) -> Term {
        Term::Float(f64::from(v))
    }
}

impl TryFrom<Term> for f64 {
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<f64, ConversionError> {
        match t {
            Term::Float(f) => Ok(f),
            other => Err(mismatch("a float", &other)),
        }
    }
}

impl From<bool> for Term {
    fn from(v: bool) -> Term {
        Term::Bool(v)
    }
}

impl TryFrom<Term> for bool {
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<bool, ConversionError> {
        match t {
            Term::Bool(b) => Ok(b),
            other => Err(mismatch("a boolean", &other)),
        }
    }
}

impl From<()> for Term {
    fn from(_: ()) -> Term {
        Term::Unit
    }
}

impl TryFrom<Term> for () {
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<(), ConversionError> {
        match t {
            Term::Unit => Ok(()),
            other => Err(mismatch("unit", &other)),
        }
    }
}

impl From<&str> for Term {
    fn from(v: &str) -> Term {
        Term::String(v.to_owned())
    }
}

impl From<String> for Term {
    fn from(v: String) -> Term {
        Term::String(v)
    }
}

impl From<&String> for Term {
    fn from(v: &String) -> Term {
        Term::String(v.clone())
    }
}

impl TryFrom<Term> for String {
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<String, ConversionError> {
        match t {
            Term::String(s) => Ok(s),
            other => Err(mismatch("a string", &other)),
        }
    }
}

impl From<Vec<u8>> for Term {
    fn from(v: Vec<u8>) -> Term {
        Term::Binary(v.into())
    }
}

impl From<&[u8]> for Term {
    fn from(v: &[u8]) -> Term {
        Term::Binary(v.into())
    }
}

/// The bytes, copied only when the binary shares its buffer ([`Binary::into_vec`]).
impl TryFrom<Term> for Vec<u8> {
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<Vec<u8>, ConversionError> {
        match t {
            Term::Binary(b) => Ok(b.into_vec()),
            other => Err(mismatch("a binary", &other)),
        }
    }
}

macro_rules! from_identity {
    ($($t:ident => $variant:ident, $what:literal);*) => {$(
        impl From<$t> for Term {
            fn from(v: $t) -> Term { Term::$variant(v) }
        }
        impl From<&$t> for Term {
            fn from(v: &$t) -> Term { Term::$variant(v.clone()) }
        }
        impl TryFrom<Term> for $t {
            type Error = ConversionError;
            fn try_from(t: Term) -> Result<$t, ConversionError> {
                match t {
                    Term::$variant(v) => Ok(v),
                    other => Err(mismatch($what, &other)),
                }
            }
        }
    )*};
}
from_identity!(Atom => Atom, "an atom"; Pid => Pid, "a pid"; Ref => Ref, "a reference"; Binary => Binary, "a binary");

impl From<Vec<Term>> for Term {
    fn from(v: Vec<Term>) -> Term {
        Term::List(v)
    }
}

impl TryFrom<Term> for Vec<Term> {
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<Vec<Term>, ConversionError> {
        match t {
            Term::List(l) => Ok(l),
            other => Err(mismatch("a list", &other)),
        }
    }
}

fn option_to_term(value: Option<Term>) -> Term {
    match value {
        Some(v) => Term::sum("Option", "Some", [v]),
        None => Term::sum("Option", "None", []),
    }
}

fn term_to_option(t: Term) -> Result<Option<Term>, ConversionError> {
    match t {
        Term::Sum(sum) if sum.type_name.as_str() == "Option" => {
            let Sum { variant, mut fields, .. } = *sum;
            match (variant.as_str(), fields.len()) {
                ("None", 0) => Ok(None),
                ("Some", 1) => Ok(fields.pop()),
                _ => {
                    Err(ConversionError { expected: "Option.Some(x) or Option.None", found: "another Option variant" })
                }
            }
        }
        other => Err(mismatch("an Option value", &other)),
    }
}

impl From<Option<Term>> for Term {
    fn from(v: Option<Term>) -> Term {
        option_to_term(v)
    }
}

// Vec<T> and Option<T> for element types other than Term and u8. (A blanket impl would collide
// with Vec<u8> as a binary and with the standard library's `From<T> for Option<T>`.)
macro_rules! containers_of {
    ($($t:ty),*) => {$(
        impl From<Vec<$t>> for Term {
            fn from(v: Vec<$t>) -> Term { Term::List(v.into_iter().map(Term::from).collect()) }
        }
        impl TryFrom<Term> for Vec<$t> {
            type Error = ConversionError;
            fn try_from(t: Term) -> Result<Vec<$t>, ConversionError> {
                match t {
                    Term::List(l) => l.into_iter().map(<$t>::try_from).collect(),
                    other => Err(mismatch("a list", &other)),
                }
            }
        }
        impl From<Option<$t>> for Term {
            fn from(v: Option<$t>) -> Term { option_to_term(v.map(Term::from)) }
        }
        impl TryFrom<Term> for Option<$t> {
            type Error = ConversionError;
            fn try_from(t: Term) -> Result<Option<$t>, ConversionError> {
                term_to_option(t)?.map(<$t>::try_from).transpose()
            }
        }
    )*};
}
containers_of!(i8, i16, i32, i64, u16, u32, f64, bool, String, Atom, Pid, Ref, Vec<u8>);

impl From<Vec<&str>> for Term {
    fn from(v: Vec<&str>) -> Term {
        Term::List(v.into_iter().map(Term::from).collect())
    }
}

impl From<Option<&str>> for Term {
    fn from(v: Option<&str>) -> Term {
        option_to_term(v.map(Term::from))
    }
}

macro_rules! tuples {
    ($( ($($name:ident),+) )*) => {$(
        impl<$($name: Into<Term>),+> From<($($name,)+)> for Term {
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Term {
                Term::Tuple(vec![$($name.into()),+])
            }
        }
        impl<$($name: TryFrom<Term>),+> TryFrom<Term> for ($($name,)+)
        where $(ConversionError: From<$name::Error>),+
        {
            type Error = ConversionError;
            fn try_from(t: Term) -> Result<($($name,)+), ConversionError> {
                const ARITY: usize = [$(stringify!($name)),+].len();
                match t {
                    Term::Tuple(items) if items.len() == ARITY => {
                        let mut items = items.into_iter();
                        Ok(($($name::try_from(items.next().ok_or(ConversionError { expected: "a tuple element", found: "nothing" })?)
                            .map_err(ConversionError::from)?,)+))
                    }
                    Term::Tuple(_) => Err(ConversionError { expected: concat!("a tuple of ", stringify!($($name)+)), found: "a tuple of another size" }),
                    other => Err(mismatch("a tuple", &other)),
                }
            }
        }
    )*};
}
tuples! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
}

impl<K: Into<Term>, V: Into<Term>, S> From<HashMap<K, V, S>> for Term {
    fn from(m: HashMap<K, V, S>) -> Term {
        Term::Map(m.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<Term>, V: Into<Term>> From<BTreeMap<K, V>> for Term {
    fn from(m: BTreeMap<K, V>) -> Term {
        Term::Map(m.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K, V> TryFrom<Term> for HashMap<K, V>
where
    K: TryFrom<Term> + Eq + Hash,
    V: TryFrom<Term>,
    ConversionError: From<K::Error> + From<V::Error>,
{
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<HashMap<K, V>, ConversionError> {
        match t {
            Term::Map(m) => m.into_iter().map(|(k, v)| Ok((K::try_from(k)?, V::try_from(v)?))).collect(),
            other => Err(mismatch("a map", &other)),
        }
    }
}

impl<K, V> TryFrom<Term> for BTreeMap<K, V>
where
    K: TryFrom<Term> + Ord,
    V: TryFrom<Term>,
    ConversionError: From<K::Error> + From<V::Error>,
{
    type Error = ConversionError;
    fn try_from(t: Term) -> Result<BTreeMap<K, V>, ConversionError> {
        match t {
            Term::Map(m) => m.into_iter().map(|(k, v)| Ok((K::try_from(k)?, V::try_from(v)?))).collect(),
            other => Err(mismatch("a map", &other)),
        }
    }
}

impl<T: Into<Term>> FromIterator<T> for Term {
    /// Collects into a list.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Term {
        Term::List(iter.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_round_trip() {
        assert_eq!(i64::try_from(Term::from(-7i64)), Ok(-7));
        assert_eq!(u8::try_from(Term::from(200u8)), Ok(200));
        assert!(u8::try_from(Term::from(300i64)).is_err());
        assert_eq!(u64::try_from(Term::try_from(5u64).unwrap()), Ok(5));
        assert!(Term::try_from(u64::MAX).is_err());
        assert_eq!(f64::try_from(Term::from(1.5)), Ok(1.5));
        assert_eq!(bool::try_from(Term::from(true)), Ok(true));
        assert_eq!(String::try_from(Term::from("hi")), Ok("hi".to_owned()));
        assert_eq!(<()>::try_from(Term::from(())), Ok(()));
    }

    #[test]
    fn bytes_are_binaries_and_vecs_are_lists() {
        assert_eq!(Term::from(vec![1u8, 2]), Term::binary([1, 2]));
        assert_eq!(Term::from(&b"ab"[..]), Term::binary(b"ab"));
        assert_eq!(Term::from(vec![1i64, 2]), Term::List(vec![Term::Int(1), Term::Int(2)]));
        assert_eq!(Vec::<i64>::try_from(Term::from(vec![3i64, 4])), Ok(vec![3, 4]));
        assert_eq!(Vec::<String>::try_from(Term::from(vec!["a", "b"])), Ok(vec!["a".into(), "b".into()]));
        assert!(Vec::<i64>::try_from(Term::from(vec!["a"])).is_err());
    }

    #[test]
    fn tuples_maps_options() {
        let t = Term::from((Atom::new("ok"), 5i64, "x"));
        assert_eq!(t.to_string(), "{:ok, 5, \"x\"}");
        let (a, n, s): (Atom, i64, String) = t.try_into().unwrap();
        assert_eq!((a.as_str(), n, s.as_str()), ("ok", 5, "x"));
        assert!(<(i64, i64)>::try_from(Term::from((1i64, 2i64, 3i64))).is_err());

        let mut hm = HashMap::new();
        hm.insert("k".to_owned(), 1i64);
        let back: HashMap<String, i64> = Term::from(hm.clone()).try_into().unwrap();
        assert_eq!(back, hm);
        let bt: BTreeMap<i64, bool> = [(1, true)].into_iter().collect();
        assert_eq!(BTreeMap::<i64, bool>::try_from(Term::from(bt.clone())), Ok(bt));

        assert_eq!(Option::<i64>::try_from(Term::from(Some(3i64))), Ok(Some(3)));
        assert_eq!(Option::<i64>::try_from(Term::from(None::<i64>)), Ok(None));
        assert_eq!(Term::from(Some(3i64)).to_string(), "Option.Some(3)");
        assert!(Option::<i64>::try_from(Term::Int(3)).is_err());
    }

    #[test]
    fn errors_name_expected_and_found() {
        let e = i64::try_from(Term::atom("ok")).unwrap_err();
        assert_eq!(e.to_string(), "expected an integer, found an atom");
    }
}
