//! Events across machines through NATS JetStream: the events a manifest lists under
//! `[nats] publish` are published to its stream, one subject per event
//! (`<subject_prefix>.<event>`), instead of being dispatched to this host's plugins.
//!
//! A publish succeeds only once the server has stored the message (its stream sequence is
//! in the answer). Every message carries a stable id (`Nats-Msg-Id`: the caller's id, or one
//! the host makes), so that a publish retried, or a run repeated with the same ids, is
//! stored once. While the server cannot be reached a publish waits and retries, for
//! `publish_timeout_ms` at most, then fails with the reason.
//!
//! The client (`async-nats`) runs on a one-thread tokio runtime of this crate's own;
//! callers stay synchronous.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::{json, Map, Value as Json};
use switchboard::manifest::NatsSettings;
use switchboard::service::Forward;

/// How long connecting may take at start.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// How long one attempt at a publish waits for the server's acknowledgement.
const ACK_WITHIN: Duration = Duration::from_secs(2);

/// Why NATS could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The server could not be reached at start.
    #[error("cannot reach NATS at {url}: {reason}; start nats-server (with JetStream: `nats-server -js`) or fix `nats.url`")]
    Connect {
        /// The server's address.
        url: String,
        /// Why.
        reason: String,
    },
    /// The stream could not be found or created.
    #[error("cannot create or open the JetStream stream `{stream}` on {url}: {reason}; is JetStream enabled (`nats-server -js`)?")]
    Stream {
        /// The stream.
        stream: String,
        /// The server's address.
        url: String,
        /// Why.
        reason: String,
    },
    /// A publish was not stored within its time bound.
    #[error("event `{event}` (id {id}) was not stored by NATS at {url} within {waited_ms} ms: {reason}; it may be published again with the same id, and will be stored once")]
    Publish {
        /// The event.
        event: String,
        /// The message id.
        id: String,
        /// The server's address.
        url: String,
        /// How long it tried.
        waited_ms: u128,
        /// The last reason.
        reason: String,
    },
    /// The runtime could not be started.
    #[error("cannot start the NATS client's thread: {0}")]
    Runtime(std::io::Error),
}

/// Where a message was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The stream.
    pub stream: String,
    /// Its sequence number in the stream.
    pub sequence: u64,
    /// Whether the stream had this id already (a retry or a repeated run): stored once.
    pub duplicate: bool,
}

/// Publishes events to the stream of a manifest's `[nats]` table.
pub struct Publisher {
    runtime: tokio::runtime::Runtime,
    jetstream: jetstream::Context,
    settings: NatsSettings,
}

impl Publisher {
    /// Connects to the server and makes sure the stream exists.
    pub fn connect(settings: &NatsSettings) -> Result<Publisher, NatsError> {
        // One thread of its own, so that the client keeps its connection (pings,
        // reconnects) between publishes.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-nats")
            .enable_all()
            .build()
            .map_err(NatsError::Runtime)?;
        let _inside = runtime.enter();
        let url = settings.url.get_ref().clone();
        let client = runtime
            .block_on(
                async_nats::ConnectOptions::new()
                    .connection_timeout(CONNECT_WITHIN)
                    .name("switchboard")
                    .connect(url.as_str()),
            )
            .map_err(|e| NatsError::Connect {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let jetstream = jetstream::new(client);
        let stream = settings.stream.get_ref().clone();
        let config = jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix.get_ref())],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        runtime
            .block_on(jetstream.get_or_create_stream(config))
            .map_err(|e| NatsError::Stream {
                stream,
                url,
                reason: e.to_string(),
            })?;
        Ok(Publisher {
            runtime,
            jetstream,
            settings: settings.clone(),
        })
    }

    /// Publishes `event` with its arguments under the message id `id`, and waits until
    /// the server has stored it (retrying with the same id while it cannot be reached).
    pub fn publish(
        &self,
        event: &str,
        args: &Map<String, Json>,
        id: &str,
    ) -> Result<Published, NatsError> {
        let subject = self.settings.subject(event);
        let payload = bytes_of(args);
        let bound = Duration::from_millis(*self.settings.publish_timeout_ms.get_ref());
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let attempt = self.runtime.block_on(async {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", id);
                let ack = self
                    .jetstream
                    .publish_with_headers(subject.clone(), headers, payload.clone().into())
                    .await
                    .map_err(|e| e.to_string())?;
                match tokio::time::timeout(ACK_WITHIN, ack).await {
                    Ok(Ok(ack)) => Ok(Published {
                        stream: ack.stream,
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    }),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no acknowledgement from the server".to_owned()),
                }
            });
            match attempt {
                Ok(published) => return Ok(published),
                Err(reason) if started.elapsed() + pause >= bound => {
                    return Err(NatsError::Publish {
                        event: event.to_owned(),
                        id: id.to_owned(),
                        url: self.settings.url.get_ref().clone(),
                        waited_ms: started.elapsed().as_millis(),
                        reason,
                    })
                }
                Err(reason) => {
                    tracing::debug!("publishing `{event}` (id {id}) again in {pause:?}: {reason}");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// A `Publisher` serves `run`'s (and `serve`'s) forwarded events; one at a time, since the
/// client's runtime is single-threaded and publishes are bounded by the server's acks.
pub struct Forwarder {
    /// Which events are published: read for every event, so kept outside the lock.
    settings: NatsSettings,
    publisher: std::sync::Mutex<Publisher>,
}

impl Forwarder {
    /// Forwards through `publisher`.
    pub fn new(publisher: Publisher) -> Forwarder {
        Forwarder {
            settings: publisher.settings.clone(),
            publisher: std::sync::Mutex::new(publisher),
        }
    }
}

impl Forward for Forwarder {
    fn forwards(&self, event: &str) -> bool {
        self.settings.publishes(event)
    }

    fn forward(&self, event: &str, args: &Map<String, Json>, id: &str) -> Result<Json, String> {
        let publisher = self.publisher.lock().unwrap_or_else(|e| e.into_inner());
        publisher
            .publish(event, args, id)
            .map(|p| json!({"stream": p.stream, "seq": p.sequence, "duplicate": p.duplicate}))
            .map_err(|e| e.to_string())
    }
}

/// The message body: the arguments as a JSON object.
fn bytes_of(args: &Map<String, Json>) -> Vec<u8> {
    serde_json::to_vec(args).unwrap_or_else(|_| b"{}".to_vec())
}
