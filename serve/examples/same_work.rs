//! The second baseline of `bench/serve.sh`: an axum server that does the work `switchboard
//! serve` does for the reference workload, with nothing of switchboard in the way. It reads
//! and parses the JSON body, checks the two declared string arguments, runs three
//! "callbacks" (a read-modify-write of a counter each, as the `bench` plugin's `count`
//! does with `rmw = true`) on the HTTP thread that took the request, and answers with the
//! same JSON body and headers, serialized the same way. Against it, `serve` shows what
//! the rest costs: the hand-off to the service's workers and back, the manifest's checks,
//! the counts and the plugin boundary.
//!
//! `cargo run --release -p switchboard-serve --example same_work -- 127.0.0.1:8082`

// The same allocator as the `switchboard` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{Map, Value};

/// The three callbacks' counters, as the three `bench` plugins keep theirs.
static COUNTERS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Ids for requests, as `serve` makes them (`sb-N`).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The plugins of the reference workload, in dispatch order.
const PLUGINS: [&str; 3] = ["bench1", "bench2", "bench3"];

/// One callback's outcome, as `serve` writes it.
#[derive(serde::Serialize)]
struct Outcome {
    plugin: &'static str,
    callback: &'static str,
    value: Option<u64>,
}

/// The answer, as `serve` writes it.
#[derive(serde::Serialize)]
struct Answer<'a> {
    event: &'a str,
    id: &'a str,
    ok: bool,
    generation: u64,
    request: u64,
    results: [Outcome; 3],
}

async fn emit(Path(event): Path<String>, body: Bytes) -> Response {
    let id = format!("sb-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let Ok(args) = serde_json::from_slice::<Map<String, Value>>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON object").into_response();
    };
    for name in ["name", "email"] {
        if !args.get(name).is_some_and(Value::is_string) {
            return (StatusCode::BAD_REQUEST, "an argument is missing").into_response();
        }
    }
    let request = NEXT_ID.load(Ordering::Relaxed);
    let results = [0, 1, 2].map(|n| {
        let counter = &COUNTERS[n];
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Outcome {
            plugin: PLUGINS[n],
            callback: "count",
            value: None,
        }
    });
    let answer = Answer {
        event: &event,
        id: &id,
        ok: true,
        generation: 1,
        request,
        results,
    };
    let body = serde_json::to_vec(&answer).unwrap_or_default();
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8082".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(switchboard_serve::HTTP_THREADS)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = Router::new().route("/events/{event}", post(emit));
        let listener = tokio::net::TcpListener::bind(&address).await?;
        eprintln!("same work on http://{address}");
        axum::serve(listener, app).await
    })
}
