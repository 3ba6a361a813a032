//! `switchboard serve`: a running host as an HTTP service.
//!
//! - `POST /events/{event}` with a JSON object of arguments dispatches the event and
//!   answers with every callback's outcome (200 when all succeeded, 500 when one failed or
//!   was skipped; 400 for bad JSON or arguments, 404 for an undeclared event, 413 for a
//!   body over `serve.max_body_bytes`, 503 with `Retry-After` when the queue is full).
//! - `GET /metrics`: Prometheus text, measured by the host.
//! - `GET /healthz` (the process is up) and `GET /readyz` (ready, not stopping).
//! - `GET /`: a status page for a person.
//! - `POST /admin/reload`: off unless the manifest names an environment variable holding a
//!   bearer token.
//!
//! HTTP runs on a small tokio runtime of its own ([`HTTP_THREADS`] threads); events are
//! dispatched by the host library's event service ([`switchboard::service::Service`]):
//! each request is submitted with a reply that serializes its answer on the worker, and
//! the same workers take the events of the sources (a NATS consumer). A stop
//! ([`Stop::stop`], which `switchboard serve` calls on SIGTERM or SIGINT) stops accepting
//! connections, lets the requests in flight finish and be answered, and returns; the
//! caller then shuts the plugins down.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::Switchboard;
//! use switchboard_serve::{serve, Options, Stop};
//!
//! let host = Switchboard::open("events.toml".as_ref())?;
//! let stop = Arc::new(Stop::new());
//! let settings = host.current().manifest().serve().clone();
//! let report = serve(&host, &settings, Options::default(), &stop)?;
//! println!("answered {} event requests", report.events);
//! host.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod answer;
/// The metrics `/metrics` exports (the `switchboard-metrics` package).
pub use switchboard_metrics as metrics;
mod routes;
mod status_page;
mod unread;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use switchboard::manifest::ServeSettings;
use switchboard::service::{self as events, Service, ServiceConfig, Source, StartError};
use switchboard::Switchboard;
use tokio::sync::{Notify, Semaphore};

pub use routes::CALLBACK_FAILED;

/// Threads of the HTTP runtime (parsing, routing, writing answers; never dispatch).
pub const HTTP_THREADS: usize = 2;

/// The most connections open at once; past it, new ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4096;

/// How long the answers to requests a drain gave up on have to be written.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// A reload: builds the next generation and makes it current; its number, or why it was
/// refused (the running generation goes on).
pub type Reload = Arc<dyn Fn() -> Result<u64, String> + Send + Sync>;

/// What the caller adds to the manifest's `[serve]` settings.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The address to listen on instead of `serve.listen` (`serve --listen`).
    pub listen: Option<SocketAddr>,
    /// What `POST /admin/reload` runs.
    pub reload: Option<Reload>,
    /// Where the events the manifest publishes go (NATS) instead of the plugins.
    pub forward: Option<Arc<dyn switchboard::service::Forward>>,
    /// Sources of events from elsewhere (a NATS consumer), dispatched by the same workers.
    pub sources: Vec<Arc<dyn Source>>,
    /// The metrics to count into and export, when the caller shares them (with a NATS
    /// publisher or consumer); new ones otherwise.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// The most connections open at once, when fewer than [`MAX_CONNECTIONS`] fit the
    /// process's limit on open files.
    pub max_connections: Option<usize>,
}

