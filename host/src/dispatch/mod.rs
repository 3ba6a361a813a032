//! Dispatch: a [`Generation`] owns everything an emit reads (the validated manifest, the
//! [`Registry`] of events and callbacks, and one slot per plugin with its instance,
//! breaker and counters); emitting runs every callback of an event in dispatch order.
//!
//! Inside the layer, `emit` runs the loop, `context` is the host handle a callback
//! receives (and calls back into `emit` for nested events), `generation` owns the slots.

mod args;
mod breaker;
mod context;
mod emit;
mod generation;
mod outcome;
mod registry;
mod stats;

pub use breaker::BreakerState;
pub use generation::{
    Generation, PluginMeta, PluginStatus, Prepared, ShutdownFailure, SkippedPlugin,
};
pub use outcome::{CallOutcome, Iter as OutcomeIter, Outcomes};
pub use registry::{Callback, CallbackId, Event, EventId, Registry};
pub use stats::{Counts, Tally};
