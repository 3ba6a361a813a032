//! Arguments of an emit: checked against the event's schema, converted from JSON or
//! `name=value` text, and put in declared order.

use switchboard_plugin_api::Value;

use super::registry::Event;
use crate::error::EmitError;
use crate::manifest::schema::describe;
use crate::suggest::did_you_mean;

impl Event {
    /// Converts a JSON object into positional arguments for this event.
    pub fn json_args(
        &self,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Value<'static>>, EmitError> {
        arrange(
            self,
            args.iter().map(|(name, json)| {
                let converted = match self.schema.position(name) {
                    Some(i) => self.schema.types[i].from_json(json),
                    None => Ok(Value::NULL),
                };
                (name.as_str(), converted)
            }),
        )
    }

    /// Converts `name=value` text pairs (as `switchboard emit` takes them) into positional
    /// arguments for this event, reading each value as its declared type.
    pub fn text_args<'t>(
        &self,
        args: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Result<Vec<Value<'static>>, EmitError> {
        arrange(
            self,
            args.into_iter().map(|(name, text)| {
                let converted = match self.schema.position(name) {
                    Some(i) => self.schema.types[i].from_text(text),
                    None => Ok(Value::NULL),
                };
                (name, converted)
            }),
        )
    }
}

#[inline]
pub(crate) fn check_positional(event: &Event, args: &[Value<'_>]) -> Result<(), EmitError> {
    let schema = &event.schema;
    if args.len() != schema.types.len() {
        return Err(EmitError::WrongArity {
            event: event.name.clone(),
            expected: schema.types.len(),
            got: args.len(),
        });
    }
    for (i, (ty, value)) in schema.types.iter().zip(args).enumerate() {
        if !ty.accepts(value) {
            return Err(type_error(event, i, value));
        }
    }
    Ok(())
}

fn type_error(event: &Event, index: usize, value: &Value<'_>) -> EmitError {
    let ty = event.schema.types[index];
    let arg = event.schema.names[index].to_string();
    if value.is_null() {
        EmitError::MissingArg {
            event: event.name.clone(),
            arg,
            ty: ty.to_string(),
        }
    } else {
        EmitError::WrongType {
            event: event.name.clone(),
            arg,
            reason: format!("expected {ty}, got {}", describe(value)),
        }
    }
}

/// Puts named arguments in declared order, with null for the ones left out, and checks
/// them.
pub(crate) fn arrange<'v, 'n>(
    event: &Event,
    named: impl Iterator<Item = (&'n str, Result<Value<'v>, String>)>,
) -> Result<Vec<Value<'v>>, EmitError> {
    let schema = &event.schema;
    let mut values = vec![Value::NULL; schema.types.len()];
    let mut given = vec![false; schema.types.len()];
    for (name, value) in named {
        let Some(index) = schema.position(name) else {
            return Err(EmitError::UnknownArg {
                event: event.name.clone(),
                arg: name.to_owned(),
                suggestion: did_you_mean(name, schema.names()),
                declared: declared_args(event),
            });
        };
        if std::mem::replace(&mut given[index], true) {
            return Err(EmitError::DuplicateArg {
                event: event.name.clone(),
                arg: name.to_owned(),
            });
        }
        values[index] = value.map_err(|reason| EmitError::WrongType {
            event: event.name.clone(),
            arg: name.to_owned(),
            reason,
        })?;
    }
    for (i, (ty, value)) in schema.types.iter().zip(&values).enumerate() {
        if !ty.accepts(value) {
            return Err(type_error(event, i, value));
        }
    }
    Ok(values)
}

/// `name (string), email (string)`, or `nothing`.
pub(crate) fn declared_args(event: &Event) -> String {
    if event.schema.names.is_empty() {
        return "no arguments".to_owned();
    }
    event
        .schema
        .names()
        .zip(&event.schema.types)
        .map(|(n, t)| format!("{n} ({t})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON value read with every object's keys checked for repeats: `{"name": "Ann",
/// "name": "Bob"}` is ambiguous, and plain serde_json would keep the last one silently.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictJson(pub serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(b.into())
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(StrictJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{key}` appears twice in one object; give it once"
                )));
            }
            let StrictJson(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}
