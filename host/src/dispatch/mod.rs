//! Dispatch: a [`Generation`] owns everything an emit reads (the validated manifest, the
//! [`Registry`] of events and callbacks, and one slot per plugin with its instance,
//! breaker and counters); emitting runs every callback of an event in dispatch order.
//!
//! Inside the layer, from the top: `emit` runs the loop (`isolated` the calls that go to
//! worker processes, one at a time or a batch of events together) and `lifecycle` starts
//! and stops plugins, both handing plugins the host handle of `context`, which reaches the
//! `generation` that owns the slots (a nested emit calls back into `emit` by method, not by
//! import). `prepared` opens and checks a manifest's plugins, before any of their code
//! runs, for `lifecycle` to start.

mod anchor;
mod application;
mod args;
mod bounded;
mod breaker;
mod context;
mod emit;
mod generation;
mod isolated;
mod lifecycle;
mod outcome;
mod prepared;
mod registry;
mod stats;
mod step;
mod typed;

pub use crate::event_id::made_up_id;
pub use application::{AppCallback, AppFn, DEFAULT_APPLICATION};
#[doc(hidden)]
pub use args::StrictJson;
pub use breaker::BreakerState;
#[doc(hidden)]
pub use emit::MAX_VALUE_DEPTH;
pub use generation::{
    Generation, Observer, PluginMeta, PluginStatus, ShutdownFailure, SkippedPlugin,
};
pub(crate) use isolated::JsonEmit;
pub use outcome::{CallOutcome, Iter as OutcomeIter, Outcomes};
pub(crate) use prepared::Carry;
pub use prepared::Prepared;
pub use registry::{Callback, CallbackId, Event, EventId, Registry};
pub use stats::{Counts, Tally};
