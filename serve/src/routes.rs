//! The routes: events in, metrics, health, the status page and the admin routes. Every
//! answer that is not the status page or the metrics is JSON, and every error says what to
//! do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body::Body as _;
use serde_json::{json, Value as Json};
use switchboard::dispatch::StrictJson;
use switchboard::{CurrentGeneration, EmitError};
use tokio::sync::oneshot;

use switchboard::service::{self as events, Busy, Refusal, Service};

use crate::answer::{Dispatched, HttpReply};
use crate::metrics::{Metrics, EVENTS_ROUTE};
use crate::unread::close_after;
use crate::Reload;

/// The status code of an event one of whose callbacks failed (or was skipped): the body
/// lists every callback's outcome, as `emit --format json` prints it.
pub const CALLBACK_FAILED: StatusCode = StatusCode::INTERNAL_SERVER_ERROR;

/// The longest caller id kept (`X-Request-Id`); a longer one is refused.
const MAX_ID_BYTES: usize = 200;

/// What every route shares.
pub(crate) struct Shared {
    pub(crate) host: CurrentGeneration,
    /// The host's event service: its workers dispatch every event request.
    pub(crate) service: Service,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    /// Set when a stop was asked for: `/readyz` says 503.
    pub(crate) draining: AtomicBool,
    /// The admin token, when admin routes are on.
    pub(crate) admin_token: Option<String>,
    pub(crate) reload: Option<Reload>,
    pub(crate) started: Instant,
    pub(crate) listening: String,
    /// Ids for requests that came without one.
    pub(crate) next_id: AtomicU64,
}

type App = State<Arc<Shared>>;

/// The router over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    // The events route knows whether it read its body and says so itself (`emit`); a
    // watching middleware would cost each event request an allocation and a boxed future.
    let watched = Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/admin/reload", post(reload))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::unread::close_if_unread));
    Router::new()
        .route("/events/{event}", post(emit))
        .merge(watched)
        .with_state(shared)
}

/// A JSON error: `{"error": {"kind", "message"}}`.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"kind": kind, "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

/// Counts the answer of `route` and passes it on.
fn answered(app: &Shared, route: &'static str, response: Response) -> Response {
    app.metrics.answered(route, response.status().as_u16());
    response
}

async fn not_found(State(app): App) -> Response {
    let response = error(
        StatusCode::NOT_FOUND,
        "http.not_found",
        "no such route; events go to POST /events/{event}; see also GET /, /metrics, /healthz, /readyz",
    );
    answered(&app, "other", response)
}

async fn healthz(State(app): App) -> Response {
    answered(&app, "/healthz", (StatusCode::OK, "ok\n").into_response())
}

async fn readyz(State(app): App) -> Response {
    let response = if app.draining.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    };
    answered(&app, "/readyz", response)
}

async fn metrics(State(app): App) -> Response {
    let text = app.metrics.render(
        &app.host.get(),
        app.service.depth(),
        &app.service.event_counts(),
    );
    let response = (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response();
    answered(&app, "/metrics", response)
}

async fn status_page(State(app): App) -> Response {
    let page = crate::status_page::render(
        &app.host.get(),
        &app.service.recent_failures(),
        app.started.elapsed(),
        &app.listening,
        app.service.depth(),
        &app.service.event_counts(),
        &app.metrics.crossings(),
    );
    answered(&app, "/", Html(page).into_response())
}

/// `POST /events/{event}` with a JSON object of arguments.
async fn emit(
    State(app): App,
    event: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    // The headers are read in place (the `HeaderMap` extractor would copy them).
    let (parts, body) = request.into_parts();
    let mut read = body.is_end_stream();
    let mut response = match event {
        Ok(Path(event)) => {
            app.metrics.in_flight(1);
            let (id, mut response) =
                emit_inner(&app, &event, &parts.headers, body, &mut read).await;
            app.metrics.in_flight(-1);
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert("x-request-id", value);
            }
            response
        }
        Err(_) => {
            let message = "the event's name in the path is not UTF-8 once percent-decoded; events go to POST /events/{event} with a declared event's name";
            error(StatusCode::BAD_REQUEST, "http.bad_path", message)
        }
    };
    if !read {
        // The rest of the body is left on the connection, which the server then closes.
        close_after(&mut response);
    }
    answered(&app, EVENTS_ROUTE, response)
}

