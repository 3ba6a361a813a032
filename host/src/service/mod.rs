//! The event service: one bounded queue and one pool of worker threads that every source
//! of events feeds, with one drain that answers every accepted event. [`Service`] is the
//! running service: [`Request`]s are submitted to it (`switchboard serve` submits one per
//! HTTP request; an embedding application may submit its own), [`Source`]s feed it
//! through its [`Intake`] (a NATS consumer), and [`run_json_lines`] feeds it lines from a
//! reader and writes one result line per event (`switchboard run`).
//!
//! Threads: workers claim events one at a time, each on the generation that is current
//! when it takes up its work (a batch of lines, a request, a source's event), dispatch or
//! forward it, count it, and answer it where it came from: a result line to the ordered
//! writer, a request's [`Reply`] (an HTTP answer, serialized on the worker), a source's
//! `done`. Events accepted but not yet answered stay under the queue bound, so memory is
//! bounded even behind a stuck event.
//!
//! Stopping ([`Service::drain`]): the sources stop taking events and finish theirs, the
//! queue takes nothing more, and every accepted event is finished, within
//! [`ServiceConfig::drain_timeout`] once a [`Stop`] is requested. Past it, or on
//! [`Stop::abandon`], every accepted event still without an answer gets a defined one
//! instead (a callback that never returns cannot be stopped in-process): a line gets an
//! error line, a request [`Answer::Abandoned`], a source's event is left to its broker to
//! deliver again.

mod bridge;
mod counts;
mod input;
mod json_lines;
mod output;
mod pool;
mod queue;
mod recent;
mod request;
mod run;
mod sources;
mod worker;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[doc(hidden)]
pub use bridge::{made_up_id, Crossing, Traffic};
pub use bridge::{Begun, Busy, Done, Forward, Handled, Intake, Offer, Outgoing, Source};
pub use counts::{EventCounts, Refusal};
pub use json_lines::OutcomesJson;
pub use pool::{Service, StartError};
pub use recent::{Failure, RECENT_FAILURES};
pub use request::{Abandoned, Answer, Reply, Request};
pub use run::run_json_lines;
#[doc(hidden)]
pub use sources::SourceOf;

/// The most workers and the largest queue the service accepts.
pub const MAX_WORKERS: usize = 512;
/// See [`MAX_WORKERS`].
pub const MAX_QUEUE: usize = 1_000_000;

/// A [`Forward`], in a [`ServiceConfig`].
#[derive(Clone)]
#[doc(hidden)]
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

    /// Whether a stop (a drain or an abandon) was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Acquire) != RUNNING
    }

    /// Whether an abandon was requested.
    pub fn abandoned(&self) -> bool {
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
    /// Lines dispatched (and finished), or forwarded.
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
    /// Whether the drain gave up on accepted events (its timeout ended, or it was
    /// abandoned): see `abandoned`.
    pub gave_up: bool,
    /// Requests answered by a worker (dispatched, forwarded or refused).
    pub requests: u64,
    /// Of those, the ones in which a callback failed or was skipped, whose forward
    /// failed, or that the host refused.
    pub requests_failed: u64,
    /// What happened to the events of each declared event, from every source.
    pub events: std::collections::BTreeMap<String, EventCounts>,
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
