//! `switchboard`: the plugin host, for **applications** that embed it. The `switchboard`
//! command is built on it (package `switchboard-cli`); plugin authors depend on
//! `switchboard-plugin-api` instead.
//!
//! # Brief overview
//!
//! - A [`ValidManifest`] is `events.toml` parsed and validated ([`Manifest::load_valid`]).
//! - [`Prepared`] opens its plugin libraries and checks every registration, running no
//!   plugin code; [`Prepared::start`] runs the plugins' `init` and gives a [`Generation`]:
//!   everything an emit reads.
//! - A [`Switchboard`] is the running host: it holds the current generation behind an
//!   atomic swap, so that plugins can be replaced while events flow.
//! - [`Generation::emit`] dispatches an event to every callback in order and returns their
//!   [`Outcomes`]; [`Generation::emit_into`] does it without allocating.
//! - [`service::Service`] is the one event service every source feeds: requests an
//!   application (or `switchboard serve`, one per HTTP request) submits, the events of
//!   [`service::Source`]s (a NATS consumer), and the lines [`service::run_json_lines`]
//!   reads (`switchboard run`); one bounded queue, one pool of workers, one drain.
//!
//! ```no_run
//! use switchboard::Switchboard;
//! use switchboard_plugin_api::Value;
//!
//! let host = Switchboard::open("events.toml".as_ref())?;
//! let board = host.current();
//! let joined = board.event("user_joined")?;
//! let outcomes = board.emit(joined, &[Value::borrowed("Ann"), Value::borrowed("ann@example.com")])?;
//! for outcome in &outcomes {
//!     let callback = board.callback(outcome.callback);
//!     println!("{}.{}: {:?}", callback.plugin_name, callback.name, outcome.result);
//! }
//! host.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The layers, top-down (no module imports one above it): [`service`] → `runtime`
//! ([`Switchboard`]) → [`dispatch`] → [`load`] → [`manifest`], with [`error`] beneath all.
#![deny(missing_docs)]
// Errors carry the names and paths a user needs; they are built only on the cold path, so
// their size is worth the plain, matchable variants.
#![allow(clippy::result_large_err)]

pub mod dispatch;
pub mod error;
mod event_id;
pub mod isolate;
pub mod load;
pub mod manifest;
mod plugin_log;
mod runtime;
pub mod service;
mod suggest;

// Re-exports: consider semver.
pub use dispatch::{
    AppCallback, BreakerState, CallOutcome, CallbackId, Counts, EventId, Generation, Outcomes,
    Prepared, ShutdownFailure,
};
pub use error::{ControlError, EmitError, HostError, LoadError, ManifestError};
pub use manifest::{Manifest, ValidManifest};
pub use runtime::{CurrentGeneration, Reloaded, Switchboard};
