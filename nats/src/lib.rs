//! Events across machines through NATS JetStream, as a manifest's `[nats]` table says.
//!
//! - **Publishing** ([`Publisher`], [`Forwarder`]): the events listed under `publish` go to
//!   the stream, one subject per event (`<subject_prefix>.<event>`), instead of this host's
//!   plugins. A publish succeeds only once the server has stored the message (its stream
//!   sequence is in the answer). Every message carries a stable id (`Nats-Msg-Id`: the
//!   caller's id, or one the host makes), so that a publish retried, or a run repeated with
//!   the same ids, is stored once. While the server cannot be reached a publish waits and
//!   retries, for `publish_timeout_ms` at most, then fails with the reason.
//! - **Consuming** ([`Consumer`], a [`Source`](switchboard::service::Source) of the host's
//!   event service: under `run`, `serve`, or an application that embeds the library):
//!   the events listed under `consume` are pulled through a durable consumer, checked
//!   against their declaration, dispatched to this host's plugins and acknowledged once
//!   every callback finished. Failures are delivered again (a bounded number of times),
//!   then sent to the dead-letter subject with the reason; completed ids are remembered
//!   across restarts, so that an event whose acknowledgement was lost is not run twice.
//! - **The ledger** (on unless `ledger = false`): the hosts of one consumer share a
//!   key-value bucket of the events each claimed and completed, so an event completed on
//!   one host is not run on another, and one a host began and did not finish waits for
//!   that host to come back and finish it.
//!
//! The client (`async-nats`) runs on a one-thread tokio runtime of this crate's own;
//! callers and dispatch stay synchronous.

mod completed;
mod consume;
mod ledger;
mod publish;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use switchboard::manifest::NatsSettings;

pub use consume::Consumer;
pub use publish::{Forwarder, Published, Publisher};

/// How long connecting may take at start.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// How long the stream keeps a message id, so that the same id published again within it
/// is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long a host whose stream creation lost a race waits before it looks again for the
/// stream the winner made.
const CREATE_RACE_SETTLE: Duration = Duration::from_millis(100);

/// The stream `config` names, created when missing. Hosts that start together (a publisher
/// and a consumer, two consumers) can all find it missing and all create it; nats-server
/// refuses every create but the first ("subjects overlap with an existing stream"), so a
/// failed create looks again for the stream another host made before it gives up with the
/// create's own error.
pub(crate) async fn open_or_create_stream(
    jetstream: &jetstream::Context,
    config: jetstream::stream::Config,
) -> Result<jetstream::stream::Stream, String> {
    let name = config.name.clone();
    match jetstream.get_or_create_stream(config).await {
        Ok(stream) => Ok(stream),
        Err(created) => {
            tokio::time::sleep(CREATE_RACE_SETTLE).await;
            jetstream
                .get_stream(&name)
                .await
                .map_err(|_| created.to_string())
        }
    }
}

/// The longest message id: ids are kept in headers and in the completed-ids file.
pub const MAX_ID_BYTES: usize = 256;

/// Why `id` cannot be a message id, if it cannot: ids travel in a header line, so no
/// control characters or spaces, and they are bounded.
pub(crate) fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("it is empty")
    } else if id.len() > MAX_ID_BYTES {
        Some("it is too long")
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("it holds a space or a control character")
    } else {
        None
    }
}

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
    /// A durable consumer could not be created or opened.
    #[error("cannot create or open the durable consumer `{consumer}` of stream `{stream}` on {url}: {reason}; if `nats.consumer` names a consumer made with other settings, delete it (`nats consumer rm {stream} {consumer}`) or choose another name")]
    Consumer {
        /// The consumer's name.
        consumer: String,
        /// The stream.
        stream: String,
        /// The server's address.
        url: String,
        /// Why.
        reason: String,
    },
    /// The file of completed ids could not be read or written.
    #[error("cannot use {path}, where completed event ids are remembered: {reason}; make the folder beside the manifest writable")]
    Completed {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The shared ledger's bucket could not be found or created.
    #[error("cannot open or create the ledger bucket `{bucket}` on {url}: {reason}; is JetStream enabled (`nats-server -js`) with room for it (`nats.ledger_max_bytes`)? To consume without a shared ledger, set `nats.ledger = false`")]
    Ledger {
        /// The bucket.
        bucket: String,
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
    /// A message id that cannot travel in a header.
    #[error("event `{event}` cannot be published with the id `{id}`: {why}; give it an id of 1 to {MAX_ID_BYTES} printable characters without spaces")]
    Id {
        /// The event.
        event: String,
        /// The id, shortened.
        id: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The runtime could not be started.
    #[error("cannot start the NATS client's thread: {0}")]
    Runtime(std::io::Error),
}

/// A connection to the server of a `[nats]` table, with its stream made sure of: shared by
/// a host's publisher and consumer.
pub struct Connection {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: jetstream::stream::Stream,
    settings: NatsSettings,
}

impl Connection {
    /// Connects to the server and creates the stream when it is missing.
    pub fn open(settings: &NatsSettings) -> Result<Arc<Connection>, NatsError> {
        // One thread of its own, so that the client keeps its connection (pings,
        // reconnects) between publishes, and consumers run beside synchronous callers.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-nats")
            .enable_all()
            .build()
            .map_err(NatsError::Runtime)?;
        // The client spawns its connection's tasks where it is made.
        let _inside = runtime.enter();
        let url = settings.url.clone();
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
        let jetstream = jetstream::new(client.clone());
        let name = settings.stream.clone();
        let config = jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.>", &settings.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let stream = runtime
            .block_on(open_or_create_stream(&jetstream, config))
            .map_err(|reason| NatsError::Stream {
                stream: name,
                url,
                reason,
            })?;
        Ok(Arc::new(Connection {
            runtime,
            client,
            jetstream,
            stream,
            settings: settings.clone(),
        }))
    }

    /// The `[nats]` table it was opened with.
    pub fn settings(&self) -> &NatsSettings {
        &self.settings
    }
}
