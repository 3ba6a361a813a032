//! An emit refused before any callback ran, and a control operation that got no answer.

use switchboard_plugin_api::Error as PluginError;

impl EmitError {
    /// A stable name for the kind of error, for scripts (`--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            EmitError::UnknownEvent { .. } => "emit.unknown_event",
            EmitError::MissingArg { .. } => "emit.missing_argument",
            EmitError::UnknownArg { .. } => "emit.unknown_argument",
            EmitError::DuplicateArg { .. } => "emit.duplicate_argument",
            EmitError::WrongType { .. } => "emit.wrong_type",
            EmitError::WrongArity { .. } => "emit.wrong_arity",
            EmitError::TooDeep { .. } => "emit.too_deep",
            EmitError::Stale { .. } => "emit.stale_handle",
            EmitError::ShutDown => "emit.shut_down",
        }
    }
}

/// An emit that was refused before any callback ran.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// No such event in the manifest.
    #[error("unknown event `{event}`{suggestion}; the manifest declares: {declared}")]
    UnknownEvent {
        /// The name given.
        event: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The declared event names, comma-separated.
        declared: String,
    },
    /// A required argument is missing.
    #[error("event `{event}` needs argument `{arg}` ({ty})")]
    MissingArg {
        /// The event.
        event: String,
        /// The argument.
        arg: String,
        /// Its declared type.
        ty: String,
    },
    /// An argument the event does not declare.
    #[error("event `{event}` has no argument `{arg}`{suggestion}; it takes: {declared}")]
    UnknownArg {
        /// The event.
        event: String,
        /// The argument given.
        arg: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The declared arguments.
        declared: String,
    },
    /// The same argument given twice: which one was meant is ambiguous.
    #[error("argument `{arg}` of event `{event}` is given twice; give it once")]
    DuplicateArg {
        /// The event.
        event: String,
        /// The argument.
        arg: String,
    },
    /// An argument of the wrong type.
    #[error("argument `{arg}` of event `{event}`: {reason}")]
    WrongType {
        /// The event.
        event: String,
        /// The argument.
        arg: String,
        /// Expected and found.
        reason: String,
    },
    /// Positional arguments whose count differs from the declaration.
    #[error("event `{event}` takes {expected} arguments, got {got}")]
    WrongArity {
        /// The event.
        event: String,
        /// Declared count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// A nested emit went past `host.max_depth`, usually a cycle between callbacks.
    #[error("nested emit deeper than max_depth = {max_depth}: {}; break the cycle or raise `host.max_depth`", chain_text(chain))]
    TooDeep {
        /// The events from the outermost emit to the refused one.
        chain: Vec<String>,
        /// The limit.
        max_depth: u32,
    },
    /// An event handle resolved on another generation (before a reload, or on another
    /// host): it could name another event now.
    #[error("this event handle was resolved on generation {resolved_on}, but the host runs generation {current}; resolve the event again by name")]
    Stale {
        /// The generation the handle came from.
        resolved_on: u64,
        /// The generation it was used on.
        current: u64,
    },
    /// The generation was shut down; its plugins take no more calls.
    #[error("the host is shut down; its plugins take no more events")]
    ShutDown,
}

/// Why a control operation (see [`Generation::control`](crate::Generation::control)) got no
/// answer from its plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No plugin of that name runs.
    #[error("no plugin named `{plugin}`{suggestion}; the manifest has: {known}")]
    UnknownPlugin {
        /// The name asked for.
        plugin: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The plugins there are.
        known: String,
    },
    /// The plugin is not running (its `init` failed under `on_load_error = "skip"`).
    #[error("plugin `{plugin}` is not running: {reason}")]
    Off {
        /// The plugin.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The plugin answered with an error; [`PluginError::is_unsupported`] tells an
    /// operation it does not know from one that failed.
    #[error("plugin `{plugin}`: {error}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// Its error.
        error: PluginError,
    },
    /// The generation was shut down.
    #[error("the host is shut down; its plugins take no more operations")]
    ShutDown,
}

/// A plugin's error that claims a kind only the host gives (skipped, crashed, timed out),
/// turned into a plain failure that says so: a plugin cannot pass its own failure off as
/// the host's finding.
pub(crate) fn as_plain_failure(error: &PluginError) -> PluginError {
    let plain = PluginError::new(format!(
        "{} (the plugin returned an error marked as {} by the host; counted as a failure)",
        error.message(),
        error.kind_name()
    ));
    match error.help() {
        Some(help) => plain.with_help(help),
        None => plain,
    }
}

/// `a -> b -> c`, or for a long chain its first and last three events around a count, so
/// that a message repeated at every level of a deep cycle stays short.
fn chain_text(chain: &[String]) -> String {
    if chain.len() <= 8 {
        return chain.join(" -> ");
    }
    format!(
        "{} -> ({} more) -> {}",
        chain[..3].join(" -> "),
        chain.len() - 6,
        chain[chain.len() - 3..].join(" -> ")
    )
}
