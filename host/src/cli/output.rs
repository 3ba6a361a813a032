//! Rendering outcomes for people and for scripts.

use serde_json::{json, Value as Json};
use switchboard::{Outcomes, Switchboard};
use switchboard_plugin_api::Error as PluginError;

/// One outcome per callback as JSON: `{"plugin", "callback", "value"}` or `{"plugin",
/// "callback", "error": {"message", "help", "panic"}}`.
pub fn outcomes_json(board: &Switchboard, outcomes: &Outcomes) -> Json {
    Json::Array(
        outcomes
            .iter()
            .map(|o| {
                let callback = board.callback(o.callback);
                match &o.result {
                    Ok(value) => json!({
                        "plugin": callback.plugin_name,
                        "callback": callback.name,
                        "value": value.to_json(),
                    }),
                    Err(error) => json!({
                        "plugin": callback.plugin_name,
                        "callback": callback.name,
                        "error": error_json(error),
                    }),
                }
            })
            .collect(),
    )
}

/// A plugin error as JSON.
pub fn error_json(error: &PluginError) -> Json {
    json!({
        "message": error.message(),
        "help": error.help(),
        "panic": error.is_panic(),
    })
}

/// Aligned lines: `  plugin.callback  ok     value` / `  plugin.callback  error  message`.
pub fn outcomes_text(board: &Switchboard, event: &str, outcomes: &Outcomes) -> String {
    let mut text = format!(
        "{event}: {} callback{} ran",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" }
    );
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
