//! Asking for missing arguments on the terminal: the `input()` of the original sign-up
//! script (`switchboard emit user_joined` prompts for `name` and `email`).

use std::io::{BufRead, Write};

use anyhow::bail;
use switchboard::dispatch::Event;

/// Appends a `(name, text)` pair to `given` for every declared argument it lacks, asking
/// on `output` and reading answers from `input`. An empty answer leaves an optional
/// argument out and asks again for a required one; an answer that does not fit the
/// declared type is explained and asked again.
pub fn ask_missing(
    event: &Event,
    given: &mut Vec<(String, String)>,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> anyhow::Result<()> {
    let schema = &event.schema;
    for (name, ty) in schema.names().zip(&schema.types) {
        if given.iter().any(|(n, _)| n == name) {
            continue;
        }
        loop {
            let hint = if ty.optional { ", optional" } else { "" };
            write!(output, "{name} ({}{hint}): ", ty.kind)?;
            output.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                writeln!(output)?;
                bail!(
                    "input ended before argument `{name}` of event `{}` was given",
                    event.name
                );
            }
            let answer = line.trim_end_matches(['\n', '\r']);
            if answer.is_empty() {
                if ty.optional {
                    break;
                }
                writeln!(output, "  `{name}` is required")?;
                continue;
            }
            match ty.from_text(answer) {
                Ok(_) => {
                    given.push((name.to_owned(), answer.to_owned()));
                    break;
                }
                Err(reason) => writeln!(output, "  {reason}")?,
            }
        }
    }
    Ok(())
}
