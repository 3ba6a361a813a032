//! One step of the emit loop: what the loop (in-process, `emit`) and the calls that go to
//! worker processes (`isolated`) both hand a callback's call, and what a skipped call
//! answers.

use abi_stable::std_types::RResult;
use switchboard_plugin_api::{Error as PluginError, Value};

use super::breaker::Breaker;
use super::generation::Target;
use super::outcome::Outcomes;
use super::registry::{Callback, Event};

/// What the loop hands the steps of one callback: where its result goes.
pub(super) struct Step<'s, 'o> {
    pub(super) event: &'s Event,
    pub(super) target: &'s Target,
    pub(super) slot: &'s mut RResult<Value<'static>, PluginError>,
    pub(super) any_failed: &'s mut bool,
    pub(super) out: &'o mut Outcomes,
}

/// The outcome of a callback skipped because its plugin is switched off.
pub(super) fn skipped(breaker: &Breaker, callback: &Callback, retry_in_ms: u64) -> PluginError {
    let settings = breaker.settings();
    PluginError::skipped(format!(
        "plugin `{}` is switched off after {} failures in {} ms; retrying in {retry_in_ms} ms",
        callback.plugin_name, settings.failures, settings.window_ms
    ))
    .with_help("see the plugin's earlier errors; the breaker is set by `breaker` in the manifest")
}
