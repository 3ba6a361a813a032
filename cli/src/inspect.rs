//! `switchboard inspect LIB`: what a library exports, without a manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use switchboard::load::{inspect, PluginKind, C_ABI_MAJOR, C_ABI_MINOR, HOST_API_VERSION};

use crate::cli::{exit, Cli, Format};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Path to a plugin library (`libNAME.so`, `NAME.dll`, `libNAME.dylib`).
    pub library: PathBuf,
}

pub fn run(cli: &Cli, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let library = inspect(&args.library)?;
    let info = &library.info;
    match cli.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "library": library.path,
                "name": info.name,
                "version": info.version,
                "kind": kind_name(info.kind()),
                "plugin_api": info.api_version,
                "host_plugin_api": match info.kind() {
                    PluginKind::C => format!("{C_ABI_MAJOR}.{C_ABI_MINOR}"),
                    _ => HOST_API_VERSION.to_owned(),
                },
                "features": info.features,
                "callbacks": library.registrations.iter().map(|r| json!({
                    "event": r.event,
                    "callback": r.callback,
                    "priority": r.priority,
                    "reads": r.reads.as_ref().map(|reads| args_json(reads)),
                })).collect::<Vec<_>>(),
                "emits": library.emits.iter().map(|e| json!({
                    "event": e.event,
                    "args": args_json(&e.args),
                })).collect::<Vec<_>>(),
            }))?
        ),
        Format::Text => {
            println!("{}", library.path.display());
            println!("  plugin      {} {}", info.name, info.version);
            match info.kind() {
                PluginKind::C => println!(
                    "  C ABI       {} (this host: {C_ABI_MAJOR}.{C_ABI_MINOR})",
                    info.api_version
                ),
                _ => println!(
                    "  plugin-api  {} (this host: {HOST_API_VERSION})",
                    info.api_version
                ),
            }
            if !info.features.is_empty() {
                println!("  features    {}", info.features.join(", "));
            }
            println!("  callbacks:");
            for r in &library.registrations {
                print!("    {} -> {}", r.event, r.callback);
                match &r.reads {
                    Some(reads) => print!("  reads {}", args_text(reads)),
                    None => print!("  reads arguments by name"),
                }
                if r.priority != 0 {
                    print!("  (priority {})", r.priority);
                }
                println!();
            }
            if !library.emits.is_empty() {
                println!("  emits:");
                for e in &library.emits {
                    println!("    {}  {}", e.event, args_text(&e.args));
                }
            }
        }
    }
    Ok(exit::ok())
}

/// `{ name: string, age: int? }`, as a manifest declares arguments.
fn args_text(args: &[(String, String)]) -> String {
    let inner: Vec<String> = args.iter().map(|(n, k)| format!("{n} = \"{k}\"")).collect();
    format!("{{ {} }}", inner.join(", "))
}

fn args_json(args: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        args.iter()
            .map(|(n, k)| (n.clone(), serde_json::Value::from(k.as_str())))
            .collect(),
    )
}

/// The kind of a library, as `--format json` names it: `rust` or `c`.
pub fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::C => "c",
        _ => "rust",
    }
}
