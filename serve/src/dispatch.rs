//! The dispatch workers: event requests wait in one bounded queue and are dispatched
//! synchronously on threads of their own, never on the HTTP runtime's threads, so that a
//! slow callback holds back its own request and nothing else.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde_json::{Map, Value as Json};
use switchboard::service::{
    Begun, Busy, Done, Forward, Handled, Intake, Offer, OutcomesJson, Outgoing,
};
use switchboard::{CurrentGeneration, EmitError, Generation, Outcomes};
use tokio::sync::oneshot;

use crate::metrics::{Metrics, Refusal};

/// How many recent failures the status page shows.
const RECENT_FAILURES: usize = 20;

/// Each worker's stack: as much as the main thread's, so that a callback that runs under
/// `emit` also runs here.
const WORKER_STACK: usize = 16 * 1024 * 1024;

/// One request to dispatch.
pub struct Job {
    /// The declared event.
    pub event: String,
    /// Its arguments, as the request gave them.
    pub args: Map<String, Json>,
    /// The caller's id (or one the server made), for the log.
    pub id: String,
    /// Where the outcome goes.
    pub reply: Reply,
}

/// Where a job's outcome goes.
pub enum Reply {
    /// An HTTP request's answer; the event may be forwarded (published) instead of
    /// dispatched here.
    Http(oneshot::Sender<Dispatched>),
    /// An event from a [`Source`](switchboard::service::Source): always dispatched here;
    /// `Begun` is called as its callbacks begin.
    Intake(Done, Option<Begun>),
}

/// What became of a job.
pub enum Dispatched {
    /// It ran: the answer's body, made on the dispatch thread.
    Done {
        /// Whether every callback succeeded.
        ok: bool,
        /// How many failed or were skipped.
        failed: usize,
        /// The JSON answer: the event, the id, `ok`, the generation, the request id and
        /// every callback's outcome.
        body: Vec<u8>,
    },
    /// The host refused it before any callback ran (its arguments, most likely).
    Refused(EmitError),
    /// The server stopped and its drain gave up before the event ran: why.
    Abandoned(&'static str),
}

/// The answer to a request whose event never started because the drain gave up.
pub const NOT_DISPATCHED: &str =
    "not dispatched: the server stopped and its drain timeout ended before this event ran; send it again to a running server";

/// An event the manifest publishes: its arguments checked, then handed on (to NATS); the
/// answer says where it was stored.
fn forwarded(
    generation: &Generation,
    (event, args, id): (&str, &Map<String, Json>, &str),
    forward: &dyn Forward,
) -> Dispatched {
    let outgoing = match Outgoing::on(generation, event, args, Some(id), 0) {
        Ok(outgoing) => outgoing,
        Err(error) => return Dispatched::Refused(error),
    };
    let (ok, answer) = match outgoing.send(forward) {
        Ok(published) => (true, serde_json::json!({"published": published})),
        Err(error) => (
            false,
            serde_json::json!({"error": {"kind": "nats.publish", "message": error}}),
        ),
    };
    let mut body = serde_json::json!({"event": event, "id": outgoing.id, "ok": ok});
    if let (Some(body), serde_json::Value::Object(answer)) = (body.as_object_mut(), answer) {
        body.extend(answer);
    }
    Dispatched::Done {
        ok,
        failed: usize::from(!ok),
        body: body.to_string().into_bytes(),
    }
}

/// The answer to an event request, serialized straight to the body (no JSON tree first).
#[derive(serde::Serialize)]
struct Answer<'a> {
    event: &'a str,
    id: &'a str,
    ok: bool,
    generation: u64,
    request: u64,
    results: OutcomesJson<'a>,
}

/// A failed or skipped callback, for the status page.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When it was recorded.
    pub at: SystemTime,
    /// The request's id.
    pub id: String,
    /// The event.
    pub event: String,
    /// `plugin.callback`.
    pub callback: String,
    /// `error`, `panic`, `skipped`, `crashed` or `timed_out`.
    pub kind: &'static str,
    /// The error's message.
    pub message: String,
}

/// The most recent failures, newest last.
#[derive(Default)]
pub struct Recent(Mutex<VecDeque<Failure>>);

impl Recent {
    fn push(&self, failure: Failure) {
        let mut recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_FAILURES {
            recent.pop_front();
        }
        recent.push_back(failure);
    }

