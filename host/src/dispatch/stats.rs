//! Counters kept by the host per callback (and so per plugin): calls, failures by kind,
//! and time spent, measured on a sample of calls.
//!
//! Counting never touches the dispatch loop. An emit's [`Outcomes`] already say which
//! callbacks ran and how each ended, so counting reads them afterwards: the allocating
//! `emit*` methods add them to the generation's shared counters at once, and a thread that
//! emits in a loop keeps a [`Tally`] of its own (plain adds) and hands it over now and
//! then, so that workers never contend on a shared cache line per call.

use std::sync::atomic::{AtomicU64, Ordering};

use super::outcome::Outcomes;

/// How a call ended, as counted.
const CALLS: usize = 0;
const ERRORS: usize = 1;
const PANICS: usize = 2;
const SKIPPED: usize = 3;
const TIMED_CALLS: usize = 4;
const TIMED_NANOS: usize = 5;
const CRASHED: usize = 6;
const TIMED_OUT: usize = 7;
const FIELDS: usize = 8;

/// The counts of one callback, or of all of a plugin's callbacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Calls that reached the plugin (successful or not; skipped ones are not calls).
    pub calls: u64,
    /// Calls that returned an error (panics included).
    pub errors: u64,
    /// Of `errors`, the calls that panicked.
    pub panics: u64,
    /// Calls skipped because the plugin was switched off.
    pub skipped: u64,
    /// Calls that were timed: a sample of `calls`.
    pub timed_calls: u64,
    /// Nanoseconds spent in the timed calls.
    pub timed_nanos: u64,
    /// Of `errors`, the calls whose worker process crashed (isolated plugins).
    pub crashed: u64,
    /// Of `errors`, the calls stopped at their time limit (isolated plugins).
    pub timed_out: u64,
}

impl Counts {
    /// The mean time of a call, in nanoseconds, from the timed sample; `None` before any
    /// call was timed.
    pub fn mean_nanos(&self) -> Option<u64> {
        self.timed_nanos.checked_div(self.timed_calls)
    }

    /// Adds another set of counts.
    pub fn add(&mut self, other: &Counts) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.panics += other.panics;
        self.skipped += other.skipped;
        self.timed_calls += other.timed_calls;
        self.timed_nanos += other.timed_nanos;
        self.crashed += other.crashed;
        self.timed_out += other.timed_out;
    }

    /// Of `errors`, the plain ones: returned by the callback (neither a panic, a crash
    /// nor a timeout).
    pub fn plain_errors(&self) -> u64 {
        self.errors
            .saturating_sub(self.panics + self.crashed + self.timed_out)
    }

    fn from_fields(fields: [u64; FIELDS]) -> Counts {
        Counts {
            calls: fields[CALLS],
            errors: fields[ERRORS],
            panics: fields[PANICS],
            skipped: fields[SKIPPED],
            timed_calls: fields[TIMED_CALLS],
            timed_nanos: fields[TIMED_NANOS],
            crashed: fields[CRASHED],
            timed_out: fields[TIMED_OUT],
        }
    }
}

/// Adds one emit's outcomes to per-callback fields, through `add(callback, field, n)`.
fn count(outcomes: &Outcomes, mut add: impl FnMut(usize, usize, u64)) {
    for (callback, result) in outcomes.calls() {
        let callback = callback as usize;
        match result {
            Ok(()) => add(callback, CALLS, 1),
            Err(error) if error.is_skipped() => add(callback, SKIPPED, 1),
            Err(error) => {
                add(callback, CALLS, 1);
                add(callback, ERRORS, 1);
                if error.is_panic() {
                    add(callback, PANICS, 1);
                } else if error.is_crashed() {
                    add(callback, CRASHED, 1);
                } else if error.is_timed_out() {
                    add(callback, TIMED_OUT, 1);
                }
            }
        }
    }
    if !outcomes.nanos.is_empty() {
        for ((callback, _), nanos) in outcomes.calls().zip(&outcomes.nanos) {
            add(callback as usize, TIMED_CALLS, 1);
            add(callback as usize, TIMED_NANOS, *nanos);
        }
    }
}

/// The shared counters of one generation, one row per callback.
#[derive(Debug)]
pub(crate) struct Counters {
    rows: Box<[[AtomicU64; FIELDS]]>,
}

impl Counters {
    pub(crate) fn new(callbacks: usize) -> Counters {
        Counters {
            rows: (0..callbacks).map(|_| Default::default()).collect(),
        }
    }

    /// Counts one emit's outcomes.
    pub(crate) fn record(&self, outcomes: &Outcomes) {
        count(outcomes, |callback, field, n| {
            if let Some(row) = self.rows.get(callback) {
                row[field].fetch_add(n, Ordering::Relaxed);
            }
        });
    }

    /// Takes over a tally's counts and zeroes it.
    pub(crate) fn absorb(&self, tally: &mut Tally) {
        for (row, counts) in self.rows.iter().zip(tally.rows.iter_mut()) {
            for (field, n) in row.iter().zip(counts.iter_mut()) {
                if *n != 0 {
                    field.fetch_add(std::mem::take(n), Ordering::Relaxed);
                }
            }
        }
    }

    /// The counts of callback `index`.
    pub(crate) fn get(&self, index: usize) -> Counts {
        let mut fields = [0; FIELDS];
        if let Some(row) = self.rows.get(index) {
            for (out, field) in fields.iter_mut().zip(row) {
                *out = field.load(Ordering::Relaxed);
            }
        }
        Counts::from_fields(fields)
    }
}

/// Counts kept by one thread between hand-overs to its generation: see the module docs.
#[derive(Debug, Default)]
pub struct Tally {
    generation: u64,
    rows: Vec<[u64; FIELDS]>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally::default()
    }

    /// Counts one emit's outcomes, which must come from the generation the tally is for
    /// (see [`Generation::absorb`](crate::Generation::absorb)).
    pub fn add(&mut self, outcomes: &Outcomes) {
        if outcomes.generation() != self.generation {
            return;
        }
        let rows = &mut self.rows;
        count(outcomes, |callback, field, n| {
            if let Some(row) = rows.get_mut(callback) {
                row[field] += n;
            }
        });
    }

    /// Makes the tally one for `generation` with `callbacks` rows; it must be empty
    /// (handed over) before.
    pub(crate) fn retarget(&mut self, generation: u64, callbacks: usize) {
        if self.generation != generation {
            self.generation = generation;
            self.rows.clear();
            self.rows.resize(callbacks, [0; FIELDS]);
        }
    }

    /// The generation this tally counts for.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}
