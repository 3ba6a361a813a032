//! Consuming: the events a manifest lists under `consume`, pulled through one durable
//! consumer per event and handed to a long-running host's dispatch workers.
//!
//! A delivery is acknowledged only after every callback finished; while callbacks run,
//! the server is told the host is still working (every third of `ack_wait_ms`), so a slow
//! callback is not delivered twice. A failed event is delivered again after a pause that
//! doubles each time; at `max_deliveries` it goes to the dead-letter subject with the
//! failures. A message that does not match its event's declaration (not a JSON object,
//! wrong arguments) goes there at once with the reason. Completed ids are remembered
//! ([`Completed`]), so an event whose acknowledgement was lost is acknowledged again
//! without running its callbacks; with the shared [`Ledger`] (the default), every host of
//! the consumer knows what the others claimed and completed, and a completed event is
//! acknowledged with a double ack (the server confirms it).

//!
//! The parts: [`pull`] pulls each event's messages, [`deliver`] handles one delivery, and
//! [`together`] answers the deliveries that arrived together at once.

mod deliver;
mod pull;
mod together;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, consumer::pull::Config as PullConfig};
use switchboard::manifest::NatsSettings;
use switchboard::service::{Crossing, Intake, Source, Traffic};
use tokio::sync::{watch, Semaphore};

use crate::completed::Completed;
use crate::ledger::Ledger;
use crate::{Connection, NatsError};

/// A durable pull consumer on the server.
type PullConsumer = jetstream::consumer::Consumer<PullConfig>;

/// Pulls the events a manifest consumes and hands them to a host's [`Intake`].
pub struct Consumer {
    connection: Arc<Connection>,
    /// The durable consumer of each consumed event, and how it was made (to make it
    /// again if it is deleted while the host runs).
    consumers: Vec<(String, PullConsumer, PullConfig)>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

/// What every message's handling reads.
struct Shared {
    settings: NatsSettings,
    jetstream: jetstream::Context,
    stream: String,
    completed: Completed,
    /// Where the completed ids are written, for messages.
    completed_path: std::path::PathBuf,
    /// Whether writing a completed id failed last time (said once, until it works again).
    cannot_record: AtomicBool,
    /// Ids being dispatched now: a second delivery of one waits its turn.
    in_progress: Mutex<HashSet<String>>,
    /// The ledger the hosts of the consumer share, unless `nats.ledger = false`.
    ledger: Option<Ledger>,
    /// With the ledger, the ids whose callbacks this host began (kept across restarts
    /// like the completed ids): a claim of its own found after a restart counts as an
    /// attempt only if the event was begun, not only queued.
    begun: Option<Completed>,
    traffic: Option<Arc<dyn Traffic>>,
    /// One permit per event being handled (`in_flight`).
    slots: Arc<Semaphore>,
}

impl Consumer {
    /// Creates (or opens) the durable consumer of every event the manifest consumes, and
    /// reads the completed ids kept under `state` (the manifest's `.switchboard` folder).
    pub fn on(
        connection: Arc<Connection>,
        state: &Path,
        traffic: Option<Arc<dyn Traffic>>,
    ) -> Result<Consumer, NatsError> {
        let settings = connection.settings.clone();
        let mut consumers = Vec::new();
        for event in &settings.consume {
            let event = event.as_str();
            let name = settings.consumer_of(event);
            let config = PullConfig {
                durable_name: Some(name.clone()),
                description: Some(format!("switchboard: `{event}` events")),
                filter_subject: settings.subject(event),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: settings.ack_wait,
                // The host bounds deliveries itself, so that the last one is dead-lettered
                // with its reason instead of dropped by the server.
                max_deliver: -1,
                max_ack_pending: i64::from(settings.in_flight),
                ..Default::default()
            };
            let consumer = connection
                .runtime
                .block_on(connection.stream.create_consumer(config.clone()))
                .map_err(|e| NatsError::Consumer {
                    consumer: name.clone(),
                    stream: settings.stream.clone(),
                    url: settings.url.clone(),
                    reason: e.to_string(),
                })?;
            consumers.push((event.to_owned(), consumer, config));
        }
        let path = state
            .join("nats")
            .join(format!("{}.completed", &settings.consumer));
        let completed = Completed::open(&path, settings.remember_completed as usize)?;
        let ledger = match settings.ledger_bucket.clone() {
            Some(bucket) => Some(connection.runtime.block_on(Ledger::open(
                &connection.jetstream,
                &settings,
                bucket,
                state,
            ))?),
            None => None,
        };
        let begun = match &ledger {
            Some(_) => Some(Completed::open(
                &state
                    .join("nats")
                    .join(format!("{}.begun", &settings.consumer)),
                settings.remember_completed as usize,
            )?),
            None => None,
        };
        let shared = Arc::new(Shared {
            jetstream: connection.jetstream.clone(),
            stream: settings.stream.clone(),
            completed,
            completed_path: path.clone(),
            cannot_record: AtomicBool::new(false),
            in_progress: Mutex::default(),
            ledger,
            begun,
            traffic,
            slots: Arc::new(Semaphore::new(settings.in_flight as usize)),
            settings,
        });
        Ok(Consumer {
            connection,
            consumers,
            shared,
            stop: watch::channel(false).0,
        })
    }

