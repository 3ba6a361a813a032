//! `switchboard check`: validate the manifest, check every plugin file, then load and
//! initialize every plugin. `--pin` prints (or writes) each library's SHA-256 instead.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use switchboard::load::{library_file, sha256_of};
use switchboard::manifest::LoadErrorPolicy;
use switchboard::{Manifest, Switchboard, ValidManifest};

use crate::cli::{exit, Cli, Format};
use crate::output::count;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Print each plugin's `sha256` pin for the library files as they are now.
    #[arg(long)]
    pub pin: bool,

    /// With --pin: write the pins into the manifest (comments and layout are kept).
    #[arg(long, requires = "pin")]
    pub write: bool,
}

pub fn run(cli: &Cli, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    if args.pin {
        return pin(cli, &manifest, args.write);
    }

    // Every file problem at once, before any library is loaded.
    let refused: Vec<_> = manifest
        .plugins()
        .iter()
        .filter(|e| e.on_load_error == LoadErrorPolicy::Fail)
        .filter_map(|e| library_file(e, manifest.plugin_dir()).err())
        .collect();
    if !refused.is_empty() {
        match cli.format {
            Format::Json => eprintln!(
                "{}",
                json!({"error": {
                    "kind": "check",
                    "message": format!("{} cannot be loaded", count(refused.len() as u64, "plugin")),
                    "plugins": refused.iter().map(|e| json!({
                        "plugin": e.plugin(), "kind": e.kind(), "message": e.to_string()
                    })).collect::<Vec<_>>(),
                }})
            ),
            Format::Text => {
                for error in &refused {
                    eprintln!("error: {error}");
                }
                eprintln!("{} cannot be loaded", count(refused.len() as u64, "plugin"));
            }
        }
        return Ok(exit::bad_input());
    }

    let host = Switchboard::start(manifest)?;
    let board = host.current();
    let registry = board.registry();
    let events = registry
        .events()
        .iter()
        .filter(|e| !switchboard::manifest::builtin::is_builtin(&e.name))
        .count();
    let plugins = board.live_plugins();
    let skipped: Vec<_> = board.skipped().to_vec();
    let callbacks: usize = registry.events().iter().map(|e| e.callbacks.len()).sum();
    let warnings = board.emit_warnings();
    drop(board);
    let failures = host.shutdown();
    let ok = failures.is_empty();
    match cli.format {
        Format::Json => println!(
            "{}",
            json!({
                "ok": ok,
                "manifest": cli.manifest,
                "events": events,
                "plugins": plugins,
                "skipped": skipped.iter().map(|s| json!({"plugin": s.name, "error": s.error})).collect::<Vec<_>>(),
                "callbacks": callbacks,
                "warnings": warnings,
                "shutdown_failures": failures.iter().map(|f| json!({
                    "plugin": f.plugin, "message": f.error.message()
                })).collect::<Vec<_>>(),
            })
        ),
        Format::Text => {
            println!(
                "{}: {}: {}, {}, {}{}",
                cli.manifest.display(),
                if ok {
                    "ok"
                } else {
                    "loaded, but shutdown failed"
                },
                count(events as u64, "event"),
                count(plugins as u64, "plugin"),
                count(callbacks as u64, "callback"),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(", {} skipped", skipped.len())
                }
            );
            for s in &skipped {
                println!("  skipped {}: {}", s.name, s.error);
            }
            for warning in &warnings {
                println!("  warning: {warning}");
            }
        }
    }
    Ok(if ok {
        exit::ok()
    } else {
        exit::callback_failed()
    })
}

/// Prints `name sha256 path` per plugin, or writes the pins into the manifest.
fn pin(cli: &Cli, manifest: &ValidManifest, write: bool) -> anyhow::Result<ExitCode> {
    let mut pins = Vec::new();
    for entry in manifest.plugins() {
        let path = entry.library.clone();
        let hash = sha256_of(&path).with_context(|| {
            format!(
                "plugin `{}`: cannot read {} to pin it",
                entry.name,
                path.display()
            )
        })?;
        pins.push((entry.name.clone(), hash, path));
    }
    if write {
        let mut doc: toml_edit::DocumentMut = manifest.source().parse()?;
        if let Some(tables) = doc
            .get_mut("plugins")
            .and_then(toml_edit::Item::as_array_of_tables_mut)
        {
            for table in tables.iter_mut() {
                let name = table
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_owned);
                if let Some((_, hash, _)) = pins.iter().find(|(n, _, _)| Some(n) == name.as_ref()) {
                    table["sha256"] = toml_edit::value(hash.as_str());
                }
            }
        }
        crate::add::write_checked(manifest.path(), &doc.to_string())?;
    }
    match cli.format {
        Format::Json => println!(
            "{}",
            json!({"written": write, "pins": pins.iter().map(|(n, h, p)| json!({
                "plugin": n, "sha256": h, "library": p
            })).collect::<Vec<_>>()})
        ),
        Format::Text => {
            for (name, hash, path) in &pins {
                println!("{name}: sha256 = \"{hash}\"  # {}", path.display());
            }
            if write {
                println!(
                    "pinned {} plugins in {}",
                    pins.len(),
                    manifest.path().display()
                );
            }
        }
    }
    Ok(exit::ok())
}
