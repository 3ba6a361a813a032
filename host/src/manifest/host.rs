//! The `[host]` table: where plugins are found, how deep emits nest, and the defaults
//! every plugin entry may override (breaker, load errors, isolation limits).

use std::path::PathBuf;

use serde::Deserialize;

use super::isolation::{self, QuarantineSettings};

/// The `[host]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HostSettings {
    /// Where plugin libraries are found, relative to the manifest's folder.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// How deep callbacks may nest `emit` calls before the innermost emit fails.
    #[serde(default = "default_max_depth")]
    pub max_depth: u32,
    /// The circuit breaker every plugin gets unless its entry sets its own.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// What a plugin that cannot be loaded or initialized does to the host, unless its
    /// entry says otherwise.
    #[serde(default)]
    pub on_load_error: LoadErrorPolicy,
    /// Load plugin files (and folders) that other users may write to. Off by default:
    /// anyone who can write the file can run code in the host.
    #[serde(default)]
    pub allow_writable: bool,
    /// The time limit of a call to an isolated plugin, in milliseconds, unless its entry
    /// sets its own.
    #[serde(default = "isolation::default_timeout_ms")]
    pub timeout_ms: u64,
    /// When an isolated plugin whose workers keep crashing is quarantined.
    #[serde(default)]
    pub quarantine: QuarantineSettings,
    /// How long a plugin's `init`, and its `shutdown`, may run before the host stops
    /// waiting for it, in milliseconds: an `init` past it fails the plugin's start (a reload
    /// then changes nothing), a `shutdown` past it is reported and the host goes on. A call
    /// that never returns keeps its thread until the process exits.
    #[serde(default = "default_setup_timeout_ms")]
    pub setup_timeout_ms: u64,
}

/// 30 seconds.
fn default_setup_timeout_ms() -> u64 {
    30_000
}

impl HostSettings {
    /// [`HostSettings::setup_timeout_ms`] as a duration (at least a millisecond).
    pub fn setup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.setup_timeout_ms.max(1))
    }
}

/// What a plugin that fails to load does to the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadErrorPolicy {
    /// Stop the host with the error.
    #[default]
    Fail,
    /// Say so on stderr and run without the plugin.
    Skip,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            plugin_dir: default_plugin_dir(),
            max_depth: default_max_depth(),
            breaker: BreakerSettings::default(),
            on_load_error: LoadErrorPolicy::default(),
            allow_writable: false,
            timeout_ms: isolation::default_timeout_ms(),
            quarantine: QuarantineSettings::default(),
            setup_timeout_ms: default_setup_timeout_ms(),
        }
    }
}

/// When a failing plugin is switched off, and for how long.
///
/// After `failures` failed calls within `window_ms`, the plugin's callbacks are skipped for
/// `cooldown_ms`; then one call is let through: a success switches the plugin back on, a
/// failure off again for another cool-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Failures within the window that switch the plugin off; 0 never does.
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    /// The window failures are counted in, in milliseconds.
    #[serde(default = "default_breaker_window_ms")]
    pub window_ms: u64,
    /// How long a switched-off plugin is skipped, in milliseconds.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: default_breaker_failures(),
            window_ms: default_breaker_window_ms(),
            cooldown_ms: default_breaker_cooldown_ms(),
        }
    }
}

fn default_breaker_failures() -> u32 {
    20
}
fn default_breaker_window_ms() -> u64 {
    10_000
}
fn default_breaker_cooldown_ms() -> u64 {
    30_000
}

fn default_plugin_dir() -> PathBuf {
    PathBuf::from(".")
}

/// The default nesting limit for `emit` inside callbacks.
pub const DEFAULT_MAX_DEPTH: u32 = 8;

/// The highest `max_depth` a manifest may set: nested emits use the stack, and every level
/// up to this one is tested to fit in a worker's (and the main thread's) stack.
pub const MAX_MAX_DEPTH: u32 = 100;

fn default_max_depth() -> u32 {
    DEFAULT_MAX_DEPTH
}
