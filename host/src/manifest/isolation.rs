//! Where a plugin runs: in the host's process, or in worker processes of its own with a
//! time limit per call, a memory limit, and a quarantine for libraries that keep crashing.

use serde::Deserialize;
use toml::Spanned;

/// Where a plugin's code runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Loaded into the host: native speed; a crash, an `abort()` or an endless loop in the
    /// plugin takes the host with it.
    #[default]
    InProcess,
    /// In worker processes (the `switchboard` binary in a hidden mode): a call costs a round
    /// trip through a pipe; a crash or a timeout costs that call and a restart of the worker.
    Process,
}

impl Isolation {
    /// As the manifest writes it.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::InProcess => "in_process",
            Isolation::Process => "process",
        }
    }
}

/// `[host] quarantine`: when a plugin whose workers keep crashing is switched off for good
/// (until its library changes or an operator clears it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QuarantineSettings {
    /// Crashes within the window that quarantine the plugin; 0 never does.
    #[serde(default = "default_crashes")]
    pub crashes: u32,
    /// The window, in seconds.
    #[serde(default = "default_window_s")]
    pub window_s: u64,
}

impl Default for QuarantineSettings {
    fn default() -> Self {
        QuarantineSettings {
            crashes: default_crashes(),
            window_s: default_window_s(),
        }
    }
}

fn default_crashes() -> u32 {
    3
}

fn default_window_s() -> u64 {
    300
}

/// The default time limit of a call to an isolated plugin, in milliseconds.
pub(crate) fn default_timeout_ms() -> u64 {
    10_000
}

/// The most worker processes one plugin may have.
pub const MAX_PROCESSES: u32 = 64;

/// The limits of one isolated plugin, with the host's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessLimits {
    /// How long one call may take before its worker is killed, in milliseconds.
    pub timeout_ms: u64,
    /// How many worker processes serve the plugin.
    pub processes: u32,
    /// The worker's address-space limit, in MiB, if any.
    pub memory_mb: Option<u64>,
}

/// Keeps `Spanned` in the entry's field types without naming it twice.
pub(super) type SpannedU64 = Spanned<u64>;
