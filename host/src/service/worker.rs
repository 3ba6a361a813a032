//! One worker of the service: claims work one event at a time (a line of a batch, a
//! source's event, a request), dispatches it on the generation current when it took the
//! work up, counts it into its own tally, and answers it through where it came from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use serde_json::{Map, Value as Json};

use super::counts::{Held, Refusal, Tallies};
use super::json_lines::{handle, handle_batch, Line};
use super::output::Message;
use super::queue::{Batch, Queue, Work};
use super::recent::Recent;
use super::request::{deliver, Abandoned, Answer, Reply, Request};
use super::{Begun, Forward, Handled, Outgoing, Report};
use crate::dispatch::{Generation, Outcomes, Tally};
use crate::error::EmitError;
use crate::runtime::CurrentGeneration;

/// The most events a worker dispatches together when a plugin is isolated (their calls to
/// each worker process travel in one frame) or events are forwarded (their publishes wait
/// for their acknowledgements together); see BENCHMARKS.md for the throughput.
const ISOLATED_BATCH: usize = 128;

/// One line in this many is timed per worker, for the counters' time spent: timing every
/// call made `run` 1.13x slower (see BENCHMARKS.md). Requests and sources' events are few
/// enough per second to time every one.
const TIME_ONE_IN: u64 = 64;

/// Each worker's stack: at least what the main thread has (8 MiB on Linux), so that a
/// callback that runs under `emit` also runs under the service. Untouched stack costs no
/// memory.
const WORKER_STACK: usize = 16 * 1024 * 1024;

/// What one worker is doing, guarded so that the worker and an abandoning drain never
/// both answer the same event.
#[derive(Default)]
pub(super) struct Slot {
    /// The lines being dispatched (claimed, results not yet handed to the writer).
    pub(super) running: Vec<u64>,
    /// The reply of the request being dispatched, for a drain that gives up on it.
    pub(super) request: Option<Box<dyn Reply>>,
    /// The drain gave up: the worker answers nothing more and stops.
    pub(super) taken: bool,
}

/// A worker's counts, published after every event (plain stores: only its worker writes).
#[derive(Default)]
#[repr(align(128))]
pub(super) struct Published {
    dispatched: AtomicU64,
    bad_lines: AtomicU64,
    failed_events: AtomicU64,
    consumed: AtomicU64,
    consumed_failed: AtomicU64,
    requests: AtomicU64,
    requests_failed: AtomicU64,
}

impl Published {
    /// Adds these counts to `report`.
    pub(super) fn add_to(&self, report: &mut Report) {
        report.dispatched += self.dispatched.load(Ordering::Relaxed);
        report.bad_lines += self.bad_lines.load(Ordering::Relaxed);
        report.failed_events += self.failed_events.load(Ordering::Relaxed);
        report.consumed += self.consumed.load(Ordering::Relaxed);
        report.consumed_failed += self.consumed_failed.load(Ordering::Relaxed);
        report.requests += self.requests.load(Ordering::Relaxed);
        report.requests_failed += self.requests_failed.load(Ordering::Relaxed);
    }
}

