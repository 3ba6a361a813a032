//! The `[nats]` table: how a host shares events with other hosts through NATS JetStream.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The `[nats]` table. Without it, nothing goes to NATS.
///
/// ```toml
/// [nats]
/// url = "nats://127.0.0.1:4222"
/// stream = "SWITCHBOARD"          # created when missing, with one subject per event
/// subject_prefix = "switchboard"  # an event `user_joined` is `switchboard.user_joined`
/// publish = ["user_joined"]       # published to the stream instead of dispatched here
/// publish_timeout_ms = 10000      # how long a publish retries while the server is away
///
/// consume = ["user_joined"]       # `serve` pulls these and dispatches them here
/// consumer = "signups"            # the durable consumer's name (one per event)
/// ack_wait_ms = 30000             # unacknowledged this long: delivered again
/// max_deliveries = 5              # then the event goes to the dead-letter subject
/// redeliver_after_ms = 1000       # a failed event is delivered again after this pause
/// in_flight = 256                 # events being dispatched at once, at most
/// remember_completed = 100000     # completed ids kept, to recognize lost acknowledgements
/// ledger = true                   # share completed ids with every host of the consumer
/// ledger_bucket = "SWITCHBOARD_completed"  # the key-value bucket (default from the stream)
/// ledger_max_age_s = 604800       # how long the ledger keeps an event (a week)
/// ledger_max_bytes = 1073741824   # and how much it keeps at most (1 GiB)
/// takeover_after_ms = 600000      # an event claimed by a host gone this long is taken over
/// ```
///
/// This is the table as written, with where each value is (for the messages of
/// validation); the host reads [`NatsSettings`], which validation makes of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsTable {
    /// The server (default `nats://127.0.0.1:4222`).
    #[serde(default = "default_url")]
    pub url: Spanned<String>,
    /// The JetStream stream (default `SWITCHBOARD`), created when missing with the
    /// subjects `<subject_prefix>.>`, file storage and a two-minute window in which a
    /// message id is stored once.
    #[serde(default = "default_stream")]
    pub stream: Spanned<String>,
    /// The first tokens of every event's subject (default `switchboard`).
    #[serde(default = "default_prefix")]
    pub subject_prefix: Spanned<String>,
    /// Events this host publishes to the stream instead of dispatching them to its own
    /// plugins; each must be declared.
    #[serde(default)]
    pub publish: Vec<Spanned<String>>,
    /// How long a publish may wait and retry while the server cannot be reached, in
    /// milliseconds (default 10000); past it the publish fails with the reason.
    #[serde(default = "default_publish_timeout_ms")]
    pub publish_timeout_ms: Spanned<u64>,
    /// Events `switchboard serve` pulls from the stream and dispatches to this host's
    /// plugins, each acknowledged once all its callbacks finished; each must be declared.
    #[serde(default)]
    pub consume: Vec<Spanned<String>>,
    /// The durable consumer's name (default `switchboard`): hosts that share it share the
    /// work, each event going to one of them. Each consumed event has a consumer of its
    /// own on the server, `<consumer>-<event>` (a `.` in the event becomes `-`).
    #[serde(default = "default_consumer")]
    pub consumer: Spanned<String>,
    /// How long a delivered event may stay unacknowledged before the server delivers it
    /// again, in milliseconds (default 30000). A callback that takes longer is not cut
    /// off: the host tells the server it is still working, every third of this time.
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: Spanned<u64>,
    /// How many times an event is attempted before it goes to the dead-letter subject
    /// `<subject_prefix>.dead-letter.<event>` with the failures that sent it there
    /// (default 5). With the ledger, an attempt is a host beginning its callbacks (a
    /// delivery handed back to wait for another host is none); without, each delivery.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: Spanned<u32>,
    /// How long after a failed dispatch the event is delivered again, in milliseconds
    /// (default 1000; doubled on each further delivery, up to a minute).
    #[serde(default = "default_redeliver_after_ms")]
    pub redeliver_after_ms: Spanned<u64>,
    /// The most consumed events being dispatched or waiting at once (default 256).
    #[serde(default = "default_in_flight")]
    pub in_flight: Spanned<u32>,
    /// How many completed event ids the host remembers (default 100000; kept in
    /// `.switchboard/nats/` beside the manifest, so they survive a restart): an event
    /// delivered again after it completed, because its acknowledgement was lost, is
    /// recognized by its id and acknowledged without running its callbacks again.
    #[serde(default = "default_remember_completed")]
    pub remember_completed: Spanned<u32>,
    /// Whether the hosts of one consumer share a ledger of the events they claimed and
    /// completed (default `true`), in a JetStream key-value bucket created when missing.
    /// With it, a delivery another host completed is acknowledged without dispatch, and an
    /// event a host began and did not finish (killed inside its callbacks) waits for that
    /// host to come back and finish it, so effects kept per host (a database file each)
    /// happen once across the hosts. Without it (`false`), each host keeps only its own
    /// completed ids: at-least-once across hosts.
    #[serde(default = "default_ledger")]
    pub ledger: Spanned<bool>,
    /// The ledger's bucket (default `<stream>_completed`). Hosts that consume with the
    /// same `consumer` must name the same bucket, as the default does.
    #[serde(default)]
    pub ledger_bucket: Option<Spanned<String>>,
    /// How long the ledger keeps an event, in seconds (default 604800, a week): a
    /// redelivery or republish of the same id later than that runs again.
    #[serde(default = "default_ledger_max_age_s")]
    pub ledger_max_age_s: Spanned<u64>,
    /// The most bytes the ledger keeps (default 1073741824, 1 GiB); past it the oldest
    /// events are forgotten first (a repeat of one runs again).
    #[serde(default = "default_ledger_max_bytes")]
    pub ledger_max_bytes: Spanned<u64>,
    /// How long an event claimed by another host, and delivered here, waits for that host
    /// before this one takes it over, in milliseconds (default 600000). A host killed
    /// inside its callbacks and restarted within it finishes its own events; one gone for
    /// longer has its events run here, and their effects may then happen on both hosts.
    #[serde(default = "default_takeover_after_ms")]
    pub takeover_after_ms: Spanned<u64>,
}

