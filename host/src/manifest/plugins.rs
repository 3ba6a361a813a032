//! One `[[plugins]]` entry, as parsed, with its settings resolved against the `[host]`
//! table and its isolation keys checked; validation checks the rest into
//! [`PluginSettings`](super::PluginSettings).

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::isolation::{self, Isolation, ProcessLimits, MAX_PROCESSES};
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

    /// Where this plugin runs.
    pub fn isolation(&self) -> Isolation {
        self.isolation.unwrap_or_default()
    }

    /// This plugin's worker limits (for an isolated plugin).
    pub fn limits(&self, host: &HostSettings) -> ProcessLimits {
        ProcessLimits {
            timeout_ms: self
                .timeout_ms
                .as_ref()
                .map_or(host.timeout_ms, |t| *t.get_ref()),
            processes: self.processes.as_ref().map_or(1, |p| *p.get_ref()),
            memory_mb: self.memory_mb.as_ref().map(|m| *m.get_ref()),
        }
    }
}

/// The problems of one entry's isolation settings, with where they are.
pub(super) fn isolation_problems(entry: &PluginEntry) -> Vec<(std::ops::Range<usize>, String)> {
    let name = entry.name.get_ref();
    let mut found = Vec::new();
    if entry.isolation() == Isolation::InProcess {
        let in_process = |key: &str, span: std::ops::Range<usize>, why: &str| {
            (
                span,
                format!("plugin `{name}` sets `{key}`, but it runs in the host's process, where {why}; add `isolation = \"process\"` to run it in worker processes, or remove `{key}`"),
            )
        };
        if let Some(t) = &entry.timeout_ms {
            found.push(in_process(
                "timeout_ms",
                t.span(),
                "a call cannot be stopped (a thread cannot be killed)",
            ));
        }
        if let Some(p) = &entry.processes {
            found.push(in_process(
                "processes",
                p.span(),
                "there are no worker processes",
            ));
        }
        if let Some(m) = &entry.memory_mb {
            found.push(in_process(
                "memory_mb",
                m.span(),
                "its memory is the host's",
            ));
        }
    }
    if let Some(t) = &entry.timeout_ms {
        if *t.get_ref() == 0 {
            found.push((
                t.span(),
                format!("`timeout_ms` of plugin `{name}` must be at least 1"),
            ));
        }
    }
    if let Some(p) = &entry.processes {
        if *p.get_ref() == 0 || *p.get_ref() > MAX_PROCESSES {
            found.push((
                p.span(),
                format!("`processes` of plugin `{name}` must be from 1 to {MAX_PROCESSES}"),
            ));
        }
    }
    if let Some(m) = &entry.memory_mb {
        if *m.get_ref() < 16 {
            found.push((
                m.span(),
                format!("`memory_mb` of plugin `{name}` must be at least 16: the worker itself needs a few MiB"),
            ));
        }
    }
    found
}
