//! The payload value that crosses the plugin boundary.
//!
//! [`Value`] is a JSON-like tree (null, bool, int, float, string, bytes, list, map) with a
//! stable layout. Strings, bytes and containers are either *borrowed* or *owned*: the host
//! builds one borrowed argument list per emit and every callback reads the same memory, so
//! dispatch copies nothing. A `Value<'static>` owns everything and can be returned or stored.

use std::fmt;

use abi_stable::std_types::{RCowSlice, RCowStr, RSlice, RStr, RString, RVec};
use abi_stable::StableAbi;
use serde::Serialize;

use crate::error::Error;

/// A payload value: an event argument, a callback result, or a plugin's config.
///
/// Build one with `From` (`Value::from("text")`, `Value::from(42)`), [`Value::borrowed`] for a
/// string that must not be copied, [`Value::list`], [`Value::map`], or
/// [`Value::from_serialize`] for any serde type. Read one with the `as_*` accessors,
/// [`Value::view`] for a `match`, or [`Value::deserialize`] into your own types.
///
/// ```
/// use switchboard_plugin_api::Value;
///
/// let user = Value::map([("name", Value::from("Ann")), ("age", Value::from(36))]);
/// assert_eq!(user.get("name").and_then(Value::as_str), Some("Ann"));
/// assert_eq!(user.to_json(), serde_json::json!({"name": "Ann", "age": 36}));
/// ```
#[repr(transparent)]
#[derive(StableAbi, Clone)]
pub struct Value<'a> {
    repr: Repr<'a>,
}

// Frozen: a new variant changes the layout that every compiled plugin was checked against.
// Richer data travels as maps and lists of these eight kinds.
#[doc(hidden)]
#[repr(C, u8)]
#[derive(StableAbi, Clone)]
pub enum Repr<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(RCowStr<'a>),
    Bytes(RCowSlice<'a, u8>),
    List(RCowSlice<'a, Value<'a>>),
    Map(RCowSlice<'a, Entry<'a>>),
}

/// One key and value of a map [`Value`], in insertion order.
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct Entry<'a> {
    key: RCowStr<'a>,
    value: Value<'a>,
}

impl<'a> Entry<'a> {
    /// Pairs a key with a value.
    pub fn new(key: impl Into<String>, value: Value<'a>) -> Self {
        Entry {
            key: RCowStr::Owned(RString::from(key.into())),
            value,
        }
    }

    /// Pairs a borrowed key with a value, without copying the key.
    pub fn borrowed(key: &'a str, value: Value<'a>) -> Self {
        Entry {
            key: RCowStr::Borrowed(RStr::from(key)),
            value,
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    /// The value.
    pub fn value(&self) -> &Value<'a> {
        &self.value
    }
}

/// A borrowed view of a [`Value`] for `match`ing on its kind.
#[derive(Debug, Clone, Copy)]
pub enum ValueView<'v, 'a> {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Str(&'v str),
    /// Raw bytes.
    Bytes(&'v [u8]),
    /// An ordered list.
    List(&'v [Value<'a>]),
    /// An ordered map with string keys.
    Map(&'v [Entry<'a>]),
}

impl<'a> Value<'a> {
    /// The null value. Callbacks that have nothing to return return this.
    pub const NULL: Value<'static> = Value { repr: Repr::Null };

    /// A string that borrows `text` instead of copying it.
    pub fn borrowed(text: &'a str) -> Self {
        Value {
            repr: Repr::Str(RCowStr::Borrowed(RStr::from(text))),
        }
    }

    /// A list of values.
    pub fn list(items: impl IntoIterator<Item = Value<'a>>) -> Self {
        Value {
            repr: Repr::List(RCowSlice::Owned(items.into_iter().collect())),
        }
    }

    /// A list that borrows its items instead of copying them.
    pub fn borrowed_list(items: &'a [Value<'a>]) -> Self {
        Value {
            repr: Repr::List(RCowSlice::Borrowed(RSlice::from_slice(items))),
        }
    }

