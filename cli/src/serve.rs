//! `switchboard serve`: the host as an HTTP service ([`switchboard_serve`]): events in,
//! metrics, health checks and a status page.
//!
//! With `[nats] consume` in the manifest it also pulls those events from NATS and
//! dispatches them on the same workers (see [`switchboard_nats`]).
//!
//! SIGTERM or SIGINT stops accepting connections (and pulling from NATS), lets the requests in flight finish and be
//! answered, runs `host.stopping` and every plugin's shutdown, and exits 0. When the drain
//! timeout ends first, the requests still waiting are answered with a 503 that says why,
//! and the exit code is 128 + the signal's number. A second signal exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use switchboard::service::Traffic;
use switchboard::Switchboard;
use switchboard_metrics::Metrics;
use switchboard_serve::{serve, Options, Reload, Stop};

use crate::cli::{exit, Cli};
use crate::crossing::Crossing;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on [default: `serve.listen` in the manifest, or
    /// 127.0.0.1:8080]. Port 0 picks a free port (the log says which).
    #[arg(long, short = 'l', value_name = "ADDRESS:PORT")]
    pub listen: Option<SocketAddr>,

    /// Reload when the manifest or a plugin library it names changes (SIGHUP and
    /// `POST /admin/reload` always reload).
    #[arg(long)]
    pub watch: bool,
}

pub fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(Stop::new());
    let stopped_by = Arc::new(std::sync::atomic::AtomicI32::new(0));
    crate::process::on_stop({
        let (stop, stopped_by) = (Arc::clone(&stop), Arc::clone(&stopped_by));
        move |signal, count| {
            if count == 1 {
                stopped_by.store(signal, std::sync::atomic::Ordering::Relaxed);
                stop.stop();
            } else {
                eprintln!("error: interrupted again (signal {signal}); exiting without waiting for requests in flight");
                crate::process::ending();
                std::process::exit(128 + signal.clamp(1, 127));
            }
        }
    })?;
    let host = Arc::new(Switchboard::open(&cli.manifest)?);
    crate::reload::on_hangup(&host, &cli.manifest)?;
    let _watching = match args.watch {
        true => Some(crate::reload::watch(&host, &cli.manifest)?),
        false => None,
    };
    let settings = host.current().manifest().serve().clone();
    let mut options = Options::default().reload(reloader(&host, cli.manifest.clone()));
    if let Some(open_files) = crate::process::raise_open_files_limit() {
        // Files for the plugins, the libraries, the log and NATS, beside the connections.
        let connections = open_files.saturating_sub(FILES_KEPT_FOR_THE_HOST) as usize;
        if connections < switchboard_serve::MAX_CONNECTIONS {
            tracing::warn!(
                "this process may open {open_files} files (ulimit -n), so serve holds at most {connections} connections at once, not {}; raise the limit (LimitNOFILE= in a systemd unit) to hold more",
                switchboard_serve::MAX_CONNECTIONS
            );
        }
        options = options.max_connections(connections.max(1));
    }
    if let Some(address) = args.listen {
        options = options.listen(address);
    }
    let metrics = Arc::new(Metrics::new(settings.queue));
    options = options.metrics(Arc::clone(&metrics));
    // Events the manifest publishes go to NATS instead of the plugins; the events it
    // consumes come from NATS to them.
    let crossing = Crossing::open(&host, Some(metrics as Arc<dyn Traffic>))?;
    if let Some(forward) = crossing.forward {
        options = options.forward(forward);
    }
    if let Some(source) = crossing.source {
        options = options.source(source);
    }
    let report = serve(&host, &settings, options, &stop)?;
    let failures = host.shutdown();
    tracing::info!(
        "stopped: {} event request(s) answered{}; plugins shut down{}",
        report.events,
        if report.drained {
            ""
        } else {
            " (some were cut off at the drain timeout)"
        },
        if failures.is_empty() {
            String::new()
        } else {
            format!(" ({} with errors, logged above)", failures.len())
        },
    );
    if !report.drained {
        // The drain gave up: not a clean stop, whatever the plugins' shutdown said.
        let signal = stopped_by.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "error: the drain timeout ended before every request finished: {} answered with 503 (serve.drain_timeout_ms)",
            report.abandoned
        );
        return Ok(std::process::ExitCode::from(
            (128 + signal.clamp(1, 127)) as u8,
        ));
    }
    Ok(exit::ok())
}

/// Open files kept for the host itself when serve sizes its connections to the limit.
const FILES_KEPT_FOR_THE_HOST: u64 = 128;

/// What `POST /admin/reload` runs: [`Switchboard::reload`], reported on the log.
fn reloader(host: &Arc<Switchboard>, manifest: PathBuf) -> Reload {
    let host = Arc::clone(host);
    Arc::new(move || crate::reload::reload(&host, &manifest, "POST /admin/reload"))
}