impl Options {
    /// Listens on `address` instead of the manifest's.
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = Some(address);
        self
    }

    /// Lets `POST /admin/reload` run `reload`.
    pub fn reload(mut self, reload: Reload) -> Self {
        self.reload = Some(reload);
        self
    }

    /// Hands the events `forward` takes to it instead of dispatching them.
    pub fn forward(mut self, forward: Arc<dyn switchboard::service::Forward>) -> Self {
        self.forward = Some(forward);
        self
    }

    /// Dispatches the events of `source` too: started with the workers, stopped before
    /// them.
    pub fn source(mut self, source: Arc<dyn Source>) -> Self {
        self.sources.push(source);
        self
    }

    /// Holds at most `connections` open at once (at most [`MAX_CONNECTIONS`]); the ones
    /// past it wait in the listen backlog.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections.clamp(1, MAX_CONNECTIONS));
        self
    }

    /// Counts into `metrics` (and exports them) instead of new ones.
    pub fn metrics(mut self, metrics: Arc<metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// A request to stop the server, from any thread.
#[derive(Debug, Default)]
pub struct Stop {
    asked: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Not stopping.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Stop accepting connections; finish and answer the requests in flight.
    pub fn stop(&self) {
        self.asked.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    async fn wait(&self) {
        while !self.asked.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }
}

/// What a server did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The address it listened on.
    pub listened: Option<SocketAddr>,
    /// Whether every request in flight at the stop was answered within the drain timeout.
    pub drained: bool,
    /// Requests answered with a 503 because the drain gave up on them (their events had
    /// not started, or were still running).
    pub abandoned: u64,
    /// Event requests answered.
    pub events: u64,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be listened on.
    #[error("cannot listen on {address}: {source}; pass `--listen` with another address or port, or stop what uses it")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A thread or the runtime could not be started.
    #[error("cannot start the server's threads: {0}")]
    Threads(std::io::Error),
    /// A source of events (a NATS consumer) could not start.
    #[error("{0}")]
    Source(String),
}

/// Serves `host` over HTTP until `stop`; see the crate's documentation.
pub fn serve(
    host: &Switchboard,
    settings: &ServeSettings,
    options: Options,
    stop: &Stop,
) -> Result<Report, ServeError> {
    let address = options.listen.unwrap_or(settings.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(HTTP_THREADS)
        .thread_name("switchboard-http")
        .enable_all()
        .build()
        .map_err(ServeError::Threads)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(address))
        .map_err(|source| ServeError::Listen { address, source })?;
    let listened = listener.local_addr().unwrap_or(address);

    let queue = settings.queue;
    let workers = settings.workers.unwrap_or_else(|| {
        // As `run`: one per core (more only add switching on a busy machine: 1.1x
        // fewer requests per second with twice as many in `bench/serve.sh`).
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2)
    });
    let metrics = options
        .metrics
        .clone()
        .unwrap_or_else(|| Arc::new(metrics::Metrics::new(queue)));
    metrics.capacity(queue);
    // Nested emits and `plugin.failed` reports are counted as they happen, in this
    // generation and every one a reload starts.
    let observer = Arc::clone(&metrics);
    if !host.observe(Arc::new(move |generation, event, outcomes| {
        observer.dispatched(generation, event, outcomes)
    })) {
        tracing::warn!("the host already has an observer: nested emits are left out of /metrics");
    }
    let drain_timeout = settings.drain_timeout;
    let mut config = ServiceConfig::default()
        .with_workers(workers)
        .with_queue(queue)
        .with_drain_timeout(drain_timeout);
    if let Some(forward) = options.forward.clone() {
        config = config.with_forward(forward);
    }
    for source in &options.sources {
        config = config.with_source(Arc::clone(source));
    }
    let service = Service::start(host, &config).map_err(|e| match e {
        StartError::Source(why) => ServeError::Source(why),
        other => ServeError::Threads(std::io::Error::other(other)),
    })?;
    let admin_token = settings.admin_token_env.as_ref().and_then(|name| {
        let token = std::env::var(name).ok().filter(|t| !t.is_empty());
        if token.is_none() {
            tracing::warn!(
                "admin routes are off: the environment variable `{name}` named by `serve.admin_token_env` is not set"
            );
        }
        token
    });
    let shared = Arc::new(routes::Shared {
        host: host.watch(),
        service,
        metrics,
        max_body_bytes: settings.max_body_bytes,
        body_timeout: settings.body_timeout,
        draining: AtomicBool::new(false),
        admin_token,
        reload: options.reload,
        started: Instant::now(),
        listening: format!("http://{listened}"),
        next_id: AtomicU64::new(1),
    });
    let router = routes::router(Arc::clone(&shared));
    tracing::info!(
        "serving on http://{listened} ({workers} dispatch workers, queue {queue}); events go to POST /events/{{event}}, status at /"
    );

    let header_timeout = settings.header_timeout;
    let drained = runtime.block_on(async {
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(
            options.max_connections.unwrap_or(MAX_CONNECTIONS),
        ));
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => permit,
                () = stop.wait() => break,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.wait() => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(router.clone()),
                );
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("connection from {peer} ended: {e}");
                }
                drop(permit);
            });
        }
        drop(listener);
        shared.draining.store(true, Ordering::Release);
        tracing::info!(
            "stopping: no new connections; finishing the requests in flight (at most {} s)",
            drain_timeout.as_secs_f64()
        );
        let finishing = graceful.shutdown();
        tokio::pin!(finishing);
        let drained = tokio::select! {
            () = &mut finishing => true,
            () = tokio::time::sleep(drain_timeout) => false,
        };
        if drained {
            return true;
        }
        // Every accepted request still gets an answer: a 503 that says why, written
        // within a moment.
        let waiting = shared.service.depth();
        shared.service.abandon();
        tracing::warn!(
            "the drain timeout ({} s) ended: {waiting} request(s) not yet dispatched and the ones still running answered with 503",
            drain_timeout.as_secs_f64()
        );
        let _ = tokio::time::timeout(ANSWER_WITHIN, &mut finishing).await;
        false
    });
    // Sources stop taking events, and their events finish (and are acknowledged) while
    // the workers still run; then the workers finish, at once if the drain gave up.
    let stop = events::Stop::new();
    stop.drain();
    if !drained {
        stop.abandon();
    }
    let service = shared.service.drain(&stop);
    let finished = service.sources_drained && !service.gave_up;
    if drained && !finished {
        tracing::warn!(
            "some events were still running when the drain timeout ({} s) ended",
            drain_timeout.as_secs_f64()
        );
    }
    let events = shared.metrics.events_answered();
    // Connections still open after the drain are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(Report {
        listened: Some(listened),
        drained: drained && finished,
        abandoned: service.abandoned,
        events,
    })
}
