//! The Snow value model: [`Term`], its total order, hashing and Erlang-like display.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::atom::Atom;
use crate::pid::{Pid, Ref};

/// A Snow value: what messages, exit reasons and registry entries are made of.
///
/// Terms have a total order across all variants (like Erlang's term order), so any term can be a
/// map key or be sorted:
///
/// `number < Unit < Bool < Atom < Ref < Pid < Tuple < Map < List < String < Binary < Struct < Sum`
///
/// Numbers compare by value across `Int` and `Float`; when an `Int` and a `Float` are numerically
/// equal the `Int` sorts first, because they are *not* equal terms (`1` and `1.0` are different
/// keys, like Erlang's `=:=`). Floats compare with IEEE `totalOrder`, so `-0.0 < 0.0` and NaN has a
/// place. Tuples compare by size first, then element by element (as in Erlang); lists, strings
/// and binaries lexicographically; maps by size, then by their sorted entries.
#[derive(Clone)]
pub enum Term {
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit IEEE float.
    Float(f64),
    /// The unit value `()`.
    Unit,
    /// `true` or `false`.
    Bool(bool),
    /// An interned symbol such as `:ok`.
    Atom(Atom),
    /// A reference.
    Ref(Ref),
    /// A process identifier.
    Pid(Pid),
    /// A fixed-size sequence `{a, b, c}`.
    Tuple(Vec<Term>),
    /// A map with a canonical (sorted) key order.
    Map(BTreeMap<Term, Term>),
    /// A list `[a, b, c]`.
    List(Vec<Term>),
    /// UTF-8 text.
    String(String),
    /// Raw bytes: owned when small, shared (cheap to clone and to send) when larger than
    /// [`crate::binary::SHARE_THRESHOLD`] bytes.
    Binary(crate::binary::Binary),
    /// A named record with named fields, in declaration order (boxed: rare, and large).
    Struct(Box<Struct>),
    /// A variant of a sum type, with positional fields (boxed: rare, and large).
    Sum(Box<Sum>),
}

/// A record value: `%Point{x: 1, y: 2}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Struct {
    /// The struct's type name.
    pub name: Atom,
    /// Field names and values, in the order the type declares them.
    pub fields: Vec<(Atom, Term)>,
}

/// A sum-type value: `Shape.Circle(1.5)`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sum {
    /// The sum type's name (`Shape`).
    pub type_name: Atom,
    /// The variant's name (`Circle`).
    pub variant: Atom,
    /// Positional fields of the variant.
    pub fields: Vec<Term>,
}

impl Term {
    /// The atom with this text.
    pub fn atom(text: &str) -> Term {
        Term::Atom(Atom::new(text))
    }

    /// A tuple of the given elements.
    pub fn tuple(elements: impl IntoIterator<Item = Term>) -> Term {
        Term::Tuple(elements.into_iter().collect())
    }

    /// A list of anything convertible to terms.
    pub fn list<T: Into<Term>>(elements: impl IntoIterator<Item = T>) -> Term {
        Term::List(elements.into_iter().map(Into::into).collect())
    }

