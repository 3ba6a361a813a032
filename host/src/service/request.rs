//! A request to the service: an event that travels with where its answer goes, as a job
//! travels with its reply in tower's `buffer`. `serve` submits one per HTTP request and
//! an embedding application may submit its own; the worker that takes it up dispatches
//! it (or forwards it) and answers through its [`Reply`], on the worker's thread, so that
//! the answer is made (an HTTP body serialized, say) where the outcomes are.

use serde_json::{Map, Value as Json};

use crate::dispatch::{Generation, Outcomes};
use crate::error::EmitError;

/// An event for the service's workers, with where its answer goes.
pub struct Request {
    /// The declared event.
    pub event: String,
    /// Its arguments, checked against the declaration by the worker.
    pub args: Map<String, Json>,
    /// The caller's id: the event id every callback sees, and the id a forwarded event
    /// travels under.
    pub id: String,
    /// Where the answer goes.
    pub reply: Box<dyn Reply>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("event", &self.event)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where a [`Request`]'s answer goes: called exactly once for every request the service
/// accepted, on a worker's thread (or on the thread that drains the service, for a
/// request the drain gave up on).
pub trait Reply: Send {
    /// What became of the request.
    fn answer(self: Box<Self>, answer: Answer<'_>);
}

/// Any `FnOnce(Answer)` is a [`Reply`].
impl<F: FnOnce(Answer<'_>) + Send> Reply for F {
    fn answer(self: Box<Self>, answer: Answer<'_>) {
        (*self)(answer)
    }
}

/// What became of a [`Request`]. Exhaustive on purpose: a reply says something for
/// every case.
pub enum Answer<'a> {
    /// Its callbacks ran on `generation`; `outcomes` are theirs, valid for this call only
    /// (serialize or copy what you keep).
    Dispatched {
        /// The request's event.
        event: &'a str,
        /// The request's id.
        id: &'a str,
        /// The generation that served it (it names the callbacks of `outcomes`).
        generation: &'a Generation,
        /// Every callback's outcome, in dispatch order.
        outcomes: &'a Outcomes,
    },
    /// The manifest publishes it: handed to the service's forward (NATS) instead, under
    /// `id`; what the other side answered, or why it failed.
    Forwarded {
        /// The request's event.
        event: &'a str,
        /// The id it travelled under.
        id: &'a str,
        /// What the forward answered (where it was stored), or why it failed.
        result: Result<Json, String>,
    },
    /// Refused before any callback ran (an undeclared event, arguments that do not match
    /// the declaration, a host that shut down).
    Refused {
        /// The request's event.
        event: &'a str,
        /// Why.
        error: EmitError,
    },
    /// The service stopped and its drain gave up on it.
    Abandoned(Abandoned),
}

impl std::fmt::Debug for Answer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Dispatched {
                event,
                id,
                outcomes,
                ..
            } => f
                .debug_struct("Dispatched")
                .field("event", event)
                .field("id", id)
                .field("outcomes", outcomes)
                .finish_non_exhaustive(),
            Answer::Forwarded { event, id, result } => f
                .debug_struct("Forwarded")
                .field("event", event)
                .field("id", id)
                .field("result", result)
                .finish(),
            Answer::Refused { event, error } => f
                .debug_struct("Refused")
                .field("event", event)
                .field("error", error)
                .finish(),
            Answer::Abandoned(why) => f.debug_tuple("Abandoned").field(why).finish(),
        }
    }
}

/// Hands `answer` to `reply`. A reply that panics (an application's own code) is logged
/// and the service goes on: the worker, and every other request, are not its to lose.
pub(super) fn deliver(reply: Box<dyn Reply>, answer: Answer<'_>) {
    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reply.answer(answer)));
    if let Err(panic) = delivered {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        tracing::error!(
            "a request's reply panicked ({message}); the service goes on (a Reply must not panic)"
        );
    }
}

/// Why a drain gave up on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Abandoned {
    /// It had not started: none of its callbacks ran. Sending it again is safe.
    NotStarted,
    /// Its callbacks were still running: they may have run in part, and their outcome is
    /// unknown (a callback that never returns needs `isolation = "process"`).
    StillRunning,
}
