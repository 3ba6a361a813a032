//! What every subcommand shares: the global flags, the output format, exit codes, logging
//! and error reports. The subcommands (one file each) are chosen in `main.rs`.

use std::path::PathBuf;

use clap::ValueEnum;
use switchboard::{EmitError, HostError, LoadError, ManifestError};

use crate::logging;

/// Exit codes: 0 success, 1 a callback failed, 2 bad input (manifest, arguments, library).
pub mod exit {
    use std::process::ExitCode;

    /// Everything succeeded.
    pub fn ok() -> ExitCode {
        ExitCode::SUCCESS
    }

    /// A callback failed.
    pub fn callback_failed() -> ExitCode {
        ExitCode::from(1)
    }

    /// Bad input: manifest, arguments or library.
    pub fn bad_input() -> ExitCode {
        ExitCode::from(2)
    }

    /// The output could not be written (EX_IOERR); a closed pipe is not that.
    pub fn output_failed() -> ExitCode {
        ExitCode::from(74)
    }
}

/// The flags every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Cli {
    /// The manifest to use.
    #[arg(long, short = 'm', global = true, default_value = "events.toml")]
    pub manifest: PathBuf,

    /// Output for people (`text`) or for scripts (`json`).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// More detail: debug logs, and full reports for refused libraries.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    /// Only warnings and errors on stderr.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// JSON for scripts.
    Json,
}

/// Logs go to stderr: info by default, debug with `--verbose`, warnings with `--quiet`.
pub fn init_logging(cli: &Cli) {
    logging::init(if cli.verbose {
        "debug"
    } else if cli.quiet {
        "warn"
    } else {
        "info"
    });
}

/// Prints an error that stops the command: for people, one `error:` report (manifest
/// errors are already rendered as diagnostics) and, with `--verbose`, the full details;
/// for scripts, `{"error": {"kind", "message", "details"}}` on stderr.
pub fn report_error(cli: &Cli, err: &anyhow::Error) {
    let manifest = err
        .downcast_ref::<ManifestError>()
        .or_else(|| match err.downcast_ref() {
            Some(HostError::Manifest(e)) => Some(e),
            _ => None,
        });
    let load = err
        .downcast_ref::<LoadError>()
        .or_else(|| match err.downcast_ref() {
            Some(HostError::Load(e)) => Some(e),
            _ => None,
        });
    let details = load.and_then(LoadError::details).filter(|d| !d.is_empty());
    let kind = manifest
        .map(ManifestError::kind)
        .or(load.map(LoadError::kind))
        .or(err.downcast_ref::<EmitError>().map(EmitError::kind))
        .unwrap_or("usage");
    match cli.format {
        Format::Json => {
            let problems: Vec<_> = manifest
                .map(ManifestError::problems)
                .unwrap_or_default()
                .iter()
                .map(|p| serde_json::json!({"line": p.line, "column": p.column, "message": p.message}))
                .collect();
            eprintln!(
                "{}",
                serde_json::json!({"error": {
                    "kind": kind,
                    "message": format!("{err:#}"),
                    "problems": problems,
                    "details": details,
                }})
            )
        }
        Format::Text => {
            match manifest {
                // Already "error: ..." with the file, line and the offending line shown.
                Some(e) if !matches!(e, ManifestError::Read { .. }) => eprintln!("{e}"),
                _ => eprintln!("error: {err:#}"),
            }
            match details {
                Some(details) if cli.verbose => eprintln!("\ndetails:\n{details}"),
                Some(_) => eprintln!("(run with --verbose for the full report)"),
                None => {}
            }
        }
    }
}
