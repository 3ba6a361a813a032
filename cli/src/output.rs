//! Rendering outcomes for people and for scripts.

use serde_json::Value as Json;
use switchboard::service::OutcomesJson;
use switchboard::{Generation, Outcomes};

/// One outcome per callback as JSON: `{"plugin", "callback", "value"}` or `{"plugin",
/// "callback", "error": {"message", "help", "panic"}}`.
pub fn outcomes_json(generation: &Generation, outcomes: &Outcomes) -> Json {
    serde_json::to_value(OutcomesJson {
        generation,
        outcomes,
    })
    .unwrap_or(Json::Null)
}

/// Writes to standard output for `print!`/`println!` (see main.rs): a closed pipe ends the
/// output quietly, another error is said once on standard error.
pub fn to_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if STDOUT.load(Ordering::Relaxed) != WRITING {
        return;
    }
    if let Err(error) = std::io::stdout().lock().write_fmt(text) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT.store(CLOSED, Ordering::Relaxed);
        } else {
            STDOUT.store(FAILED, Ordering::Relaxed);
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot write to standard output: {error}"
            );
        }
    }
}

use std::sync::atomic::{AtomicU8, Ordering};

const WRITING: u8 = 0;
const CLOSED: u8 = 1;
const FAILED: u8 = 2;
static STDOUT: AtomicU8 = AtomicU8::new(WRITING);

/// Whether writing to standard output failed for another reason than a closed pipe: the
/// output is incomplete, which the exit code must say.
pub fn stdout_failed() -> bool {
    STDOUT.load(Ordering::Relaxed) == FAILED
}

/// Result text to a claimed output (see `process::claim_stdout`), with the same rule: a
/// reader that went away is not an error.
pub fn write_quietly(out: &mut impl std::io::Write, text: &str) -> std::io::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `10 s`, `1.5 s`, `250 ms`.
pub fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else if ms > 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// `1 plugin`, `3 plugins`: a count with its noun, for messages people read.
pub fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Aligned lines: `  plugin.callback  ok     value` / `  plugin.callback  error  message`.
pub fn outcomes_text(generation: &Generation, event: &str, outcomes: &Outcomes) -> String {
    let mut text = format!("{event}: {} ran", count(outcomes.len() as u64, "callback"));
    let failed = outcomes.failures().count();
    if failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    text.push('\n');
    let names: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let c = generation.callback(o.callback);
            format!("{}.{}", c.plugin_name, c.name)
        })
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    for (name, outcome) in names.iter().zip(outcomes) {
        match &outcome.result {
            Ok(value) => text.push_str(&format!("  {name:width$}  ok     {value}\n")),
            Err(error) => {
                let what = error.kind_name();
                text.push_str(&format!("  {name:width$}  {what:5}  {}\n", error.message()));
                if let Some(help) = error.help() {
                    text.push_str(&format!("  {:width$}         help: {help}\n", ""));
                }
            }
        }
    }
    text
}
