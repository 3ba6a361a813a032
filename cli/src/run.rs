//! `switchboard run`: JSON-lines events on stdin, one result line per event on stdout,
//! through the library's event service ([`switchboard::service`]); a summary on stderr.
//!
//! SIGINT or SIGTERM stops accepting input; every accepted event is finished and the
//! plugins shut down. A second signal exits at once.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::json;
use switchboard::service::{self, Report, ServiceConfig};
use switchboard::{Generation, Switchboard};

use crate::cli::{exit, Cli, Format};
use crate::output::count;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Worker threads dispatching events [default: the number of cores].
    #[arg(long, short = 'w', value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Events accepted ahead of the workers; when the queue is full, reading waits.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,

    /// Print result lines in input order, even with several workers.
    #[arg(long)]
    pub ordered: bool,
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let host = Switchboard::open(&cli.manifest)?;
    let mut config = ServiceConfig::default()
        .with_queue(args.queue as usize)
        .with_ordered(args.ordered);
    if let Some(workers) = args.workers {
        config = config.with_workers(usize::from(workers));
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while draining exits at once, with the conventional code.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let report =
        service::run_json_lines(&host, std::io::stdin(), std::io::stdout(), &config, &stop)?;
    host.shutdown();
    print_summary(cli, &host.current(), &report);
    Ok(if report.bad_lines > 0 {
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
                        "breaker_trips": p.trips,
                    })
                })
                .collect();
            eprintln!(
                "{}",
                json!({
                    "summary": {
                        "accepted": report.accepted, "events": report.dispatched,
                        "bad_lines": report.bad_lines, "stopped_by_signal": report.stopped,
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
            for p in &plugins {
                let state = p
                    .breaker
                    .map_or_else(|| "off".to_owned(), |b| b.to_string());
                eprintln!(
                    "  {}: {}, {} failed ({}), {} skipped; {state}{}",
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
