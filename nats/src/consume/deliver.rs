//! One delivery of one message: recognized as done, dispatched (claimed in the ledger
//! first, if there is one), or dead-lettered; and what is answered to the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use serde_json::{Map, Value as Json};
use switchboard::service::{Busy, Crossing, Handled, Intake, Offer, Refusal};

use super::together::{Answer, Together};
use super::Shared;
use crate::ledger::{Claim, Finish};
use crate::publish::{store, Message};

/// The longest pause before a failed event is delivered again.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// How much of a dead-letter reason goes into its header.
const MOST_REASON_BYTES: usize = 4096;

/// One delivery of one message: dispatched, or recognized as done, or dead-lettered.
pub(super) async fn handle(
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