    /// The recent failures, newest first.
    pub fn newest_first(&self) -> Vec<Failure> {
        let recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().cloned().collect()
    }
}

/// The queue and its workers.
pub struct Dispatcher {
    /// `None` once closed: nothing more is accepted.
    queue: RwLock<Option<Sender<Job>>>,
    /// The queue's other end, for a drain that gives up on the jobs not yet started.
    waiting: Receiver<Job>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Dispatcher {
    /// Starts `workers` threads over a queue of `capacity` jobs.
    pub fn start(
        host: CurrentGeneration,
        workers: usize,
        capacity: usize,
        metrics: Arc<Metrics>,
        recent: Arc<Recent>,
        forward: Option<Arc<dyn Forward>>,
    ) -> std::io::Result<Dispatcher> {
        let (sender, jobs) = bounded::<Job>(capacity);
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers {
            let (host, jobs, metrics, recent, forward) = (
                host.clone(),
                jobs.clone(),
                Arc::clone(&metrics),
                Arc::clone(&recent),
                forward.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("switchboard-dispatch-{n}"))
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    let mut worker = Worker {
                        outcomes: Outcomes::new(),
                        forward,
                    };
                    for job in jobs {
                        worker.run(&host, job, &metrics, &recent);
                    }
                })?;
            threads.push(thread);
        }
        Ok(Dispatcher {
            queue: RwLock::new(Some(sender)),
            waiting: jobs,
            workers: Mutex::new(threads),
        })
    }

    /// Takes every job no worker has started and answers each as not dispatched: for a
    /// drain that gives up. How many HTTP requests were answered so. A source's event is
    /// left unanswered: its broker delivers it again.
    pub fn abandon_waiting(&self) -> u64 {
        let mut answered = 0;
        for job in self.waiting.try_iter() {
            if let Reply::Http(reply) = job.reply {
                let _ = reply.send(Dispatched::Abandoned(NOT_DISPATCHED));
                answered += 1;
            }
        }
        answered
    }

    /// An [`Intake`] for sources: their events go through the same queue and workers.
    pub fn intake(self: &Arc<Self>) -> Arc<dyn Intake> {
        Arc::new(SourceIntake(Arc::clone(self)))
    }

    /// Queues a job, or says why not.
    pub fn submit(&self, job: Job) -> Result<(), Refusal> {
        self.offer(job).map_err(|refused| refused.0)
    }

    /// Queues a job, or says why not and hands it back.
    fn offer(&self, job: Job) -> Result<(), Box<(Refusal, Job)>> {
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = queue.as_ref() else {
            return Err(Box::new((Refusal::Stopping, job)));
        };
        sender.try_send(job).map_err(|e| {
            Box::new(match e {
                TrySendError::Full(job) => (Refusal::QueueFull, job),
                TrySendError::Disconnected(job) => (Refusal::Stopping, job),
            })
        })
    }

    /// Jobs waiting for a worker.
    pub fn depth(&self) -> usize {
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        queue.as_ref().map_or(0, Sender::len)
    }

    /// Accepts nothing more, and waits until `deadline` for the queued jobs to finish;
    /// whether they all did (a callback that never returns cannot be stopped in-process).
    pub fn close(&self, deadline: Instant) -> bool {
        self.queue.write().unwrap_or_else(|e| e.into_inner()).take();
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        while workers.iter().any(|w| !w.is_finished()) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for worker in workers.drain(..) {
            let _ = worker.join();
        }
        true
    }
}

/// A failed or skipped call, as the status page lists it.
fn failure(
    generation: &Generation,
    callback: switchboard::CallbackId,
    error: &switchboard_plugin_api::Error,
    event: &str,
    id: &str,
) -> Failure {
    let callback = generation.callback(callback);
    Failure {
        at: SystemTime::now(),
        id: id.to_owned(),
        event: event.to_owned(),
        callback: format!("{}.{}", callback.plugin_name, callback.name),
        kind: error.kind_name(),
        message: error.message().to_owned(),
    }
}

/// What a dispatch worker keeps from job to job.
struct Worker {
    /// Reused, so that a job allocates no outcome list.
    outcomes: Outcomes,
    /// Where the events the manifest publishes go instead of the plugins.
    forward: Option<Arc<dyn Forward>>,
}

