//! How events cross between this host and others: [`Forward`] hands the events a manifest
//! publishes to another host (NATS) instead of this host's plugins; a [`Source`] (a NATS
//! consumer) brings events from elsewhere into a long-running host through its [`Intake`];
//! [`Traffic`] counts what crossed, for metrics.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};

/// Where events that are not dispatched here go instead (another host, through NATS, for
/// the events a manifest publishes). The service checks their arguments against the
/// manifest first; the result line says what `forward` answered.
pub trait Forward: Send + Sync {
    /// Whether `event` goes out instead of being dispatched here.
    fn forwards(&self, event: &str) -> bool;

    /// Hands the event on under the caller's `id` (stable across retries, so that the
    /// other side stores it once); what the result line says of it (its `published`
    /// field), or why it failed.
    fn forward(&self, event: &str, args: &Map<String, Json>, id: &str) -> Result<Json, String>;

    /// Hands several events on at once (a batch of `run`'s lines), each as [`forward`]
    /// would, one answer per event in order. The default forwards them one by one; a
    /// publisher overrides it to wait for all their acknowledgements together.
    ///
    /// [`forward`]: Forward::forward
    fn forward_all(
        &self,
        events: &[(&str, &Map<String, Json>, &str)],
    ) -> Vec<Result<Json, String>> {
        events
            .iter()
            .map(|&(event, args, id)| self.forward(event, args, id))
            .collect()
    }
}

/// An event on its way out instead of being dispatched here (through a [`Forward`]): its
/// arguments checked against its declaration, and the id it travels under. `emit`, `run`
/// and `serve` all make one here before they forward, so that the three check and name
/// an event alike.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outgoing<'a> {
    /// The declared event.
    pub event: &'a str,
    /// Its arguments, as given (checked).
    pub args: &'a Map<String, Json>,
    /// The caller's id, or [`made_up_id`] for the caller's `n`th event without one:
    /// stable across retries, so that the other side stores it once.
    pub id: String,
}

impl<'a> Outgoing<'a> {
    /// `args` checked against `decl` (the same checks as an emit), under the caller's
    /// `id`, or this process's `n`th made-up one.
    pub fn checked(
        decl: &'a crate::dispatch::Event,
        args: &'a Map<String, Json>,
        id: Option<&str>,
        n: u64,
    ) -> Result<Outgoing<'a>, crate::EmitError> {
        decl.json_args(args)?;
        let id = id.map_or_else(|| made_up_id(n), str::to_owned);
        Ok(Outgoing {
            event: decl.name.as_str(),
            args,
            id,
        })
    }

    /// The service's one choice between forwarding and dispatching here, for every job it
    /// takes (`run`'s lines, `serve`'s requests, an application's): `None` when `event`
    /// is dispatched here; otherwise the forward it goes out through, with the event on
    /// its way (its arguments checked and its id chosen as [`Outgoing::on`] does) or why
    /// it was refused.
    pub fn route<'f>(
        forward: Option<&'f dyn Forward>,
        generation: &'a crate::Generation,
        event: &str,
        args: &'a Map<String, Json>,
        id: Option<&str>,
        n: u64,
    ) -> Option<(&'f dyn Forward, Result<Outgoing<'a>, crate::EmitError>)> {
        let forward = forward.filter(|forward| forward.forwards(event))?;
        Some((forward, Outgoing::on(generation, event, args, id, n)))
    }

    /// As [`Outgoing::checked`], for `event` as `generation` declares it.
    pub fn on(
        generation: &'a crate::Generation,
        event: &str,
        args: &'a Map<String, Json>,
        id: Option<&str>,
        n: u64,
    ) -> Result<Outgoing<'a>, crate::EmitError> {
        let decl = generation.declared(event)?;
        Outgoing::checked(decl, args, id, n)
    }

    /// Hands it to `forward`: what the other side answered, or why it failed.
    pub fn send(&self, forward: &dyn Forward) -> Result<Json, String> {
        forward.forward(self.event, self.args, &self.id)
    }

    /// Hands several to `forward` at once (their acknowledgements awaited together).
    pub fn send_all(outgoing: &[Outgoing<'_>], forward: &dyn Forward) -> Vec<Result<Json, String>> {
        let events: Vec<(&str, &Map<String, Json>, &str)> = outgoing
            .iter()
            .map(|o| (o.event, o.args, o.id.as_str()))
            .collect();
        forward.forward_all(&events)
    }
}

pub use crate::dispatch::made_up_id;

/// A JSON id as text (a `run` line's `id`): a string as it is, any other value as its
/// JSON text.
pub(crate) fn id_text(id: &Json) -> std::borrow::Cow<'_, str> {
    match id {
        Json::String(id) => std::borrow::Cow::Borrowed(id),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

/// What became of an event handed to an [`Intake`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// Every callback ran and succeeded.
    Completed,
    /// A callback failed or was skipped: one line per failure, `plugin.callback (kind):
    /// message`.
    Failed(Vec<String>),
    /// The host refused it before any callback ran (its arguments do not match the
    /// declaration, or the event is not declared): why. Sending it again will not help.
    Refused(String),
}

/// Why an [`Intake`] did not take an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Busy {
    /// Its queue is full: offer it again shortly.
    Full,
    /// The host is stopping: it takes nothing more.
    Stopping,
}

