//! Pulling one consumed event's messages: one continuous pull, every delivery handled
//! in the pulling task, the deliveries that arrived together answered together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use switchboard::service::{Crossing, Intake};
use tokio::sync::watch;

use super::deliver::handle;
use super::together::{Together, HOLD_AT_MOST};
use super::{PullConfig, PullConsumer, Shared};

/// The most messages one pull asks for.
const MOST_PER_PULL: usize = 256;

/// How long one pull waits for messages before it asks again.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// How often the server says that a waiting pull is still alive. A pull that hears
/// nothing for twice this long may be waiting on a consumer deleted when no pull of this
/// host waited at the server (so no "consumer deleted" notice came): the consumer is
/// looked up then. The server takes at most half of `PULL_WAIT`.
const PULL_HEARTBEAT: Duration = Duration::from_millis(500);

/// Pulls `event`'s messages until the stop, then finishes the ones taken.
///
/// One continuous pull (the client asks for more as half of a batch arrives; the server
/// holds back once `in_flight` wait for their acknowledgement) and every delivery handled
/// inside this one task: nothing is spawned per message, and the answers of events that
/// finish together wake it once.
pub(super) async fn pull_loop(
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
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await;
        let mut messages = match pulled {
            Ok(messages) => messages,
            Err(e) => {
                pull_failed(&mut failing, &event, &e);
                if backed_off(&mut pause, &mut handling, &mut stop).await {
                    break 'pulling;
                }
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
                let looked = durable.make_again_if_gone(&event);
                if meanwhile(looked, &mut handling, &mut stop).await.is_none()
                    || backed_off(&mut pause, &mut handling, &mut stop).await
                {
                    break 'pulling;
                }
                break;
            };
            let mut trouble = Trouble::None;
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
                        // A missed heartbeat is looked into below, not worth a warning.
                        let this = Trouble::of(&e);
                        if this != Trouble::Silent {
                            pull_failed(&mut failing, &event, &e);
                        }
                        trouble = trouble.max(this);
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
            if trouble == Trouble::None {
                continue;
            }
            // A silent pull may be waiting on a consumer deleted between two pulls; a
            // pull nothing answers is asked again at once rather than when the client's
            // own timer (the pull's wait and five seconds) runs out.
            let looked = durable.make_again_if_gone(&event);
            let Some(made_again) = meanwhile(looked, &mut handling, &mut stop).await else {
                break 'pulling;
            };
            if made_again || trouble == Trouble::Unanswered {
                if backed_off(&mut pause, &mut handling, &mut stop).await {
                    break 'pulling;
                }
                break;
            }
        }
    }
    // Stopping: the events taken are finished (a host that stops refuses them, and they
    // are handed back), so that `stop` finds every slot free.
    while handling.next().await.is_some() {}
}

/// A consumed event's durable consumer, and how to make it again.
pub(super) struct Durable {
    pub(super) consumer: PullConsumer,
    pub(super) config: PullConfig,
    pub(super) stream: jetstream::stream::Stream,
}

impl Durable {
    /// Makes the durable consumer again if it is gone from the server (deleted by hand
    /// while the host runs), as a start would; says so, since it then delivers the
    /// stream's events from the start (those completed before are recognized by their
    /// ids). Whether it made it again.
    async fn make_again_if_gone(&mut self, event: &str) -> bool {
        let name = self.config.durable_name.clone().unwrap_or_default();
        let stream = self.stream.cached_info().config.name.clone();
        match self.stream.consumer_info(&name).await {
            Ok(_) => tracing::debug!("a pull of `{event}` events ended or went quiet; its consumer `{name}` is there"),
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                match self.stream.create_consumer(self.config.clone()).await {
                    Ok(consumer) => {
                        tracing::warn!("the durable consumer `{name}` of `{event}` events was gone from stream {stream} (deleted while this host ran); made it again, as a start would: it delivers the stream's `{event}` events from the start, and those completed before are recognized by their ids");
                        self.consumer = consumer;
                        return true;
                    }
                    Err(e) => tracing::warn!("the durable consumer `{name}` of `{event}` events is gone from stream {stream} and cannot be made again: {e}; trying again"),
                }
            }
            Err(e) => tracing::debug!("a pull of `{event}` events ended or went quiet, and its consumer `{name}` cannot be looked up: {e}; pulling again"),
        }
        false
    }
}

/// What the errors among one group of deliveries say about the pull, the worst kept.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Trouble {
    /// Nothing, or an error that does not concern the pull itself.
    None,
    /// The server's heartbeats stopped: the pull may wait on a consumer that is gone.
    Silent,
    /// Nothing answered the pull (no JetStream, or no consumer, behind its subject).
    Unanswered,
}

impl Trouble {
    fn of(error: &jetstream::consumer::pull::MessagesError) -> Trouble {
        use jetstream::consumer::pull::MessagesErrorKind as Kind;
        match error.kind() {
            Kind::MissingHeartbeat => Trouble::Silent,
            Kind::NoResponders => Trouble::Unanswered,
            _ => Trouble::None,
        }
    }
}

/// Says that pulling `event`'s messages fails, once until it works again (`failing`).
fn pull_failed(failing: &mut bool, event: &str, error: &dyn std::fmt::Display) {
    if !*failing {
        tracing::warn!(
            "cannot pull `{event}` events from NATS: {error}; trying again (the client reconnects)"
        );
        *failing = true;
    }
}

/// Waits `pause` while the deliveries being handled go on, then doubles it (up to 2 s)
/// for the next failure in a row (a delivery sets it back); whether the stop came.
async fn backed_off<F: Future<Output = ()>>(
    pause: &mut Duration,
    handling: &mut FuturesUnordered<F>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let stopped = meanwhile(tokio::time::sleep(*pause), handling, stop)
        .await
        .is_none();
    *pause = (*pause * 2).min(Duration::from_secs(2));
    stopped
}

/// Waits for `work` while the deliveries being handled go on (their answers are not held
/// back by it); `None` when the stop came first.
async fn meanwhile<T, F: Future<Output = ()>>(
    work: impl Future<Output = T>,
    handling: &mut FuturesUnordered<F>,
    stop: &mut watch::Receiver<bool>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = stop.changed() => return None,
            Some(()) = handling.next(), if !handling.is_empty() => {}
        }
    }
}