impl Worker {
    /// Dispatches one job on the current generation, counts it and answers it.
    fn run(&mut self, host: &CurrentGeneration, job: Job, metrics: &Arc<Metrics>, recent: &Recent) {
        let Job {
            event,
            args,
            id,
            reply,
        } = job;
        let job = (event.as_str(), &args, id.as_str());
        match reply {
            Reply::Http(reply) => {
                let answer =
                    host.with(|generation| self.dispatch(generation, job, metrics, recent));
                // The client may have gone away; the event ran all the same.
                let _ = reply.send(answer);
            }
            Reply::Intake(done, begun) => {
                if let Some(begun) = begun {
                    begun();
                }
                let handled =
                    host.with(|generation| self.take_in(generation, job, metrics, recent));
                done(handled);
            }
        }
    }

    /// Dispatches an event from a source (never forwarded): what became of it.
    fn take_in(
        &mut self,
        generation: &Generation,
        (event, args, id): (&str, &Map<String, Json>, &str),
        metrics: &Arc<Metrics>,
        recent: &Recent,
    ) -> Handled {
        let outcomes = &mut self.outcomes;
        outcomes.time_calls(true);
        outcomes.set_event_id(Some(id));
        if let Err(error) = generation.emit_json_into(event, args, outcomes) {
            if generation.event(event).is_ok() {
                metrics.refused(event, Refusal::BadArguments);
            }
            return Handled::Refused(error.to_string());
        }
        generation.record(outcomes);
        metrics.dispatched(generation, event, outcomes);
        let failures: Vec<String> = outcomes
            .failures()
            .map(|(outcome, error)| {
                let failure = failure(generation, outcome.callback, error, event, id);
                let line = format!(
                    "{} ({}): {}",
                    failure.callback, failure.kind, failure.message
                );
                recent.push(failure);
                line
            })
            .collect();
        if failures.is_empty() {
            Handled::Completed
        } else {
            Handled::Failed(failures)
        }
    }

    fn dispatch(
        &mut self,
        generation: &Generation,
        job: (&str, &Map<String, Json>, &str),
        metrics: &Arc<Metrics>,
        recent: &Recent,
    ) -> Dispatched {
        let (event, args, id) = job;
        if let Some(forward) = self.forward.as_ref().filter(|f| f.forwards(event)) {
            return forwarded(generation, job, forward.as_ref());
        }
        let outcomes = &mut self.outcomes;
        outcomes.time_calls(true);
        outcomes.set_event_id(Some(id));
        match generation.emit_json_into(event, args, outcomes) {
            Ok(()) => {
                generation.record(outcomes);
                metrics.dispatched(generation, event, outcomes);
                let mut failed = 0;
                for (outcome, error) in outcomes.failures() {
                    failed += 1;
                    recent.push(failure(generation, outcome.callback, error, event, id));
                }
                let reply = Answer {
                    event,
                    id,
                    ok: failed == 0,
                    generation: generation.number(),
                    request: outcomes.request_id(),
                    results: OutcomesJson {
                        generation,
                        outcomes,
                    },
                };
                let body = serde_json::to_vec(&reply).unwrap_or_else(|e| {
                    serde_json::json!({"event": event, "id": id, "ok": false, "error": format!("cannot write the outcomes: {e}")})
                        .to_string()
                        .into_bytes()
                });
                Dispatched::Done {
                    ok: failed == 0,
                    failed,
                    body,
                }
            }
            Err(error) => {
                metrics.refused(event, Refusal::BadArguments);
                Dispatched::Refused(error)
            }
        }
    }
}

/// The dispatcher as a source's [`Intake`].
struct SourceIntake(Arc<Dispatcher>);

impl Intake for SourceIntake {
    fn submit(&self, offer: Offer) -> Result<(), Box<(Busy, Offer)>> {
        let job = Job {
            event: offer.event,
            args: offer.args,
            id: offer.id,
            reply: Reply::Intake(offer.done, offer.begun),
        };
        self.0.offer(job).map_err(|refused| {
            let (why, job) = *refused;
            let busy = match why {
                Refusal::QueueFull => Busy::Full,
                _ => Busy::Stopping,
            };
            let (done, begun) = match job.reply {
                Reply::Intake(done, begun) => (done, begun),
                Reply::Http(_) => unreachable!("the job just made has an intake's reply"),
            };
            let offer = Offer {
                event: job.event,
                args: job.args,
                id: job.id,
                done,
                begun,
            };
            Box::new((busy, offer))
        })
    }
}
