//! The service's one bounded queue. Lines arrive in batches (so threads hand over work once
//! per batch, not per line), but workers claim them **one at a time**: every idle worker
//! helps with the batch at the front, so a slow event holds back nothing but itself.
//!
//! The bound is on events accepted but not yet written out, which covers the queue, the
//! events being dispatched, and results held back for `--ordered` output: memory stays
//! bounded by the queue size even behind one stuck event.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::Backoff;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::json_lines::Line;
use super::{Busy, Offer, Request};
use crate::dispatch::Generation;

/// Lines numbered from `first`, in input order, claimed one by one through `next`.
pub(super) struct Batch {
    pub(super) first: u64,
    pub(super) lines: Vec<Line>,
    next: AtomicUsize,
    /// The generation every line of the batch is dispatched on: the one current when the
    /// first worker took the batch up. Batches are taken up in input order, so across a
    /// reload the results switch generations at one point and never back.
    generation: OnceLock<Arc<Generation>>,
}

impl Batch {
    pub(super) fn new(first: u64, lines: Vec<Line>) -> Batch {
        Batch {
            first,
            lines,
            next: AtomicUsize::new(0),
            generation: OnceLock::new(),
        }
    }

    /// The batch's generation, `current` if no worker has taken the batch up yet.
    pub(super) fn generation(&self, current: impl FnOnce() -> Arc<Generation>) -> Arc<Generation> {
        Arc::clone(self.generation.get_or_init(current))
    }

    /// The next unclaimed line, with its sequence number.
    pub(super) fn claim(&self) -> Option<(u64, &Line)> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        self.lines
            .get(index)
            .map(|line| (self.first + index as u64, line))
    }

    /// The next unclaimed line, with its sequence number, if `wanted` says yes to it; a
    /// line another worker claims meanwhile is not looked at twice.
    pub(super) fn claim_if(&self, wanted: impl Fn(&Line) -> bool) -> Option<(u64, &Line)> {
        let mut index = self.next.load(Ordering::Relaxed);
        loop {
            let line = self.lines.get(index)?;
            if !wanted(line) {
                return None;
            }
            match self.next.compare_exchange_weak(
                index,
                index + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((self.first + index as u64, line)),
                Err(now) => index = now,
            }
        }
    }

    fn exhausted(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.lines.len()
    }

    fn unclaimed(&self) -> usize {
        self.lines
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed))
    }

    /// Claims every line no worker has claimed yet, for the caller to answer.
    fn claim_rest(&self) -> impl Iterator<Item = (u64, &Line)> {
        let from = self.next.swap(self.lines.len(), Ordering::Relaxed);
        let first = self.first;
        self.lines
            .iter()
            .enumerate()
            .skip(from)
            .map(move |(i, line)| (first + i as u64, line))
    }
}

/// What a worker takes up next.
pub(super) enum Work {
    /// Lines to claim one by one.
    Lines(Arc<Batch>),
    /// An event from a source (a NATS consumer), whole.
    Offer(Offer),
    /// A request (an HTTP request's event), whole.
    Request(Request),
}

struct State {
    batches: VecDeque<Arc<Batch>>,
    /// Events from sources, taken up before lines: a source holds few at a time, and
    /// each keeps its broker waiting for an acknowledgement.
    offers: VecDeque<Offer>,
    /// Requests, taken up after the sources' events and before lines.
    requests: VecDeque<Request>,
    /// Accepted and not yet written out (or answered).
    in_flight: usize,
    /// Workers waiting for work: a push with none waiting wakes nobody (waking costs a
    /// system call even when nobody sleeps).
    idle: usize,
    /// Threads waiting in [`Queue::room`].
    waiting_for_room: usize,
    /// No more work will come.
    closed: bool,
}

/// The queue shared by the acceptor, the workers and the writer.
pub(super) struct Queue {
    state: Mutex<State>,
    /// Signalled when a batch arrives or the queue closes.
    work: Condvar,
    /// Signalled when results were written, making room.
    room: Condvar,
    /// Work waiting (and 1 more once closed), read by spinning workers without the lock.
    queued: AtomicUsize,
    capacity: usize,
}

