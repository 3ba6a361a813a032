//! `switchboard`: the plugin host, for **applications** that embed it and for the
//! `switchboard` command. Plugin authors depend on `switchboard-plugin-api` instead.
//!
//! - [`manifest`]: `events.toml`, parsed strictly and validated.
//! - [`loader`]: opening plugin libraries and checking their ABI.
//! - [`registry`]: events and their callbacks in dispatch order.
//! - [`Switchboard`] (in `runtime` and `dispatch`): a started host that emits events.
//!
//! ```no_run
//! use switchboard::Switchboard;
//! use switchboard_plugin_api::Value;
//!
//! let board = Switchboard::open("events.toml".as_ref())?;
//! let joined = board.event("user_joined")?;
//! let outcomes = board.emit(joined, &[Value::borrowed("Ann"), Value::borrowed("ann@example.com")])?;
//! for outcome in &outcomes {
//!     let callback = board.callback(outcome.callback);
//!     println!("{}.{}: {:?}", callback.plugin_name, callback.name, outcome.result);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
// Errors carry the names and paths a user needs; they are built only on the cold path, so
// their size is worth the plain, matchable variants.
#![allow(clippy::result_large_err)]

pub mod breaker;
pub mod builtin;
mod dispatch;
pub mod error;
mod host_api;
pub mod loader;
pub mod manifest;
mod outcome;
pub mod preflight;
pub mod registry;
mod runtime;
pub mod schema;
mod suggest;

pub use breaker::BreakerState;
pub use error::{EmitError, HostError, LoadError, ManifestError};
pub use manifest::Manifest;
pub use outcome::{CallOutcome, Iter as OutcomeIter, Outcomes};
pub use registry::{CallbackId, EventId};
pub use runtime::{ShutdownFailure, Switchboard};
pub use suggest::did_you_mean;
