//! A plugin's log lines, through the host's logger under the plugin's name, wherever the
//! plugin runs (in this process or in a worker).

use switchboard_plugin_api::abi::level;

/// Logs `message` at the plugin's `level` under the plugin's manifest name, with the
/// generation it runs in when that is known (a line from inside a callback, or from a
/// handle the plugin kept).
pub(crate) fn log(plugin: &str, generation: Option<u64>, level: u8, message: &str) {
    match (level, generation) {
        (level::ERROR, Some(generation)) => {
            tracing::error!(target: "plugin", plugin, generation, "{message}")
        }
        (level::ERROR, None) => tracing::error!(target: "plugin", plugin, "{message}"),
        (level::WARN, Some(generation)) => {
            tracing::warn!(target: "plugin", plugin, generation, "{message}")
        }
        (level::WARN, None) => tracing::warn!(target: "plugin", plugin, "{message}"),
        (level::INFO, Some(generation)) => {
            tracing::info!(target: "plugin", plugin, generation, "{message}")
        }
        (level::INFO, None) => tracing::info!(target: "plugin", plugin, "{message}"),
        (_, Some(generation)) => {
            tracing::debug!(target: "plugin", plugin, generation, "{message}")
        }
        (_, None) => tracing::debug!(target: "plugin", plugin, "{message}"),
    }
}
