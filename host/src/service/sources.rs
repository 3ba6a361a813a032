//! Events from [`Source`]s (a NATS consumer) in the service: offered into the same bounded
//! queue as input lines, taken up by the same workers, dispatched here (never forwarded),
//! and answered through the offer's `done`.

use std::sync::Arc;

use super::counts::Tallies;
use super::queue::Queue;
use super::{Busy, Intake, Offer, Refusal, Source};

/// A [`Source`], in a [`ServiceConfig`](super::ServiceConfig).
#[derive(Clone)]
pub struct SourceOf(pub Arc<dyn Source>);

impl std::fmt::Debug for SourceOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceOf(..)")
    }
}

/// The service's queue as a source's [`Intake`], with the service's counts of what was
/// refused at its door.
pub(super) struct QueueIntake {
    pub(super) queue: Arc<Queue>,
    pub(super) door: Arc<Tallies>,
}

impl Intake for QueueIntake {
    fn submit(&self, offer: Offer) -> Result<(), Box<(Busy, Offer)>> {
        self.queue.offer(offer)
    }

    fn refused(&self, event: &str, why: Refusal) {
        self.door.refused(event, why);
    }
}
