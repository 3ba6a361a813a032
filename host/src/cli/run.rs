//! `switchboard run`: JSON-lines events on stdin, one result line per event on stdout.
//!
//! Input line: `{"event": "user_joined", "args": {...}, "id": "optional"}`.
//! Output line: `{"seq": N, "id": ..., "event": ..., "ok": bool, "results": [...]}`, or
//! `{"seq": N, "id": ..., "error": "..."}` for a line that could not be dispatched.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::json;
use switchboard::Switchboard;

use super::output::outcomes_json;
use super::{exit, Cli};

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    event: String,
    #[serde(default)]
    args: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

#[derive(Debug, Default)]
struct Totals {
    events: u64,
    callbacks: u64,
    failed_callbacks: u64,
    bad_lines: u64,
}

pub fn run(cli: &Cli, _args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut board = Switchboard::open(&cli.manifest)?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut totals = Totals::default();
    for (index, line) in stdin.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let seq = index as u64 + 1;
        let reply = handle(&board, seq, &line, &mut totals);
        serde_json::to_writer(&mut stdout, &reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    // Shutdown failures are logged by the runtime; they do not change the exit code.
    board.shutdown();
    tracing::info!(
        "run finished: {} events, {} callbacks, {} failed callbacks, {} bad lines",
        totals.events,
        totals.callbacks,
        totals.failed_callbacks,
        totals.bad_lines
    );
    Ok(if totals.bad_lines > 0 {
        exit::bad_input()
    } else if totals.failed_callbacks > 0 {
        exit::callback_failed()
    } else {
        exit::ok()
    })
}

fn handle(board: &Switchboard, seq: u64, line: &str, totals: &mut Totals) -> serde_json::Value {
    let input: Input = match serde_json::from_str(line) {
        Ok(input) => input,
        Err(e) => {
            totals.bad_lines += 1;
            return json!({"seq": seq, "error": format!("line {seq} is not a valid event: {e}")});
        }
    };
    match board.emit_json(&input.event, &input.args) {
        Ok(outcomes) => {
            totals.events += 1;
            totals.callbacks += outcomes.len() as u64;
            let failed = outcomes.failures().count() as u64;
            totals.failed_callbacks += failed;
            json!({
                "seq": seq,
                "id": input.id,
                "event": input.event,
                "ok": failed == 0,
                "results": outcomes_json(board, &outcomes),
            })
        }
        Err(e) => {
            totals.bad_lines += 1;
            json!({"seq": seq, "id": input.id, "event": input.event, "error": e.to_string()})
        }
    }
}
