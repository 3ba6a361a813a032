//! serde, straight from payload values: typed callback arguments and plugin configs are
//! read from the host's [`Value`]s without copying strings or passing through JSON.

use serde::de::value::{BorrowedStrDeserializer, Error as DeError, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde::Deserialize;

use crate::args::Args;
use crate::error::{Error, Result};
use crate::value::{Entry, Value, ValueView};

/// A [`Value`] as a serde deserializer; strings and bytes are lent, not copied.
pub(crate) struct ValueDe<'de>(pub(crate) &'de Value<'de>);

impl<'de> ValueDe<'de> {
    fn unexpected(&self) -> Unexpected<'de> {
        match self.0.view() {
            ValueView::Null => Unexpected::Unit,
            ValueView::Bool(b) => Unexpected::Bool(b),
            ValueView::Int(i) => Unexpected::Signed(i),
            ValueView::Float(f) => Unexpected::Float(f),
            ValueView::Str(s) => Unexpected::Str(s),
            ValueView::Bytes(b) => Unexpected::Bytes(b),
            ValueView::List(_) => Unexpected::Seq,
            ValueView::Map(_) => Unexpected::Map,
        }
    }
}

impl<'de> Deserializer<'de> for ValueDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.view() {
            ValueView::Null => visitor.visit_unit(),
            ValueView::Bool(b) => visitor.visit_bool(b),
            ValueView::Int(i) => visitor.visit_i64(i),
            ValueView::Float(f) => visitor.visit_f64(f),
            ValueView::Str(s) => visitor.visit_borrowed_str(s),
            ValueView::Bytes(b) => visitor.visit_borrowed_bytes(b),
            ValueView::List(items) => visitor.visit_seq(Items(items.iter())),
            ValueView::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    // The kinds typed arguments read most, inlined so that reading a `&str` field is a tag
    // check and a copy of two words.
    #[inline(always)]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.view() {
            ValueView::Str(s) => visitor.visit_borrowed_str(s),
            _ => self.deserialize_any(visitor),
        }
    }

    #[inline(always)]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    #[inline(always)]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.view() {
            ValueView::Int(i) => visitor.visit_i64(i),
            _ => self.deserialize_any(visitor),
        }
    }

    #[inline(always)]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.view() {
            ValueView::Float(f) => visitor.visit_f64(f),
            ValueView::Int(i) => visitor.visit_f64(i as f64),
            _ => self.deserialize_any(visitor),
        }
    }

    #[inline(always)]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.view() {
            ValueView::Bool(b) => visitor.visit_bool(b),
            _ => self.deserialize_any(visitor),
        }
    }

    #[inline(always)]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// Bytes read as a sequence are their numbers, so that a `Vec<u8>` field reads a
    /// `bytes` argument.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.view() {
            ValueView::Bytes(bytes) => visitor.visit_seq(serde::de::value::SeqDeserializer::new(
                bytes.iter().copied(),
            )),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0.view() {
            // A unit variant is its name; a variant with data is a one-entry map.
            ValueView::Str(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            ValueView::Map(entries) if entries.len() == 1 => MapAccessDeserializer::new(Entries {
                entries: entries.iter(),
                value: None,
            })
            .deserialize_enum(_name, _variants, visitor),
            _ => Err(de::Error::invalid_type(
                self.unexpected(),
                &"a string or a map with one entry",
            )),
        }
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 char
        bytes byte_buf unit unit_struct tuple tuple_struct map struct identifier
        ignored_any
    }
}

struct Items<'de>(std::slice::Iter<'de, Value<'de>>);

impl<'de> de::SeqAccess<'de> for Items<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|value| seed.deserialize(ValueDe(value)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'de> {
    entries: std::slice::Iter<'de, Entry<'de>>,
    value: Option<&'de Value<'de>>,
}

