//! What a manifest's `[nats]` table asks of a long-running host (`run` and `serve` alike):
//! the events it publishes go to NATS instead of the plugins ([`Crossing::forward`]), and
//! the events it consumes come from NATS to them ([`Crossing::source`]), over one
//! connection.

use std::sync::Arc;

use switchboard::service::{Forward, Source, Traffic};
use switchboard::Switchboard;
use switchboard_nats::{Connection, Consumer, Forwarder, Publisher};

/// The NATS ends a host needs, if its manifest names any.
#[derive(Default)]
pub struct Crossing {
    /// Where the events the manifest publishes go.
    pub forward: Option<Arc<dyn Forward>>,
    /// Where the events the manifest consumes come from.
    pub source: Option<Arc<dyn Source>>,
}

impl Crossing {
    /// Connects when the manifest publishes or consumes anything, counting what crosses
    /// into `traffic` when given.
    pub fn open(host: &Switchboard, traffic: Option<Arc<dyn Traffic>>) -> anyhow::Result<Crossing> {
        let manifest = host.current().manifest().clone();
        let Some(nats) = manifest
            .nats()
            .filter(|n| !n.publish.is_empty() || !n.consume.is_empty())
        else {
            return Ok(Crossing::default());
        };
        let connection = Connection::open(nats)?;
        let mut crossing = Crossing::default();
        if !nats.publish.is_empty() {
            let mut forwarder = Forwarder::new(Publisher::on(Arc::clone(&connection)));
            if let Some(traffic) = &traffic {
                forwarder = forwarder.counting(Arc::clone(traffic));
            }
            crossing.forward = Some(Arc::new(forwarder));
        }
        if !nats.consume.is_empty() {
            let state = manifest.base_dir().join(".switchboard");
            let consumer = Consumer::on(connection, &state, traffic)?;
            crossing.source = Some(Arc::new(consumer));
        }
        Ok(crossing)
    }
}
