//! The baseline of `bench/serve.sh`: an axum hello-world server on the same runtime shape
//! as `switchboard serve` (a multi-threaded tokio runtime of the same size), answering
//! every POST with a short JSON body, so that the benchmark measures what serving events
//! adds over HTTP itself.
//!
//! `cargo run --release -p switchboard-serve --example hello_world -- 127.0.0.1:8081`

// The same allocator as the `switchboard` binary, so that the two differ only in what
// serving events adds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::routing::post;
use axum::Router;

fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(switchboard_serve::HTTP_THREADS)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = Router::new().route("/events/{event}", post(|| async { "{\"ok\":true}" }));
        let listener = tokio::net::TcpListener::bind(&address).await?;
        eprintln!("hello world on http://{address}");
        axum::serve(listener, app).await
    })
}
