//! Plugins in worker processes (`isolation = "process"`): the same library, opened by the
//! `switchboard` binary in a hidden worker mode, called over a pipe. A crash, an abort, an
//! allocation past `memory_mb` or a call past `timeout_ms` costs that call (an outcome that
//! says `crashed` or `timed_out`) and a restart of the worker, never the host.
//!
//! Inside, from the top: `pool` runs one plugin's workers (restarts, time limits, fault
//! counts, quarantine), `process` is one worker seen from the host, `worker` is the
//! worker's own side, `protocol` the frames between them, `quarantine` the state kept
//! beside the manifest.

mod pool;
mod process;
mod protocol;
#[doc(hidden)]
pub mod quarantine;
mod worker;

use std::path::PathBuf;

pub(crate) use pool::ProcessPlugin;
pub(crate) use protocol::{CallRef, Names};
#[doc(hidden)]
pub use worker::serve;

/// How deep values nest in frames: the host's limit everywhere else
/// ([`MAX_VALUE_DEPTH`](crate::dispatch::MAX_VALUE_DEPTH), checked by a test).
pub(crate) const MAX_DEPTH: usize = 100;

/// The variable that names the `switchboard` binary to start workers with, for hosts
/// embedded in other programs (the `switchboard` command uses itself).
#[doc(hidden)]
pub const WORKER_VARIABLE: &str = "SWITCHBOARD_WORKER";

/// The program to start workers with: `$SWITCHBOARD_WORKER`, or this program when it is
/// the `switchboard` binary.
pub(crate) fn worker_command() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(WORKER_VARIABLE) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let is_switchboard = exe
        .file_stem()
        .is_some_and(|stem| stem.to_string_lossy() == "switchboard");
    if is_switchboard {
        Ok(exe)
    } else {
        Err(format!(
            "isolated plugins run in `switchboard` worker processes, and this program ({}) is not `switchboard`; set {WORKER_VARIABLE} to the switchboard binary's path",
            exe.display()
        ))
    }
}
