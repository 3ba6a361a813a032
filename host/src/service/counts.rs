//! What the service did with the events of each declared event it took, from any source
//! (HTTP requests, run lines, a NATS consumer): received, forwarded, refused by reason.
//! Whatever renders counts (`/metrics`, the status page, `run --metrics`) reads these;
//! calls and failures are the generation's, and `events_dispatched` is the observer's
//! (it also sees nested emits, which never pass through the service).
//!
//! Each worker keeps its own table (a lock no other worker takes), and the service one
//! for what its front door refused; reading sums them. A worker counts into [`Held`]
//! first: a run of lines of one event then costs a comparison each, not a lock and a
//! hash (which made `run --workers 2` 1.08x slower).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::error::EmitError;

/// Why the service, or a front end on its behalf, did not dispatch an event of a declared
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Its arguments did not match the declaration (or its body was not a JSON object,
    /// or too large).
    BadArguments,
    /// Its body could not be read, or did not arrive in time.
    Unreadable,
    /// The queue was full.
    QueueFull,
    /// The service was stopping, or gave up on it before it ran.
    Stopping,
}

impl Refusal {
    /// Every reason, in the order [`Refusal::label`] lists them.
    pub const ALL: [Refusal; 4] = [
        Refusal::BadArguments,
        Refusal::Unreadable,
        Refusal::QueueFull,
        Refusal::Stopping,
    ];

    /// Its name as metrics label it: `bad_arguments`, `unreadable`, `queue_full`,
    /// `stopping`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::BadArguments => "bad_arguments",
            Refusal::Unreadable => "unreadable",
            Refusal::QueueFull => "queue_full",
            Refusal::Stopping => "stopping",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The refusal `error` stands for, if it refuses an event of a declared event (an
    /// unknown event, or a host that shut down, is not one: it has no declared event to
    /// count under).
    pub(super) fn of(error: &EmitError) -> Option<Refusal> {
        match error {
            EmitError::UnknownEvent { .. } | EmitError::ShutDown => None,
            _ => Some(Refusal::BadArguments),
        }
    }
}

/// What the service did with one declared event's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventCounts {
    /// Taken by the service or refused at its door: dispatched, forwarded or refused.
    pub received: u64,
    /// Handed to the forward (published to NATS) instead of dispatched here.
    pub forwarded: u64,
    /// Not dispatched, by reason (in the order of [`Refusal::ALL`]).
    refused: [u64; Refusal::ALL.len()],
}

impl EventCounts {
    /// How many were refused for `why`.
    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why.index()]
    }

    /// How many were refused, for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    fn add(&mut self, other: &EventCounts) {
        self.received += other.received;
        self.forwarded += other.forwarded;
        for (mine, theirs) in self.refused.iter_mut().zip(other.refused) {
            *mine += theirs;
        }
    }
}

/// One writer's counts by event (a worker's, or the service's door's).
#[derive(Debug, Default)]
pub(super) struct Tallies(Mutex<HashMap<String, EventCounts>>);

impl Tallies {
    /// An event of `event` was refused for `why` (at the door).
    pub(super) fn refused(&self, event: &str, why: Refusal) {
        let mut one = EventCounts {
            received: 1,
            ..EventCounts::default()
        };
        one.refused[why.index()] = 1;
        self.add(event, &one);
    }

    /// Adds `counts` to `event`'s.
    fn add(&self, event: &str, counts: &EventCounts) {
        // Plain numbers: a panic elsewhere cannot leave them half-updated.
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match table.get_mut(event) {
            Some(sum) => sum.add(counts),
            None => {
                table.insert(event.to_owned(), *counts);
            }
        }
    }

    /// Adds these counts to `all`.
    pub(super) fn add_to(&self, all: &mut BTreeMap<String, EventCounts>) {
        let table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (event, counts) in table.iter() {
            match all.get_mut(event) {
                Some(sum) => sum.add(counts),
                None => {
                    all.insert(event.clone(), *counts);
                }
            }
        }
    }
}

/// The most events [`Held`] keeps before it adds them to its table.
const HOLD: u32 = 64;

/// A worker's counts of the event it is on, added to its [`Tallies`] when the event
/// changes, every [`HOLD`] events, when flushed, and when dropped (the worker ends).
pub(super) struct Held<'t> {
    tallies: &'t Tallies,
    event: String,
    counts: EventCounts,
    held: u32,
}

impl<'t> Held<'t> {
    /// Counts into `tallies`.
    pub(super) fn new(tallies: &'t Tallies) -> Held<'t> {
        Held {
            tallies,
            event: String::new(),
            counts: EventCounts::default(),
            held: 0,
        }
    }

    /// An event of `event` was taken and neither forwarded nor refused: dispatched here,
    /// or its forward failed.
    pub(super) fn received(&mut self, event: &str) {
        self.count(event, |_| {});
    }

    /// An event of `event` was forwarded.
    pub(super) fn forwarded(&mut self, event: &str) {
        self.count(event, |c| c.forwarded += 1);
    }

    /// An event of `event` was refused for `why`.
    pub(super) fn refused(&mut self, event: &str, why: Refusal) {
        self.count(event, |c| c.refused[why.index()] += 1);
    }

    /// An event of `event` was refused for what `error` says, if that names a declared
    /// event (see [`Refusal::of`]).
    pub(super) fn refused_for(&mut self, event: &str, error: &EmitError) {
        if let Some(why) = Refusal::of(error) {
            self.refused(event, why);
        }
    }

    /// Counts one event of `event` received, and what `also` adds.
    #[inline]
    fn count(&mut self, event: &str, also: impl FnOnce(&mut EventCounts)) {
        if self.event != event {
            self.flush();
            self.event.clear();
            self.event.push_str(event);
        }
        self.counts.received += 1;
        also(&mut self.counts);
        self.held += 1;
        if self.held >= HOLD {
            self.flush();
        }
    }

    /// Adds what it holds to the table, where readers see it.
    pub(super) fn flush(&mut self) {
        if self.held == 0 {
            return;
        }
        self.tallies.add(&self.event, &self.counts);
        self.counts = EventCounts::default();
        self.held = 0;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
