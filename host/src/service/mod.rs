//! The event service: a stream of events through one bounded queue and a pool of worker
//! threads, with ordered output, a graceful drain, and counters kept by the host. The
//! `switchboard run` command is this service fed from standard input; [`Source`]s (a NATS
//! consumer, [`ServiceConfig::with_source`]) feed the same queue and workers.
//!
//! Threads: a reader turns the input into batches of lines; the calling thread accepts them
//! while there is room (events accepted but not yet written stay under the queue bound, so
//! memory is bounded even behind a stuck event); workers claim events one at a time, each
//! on the generation that is current when it takes up a batch; a writer prints.
//!
//! Stopping: at the end of the input every accepted event is finished. On a stop request
//! ([`Stop::drain`], as `run` does on SIGINT or SIGTERM) no more input is accepted and the
//! accepted events are finished within [`ServiceConfig::drain_timeout`]; past it, or on
//! [`Stop::abandon`], every accepted event still without a result gets an error line
//! instead (a callback that never returns cannot be stopped in-process), so that each
//! accepted line still gets exactly one result line.

mod bridge;
mod input;
mod json_lines;
mod output;
mod queue;
mod sources;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, RecvTimeoutError, Sender};
use serde_json::json;

pub use bridge::{
    made_up_id, Begun, Busy, Crossing, Done, Forward, Handled, Intake, Offer, Outgoing, Source,
    Traffic,
};
pub use json_lines::OutcomesJson;
use json_lines::{handle, handle_batch, Line};
use output::Message;
use queue::{Batch, Queue, Work};
pub use sources::SourceOf;
use sources::{take_in, QueueIntake};

use crate::dispatch::{Generation, Outcomes, Tally};
use crate::runtime::{CurrentGeneration, Switchboard};

/// The most lines that travel together from the reader.
const BATCH: usize = 256;

/// The most events a worker dispatches together when a plugin is isolated (their calls to
/// each worker process travel in one frame) or events are forwarded (their publishes wait
/// for their acknowledgements together); see BENCHMARKS.md for the throughput.
const ISOLATED_BATCH: usize = 128;

/// One emit in this many is timed per worker, for the counters' time spent: timing every
/// call made `run` 1.13x slower (see BENCHMARKS.md).
const TIME_ONE_IN: u64 = 64;

/// The most workers and the largest queue the service accepts.
pub const MAX_WORKERS: usize = 512;
/// See [`MAX_WORKERS`].
pub const MAX_QUEUE: usize = 1_000_000;

/// Each worker's stack: at least what the main thread has (8 MiB on Linux), so that a
/// callback that runs under `emit` also runs under `run`. Untouched stack costs no memory.
const WORKER_STACK: usize = 16 * 1024 * 1024;

/// A [`Forward`], in a [`ServiceConfig`].
#[derive(Clone)]
pub struct ForwardTo(pub Arc<dyn Forward>);

impl std::fmt::Debug for ForwardTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardTo(..)")
    }
}

/// How the service runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Worker threads dispatching events (1 to [`MAX_WORKERS`]).
    pub workers: usize,
    /// Events accepted and not yet written out (1 to [`MAX_QUEUE`]); when that many are in
    /// the service, reading waits.
    pub queue: usize,
    /// Write result lines in input order, even with several workers.
    pub ordered: bool,
    /// The longest input line, in bytes; a longer one is dropped and answered with an
    /// error, and the run goes on.
    pub max_line_bytes: usize,
    /// After a stop request, how long accepted events may take to finish before they are
    /// answered with an error instead.
    pub drain_timeout: Duration,
    /// Where events that are not dispatched here go instead, if anywhere.
    pub forward: Option<ForwardTo>,
    /// Where events come from beside the input (a NATS consumer): started once the
    /// workers run. With a source, the end of the input does not end the run: it goes on
    /// taking the sources' events until a stop request, then stops them before the drain.
    pub sources: Vec<SourceOf>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue: 1024,
            ordered: false,
            max_line_bytes: 16 * 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
            forward: None,
            sources: Vec::new(),
        }
    }
}

