//! The running service: one bounded queue, one pool of workers, the sources that feed it,
//! and the one drain that answers every accepted event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::json;

use super::counts::{EventCounts, Refusal, Tallies};
use super::output::Message;
use super::queue::{Batch, Queue};
use super::recent::{Failure, Recent};
use super::request::{deliver, Abandoned, Answer, Request};
use super::sources::{QueueIntake, SourceOf};
use super::worker::{self, Duties, Worker};
use super::{Busy, Intake, Report, ServiceConfig, Stop, MAX_QUEUE, MAX_WORKERS};
use crate::runtime::Switchboard;

/// The event service, running: submit [`Request`]s to it from any thread (share it in an
/// `Arc`), let [`Source`](super::Source)s feed it, and [`drain`](Service::drain) it to
/// stop. `serve`
/// is this service behind HTTP; [`run_json_lines`](super::run_json_lines) is it fed from a
/// reader.
///
/// ```no_run
/// use switchboard::service::{Answer, Request, Service, ServiceConfig};
/// use switchboard::Switchboard;
///
/// let host = Switchboard::open("events.toml".as_ref())?;
/// let service = Service::start(&host, &ServiceConfig::default())?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let args = serde_json::json!({"name": "Ann", "email": "ann@example.com"});
/// let request = Request {
///     event: "user_joined".into(),
///     args: args.as_object().cloned().unwrap_or_default(),
///     id: "signup-1".into(),
///     reply: Box::new(move |answer: Answer<'_>| {
///         let ok = matches!(&answer, Answer::Dispatched { outcomes, .. } if !outcomes.has_failures());
///         let _ = tx.send(ok);
///     }),
/// };
/// if service.submit(request).is_ok() {
///     println!("every callback succeeded: {}", rx.recv()?);
/// }
/// let report = service.stop();
/// println!("{} requests answered", report.requests);
/// host.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Service {
    queue: Arc<Queue>,
    workers: Vec<Worker>,
    /// Where result lines go, when the service reads lines.
    lines: Option<Sender<Message>>,
    sources: Vec<SourceOf>,
    drain_timeout: Duration,
    recent: Arc<Recent>,
    /// What was refused at the door: by a front end before it submitted, or by the drain.
    door: Arc<Tallies>,
    /// The host, to tell declared events (counted) from others (not).
    host: crate::runtime::CurrentGeneration,
    /// What the drain gave up on so far (a drain may give up more than once: `serve`
    /// answers its requests before it stops its sources).
    gave_up: Mutex<GaveUp>,
    /// Set once a drain began: dropping the service then has nothing left to stop.
    drained: AtomicBool,
}

#[derive(Default)]
struct GaveUp {
    /// Whether a drain gave up at all.
    happened: bool,
    abandoned: u64,
    still_running: Vec<u64>,
}