fn default_ledger() -> Spanned<bool> {
    Spanned::new(0..0, true)
}

fn default_ledger_max_age_s() -> Spanned<u64> {
    Spanned::new(0..0, 604_800)
}

fn default_ledger_max_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 1 << 30)
}

fn default_takeover_after_ms() -> Spanned<u64> {
    Spanned::new(0..0, 600_000)
}

fn default_consumer() -> Spanned<String> {
    Spanned::new(0..0, "switchboard".to_owned())
}

fn default_ack_wait_ms() -> Spanned<u64> {
    Spanned::new(0..0, 30_000)
}

fn default_max_deliveries() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}

fn default_redeliver_after_ms() -> Spanned<u64> {
    Spanned::new(0..0, 1_000)
}

fn default_in_flight() -> Spanned<u32> {
    Spanned::new(0..0, 256)
}

fn default_remember_completed() -> Spanned<u32> {
    Spanned::new(0..0, 100_000)
}

fn default_url() -> Spanned<String> {
    Spanned::new(0..0, "nats://127.0.0.1:4222".to_owned())
}

fn default_stream() -> Spanned<String> {
    Spanned::new(0..0, "SWITCHBOARD".to_owned())
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "switchboard".to_owned())
}

fn default_publish_timeout_ms() -> Spanned<u64> {
    Spanned::new(0..0, 10_000)
}

