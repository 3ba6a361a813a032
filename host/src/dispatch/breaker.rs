//! The per-plugin circuit breaker: a plugin that keeps failing is switched off for a
//! cool-down, then given one trial call.
//!
//! The healthy path costs one relaxed atomic load per call; time is read and the lock
//! taken only when a plugin fails or is switched off.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::manifest::BreakerSettings;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Where a plugin's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are skipped until the cool-down ends.
    Open,
    /// One trial call is under way.
    HalfOpen,
}

/// Whether a call may go ahead.
pub(crate) enum Admission {
    /// Go ahead; `trial` when this is the one call let through after the cool-down, whose
    /// success closes the breaker again.
    Allowed { trial: bool },
    /// Skip it; the plugin is switched off for `retry_in_ms` more.
    Skipped { retry_in_ms: u64 },
}

/// One plugin's breaker.
pub(crate) struct Breaker {
    settings: BreakerSettings,
    epoch: Instant,
    state: AtomicU8,
    opened_at_ms: AtomicU64,
    trips: AtomicU64,
    recent_failures: Mutex<VecDeque<u64>>,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings, epoch: Instant) -> Self {
        Breaker {
            settings,
            epoch,
            state: AtomicU8::new(CLOSED),
            opened_at_ms: AtomicU64::new(0),
            trips: AtomicU64::new(0),
            recent_failures: Mutex::new(VecDeque::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Decides whether the next call may go ahead; past the cool-down, lets exactly one
    /// trial call through.
    #[inline]
    pub(crate) fn admit(&self, plugin: &str) -> Admission {
        if self.state.load(Ordering::Relaxed) == CLOSED {
            return Admission::Allowed { trial: false };
        }
        self.admit_when_open(plugin)
    }

    #[cold]
    fn admit_when_open(&self, plugin: &str) -> Admission {
        let now = self.now_ms();
        let reopen_at = self.opened_at_ms.load(Ordering::Acquire) + self.settings.cooldown_ms;
        if now >= reopen_at
            && self
                .state
                .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            tracing::info!("plugin `{plugin}` cool-down over: trying one call");
            return Admission::Allowed { trial: true };
        }
        Admission::Skipped {
            retry_in_ms: reopen_at.saturating_sub(now),
        }
    }

    /// Records a successful call.
    #[inline]
    pub(crate) fn succeeded(&self, plugin: &str) {
        if self.state.load(Ordering::Relaxed) == HALF_OPEN {
            self.close(plugin);
        }
    }

    /// Closes a half-open breaker after its trial call succeeded.
    #[cold]
    fn close(&self, plugin: &str) {
        if self
            .state
            .compare_exchange(HALF_OPEN, CLOSED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.lock_failures().clear();
            tracing::info!("plugin `{plugin}` switched back on: its trial call succeeded");
        }
    }

    /// Records a failed call; switches the plugin off when it has failed too often.
    pub(crate) fn failed(&self, plugin: &str) {
        let limit = self.settings.failures;
        if limit == 0 {
            return;
        }
        let now = self.now_ms();
        if self.state.load(Ordering::Relaxed) == HALF_OPEN {
            self.open(now);
            tracing::warn!(
                "plugin `{plugin}` switched off again: its trial call failed; next try in {} ms",
                self.settings.cooldown_ms
            );
            return;
        }
        let mut recent = self.lock_failures();
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|&t| now.saturating_sub(t) > self.settings.window_ms)
        {
            recent.pop_front();
        }
        if recent.len() >= limit as usize && self.state.load(Ordering::Relaxed) == CLOSED {
            recent.clear();
            drop(recent);
            self.open(now);
            tracing::warn!(
                "plugin `{plugin}` switched off after {limit} failures in {} ms; its callbacks are skipped for {} ms",
                self.settings.window_ms,
                self.settings.cooldown_ms
            );
        }
    }

    fn open(&self, now: u64) {
        self.opened_at_ms.store(now, Ordering::Release);
        self.state.store(OPEN, Ordering::Release);
        self.trips.fetch_add(1, Ordering::Relaxed);
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        // The queue holds plain numbers; a panic elsewhere cannot leave it inconsistent.
        self.recent_failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Relaxed) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// While switched off, how long until the next trial call, in milliseconds.
    pub(crate) fn retry_in_ms(&self) -> Option<u64> {
        (self.state() == BreakerState::Open).then(|| {
            let reopen_at = self.opened_at_ms.load(Ordering::Acquire) + self.settings.cooldown_ms;
            reopen_at.saturating_sub(self.now_ms())
        })
    }

    /// How many times the plugin was switched off.
    pub(crate) fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// The settings, for messages.
    pub(crate) fn settings(&self) -> &BreakerSettings {
        &self.settings
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "on",
            BreakerState::Open => "switched off",
            BreakerState::HalfOpen => "trying one call",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(
            BreakerSettings {
                failures,
                window_ms: 60_000,
                cooldown_ms,
            },
            Instant::now(),
        )
    }

    #[test]
    fn opens_after_the_limit_and_skips() {
        let b = breaker(3, 60_000);
        b.failed("p");
        b.failed("p");
        assert!(matches!(b.admit("p"), Admission::Allowed { .. }));
        b.failed("p");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.admit("p"), Admission::Skipped { retry_in_ms } if retry_in_ms > 59_000));
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn one_trial_after_the_cool_down_closes_or_reopens() {
        let b = breaker(1, 0);
        b.failed("p");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.admit("p"), Admission::Allowed { .. }));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Only one trial at a time.
        assert!(matches!(b.admit("p"), Admission::Skipped { .. }));
        b.failed("p");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.admit("p"), Admission::Allowed { .. }));
        b.succeeded("p");
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.trips(), 2);
    }

    #[test]
    fn zero_failures_disables_it() {
        let b = breaker(0, 0);
        for _ in 0..100 {
            b.failed("p");
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
