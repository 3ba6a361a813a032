//! Asking for missing arguments on the terminal: the `input()` of the original sign-up
//! script (`switchboard emit user_joined` prompts for `name` and `email`).

use std::io::{BufRead, Write};

use anyhow::bail;
use switchboard::manifest::schema::Schema;

/// Appends a `(name, text)` pair to `given` for every declared argument it lacks, asking
/// on `output` and reading answers from `input`. An empty answer leaves an optional
/// argument out and asks again for a required one; an answer that does not fit the
/// declared type is explained and asked again. Input that ends leaves the optional
/// arguments still unasked out, and is an error only while a required one is missing.
pub fn ask_missing(
    event: &str,
    schema: &Schema,
    given: &mut Vec<(String, String)>,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> anyhow::Result<()> {
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
                if ty.optional {
                    break;
                }
                bail!("input ended before argument `{name}` of event `{event}` was given");
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

#[cfg(test)]
mod tests {
    use switchboard::manifest::schema::ArgType;

    #[test]
    fn input_that_ends_leaves_optional_arguments_out() {
        let schema = switchboard::manifest::schema::Schema {
            names: vec!["name".into(), "age".into(), "nick".into()],
            types: ["string", "int?", "string?"]
                .iter()
                .map(|t| ArgType::parse(t).unwrap())
                .collect(),
        };
        let mut given = Vec::new();
        let mut said = Vec::new();
        super::ask_missing("echo", &schema, &mut given, &mut &b"Ann\n"[..], &mut said).unwrap();
        assert_eq!(given, [("name".to_owned(), "Ann".to_owned())]);

        // A required argument still missing at the end of the input is an error.
        let mut given = Vec::new();
        let error =
            super::ask_missing("echo", &schema, &mut given, &mut &b""[..], &mut said).unwrap_err();
        assert!(error.to_string().contains("`name`"), "{error}");
    }
}
