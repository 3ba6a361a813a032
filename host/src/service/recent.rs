//! The service's most recent failed or skipped calls, newest last, for a status page.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::dispatch::{Generation, Outcomes};

/// How many recent failures are kept.
pub const RECENT_FAILURES: usize = 20;

/// A failed or skipped callback of an event the service dispatched.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Failure {
    /// When it was recorded.
    pub at: SystemTime,
    /// The event's id.
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

/// The most recent failures.
#[derive(Default)]
pub(super) struct Recent(Mutex<VecDeque<Failure>>);

impl Recent {
    /// Records every failed or skipped call of one event; each as `plugin.callback (kind):
    /// message`, for a source's answer.
    pub(super) fn record(
        &self,
        generation: &Generation,
        event: &str,
        id: &str,
        outcomes: &Outcomes,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for (outcome, error) in outcomes.failures() {
            let callback = generation.callback(outcome.callback);
            let failure = Failure {
                at: SystemTime::now(),
                id: id.to_owned(),
                event: event.to_owned(),
                callback: format!("{}.{}", callback.plugin_name, callback.name),
                kind: error.kind_name(),
                message: error.message().to_owned(),
            };
            lines.push(format!(
                "{} ({}): {}",
                failure.callback, failure.kind, failure.message
            ));
            let mut recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_FAILURES {
                recent.pop_front();
            }
            recent.push_back(failure);
        }
        lines
    }

    /// The recent failures, newest first.
    pub(super) fn newest_first(&self) -> Vec<Failure> {
        let recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().cloned().collect()
    }
}
