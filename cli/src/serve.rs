//! `switchboard serve`: the host as an HTTP service ([`switchboard_serve`]): events in,
//! metrics, health checks and a status page.
//!
//! With `[nats] consume` in the manifest it also pulls those events from NATS and
//! dispatches them on the same workers (see [`switchboard_nats`]).
//!
//! SIGTERM or SIGINT stops accepting connections (and pulling from NATS), lets the requests in flight finish and be
//! answered, runs `host.stopping` and every plugin's shutdown, and exits 0. A second signal
//! exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use switchboard::service::Traffic;
use switchboard::Switchboard;
use switchboard_nats::{Connection, Consumer, Forwarder, Publisher};
use switchboard_serve::metrics::Metrics;
use switchboard_serve::{serve, Options, Reload, Stop};

use crate::cli::{exit, Cli};

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
    crate::process::on_stop({
        let stop = Arc::clone(&stop);
        move |signal, count| {
            if count == 1 {
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
    let settings = host.current().manifest().serve.clone();
    let mut options = Options::default().reload(reloader(&host, cli.manifest.clone()));
    if let Some(address) = args.listen {
        options = options.listen(address);
    }
    let metrics = Arc::new(Metrics::new(*settings.queue.get_ref() as usize));
    options = options.metrics(Arc::clone(&metrics));
    // Events the manifest publishes go to NATS instead of the plugins; the events it
    // consumes come from NATS to them.
    let manifest = host.current().manifest().clone();
    if let Some(nats) = manifest
        .nats
        .as_ref()
        .filter(|n| !n.publish.is_empty() || !n.consume.is_empty())
    {
        let connection = Connection::open(nats)?;
        if !nats.publish.is_empty() {
            let forwarder = Forwarder::new(Publisher::on(Arc::clone(&connection)))
                .counting(Arc::clone(&metrics) as Arc<dyn Traffic>);
            options = options.forward(Arc::new(forwarder));
        }
        if !nats.consume.is_empty() {
            let state = manifest.base_dir().join(".switchboard");
            let consumer = Consumer::on(connection, &state, Some(metrics as Arc<dyn Traffic>))?;
            options = options.source(Arc::new(consumer));
        }
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
    Ok(exit::ok())
}

/// What `POST /admin/reload` runs: [`Switchboard::reload`], reported on the log.
fn reloader(host: &Arc<Switchboard>, manifest: PathBuf) -> Reload {
    let host = Arc::clone(host);
    Arc::new(move || crate::reload::reload(&host, &manifest, "POST /admin/reload"))
}
