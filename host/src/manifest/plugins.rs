//! One `[[plugins]]` entry, as parsed: validation checks it into
//! [`PluginSettings`](super::PluginSettings).

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::isolation::{self, Isolation};
use super::{BreakerSettings, HostSettings, LoadErrorPolicy};

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PluginEntry {
    /// The plugin's name in this manifest, unique. Also the library's name unless
    /// `library` or `path` says otherwise.
    pub name: Spanned<String>,
    /// The library's short name when it differs from `name`, for example to load one
    /// library twice with two configs. Resolves to `libLIBRARY.so`, `LIBRARY.dll` or
    /// `libLIBRARY.dylib` in `plugin_dir`.
    #[serde(default)]
    pub library: Option<Spanned<String>>,
    /// An explicit path to the library file, relative to the manifest's folder.
    #[serde(default)]
    pub path: Option<Spanned<PathBuf>>,
    /// The table handed to the plugin's `init`, deserialized into its config type.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// This plugin's circuit breaker, instead of `[host] breaker`.
    #[serde(default)]
    pub breaker: Option<BreakerSettings>,
    /// The library's expected SHA-256 (64 hex digits); a file that differs is refused
    /// before it is loaded. `switchboard check --pin` prints the current values.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// Overrides `[host] on_load_error` for this plugin.
    #[serde(default)]
    pub on_load_error: Option<LoadErrorPolicy>,
    /// Overrides `[host] allow_writable` for this plugin.
    #[serde(default)]
    pub allow_writable: Option<bool>,
    /// Where the plugin runs: `"in_process"` (the default) or `"process"` (worker
    /// processes that may crash or hang without taking the host down).
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// With `isolation = "process"`: how long one call may take, in milliseconds, before
    /// its worker is killed (default: `[host] timeout_ms`).
    #[serde(default)]
    pub timeout_ms: Option<isolation::SpannedU64>,
    /// With `isolation = "process"`: how many worker processes serve the plugin (default 1).
    #[serde(default)]
    pub processes: Option<Spanned<u32>>,
    /// With `isolation = "process"`: the worker's memory limit in MiB (its address space;
    /// an allocation past it aborts the worker, not the host).
    #[serde(default)]
    pub memory_mb: Option<isolation::SpannedU64>,
}

impl PluginEntry {
    /// What a load failure of this plugin does: its own policy, or the host's.
    pub fn load_error_policy(&self, host: &HostSettings) -> LoadErrorPolicy {
        self.on_load_error.unwrap_or(host.on_load_error)
    }

    /// Whether this plugin's file may be writable by others.
    pub fn writable_allowed(&self, host: &HostSettings) -> bool {
        self.allow_writable.unwrap_or(host.allow_writable)
    }

    /// The library's short name: `library`, or else `name`.
    pub fn library_name(&self) -> &str {
        self.library.as_ref().unwrap_or(&self.name).get_ref()
    }
}