/// Why a [`Service`] could not start; nothing it started is left running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A worker thread could not be started.
    #[error("cannot start worker {n} of {count}: {source}; ask for fewer workers")]
    Worker {
        /// Which one, from 1.
        n: usize,
        /// How many were asked for.
        count: usize,
        /// Why.
        source: std::io::Error,
    },
    /// A source (a NATS consumer) refused to start: why.
    #[error("cannot start taking events from a source: {0}")]
    Source(String),
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("workers", &self.workers.len())
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Starts the workers on `host`, then the sources of `config`; why not, if a thread
    /// could not start or a source refused (nothing is left running then).
    pub fn start(host: &Switchboard, config: &ServiceConfig) -> Result<Service, StartError> {
        Service::start_with(host, config, None)
    }

    /// As [`Service::start`], with result lines of batches going to `lines`.
    pub(super) fn start_with(
        host: &Switchboard,
        config: &ServiceConfig,
        lines: Option<Sender<Message>>,
    ) -> Result<Service, StartError> {
        let queue = Arc::new(Queue::new(config.queue.clamp(1, MAX_QUEUE)));
        let recent = Arc::new(Recent::default());
        let mut service = Service {
            queue: Arc::clone(&queue),
            workers: Vec::new(),
            lines,
            sources: Vec::new(),
            drain_timeout: config.drain_timeout,
            recent: Arc::clone(&recent),
            door: Arc::default(),
            host: host.watch(),
            gave_up: Mutex::new(GaveUp::default()),
            drained: AtomicBool::new(false),
        };
        let count = config.workers.clamp(1, MAX_WORKERS);
        for n in 0..count {
            let duties = Duties {
                host: host.watch(),
                queue: Arc::clone(&queue),
                lines: service.lines.clone(),
                forward: config.forward.as_ref().map(|f| Arc::clone(&f.0)),
                recent: Arc::clone(&recent),
            };
            match worker::spawn(n, duties) {
                Ok(worker) => service.workers.push(worker),
                Err(source) => {
                    return Err(StartError::Worker {
                        n: n + 1,
                        count,
                        source,
                    })
                }
            }
        }
        let intake = service.intake();
        for source in &config.sources {
            if let Err(why) = source.0.start(Arc::clone(&intake)) {
                return Err(StartError::Source(why));
            }
            service.sources.push(source.clone());
        }
        Ok(service)
    }

    /// Queues `request` for the workers; when it cannot now, why (the queue is full, or
    /// the service is stopping), with the request handed back unanswered.
    pub fn submit(&self, request: Request) -> Result<(), Box<(Busy, Request)>> {
        self.queue.request(request)
    }

    /// Counts an event of the declared `event` that a front end refused for `why` before
    /// submitting it (a body that was not JSON, a full queue), so that the service's
    /// counts hold every event it was sent.
    pub fn refused(&self, event: &str, why: Refusal) {
        self.door.refused(event, why);
    }

    /// What happened so far to the events of each declared event, from every source:
    /// received, forwarded, refused by reason.
    pub fn event_counts(&self) -> std::collections::BTreeMap<String, EventCounts> {
        let mut all = std::collections::BTreeMap::new();
        self.door.add_to(&mut all);
        for worker in &self.workers {
            worker.events.add_to(&mut all);
        }
        all
    }

    /// The service as an [`Intake`], for a source started by hand.
    pub fn intake(&self) -> Arc<dyn Intake> {
        Arc::new(QueueIntake {
            queue: Arc::clone(&self.queue),
            door: Arc::clone(&self.door),
        })
    }

    /// Events waiting for a worker.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }

    /// The most recent failed or skipped calls of requests and sources' events, newest
    /// first (at most [`RECENT_FAILURES`](super::RECENT_FAILURES)).
    pub fn recent_failures(&self) -> Vec<Failure> {
        self.recent.newest_first()
    }

    /// What the service has done so far.
    pub fn report(&self) -> Report {
        let mut report = Report::default();
        for worker in &self.workers {
            worker.counts.add_to(&mut report);
        }
        let gave_up = self.gave_up.lock().unwrap_or_else(|e| e.into_inner());
        report.gave_up = gave_up.happened;
        report.abandoned = gave_up.abandoned;
        report.still_running.clone_from(&gave_up.still_running);
        drop(gave_up);
        report.events = self.event_counts();
        report
    }

    /// The queue, for the writer of result lines (which makes room as it writes).
    pub(super) fn queue(&self) -> Arc<Queue> {
        Arc::clone(&self.queue)
    }

    /// Whether sources feed the service.
    pub(super) fn has_sources(&self) -> bool {
        !self.sources.is_empty()
    }

    /// Queues lines for the workers, waiting up to `wait` for room: how many it took
    /// (from the front of `lines`), 0 if there was no room.
    pub(super) fn push_lines(
        &self,
        first: u64,
        lines: &mut Vec<super::json_lines::Line>,
        wait: Duration,
    ) -> usize {
        let room = self.queue.room(wait);
        if room == 0 {
            return 0;
        }
        let rest = lines.split_off(room.min(lines.len()));
        let taken = std::mem::replace(lines, rest);
        let count = taken.len();
        self.queue.push(Batch::new(first, taken));
        count
    }

    /// Gives up on every accepted event that has no answer yet, now, and takes the
    /// workers off duty: a request gets [`Answer::Abandoned`], a line its error line, a
    /// source's event is dropped (its broker delivers it again). For a drain whose time
    /// ran out; [`Service::drain`] calls it then.
    pub fn abandon(&self) {
        let mut abandoned = 0;
        let mut running = Vec::new();
        for worker in &self.workers {
            let mut slot = worker.slot.lock().unwrap_or_else(|e| e.into_inner());
            slot.taken = true;
            running.extend(std::mem::take(&mut slot.running));
            if let Some(reply) = slot.request.take() {
                drop(slot);
                abandoned += 1;
                deliver(reply, Answer::Abandoned(Abandoned::StillRunning));
            }
        }
        running.sort_unstable();
        for &seq in &running {
            let error = format!(
                "event {seq} was still running when the host stopped; its callbacks may have run in part (a callback that never returns needs isolation = \"process\")"
            );
            self.line(seq, json!({"seq": seq, "error": error}).to_string());
        }
        abandoned += running.len() as u64;
        let unclaimed = self.queue.take_unclaimed();
        for (seq, id) in unclaimed.lines {
            abandoned += 1;
            let error = "not dispatched: the host stopped before this event ran";
            self.line(
                seq,
                json!({"seq": seq, "id": id, "error": error}).to_string(),
            );
        }
        for request in unclaimed.requests {
            abandoned += 1;
            if self.host.get().event(&request.event).is_ok() {
                self.door.refused(&request.event, Refusal::Stopping);
            }
            deliver(request.reply, Answer::Abandoned(Abandoned::NotStarted));
            self.queue.written(1);
        }
        if unclaimed.offers > 0 {
            tracing::warn!("{} events from sources were not dispatched before the stop; their source delivers them again", unclaimed.offers);
        }
        if abandoned > 0 {
            tracing::warn!(
                "gave up on {abandoned} accepted events ({} still running)",
                running.len()
            );
        }
        let mut gave_up = self.gave_up.lock().unwrap_or_else(|e| e.into_inner());
        gave_up.happened = true;
        gave_up.abandoned += abandoned;
        gave_up.still_running.extend(running);
        gave_up.still_running.sort_unstable();
    }

    /// Hands a result line to the writer.
    fn line(&self, seq: u64, line: String) {
        if let Some(lines) = &self.lines {
            let _ = lines.send(Message::Reply(seq, line));
        }
    }

    /// Stops: the sources take nothing more and finish their events in flight, the queue
    /// takes nothing more, and the workers finish every accepted event. With `stop`
    /// requested (now or while waiting), within the drain timeout from then; past it, or
    /// once `stop` is abandoned, what is left is abandoned ([`Service::abandon`]). What the
    /// service did.
    pub fn drain(&self, stop: &Stop) -> Report {
        if self.drained.swap(true, Ordering::AcqRel) {
            // Drained already (or being drained on another thread): what it did so far.
            return self.report();
        }
        let mut deadline = stop
            .requested()
            .then(|| Instant::now() + self.drain_timeout);
        // Sources first: they take nothing more and wait for their events in flight
        // (which the workers go on with) to finish and be acknowledged.
        let mut sources_drained = true;
        for source in &self.sources {
            let within = deadline.map_or(self.drain_timeout, |d| {
                d.saturating_duration_since(Instant::now())
            });
            sources_drained &= source.0.stop(within);
        }
        self.queue.close();
        loop {
            if self.workers.iter().all(|w| w.thread.is_finished()) {
                break;
            }
            if stop.requested() && deadline.is_none() {
                deadline = Some(Instant::now() + self.drain_timeout);
            }
            if stop.abandoned() || deadline.is_some_and(|d| Instant::now() >= d) {
                self.abandon();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let gave_up = self
            .gave_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .happened;
        if gave_up {
            // Work that arrived after an earlier give-up found no worker on duty.
            self.abandon();
        }
        let mut report = self.report();
        report.sources_drained = sources_drained;
        report
    }

    /// Stops within the drain timeout ([`Service::drain`] with a stop requested now).
    pub fn stop(&self) -> Report {
        let stop = Stop::new();
        stop.drain();
        self.drain(&stop)
    }
}

impl Drop for Service {
    /// A service dropped without a drain takes nothing more: its sources stop (without
    /// waiting) and its workers finish what is queued.
    fn drop(&mut self) {
        if !self.drained.load(Ordering::Acquire) {
            for source in &self.sources {
                source.0.stop(Duration::ZERO);
            }
            self.queue.close();
        }
    }
}
