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

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use switchboard::manifest::NatsSettings;
use switchboard::service::{Busy, Crossing, Handled, Intake, Offer, Refusal, Source, Traffic};
use tokio::sync::{watch, Semaphore};

use crate::completed::Completed;
use crate::ledger::{Claim, Finish, Ledger};
use crate::together::{Answer, Together, HOLD_AT_MOST};

/// A durable pull consumer on the server.
type PullConsumer = jetstream::consumer::Consumer<pull::Config>;
use crate::publish::{store, Message};
use crate::{Connection, NatsError};

/// The most messages one pull asks for.
const MOST_PER_PULL: usize = 256;

/// How long one pull waits for messages before it asks again.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// The longest pause before a failed event is delivered again.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// How much of a dead-letter reason goes into its header.
const MOST_REASON_BYTES: usize = 4096;

/// Pulls the events a manifest consumes and hands them to a host's [`Intake`].
pub struct Consumer {
    connection: Arc<Connection>,
    /// The durable consumer of each consumed event, and how it was made (to make it
    /// again if it is deleted while the host runs).
    consumers: Vec<(String, PullConsumer, pull::Config)>,
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
            let config = pull::Config {
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
            let pulling = pull_loop(
                Arc::clone(&self.shared),
                Arc::clone(&intake),
                event.clone(),
                Durable {
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

/// Pulls `event`'s messages until the stop, then finishes the ones taken.
///
/// One continuous pull (the client asks for more as half of a batch arrives; the server
/// holds back once `in_flight` wait for their acknowledgement) and every delivery handled
/// inside this one task: nothing is spawned per message, and the answers of events that
/// finish together wake it once.
async fn pull_loop(
    shared: Arc<Shared>,
    intake: Arc<dyn Intake>,
    event: String,
    mut durable: Durable,
    mut stop: watch::Receiver<bool>,
) {
    let mut handling = FuturesUnordered::new();
    let mut pause = Duration::from_millis(100);
    let mut failing = false;
    let per_pull = (shared.settings.in_flight as usize).clamp(1, MOST_PER_PULL);
    'pulling: while !*stop.borrow() {
        let pulled = durable
            .consumer
            .stream()
            .max_messages_per_batch(per_pull)
            .expires(PULL_WAIT)
            .messages()
            .await;
        let mut messages = match pulled {
            Ok(messages) => messages,
            Err(e) => {
                if !failing {
                    tracing::warn!("cannot pull `{event}` events from NATS: {e}; trying again (the client reconnects)");
                    failing = true;
                }
                if paused(pause, &mut handling, &mut stop).await {
                    break 'pulling;
                }
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let mut chunks = (&mut messages).ready_chunks(per_pull);
        loop {
            let pulled = tokio::select! {
                biased;
                _ = stop.changed() => break 'pulling,
                Some(()) = handling.next(), if !handling.is_empty() => continue,
                pulled = chunks.next() => pulled,
            };
            let Some(pulled) = pulled else {
                // The client ended the pull (the durable consumer was deleted, or a pull
                // was refused): the consumer is made again if it is gone, and a new pull
                // starts after a pause that grows while it fails.
                durable.make_again_if_gone(&event).await;
                if paused(pause, &mut handling, &mut stop).await {
                    break 'pulling;
                }
                pause = (pause * 2).min(Duration::from_secs(2));
                break;
            };
            // The messages that arrived together are handed to the host together, and
            // their answers come back together.
            let together = Together::new();
            let arrived = pulled.iter().filter(|next| next.is_ok()).count();
            if let Some(traffic) = &shared.traffic {
                traffic.crossed_many(&event, Crossing::Consumed, arrived as u64);
            }
            for next in pulled {
                let message = match next {
                    Err(e) => {
                        if !failing {
                            tracing::warn!("cannot pull `{event}` events from NATS: {e}; trying again (the client reconnects)");
                            failing = true;
                        }
                        continue;
                    }
                    Ok(message) => message,
                };
                if failing {
                    tracing::info!("pulling `{event}` events from NATS again");
                    failing = false;
                }
                pause = Duration::from_millis(100);
                // The server delivers at most `in_flight` unacknowledged messages, so a
                // slot is free but for a moment (an answer sent, its handling not yet
                // ended).
                let slot = loop {
                    if let Ok(slot) = Arc::clone(&shared.slots).try_acquire_owned() {
                        break slot;
                    }
                    if handling.next().await.is_none() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                let (shared, intake, event) = (&shared, &intake, event.as_str());
                let together = Arc::clone(&together);
                handling.push(Either::Left(async move {
                    handle(shared, intake.as_ref(), event, message, together).await;
                    drop(slot);
                }));
            }
            // One timer for the group: it is let go then, so that a slow event does not
            // hold back the others' answers.
            handling.push(Either::Right(async move {
                tokio::time::sleep(HOLD_AT_MOST).await;
                together.let_go();
            }));
        }
    }
    // Stopping: the events taken are finished (a host that stops refuses them, and they
    // are handed back), so that `stop` finds every slot free.
    while handling.next().await.is_some() {}
}

/// A consumed event's durable consumer, and how to make it again.
struct Durable {
    consumer: PullConsumer,
    config: pull::Config,
    stream: jetstream::stream::Stream,
}

impl Durable {
    /// Makes the durable consumer again if it is gone from the server (deleted by hand
    /// while the host runs), as a start would; says so, since it then delivers the
    /// stream's events from the start (those completed before are recognized by their
    /// ids).
    async fn make_again_if_gone(&mut self, event: &str) {
        let name = self.config.durable_name.clone().unwrap_or_default();
        let stream = self.stream.cached_info().config.name.clone();
        match self.stream.consumer_info(&name).await {
            Ok(_) => tracing::debug!("a pull of `{event}` events ended; pulling again"),
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                match self.stream.create_consumer(self.config.clone()).await {
                    Ok(consumer) => {
                        tracing::warn!("the durable consumer `{name}` of `{event}` events was gone from stream {stream} (deleted while this host ran); made it again, as a start would: it delivers the stream's `{event}` events from the start, and those completed before are recognized by their ids");
                        self.consumer = consumer;
                    }
                    Err(e) => tracing::warn!("the durable consumer `{name}` of `{event}` events is gone from stream {stream} and cannot be made again: {e}; trying again"),
                }
            }
            Err(e) => tracing::debug!("a pull of `{event}` events ended, and its consumer `{name}` cannot be looked up: {e}; pulling again"),
        }
    }
}

/// Waits `pause` while the deliveries being handled go on; whether the stop came.
async fn paused<F: std::future::Future<Output = ()>>(
    pause: Duration,
    handling: &mut FuturesUnordered<F>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let paused = tokio::time::sleep(pause);
    tokio::pin!(paused);
    loop {
        tokio::select! {
            () = &mut paused => return false,
            _ = stop.changed() => return true,
            Some(()) = handling.next(), if !handling.is_empty() => {}
        }
    }
}

/// One delivery of one message: dispatched, or recognized as done, or dead-lettered.
async fn handle(
    shared: &Arc<Shared>,
    intake: &dyn Intake,
    event: &str,
    message: jetstream::Message,
    together: Arc<Together>,
) {
    let (delivered, sequence) = match message.info() {
        Ok(info) => (info.delivered.max(1) as u64, info.stream_sequence),
        Err(e) => {
            tracing::warn!("a `{event}` message without delivery information was skipped: {e}");
            return;
        }
    };
    let id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_owned())
        // An id from a publisher outside switchboard may be unusable (too long to keep):
        // the stream sequence names the message as well for its redeliveries.
        .filter(|id| crate::id_problem(id).is_none())
        .unwrap_or_else(|| format!("{}-{sequence}", shared.stream));
    // Counted as consumed with the group it arrived in.
    if delivered > 1 {
        shared.count(event, Crossing::Redelivered);
    }
    let letter = Letter {
        shared,
        event,
        id: &id,
        delivered,
        message: &message,
    };
    let key = shared.ledger.as_ref().map(|ledger| ledger.key(event, &id));
    if shared.is_completed(&id) {
        tracing::debug!("event `{event}` (id {id}) was completed before; acknowledged again");
        shared.count(event, Crossing::AlreadyCompletedInCache);
        if let (Some(ledger), Some(key)) = (&shared.ledger, &key) {
            Box::pin(ledger.settle(key)).await;
        }
        letter.acknowledge_done().await;
        return;
    }
    let args = match arguments(&message.payload) {
        Ok(args) => args,
        Err(reason) => {
            // Refused like an HTTP body that is not a JSON object of arguments.
            intake.refused(event, Refusal::BadArguments);
            Box::pin(letter.dead_letter(&reason)).await;
            return;
        }
    };
    if !shared.begin(&id) {
        // Another delivery of the same id is being dispatched: this one comes back later.
        let wait = shared.settings.ack_wait;
        letter.acknowledge(AckKind::Nak(Some(wait))).await;
        return;
    }
    handle_claimed(shared, &letter, intake, args, key.as_deref(), together).await;
    shared.end(&id);
}

/// A delivery not known to be done: claimed in the ledger (under `key`, if there is
/// one), then dispatched, marked done and acknowledged.
async fn handle_claimed(
    shared: &Arc<Shared>,
    letter: &Letter<'_>,
    intake: &dyn Intake,
    args: Map<String, Json>,
    key: Option<&str>,
    together: Arc<Together>,
) {
    let (event, id) = (letter.event, letter.id);
    // Without a ledger, the server's delivery count is the number of attempts.
    let (mut held, mut attempts) = (None, letter.delivered);
    if let (Some(ledger), Some(key)) = (&shared.ledger, key) {
        match Box::pin(ledger.claim(key, shared.was_begun(id))).await {
            Claim::Done => {
                tracing::debug!("event `{event}` (id {id}) was completed by a host of the consumer; acknowledged");
                shared.remember(id);
                shared.count(event, Crossing::AlreadyCompletedInLedger);
                letter.acknowledge_done().await;
                return;
            }
            Claim::Elsewhere { host, since } => {
                // That host began it and may have left effects only it can finish once:
                // the event goes back, for that host (restarted) to pull.
                tracing::debug!(
                    "event `{event}` (id {id}) was claimed by host {} {} ms ago; handed back to wait for it",
                    host.escape_debug(),
                    since.as_millis()
                );
                shared.count(event, Crossing::ClaimedElsewhere);
                let pause = shared
                    .settings
                    .redeliver_after
                    .max(Duration::from_millis(100));
                letter.acknowledge(AckKind::Nak(Some(pause))).await;
                return;
            }
            Claim::Held {
                revision,
                attempts: begun,
            } => (held, attempts) = (Some(revision), begun),
            Claim::Unreachable(_) => shared.count(event, Crossing::LedgerError),
        }
    }
    let most = u64::from(shared.settings.max_deliveries);
    if attempts > most {
        let reason = format!("begun {attempts} times without completing (the host stopped, or its acknowledgement was lost, each time)");
        Box::pin(letter.dead_letter_and_forget(&reason, key)).await;
        return;
    }
    match dispatch(shared, letter, intake, args, together).await {
        None => {
            // The host is stopping and the callbacks did not run now: the claim is given
            // back, and another host (or this one, restarted) takes the event, unless
            // this host began it before a restart (its half-made effects are its own).
            if let (Some(ledger), Some(key), Some(_)) = (&shared.ledger, key, held) {
                if !shared.was_begun(id) {
                    Box::pin(ledger.forget(key)).await;
                }
            }
            letter.acknowledge(AckKind::Nak(None)).await;
        }
        // Remembered as completed already, on the dispatch thread.
        Some(Handled::Completed) => {
            if let (Some(ledger), Some(key)) = (&shared.ledger, key) {
                let why = match Box::pin(ledger.finish(key, held)).await {
                    Finish::Recorded if held.is_some() && attempts > 1 => Some(format!(
                        "it was begun {attempts} times (a host stopped inside its callbacks)"
                    )),
                    Finish::Recorded => None,
                    Finish::RanAgain => Some(
                        "the ledger held it as completed, or another host had taken it over"
                            .to_owned(),
                    ),
                    Finish::Unreachable(_) => {
                        shared.count(event, Crossing::LedgerError);
                        None
                    }
                };
                if let Some(why) = why {
                    tracing::info!("event `{event}` (id {id}) completed, and its callbacks ran more than once: {why}");
                    shared.count(event, Crossing::RanAgain);
                }
            }
            letter.acknowledge_done().await;
        }
        Some(Handled::Failed(failures)) if attempts >= most => {
            let reason = format!(
                "callbacks failed on each of {attempts} attempts; the last time: {}",
                failures.join("; ")
            );
            Box::pin(letter.dead_letter_and_forget(&reason, key)).await;
        }
        Some(Handled::Failed(failures)) => {
            let base = shared.settings.redeliver_after;
            let pause = base
                .saturating_mul(1 << (attempts.max(1) - 1).min(16))
                .min(LONGEST_PAUSE);
            tracing::warn!(
                "event `{event}` (id {id}) failed on attempt {attempts} of {most}: {}; delivered again in {} ms",
                failures.join("; "),
                pause.as_millis()
            );
            letter.acknowledge(AckKind::Nak(Some(pause))).await;
        }
        Some(Handled::Refused(reason)) => {
            Box::pin(letter.dead_letter_and_forget(&reason, key)).await
        }
        Some(_) => letter.acknowledge(AckKind::Nak(None)).await,
    }
}

/// Hands the event to the host and waits for its callbacks, telling the server the host
/// is still working meanwhile; `None` when the host is stopping. A completed event is
/// remembered on the dispatch thread, as its last callback returns: the events between
/// their callbacks and the acknowledgement are then never run twice after a kill. Its
/// answer comes with the rest of its group ([`Together`]).
async fn dispatch(
    shared: &Arc<Shared>,
    letter: &Letter<'_>,
    intake: &dyn Intake,
    args: Map<String, Json>,
    together: Arc<Together>,
) -> Option<Handled> {
    let every = (letter.shared.settings.ack_wait / 3).max(Duration::from_millis(30));
    let mut told = Instant::now();
    let (answer, outcome) = Answer::new(Arc::clone(&together));
    let (journal, id) = (Arc::clone(shared), letter.id.to_owned());
    let begun: Option<switchboard::service::Begun> = shared.begun.is_some().then(|| {
        let (journal, id) = (Arc::clone(shared), letter.id.to_owned());
        Box::new(move || journal.record_begun(&id)) as switchboard::service::Begun
    });
    let mut offer = Offer {
        begun,
        event: letter.event.to_owned(),
        args,
        id: letter.id.to_owned(),
        done: Box::new(move |handled| {
            if handled == Handled::Completed {
                journal.remember(&id);
            }
            answer.give(handled);
        }),
    };
    loop {
        match intake.submit(offer).map_err(|declined| *declined) {
            Ok(()) => break,
            Err((Busy::Full, back)) => {
                // Handed back whole: offered again once there is room.
                offer = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
                if told.elapsed() >= every {
                    letter.acknowledge(AckKind::Progress).await;
                    told = Instant::now();
                }
            }
            Err(_) => return None,
        }
    }
    let received = |handled: Result<Handled, _>| {
        Some(handled.unwrap_or_else(|_| {
            Handled::Failed(vec![
                "the dispatch worker stopped before the event finished".to_owned(),
            ])
        }))
    };
    tokio::pin!(outcome);
    // Answered with its group; if the group is let go first (a slow event in it), on its
    // own, the server hearing meanwhile that the host is still working. Most events are
    // answered before any timer of their own is set.
    tokio::select! {
        handled = &mut outcome => return received(handled),
        () = together.until_let_go() => {}
    }
    loop {
        tokio::select! {
            handled = &mut outcome => return received(handled),
            () = tokio::time::sleep(every) => letter.acknowledge(AckKind::Progress).await,
        }
    }
}

/// The arguments a message carries: a JSON object, or why not.
fn arguments(payload: &[u8]) -> Result<Map<String, Json>, String> {
    match serde_json::from_slice::<Json>(payload) {
        Ok(Json::Object(args)) => Ok(args),
        Ok(other) => Err(format!(
            "the message is not a JSON object of arguments but {}",
            match other {
                Json::Array(_) => "an array",
                Json::String(_) => "a string",
                Json::Number(_) => "a number",
                Json::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
        Err(e) => Err(format!("the message is not JSON: {e}")),
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

/// One delivery, and what can be answered to it.
struct Letter<'a> {
    shared: &'a Shared,
    event: &'a str,
    id: &'a str,
    delivered: u64,
    message: &'a jetstream::Message,
}

impl Letter<'_> {
    /// Answers the server; a lost answer is covered by redelivery and the completed ids.
    async fn acknowledge(&self, kind: AckKind) {
        if let Err(e) = self.message.ack_with(kind).await {
            tracing::debug!(
                "cannot answer NATS for event `{}` (id {}): {e}",
                self.event,
                self.id
            );
        }
    }

    /// Acknowledges a completed event: with the ledger, a double ack (the server confirms
    /// it, so the event is not delivered to another host); without, a plain one.
    async fn acknowledge_done(&self) {
        if self.shared.ledger.is_none() {
            return self.acknowledge(AckKind::Ack).await;
        }
        if let Err(e) = Box::pin(self.message.double_ack()).await {
            tracing::debug!(
                "NATS did not confirm the acknowledgement of event `{}` (id {}): {e}; a redelivery finds it done in the ledger",
                self.event,
                self.id
            );
        }
    }

    /// Dead-letters the message, and forgets its ledger key once that is done, so the
    /// same id published again runs again.
    async fn dead_letter_and_forget(&self, reason: &str, key: Option<&str>) {
        if self.dead_letter(reason).await {
            if let (Some(ledger), Some(key)) = (&self.shared.ledger, key) {
                ledger.forget(key).await;
            }
        }
    }

    /// Stores the message, as it came, in the dead-letter subject with `reason` and where
    /// it came from in its headers, then ends its deliveries; whether it was stored. If
    /// it cannot be stored, it is delivered again later (and dead-lettered then).
    async fn dead_letter(&self, reason: &str) -> bool {
        let settings = &self.shared.settings;
        let subject = settings.dead_letter_subject(self.event);
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            header_safe(&format!("dead-letter-{}", self.id)),
        );
        headers.insert("Switchboard-Reason", header_safe(reason));
        headers.insert("Switchboard-Event", self.event);
        headers.insert("Switchboard-Id", header_safe(self.id));
        headers.insert("Switchboard-Deliveries", self.delivered.to_string());
        headers.insert("Switchboard-Subject", self.message.subject.as_str());
        let letter = Message {
            subject: subject.clone(),
            headers,
            payload: self.message.payload.to_vec(),
        };
        let bound = settings.publish_timeout;
        match store(&self.shared.jetstream, &letter, bound).await {
            Ok(_) => {
                tracing::warn!(
                    "event `{}` (id {}) sent to {subject}: {reason}",
                    self.event,
                    self.id
                );
                self.shared.count(self.event, Crossing::DeadLettered);
                self.acknowledge(AckKind::Term).await;
                true
            }
            Err(e) => {
                tracing::warn!(
                    "cannot send event `{}` (id {}) to {subject}: {e}; it will be delivered again",
                    self.event,
                    self.id
                );
                let pause = settings.redeliver_after;
                self.acknowledge(AckKind::Nak(Some(pause))).await;
                false
            }
        }
    }
}

/// `text` as one header line: no control characters, at most [`MOST_REASON_BYTES`].
fn header_safe(text: &str) -> String {
    let mut safe: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if safe.len() > MOST_REASON_BYTES {
        let mut end = MOST_REASON_BYTES;
        while !safe.is_char_boundary(end) {
            end -= 1;
        }
        safe.truncate(end);
        safe.push_str("...");
    }
    safe
}