    /// A map from key/value pairs; a later duplicate key replaces an earlier one (as in Erlang's
    /// `#{a => 1, a => 2}`).
    ///
    /// All keys have one Rust type and all values another. For values of different types, make
    /// the values terms (`V = Term`), or build the map entry by entry with [`Term::map_builder`]:
    ///
    /// ```
    /// use snow_shared::Term;
    ///
    /// let scores = Term::map([("alice", 3), ("bob", 5)]);
    /// let mixed = Term::map([("name", Term::from("snow")), ("port", Term::from(4369))]);
    /// assert_eq!(mixed, Term::map_builder().insert("name", "snow").insert("port", 4369).build());
    /// assert_eq!(scores.to_string(), r#"%{"alice" => 3, "bob" => 5}"#);
    /// ```
    pub fn map<K: Into<Term>, V: Into<Term>>(pairs: impl IntoIterator<Item = (K, V)>) -> Term {
        Term::Map(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// An empty [`MapBuilder`]: a map whose keys and values may each be of any type convertible
    /// to a term, one entry at a time.
    ///
    /// ```
    /// use snow_shared::Term;
    ///
    /// let config = Term::map_builder()
    ///     .insert(Term::atom("name"), "db")
    ///     .insert(Term::atom("replicas"), 3)
    ///     .insert(Term::atom("tags"), Term::list(["eu", "ssd"]))
    ///     .build();
    /// assert_eq!(config.to_string(), r#"%{:name => "db", :replicas => 3, :tags => ["eu", "ssd"]}"#);
    /// ```
    pub fn map_builder() -> MapBuilder {
        MapBuilder::default()
    }

    /// A binary of `bytes`: a `Vec<u8>` (or `String`) larger than
    /// [`crate::binary::SHARE_THRESHOLD`] is taken without copying its bytes; borrowed bytes
    /// (`&[u8]`, `&[u8; N]`, `&str`) are copied.
    ///
    /// ```
    /// use snow_shared::Term;
    ///
    /// let payload = vec![0u8; 65_536];
    /// let at = payload.as_ptr();
    /// let msg = Term::binary(payload);
    /// assert_eq!(msg.as_bytes().map(<[u8]>::as_ptr), Some(at));
    /// assert_eq!(Term::binary(b"abc"), Term::binary(&[97u8, 98, 99][..]));
    /// ```
    pub fn binary(bytes: impl Into<crate::binary::Binary>) -> Term {
        Term::Binary(bytes.into())
    }

    /// A string term.
    pub fn string(text: impl Into<String>) -> Term {
        Term::String(text.into())
    }

    /// A struct value.
    pub fn structure<V: Into<Term>>(name: &str, fields: impl IntoIterator<Item = (&'static str, V)>) -> Term {
        Term::Struct(Box::new(Struct {
            name: Atom::new(name),
            fields: fields.into_iter().map(|(k, v)| (Atom::new(k), v.into())).collect(),
        }))
    }

    /// A sum-type value.
    pub fn sum(type_name: &str, variant: &str, fields: impl IntoIterator<Item = Term>) -> Term {
        Term::Sum(Box::new(Sum {
            type_name: Atom::new(type_name),
            variant: Atom::new(variant),
            fields: fields.into_iter().collect(),
        }))
    }

    /// Whether this is the atom with the given text (`term.is_atom("ok")`).
    pub fn is_atom(&self, text: &str) -> bool {
        matches!(self, Term::Atom(a) if a.as_str() == text)
    }

    /// The atom, if this is one.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Term::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Term::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The pid, if this is one.
    pub fn as_pid(&self) -> Option<&Pid> {
        match self {
            Term::Pid(p) => Some(p),
            _ => None,
        }
    }

    /// The elements, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(l) => Some(l),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&BTreeMap<Term, Term>> {
        match self {
            Term::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The elements of a tuple, taken out by value; any other term is handed back unchanged, so
    /// the caller can try another shape without having cloned anything.
    ///
    /// ```
    /// use snow_shared::Term;
    ///
    /// let msg = Term::tuple([Term::atom("put"), Term::from("key"), Term::binary(vec![0u8; 1024])]);
    /// let fields = msg.into_tuple().expect("a tuple");
    /// assert_eq!(fields.len(), 3);
    /// assert_eq!(Term::atom("stop").into_tuple(), Err(Term::atom("stop")));
    /// ```
    pub fn into_tuple(self) -> Result<Vec<Term>, Term> {
        match self {
            Term::Tuple(t) => Ok(t),
            other => Err(other),
        }
    }

    /// The elements of a tuple of exactly `N` elements, by value, to destructure in a pattern;
    /// any other term (another size included) is handed back unchanged.
    ///
    /// ```
    /// use snow_shared::Term;
    ///
    /// let msg = Term::tuple([Term::atom("add"), Term::from(2), Term::from(40)]);
    /// match msg.into_tuple_array() {
    ///     Ok([op, Term::Int(a), Term::Int(b)]) if op.is_atom("add") => assert_eq!(a + b, 42),
    ///     Ok(_) => panic!("another operation"),
    ///     Err(other) => panic!("not a 3-tuple: {other}"),
    /// }
    /// ```
    pub fn into_tuple_array<const N: usize>(self) -> Result<[Term; N], Term> {
        match self {
            Term::Tuple(t) => <[Term; N]>::try_from(t).map_err(Term::Tuple),
            other => Err(other),
        }
    }

    /// The elements of a list, by value; any other term is handed back unchanged.
    pub fn into_list(self) -> Result<Vec<Term>, Term> {
        match self {
            Term::List(l) => Ok(l),
            other => Err(other),
        }
    }

    /// The entries of a map, by value; any other term is handed back unchanged.
    pub fn into_map(self) -> Result<BTreeMap<Term, Term>, Term> {
        match self {
            Term::Map(m) => Ok(m),
            other => Err(other),
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Term::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a binary.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Term::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The binary, if this is one: its bytes (it dereferences to `[u8]`), or a clone of it to
    /// keep or send on, which copies no byte when it is shared.
    pub fn as_binary(&self) -> Option<&crate::binary::Binary> {
        match self {
            Term::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// A short name of the variant, for error messages ("an integer", "a tuple", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Term::Int(_) => "an integer",
            Term::Float(_) => "a float",
            Term::Unit => "unit",
            Term::Bool(_) => "a boolean",
            Term::Atom(_) => "an atom",
            Term::Ref(_) => "a reference",
            Term::Pid(_) => "a pid",
            Term::Tuple(_) => "a tuple",
            Term::Map(_) => "a map",
            Term::List(_) => "a list",
            Term::String(_) => "a string",
            Term::Binary(_) => "a binary",
            Term::Struct(_) => "a struct",
            Term::Sum(_) => "a sum-type value",
        }
    }

    /// Position of the variant in the cross-type order (numbers share rank 0).
    fn rank(&self) -> u8 {
        match self {
            Term::Int(_) | Term::Float(_) => 0,
            Term::Unit => 1,
            Term::Bool(_) => 2,
            Term::Atom(_) => 3,
            Term::Ref(_) => 4,
            Term::Pid(_) => 5,
            Term::Tuple(_) => 6,
            Term::Map(_) => 7,
            Term::List(_) => 8,
            Term::String(_) => 9,
            Term::Binary(_) => 10,
            Term::Struct(_) => 11,
            Term::Sum(_) => 12,
        }
    }
}

/// A map built entry by entry, for keys or values of different Rust types ([`Term::map`] takes
/// one key type and one value type). Like [`Term::map`], a later duplicate key replaces an earlier
/// one. Also collects from `(key, value)` pairs (`FromIterator`) and takes more (`Extend`).
///
/// ```
/// use snow_shared::term::MapBuilder;
/// use snow_shared::Term;
///
/// let mut builder: MapBuilder = [("a", 1), ("b", 2)].into_iter().collect();
/// builder.extend([("c", "three")]);
/// let map = builder.insert("d", Term::atom("four")).build();
/// assert_eq!(map.to_string(), r#"%{"a" => 1, "b" => 2, "c" => "three", "d" => :four}"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapBuilder {
    entries: BTreeMap<Term, Term>,
}

impl MapBuilder {
    /// An empty builder (also [`Term::map_builder`]).
    pub fn new() -> MapBuilder {
        MapBuilder::default()
    }

    /// Adds `key => value`, replacing an earlier value of the same key.
    #[must_use = "the builder is moved: use the one returned"]
    pub fn insert(mut self, key: impl Into<Term>, value: impl Into<Term>) -> MapBuilder {
        self.entries.insert(key.into(), value.into());
        self
    }

    /// The number of entries so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The map term.
    pub fn build(self) -> Term {
        Term::Map(self.entries)
    }
}

impl From<MapBuilder> for Term {
    fn from(builder: MapBuilder) -> Term {
        builder.build()
    }
}

impl<K: Into<Term>, V: Into<Term>> Extend<(K, V)> for MapBuilder {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        self.entries.extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

impl<K: Into<Term>, V: Into<Term>> FromIterator<(K, V)> for MapBuilder {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> MapBuilder {
        let mut builder = MapBuilder::new();
        builder.extend(pairs);
        builder
    }
}

/// Exact comparison of an integer with a float; a numerically equal pair puts the integer first.
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return if f.is_sign_negative() { Ordering::Greater } else { Ordering::Less };
    }
    match (i as f64).partial_cmp(&f) {
        Some(Ordering::Equal) => {}
        Some(other) => return other,
        None => return Ordering::Less,
    }
    // `i as f64 == f`, so `f` is integral and within rounding distance of `i`.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_POW_63 {
        return Ordering::Less;
    }
    // In range and integral, so the conversion is exact.
    match i.cmp(&(f as i64)) {
        Ordering::Equal => Ordering::Less,
        other => other,
    }
}

impl Ord for Term {
    fn cmp(&self, other: &Term) -> Ordering {
        use Term::*;
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Int(a), Float(b)) => cmp_int_float(*a, *b),
            (Float(a), Int(b)) => cmp_int_float(*b, *a).reverse(),
            (Unit, Unit) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Atom(a), Atom(b)) => a.cmp(b),
            (Ref(a), Ref(b)) => a.cmp(b),
            (Pid(a), Pid(b)) => a.cmp(b),
            (Tuple(a), Tuple(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (Map(a), Map(b)) => a.len().cmp(&b.len()).then_with(|| a.iter().cmp(b.iter())),
            (List(a), List(b)) => a.cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (Binary(a), Binary(b)) => a.cmp(b),
            (Struct(a), Struct(b)) => a.cmp(b),
            (Sum(a), Sum(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Term {
    fn partial_cmp(&self, other: &Term) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Term {
    fn eq(&self, other: &Term) -> bool {
        use Term::*;
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Unit, Unit) => true,
            (Bool(a), Bool(b)) => a == b,
            (Atom(a), Atom(b)) => a == b,
            (Ref(a), Ref(b)) => a == b,
            (Pid(a), Pid(b)) => a == b,
            (Tuple(a), Tuple(b)) | (List(a), List(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Binary(a), Binary(b)) => a == b,
            (Struct(a), Struct(b)) => a == b,
            (Sum(a), Sum(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Term {}

impl Hash for Term {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.rank());
        match self {
            Term::Int(i) => {
                state.write_u8(0);
                i.hash(state)
            }
            Term::Float(f) => {
                state.write_u8(1);
                f.to_bits().hash(state)
            }
            Term::Unit => {}
            Term::Bool(b) => b.hash(state),
            Term::Atom(a) => a.hash(state),
            Term::Ref(r) => r.hash(state),
            Term::Pid(p) => p.hash(state),
            Term::Tuple(t) => t.hash(state),
            Term::Map(m) => m.hash(state),
            Term::List(l) => l.hash(state),
            Term::String(s) => s.hash(state),
            Term::Binary(b) => b.hash(state),
            Term::Struct(s) => s.hash(state),
            Term::Sum(s) => s.hash(state),
        }
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Term], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

/// Erlang-like syntax: `{:ok, <a@h.12.3>, "text", [1, 2]}`, `%{:k => 1}`, `<<1, 2>>`,
/// `%Point{x: 1, y: 2}`, `Shape.Circle(1.5)`, `()`.
impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Int(i) => write!(f, "{i}"),
            Term::Float(x) => write!(f, "{x:?}"),
            Term::Unit => f.write_str("()"),
            Term::Bool(b) => write!(f, "{b}"),
            Term::Atom(a) => write!(f, "{a}"),
            Term::Ref(r) => write!(f, "{r}"),
            Term::Pid(p) => write!(f, "{p}"),
            Term::Tuple(items) => write_seq(f, "{", items, "}"),
            Term::List(items) => write_seq(f, "[", items, "]"),
            Term::Map(map) => {
                f.write_str("%{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_str("}")
            }
            Term::String(s) => write!(f, "{s:?}"),
            Term::Binary(bytes) => {
                f.write_str("<<")?;
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{b}")?;
                }
                f.write_str(">>")
            }
            Term::Struct(s) => {
                write!(f, "%{}{{", s.name.as_str())?;
                for (i, (k, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", k.as_str())?;
                }
                f.write_str("}")
            }
            Term::Sum(s) => {
                write!(f, "{}.{}", s.type_name.as_str(), s.variant.as_str())?;
                if s.fields.is_empty() {
                    Ok(())
                } else {
                    write_seq(f, "(", &s.fields, ")")
                }
            }
        }
    }
}

impl fmt::Debug for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NodeName;

    fn pid(id: u64) -> Pid {
        Pid::new(NodeName::parse("a@h").unwrap(), id, 3)
    }

    #[test]
    fn term_stays_small() {
        // Messages are vectors of terms: every byte here is paid per element, in memory and in
        // decode time. Large, rare variants are boxed to keep this at four words.
        assert_eq!(std::mem::size_of::<Term>(), 32);
    }

    #[test]
    fn display_matches_erlang_like_syntax() {
        let t = Term::tuple([Term::atom("ok"), Term::Pid(pid(12)), Term::string("text"), Term::list([1, 2])]);
        assert_eq!(t.to_string(), "{:ok, <a@h.12.3>, \"text\", [1, 2]}");
        assert_eq!(Term::binary([1u8, 2]).to_string(), "<<1, 2>>");
        assert_eq!(Term::map([(Term::atom("k"), 1)]).to_string(), "%{:k => 1}");
        assert_eq!(Term::structure("Point", [("x", 1), ("y", 2)]).to_string(), "%Point{x: 1, y: 2}");
        assert_eq!(Term::sum("Shape", "Circle", [Term::Float(1.5)]).to_string(), "Shape.Circle(1.5)");
        assert_eq!(Term::sum("Option", "None", []).to_string(), "Option.None");
        assert_eq!(Term::Unit.to_string(), "()");
        assert_eq!(Term::Float(2.0).to_string(), "2.0");
        assert_eq!(Term::Bool(true).to_string(), "true");
    }

    #[test]
    fn cross_type_order() {
        let ordered = [
            Term::Int(-5),
            Term::Float(1.5),
            Term::Int(2),
            Term::Unit,
            Term::Bool(false),
            Term::Bool(true),
            Term::atom("a"),
            Term::Ref(Ref::new(NodeName::parse("a@h").unwrap(), 1, 1)),
            Term::Pid(pid(1)),
            Term::tuple([Term::Int(9)]),
            Term::tuple([Term::Int(1), Term::Int(1)]),
            Term::map([(1, 2)]),
            Term::list([1]),
            Term::string("s"),
            Term::binary(b"b"),
            Term::structure("S", [("f", 1)]),
            Term::sum("T", "V", []),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn int_and_float_are_different_but_ordered_by_value() {
        assert_ne!(Term::Int(1), Term::Float(1.0));
        assert!(Term::Int(1) < Term::Float(1.0));
        assert!(Term::Float(1.0) < Term::Int(2));
        assert!(Term::Float(0.5) < Term::Int(1));
        // Beyond f64's exact range: i64::MAX rounds to 2^63 as a float but is smaller.
        assert!(Term::Int(i64::MAX) < Term::Float(9_223_372_036_854_775_808.0));
        assert!(Term::Int(i64::MAX - 1) > Term::Float(9_223_372_036_854_774_784.0));
        assert!(Term::Int(i64::MAX) > Term::Float(f64::NAN.copysign(-1.0)));
        assert!(Term::Int(i64::MIN) < Term::Float(f64::NAN));
        assert_eq!(Term::Float(f64::NAN), Term::Float(f64::NAN));
        assert!(Term::Float(-0.0) < Term::Float(0.0));
    }

    #[test]
    fn map_builder_takes_mixed_types_and_later_keys_win() {
        let built = Term::map_builder()
            .insert("n", 1)
            .insert(Term::atom("k"), "text")
            .insert(2, Term::Pid(pid(7)))
            .insert("n", 2.5)
            .build();
        let mut expected = BTreeMap::new();
        expected.insert(Term::string("n"), Term::Float(2.5));
        expected.insert(Term::atom("k"), Term::string("text"));
        expected.insert(Term::Int(2), Term::Pid(pid(7)));
        assert_eq!(built, Term::Map(expected));
        assert_eq!(Term::map_builder().build(), Term::Map(BTreeMap::new()));
        assert!(MapBuilder::new().is_empty());

        let mut collected: MapBuilder = [("a", 1), ("a", 3), ("b", 2)].into_iter().collect();
        assert_eq!(collected.len(), 2);
        collected.extend([(Term::atom("c"), Term::Unit)]);
        assert_eq!(
            Term::from(collected),
            Term::map([
                (Term::string("a"), Term::Int(3)),
                (Term::string("b"), Term::Int(2)),
                (Term::atom("c"), Term::Unit)
            ])
        );
    }

    #[test]
    fn containers_come_out_by_value_or_back_unchanged() {
        let big = Term::binary(vec![7u8; 4096]);
        let tuple = Term::tuple([Term::atom("put"), big.clone()]);
        assert_eq!(tuple.clone().into_tuple(), Ok(vec![Term::atom("put"), big.clone()]));
        match tuple.clone().into_tuple_array() {
            Ok([tag, Term::Binary(bytes)]) => {
                assert!(tag.is_atom("put"));
                assert_eq!(bytes.len(), 4096);
            }
            other => panic!("expected a 2-tuple with a binary, got {other:?}"),
        }
        // Wrong size or wrong kind: the very term comes back.
        assert_eq!(tuple.clone().into_tuple_array::<3>(), Err(tuple.clone()));
        assert_eq!(Term::list([1, 2]).into_tuple(), Err(Term::list([1, 2])));
        assert_eq!(Term::list([1, 2]).into_tuple_array::<2>(), Err(Term::list([1, 2])));
        assert_eq!(tuple.clone().into_list(), Err(tuple.clone()));
        assert_eq!(tuple.clone().into_map(), Err(tuple.clone()));

        assert_eq!(Term::list([1, 2]).into_list(), Ok(vec![Term::Int(1), Term::Int(2)]));
        assert_eq!(Term::list([1, 2]).as_list(), Some(&[Term::Int(1), Term::Int(2)][..]));
        assert_eq!(tuple.as_list(), None);
        let map = Term::map([(1, 2)]);
        let entries: BTreeMap<Term, Term> = [(Term::Int(1), Term::Int(2))].into_iter().collect();
        assert_eq!(map.as_map(), Some(&entries));
        assert_eq!(map.clone().into_map(), Ok(entries));
        assert_eq!(Term::Int(1).as_map(), None);
    }

    #[test]
    fn equal_terms_hash_equal() {
        use std::collections::hash_map::DefaultHasher;
        let h = |t: &Term| {
            let mut s = DefaultHasher::new();
            t.hash(&mut s);
            s.finish()
        };
        let a = Term::map([(Term::atom("x"), Term::list(["a", "b"]))]);
        let b = Term::map([(Term::atom("x"), Term::list(["a", "b"]))]);
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&Term::Int(1)), h(&Term::Float(1.0)));
    }
}
