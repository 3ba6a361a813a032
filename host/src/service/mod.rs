//! The event service: a stream of events through one bounded queue and a pool of worker
//! threads, with ordered output, a graceful drain, and counters kept by the host. The
//! `switchboard run` command is this service fed from standard input; other sources (HTTP,
//! NATS) feed the same queue.
//!
//! Threads: a reader turns the input into batches of lines; the calling thread numbers
//! them and accepts them into the bounded queue (when it is full, reading waits); workers
//! dispatch, each on the generation that is current when it takes a batch; a writer prints.
//! On end of input or when `stop` is set, the caller stops accepting, the workers finish
//! every accepted event, and [`run_json_lines`] returns its [`Report`].
//!
//! Lines travel in batches: every line already read when the reader would otherwise wait
//! for more, up to 256. A file or a fast producer fills batches, so the threads hand
//! over work (and wake each other) once per batch instead of once per line; a slow
//! producer's line travels alone, at once.

mod json_lines;

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

pub use json_lines::OutcomesJson;
use json_lines::{handle, Line};

use crate::dispatch::{Outcomes, Tally};
use crate::runtime::Switchboard;

/// The most lines that travel together between the threads.
const BATCH: usize = 256;

/// One emit in this many is timed per worker, for the counters' time spent; timing every
/// call would cost the dispatch loop two clock reads per callback.
const TIME_ONE_IN: u64 = 64;

/// How the service runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Worker threads dispatching events (at least 1).
    pub workers: usize,
    /// Events accepted ahead of the workers; when the queue is full, reading waits.
    /// Rounded up to whole batches.
    pub queue: usize,
    /// Write result lines in input order, even with several workers.
    pub ordered: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue: 1024,
            ordered: false,
        }
    }
}

impl ServiceConfig {
    /// Sets the number of workers (at least 1).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Sets the queue bound, in events (at least 1).
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue.max(1);
        self
    }

    /// Sets whether result lines keep input order.
    pub fn with_ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }
}

/// What a run of the service did. Per-plugin and per-callback counts are the host's own:
/// read them from the generation ([`Generation::plugins`](crate::Generation::plugins)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Lines accepted into the queue (each got exactly one result line).
    pub accepted: u64,
    /// Events dispatched.
    pub dispatched: u64,
    /// Lines that could not be dispatched (not JSON, not UTF-8, bad arguments...).
    pub bad_lines: u64,
    /// Dispatched events in which a callback failed or was skipped.
    pub failed_events: u64,
    /// Whether `stop` ended the run before the end of the input.
    pub stopped: bool,
}

impl Report {
    fn add(&mut self, worker: &Report) {
        self.dispatched += worker.dispatched;
        self.bad_lines += worker.bad_lines;
        self.failed_events += worker.failed_events;
    }
}

/// Lines numbered from `first`, in input order.
struct Batch<T> {
    first: u64,
    lines: Vec<T>,
}

