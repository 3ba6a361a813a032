//! `switchboard list`: plugins, events and callbacks in dispatch order. Runs no plugin
//! code but the plugins' static registration.

use std::process::ExitCode;

use serde_json::json;
use switchboard::manifest::builtin::is_builtin;
use switchboard::manifest::{BreakerSettings, ProcessLimits};
use switchboard::{Manifest, Prepared};

use crate::cli::{exit, Cli, Format};
use crate::output::seconds;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let prepared = Prepared::new(manifest)?;
    match cli.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&as_json(&prepared))?),
        Format::Text => print!("{}", as_text(&prepared)),
    }
    Ok(exit::ok())
}

/// The breaker's settings as a rule, not a state: `list` runs no plugin, so every plugin
/// it shows is on.
fn describe_breaker(b: BreakerSettings) -> String {
    if b.failures == 0 {
        "breaker: disabled (failures = 0)".to_owned()
    } else {
        format!(
            "breaker: after {} failures within {}, skip its calls for {}",
            b.failures,
            seconds(b.window_ms),
            seconds(b.cooldown_ms)
        )
    }
}

/// `in process`, or `in 2 worker processes, 5 s per call, 256 MiB`.
fn describe_isolation(limits: Option<ProcessLimits>) -> String {
    let Some(limits) = limits else {
        return "in process".to_owned();
    };
    let mut text = format!(
        "in {} worker process{}, {} per call",
        limits.processes,
        if limits.processes == 1 { "" } else { "es" },
        seconds(limits.timeout_ms)
    );
    if let Some(mb) = limits.memory_mb {
        text.push_str(&format!(", {mb} MiB"));
    }
    text
}

fn as_json(prepared: &Prepared) -> serde_json::Value {
    let registry = prepared.registry();
    json!({
        "plugins": prepared.plugins().map(|p| json!({
            "name": p.name,
            "state": if prepared.quarantined(&p.name).is_some() { "quarantined" } else { "on" },
            "quarantine": prepared.quarantined(&p.name),
            "isolation": p.isolation.name(),
            "limits": p.limits.map(|l| json!({
                "timeout_ms": l.timeout_ms, "processes": l.processes, "memory_mb": l.memory_mb,
            })),
            "breaker": {
                "failures": p.breaker.failures,
                "window_ms": p.breaker.window_ms,
                "cooldown_ms": p.breaker.cooldown_ms,
            },
            "library": p.path,
            "crate": p.info.name,
            "version": p.info.version,
            "kind": crate::inspect::kind_name(p.info.kind()),
            "plugin_api": p.info.api_version,
        })).collect::<Vec<_>>(),
        "events": registry.events().iter().map(|e| json!({
            "name": e.name,
            "doc": e.doc,
            "args": e.schema.names().zip(&e.schema.types)
                .map(|(n, t)| (n.to_owned(), json!(t.to_string())))
                .collect::<serde_json::Map<_, _>>(),
            "result": e.result.to_string(),
            "nats": prepared.manifest().nats().map(|n| json!({
                "published": n.publishes(&e.name),
                "consumed": n.consumes(&e.name),
                "subject": n.subject(&e.name),
            })),
            "callbacks": e.callbacks.iter().map(|id| {
                let c = registry.callback(*id);
                json!({"plugin": c.plugin_name, "callback": c.name, "priority": c.priority})
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// How `event` crosses to or from NATS on this host, if it does.
fn nats_crossing(prepared: &Prepared, event: &str) -> Option<String> {
    let nats = prepared.manifest().nats()?;
    let (stream, subject) = (&nats.stream, nats.subject(event));
    match (nats.publishes(event), nats.consumes(event)) {
        (false, false) => None,
        (true, false) => Some(format!(
            "published to NATS stream {stream} as {subject} by emit, run and serve (the callbacks below run here only for emits from plugins)"
        )),
        (false, true) => Some(format!(
            "consumed from NATS stream {stream} ({subject}) by run and serve, as durable consumer {}",
            nats.consumer_of(event)
        )),
        (true, true) => Some(format!(
            "published to NATS stream {stream} as {subject}, and consumed from it by run and serve (durable consumer {})",
            nats.consumer_of(event)
        )),
    }
}

fn as_text(prepared: &Prepared) -> String {
    let registry = prepared.registry();
    let mut text = String::from("plugins, in load order:\n");
    let width = prepared.plugins().map(|p| p.name.len()).max().unwrap_or(0);
    for p in prepared.plugins() {
        let state = match prepared.quarantined(&p.name) {
            Some(reason) => format!(
                "QUARANTINED ({reason}); `switchboard quarantine --clear {}` lifts it",
                p.name
            ),
            None => "on".to_owned(),
        };
        text.push_str(&format!(
            "  {:width$}  {} {} ({})  {}\n  {:width$}  {state}; {}; {}\n",
            p.name,
            p.info.name,
            p.info.version,
            p.info.interface(),
            p.path.display(),
            "",
            describe_isolation(p.limits),
            describe_breaker(p.breaker),
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
        if let Some(crossing) = nats_crossing(prepared, &e.name) {
            text.push_str(&format!("    {crossing}\n"));
        }
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
