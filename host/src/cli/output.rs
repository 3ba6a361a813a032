//! Rendering outcomes for people and for scripts.

use serde::Serialize;
use serde_json::Value as Json;
use switchboard::{Outcomes, Switchboard};
use switchboard_plugin_api::{Error as PluginError, Value};

/// One outcome per callback as JSON: `{"plugin", "callback", "value"}` or `{"plugin",
/// "callback", "error": {"message", "help", "panic"}}`.
pub fn outcomes_json(board: &Switchboard, outcomes: &Outcomes) -> Json {
    serde_json::to_value(OutcomesJson { board, outcomes }).unwrap_or(Json::Null)
}

/// The outcomes of one emit, serialized straight to JSON (`run` writes one line per
/// event, and building a `serde_json::Value` tree first cost it a third of its time).
pub struct OutcomesJson<'a> {
    /// Names the callbacks.
    pub board: &'a Switchboard,
    /// What they returned.
    pub outcomes: &'a Outcomes,
}

impl Serialize for OutcomesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Call<'a> {
            plugin: &'a str,
            callback: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            value: Option<&'a Value<'static>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<ErrorJson<'a>>,
        }
        serializer.collect_seq(self.outcomes.iter().map(|o| {
            let callback = self.board.callback(o.callback);
            Call {
                plugin: &callback.plugin_name,
                callback: &callback.name,
                value: o.result.ok(),
                error: o.result.err().map(ErrorJson),
            }
        }))
    }
}

/// A plugin error as JSON: `{"message", "help", "panic"}`.
struct ErrorJson<'a>(&'a PluginError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut error = serializer.serialize_struct("Error", 3)?;
        error.serialize_field("message", self.0.message())?;
        error.serialize_field("help", &self.0.help())?;
        error.serialize_field("panic", &self.0.is_panic())?;
        error.end()
    }
}

/// `1 plugin`, `3 plugins`: a count with its noun, for messages people read.
pub fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Aligned lines: `  plugin.callback  ok     value` / `  plugin.callback  error  message`.
pub fn outcomes_text(board: &Switchboard, event: &str, outcomes: &Outcomes) -> String {
    let mut text = format!("{event}: {} ran", count(outcomes.len() as u64, "callback"));
    let failed = outcomes.failures().count();
    if failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    text.push('\n');
    let names: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let c = board.callback(o.callback);
            format!("{}.{}", c.plugin_name, c.name)
        })
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    for (name, outcome) in names.iter().zip(outcomes) {
        match &outcome.result {
            Ok(value) => text.push_str(&format!("  {name:width$}  ok     {value}\n")),
            Err(error) => {
                let what = if error.is_panic() { "panic" } else { "error" };
                text.push_str(&format!("  {name:width$}  {what:5}  {}\n", error.message()));
                if let Some(help) = error.help() {
                    text.push_str(&format!("  {:width$}         help: {help}\n", ""));
                }
            }
        }
    }
    text
}
