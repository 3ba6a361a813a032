//! The `[serve]` table: how `switchboard serve` listens, what it accepts, and who may use
//! its admin routes.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The largest request body `max_body_bytes` may allow: 64 MiB, the bound of every other
/// input the host reads whole.
pub const MAX_BODY_LIMIT: u64 = 64 << 20;

/// The `[serve]` table. Every key is optional.
///
/// ```toml
/// [serve]
/// listen = "127.0.0.1:8080"          # loopback unless you mean otherwise
/// max_body_bytes = 1048576           # a larger body is refused with 413
/// queue = 1024                       # requests waiting for a dispatch worker; 503 past it
/// header_timeout_ms = 10000          # a client must send its headers within this
/// body_timeout_ms = 10000            # ... and its body within this
/// drain_timeout_ms = 10000           # on SIGTERM, how long requests in flight may take
/// admin_token_env = "SWITCHBOARD_ADMIN_TOKEN"   # admin routes are off without it
/// ```
///
/// This is the table as written, with where each value is (for the messages of
/// validation); the host reads [`ServeSettings`], which validation makes of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeTable {
    /// The address to listen on unless `serve --listen` gives one (default
    /// `127.0.0.1:8080`: loopback only).
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    /// The largest request body, in bytes (default 1 MiB, at most 64 MiB); a larger one is
    /// refused with 413 before it is read.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: Spanned<u64>,
    /// Requests accepted and waiting for a dispatch worker (default 1024); past it a
    /// request is refused with 503 and `Retry-After`.
    #[serde(default = "default_queue")]
    pub queue: Spanned<u64>,
    /// Threads dispatching events (default: one per core).
    #[serde(default)]
    pub workers: Option<Spanned<u64>>,
    /// How long a client has to send a request's headers, in milliseconds (default 10000);
    /// an idle keep-alive connection is closed after as long.
    #[serde(default = "default_timeout")]
    pub header_timeout_ms: Spanned<u64>,
    /// How long a client has to send a request's body, in milliseconds (default 10000).
    #[serde(default = "default_timeout")]
    pub body_timeout_ms: Spanned<u64>,
    /// On SIGTERM or SIGINT, how long requests in flight may take to finish, in
    /// milliseconds (default 10000).
    #[serde(default = "default_timeout")]
    pub drain_timeout_ms: Spanned<u64>,
    /// The environment variable that holds the bearer token of the admin routes
    /// (`POST /admin/reload`). Without it, or with the variable unset or empty, the admin
    /// routes answer 404.
    #[serde(default)]
    pub admin_token_env: Option<Spanned<String>>,
}

/// The `[serve]` table, checked: the address parsed, sizes as sizes, durations as
/// durations. See [`ServeTable`] for what each setting means and its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeSettings {
    /// The address to listen on unless `serve --listen` gives one.
    pub listen: SocketAddr,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests accepted and waiting for a dispatch worker.
    pub queue: usize,
    /// Threads dispatching events; `None`: one per core.
    pub workers: Option<usize>,
    /// How long a client has to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client has to send a request's body.
    pub body_timeout: Duration,
    /// How long requests in flight may take to finish after a stop.
    pub drain_timeout: Duration,
    /// The environment variable that holds the admin routes' bearer token.
    pub admin_token_env: Option<String>,
}

impl Default for ServeSettings {
    /// The defaults of an empty `[serve]` table.
    fn default() -> Self {
        ServeTable::default().settings()
    }
}

impl ServeTable {
    /// The checked settings (validation has parsed and bounded every value; a listen
    /// address that does not parse, which validation refuses, falls back to the default).
    pub(super) fn settings(&self) -> ServeSettings {
        let size = |n: &Spanned<u64>| usize::try_from(*n.get_ref()).unwrap_or(usize::MAX);
        let millis = |n: &Spanned<u64>| Duration::from_millis(*n.get_ref());
        ServeSettings {
            listen: self
                .listen
                .get_ref()
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            max_body_bytes: size(&self.max_body_bytes),
            queue: size(&self.queue),
            workers: self.workers.as_ref().map(size),
            header_timeout: millis(&self.header_timeout_ms),
            body_timeout: millis(&self.body_timeout_ms),
            drain_timeout: millis(&self.drain_timeout_ms),
            admin_token_env: self.admin_token_env.as_ref().map(|n| n.get_ref().clone()),
        }
    }
}

impl Default for ServeTable {
    fn default() -> Self {
        ServeTable {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            queue: default_queue(),
            workers: None,
            header_timeout_ms: default_timeout(),
            body_timeout_ms: default_timeout(),
            drain_timeout_ms: default_timeout(),
            admin_token_env: None,
        }
    }
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".to_owned())
}

fn default_max_body_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 1 << 20)
}

fn default_queue() -> Spanned<u64> {
    Spanned::new(0..0, 1024)
}

fn default_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 10_000)
}

/// What is wrong with a `[serve]` table: where, and what to do.
pub(super) fn problems(serve: &ServeTable) -> Vec<(Range<usize>, String)> {
    let mut problems = Vec::new();
    if let Err(e) = serve.listen.get_ref().parse::<SocketAddr>() {
        problems.push((
            serve.listen.span(),
            format!("`serve.listen` must be an address and port like \"127.0.0.1:8080\" ({e})"),
        ));
    }
    let ranges: [(&str, &Spanned<u64>, Range<u64>); 5] = [
        (
            "max_body_bytes",
            &serve.max_body_bytes,
            1..MAX_BODY_LIMIT + 1,
        ),
        ("queue", &serve.queue, 1..1_000_001),
        ("header_timeout_ms", &serve.header_timeout_ms, 1..3_600_001),
        ("body_timeout_ms", &serve.body_timeout_ms, 1..3_600_001),
        ("drain_timeout_ms", &serve.drain_timeout_ms, 0..86_400_001),
    ];
    for (key, value, allowed) in ranges
        .into_iter()
        .chain(serve.workers.iter().map(|w| ("workers", w, 1..513u64)))
    {
        if !allowed.contains(value.get_ref()) {
            problems.push((
                value.span(),
                format!(
                    "`serve.{key}` must be from {} to {} (it is {})",
                    allowed.start,
                    allowed.end - 1,
                    value.get_ref()
                ),
            ));
        }
    }
    if let Some(name) = &serve.admin_token_env {
        let valid = !name.get_ref().is_empty()
            && name
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.get_ref().starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            problems.push((
                name.span(),
                format!(
                    "`serve.admin_token_env` must name an environment variable, like \"SWITCHBOARD_ADMIN_TOKEN\" (letters, digits and `_`), not `{}`: the token itself never goes in the manifest",
                    name.get_ref()
                ),
            ));
        }
    }
    problems
}
