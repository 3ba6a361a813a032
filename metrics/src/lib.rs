//! A running host's metrics in Prometheus text format, measured by the host: no plugin
//! code runs for them. `switchboard serve` exports them at `/metrics` and `switchboard run
//! --metrics` writes them at the end; calls and failures are the host's own counts.
//! Series are labelled by event, plugin and callback (never one metric name per
//! plugin), and only declared events and registered callbacks become labels, so a client
//! cannot grow the series by sending made-up names.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use switchboard::service::{Crossing, EventCounts, Refusal, Traffic};
use switchboard::{BreakerState, Generation, Outcomes};

/// The route of event requests, as `switchboard_http_requests_total` labels it.
pub const EVENTS_ROUTE: &str = "/events/{event}";

/// The failure kinds counted per callback, as outcomes name them.
pub const FAILURE_KINDS: [&str; 5] = ["error", "panic", "skipped", "crashed", "timed_out"];

/// The states a plugin can be in, as `switchboard_plugin_state` labels them.
pub const PLUGIN_STATES: [&str; 5] = ["on", "switched_off", "trial", "quarantined", "off"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CrossingLabels {
    event: String,
    crossing: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    event: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabels {
    plugin: String,
    callback: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    plugin: String,
    callback: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginStateLabels {
    plugin: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: String,
}

/// One callback's series, looked up once per generation instead of once per call.
struct CallbackSeries {
    calls: Counter,
    failures: [Counter; FAILURE_KINDS.len()],
    duration: Histogram,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    received: Family<EventLabels, Counter>,
    dispatched: Family<EventLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    calls: Family<CallbackLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<CallbackLabels, Histogram, fn() -> Histogram>,
    plugin_state: Family<PluginStateLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
    crossings: Family<CrossingLabels, Counter>,
    /// The same counts, for the status page (a family cannot be listed).
    crossing_counts: std::sync::Mutex<HashMap<(String, Crossing), u64>>,
    generation: Gauge,
    queue_depth: Gauge,
    queue_capacity: Gauge,
    in_flight: Gauge,
    /// The service's counts by event already added to the counters: received, forwarded,
    /// then refused in the order of [`Refusal::ALL`].
    seen_events: std::sync::Mutex<HashMap<String, [u64; 2 + Refusal::ALL.len()]>>,
    forwarded: Family<EventLabels, Counter>,
    /// The series of each callback of the generation last recorded, by callback index.
    series: RwLock<(u64, Arc<Vec<CallbackSeries>>)>,
    /// The host's counts of each callback (calls, then failures by kind) already added to
    /// the counters, for the generation they were read from.
    seen: std::sync::Mutex<(u64, Vec<[u64; 6]>)>,
    /// Event requests answered, whatever the status.
    event_answers: AtomicU64,
    /// The request counters already made, by route and status: found without allocating.
    answers: RwLock<HashMap<(&'static str, u16), Counter>>,
    /// The dispatched counters already made, by event name.
    events: RwLock<HashMap<String, Counter>>,
}

/// Bucket bounds of call durations, in seconds: an in-process call lands in the first, a
/// worker's round trip in the tens of microseconds, a database write in the milliseconds.
const DURATION_BUCKETS: [f64; 15] = [
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new(queue_capacity: usize) -> Metrics {
        let mut registry = Registry::with_prefix("switchboard");
        let metrics = Metrics {
            received: Family::default(),
            dispatched: Family::default(),
            refused: Family::default(),
            calls: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            plugin_state: Family::default(),
            requests: Family::default(),
            crossings: Family::default(),
            crossing_counts: Default::default(),
            generation: Gauge::default(),
            queue_depth: Gauge::default(),
            queue_capacity: Gauge::default(),
            in_flight: Gauge::default(),
            series: RwLock::new((0, Arc::new(Vec::new()))),
            seen: std::sync::Mutex::new((u64::MAX, Vec::new())),
            seen_events: std::sync::Mutex::default(),
            forwarded: Family::default(),
            event_answers: AtomicU64::new(0),
            answers: RwLock::default(),
            events: RwLock::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_received",
            "Events of a declared event the service was sent, from any source: dispatched, forwarded or refused",
            metrics.received.clone(),
        );
        registry.register(
            "events_dispatched",
            "Events dispatched to their callbacks",
            metrics.dispatched.clone(),
        );
        registry.register(
            "events_refused",
            "Events of a declared event that were not dispatched, by reason: bad_arguments, unreadable, queue_full, stopping",
            metrics.refused.clone(),
        );
        registry.register(
            "events_forwarded",
            "Events handed to NATS instead of dispatched here",
            metrics.forwarded.clone(),
        );
        registry.register(
            "callback_calls",
            "Calls that reached a callback (skipped ones are not calls)",
            metrics.calls.clone(),
        );
        registry.register(
            "callback_failures",
            "Callbacks that failed or were skipped, by kind: error, panic, skipped, crashed, timed_out",
            metrics.failures.clone(),
        );
        registry.register(
            "callback_duration_seconds",
            "How long callbacks took, measured by the host",
            metrics.duration.clone(),
        );
        registry.register(
            "plugin_state",
            "1 for the state each plugin is in: on, switched_off (breaker open), trial (breaker half-open), quarantined, off (not running)",
            metrics.plugin_state.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "nats_messages",
            "Messages crossing to and from NATS, by event and crossing: published, consumed (each delivery), redelivered, already_completed_in_cache and already_completed_in_ledger (a delivery recognized by its id and not dispatched again, where it was found), claimed_elsewhere (another host began it and has not finished), ran_again (callbacks ran for an event the ledger held as completed), ledger_error, dead_lettered",
            metrics.crossings.clone(),
        );
        registry.register(
            "generation",
            "The number of the generation of plugins serving events",
            metrics.generation.clone(),
        );
        registry.register(
            "queue_depth",
            "Events accepted and waiting for a dispatch worker",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "queue_capacity",
            "Events that may wait before requests are refused with 503",
            metrics.queue_capacity.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Event requests being dispatched or waiting",
            metrics.in_flight.clone(),
        );
        metrics.queue_capacity.set(queue_capacity as i64);
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Sets the queue's capacity, as exported.
    pub fn capacity(&self, queue_capacity: usize) {
        self.queue_capacity.set(queue_capacity as i64);
    }

    /// Counts one dispatched event of `event`, its counter made on first use.
    fn count_dispatched(&self, event: &str) {
        if let Some(counter) = self
            .events
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(event)
        {
            counter.inc();
            return;
        }
        let labels = event_labels(event);
        let counter = self.dispatched.get_or_create_owned(&labels);
        counter.inc();
        self.events
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(labels.event, counter);
    }

    /// Event requests answered so far, whatever the status.
    pub fn events_answered(&self) -> u64 {
        self.event_answers.load(Ordering::Relaxed)
    }

    /// An HTTP request was answered.
    pub fn answered(&self, route: &'static str, status: u16) {
        if route == EVENTS_ROUTE {
            self.event_answers.fetch_add(1, Ordering::Relaxed);
        }
        let key = (route, status);
        if let Some(counter) = self
            .answers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            counter.inc();
            return;
        }
        let labels = RequestLabels {
            route: route.to_owned(),
            status: status.to_string(),
        };
        let counter = self.requests.get_or_create_owned(&labels);
        counter.inc();
        self.answers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, counter);
    }

    /// How many messages of each event crossed in each way: by event, then in the order
    /// of [`Crossing::ALL`].
    pub fn crossings(&self) -> Vec<(String, Crossing, u64)> {
        let counts = self
            .crossing_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut events: Vec<&String> = counts.keys().map(|(event, _)| event).collect();
        events.sort();
        events.dedup();
        let mut all = Vec::new();
        for event in events {
            for how in Crossing::ALL {
                if let Some(&n) = counts.get(&(event.clone(), how)) {
                    all.push((event.clone(), how, n));
                }
            }
        }
        all
    }

    /// A request started (`1`) or ended (`-1`).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// Counts one dispatched event, and the durations of its calls when the emit was
    /// timed. Calls and failures are the host's own counts, read when the metrics are
    /// rendered.
    pub fn dispatched(&self, generation: &Generation, event: &str, outcomes: &Outcomes) {
        self.count_dispatched(event);
        let nanos = outcomes.nanos();
        if nanos.is_empty() {
            return;
        }
        let series = self.series_of(generation);
        for (outcome, nanos) in outcomes.iter().zip(nanos) {
            if let Some(series) = series.get(outcome.callback.index()) {
                series.duration.observe(*nanos as f64 / 1e9);
            }
        }
    }

    /// Brings every callback's calls and failures up to the host's counts of
    /// `generation`: the counters go up by what the host counted since the last time, so
    /// that they keep rising across reloads (a new generation counts from zero).
    fn catch_up(&self, generation: &Generation) {
        let series = self.series_of(generation);
        let counts = generation.every_callback_counts();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 != generation.number() {
            *seen = (generation.number(), vec![[0; 6]; counts.len()]);
        }
        for ((series, counts), seen) in series.iter().zip(&counts).zip(seen.1.iter_mut()) {
            // In the order of FAILURE_KINDS, after the calls.
            let now = [
                counts.calls,
                counts.plain_errors(),
                counts.panics,
                counts.skipped,
                counts.crashed,
                counts.timed_out,
            ];
            let counters = std::iter::once(&series.calls).chain(&series.failures);
            for ((counter, now), seen) in counters.zip(now).zip(seen.iter_mut()) {
                if now > *seen {
                    counter.inc_by(now - *seen);
                    *seen = now;
                }
            }
        }
    }

    /// Brings the event counters up to the service's counts (`events`, as
    /// [`Service::event_counts`](switchboard::service::Service::event_counts) returns
    /// them), by what they rose since the last time.
    fn catch_up_events(&self, events: &BTreeMap<String, EventCounts>) {
        let mut seen = self.seen_events.lock().unwrap_or_else(|e| e.into_inner());
        for (event, counts) in events {
            let labels = event_labels(event);
            let now = [counts.received, counts.forwarded].into_iter();
            let now: Vec<u64> = now
                .chain(Refusal::ALL.iter().map(|&why| counts.refused(why)))
                .collect();
            let seen = seen.entry(event.clone()).or_default();
            for (i, (&now, seen)) in now.iter().zip(seen.iter_mut()).enumerate() {
                if now <= *seen {
                    continue;
                }
                let counter = match i {
                    0 => self.received.get_or_create_owned(&labels),
                    1 => self.forwarded.get_or_create_owned(&labels),
                    _ => self.refused.get_or_create_owned(&RefusedLabels {
                        event: event.clone(),
                        reason: Refusal::ALL[i - 2].label().to_owned(),
                    }),
                };
                counter.inc_by(now - *seen);
                *seen = now;
            }
        }
    }

    /// The text exposition, with the gauges read from the host now and the event
    /// counters brought up to the service's `events`: each rises by what the service
    /// counted since the last render.
    pub fn render(
        &self,
        generation: &Generation,
        queue_depth: usize,
        events: &BTreeMap<String, EventCounts>,
    ) -> String {
        self.catch_up_events(events);
        self.generation.set(generation.number() as i64);
        self.queue_depth.set(queue_depth as i64);
        for plugin in generation.plugins() {
            let state = plugin_state(&plugin);
            for name in PLUGIN_STATES {
                let labels = PluginStateLabels {
                    plugin: plugin.meta.name.clone(),
                    state: name.to_owned(),
                };
                self.plugin_state
                    .get_or_create(&labels)
                    .set(i64::from(name == state));
            }
        }
        // Every callback has its series from the start, at zero, so a scrape before the
        // first event already lists them.
        self.catch_up(generation);
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    /// The series of every callback of `generation`, made on the first use of a generation.
    fn series_of(&self, generation: &Generation) -> Arc<Vec<CallbackSeries>> {
        {
            let cached = self.series.read().unwrap_or_else(|e| e.into_inner());
            if cached.0 == generation.number() {
                return Arc::clone(&cached.1);
            }
        }
        let mut cached = self.series.write().unwrap_or_else(|e| e.into_inner());
        if cached.0 != generation.number() {
            let series = generation
                .registry()
                .callbacks()
                .iter()
                .map(|callback| {
                    let labels = CallbackLabels {
                        plugin: callback.plugin_name.clone(),
                        callback: callback.name.clone(),
                    };
                    CallbackSeries {
                        calls: self.calls.get_or_create_owned(&labels),
                        failures: FAILURE_KINDS.map(|kind| {
                            self.failures.get_or_create_owned(&FailureLabels {
                                plugin: labels.plugin.clone(),
                                callback: labels.callback.clone(),
                                kind: kind.to_owned(),
                            })
                        }),
                        duration: self.duration.get_or_create_owned(&labels),
                    }
                })
                .collect();
            *cached = (generation.number(), Arc::new(series));
        }
        Arc::clone(&cached.1)
    }
}

impl Traffic for Metrics {
    fn crossed(&self, event: &str, how: Crossing) {
        self.crossed_many(event, how, 1);
    }

    fn crossed_many(&self, event: &str, how: Crossing, n: u64) {
        let labels = CrossingLabels {
            event: event.to_owned(),
            crossing: how.name().to_owned(),
        };
        self.crossings.get_or_create(&labels).inc_by(n);
        *self
            .crossing_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((labels.event, how))
            .or_default() += n;
    }
}

fn event_labels(event: &str) -> EventLabels {
    EventLabels {
        event: event.to_owned(),
    }
}

/// A plugin's state as `switchboard_plugin_state` and the status page name it.
pub fn plugin_state(plugin: &switchboard::dispatch::PluginStatus) -> &'static str {
    if plugin
        .isolated
        .as_ref()
        .is_some_and(|i| i.quarantined.is_some())
    {
        return "quarantined";
    }
    match plugin.breaker {
        None => "off",
        Some(BreakerState::Closed) => "on",
        Some(BreakerState::Open) => "switched_off",
        Some(BreakerState::HalfOpen) => "trial",
    }
}