    /// A map from `(key, value)` pairs, kept in the given order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value<'a>)>) -> Self {
        Value {
            repr: Repr::Map(RCowSlice::Owned(
                entries.into_iter().map(|(k, v)| Entry::new(k, v)).collect(),
            )),
        }
    }

    /// A map from ready-made entries.
    pub fn map_from_entries(entries: Vec<Entry<'a>>) -> Self {
        Value {
            repr: Repr::Map(RCowSlice::Owned(RVec::from(entries))),
        }
    }

    /// Raw bytes.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Value {
            repr: Repr::Bytes(RCowSlice::Owned(RVec::from(bytes.into()))),
        }
    }

    /// Converts any serde-serializable value (a struct, a map, a vector...).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Value<'static>, Error> {
        let json = serde_json::to_value(value)
            .map_err(|e| Error::new(format!("cannot convert the value to a payload: {e}")))?;
        Ok(Value::from_json(&json))
    }

    /// Converts a JSON value. Numbers that fit an `i64` become `Int`, others `Float`.
    pub fn from_json(json: &serde_json::Value) -> Value<'static> {
        use serde_json::Value as J;
        let repr = match json {
            J::Null => Repr::Null,
            J::Bool(b) => Repr::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Repr::Int(i),
                None => Repr::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Repr::Str(RCowStr::Owned(RString::from(s.as_str()))),
            J::Array(items) => Repr::List(RCowSlice::Owned(
                items.iter().map(Value::from_json).collect(),
            )),
            J::Object(map) => Repr::Map(RCowSlice::Owned(
                map.iter()
                    .map(|(k, v)| Entry::new(k.as_str(), Value::from_json(v)))
                    .collect(),
            )),
        };
        Value { repr }
    }

    /// Converts to JSON. Bytes become a list of numbers; a non-finite float becomes null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self.view() {
            ValueView::Null => J::Null,
            ValueView::Bool(b) => J::Bool(b),
            ValueView::Int(i) => J::from(i),
            ValueView::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            ValueView::Str(s) => J::String(s.to_owned()),
            ValueView::Bytes(b) => J::Array(b.iter().map(|&x| J::from(x)).collect()),
            ValueView::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            ValueView::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key().to_owned(), e.value().to_json()))
                    .collect(),
            ),
        }
    }

    /// The same value seen with a shorter lifetime (values are covariant).
    pub(crate) fn shorten<'s>(&'s self) -> &'s Value<'s> {
        self
    }

    /// A view for matching on the kind of value.
    pub fn view(&self) -> ValueView<'_, 'a> {
        match &self.repr {
            Repr::Null => ValueView::Null,
            Repr::Bool(b) => ValueView::Bool(*b),
            Repr::Int(i) => ValueView::Int(*i),
            Repr::Float(f) => ValueView::Float(*f),
            Repr::Str(s) => ValueView::Str(s.as_str()),
            Repr::Bytes(b) => ValueView::Bytes(b.as_slice()),
            Repr::List(items) => ValueView::List(items.as_slice()),
            Repr::Map(entries) => ValueView::Map(entries.as_slice()),
        }
    }

    /// Takes the owned children out of a list or map, leaving it empty, so that a value
    /// nested very deep can be dropped without recursion. The host does this with results
    /// it refuses; plugins have no need for it.
    #[doc(hidden)]
    pub fn take_children(&mut self) -> Vec<Value<'a>> {
        match &mut self.repr {
            Repr::List(RCowSlice::Owned(items)) => std::mem::take(items).into_iter().collect(),
            Repr::Map(RCowSlice::Owned(entries)) => std::mem::take(entries)
                .into_iter()
                .map(|entry| entry.value)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether lists and maps nest more than `levels` deep (a scalar is 0 levels, `[1]`
    /// is 1). Looks no deeper than `levels + 1`, so it is safe on any value.
    pub fn nests_deeper_than(&self, levels: usize) -> bool {
        match self.view() {
            ValueView::List(items) => {
                levels == 0 || items.iter().any(|v| v.nests_deeper_than(levels - 1))
            }
            ValueView::Map(entries) => {
                levels == 0
                    || entries
                        .iter()
                        .any(|e| e.value().nests_deeper_than(levels - 1))
            }
            _ => false,
        }
    }

    /// Copies whatever is borrowed, so the value no longer depends on `'a`.
    pub fn into_owned(self) -> Value<'static> {
        let repr = match self.repr {
            Repr::Null => Repr::Null,
            Repr::Bool(b) => Repr::Bool(b),
            Repr::Int(i) => Repr::Int(i),
            Repr::Float(f) => Repr::Float(f),
            Repr::Str(s) => Repr::Str(RCowStr::Owned(s.into_owned())),
            Repr::Bytes(b) => Repr::Bytes(RCowSlice::Owned(b.into_owned())),
            Repr::List(items) => Repr::List(RCowSlice::Owned(
                items.iter().cloned().map(Value::into_owned).collect(),
            )),
            Repr::Map(entries) => Repr::Map(RCowSlice::Owned(
                entries
                    .iter()
                    .map(|e| Entry::new(e.key(), e.value().clone().into_owned()))
                    .collect(),
            )),
        };
        Value { repr }
    }

    /// The name of this value's kind, as used in event schemas and error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.repr {
            Repr::Null => "null",
            Repr::Bool(_) => "bool",
            Repr::Int(_) => "int",
            Repr::Float(_) => "float",
            Repr::Str(_) => "string",
            Repr::Bytes(_) => "bytes",
            Repr::List(_) => "list",
            Repr::Map(_) => "map",
        }
    }

    /// The kind as a number, in the order of [`ValueView`]'s variants (null 0, bool 1,
    /// int 2, float 3, string 4, bytes 5, list 6, map 7): for hosts that check kinds with
    /// a bit mask.
    #[doc(hidden)]
    #[inline(always)]
    pub fn kind_code(&self) -> u8 {
        match self.repr {
            Repr::Null => 0,
            Repr::Bool(_) => 1,
            Repr::Int(_) => 2,
            Repr::Float(_) => 3,
            Repr::Str(_) => 4,
            Repr::Bytes(_) => 5,
            Repr::List(_) => 6,
            Repr::Map(_) => 7,
        }
    }

    /// Whether this is null.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self.repr, Repr::Null)
    }

    /// The text, if this is a string.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match &self.repr {
            Repr::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The integer, if this is an int.
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        match self.repr {
            Repr::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number as a float, if this is a float or an int.
    #[inline]
    pub fn as_f64(&self) -> Option<f64> {
        match self.repr {
            Repr::Float(f) => Some(f),
            Repr::Int(i) => Some(i as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a bool.
    #[inline]
    pub fn as_bool(&self) -> Option<bool> {
        match self.repr {
            Repr::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes, if this is bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Bytes(b) => Some(b.as_slice()),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.repr {
            Repr::List(items) => Some(items.as_slice()),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[Entry<'a>]> {
        match &self.repr {
            Repr::Map(entries) => Some(entries.as_slice()),
            _ => None,
        }
    }

    /// The value under `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_map()?
            .iter()
            .find(|e| e.key() == key)
            .map(Entry::value)
    }
}

impl Default for Value<'_> {
    fn default() -> Self {
        Value::NULL
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.view(), f)
    }
}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.key(), self.value)
    }
}