async fn emit_inner(
    app: &Shared,
    event: &str,
    headers: &HeaderMap,
    body: Body,
    read: &mut bool,
) -> (String, Response) {
    let id = match headers.get("x-request-id").map(HeaderValue::to_str) {
        Some(Ok(id)) if !id.is_empty() && id.len() <= MAX_ID_BYTES => id.to_owned(),
        Some(_) => {
            let id = format!("sb-{}", app.next_id.fetch_add(1, Ordering::Relaxed));
            let message =
                format!("`X-Request-Id` must be 1 to {MAX_ID_BYTES} bytes of visible ASCII");
            return (id, error(StatusCode::BAD_REQUEST, "http.bad_id", message));
        }
        None => format!("sb-{}", app.next_id.fetch_add(1, Ordering::Relaxed)),
    };
    if let Err(e) = app.host.with(|generation| generation.event(event)) {
        return (id, emit_error(&e));
    }
    let too_large = || {
        app.service.refused(event, Refusal::BadArguments);
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "http.body_too_large",
            format!(
                "the body is over the limit of {} bytes; send smaller events or raise `serve.max_body_bytes`",
                app.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        return (id, too_large());
    }
    let limited = http_body_util::Limited::new(body, app.max_body_bytes);
    let collect = tokio::time::timeout(app.body_timeout, http_body_util::BodyExt::collect(limited));
    let bytes = match collect.await {
        Ok(Ok(collected)) => {
            *read = true;
            collected.to_bytes()
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return (id, too_large()),
        Ok(Err(e)) => {
            app.service.refused(event, Refusal::Unreadable);
            let message = format!("the body could not be read: {e}");
            return (id, error(StatusCode::BAD_REQUEST, "http.bad_body", message));
        }
        Err(_) => {
            app.service.refused(event, Refusal::Unreadable);
            let message = format!(
                "the body did not arrive within {} ms (`serve.body_timeout_ms`)",
                app.body_timeout.as_millis()
            );
            return (
                id,
                error(StatusCode::REQUEST_TIMEOUT, "http.body_timeout", message),
            );
        }
    };
    let args = match serde_json::from_slice::<StrictJson>(&bytes) {
        Ok(StrictJson(Json::Object(args))) => args,
        Ok(_) => {
            app.service.refused(event, Refusal::BadArguments);
            let message = "the body must be a JSON object of arguments, like {\"name\": \"Ann\"}";
            return (
                id,
                error(StatusCode::BAD_REQUEST, "emit.not_an_object", message),
            );
        }
        Err(e) => {
            app.service.refused(event, Refusal::BadArguments);
            let message = format!(
                "the body is not valid JSON: {e}; send a JSON object of arguments, like {{\"name\": \"Ann\"}}"
            );
            return (id, error(StatusCode::BAD_REQUEST, "emit.bad_json", message));
        }
    };
    let (reply, answer) = oneshot::channel();
    let request = events::Request {
        event: event.to_owned(),
        args,
        id: id.clone(),
        reply: Box::new(HttpReply { answer: reply }),
    };
    if let Err(declined) = app.service.submit(request) {
        let (why, kind, message) = match declined.0 {
            Busy::Full => (
                Refusal::QueueFull,
                "http.queue_full",
                "too many events are waiting; retry after a second (or raise `serve.queue`)",
            ),
            _ => (Refusal::Stopping, "http.stopping", "the server is stopping"),
        };
        app.service.refused(event, why);
        let mut response = error(StatusCode::SERVICE_UNAVAILABLE, kind, message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (id, response);
    }
    let answer = answer.await;
    let response = match answer {
        Ok(Dispatched::Abandoned(why)) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "http.abandoned", why);
            close_after(&mut response);
            response
        }
        Ok(Dispatched::Done { ok, failed, body }) => {
            if !ok {
                tracing::warn!("request {id}: event `{event}` had {failed} failed callback(s)");
            }
            let status = if ok { StatusCode::OK } else { CALLBACK_FAILED };
            let json = [(header::CONTENT_TYPE, "application/json")];
            (status, json, body).into_response()
        }
        Ok(Dispatched::Refused(e)) => emit_error(&e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "http.lost",
            "the dispatch worker stopped before answering",
        ),
    };
    tracing::debug!("request {id}: `{event}` answered {}", response.status());
    (id, response)
}

/// An emit refused by the host: 404 for an event the manifest does not declare (with the
/// closest name), 503 once the host is shutting down, 400 for arguments.
fn emit_error(e: &EmitError) -> Response {
    let status = match e {
        EmitError::UnknownEvent { .. } => StatusCode::NOT_FOUND,
        EmitError::ShutDown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.kind(), e.to_string())
}

/// `POST /admin/reload` with `Authorization: Bearer <token>`.
async fn reload(State(app): App, headers: HeaderMap) -> Response {
    let Some(token) = &app.admin_token else {
        let response = error(
            StatusCode::NOT_FOUND,
            "http.admin_off",
            "admin routes are off: set `serve.admin_token_env` in the manifest to the name of an environment variable that holds a token",
        );
        return answered(&app, "/admin/reload", response);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|given| same_secret(given.as_bytes(), token.as_bytes())) {
        // The token is never logged, right or wrong.
        tracing::warn!(
            "admin request to /admin/reload refused: {}",
            if given.is_some() {
                "wrong bearer token"
            } else {
                "no bearer token"
            }
        );
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "http.unauthorized",
            "send the admin token as `Authorization: Bearer <token>`",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return answered(&app, "/admin/reload", response);
    }
    let Some(reload) = app.reload.clone() else {
        let response = error(
            StatusCode::NOT_IMPLEMENTED,
            "http.no_reload",
            "this server was started without a way to reload",
        );
        return answered(&app, "/admin/reload", response);
    };
    // Loading libraries and running `init` blocks: off the runtime's threads.
    let result = tokio::task::spawn_blocking(move || reload()).await;
    let response = match result {
        Ok(Ok(generation)) => {
            tracing::info!("reloaded: generation {generation} serves events now");
            (
                StatusCode::OK,
                axum::Json(json!({"generation": generation})),
            )
                .into_response()
        }
        Ok(Err(message)) => {
            tracing::error!("reload refused, the running generation goes on: {message}");
            error(StatusCode::UNPROCESSABLE_ENTITY, "reload.refused", message)
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload.panicked",
            "the reload panicked; the running generation goes on",
        ),
    };
    answered(&app, "/admin/reload", response)
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (n, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(n).copied().unwrap_or(0));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
        assert!(!same_secret(b"S3cret", b"s3cret"));
    }
}