    /// The events it consumes.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.consumers.iter().map(|(event, ..)| event.as_str())
    }
}

impl Source for Consumer {
    fn start(&self, intake: Arc<dyn Intake>) -> Result<(), String> {
        for (event, consumer, config) in &self.consumers {
            let pulling = pull::pull_loop(
                Arc::clone(&self.shared),
                Arc::clone(&intake),
                event.clone(),
                pull::Durable {
                    consumer: consumer.clone(),
                    config: config.clone(),
                    stream: self.connection.stream.clone(),
                },
                self.stop.subscribe(),
            );
            self.connection.runtime.spawn(pulling);
        }
        tracing::info!(
            "consuming {} from NATS stream {} as `{}`",
            self.consumers
                .iter()
                .map(|(event, ..)| format!("`{event}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.shared.stream,
            &self.shared.settings.consumer,
        );
        match &self.shared.ledger {
            Some(ledger) => tracing::info!(
                "sharing the ledger {} with the other hosts of `{}`, as {}",
                ledger.bucket(),
                &self.shared.settings.consumer,
                ledger.host()
            ),
            None => tracing::info!(
                "no shared ledger (`nats.ledger = false`): completed events are known to this host only"
            ),
        }
        Ok(())
    }

    fn stop(&self, within: Duration) -> bool {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + within;
        let all = self.shared.settings.in_flight as usize;
        let finished = loop {
            if self.shared.slots.available_permits() == all {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The acknowledgements sent so far reach the server before the host exits.
        let client = self.connection.client.clone();
        let flushed = self
            .connection
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), client.flush()).await });
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("acknowledgements may not have reached NATS before the stop; those events will be delivered again and recognized by their ids");
        }
        if let Err(e) = self.shared.completed.sync() {
            tracing::warn!("cannot write the completed ids through to the disk: {e}");
        }
        finished
    }
}
impl Shared {
    fn count(&self, event: &str, how: Crossing) {
        if let Some(traffic) = &self.traffic {
            traffic.crossed(event, how);
        }
    }

    /// Remembers that `id` completed.
    fn remember(&self, id: &str) {
        let recorded = self.completed.record(id);
        // Said once while writing fails (a full disk would otherwise say it per event), and
        // once when it works again.
        match recorded {
            Err(e) if !self.cannot_record.swap(true, Ordering::AcqRel) => tracing::warn!(
                "cannot record completed events in {}: {e} (first for id {}); until it can, an event whose acknowledgement is lost runs again. Said once until writing works again",
                self.completed_path.display(),
                id.escape_debug()
            ),
            Ok(()) if self.cannot_record.swap(false, Ordering::AcqRel) => tracing::info!(
                "recording completed events in {} works again",
                self.completed_path.display()
            ),
            _ => {}
        }
    }

    /// Remembers that `id`'s callbacks begin now (on the dispatch worker, before them).
    fn record_begun(&self, id: &str) {
        if let Some(begun) = &self.begun {
            let recorded = begun.record(id);
            if let Err(e) = recorded {
                // The completed ids' file beside it says the same, once.
                tracing::debug!("cannot record that event {id} began: {e}");
            }
        }
    }

    fn was_begun(&self, id: &str) -> bool {
        self.begun.as_ref().is_some_and(|begun| begun.contains(id))
    }

    fn is_completed(&self, id: &str) -> bool {
        self.completed.contains(id)
    }

    /// Marks `id` as being dispatched; `false` if it already is.
    fn begin(&self, id: &str) -> bool {
        self.in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned())
    }

    fn end(&self, id: &str) {
        self.in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