/// Prints the value as compact JSON.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_json(), f)
    }
}

impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.view(), other.view()) {
            (ValueView::Null, ValueView::Null) => true,
            (ValueView::Bool(a), ValueView::Bool(b)) => a == b,
            (ValueView::Int(a), ValueView::Int(b)) => a == b,
            (ValueView::Float(a), ValueView::Float(b)) => a == b,
            (ValueView::Str(a), ValueView::Str(b)) => a == b,
            (ValueView::Bytes(a), ValueView::Bytes(b)) => a == b,
            (ValueView::List(a), ValueView::List(b)) => a == b,
            (ValueView::Map(a), ValueView::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x.key() == y.key() && x.value() == y.value())
            }
            _ => false,
        }
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.view() {
            ValueView::Null => serializer.serialize_unit(),
            ValueView::Bool(b) => serializer.serialize_bool(b),
            ValueView::Int(i) => serializer.serialize_i64(i),
            ValueView::Float(x) => serializer.serialize_f64(x),
            ValueView::Str(s) => serializer.serialize_str(s),
            ValueView::Bytes(b) => serializer.serialize_bytes(b),
            ValueView::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            ValueView::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for e in entries {
                    map.serialize_entry(e.key(), e.value())?;
                }
                map.end()
            }
        }
    }
}