/// The `[nats]` table, checked: plain values, durations as durations, the ledger's
/// bucket named. See [`NatsTable`] for what each setting means and its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsSettings {
    /// The server.
    pub url: String,
    /// The JetStream stream.
    pub stream: String,
    /// The first tokens of every event's subject.
    pub subject_prefix: String,
    /// Events published to the stream instead of dispatched here.
    pub publish: Vec<String>,
    /// How long a publish may wait and retry while the server cannot be reached.
    pub publish_timeout: Duration,
    /// Events pulled from the stream and dispatched here.
    pub consume: Vec<String>,
    /// The durable consumer's name.
    pub consumer: String,
    /// How long a delivery may stay unacknowledged before the server delivers it again.
    pub ack_wait: Duration,
    /// How many times an event is attempted before it is dead-lettered.
    pub max_deliveries: u32,
    /// The pause before a failed event is delivered again (doubled each time).
    pub redeliver_after: Duration,
    /// The most consumed events being dispatched or waiting at once.
    pub in_flight: u32,
    /// How many completed event ids the host remembers.
    pub remember_completed: u32,
    /// The ledger's bucket, when the hosts of the consumer share one.
    pub ledger_bucket: Option<String>,
    /// How long the ledger keeps an event.
    pub ledger_max_age: Duration,
    /// The most bytes the ledger keeps.
    pub ledger_max_bytes: u64,
    /// How long an event claimed by another host waits for it before being taken over.
    pub takeover_after: Duration,
}

impl NatsTable {
    /// The checked settings (validation has bounded every value).
    pub(super) fn settings(&self) -> NatsSettings {
        let names = |events: &[Spanned<String>]| -> Vec<String> {
            events.iter().map(|e| e.get_ref().clone()).collect()
        };
        NatsSettings {
            url: self.url.get_ref().clone(),
            stream: self.stream.get_ref().clone(),
            subject_prefix: self.subject_prefix.get_ref().clone(),
            publish: names(&self.publish),
            publish_timeout: Duration::from_millis(*self.publish_timeout_ms.get_ref()),
            consume: names(&self.consume),
            consumer: self.consumer.get_ref().clone(),
            ack_wait: Duration::from_millis(*self.ack_wait_ms.get_ref()),
            max_deliveries: *self.max_deliveries.get_ref(),
            redeliver_after: Duration::from_millis(*self.redeliver_after_ms.get_ref()),
            in_flight: *self.in_flight.get_ref(),
            remember_completed: *self.remember_completed.get_ref(),
            ledger_bucket: self.ledger.get_ref().then(|| match &self.ledger_bucket {
                Some(bucket) => bucket.get_ref().clone(),
                None => format!("{}_completed", self.stream.get_ref()),
            }),
            ledger_max_age: Duration::from_secs(*self.ledger_max_age_s.get_ref()),
            ledger_max_bytes: *self.ledger_max_bytes.get_ref(),
            takeover_after: Duration::from_millis(*self.takeover_after_ms.get_ref()),
        }
    }
}

impl NatsSettings {
    /// Whether this host publishes `event` instead of dispatching it.
    pub fn publishes(&self, event: &str) -> bool {
        self.publish.iter().any(|e| e == event)
    }

    /// Whether this host consumes `event`.
    pub fn consumes(&self, event: &str) -> bool {
        self.consume.iter().any(|e| e == event)
    }

    /// The subject of `event`.
    pub fn subject(&self, event: &str) -> String {
        format!("{}.{event}", self.subject_prefix)
    }

    /// The dead-letter subject of `event`: `<subject_prefix>.dead-letter.<event>` (event
    /// names have no `-`, so it is never an event's subject).
    pub fn dead_letter_subject(&self, event: &str) -> String {
        format!("{}.dead-letter.{event}", self.subject_prefix)
    }

    /// The name of the durable consumer of `event` on the server.
    pub fn consumer_of(&self, event: &str) -> String {
        format!("{}-{}", self.consumer, event.replace('.', "-"))
    }
}

