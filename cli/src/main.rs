//! The `switchboard` command. Library errors become one `error:` report (a compiler-style
//! diagnostic for manifest errors, JSON with `--format json`) and exit code 2; a failing
//! callback is reported and sets exit code 1.

use std::process::ExitCode;

use clap::Parser;

mod check;
mod cli;
mod emit;
mod inspect;
mod list;
mod logging;
mod output;
mod prompt;
mod run;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    match cli::run(&args) {
        Ok(code) => code,
        Err(err) => {
            cli::report_error(&args, &err);
            cli::exit::bad_input()
        }
    }
}