impl From<&str> for Value<'static> {
    fn from(s: &str) -> Self {
        Value {
            repr: Repr::Str(RCowStr::Owned(RString::from(s))),
        }
    }
}

impl From<String> for Value<'static> {
    fn from(s: String) -> Self {
        Value {
            repr: Repr::Str(RCowStr::Owned(RString::from(s))),
        }
    }
}

impl From<bool> for Value<'static> {
    fn from(b: bool) -> Self {
        Value {
            repr: Repr::Bool(b),
        }
    }
}

impl From<f64> for Value<'static> {
    fn from(f: f64) -> Self {
        Value {
            repr: Repr::Float(f),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value<'static> {
            fn from(i: $t) -> Self {
                Value { repr: Repr::Int(i64::from(i)) }
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

/// `()` is null, so a callback can return `Ok(())`.
impl From<()> for Value<'static> {
    fn from((): ()) -> Self {
        Value::NULL
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(option: Option<T>) -> Self {
        option.map_or(Value { repr: Repr::Null }, Into::into)
    }
}

impl<'a, T: Into<Value<'a>>> From<Vec<T>> for Value<'a> {
    fn from(items: Vec<T>) -> Self {
        Value::list(items.into_iter().map(Into::into))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_kinds_and_order() {
        let json = serde_json::json!({"b": 1, "a": [true, null, 2.5, "x"], "c": {"d": -3}});
        let value = Value::from_json(&json);
        assert_eq!(value.to_json(), json);
        let keys: Vec<_> = value.as_map().unwrap().iter().map(Entry::key).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(value.get("c").unwrap().get("d").unwrap().as_i64(), Some(-3));
    }

    #[test]
    fn borrowed_and_owned_strings_compare_equal() {
        let text = String::from("Ann");
        let borrowed = Value::borrowed(&text);
        let owned = borrowed.clone().into_owned();
        drop(borrowed);
        assert_eq!(owned, Value::from("Ann"));
        assert_ne!(owned, Value::from("Bob"));
    }

    #[test]
    fn deserializes_into_serde_types() {
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct User {
            name: String,
            age: u32,
        }
        let value = Value::map([("name", Value::from("Ann")), ("age", Value::from(36))]);
        assert_eq!(
            value.deserialize::<User>().unwrap(),
            User {
                name: "Ann".into(),
                age: 36
            }
        );
        let err = Value::from(3).deserialize::<User>().unwrap_err();
        assert!(err.message().contains("expected struct User"), "{err}");
    }

    #[test]
    fn kind_names_match_schema_names() {
        assert_eq!(Value::NULL.kind_name(), "null");
        assert_eq!(Value::bytes(vec![1u8]).kind_name(), "bytes");
        assert_eq!(Value::list([]).kind_name(), "list");
        assert_eq!(Value::from(1.5).kind_name(), "float");
    }
}