/// What is wrong with a `[nats]` table: where, and what to do. `declared` says whether
/// an event is declared in the manifest.
pub(super) fn problems(
    nats: &NatsTable,
    declared: impl Fn(&str) -> bool,
) -> Vec<(Range<usize>, String)> {
    let mut problems = Vec::new();
    let url = nats.url.get_ref();
    if !(url.starts_with("nats://") || url.starts_with("tls://")) || url.contains(' ') {
        problems.push((
            nats.url.span(),
            format!(
                "`nats.url` must be a server address like \"nats://127.0.0.1:4222\", not `{url}`"
            ),
        ));
    }
    let stream = nats.stream.get_ref();
    if stream.is_empty()
        || !stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        problems.push((
            nats.stream.span(),
            format!("`nats.stream` must be letters, digits, `_` and `-` (a JetStream stream name), not `{stream}`"),
        ));
    }
    let prefix = nats.subject_prefix.get_ref();
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !prefix.split('.').all(token_ok) {
        problems.push((
            nats.subject_prefix.span(),
            format!("`nats.subject_prefix` must be dot-separated tokens of letters, digits, `_` and `-`, like \"switchboard\" or \"acme.events\", not `{prefix}`"),
        ));
    }
    let timeout = *nats.publish_timeout_ms.get_ref();
    if !(1..=600_000).contains(&timeout) {
        problems.push((
            nats.publish_timeout_ms.span(),
            format!("`nats.publish_timeout_ms` must be from 1 to 600000 (it is {timeout})"),
        ));
    }
    let consumer = nats.consumer.get_ref();
    if consumer.is_empty()
        || consumer.len() > 64
        || !consumer
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        problems.push((
            nats.consumer.span(),
            format!("`nats.consumer` must be 1 to 64 letters, digits, `_` and `-` (a durable consumer's name), not `{consumer}`"),
        ));
    }
    if let Some(bucket) = &nats.ledger_bucket {
        let name = bucket.get_ref();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            problems.push((
                bucket.span(),
                format!("`nats.ledger_bucket` must be 1 to 64 letters, digits, `_` and `-` (a key-value bucket's name), not `{name}`"),
            ));
        }
    }
    let bounds: [(&str, u64, std::ops::RangeInclusive<u64>, Range<usize>); 8] = [
        (
            "ack_wait_ms",
            *nats.ack_wait_ms.get_ref(),
            100..=3_600_000,
            nats.ack_wait_ms.span(),
        ),
        (
            "max_deliveries",
            u64::from(*nats.max_deliveries.get_ref()),
            1..=1000,
            nats.max_deliveries.span(),
        ),
        (
            "redeliver_after_ms",
            *nats.redeliver_after_ms.get_ref(),
            0..=3_600_000,
            nats.redeliver_after_ms.span(),
        ),
        (
            "in_flight",
            u64::from(*nats.in_flight.get_ref()),
            1..=65_536,
            nats.in_flight.span(),
        ),
        (
            "remember_completed",
            u64::from(*nats.remember_completed.get_ref()),
            1..=10_000_000,
            nats.remember_completed.span(),
        ),
        (
            "ledger_max_age_s",
            *nats.ledger_max_age_s.get_ref(),
            60..=31_536_000,
            nats.ledger_max_age_s.span(),
        ),
        (
            "ledger_max_bytes",
            *nats.ledger_max_bytes.get_ref(),
            1 << 20..=1 << 40,
            nats.ledger_max_bytes.span(),
        ),
        (
            "takeover_after_ms",
            *nats.takeover_after_ms.get_ref(),
            100..=604_800_000,
            nats.takeover_after_ms.span(),
        ),
    ];
    for (name, value, range, span) in bounds {
        if !range.contains(&value) {
            problems.push((
                span,
                format!(
                    "`nats.{name}` must be from {} to {} (it is {value})",
                    range.start(),
                    range.end()
                ),
            ));
        }
    }
    for event in &nats.consume {
        if !declared(event.get_ref()) {
            problems.push((
                event.span(),
                format!(
                    "`nats.consume` names `{}`, which the manifest does not declare; declare it as {} (consumed messages are checked against its arguments)",
                    event.get_ref(),
                    super::event_table(event.get_ref())
                ),
            ));
        }
    }
    for event in &nats.publish {
        if !declared(event.get_ref()) {
            problems.push((
                event.span(),
                format!(
                    "`nats.publish` names `{}`, which the manifest does not declare; declare it as {} (its arguments are checked before it is published)",
                    event.get_ref(),
                    super::event_table(event.get_ref())
                ),
            ));
        }
    }
    problems
}
