//! `switchboard list`: plugins, events and callbacks in dispatch order. Runs no plugin
//! code but the plugins' static registration.

use std::process::ExitCode;

use serde_json::json;
use switchboard::builtin::is_builtin;
use switchboard::registry::Registry;
use switchboard::Manifest;

use super::{exit, Cli, Format};

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let (registry, _libraries) = Registry::build(&manifest)?;
    match cli.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&as_json(&registry))?),
        Format::Text => print!("{}", as_text(&registry)),
    }
    Ok(exit::ok())
}

fn as_json(registry: &Registry) -> serde_json::Value {
    json!({
        "plugins": registry.plugins().iter().map(|p| json!({
            "name": p.name,
            "library": p.path,
            "crate": p.info.name,
            "version": p.info.version,
            "plugin_api": p.info.api_version,
        })).collect::<Vec<_>>(),
        "events": registry.events().iter().map(|e| json!({
            "name": e.name,
            "doc": e.doc,
            "args": e.schema.names().zip(&e.schema.types)
                .map(|(n, t)| (n.to_owned(), json!(t.to_string())))
                .collect::<serde_json::Map<_, _>>(),
            "result": e.result.to_string(),
            "callbacks": e.callbacks.iter().map(|id| {
                let c = registry.callback(*id);
                json!({"plugin": c.plugin_name, "callback": c.name, "priority": c.priority})
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn as_text(registry: &Registry) -> String {
    let mut text = String::from("plugins, in load order:\n");
    let width = registry
        .plugins()
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in registry.plugins() {
        text.push_str(&format!(
            "  {:width$}  {} {} (plugin-api {})  {}\n",
            p.name,
            p.info.name,
            p.info.version,
            p.info.api_version,
            p.path.display()
        ));
    }
    text.push_str("\nevents, callbacks in dispatch order:\n");
    let mut unheard = Vec::new();
    for e in registry.events() {
        if is_builtin(&e.name) && e.callbacks.is_empty() {
            unheard.push(e.name.as_str());
            continue;
        }
        let args: Vec<String> = e
            .schema
            .names()
            .zip(&e.schema.types)
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        text.push_str(&format!("  {}({})", e.name, args.join(", ")));
        if e.result != switchboard::manifest::ResultPolicy::All {
            text.push_str(&format!("  result = {}", e.result));
        }
        if !e.doc.is_empty() {
            text.push_str(&format!("  # {}", e.doc));
        }
        text.push('\n');
        if e.callbacks.is_empty() {
            text.push_str("    (no callbacks)\n");
        }
        for (i, id) in e.callbacks.iter().enumerate() {
            let c = registry.callback(*id);
            text.push_str(&format!("    {}. {}.{}", i + 1, c.plugin_name, c.name));
            if c.priority != 0 {
                text.push_str(&format!("  (priority {})", c.priority));
            }
            text.push('\n');
        }
    }
    if !unheard.is_empty() {
        text.push_str(&format!(
            "built-in events without callbacks: {}\n",
            unheard.join(", ")
        ));
    }
    text
}
