//! `switchboard emit EVENT key=value ...`: dispatch one event and print the results.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;
use switchboard::{Manifest, Prepared, Switchboard};
use switchboard_plugin_api::Value;

use crate::cli::{exit, Cli, Format};
use crate::output::{outcomes_json, outcomes_text};
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
}

pub fn run(cli: &Cli, args: &EmitArgs) -> anyhow::Result<ExitCode> {
    // Arguments are checked before any plugin runs: bad input has no side effects.
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let prepared = Prepared::new(manifest)?;
    let event = prepared.registry().resolve(&args.event)?;
    let decl = prepared.registry().event(event)?;
    let values: Vec<Value<'static>> = match &args.json {
        Some(text) => {
            let json: serde_json::Value = serde_json::from_str(text)
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
                prompt::ask_missing(decl, &mut pairs, &mut stdin.lock(), &mut std::io::stderr())?;
            }
            decl.text_args(pairs.iter().map(|(n, t)| (n.as_str(), t.as_str())))?
        }
    };
    let host = Switchboard::with(prepared.start()?);
    let board = host.current();
    let outcomes = board.emit(event, &values)?;
    let failed = outcomes.has_failures();
    match cli.format {
        Format::Json => println!(
            "{}",
            json!({
                "event": args.event,
                "ok": !failed,
                "results": outcomes_json(&board, &outcomes),
            })
        ),
        Format::Text => print!("{}", outcomes_text(&board, &args.event, &outcomes)),
    }
    drop((outcomes, board));
    // Shutdown failures are logged by the runtime; they do not change the exit code.
    host.shutdown();
    Ok(if failed {
        exit::callback_failed()
    } else {
        exit::ok()
    })
}