/// Called once with what became of an event, on the thread that dispatched it.
pub type Done = Box<dyn FnOnce(Handled) + Send>;

/// What a [`Source`] is told, on the dispatch worker, as an event's callbacks begin.
pub type Begun = Box<dyn FnOnce() + Send>;

/// An event handed to an [`Intake`], with the sender's `id` (for logs and answers) and
/// what to call once every callback finished or the host refused it. An intake that does
/// not take it hands it back whole, so that it can be offered again without a copy.
pub struct Offer {
    /// The declared event.
    pub event: String,
    /// Its arguments.
    pub args: Map<String, Json>,
    /// The sender's id.
    pub id: String,
    /// Called once with what became of it.
    pub done: Done,
    /// Called on the dispatch worker just before the callbacks run (not when the event is
    /// refused before them, or dropped by a stop): a source that keeps records across
    /// restarts learns which events were begun, not only queued.
    pub begun: Option<Begun>,
}

/// Where a [`Source`] hands its events: a long-running host's dispatch workers (the event
/// service's, [`ServiceConfig::with_source`](super::ServiceConfig::with_source), or
/// `serve`'s), behind their bounded queue. Events taken here are dispatched to this host's
/// plugins, never forwarded.
pub trait Intake: Send + Sync {
    /// Queues `offer`; when it cannot now, why, with the offer handed back.
    fn submit(&self, offer: Offer) -> Result<(), Box<(Busy, Offer)>>;

    /// Counts an event of the declared `event` that the source refused before offering
    /// it (a message that is not a JSON object of arguments), so that the service's
    /// counts hold every event it was sent. Counts nothing unless implemented.
    fn refused(&self, event: &str, why: super::Refusal) {
        let _ = (event, why);
    }
}

/// Events from elsewhere (a NATS consumer) for a long-running host: started once its
/// dispatch workers run, stopped before they stop.
pub trait Source: Send + Sync {
    /// Starts handing events to `intake`; why it cannot, if so (the host does not start).
    fn start(&self, intake: Arc<dyn Intake>) -> Result<(), String>;

    /// Takes nothing more, and waits up to `within` for the events already handed over to
    /// finish (and be acknowledged where they came from); whether they all did.
    fn stop(&self, within: Duration) -> bool;
}

/// One message crossing to or from another host, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Crossing {
    /// Published, and stored by the broker.
    Published,
    /// Delivered to this host by the broker (each delivery, redeliveries included).
    Consumed,
    /// Delivered again: an earlier delivery failed, timed out, or was never acknowledged.
    Redelivered,
    /// Delivered again after this host had completed it (its acknowledgement was lost):
    /// found in this host's completed ids and not dispatched again.
    AlreadyCompletedInCache,
    /// Delivered after a host of the same consumer (this one or another) had completed
    /// it: found in the shared ledger and not dispatched again.
    AlreadyCompletedInLedger,
    /// Delivered while another host holds the ledger's claim on it (it began the event and
    /// has not finished it): handed back to wait for that host.
    ClaimedElsewhere,
    /// Completed here after it had been begun before (claimed in the ledger, by this host
    /// before a restart or by a host it took over from) or after another host completed
    /// it: its callbacks may have run more than once.
    RanAgain,
    /// The ledger could not be read or written; the event went on as if there were none.
    LedgerError,
    /// Given up on and sent to the dead-letter subject.
    DeadLettered,
}

impl Crossing {
    /// Every crossing, in the order metrics list them.
    pub const ALL: [Crossing; 9] = [
        Crossing::Published,
        Crossing::Consumed,
        Crossing::Redelivered,
        Crossing::AlreadyCompletedInCache,
        Crossing::AlreadyCompletedInLedger,
        Crossing::ClaimedElsewhere,
        Crossing::RanAgain,
        Crossing::LedgerError,
        Crossing::DeadLettered,
    ];

    /// Its name in metrics: `published`, `consumed`, `redelivered`,
    /// `already_completed_in_cache`, `already_completed_in_ledger`, `claimed_elsewhere`,
    /// `ran_again`, `ledger_error`, `dead_lettered`.
    pub fn name(self) -> &'static str {
        match self {
            Crossing::Published => "published",
            Crossing::Consumed => "consumed",
            Crossing::Redelivered => "redelivered",
            Crossing::AlreadyCompletedInCache => "already_completed_in_cache",
            Crossing::AlreadyCompletedInLedger => "already_completed_in_ledger",
            Crossing::ClaimedElsewhere => "claimed_elsewhere",
            Crossing::RanAgain => "ran_again",
            Crossing::LedgerError => "ledger_error",
            Crossing::DeadLettered => "dead_lettered",
        }
    }
}

/// Counts messages crossing to and from other hosts (`serve`'s metrics implement it).
pub trait Traffic: Send + Sync {
    /// One message of `event` crossed as `how`.
    fn crossed(&self, event: &str, how: Crossing);

    /// `n` messages of `event` crossed as `how` (a batch that arrived together). The
    /// default counts them one by one.
    fn crossed_many(&self, event: &str, how: Crossing, n: u64) {
        for _ in 0..n {
            self.crossed(event, how);
        }
    }
}