/// A running worker, as the service sees it.
pub(super) struct Worker {
    pub(super) slot: Arc<Mutex<Slot>>,
    pub(super) counts: Arc<Published>,
    /// Its counts by event.
    pub(super) events: Arc<Tallies>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

/// What a worker is started with.
pub(super) struct Duties {
    pub(super) host: CurrentGeneration,
    pub(super) queue: Arc<Queue>,
    /// Where result lines go, when the service reads lines.
    pub(super) lines: Option<Sender<Message>>,
    pub(super) forward: Option<Arc<dyn Forward>>,
    pub(super) recent: Arc<Recent>,
}

/// Starts worker `n`.
pub(super) fn spawn(n: usize, duties: Duties) -> std::io::Result<Worker> {
    let slot = Arc::new(Mutex::new(Slot::default()));
    let counts = Arc::new(Published::default());
    let events = Arc::new(Tallies::default());
    let thread = std::thread::Builder::new()
        .name(format!("switchboard-worker-{n}"))
        .stack_size(WORKER_STACK)
        .spawn({
            let (slot, counts, events) =
                (Arc::clone(&slot), Arc::clone(&counts), Arc::clone(&events));
            move || work(&duties, &slot, &counts, &events)
        })?;
    Ok(Worker {
        slot,
        counts,
        events,
        thread,
    })
}

/// A worker: takes up work until the queue is closed and empty, or a drain takes it off
/// duty.
fn work(duties: &Duties, slot: &Mutex<Slot>, counts: &Published, events: &Tallies) {
    let mut duty = Duty {
        forward: duties.forward.clone(),
        lines: duties.lines.as_ref(),
        slot,
        counts,
        events: Held::new(events),
        recent: &duties.recent,
        report: Report::default(),
        tally: Tally::new(),
        outcomes: vec![Outcomes::new()],
    };
    let (host, queue) = (&duties.host, &duties.queue);
    while let Some(work) = queue.next_work() {
        let carry_on = match work {
            Work::Lines(batch) => {
                let generation = batch.generation(|| host.get());
                generation.absorb(&mut duty.tally);
                let carry_on = duty.work_on(&generation, &batch);
                // Counted calls reach the host's counters however the batch ended.
                generation.absorb(&mut duty.tally);
                carry_on
            }
            Work::Offer(mut offer) => {
                let generation = host.get();
                // Counts for this generation (a reload may have come since the last event).
                generation.absorb(&mut duty.tally);
                let (event, args, id) = (&offer.event, &offer.args, &offer.id);
                let handled =
                    match duty.dispatch_whole(&generation, event, args, id, offer.begun.take()) {
                        Err(refused) => Handled::Refused(refused.to_string()),
                        Ok(failures) if failures.is_empty() => Handled::Completed,
                        Ok(failures) => Handled::Failed(failures),
                    };
                duty.report.consumed += 1;
                duty.report.consumed_failed += u64::from(handled != Handled::Completed);
                duty.publish();
                (offer.done)(handled);
                queue.written(1);
                true
            }
            Work::Request(request) => {
                let carry_on = duty.answer(host, request);
                queue.written(1);
                carry_on
            }
        };
        if !carry_on {
            return;
        }
    }
}

/// What one worker holds while it works: where results go, its slot and counts, and the
/// buffers it reuses from event to event.
struct Duty<'w> {
    forward: Option<Arc<dyn Forward>>,
    lines: Option<&'w Sender<Message>>,
    slot: &'w Mutex<Slot>,
    counts: &'w Published,
    /// Its counts by event, held while it stays on one event.
    events: Held<'w>,
    recent: &'w Recent,
    report: Report,
    tally: Tally,
    /// One per event dispatched together.
    outcomes: Vec<Outcomes>,
}