impl ServiceConfig {
    /// Sets the number of workers (clamped to 1..=[`MAX_WORKERS`]).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.clamp(1, MAX_WORKERS);
        self
    }

    /// Sets the queue bound, in events (clamped to 1..=[`MAX_QUEUE`]).
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue.clamp(1, MAX_QUEUE);
        self
    }

    /// Sets whether result lines keep input order.
    pub fn with_ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Sets the longest input line, in bytes (at least 1).
    pub fn with_max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// Sets how long a stop waits for accepted events.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Sends the events `forward` takes there instead of dispatching them.
    pub fn with_forward(mut self, forward: Arc<dyn Forward>) -> Self {
        self.forward = Some(ForwardTo(forward));
        self
    }

    /// Adds a source of events beside the input (see [`ServiceConfig::sources`]).
    pub fn with_source(mut self, source: Arc<dyn Source>) -> Self {
        self.sources.push(SourceOf(source));
        self
    }
}

/// A request to stop the service, set from another thread (a signal handler's thread).
#[derive(Debug, Default)]
pub struct Stop(AtomicU8);

const RUNNING: u8 = 0;
const DRAIN: u8 = 1;
const ABANDON: u8 = 2;

impl Stop {
    /// Not stopping.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Stop accepting input; finish the accepted events within the drain timeout.
    pub fn drain(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, DRAIN, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Stop now: answer every unfinished event with an error.
    pub fn abandon(&self) {
        self.0.store(ABANDON, Ordering::Release);
    }

    fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire) != RUNNING
    }

    fn abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == ABANDON
    }
}

/// What a run of the service did. Per-plugin and per-callback counts are the host's own:
/// read them from the generation ([`Generation::plugins`](crate::Generation::plugins)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Lines accepted into the service (each got exactly one result line).
    pub accepted: u64,
    /// Events dispatched (and finished).
    pub dispatched: u64,
    /// Lines that could not be dispatched (not JSON, not UTF-8, too long, bad arguments).
    pub bad_lines: u64,
    /// Dispatched events in which a callback failed or was skipped.
    pub failed_events: u64,
    /// Whether a stop request ended the run.
    pub stopped: bool,
    /// Whether input was left unread because of the stop.
    pub input_remained: bool,
    /// Accepted events answered with an error because the drain gave up on them: not yet
    /// started, or still running (see `still_running`).
    pub abandoned: u64,
    /// The events whose callbacks were still running when the drain gave up.
    pub still_running: Vec<u64>,
    /// Whether the output was closed by its reader (a broken pipe): the run stopped reading
    /// then, and results after that point were not written.
    pub output_closed: bool,
    /// Why writing the output failed otherwise (a full disk, say): the run stopped reading
    /// then, and results after that point were not written.
    pub output_failed: Option<String>,
    /// Events from sources dispatched here (each answered to its source).
    pub consumed: u64,
    /// Of those, the ones in which a callback failed or was skipped, or that the host
    /// refused (their source delivers them again, or gives up on them).
    pub consumed_failed: u64,
    /// Whether every source's events in flight finished before the drain timeout.
    pub sources_drained: bool,
}

/// What one worker is doing, guarded so that the worker and an abandoning drain never
/// both answer the same event.
#[derive(Default)]
struct Slot {
    /// The events being dispatched (claimed, results not yet handed to the writer).
    running: Vec<u64>,
    /// The drain gave up: the worker hands nothing more over and stops.
    taken: bool,
}

/// A worker's counts, published after every event (plain stores: only its worker writes).
#[derive(Default)]
#[repr(align(128))]
struct Published {
    dispatched: AtomicU64,
    bad_lines: AtomicU64,
    failed_events: AtomicU64,
    consumed: AtomicU64,
    consumed_failed: AtomicU64,
}

