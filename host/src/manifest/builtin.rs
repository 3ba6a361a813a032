//! Built-in events: the host emits them, plugins may register for them, manifests do not
//! declare them.
//!
//! - `host.started` (no arguments): after every plugin's `init`.
//! - `host.stopping` (no arguments): before the first plugin's `shutdown`.
//! - `plugin.failed` (`plugin`, `callback`, `event`, `message`: string; `panic`: bool):
//!   after an event's dispatch, once for each callback that failed in it. A failure of a
//!   `plugin.failed` callback is logged, never reported through `plugin.failed` again.

use super::schema::{ArgType, Kind, Schema};

/// Emitted after every plugin's `init`.
pub const HOST_STARTED: &str = "host.started";
/// Emitted before the first plugin's `shutdown`.
pub const HOST_STOPPING: &str = "host.stopping";
/// Emitted once per failed callback, after the failing event's dispatch.
pub const PLUGIN_FAILED: &str = "plugin.failed";

/// Whether `name` is a built-in event.
pub fn is_builtin(name: &str) -> bool {
    [HOST_STARTED, HOST_STOPPING, PLUGIN_FAILED].contains(&name)
}

/// The built-in events' declarations: name, doc and schema.
pub(crate) fn declarations() -> Vec<(&'static str, &'static str, Schema)> {
    let string = ArgType {
        kind: Kind::String,
        optional: false,
    };
    let boolean = ArgType {
        kind: Kind::Bool,
        optional: false,
    };
    let failed = Schema {
        names: ["plugin", "callback", "event", "message", "panic"]
            .into_iter()
            .map(Into::into)
            .collect(),
        types: vec![string, string, string, string, boolean],
    };
    vec![
        (
            HOST_STARTED,
            "built in: every plugin is initialized",
            Schema::default(),
        ),
        (
            HOST_STOPPING,
            "built in: the host is about to shut plugins down",
            Schema::default(),
        ),
        (PLUGIN_FAILED, "built in: a callback failed", failed),
    ]
}
