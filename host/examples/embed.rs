//! Embedding the host: the example in the README's "Embedding the host" section, kept
//! compiling by the test suite (and checked to match the README word for word).
use std::error::Error;

use switchboard::service::{self, Answer, Request, Service, ServiceConfig, Stop};
use switchboard::{Generation, Manifest, Outcomes, Prepared, Switchboard};
use switchboard_plugin_api::Value;

fn main() -> Result<(), Box<dyn Error>> {
    // Parse and validate, open and check every library, then run the plugins' `init`.
    let manifest = Manifest::load_valid("events.toml".as_ref())?;
    let prepared = Prepared::new(manifest)?;
    let host = Switchboard::with(prepared.start()?);

    // Emit on the current generation: resolve the event once, then emit by handle.
    let board = host.current();
    let joined = board.event("user_joined")?;
    let args = [Value::borrowed("Ann"), Value::borrowed("ann@example.com")];
    let outcomes = board.emit(joined, &args)?;
    for outcome in &outcomes {
        let callback = board.callback(outcome.callback);
        println!(
            "{}.{}: {:?}",
            callback.plugin_name, callback.name, outcome.result
        );
    }

    // The hot path: no allocation per emit; count the outcomes when you want them counted.
    let mut reused = Outcomes::new();
    board.emit_into(joined, &args, &mut reused)?;
    board.record(&reused);

    // By name, with arguments by name or as JSON.
    board.emit_named(
        "user_lookup",
        [("email", Value::borrowed("ann@example.com"))],
    )?;

    // The host's counters, per plugin (and per callback with `callback_counts`).
    for plugin in board.plugins() {
        println!(
            "{}: {} calls, {} errors",
            plugin.meta.name, plugin.counts.calls, plugin.counts.errors
        );
    }

    // A new generation from an edited manifest, swapped in while others emit; the old one
    // shuts its plugins down when its last emit is done.
    let next = Generation::start(Manifest::load_valid("events.toml".as_ref())?)?;
    drop(host.swap(next));

    // Or a stream of JSON lines through the event service, as `switchboard run` does.
    let input =
        std::io::Cursor::new(r#"{"event": "user_lookup", "args": {"email": "ann@example.com"}}"#);
    let stop = Stop::new(); // stop.drain() from another thread ends the run early
    let report = service::run_json_lines(
        &host,
        input,
        std::io::stdout(),
        &ServiceConfig::default(),
        &stop,
    )?;
    println!("{} dispatched", report.dispatched);

    // Or the event service fed by your own code: a request travels with its reply, which
    // a worker calls once with the answer. `serve` is this behind HTTP; a NATS consumer
    // (`ServiceConfig::with_source`) feeds the same workers.
    let service = Service::start(&host, &ServiceConfig::default())?;
    let (tx, rx) = std::sync::mpsc::channel();
    let args = serde_json::json!({"email": "ann@example.com"});
    let request = Request {
        event: "user_lookup".into(),
        args: args.as_object().cloned().unwrap_or_default(),
        id: "lookup-1".into(),
        reply: Box::new(move |answer: Answer<'_>| {
            let _ = tx.send(matches!(answer, Answer::Dispatched { .. }));
        }),
    };
    match service.submit(request) {
        Ok(()) => println!("dispatched: {}", rx.recv()?),
        Err(declined) => eprintln!("not taken ({:?}): send it again later", declined.0),
    }
    // The sources stop, and the accepted requests finish within the drain timeout.
    let report = service.stop();
    println!("{} requests answered", report.requests);

    // host.stopping, then every plugin's shutdown; their failures are returned.
    drop(board);
    for failure in host.shutdown() {
        eprintln!("{} failed to shut down: {}", failure.plugin, failure.error);
    }
    Ok(())
}