impl Duty<'_> {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A slot holds plain values; a panic elsewhere cannot leave it half-updated.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Dispatches one whole event here under `id` (a request's or a source's), calling
    /// `begun` first: counted, told to the observer, and its failed or skipped calls kept
    /// among the recent failures, each also returned as `plugin.callback (kind):
    /// message`; or why the host refused it (nothing counted then).
    fn dispatch_whole(
        &mut self,
        generation: &Generation,
        event: &str,
        args: &Map<String, Json>,
        id: &str,
        begun: Option<Begun>,
    ) -> Result<Vec<String>, EmitError> {
        let outcomes = &mut self.outcomes[0];
        outcomes.reset(0);
        outcomes.timed = true;
        outcomes.set_event_id(Some(id));
        if let Some(begun) = begun {
            begun();
        }
        // Counted where readers see it before the event is answered.
        if let Err(refused) = generation.emit_json_into(event, args, outcomes) {
            self.events.refused_for(event, &refused);
            self.events.flush();
            return Err(refused);
        }
        self.events.received(event);
        self.events.flush();
        self.tally.add(outcomes);
        generation.absorb(&mut self.tally);
        generation.tell_observer(event, outcomes);
        if !outcomes.has_failures() {
            return Ok(Vec::new());
        }
        Ok(self.recent.record(generation, event, id, outcomes))
    }

    /// Dispatches (or forwards) a request on the current generation and answers it;
    /// `false` when the worker must stop (a drain gave up and answered it instead).
    fn answer(&mut self, host: &CurrentGeneration, request: Request) -> bool {
        let Request {
            event,
            args,
            id,
            reply,
        } = request;
        {
            let mut slot = self.slot();
            if slot.taken {
                drop(slot);
                if host.get().event(&event).is_ok() {
                    self.events.refused(&event, Refusal::Stopping);
                    self.events.flush();
                }
                deliver(reply, Answer::Abandoned(Abandoned::NotStarted));
                return false;
            }
            slot.request = Some(reply);
        }
        let generation = host.get();
        generation.absorb(&mut self.tally);
        let forward = self.forward.as_deref();
        let route = Outgoing::route(forward, &generation, &event, &args, Some(&id), 0);
        let forwarded = match route {
            Some((forward, Ok(outgoing))) => {
                let sent = outgoing.send(forward);
                if sent.is_ok() {
                    self.events.forwarded(&event);
                } else {
                    self.events.received(&event);
                }
                self.events.flush();
                Some(Ok((sent, outgoing.id)))
            }
            Some((_, Err(refused))) => {
                self.events.refused_for(&event, &refused);
                self.events.flush();
                Some(Err(refused))
            }
            None => self
                .dispatch_whole(&generation, &event, &args, &id, None)
                .err()
                .map(Err),
        };
        let Some(reply) = self.slot().request.take() else {
            // The drain gave up on it meanwhile, and answered it.
            return false;
        };
        self.report.requests += 1;
        let failed = match forwarded {
            None => {
                let outcomes = &self.outcomes[0];
                deliver(
                    reply,
                    Answer::Dispatched {
                        event: &event,
                        id: &id,
                        generation: &generation,
                        outcomes,
                    },
                );
                outcomes.has_failures()
            }
            Some(Ok((result, id))) => {
                let failed = result.is_err();
                deliver(
                    reply,
                    Answer::Forwarded {
                        event: &event,
                        id: &id,
                        result,
                    },
                );
                failed
            }
            Some(Err(error)) => {
                deliver(
                    reply,
                    Answer::Refused {
                        event: &event,
                        error,
                    },
                );
                true
            }
        };
        self.report.requests_failed += u64::from(failed);
        self.publish();
        true
    }

    /// Claims and dispatches lines of one batch until it is exhausted; `false` when the
    /// worker must stop (the writer is gone, or an abandoning drain took it off duty).
    /// Lines are claimed one at a time, or several together when a plugin is isolated or
    /// events are forwarded.
    fn work_on(&mut self, generation: &Generation, batch: &Batch) -> bool {
        let Some(lines) = self.lines else {
            // Batches come only from a service that reads lines.
            return false;
        };
        // Together when a plugin is isolated (one frame per worker process) or events go
        // elsewhere (their acknowledgements awaited together).
        let together = if generation.isolates() || self.forward.is_some() {
            ISOLATED_BATCH
        } else {
            1
        };
        if self.outcomes.len() < together {
            self.outcomes.resize_with(together, Outcomes::new);
        }
        let mut done: Vec<(u64, String)> = Vec::with_capacity(together);
        let mut claimed: Vec<(u64, &Line)> = Vec::with_capacity(together);
        loop {
            // Hand the last results over and claim the next lines in one step, so that an
            // abandoning drain sees every claimed line that has no result yet.
            {
                let mut slot = self.slot();
                if slot.taken {
                    return false;
                }
                for (seq, line) in done.drain(..) {
                    if lines.send(Message::Reply(seq, line)).is_err() {
                        return false;
                    }
                }
                claimed.clear();
                claimed.extend(batch.claim());
                if together > 1 {
                    // Together only with lines of the same event: they reach the same
                    // plugins, so a call that hangs holds back only lines that would wait
                    // on that plugin anyway, never another event's.
                    if let Some(&(_, first)) = claimed.first() {
                        let event = first.event();
                        while claimed.len() < together {
                            match batch.claim_if(|line| line.event() == event) {
                                Some(line) => claimed.push(line),
                                None => break,
                            }
                        }
                    }
                }
                slot.running.clear();
                slot.running.extend(claimed.iter().map(|&(seq, _)| seq));
            }
            if claimed.is_empty() {
                self.events.flush();
                return true;
            }
            for (&(seq, _), outcomes) in claimed.iter().zip(&mut self.outcomes) {
                outcomes.timed = seq % TIME_ONE_IN == 0;
            }
            if let [(seq, line)] = claimed[..] {
                let outcomes = &mut self.outcomes[0];
                let forward = self.forward.as_deref();
                let counting = (&mut self.report, &mut self.events);
                let reply = handle(generation, seq, line, outcomes, counting, forward);
                self.tally.add(outcomes);
                done.push((seq, reply));
            } else {
                let replies = handle_batch(
                    generation,
                    &claimed,
                    &mut self.outcomes,
                    (&mut self.report, &mut self.events),
                    self.forward.as_deref(),
                );
                for (&(seq, _), (reply, outcomes)) in
                    claimed.iter().zip(replies.into_iter().zip(&self.outcomes))
                {
                    self.tally.add(outcomes);
                    done.push((seq, reply));
                }
            }
            self.publish();
        }
    }

    /// Makes this worker's counts readable by the drain (only this worker writes them).
    fn publish(&self) {
        let (counts, report) = (self.counts, &self.report);
        let store = |field: &AtomicU64, value: u64| field.store(value, Ordering::Relaxed);
        store(&counts.dispatched, report.dispatched);
        store(&counts.bad_lines, report.bad_lines);
        store(&counts.failed_events, report.failed_events);
        store(&counts.consumed, report.consumed);
        store(&counts.consumed_failed, report.consumed_failed);
        store(&counts.requests, report.requests);
        store(&counts.requests_failed, report.requests_failed);
    }
}
