//! `switchboard emit EVENT key=value ...`: dispatch one event and print the results.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use switchboard::dispatch::StrictJson;
use switchboard::service::Outgoing;
use switchboard::{Manifest, Outcomes, Prepared, Switchboard};
use switchboard_plugin_api::Value;

use crate::cli::{exit, Cli, Format};
use crate::output::{outcomes_json, outcomes_text, write_quietly};
use crate::prompt;

#[derive(Debug, clap::Args)]
pub struct EmitArgs {
    /// The event to emit, as declared in the manifest.
    pub event: String,

    /// Arguments as `name=value`; values are read as the declared type (JSON for
    /// lists and maps).
    #[arg(value_name = "NAME=VALUE", conflicts_with = "json")]
    pub args: Vec<String>,

    /// All arguments as one JSON object instead, e.g. '{"name": "Ann"}'.
    #[arg(long, value_name = "OBJECT")]
    pub json: Option<String>,

    /// Ask for every declared argument not given, one per line on stdin (prompts go to
    /// stderr). This is the default when stdin is a terminal.
    #[arg(long, short = 'i', conflicts_with = "json")]
    pub interactive: bool,

    /// The event's id: what its callbacks see (`host.event_id()`), and for an event the
    /// manifest publishes to NATS, the id the stream stores once, however often it is
    /// published [default: one made up].
    #[arg(long)]
    pub id: Option<String>,
}

pub fn run(cli: &Cli, args: &EmitArgs) -> anyhow::Result<ExitCode> {
    // Arguments are checked before any plugin runs: bad input has no side effects.
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let prepared = Prepared::new(manifest)?;
    let event = prepared.registry().resolve(&args.event)?;
    let decl = prepared.registry().event(event)?;
    let values: Vec<Value<'static>> = match &args.json {
        Some(text) => {
            let StrictJson(json) = serde_json::from_str(text)
                .with_context(|| format!("--json is not valid JSON: {text}"))?;
            let Some(object) = json.as_object() else {
                bail!("--json must be a JSON object of arguments, like '{{\"name\": \"Ann\"}}'");
            };
            decl.json_args(object)?
        }
        None => {
            let mut pairs = Vec::with_capacity(args.args.len());
            for pair in &args.args {
                let Some((name, text)) = pair.split_once('=') else {
                    bail!("argument `{pair}` is not NAME=VALUE");
                };
                pairs.push((name.to_owned(), text.to_owned()));
            }
            if args.interactive || std::io::stdin().is_terminal() {
                let stdin = std::io::stdin();
                prompt::ask_missing(
                    &decl.name,
                    &decl.schema,
                    &mut pairs,
                    &mut stdin.lock(),
                    &mut std::io::stderr(),
                )?;
            }
            decl.text_args(pairs.iter().map(|(n, t)| (n.as_str(), t.as_str())))?
        }
    };
    if let Some(nats) = prepared
        .manifest()
        .nats()
        .filter(|n| n.publishes(&args.event))
    {
        return publish(cli, args, nats, decl, &values);
    }
    let interrupted = Arc::new(AtomicI32::new(0));
    crate::process::on_stop({
        let interrupted = Arc::clone(&interrupted);
        move |signal, count| {
            interrupted.store(signal, Ordering::Relaxed);
            if count == 1 {
                // The event finishes and the plugins shut down, unless a callback hangs.
                std::thread::spawn(move || {
                    std::thread::sleep(EMIT_DRAIN);
                    give_up(signal, "the event is still running");
                });
            } else {
                give_up(signal, "interrupted again");
            }
        }
    })?;
    let mut results = crate::process::claim_stdout()?;
    let host = Switchboard::with(prepared.start()?);
    let board = host.current();
    // The callbacks see the event's id: `--id`, or one the host makes.
    let mut outcomes = Outcomes::new();
    outcomes.set_event_id(args.id.as_deref());
    board.emit_into(event, &values, &mut outcomes)?;
    board.record(&outcomes);
    let failed = outcomes.has_failures();
    let text = match cli.format {
        Format::Json => format!(
            "{}\n",
            json!({
                "event": args.event,
                "ok": !failed,
                "results": outcomes_json(&board, &outcomes),
            })
        ),
        Format::Text => outcomes_text(&board, &args.event, &outcomes),
    };
    write_quietly(&mut results, &text)?;
    drop((outcomes, board));
    // Shutdown failures are logged by the runtime; they do not change the exit code.
    host.shutdown();
    let signal = interrupted.load(Ordering::Relaxed);
    Ok(if signal != 0 {
        tracing::warn!(
            "interrupted by signal {signal}: the event finished and the plugins shut down"
        );
        ExitCode::from((128 + signal.clamp(1, 127)) as u8)
    } else if failed {
        exit::callback_failed()
    } else {
        exit::ok()
    })
}

/// Publishes the event to NATS instead of dispatching it (the manifest says so), and says
/// where it was stored.
fn publish(
    cli: &Cli,
    args: &EmitArgs,
    nats: &switchboard::manifest::NatsSettings,
    decl: &switchboard::dispatch::Event,
    values: &[Value<'static>],
) -> anyhow::Result<ExitCode> {
    let object: serde_json::Map<String, serde_json::Value> = decl
        .schema
        .names
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.is_null())
        .map(|(name, value)| (name.to_string(), value.to_json()))
        .collect();
    let outgoing = Outgoing::checked(decl, &object, args.id.as_deref(), 1)?;
    let id = outgoing.id.as_str();
    let publisher = switchboard_nats::Publisher::connect(nats)?;
    let published = publisher.publish(outgoing.event, outgoing.args, id)?;
    let mut results = crate::process::claim_stdout()?;
    let text = match cli.format {
        Format::Json => format!(
            "{}\n",
            json!({
                "event": args.event,
                "id": id,
                "ok": true,
                "published": published.to_json(),
            })
        ),
        Format::Text => format!(
            "{}: published to stream {} as message {} (id {}){}\n",
            args.event,
            published.stream,
            published.sequence,
            id,
            if published.duplicate {
                "; the stream had this id already, so it is stored once"
            } else {
                ""
            }
        ),
    };
    write_quietly(&mut results, &text)?;
    Ok(exit::ok())
}

/// How long a signal waits for the running event before the command exits without it.
const EMIT_DRAIN: Duration = Duration::from_secs(10);

/// Exits at once, without shutting plugins down: a callback is still running and cannot be
/// stopped in-process.
fn give_up(signal: i32, why: &str) -> ! {
    eprintln!(
        "error: interrupted by signal {signal}, and {why}; exiting without shutting the plugins down (a callback that never returns needs isolation = \"process\")"
    );
    crate::process::ending();
    std::process::exit(128 + signal.clamp(1, 127))
}
