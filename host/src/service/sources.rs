//! Events from [`Source`]s (a NATS consumer) in the service: offered into the same bounded
//! queue as input lines, taken up by the same workers, dispatched here (never forwarded),
//! and answered through the offer's `done`.

use std::sync::Arc;

use super::queue::Queue;
use super::recent::Recent;
use super::{Busy, Handled, Intake, Offer, Source};
use crate::dispatch::{Generation, Outcomes};

/// A [`Source`], in a [`ServiceConfig`](super::ServiceConfig).
#[derive(Clone)]
pub struct SourceOf(pub Arc<dyn Source>);

impl std::fmt::Debug for SourceOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceOf(..)")
    }
}

/// The service's queue as a source's [`Intake`].
pub(super) struct QueueIntake(pub(super) Arc<Queue>);

impl Intake for QueueIntake {
    fn submit(&self, offer: Offer) -> Result<(), Box<(Busy, Offer)>> {
        self.0.offer(offer)
    }
}

/// Dispatches a source's event on `generation`: what became of it. Failures read
/// `plugin.callback (kind): message`, one per failed or skipped callback, and are kept
/// among the service's recent failures.
pub(super) fn take_in(
    generation: &Generation,
    offer: &mut Offer,
    outcomes: &mut Outcomes,
    recent: &Recent,
) -> Handled {
    outcomes.reset(0);
    outcomes.set_event_id(Some(&offer.id));
    if let Some(begun) = offer.begun.take() {
        begun();
    }
    if let Err(error) = generation.emit_json_into(&offer.event, &offer.args, outcomes) {
        return Handled::Refused(error.to_string());
    }
    generation.tell_observer(&offer.event, outcomes);
    if !outcomes.has_failures() {
        return Handled::Completed;
    }
    Handled::Failed(recent.record(generation, &offer.event, &offer.id, outcomes))
}