impl Queue {
    pub(super) fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                batches: VecDeque::new(),
                offers: VecDeque::new(),
                requests: VecDeque::new(),
                in_flight: 0,
                idle: 0,
                waiting_for_room: 0,
                closed: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            queued: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Publishes how much work waits, for workers spinning without the lock.
    fn publish(&self, state: &State) {
        let queued = state.offers.len() + state.requests.len() + state.batches.len();
        self.queued
            .store(queued + usize::from(state.closed), Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state holds plain counters and queued lines; a panic elsewhere cannot leave
        // it half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many more events may be accepted now, waiting up to `wait` for room; 0 if
    /// there is none yet.
    pub(super) fn room(&self, wait: Duration) -> usize {
        let mut state = self.lock();
        state.waiting_for_room += 1;
        let (mut state, _) = self
            .room
            .wait_timeout_while(state, wait, |s| s.in_flight >= self.capacity)
            .unwrap_or_else(|e| e.into_inner());
        state.waiting_for_room -= 1;
        self.capacity.saturating_sub(state.in_flight)
    }

    /// Queues a batch (at most [`Queue::room`] lines) for the workers.
    pub(super) fn push(&self, batch: Batch) {
        let mut state = self.lock();
        state.in_flight += batch.lines.len();
        state.batches.push_back(Arc::new(batch));
        self.publish(&state);
        let idle = state.idle;
        drop(state);
        // Every idle worker may help with this batch.
        if idle > 0 {
            self.work.notify_all();
        }
    }

    /// Queues a source's event for the workers, if there is room and the queue is open;
    /// otherwise why not, with the event handed back. Its worker calls
    /// [`Queue::written`] once the event's `done` has been called.
    pub(super) fn offer(&self, offer: Offer) -> Result<(), Box<(Busy, Offer)>> {
        self.enqueue(offer, |state| &mut state.offers)
    }

    /// Queues a request for the workers, if there is room and the queue is open;
    /// otherwise why not, with the request handed back. Its worker calls
    /// [`Queue::written`] once it is answered.
    pub(super) fn request(&self, request: Request) -> Result<(), Box<(Busy, Request)>> {
        self.enqueue(request, |state| &mut state.requests)
    }

    /// Queues one whole job in the list `list` picks, counting it in flight and waking
    /// an idle worker; or hands it back with why not.
    fn enqueue<T>(
        &self,
        job: T,
        list: impl FnOnce(&mut State) -> &mut VecDeque<T>,
    ) -> Result<(), Box<(Busy, T)>> {
        let mut state = self.lock();
        if state.closed {
            return Err(Box::new((Busy::Stopping, job)));
        }
        if state.in_flight >= self.capacity {
            return Err(Box::new((Busy::Full, job)));
        }
        state.in_flight += 1;
        list(&mut state).push_back(job);
        self.publish(&state);
        let idle = state.idle;
        drop(state);
        if idle > 0 {
            self.work.notify_one();
        }
        Ok(())
    }

    /// Events waiting for a worker: sources' events, requests and unclaimed lines.
    pub(super) fn depth(&self) -> usize {
        let state = self.lock();
        let lines: usize = state.batches.iter().map(|b| b.unclaimed()).sum();
        state.offers.len() + state.requests.len() + lines
    }

    /// Accepts no more batches; workers finish what is queued, then stop.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.publish(&state);
        drop(state);
        self.work.notify_all();
    }

    /// The next source event, request, or batch to claim lines from, waiting for one;
    /// `None` once closed and empty.
    pub(super) fn next_work(&self) -> Option<Work> {
        // A worker that finds nothing spins and yields a moment before it sleeps: work
        // that arrives meanwhile (the next HTTP request, at load) is taken without a
        // wake-up, which costs a system call on each side (`bench/serve.sh` in
        // BENCHMARKS.md).
        let backoff = Backoff::new();
        let mut state = self.lock();
        loop {
            if let Some(offer) = state.offers.pop_front() {
                self.publish(&state);
                return Some(Work::Offer(offer));
            }
            if let Some(request) = state.requests.pop_front() {
                self.publish(&state);
                return Some(Work::Request(request));
            }
            while state.batches.front().is_some_and(|b| b.exhausted()) {
                state.batches.pop_front();
                self.publish(&state);
            }
            if let Some(batch) = state.batches.front() {
                return Some(Work::Lines(Arc::clone(batch)));
            }
            if state.closed {
                return None;
            }
            if !backoff.is_completed() {
                drop(state);
                while !backoff.is_completed() && self.queued.load(Ordering::Acquire) == 0 {
                    backoff.snooze();
                }
                state = self.lock();
                continue;
            }
            state.idle += 1;
            state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
            state.idle -= 1;
        }
    }

    /// Records that `n` results were written, making room for more input.
    pub(super) fn written(&self, n: usize) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(n);
        let waiting = state.waiting_for_room;
        drop(state);
        if waiting > 0 {
            self.room.notify_all();
        }
    }

    /// Takes everything no worker took up, for an answer without dispatch: every queued
    /// line no worker has claimed, every request, and every source event (left unanswered:
    /// its broker delivers it again).
    pub(super) fn take_unclaimed(&self) -> Unclaimed {
        let mut state = self.lock();
        let mut lines = Vec::new();
        for batch in state.batches.drain(..) {
            lines.extend(batch.claim_rest().map(|(seq, line)| (seq, line.id())));
        }
        let unclaimed = Unclaimed {
            lines,
            requests: state.requests.drain(..).collect(),
            offers: state.offers.drain(..).count(),
        };
        self.publish(&state);
        unclaimed
    }
}

/// What no worker took up when a drain gave up.
pub(super) struct Unclaimed {
    /// Lines: their numbers and ids.
    pub(super) lines: Vec<(u64, Option<serde_json::Value>)>,
    /// Requests, to be answered.
    pub(super) requests: Vec<Request>,
    /// How many source events there were (dropped: their broker delivers them again).
    pub(super) offers: usize,
}
