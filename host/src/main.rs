//! The `switchboard` command. Library errors become one `error:` line and exit code 2;
//! a failing callback is reported and sets exit code 1.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    match cli::run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if args.verbose {
                if let Some(details) = cli::error_details(&err) {
                    eprintln!("\ndetails:\n{details}");
                }
            } else if cli::error_details(&err).is_some() {
                eprintln!("(run with --verbose for the full report)");
            }
            cli::exit::bad_input()
        }
    }
}
