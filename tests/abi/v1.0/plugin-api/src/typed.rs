//! Typed callback arguments: a struct deriving [`Args`](macro@crate::Args) whose fields are
//! read straight from the host's values, by position once the positions are known.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::abi::ArgDecl;
use crate::args::Args;
use crate::error::{Error, Result};
use crate::value::Value;

/// The arguments of a typed callback: a struct whose fields are argument names. Derive it
/// with `#[derive(Args)]`; do not implement it by hand.
///
/// ```
/// use switchboard_plugin_api::prelude::*;
///
/// #[derive(Args)]
/// struct Joined<'a> {
///     name: &'a str,             // borrowed from the host: no copy
///     email: &'a str,
///     referrer: Option<&'a str>, // an argument the event declares optional (`string?`)
///     #[serde(default)]
///     score: f64,                // absent or null: 0.0
///     #[serde(rename = "type")]
///     kind: String,              // the argument `type`
/// }
/// ```
///
/// A field may be of any type that implements serde's `Deserialize` (numbers, strings,
/// `Vec`, maps, your own structs, a [`Value`]); `#[serde(rename = "...")]` and
/// `#[serde(default)]` are understood. When the plugin loads, the host checks that the
/// event declares every field with a type it can read, so a typo is refused by
/// `switchboard check`, not found at the first event.
pub trait TypedArgs {
    /// The same struct borrowing for `'a`.
    type At<'a>;

    /// The argument names, in field order.
    #[doc(hidden)]
    const NAMES: &'static [&'static str];

    /// The arguments read, with their types, in field order.
    #[doc(hidden)]
    fn reads() -> Vec<ArgDecl>;

    /// Reads the struct from one call's arguments.
    #[doc(hidden)]
    fn read<'a>(args: ArgsAt<'a>) -> Result<Self::At<'a>>;
}

/// One call's arguments with each field's position resolved.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct ArgsAt<'a> {
    args: &'a Args<'a>,
    /// Per field, the position of its argument (`u32::MAX`: not passed); `None`: look each
    /// field up by name.
    positions: Option<&'a [u32]>,
}

impl<'a> ArgsAt<'a> {
    #[inline(always)]
    fn value(&self, index: usize, name: &str) -> Option<&'a Value<'a>> {
        match self.positions {
            Some(positions) => {
                let position = *positions.get(index)?;
                self.args.values().get(position as usize)
            }
            None => self.by_name(name),
        }
    }

    /// The slow way, for arguments whose positions are not known.
    #[cold]
    #[inline(never)]
    fn by_name(&self, name: &str) -> Option<&'a Value<'a>> {
        self.args.get(name)
    }

    /// Field `index`, called `name`: an argument that is absent reads as null (so an
    /// `Option` is `None`).
    #[inline(always)]
    pub fn field<T: Deserialize<'a>>(&self, index: usize, name: &str) -> Result<T> {
        let value = self.value(index, name).unwrap_or(&Value::NULL);
        T::deserialize(crate::de::ValueDe(value)).map_err(|e| self.unfit(name, value, e))
    }

    /// Field `index` with `#[serde(default)]`: absent or null reads as the default.
    #[inline(always)]
    pub fn field_or_default<T: Deserialize<'a> + Default>(
        &self,
        index: usize,
        name: &str,
    ) -> Result<T> {
        match self.value(index, name) {
            Some(value) if !value.is_null() => {
                T::deserialize(crate::de::ValueDe(value)).map_err(|e| self.unfit(name, value, e))
            }
            _ => Ok(T::default()),
        }
    }

    #[cold]
    #[inline(never)]
    fn unfit(&self, name: &str, value: &Value<'_>, error: impl std::fmt::Display) -> Error {
        let event = self.args.event();
        let problem = if value.is_null() {
            format!("event `{event}` has no argument `{name}`, or it is null")
        } else {
            format!("argument `{name}` of event `{event}` does not fit: {error}")
        };
        Error::new(problem).with_help(format!(
            "compare the callback's argument struct with [events.{event}] in the manifest"
        ))
    }
}

/// Where a typed callback's fields sit among its event's arguments, worked out at its
/// first call. A host passes the same argument names (the same memory) on every call of
/// an event for the life of a plugin instance, so the positions are found once.
#[derive(Default)]
#[doc(hidden)]
pub struct Binding {
    cache: OnceLock<Positions>,
}

struct Positions {
    /// The argument names the positions were found in: their address and length.
    names: (usize, usize),
    of_field: Box<[u32]>,
}

impl Binding {
    /// The arguments of one call, with the positions of `fields` when they are known.
    #[inline(always)]
    pub(crate) fn bind<'a>(&'a self, args: &'a Args<'a>, fields: &[&str]) -> ArgsAt<'a> {
        let names = args.names();
        let key = (names.as_ptr() as usize, names.len());
        let positions = match self.cache.get() {
            Some(found) if found.names == key => Some(&*found.of_field),
            Some(_) => None,
            None => self.first(key, names, fields),
        };
        ArgsAt { args, positions }
    }

    /// Finds the positions at the first call.
    #[cold]
    #[inline(never)]
    fn first<'a>(
        &'a self,
        key: (usize, usize),
        names: &[abi_stable::std_types::RString],
        fields: &[&str],
    ) -> Option<&'a [u32]> {
        let found = self.cache.get_or_init(|| Positions {
            names: key,
            of_field: fields
                .iter()
                .map(|field| {
                    names
                        .iter()
                        .position(|n| n.as_str() == *field)
                        .map_or(u32::MAX, |p| p as u32)
                })
                .collect(),
        });
        (found.names == key).then_some(&*found.of_field)
    }
}