/// Runs JSON-lines events from `input` through `host`, writing one result line per
/// non-blank input line to `output`, until the input ends or `stop` is set; then finishes
/// every accepted event and returns.
///
/// Input line: `{"event": "user_joined", "args": {...}, "id": "optional"}`. Result line:
/// `{"seq": N, "id": ..., "event": ..., "ok": bool, "results": [...]}`, or `{"seq": N,
/// "id": ..., "error": "..."}` for a line that could not be dispatched. `seq` numbers the
/// non-empty input lines from 1.
///
/// The input is read on a thread of its own, so that `stop` works while a read blocks;
/// that thread is left behind if the input never ends.
pub fn run_json_lines<R, W>(
    host: &Switchboard,
    input: R,
    output: W,
    config: &ServiceConfig,
    stop: &AtomicBool,
) -> std::io::Result<Report>
where
    R: Read + Send + 'static,
    W: Write + Send,
{
    let lines = read_lines_in_background(input);
    // The queue bound is in events; a batch holds up to BATCH of them.
    let capacity = config.queue.max(1).div_ceil(BATCH);
    let (work_tx, work_rx) = bounded::<Batch<Line>>(capacity);
    let (out_tx, out_rx) = bounded::<Batch<String>>(capacity);

    let mut report = Report::default();
    std::thread::scope(|scope| -> std::io::Result<()> {
        let writer = scope.spawn(move || write_results(output, out_rx, config.ordered));
        let workers: Vec<_> = (0..config.workers.max(1))
            .map(|_| {
                let (work_rx, out_tx) = (work_rx.clone(), out_tx.clone());
                scope.spawn(move || work(host, work_rx, out_tx))
            })
            .collect();
        drop((work_rx, out_tx));

        loop {
            if stop.load(Ordering::Relaxed) {
                report.stopped = true;
                break;
            }
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(lines) => {
                    let batch = Batch {
                        first: report.accepted + 1,
                        lines,
                    };
                    let count = batch.lines.len() as u64;
                    // Blocks while the queue is full: back-pressure on the reader.
                    if work_tx.send(batch).is_err() {
                        break;
                    }
                    report.accepted += count;
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if report.stopped {
            tracing::info!(
                "stopping: finishing the {} accepted events",
                report.accepted
            );
        }
        drop(work_tx);
        for worker in workers {
            match worker.join() {
                Ok(done) => report.add(&done),
                Err(_) => tracing::error!("a worker thread panicked; its counts are lost"),
            }
        }
        match writer.join() {
            Ok(written) => written,
            Err(_) => Err(std::io::Error::other("the writer thread panicked")),
        }
    })?;
    Ok(report)
}

/// Reads lines on a thread of its own and sends them in batches.
fn read_lines_in_background<R: Read + Send + 'static>(input: R) -> Receiver<Vec<Line>> {
    let (tx, rx) = bounded::<Vec<Line>>(4);
    std::thread::spawn(move || {
        let mut input = std::io::BufReader::with_capacity(64 * 1024, input);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let mut bytes = Vec::new();
            let (line, done) = match input.read_until(b'\n', &mut bytes) {
                Ok(0) => (None, true),
                Ok(_) => (Line::from_bytes(bytes), false),
                Err(e) => (Some(Line::Unreadable(e.to_string())), true),
            };
            batch.extend(line);
            // Send what we have before a read that could wait, or when the batch is full.
            let would_wait = input.buffer().is_empty();
            if !batch.is_empty() && (done || would_wait || batch.len() == BATCH) {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    });
    rx
}

/// A worker: dispatches batches on the current generation and counts them there.
fn work(host: &Switchboard, jobs: Receiver<Batch<Line>>, results: Sender<Batch<String>>) -> Report {
    let mut report = Report::default();
    let mut tally = Tally::new();
    let mut outcomes = Outcomes::new();
    for batch in jobs {
        // One generation per batch: a swap takes effect at the next batch.
        let generation = host.current();
        generation.absorb(&mut tally);
        let replies = (batch.first..)
            .zip(&batch.lines)
            .map(|(seq, line)| {
                outcomes.timed = seq % TIME_ONE_IN == 0;
                let reply = handle(&generation, seq, line, &mut outcomes, &mut report);
                tally.add(&outcomes);
                reply
            })
            .collect();
        generation.absorb(&mut tally);
        let replies = Batch {
            first: batch.first,
            lines: replies,
        };
        if results.send(replies).is_err() {
            break;
        }
    }
    report
}

/// Prints result lines as they come (or in `seq` order), flushing whenever no result is
/// waiting so that a slow producer still sees prompt output.
fn write_results<W: Write>(
    output: W,
    results: Receiver<Batch<String>>,
    ordered: bool,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, output);
    let mut pending = BTreeMap::new();
    let mut next = 1;
    loop {
        let batch = match results.try_recv() {
            Ok(batch) => batch,
            Err(_) => {
                out.flush()?;
                match results.recv() {
                    Ok(batch) => batch,
                    Err(_) => break,
                }
            }
        };
        if !ordered {
            write_lines(&mut out, &batch.lines)?;
            continue;
        }
        pending.insert(batch.first, batch.lines);
        while let Some(lines) = pending.remove(&next) {
            write_lines(&mut out, &lines)?;
            next += lines.len() as u64;
        }
    }
    for lines in pending.values() {
        write_lines(&mut out, lines)?;
    }
    out.flush()
}

fn write_lines(out: &mut impl Write, lines: &[String]) -> std::io::Result<()> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
