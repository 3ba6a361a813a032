//! A plugin's log lines, through the host's logger under the plugin's name, wherever the
//! plugin runs (in this process or in a worker).

use switchboard_plugin_api::abi::level;

/// Logs `message` at the plugin's `level` under the plugin's manifest name.
pub(crate) fn log(plugin: &str, level: u8, message: &str) {
    match level {
        level::ERROR => tracing::error!(target: "plugin", plugin, "{message}"),
        level::WARN => tracing::warn!(target: "plugin", plugin, "{message}"),
        level::INFO => tracing::info!(target: "plugin", plugin, "{message}"),
        _ => tracing::debug!(target: "plugin", plugin, "{message}"),
    }
}
