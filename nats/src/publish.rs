//! Publishing: an event goes to its subject in the stream, stored once per id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{jetstream, HeaderMap};
use serde_json::{json, Map, Value as Json};
use switchboard::manifest::NatsSettings;
use switchboard::service::{Crossing, Forward, Traffic};

use crate::{Connection, NatsError};

/// How long one attempt at a publish waits for the server's acknowledgement.
const ACK_WITHIN: Duration = Duration::from_secs(2);

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

impl Published {
    /// As result lines and answers give it: `{"stream", "seq", "duplicate"}`.
    pub fn to_json(&self) -> Json {
        json!({"stream": self.stream, "seq": self.sequence, "duplicate": self.duplicate})
    }
}

/// Publishes events to the stream of a manifest's `[nats]` table.
pub struct Publisher {
    connection: Arc<Connection>,
}

impl Publisher {
    /// Connects to the server and makes sure the stream exists.
    pub fn connect(settings: &NatsSettings) -> Result<Publisher, NatsError> {
        Ok(Publisher::on(Connection::open(settings)?))
    }

    /// Publishes through an open connection.
    pub fn on(connection: Arc<Connection>) -> Publisher {
        Publisher { connection }
    }

    /// Publishes `event` with its arguments under the message id `id`, and waits until
    /// the server has stored it (retrying with the same id while it cannot be reached).
    pub fn publish(
        &self,
        event: &str,
        args: &Map<String, Json>,
        id: &str,
    ) -> Result<Published, NatsError> {
        let mut answers = self.publish_all(&[(event, args, id)]);
        answers.pop().unwrap_or_else(|| {
            Err(NatsError::Publish {
                event: event.to_owned(),
                id: id.to_owned(),
                url: self.connection.settings.url.clone(),
                waited_ms: 0,
                reason: "not sent".to_owned(),
            })
        })
    }
}

impl Publisher {
    /// Publishes several events at once, each as [`Publisher::publish`] does, waiting for
    /// their acknowledgements together: one answer per event, in order.
    pub fn publish_all(
        &self,
        events: &[(&str, &Map<String, Json>, &str)],
    ) -> Vec<Result<Published, NatsError>> {
        let settings = &self.connection.settings;
        let bound = settings.publish_timeout;
        let started = Instant::now();
        let messages: Vec<Result<Message, NatsError>> = events
            .iter()
            .map(|&(event, args, id)| self.message(event, args, id))
            .collect();
        // Every message is sent before any acknowledgement is awaited.
        let jetstream = &self.connection.jetstream;
        let stored = self
            .connection
            .runtime
            .block_on(futures_util::future::join_all(messages.iter().map(
                |message| async move {
                    match message {
                        Ok(message) => Some(store(jetstream, message, bound).await),
                        Err(_) => None,
                    }
                },
            )));
        messages
            .into_iter()
            .zip(stored)
            .zip(events)
            .map(|((message, stored), &(event, _, id))| {
                message?;
                stored
                    .unwrap_or_else(|| Err("not sent".to_owned()))
                    .map_err(|reason| NatsError::Publish {
                        event: event.to_owned(),
                        id: id.to_owned(),
                        url: settings.url.clone(),
                        waited_ms: started.elapsed().as_millis(),
                        reason,
                    })
            })
            .collect()
    }

    /// The message of `event`, or why its id cannot be used.
    fn message(
        &self,
        event: &str,
        args: &Map<String, Json>,
        id: &str,
    ) -> Result<Message, NatsError> {
        if let Some(why) = crate::id_problem(id) {
            return Err(NatsError::Id {
                event: event.to_owned(),
                // Escaped: an id with control characters must not reach a terminal raw.
                id: id
                    .chars()
                    .take(64)
                    .collect::<String>()
                    .escape_debug()
                    .to_string(),
                why,
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        Ok(Message {
            subject: self.connection.settings.subject(event),
            headers,
            payload: bytes_of(args),
        })
    }
}

/// A message to store in the stream.
pub(crate) struct Message {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Vec<u8>,
}

/// Publishes `message` and waits until the server stored it, trying again (with the same
/// id, so it is stored once) while it cannot be reached, for `bound` at most; the last
/// reason when it gives up.
pub(crate) async fn store(
    jetstream: &jetstream::Context,
    message: &Message,
    bound: Duration,
) -> Result<Published, String> {
    // A message the server will never take fails at once, naming both sizes, instead of
    // being tried again until the bound.
    let limit = jetstream.client().server_info().max_payload;
    let size = message.payload.len()
        + message
            .headers
            .iter()
            .map(|(name, values)| {
                AsRef::<str>::as_ref(name).len()
                    + values.iter().map(|v| v.as_str().len() + 4).sum::<usize>()
            })
            .sum::<usize>();
    if limit > 0 && size > limit {
        return Err(format!(
            "the message is {size} bytes, over this server's limit of {limit} bytes (max_payload); send smaller events, or raise max_payload in the server's configuration"
        ));
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let attempt = async {
            let ack = jetstream
                .publish_with_headers(
                    message.subject.clone(),
                    message.headers.clone(),
                    message.payload.clone().into(),
                )
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
        };
        match attempt.await {
            Ok(published) => return Ok(published),
            Err(reason) if started.elapsed() + pause >= bound => return Err(reason),
            Err(reason) => {
                tracing::debug!(
                    "publishing to {} again in {pause:?}: {reason}",
                    message.subject
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// A `Publisher` serves `run`'s (and `serve`'s) forwarded events, from any number of
/// threads at once: their publishes wait for the server's acknowledgements side by side.
pub struct Forwarder {
    settings: NatsSettings,
    publisher: Publisher,
    traffic: Option<Arc<dyn Traffic>>,
}

impl Forwarder {
    /// Forwards through `publisher`.
    pub fn new(publisher: Publisher) -> Forwarder {
        Forwarder {
            settings: publisher.connection.settings.clone(),
            publisher,
            traffic: None,
        }
    }

    /// Counts every stored message into `traffic` (metrics).
    pub fn counting(mut self, traffic: Arc<dyn Traffic>) -> Forwarder {
        self.traffic = Some(traffic);
        self
    }
}

impl Forward for Forwarder {
    fn forwards(&self, event: &str) -> bool {
        self.settings.publishes(event)
    }

    fn forward(&self, event: &str, args: &Map<String, Json>, id: &str) -> Result<Json, String> {
        self.answer(event, self.publisher.publish(event, args, id))
    }

    fn forward_all(
        &self,
        events: &[(&str, &Map<String, Json>, &str)],
    ) -> Vec<Result<Json, String>> {
        self.publisher
            .publish_all(events)
            .into_iter()
            .zip(events)
            .map(|(published, &(event, _, _))| self.answer(event, published))
            .collect()
    }
}

impl Forwarder {
    /// What a result line says of a publish, counted.
    fn answer(&self, event: &str, published: Result<Published, NatsError>) -> Result<Json, String> {
        let published = published.map_err(|e| e.to_string())?;
        if let Some(traffic) = &self.traffic {
            traffic.crossed(event, Crossing::Published);
        }
        Ok(published.to_json())
    }
}

/// The message body: the arguments as a JSON object.
fn bytes_of(args: &Map<String, Json>) -> Vec<u8> {
    serde_json::to_vec(args).unwrap_or_else(|_| b"{}".to_vec())
}
