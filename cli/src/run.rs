//! `switchboard run`: JSON-lines events on stdin, one result line per event on stdout,
//! through the library's event service ([`switchboard::service`]); a summary on stderr.
//!
//! SIGINT or SIGTERM stops accepting input; the accepted events are finished within
//! `--drain-timeout`, then the plugins shut down. A second signal stops waiting at once.
//! Either way every accepted line gets its result line, and a run stopped before the end
//! of its input exits with 128 + the signal's number. A second signal while the plugins
//! shut down (each within `[host] setup_timeout_ms`) exits at once.
//!
//! With `[nats] consume` in the manifest, the consumed events are dispatched beside the
//! input's lines, on the same workers (they have no result lines: NATS is answered). The
//! end of the input then does not end the run: it goes on consuming until SIGINT or
//! SIGTERM, which stops consuming, lets the consumed events in flight finish and be
//! acknowledged, and drains the lines as above (exit 0 when everything finished).
//!
//! Result lines own standard output: whatever plugins print there goes to standard error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use switchboard::service::{self, Report, ServiceConfig, Stop, MAX_QUEUE, MAX_WORKERS};
use switchboard::{Generation, Switchboard};
use switchboard_metrics::Metrics;

use crate::cli::{exit, Cli, Format};
use crate::crossing::Crossing;
use crate::output::{count, seconds};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Worker threads dispatching events, 1 to 512 [default: the number of cores].
    #[arg(long, short = 'w', value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS as i64))]
    pub workers: Option<u16>,

    /// Events accepted but not yet written out, 1 to 1000000; when that many are in the
    /// host, reading waits (memory stays bounded, even with --ordered).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=MAX_QUEUE as i64))]
    pub queue: u32,

    /// Print result lines in input order, even with several workers.
    #[arg(long)]
    pub ordered: bool,

    /// The longest input line in bytes; a longer one gets an error result and is skipped.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub max_line_bytes: u64,

    /// Seconds a stop (SIGINT, SIGTERM) waits for accepted events before answering the
    /// rest with an error.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub drain_timeout: f64,

    /// Reload when the manifest or a plugin library it names changes (SIGHUP always
    /// reloads).
    #[arg(long)]
    pub watch: bool,

    /// At the end, write the host's counters to FILE in Prometheus text format: the same
    /// metrics `serve` exports at /metrics (call times are sampled, one emit in 64).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "`{text}` is not a number of seconds from 0 to 86400"
        )),
    }
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    // Signals first: one that arrives while plugins start still stops the run cleanly.
    let stop = Arc::new(Stop::new());
    let signal = Arc::new(AtomicI32::new(0));
    let shutting_down = Arc::new(AtomicBool::new(false));
    crate::process::on_stop({
        let (stop, signal, shutting_down) = (
            Arc::clone(&stop),
            Arc::clone(&signal),
            Arc::clone(&shutting_down),
        );
        move |number, count| {
            if count == 1 {
                signal.store(number, Ordering::Relaxed);
                stop.drain();
            } else if shutting_down.load(Ordering::Acquire) {
                // Every line has its result already; only the plugins' shutdown is left.
                eprintln!("error: interrupted again (signal {number}) while the plugins shut down; exiting without waiting for them");
                crate::process::ending();
                std::process::exit(128 + number.clamp(1, 127));
            } else {
                stop.abandon();
            }
        }
    })?;
    let results = crate::process::claim_stdout()?;
    let host = Arc::new(Switchboard::open(&cli.manifest)?);
    let metrics = args.metrics.as_ref().map(|_| {
        let metrics = Arc::new(Metrics::new(args.queue as usize));
        let observer = Arc::clone(&metrics);
        host.observe(Arc::new(move |generation, event, outcomes| {
            observer.dispatched(generation, event, outcomes)
        }));
        metrics
    });
    crate::reload::on_hangup(&host, &cli.manifest)?;
    let _watching = match args.watch {
        true => Some(crate::reload::watch(&host, &cli.manifest)?),
        false => None,
    };
    let mut config = ServiceConfig::default()
        .with_queue(args.queue as usize)
        .with_ordered(args.ordered)
        .with_max_line_bytes(usize::try_from(args.max_line_bytes).unwrap_or(usize::MAX))
        .with_drain_timeout(Duration::from_secs_f64(args.drain_timeout));
    if let Some(workers) = args.workers {
        config = config.with_workers(usize::from(workers));
    }
    // Events the manifest publishes go to NATS instead of this host's plugins; the events
    // it consumes come from NATS to them, beside the input's.
    let traffic = metrics
        .as_ref()
        .map(|m| Arc::clone(m) as Arc<dyn service::Traffic>);
    let crossing = Crossing::open(&host, traffic)?;
    if let Some(forward) = crossing.forward {
        config = config.with_forward(forward);
    }
    if let Some(source) = crossing.source {
        config = config.with_source(source);
    }

    let report = service::run_json_lines(&host, std::io::stdin(), results, &config, &stop)?;
    shutting_down.store(true, Ordering::Release);
    if report.still_running.is_empty() {
        host.shutdown();
    } else {
        // A plugin still inside a callback must not be shut down under it.
        tracing::warn!(
            "plugins not shut down: event(s) {:?} are still inside a callback",
            report.still_running
        );
    }
    print_summary(cli, &host.current(), &report);
    if !report.sources_drained {
        eprintln!("error: the drain timeout ended before every consumed event finished; NATS delivers those again (--drain-timeout)");
    }
    if let (Some(path), Some(metrics)) = (&args.metrics, &metrics) {
        std::fs::write(path, metrics.render(&host.current(), 0, &report.events))
            .with_context(|| format!("cannot write the metrics to {}", path.display()))?;
    }
    if !report.still_running.is_empty() {
        // Dropping the host would shut the plugins down; the process exits instead.
        std::mem::forget(Arc::clone(&host));
    }
    let signal = signal.load(Ordering::Relaxed);
    if let Some(error) = &report.output_failed {
        eprintln!(
            "error: cannot write result lines to standard output: {error}; the run stopped reading there, and the results of {} accepted events were not all written (free space, or send the output elsewhere)",
            report.accepted
        );
        return Ok(exit::output_failed());
    }
    Ok(if report.output_closed {
        // The reader went away (`run | head`): quiet, with the shell's code for SIGPIPE.
        ExitCode::from(141)
    } else if report.input_remained || report.abandoned > 0 || !report.sources_drained {
        ExitCode::from((128 + signal.clamp(1, 127)) as u8)
    } else if report.bad_lines > 0 {
        exit::bad_input()
    } else if report.failed_events > 0 {
        exit::callback_failed()
    } else {
        exit::ok()
    })
}