struct Worker {
    slot: Arc<Mutex<Slot>>,
    counts: Arc<Published>,
    thread: std::thread::JoinHandle<()>,
}

/// Runs JSON-lines events from `input` through `host`, writing one result line per
/// non-blank accepted input line to `output`, until the input ends or `stop` is requested.
///
/// Input line: `{"event": "user_joined", "args": {...}, "id": "optional"}`. Result line:
/// `{"seq": N, "id": ..., "event": ..., "ok": bool, "results": [...]}`, or `{"seq": N,
/// "id": ..., "error": "..."}` for a line that could not be dispatched (or was abandoned).
/// `seq` numbers the non-blank input lines from 1.
///
/// The input is read on a thread of its own, so that `stop` works while a read blocks;
/// that thread, and a worker stuck in a callback that never returns, are left behind.
pub fn run_json_lines<R, W>(
    host: &Switchboard,
    input: R,
    output: W,
    config: &ServiceConfig,
    stop: &Stop,
) -> std::io::Result<Report>
where
    R: Read + Send + 'static,
    W: Write + Send,
{
    let queue = Arc::new(Queue::new(config.queue.clamp(1, MAX_QUEUE)));
    let (tx, rx) = unbounded::<Message>();
    let mut workers = Vec::new();
    for n in 0..config.workers.clamp(1, MAX_WORKERS) {
        let forward = config.forward.as_ref().map(|f| Arc::clone(&f.0));
        match spawn_worker(n, host.watch(), &queue, &tx, forward) {
            Ok(worker) => workers.push(worker),
            Err(e) => {
                queue.close();
                return Err(std::io::Error::other(format!(
                    "cannot start worker {} of {}: {e}; ask for fewer workers",
                    n + 1,
                    config.workers
                )));
            }
        }
    }
    let intake: Arc<dyn Intake> = Arc::new(QueueIntake(Arc::clone(&queue)));
    for (n, source) in config.sources.iter().enumerate() {
        if let Err(why) = source.0.start(Arc::clone(&intake)) {
            for started in &config.sources[..n] {
                started.0.stop(config.drain_timeout);
            }
            queue.close();
            return Err(std::io::Error::other(format!(
                "cannot start taking events from a source: {why}"
            )));
        }
    }
    let lines = input::read_in_background(input, config.max_line_bytes);
    let _flushable = output::register(tx.clone());

    let mut report = Report::default();
    std::thread::scope(|scope| -> std::io::Result<()> {
        let writer = scope.spawn(|| output::write_results(output, rx, config.ordered, &queue));
        let mut input_done = false;
        'accept: loop {
            if stop.requested() || writer.is_finished() {
                break;
            }
            let mut batch = match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    input_done = true;
                    break;
                }
            };
            while !batch.is_empty() {
                let room = queue.room(Duration::from_millis(50));
                if room == 0 {
                    if stop.requested() || writer.is_finished() {
                        break 'accept;
                    }
                    continue;
                }
                let rest = batch.split_off(room.min(batch.len()));
                let count = batch.len() as u64;
                queue.push(Batch::new(report.accepted + 1, batch));
                report.accepted += count;
                batch = rest;
            }
        }
        if input_done && !config.sources.is_empty() {
            // The sources go on until a stop request.
            tracing::info!(
                "the input ended; taking events from the sources until stopped (SIGINT or SIGTERM)"
            );
            while !stop.requested() && !writer.is_finished() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        report.stopped = stop.requested();
        report.input_remained = report.stopped && !input_done;
        if report.stopped {
            tracing::info!(
                "stopping: finishing the {} accepted events (at most {} s)",
                report.accepted,
                config.drain_timeout.as_secs_f64()
            );
        }
        let mut deadline = report
            .stopped
            .then(|| Instant::now() + config.drain_timeout);
        // Sources first: they take nothing more and wait for their events in flight
        // (which the workers go on with) to finish and be acknowledged.
        report.sources_drained = true;
        for source in &config.sources {
            let within = deadline.map_or(config.drain_timeout, |d| {
                d.saturating_duration_since(Instant::now())
            });
            report.sources_drained &= source.0.stop(within);
        }
        queue.close();

        // Drain: the workers finish every accepted event, unless a stop gives up on them.
        loop {
            if workers.iter().all(|w| w.thread.is_finished()) {
                break;
            }
            if stop.requested() && deadline.is_none() {
                report.stopped = true;
                deadline = Some(Instant::now() + config.drain_timeout);
            }
            if stop.abandoned() || deadline.is_some_and(|d| Instant::now() >= d) {
                abandon(&workers, &queue, &tx, &mut report);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = tx.send(Message::Finish);
        for worker in &workers {
            report.dispatched += worker.counts.dispatched.load(Ordering::Relaxed);
            report.bad_lines += worker.counts.bad_lines.load(Ordering::Relaxed);
            report.failed_events += worker.counts.failed_events.load(Ordering::Relaxed);
            report.consumed += worker.counts.consumed.load(Ordering::Relaxed);
            report.consumed_failed += worker.counts.consumed_failed.load(Ordering::Relaxed);
        }
        match writer.join() {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                report.output_closed = true;
                Ok(())
            }
            Ok(Err(e)) => {
                report.output_failed = Some(e.to_string());
                Ok(())
            }
            Ok(Ok(())) => Ok(()),
            Err(_) => Err(std::io::Error::other("the writer thread panicked")),
        }
    })?;
    Ok(report)
}

