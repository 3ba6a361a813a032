//! Event payload schemas: the declared argument types, and checking values against them.

use std::fmt;

use abi_stable::std_types::RString;
use switchboard_plugin_api::Value;

use crate::suggest::did_you_mean;

/// The kinds an argument can be declared with.
pub const KINDS: &[&str] = &[
    "string", "int", "float", "bool", "bytes", "list", "map", "any",
];

/// Per kind (by discriminant), the value kinds it accepts, as bits by
/// [`Value::kind_code`]: null 0, bool 1, int 2, float 3, string 4, bytes 5, list 6, map 7.
const ACCEPTED: [u16; 8] = [
    1 << 4,          // string
    1 << 2,          // int
    1 << 3 | 1 << 2, // float: ints widen
    1 << 1,          // bool
    1 << 5,          // bytes
    1 << 6,          // list
    1 << 7,          // map
    0xff,            // any, null included
];

/// One declared argument type, such as `string` or `int?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgType {
    /// The kind of value.
    pub kind: Kind,
    /// Whether the argument may be left out (it is then null).
    pub optional: bool,
}

/// The kind of value an argument holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// UTF-8 text.
    String,
    /// A 64-bit signed integer.
    Int,
    /// A float; ints are accepted and widened.
    Float,
    /// `true` or `false`.
    Bool,
    /// Raw bytes (a list of 0–255 numbers in JSON).
    Bytes,
    /// A list of any values.
    List,
    /// A map with string keys.
    Map,
    /// Anything, including null.
    Any,
}

impl ArgType {
    /// Parses a type as written in the manifest.
    pub fn parse(text: &str) -> Result<ArgType, String> {
        let (name, optional) = match text.strip_suffix('?') {
            Some(name) => (name, true),
            None => (text, false),
        };
        let kind = match name {
            "string" => Kind::String,
            "int" => Kind::Int,
            "float" => Kind::Float,
            "bool" => Kind::Bool,
            "bytes" => Kind::Bytes,
            "list" => Kind::List,
            "map" => Kind::Map,
            "any" => Kind::Any,
            _ => {
                return Err(format!(
                    "unknown type `{name}`{}; the types are {}, with `?` for optional",
                    did_you_mean(name, KINDS.iter().copied()),
                    KINDS.join(", ")
                ))
            }
        };
        Ok(ArgType { kind, optional })
    }

    /// Whether `value` fits this type. A bit test: every emit checks every argument.
    #[inline(always)]
    pub fn accepts(&self, value: &Value<'_>) -> bool {
        let mask = ACCEPTED[self.kind as usize] | u16::from(self.optional);
        (mask >> value.kind_code()) & 1 == 1
    }

    /// Converts a JSON value, widening ints to floats and number lists to bytes.
    pub fn from_json(&self, json: &serde_json::Value) -> Result<Value<'static>, String> {
        let value = match (self.kind, json) {
            (Kind::Float, serde_json::Value::Number(n)) => {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
            (Kind::Bytes, serde_json::Value::Array(items)) => {
                let bytes: Option<Vec<u8>> = items
                    .iter()
                    .map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect();
                Value::bytes(bytes.ok_or("expected bytes (a list of numbers 0 to 255)")?)
            }
            (Kind::Bytes, serde_json::Value::String(s)) => Value::bytes(s.as_bytes()),
            (Kind::Int, serde_json::Value::Number(n)) if n.as_i64().is_none() => {
                let whole = n.is_u64()
                    || n.as_f64()
                        .is_some_and(|f| f.is_finite() && f.fract() == 0.0);
                if whole {
                    return Err(out_of_range(&n.to_string()));
                }
                Value::from_json(json)
            }
            _ => Value::from_json(json),
        };
        if self.accepts(&value) {
            Ok(value)
        } else {
            Err(format!("expected {self}, got {}", describe(&value)))
        }
    }