fn print_summary(cli: &Cli, generation: &Generation, report: &Report) {
    let plugins = generation.plugins();
    match cli.format {
        Format::Json => {
            let plugins: Vec<_> = plugins
                .iter()
                .map(|p| {
                    json!({
                        "plugin": p.meta.name, "calls": p.counts.calls, "failed": p.counts.errors,
                        "panicked": p.counts.panics, "skipped": p.counts.skipped,
                        "mean_ns": p.counts.mean_nanos(),
                        "breaker": p.breaker.map_or_else(|| "off".to_owned(), |b| b.to_string()),
                        "breaker_trips": p.trips, "retry_in_ms": p.retry_in_ms,
                        "isolated": p.isolated.as_ref().map(|i| json!({
                            "crashes": i.crashes, "kills": i.kills, "restarts": i.restarts,
                            "quarantined": i.quarantined,
                        })),
                    })
                })
                .collect();
            eprintln!(
                "{}",
                json!({
                    "summary": {
                        "accepted": report.accepted, "events": report.dispatched,
                        "bad_lines": report.bad_lines, "stopped_by_signal": report.stopped,
                        "input_remained": report.input_remained, "abandoned": report.abandoned,
                        "output_closed": report.output_closed,
                        "output_failed": report.output_failed,
                        "still_running": report.still_running,
                        "consumed": report.consumed, "consumed_failed": report.consumed_failed,
                        "generation": generation.number(),
                        "plugins": plugins,
                    }
                })
            );
        }
        Format::Text if !cli.quiet => {
            eprintln!(
                "run: {} accepted{}, {} dispatched, {}",
                count(report.accepted, "event"),
                if report.stopped {
                    " (stopped by signal)"
                } else {
                    ""
                },
                report.dispatched,
                count(report.bad_lines, "bad line")
            );
            if report.input_remained {
                eprintln!("  input was left unread: the run was stopped before its end");
            }
            if report.consumed > 0 || report.consumed_failed > 0 {
                eprintln!(
                    "  consumed from NATS: {} ({} failed or refused: NATS delivers those again or dead-letters them)",
                    count(report.consumed, "event"),
                    report.consumed_failed
                );
            }
            if report.output_closed {
                eprintln!("  standard output was closed by its reader: the run stopped there");
            }
            if let Some(error) = &report.output_failed {
                eprintln!("  writing to standard output failed ({error}): the run stopped there");
            }
            if report.abandoned > 0 {
                eprintln!(
                    "  {} answered with an error when the drain gave up{}",
                    count(report.abandoned, "event"),
                    if report.still_running.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({:?} still inside a callback: isolate that plugin)",
                            report.still_running
                        )
                    }
                );
            }
            for p in &plugins {
                let state = match (p.breaker, p.retry_in_ms) {
                    (None, _) => "off (it failed to start)".to_owned(),
                    (Some(state), Some(ms)) => {
                        format!("{state} (next trial call in {})", seconds(ms))
                    }
                    (Some(state), None) => state.to_string(),
                };
                let workers = match &p.isolated {
                    Some(i) => {
                        let mut text = format!(
                            "; workers: {} crashed, {} killed at the time limit, {} restarted",
                            i.crashes, i.kills, i.restarts
                        );
                        if let Some(reason) = &i.quarantined {
                            text.push_str(&format!("; QUARANTINED: {reason}"));
                        }
                        text
                    }
                    None => String::new(),
                };
                eprintln!(
                    "  {}: {}, {} failed ({}), {} skipped; {state}{}{workers}",
                    p.meta.name,
                    count(p.counts.calls, "call"),
                    p.counts.errors,
                    count(p.counts.panics, "panic"),
                    p.counts.skipped,
                    if p.trips > 0 {
                        format!(", switched off {}", count(p.trips, "time"))
                    } else {
                        String::new()
                    }
                );
            }
        }
        Format::Text => {}
    }
}
