//! The `[nats]` table: how a host shares events with other hosts through NATS JetStream.

use std::ops::Range;

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
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsSettings {
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

impl NatsSettings {
    /// Whether this host publishes `event` instead of dispatching it.
    pub fn publishes(&self, event: &str) -> bool {
        self.publish.iter().any(|e| e.get_ref() == event)
    }

    /// The subject of `event`.
    pub fn subject(&self, event: &str) -> String {
        format!("{}.{event}", self.subject_prefix.get_ref())
    }
}

/// What is wrong with a `[nats]` table: where, and what to do. `declared` says whether
/// an event is declared in the manifest.
pub(super) fn problems(
    nats: &NatsSettings,
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
    for event in &nats.publish {
        if !declared(event.get_ref()) {
            problems.push((
                event.span(),
                format!(
                    "`nats.publish` names `{}`, which the manifest does not declare; declare it as [events.{}] (its arguments are checked before it is published)",
                    event.get_ref(),
                    event.get_ref()
                ),
            ));
        }
    }
    problems
}
