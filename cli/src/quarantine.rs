//! `switchboard quarantine`: the isolated plugins quarantined after crashing too often,
//! and `--clear NAME` to give one another chance.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use switchboard::isolate::quarantine;
use switchboard::Manifest;

use crate::cli::{exit, Cli, Format};

#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    /// Lift this plugin's quarantine (a new build of its library lifts it too).
    #[arg(long, value_name = "PLUGIN")]
    pub clear: Option<String>,
}

pub fn run(cli: &Cli, args: &QuarantineArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let folder = manifest.base_dir().to_owned();
    if let Some(plugin) = &args.clear {
        let cleared = quarantine::clear(&folder, plugin).with_context(|| {
            format!(
                "cannot remove the quarantine of `{plugin}` from {}",
                quarantine::state_dir(&folder).display()
            )
        })?;
        match cli.format {
            Format::Json => println!("{}", json!({"plugin": plugin, "cleared": cleared})),
            Format::Text if cleared => println!("plugin `{plugin}` is no longer quarantined"),
            Format::Text => println!("plugin `{plugin}` was not quarantined"),
        }
        return Ok(exit::ok());
    }
    let records = quarantine::all(&folder);
    match cli.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        Format::Text if records.is_empty() => println!("no plugin is quarantined"),
        Format::Text => {
            for r in &records {
                println!(
                    "{}: {}\n  library {} (sha256 {})\n  lift it with `switchboard quarantine --clear {}`, or rebuild the library",
                    r.plugin,
                    r.reason,
                    r.library.display(),
                    &r.sha256[..r.sha256.len().min(12)],
                    r.plugin
                );
            }
        }
    }
    Ok(exit::ok())
}
