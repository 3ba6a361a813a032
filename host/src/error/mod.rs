//! Typed errors of the host library. Each names the file, plugin, event or callback
//! involved and says what to do: the manifest's (`manifest`), a plugin's load and
//! start (`load`), and an emit's or a control operation's (`emit`).

pub(crate) use emit::as_plain_failure;
pub use emit::{ControlError, EmitError};
pub use load::LoadError;
pub use manifest::{ManifestError, Problem};

mod emit;
mod load;
mod manifest;

/// What a plugin hears when it asks for the event id (`event_id`) outside a callback, in
/// process or in a worker.
pub(crate) const NO_EVENT_OUTSIDE_A_CALLBACK: &str =
    "there is no event outside a callback: `event_id` names the event a callback runs for";

/// Anything that stops a [`Switchboard`](crate::Switchboard) from starting or reloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The manifest could not be read, parsed or validated.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A plugin could not be loaded or initialized.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A reload came after the host began shutting down: nothing changed.
    #[error("the host is shutting down; nothing was reloaded")]
    ShuttingDown,
}

impl HostError {
    /// A stable name for the kind of error, for scripts (`--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Manifest(e) => e.kind(),
            HostError::Load(e) => e.kind(),
            HostError::ShuttingDown => "host.shutting_down",
        }
    }
}
