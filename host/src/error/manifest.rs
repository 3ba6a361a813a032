//! A manifest that cannot be read, parsed or validated, with every problem shown as a
//! compiler would: file, line, column and the line underlined.

use std::path::PathBuf;

/// A problem with the manifest file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the manifest's shape.
    #[error("{}", render(path, text, std::slice::from_ref(problem)))]
    Syntax {
        /// The manifest's path.
        path: PathBuf,
        /// The manifest's text, to show the offending line.
        text: String,
        /// What is wrong, and where.
        problem: Problem,
    },
    /// The file parsed, but some entries are invalid; every one is listed.
    #[error("{}", render(path, text, problems))]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// The manifest's text, to show the offending lines.
        text: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl ManifestError {
    /// A stable name for the kind of error, for scripts (`--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            ManifestError::Read { .. } => "manifest.read",
            ManifestError::Syntax { .. } => "manifest.syntax",
            ManifestError::Invalid { .. } => "manifest.invalid",
        }
    }

    /// Every problem, for callers that show them their own way.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ManifestError::Read { .. } => &[],
            ManifestError::Syntax { problem, .. } => std::slice::from_ref(problem),
            ManifestError::Invalid { problems, .. } => problems,
        }
    }
}

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line, or 0 when the problem is not tied to a place in the file.
    pub line: usize,
    /// The 1-based column (in characters).
    pub column: usize,
    /// The bytes of the manifest the problem points at.
    pub span: Option<std::ops::Range<usize>>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem at `span` of `text`.
    pub fn at(text: &str, span: std::ops::Range<usize>, message: String) -> Problem {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        Problem {
            line: text[..start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            span: Some(start..span.end.clamp(start, text.len())),
            message,
        }
    }

    /// A problem with the manifest as a whole.
    pub fn general(message: String) -> Problem {
        Problem {
            line: 0,
            column: 0,
            span: None,
            message,
        }
    }
}

/// Compiler-style diagnostics: each problem with its file, line, column and the offending
/// line underlined.
fn render(path: &std::path::Path, text: &str, problems: &[Problem]) -> String {
    use annotate_snippets::{Level, Renderer, Snippet};
    let origin = path.display().to_string();
    // Found by fuzzing: the renderer's column arithmetic overflows when it trims long
    // leading whitespace to fit a terminal width, and miscounts tabs and other control
    // characters. A width no line reaches turns trimming off; one-byte spaces for control
    // characters keep every byte offset valid.
    let text: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_control() && c != '\n' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let text = text.as_str();
    let renderer = Renderer::plain().term_width(1 << 20);
    let mut out = Vec::new();
    for problem in problems {
        let message = Level::Error.title(&problem.message);
        let message = match &problem.span {
            // An empty span (the end of the file, say) still gets a caret.
            Some(span) => {
                let span = if span.is_empty() && span.start < text.len() {
                    let width = text[span.start..].chars().next().map_or(1, char::len_utf8);
                    span.start..span.start + width
                } else {
                    span.clone()
                };
                message.snippet(
                    Snippet::source(text)
                        .origin(&origin)
                        .fold(true)
                        .annotation(Level::Error.span(span)),
                )
            }
            None => message.snippet(Snippet::source("").origin(&origin)),
        };
        out.push(renderer.render(message).to_string());
    }
    if problems.len() > 1 {
        out.push(format!("{} problems in {origin}", problems.len()));
    }
    out.join("\n\n")
}
