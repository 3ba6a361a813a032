//! The `switchboard` command. Library errors become one `error:` report (a compiler-style
//! diagnostic for manifest errors, JSON with `--format json`) and exit code 2; a failing
//! callback is reported and sets exit code 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Printing must not panic when the reader has gone away (`switchboard list | head -1`):
// these shadow the standard macros for the whole command. A closed pipe ends the output
// quietly; another write error is said once on stderr.
macro_rules! print {
    ($($arg:tt)*) => { $crate::output::to_stdout(format_args!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::output::to_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::to_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Nobody is left to tell if standard error is closed.
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod add;
mod bundle;
mod check;
mod cli;
mod crossing;
mod emit;
mod inspect;
mod list;
mod logging;
mod output;
mod process;
mod prompt;
mod quarantine;
mod reload;
mod run;
mod serve;
mod worker;

/// switchboard: load native plugins listed in a manifest and dispatch events to them.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, long_about = None)]
struct Args {
    #[command(flatten)]
    global: cli::Cli,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the manifest, then load and initialize every plugin (and shut them down).
    Check(check::CheckArgs),
    /// Show plugins, events and callbacks in dispatch order, without running plugin code.
    List,
    /// Dispatch one event and print every callback's result.
    Emit(emit::EmitArgs),
    /// Read JSON-lines events on stdin, write one result line per event on stdout.
    Run(run::RunArgs),
    /// Serve events over HTTP, with Prometheus metrics, health checks and a status page;
    /// also consume the events `[nats] consume` lists.
    Serve(serve::ServeArgs),
    /// Show what a plugin library exports, without a manifest.
    Inspect(inspect::InspectArgs),
    /// Copy a plugin library into the plugin folder, pin it, and declare it and its events
    /// in the manifest.
    Add(add::AddArgs),
    /// Take a plugin out of the manifest (and its library out of the plugin folder).
    Remove(add::RemoveArgs),
    /// Make a folder to copy to another machine: this binary, the plugins, the manifest.
    Bundle(bundle::BundleArgs),
    /// Show the isolated plugins quarantined after crashing too often, or lift one.
    Quarantine(quarantine::QuarantineArgs),
}

/// Runs the chosen subcommand.
fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let cli = &args.global;
    match &args.command {
        Command::Check(args) => check::run(cli, args),
        Command::List => list::run(cli),
        Command::Emit(args) => emit::run(cli, args),
        Command::Run(args) => run::run(cli, args),
        Command::Serve(args) => serve::run(cli, args),
        Command::Inspect(args) => inspect::run(cli, args),
        Command::Add(args) => add::add(cli, args),
        Command::Remove(args) => add::remove(cli, args),
        Command::Bundle(args) => bundle::run(cli, args),
        Command::Quarantine(args) => quarantine::run(cli, args),
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("__worker") {
        // An isolated plugin's worker: no command line, no exit() guard (the plugin's own
        // exit code is what the host reports).
        process::own_panics();
        return worker::main(&raw[2..]);
    }
    let args = Args::parse();
    cli::init_logging(&args.global);
    process::guard_against_foreign_exit();
    process::own_panics();
    let code = match run(&args) {
        Ok(code) => code,
        Err(err) => {
            cli::report_error(&args.global, &err);
            cli::exit::bad_input()
        }
    };
    process::ending();
    if output::stdout_failed() {
        return cli::exit::output_failed();
    }
    code
}
