//! What a typed callback reads: the type of each field of its struct, found by
//! deserializing the field's type once from a recording deserializer at registration. The
//! host checks them against the manifest before the plugin runs.

use std::cell::RefCell;

use serde::de::value::Error as DeError;
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde::Deserialize;

use crate::abi::ArgDecl;

/// One field of a typed callback's arguments as the host reads it at load: its name, and
/// its type as a manifest writes it, `?` when the field accepts the argument being left
/// out (an `Option`, or a field with a default).
#[doc(hidden)]
pub fn field<T: Deserialize<'static>>(name: &str, has_default: bool) -> ArgDecl {
    let kind = RefCell::new(None);
    let optional = RefCell::new(false);
    let _ = T::deserialize(Probe {
        kind: &kind,
        optional: Some(&optional),
        depth: 0,
    });
    let kind = kind.into_inner().unwrap_or("any");
    let optional = has_default || optional.into_inner();
    let kind = if optional && kind != "any" {
        format!("{kind}?")
    } else {
        kind.to_owned()
    };
    ArgDecl {
        name: name.into(),
        kind: kind.into(),
    }
}

/// Records the kind a field is read as and answers with a plausible value of it.
struct Probe<'r> {
    kind: &'r RefCell<Option<&'static str>>,
    /// Set when the field is an `Option` (the outermost field only).
    optional: Option<&'r RefCell<bool>>,
    depth: u32,
}

impl Probe<'_> {
    fn set(&self, kind: &'static str) {
        let mut slot = self.kind.borrow_mut();
        if slot.is_none() {
            *slot = Some(kind);
        }
    }
}

/// Deep enough for any struct a callback reads, and a bound for recursive types.
const MAX_PROBE_DEPTH: u32 = 16;

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("any");
        visitor.visit_unit()
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("bool");
        visitor.visit_bool(false)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("int");
        visitor.visit_i64(0)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("float");
        visitor.visit_f64(0.0)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("string");
        visitor.visit_borrowed_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("string");
        visitor.visit_char('a')
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("bytes");
        visitor.visit_borrowed_bytes(&[])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Some(optional) = self.optional {
            *optional.borrow_mut() = true;
        }
        visitor.visit_some(Probe {
            optional: None,
            ..self
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("list");
        visitor.visit_seq(de::value::SeqDeserializer::<_, DeError>::new(
            std::iter::empty::<()>(),
        ))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.set("map");
        visitor.visit_map(de::value::MapDeserializer::<_, DeError>::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.set("map");
        if self.depth >= MAX_PROBE_DEPTH {
            return Err(de::Error::custom("nested too deep to trace"));
        }
        visitor.visit_map(NestedFields {
            fields,
            next: 0,
            depth: self.depth + 1,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.set("any");
        let first = variants.first().copied().unwrap_or_default();
        visitor.visit_enum(de::value::BorrowedStrDeserializer::new(first))
    }

    forward_to_deserialize_any! {
        i128 u128 unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

/// The fields of a struct nested in an argument: traced only so that the outer struct
/// finishes; their kinds are not recorded.
struct NestedFields {
    fields: &'static [&'static str],
    next: usize,
    depth: u32,
}

impl<'de> de::MapAccess<'de> for NestedFields {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.fields.get(self.next) {
            Some(&field) => seed
                .deserialize(de::value::BorrowedStrDeserializer::new(field))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.next += 1;
        let kind = RefCell::new(None);
        seed.deserialize(Probe {
            kind: &kind,
            optional: None,
            depth: self.depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind<T: Deserialize<'static>>(has_default: bool) -> String {
        field::<T>("x", has_default).kind.into_string()
    }

    #[test]
    fn records_types_and_optionality() {
        #[allow(dead_code)]
        #[derive(Deserialize)]
        struct Inner {
            a: i64,
        }
        assert_eq!(kind::<&str>(false), "string");
        assert_eq!(kind::<String>(false), "string");
        assert_eq!(kind::<Option<u32>>(false), "int?");
        assert_eq!(kind::<f64>(true), "float?");
        assert_eq!(kind::<bool>(false), "bool");
        assert_eq!(kind::<Vec<String>>(false), "list");
        assert_eq!(kind::<std::collections::HashMap<String, i64>>(false), "map");
        assert_eq!(kind::<Inner>(false), "map");
        assert_eq!(kind::<Option<Vec<Option<i64>>>>(false), "list?");
        assert_eq!(kind::<crate::Value<'static>>(false), "any");
    }
}
