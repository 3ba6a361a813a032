//! One `[events.NAME]` table, as parsed: its arguments' types are checked into a
//! [`Schema`](super::schema::Schema) by validation.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// One `[events.NAME]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EventDecl {
    /// What the event means, shown by `switchboard list`.
    #[serde(default)]
    pub doc: String,
    /// The payload schema: argument name to type (`string`, `int`, `float`, `bool`,
    /// `bytes`, `list`, `map`, `any`; a trailing `?` makes it optional). Order matters:
    /// callbacks see arguments in this order.
    #[serde(default)]
    pub args: IndexMap<String, Spanned<String>>,
    /// How results are collected.
    #[serde(default)]
    pub result: ResultPolicy,
    /// What a failing callback does to the rest of the dispatch.
    #[serde(default)]
    pub on_error: ErrorPolicy,
}

/// How an event's results are collected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultPolicy {
    /// Run every callback and collect every result.
    #[default]
    All,
    /// Stop at the first callback that returns a non-null value.
    First,
}

/// What happens after a callback fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorPolicy {
    /// Record the failure and run the remaining callbacks.
    #[default]
    Continue,
    /// Record the failure and skip the remaining callbacks.
    Stop,
}

impl fmt::Display for ResultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResultPolicy::All => "all",
            ResultPolicy::First => "first",
        })
    }
}

/// Event names: lowercase ASCII letters, digits, `_`, and `.` between words
/// (`user_joined`, `plugin.failed`).
pub(super) fn check_event_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    {
        return Err("use lowercase letters, digits, `_` and `.`");
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err("`.` only goes between words");
    }
    Ok(())
}