    /// Converts text typed on a command line (`name=Ann`, `age=36`, `tags=["a"]`).
    pub fn from_text(&self, text: &str) -> Result<Value<'static>, String> {
        match self.kind {
            Kind::String => Ok(Value::from(text)),
            Kind::Bytes => Ok(Value::bytes(text.as_bytes())),
            Kind::Int => text.parse::<i64>().map(Value::from).map_err(|e| {
                use std::num::IntErrorKind::{NegOverflow, PosOverflow};
                match e.kind() {
                    PosOverflow | NegOverflow => out_of_range(text),
                    _ => format!("expected an int, got `{text}`"),
                }
            }),
            Kind::Float => text
                .parse::<f64>()
                .map(Value::from)
                .map_err(|_| format!("expected a float, got `{text}`")),
            Kind::Bool => match text {
                "true" => Ok(Value::from(true)),
                "false" => Ok(Value::from(false)),
                _ => Err(format!("expected `true` or `false`, got `{text}`")),
            },
            Kind::List | Kind::Map | Kind::Any => {
                let json: serde_json::Value = match serde_json::from_str(text) {
                    Ok(json) => json,
                    Err(_) if self.kind == Kind::Any => serde_json::Value::String(text.into()),
                    Err(e) => return Err(format!("expected JSON for a {}: {e}", self.kind)),
                };
                self.from_json(&json)
            }
        }
    }
}

/// The refusal of a whole number an `int` cannot hold.
fn out_of_range(number: &str) -> String {
    format!(
        "`{number}` is out of the 64-bit range of an int ({} to {}); send a smaller number, or declare the argument as a float or a string",
        i64::MIN,
        i64::MAX
    )
}

/// "a string", "an int", "null".
pub(crate) fn describe(value: &Value<'_>) -> String {
    match value.kind_name() {
        "null" => "null".to_owned(),
        kind @ "int" => format!("an {kind}"),
        kind => format!("a {kind}"),
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::String => "string",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::Bytes => "bytes",
            Kind::List => "list",
            Kind::Map => "map",
            Kind::Any => "any",
        })
    }
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind, if self.optional { "?" } else { "" })
    }
}

/// The checked schema of one event: argument names in declared order, and their types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// Argument names, stored as the boundary type so every emit borrows them as they are.
    pub names: Vec<RString>,
    /// The type of each argument.
    pub types: Vec<ArgType>,
}

impl Schema {
    /// The position of argument `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_str() == name)
    }

    /// The declared names, for "did you mean" hints.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.names.iter().map(RString::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_past_64_bits_are_out_of_range_not_floats() {
        let int = ArgType::parse("int").unwrap();
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
        ] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let from_json = int.from_json(&json).unwrap_err();
            assert!(from_json.contains("out of the 64-bit range"), "{from_json}");
            let from_text = int.from_text(text).unwrap_err();
            assert!(from_text.contains("out of the 64-bit range"), "{from_text}");
            assert!(from_text.contains(text), "{from_text}");
        }
        assert_eq!(
            int.from_text("9223372036854775807").unwrap(),
            Value::from(i64::MAX)
        );
        assert_eq!(
            int.from_json(&serde_json::json!(1.5)).unwrap_err(),
            "expected int, got a float"
        );
        assert_eq!(
            int.from_text("12x").unwrap_err(),
            "expected an int, got `12x`"
        );
    }

    #[test]
    fn parses_types_and_optional_marks() {
        assert_eq!(
            ArgType::parse("int?").unwrap(),
            ArgType {
                kind: Kind::Int,
                optional: true
            }
        );
        let err = ArgType::parse("strin").unwrap_err();
        assert!(err.contains("did you mean `string`"), "{err}");
    }

    #[test]
    fn checks_and_widens_values() {
        let float = ArgType::parse("float").unwrap();
        assert_eq!(
            float.from_json(&serde_json::json!(2)).unwrap().as_f64(),
            Some(2.0)
        );
        let int = ArgType::parse("int").unwrap();
        let err = int.from_json(&serde_json::json!("2")).unwrap_err();
        assert_eq!(err, "expected int, got a string");
        assert!(int.from_json(&serde_json::Value::Null).is_err());
        assert!(ArgType::parse("int?")
            .unwrap()
            .from_json(&serde_json::Value::Null)
            .is_ok());
        let bytes = ArgType::parse("bytes").unwrap();
        assert_eq!(
            bytes
                .from_json(&serde_json::json!([1, 2]))
                .unwrap()
                .as_bytes(),
            Some(&[1u8, 2][..])
        );
        assert!(bytes.from_json(&serde_json::json!([300])).is_err());
    }

    #[test]
    fn converts_command_line_text() {
        let int = ArgType::parse("int").unwrap();
        assert_eq!(int.from_text("36").unwrap().as_i64(), Some(36));
        assert!(int.from_text("x").unwrap_err().contains("expected an int"));
        let list = ArgType::parse("list").unwrap();
        assert_eq!(list.from_text("[1,2]").unwrap().as_list().unwrap().len(), 2);
        let any = ArgType::parse("any").unwrap();
        assert_eq!(any.from_text("plain").unwrap().as_str(), Some("plain"));
    }
}
