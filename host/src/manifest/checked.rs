//! What validation hands the rest of the host: each plugin entry and each event as plain
//! values, every default applied and every path resolved against the manifest's folder.
//! The spans of the parsed form ([`Manifest`]) stay behind for the
//! messages that point at lines; nothing downstream reads `toml` types.

use std::path::PathBuf;

use serde_json::{Map, Value as Json};

use super::isolation::{Isolation, ProcessLimits};
use super::schema::Schema;
use super::{
    BreakerSettings, ErrorPolicy, EventDecl, LoadErrorPolicy, Manifest, PluginEntry, ResultPolicy,
};

/// One `[[plugins]]` entry, checked: what the host loads and how.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PluginSettings {
    /// The plugin's name in the manifest, unique.
    pub name: String,
    /// Where its library is: `path` resolved against the manifest's folder, or the
    /// platform's file name of `library` (or `name`) in the plugin folder.
    pub library: PathBuf,
    /// Whether `path` named the file (then it need not be in the plugin folder).
    pub explicit_path: bool,
    /// The library's expected SHA-256, lowercase, if pinned.
    pub sha256: Option<String>,
    /// The `config` table handed to the plugin's `init`, as JSON (TOML dates become
    /// strings); `None` without one.
    pub config: Option<Map<String, Json>>,
    /// Its circuit breaker: its own, or the host's.
    pub breaker: BreakerSettings,
    /// What its load failure does: its own policy, or the host's.
    pub on_load_error: LoadErrorPolicy,
    /// Whether its file may be writable by others: its own setting, or the host's.
    pub allow_writable: bool,
    /// Where it runs, if the entry says; `None` lets the library decide (a Go library runs
    /// in a worker process, anything else in-process).
    pub isolation: Option<Isolation>,
    /// Its worker limits, with the host's defaults, for when it runs isolated.
    pub limits: ProcessLimits,
}

impl PluginSettings {
    /// `entry` of `manifest`, with the manifest's defaults and its paths resolved.
    pub(super) fn of(entry: &PluginEntry, manifest: &Manifest) -> PluginSettings {
        let host = &manifest.host;
        PluginSettings {
            name: entry.name.get_ref().clone(),
            library: manifest.library_path(entry),
            explicit_path: entry.path.is_some(),
            sha256: entry
                .sha256
                .as_ref()
                .map(|s| s.get_ref().to_ascii_lowercase()),
            config: entry.config.as_ref().map(|table| {
                table
                    .iter()
                    .map(|(key, value)| (key.clone(), toml_to_json(value)))
                    .collect()
            }),
            breaker: entry.breaker.unwrap_or(host.breaker),
            on_load_error: entry.load_error_policy(host),
            allow_writable: entry.writable_allowed(host),
            isolation: entry.isolation,
            limits: entry.limits(host),
        }
    }
}

/// A TOML value as JSON: what a plugin's `init` is handed.
fn toml_to_json(value: &toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Json::Object(
            table
                .iter()
                .map(|(key, value)| (key.clone(), toml_to_json(value)))
                .collect(),
        ),
    }
}

/// One `[events.NAME]` table, checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeclaredEvent {
    /// Its name.
    pub name: String,
    /// What it means, shown by `switchboard list`.
    pub doc: String,
    /// Its arguments, parsed, in declaration order.
    pub schema: Schema,
    /// How its results are collected.
    pub result: ResultPolicy,
    /// What a failing callback does to the rest of its dispatch.
    pub on_error: ErrorPolicy,
}

impl DeclaredEvent {
    /// Event `name`, declared by `decl`, with its arguments parsed into `schema`.
    pub(super) fn of(name: &str, decl: &EventDecl, schema: Schema) -> DeclaredEvent {
        DeclaredEvent {
            name: name.to_owned(),
            doc: decl.doc.clone(),
            schema,
            result: decl.result,
            on_error: decl.on_error,
        }
    }
}