/// Writes out at once every result line the services running in this process have
/// (lines held back for `ordered` output too), waiting `within` at most: for a process
/// that is ending under its services (a plugin called `exit()`), so that results already
/// computed still reach the reader. How many result lines were written in all, or `None`
/// if a service's writer did not answer in time.
#[doc(hidden)]
pub fn flush_results_now(within: Duration) -> Option<u64> {
    output::flush_now(within)
}

/// Answers every accepted event that has no result yet, and takes the workers off duty.
fn abandon(workers: &[Worker], queue: &Queue, tx: &Sender<Message>, report: &mut Report) {
    for worker in workers {
        let mut slot = worker.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.taken = true;
        for seq in std::mem::take(&mut slot.running) {
            report.still_running.push(seq);
            let error = format!(
                "event {seq} was still running when the host stopped; its callbacks may have run in part (a callback that never returns needs isolation = \"process\")"
            );
            let _ = tx.send(Message::Reply(
                seq,
                json!({"seq": seq, "error": error}).to_string(),
            ));
        }
    }
    report.still_running.sort_unstable();
    report.abandoned = report.still_running.len() as u64;
    let (unclaimed, offers) = queue.take_unclaimed();
    for (seq, id) in unclaimed {
        report.abandoned += 1;
        let error = "not dispatched: the host stopped before this event ran";
        let line = json!({"seq": seq, "id": id, "error": error}).to_string();
        let _ = tx.send(Message::Reply(seq, line));
    }
    if offers > 0 {
        tracing::warn!("{offers} events from sources were not dispatched before the stop; their source delivers them again");
    }
    tracing::warn!(
        "gave up on {} accepted events ({} still running)",
        report.abandoned,
        report.still_running.len()
    );
}

fn spawn_worker(
    n: usize,
    host: CurrentGeneration,
    queue: &Arc<Queue>,
    tx: &Sender<Message>,
    forward: Option<Arc<dyn Forward>>,
) -> std::io::Result<Worker> {
    let slot = Arc::new(Mutex::new(Slot::default()));
    let counts = Arc::new(Published::default());
    let thread = std::thread::Builder::new()
        .name(format!("switchboard-worker-{n}"))
        .stack_size(WORKER_STACK)
        .spawn({
            let (slot, counts, queue, tx) = (
                Arc::clone(&slot),
                Arc::clone(&counts),
                Arc::clone(queue),
                tx.clone(),
            );
            move || work(&host, &queue, &tx, &slot, &counts, forward)
        })?;
    Ok(Worker {
        slot,
        counts,
        thread,
    })
}

