//! `switchboard inspect LIB`: what a library exports, without a manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use switchboard::load::{inspect, HOST_API_VERSION};

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
                "plugin_api": info.api_version,
                "host_plugin_api": HOST_API_VERSION,
                "features": info.features,
                "callbacks": library.registrations.iter().map(|r| json!({
                    "event": r.event,
                    "callback": r.callback,
                    "priority": r.priority,
                })).collect::<Vec<_>>(),
            }))?
        ),
        Format::Text => {
            println!("{}", library.path.display());
            println!("  plugin      {} {}", info.name, info.version);
            println!(
                "  plugin-api  {} (this host: {HOST_API_VERSION})",
                info.api_version
            );
            if !info.features.is_empty() {
                println!("  features    {}", info.features.join(", "));
            }
            println!("  callbacks:");
            for r in &library.registrations {
                print!("    {} -> {}", r.event, r.callback);
                if r.priority != 0 {
                    print!("  (priority {})", r.priority);
                }
                println!();
            }
        }
    }
    Ok(exit::ok())
}
