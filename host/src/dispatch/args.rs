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
    for (name, value) in named {
        let Some(index) = schema.position(name) else {
            return Err(EmitError::UnknownArg {
                event: event.name.clone(),
                arg: name.to_owned(),
                suggestion: did_you_mean(name, schema.names()),
                declared: declared_args(event),
            });
        };
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
