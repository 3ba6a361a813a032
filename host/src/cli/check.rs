//! `switchboard check`: validate the manifest and load every plugin.

use std::process::ExitCode;

use serde_json::json;
use switchboard::Switchboard;

use super::{exit, Cli, Format};

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let mut board = Switchboard::open(&cli.manifest)?;
    let registry = board.registry();
    let events = registry
        .events()
        .iter()
        .filter(|e| !switchboard::builtin::is_builtin(&e.name))
        .count();
    let plugins = registry.plugins().len();
    let callbacks: usize = registry.events().iter().map(|e| e.callbacks.len()).sum();
    let failures = board.shutdown();
    let ok = failures.is_empty();
    match cli.format {
        Format::Json => println!(
            "{}",
            json!({
                "ok": ok,
                "manifest": cli.manifest,
                "events": events,
                "plugins": plugins,
                "callbacks": callbacks,
                "shutdown_failures": failures.iter().map(|f| json!({
                    "plugin": f.plugin, "message": f.error.message()
                })).collect::<Vec<_>>(),
            })
        ),
        Format::Text => {
            println!(
                "{}: {}: {events} events, {plugins} plugins, {callbacks} callbacks",
                cli.manifest.display(),
                if ok {
                    "ok"
                } else {
                    "loaded, but shutdown failed"
                },
            );
        }
    }
    Ok(if ok {
        exit::ok()
    } else {
        exit::callback_failed()
    })
}