/// A worker: claims events one at a time and dispatches each on the generation current
/// when it took up the batch, counting into its own tally.
fn work(
    host: &CurrentGeneration,
    queue: &Queue,
    tx: &Sender<Message>,
    slot: &Mutex<Slot>,
    counts: &Published,
    forward: Option<Arc<dyn Forward>>,
) {
    let mut duty = Duty {
        forward,
        tx,
        slot,
        counts,
        report: Report::default(),
        tally: Tally::new(),
        outcomes: Vec::new(),
    };
    while let Some(work) = queue.next_work() {
        let batch = match work {
            Work::Lines(batch) => batch,
            Work::Offer(mut offer) => {
                let generation = host.get();
                // Counts for this generation (a reload may have come since the last event).
                generation.absorb(&mut duty.tally);
                if duty.outcomes.is_empty() {
                    duty.outcomes.push(Outcomes::new());
                }
                let outcomes = &mut duty.outcomes[0];
                outcomes.timed = duty.report.consumed.is_multiple_of(TIME_ONE_IN);
                let handled = take_in(&generation, &mut offer, outcomes);
                if !matches!(handled, Handled::Refused(_)) {
                    duty.tally.add(outcomes);
                    generation.absorb(&mut duty.tally);
                }
                duty.report.consumed += 1;
                duty.report.consumed_failed += u64::from(handled != Handled::Completed);
                duty.publish();
                (offer.done)(handled);
                queue.written(1);
                continue;
            }
        };
        let generation = batch.generation(|| host.get());
        generation.absorb(&mut duty.tally);
        let carry_on = duty.work_on(&generation, &batch);
        // Counted calls reach the host's counters however the batch ended.
        generation.absorb(&mut duty.tally);
        if !carry_on {
            return;
        }
    }
}

/// What one worker holds while it works: where results go, its slot and counts, and the
/// buffers it reuses from event to event.
struct Duty<'w> {
    forward: Option<Arc<dyn Forward>>,
    tx: &'w Sender<Message>,
    slot: &'w Mutex<Slot>,
    counts: &'w Published,
    report: Report,
    tally: Tally,
    /// One per event dispatched together.
    outcomes: Vec<Outcomes>,
}

impl Duty<'_> {
    /// Claims and dispatches lines of one batch until it is exhausted; `false` when the
    /// worker must stop (the writer is gone, or an abandoning drain took it off duty).
    /// Lines are claimed one at a time, or several together when a plugin is isolated or
    /// events are forwarded.
    fn work_on(&mut self, generation: &Generation, batch: &Batch) -> bool {
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
                let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
                if slot.taken {
                    return false;
                }
                for (seq, line) in done.drain(..) {
                    if self.tx.send(Message::Reply(seq, line)).is_err() {
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
                return true;
            }
            for (&(seq, _), outcomes) in claimed.iter().zip(&mut self.outcomes) {
                outcomes.timed = seq % TIME_ONE_IN == 0;
            }
            if let [(seq, line)] = claimed[..] {
                let outcomes = &mut self.outcomes[0];
                let forward = self.forward.as_deref();
                let reply = handle(generation, seq, line, outcomes, &mut self.report, forward);
                self.tally.add(outcomes);
                done.push((seq, reply));
            } else {
                let replies = handle_batch(
                    generation,
                    &claimed,
                    &mut self.outcomes,
                    &mut self.report,
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
        counts
            .dispatched
            .store(report.dispatched, Ordering::Relaxed);
        counts.bad_lines.store(report.bad_lines, Ordering::Relaxed);
        counts
            .failed_events
            .store(report.failed_events, Ordering::Relaxed);
        counts.consumed.store(report.consumed, Ordering::Relaxed);
        counts
            .consumed_failed
            .store(report.consumed_failed, Ordering::Relaxed);
    }
}