impl<'de> de::MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry.value());
        seed.deserialize(BorrowedStrDeserializer::new(entry.key()))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(ValueDe(value)),
            None => Err(de::Error::custom("a map value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

impl<'de> de::EnumAccess<'de> for Entries<'de> {
    type Error = DeError;
    type Variant = ValueDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        mut self,
        seed: V,
    ) -> Result<(V::Value, ValueDe<'de>), DeError> {
        let entry = self
            .entries
            .next()
            .ok_or_else(|| de::Error::custom("an enum needs a map with one entry"))?;
        let variant = seed.deserialize(BorrowedStrDeserializer::<DeError>::new(entry.key()))?;
        Ok((variant, ValueDe(entry.value())))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDe<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
}

/// An event's arguments as a serde deserializer: a map from argument name to value.
///
/// For a struct, only the fields it names are handed over, and a null (an optional
/// argument left out) is handed over as absent, so that `Option` fields are `None` and
/// `#[serde(default)]` fields take their default.
pub(crate) struct ArgsDe<'de>(pub(crate) &'de Args<'de>);

impl<'de> Deserializer<'de> for ArgsDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(Named {
            args: self.0,
            fields: None,
            next: 0,
            value: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(Named {
            args: self.0,
            fields: Some(fields),
            next: 0,
            value: None,
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

/// The arguments as map entries: every argument, or only a struct's fields.
struct Named<'de> {
    args: &'de Args<'de>,
    fields: Option<&'static [&'static str]>,
    next: usize,
    value: Option<&'de Value<'de>>,
}

impl<'de> de::MapAccess<'de> for Named<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        loop {
            let (key, value): (&'de str, Option<&'de Value<'de>>) = match self.fields {
                Some(fields) => {
                    let Some(&field) = fields.get(self.next) else {
                        return Ok(None);
                    };
                    (field, self.args.get(field))
                }
                None => {
                    let Some(pair) = self.args.pair(self.next) else {
                        return Ok(None);
                    };
                    (pair.0, Some(pair.1))
                }
            };
            self.next += 1;
            match value {
                Some(value) if !value.is_null() => {
                    self.value = Some(value);
                    return seed
                        .deserialize(BorrowedStrDeserializer::new(key))
                        .map(Some);
                }
                _ => continue,
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(ValueDe(value)),
            None => Err(de::Error::custom("an argument was read before its name")),
        }
    }
}

/// Values deserialize from any serde format; strings borrow from the input when it lends
/// them (as the host's arguments do).
impl<'de> de::Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::NULL)
    }

    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::NULL)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::from(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<'de>, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => Ok(Value::from(v as f64)),
        }
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(Value::from(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::from(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value<'de>, E> {
        Ok(Value::bytes(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::list(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((key, value)) = map.next_entry::<String, Value<'de>>()? {
            entries.push(Entry::new(key, value));
        }
        Ok(Value::map_from_entries(entries))
    }
}

/// Reading a value into a serde type: here beside the deserializer it uses, so that
/// `value` does not depend on this file.
impl<'a> Value<'a> {
    /// Deserializes into any serde type, for example a plugin's own record struct. Reads
    /// the value directly (no JSON in between); `&str` fields borrow from it.
    ///
    /// ```
    /// use switchboard_plugin_api::Value;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct User<'a> { name: &'a str, tags: Vec<String> }
    ///
    /// let value = Value::map([("name", Value::from("Ann")), ("tags", Value::from(vec!["ops"]))]);
    /// let user: User = value.deserialize()?;
    /// assert_eq!((user.name, user.tags.len()), ("Ann", 1));
    /// # Ok::<(), switchboard_plugin_api::Error>(())
    /// ```
    pub fn deserialize<'de, T: Deserialize<'de>>(&'de self) -> Result<T, Error> {
        T::deserialize(ValueDe(self.shorten())).map_err(|e| Error::new(e.to_string()))
    }
}

/// Reading arguments into a serde type: here beside the deserializer it uses, so that
/// `args` does not depend on this file.
impl<'a> Args<'a> {
    /// The arguments deserialized into a serde type whose fields are argument names,
    /// read directly (no JSON in between): `&str` fields borrow from the host's values.
    /// An optional argument left out is absent, so `Option` fields are `None` and
    /// `#[serde(default)]` fields take their default.
    pub fn parse<'s, T: Deserialize<'s>>(&'s self) -> Result<T> {
        T::deserialize(ArgsDe(self.shorten())).map_err(|e| self.unfit(e))
    }
}
