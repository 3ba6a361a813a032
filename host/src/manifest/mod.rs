//! The manifest, `events.toml`: plain serde types, parsed strictly, then validated.
//!
//! Parsing ([`Manifest::parse`]) rejects unknown keys and wrong types; validation
//! ([`Manifest::validate`]) then checks what serde cannot (names, argument types,
//! duplicate plugins, paths) and reports every problem it finds, each with its line.
//!
//! One file per table as parsed (`host`, `events`, `plugins`, `serve`, `nats`, and the
//! isolation keys), `checked` for the plain values validation makes of them, and
//! `valid` for the [`ValidManifest`] that holds those values.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{ManifestError, Problem};
use events::check_event_name;
pub(crate) use schema::ArgType;
use schema::Schema;

pub use checked::{DeclaredEvent, PluginSettings};
pub use events::{ErrorPolicy, EventDecl, ResultPolicy};
pub use host::{BreakerSettings, HostSettings, LoadErrorPolicy, DEFAULT_MAX_DEPTH, MAX_MAX_DEPTH};
pub use isolation::{Isolation, ProcessLimits, QuarantineSettings};
pub use nats::{NatsSettings, NatsTable};
pub use plugins::PluginEntry;
pub use serve::{ServeSettings, ServeTable};
pub use valid::ValidManifest;

#[doc(hidden)]
pub use crate::suggest::event_table;

pub mod builtin;
mod checked;
mod events;
mod host;
pub mod isolation;
pub mod nats;
mod plugins;
pub mod schema;
pub mod serve;
mod valid;

/// A parsed `events.toml`, not yet validated: [`Manifest::validate`] turns it into a
/// [`ValidManifest`], the only kind a host starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// Host-wide settings.
    #[serde(default)]
    pub host: HostSettings,
    /// The events plugins may register for and callers may emit, by name.
    #[serde(default)]
    pub events: IndexMap<Spanned<String>, EventDecl>,
    /// The plugins to load, in this order; dispatch ties follow this order too.
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
    /// How `switchboard serve` listens and what it accepts.
    #[serde(default)]
    pub serve: ServeTable,
    /// Events shared with other hosts through NATS JetStream, if any.
    #[serde(default)]
    pub nats: Option<NatsTable>,
    /// The manifest's own path (not a TOML key).
    #[serde(skip)]
    pub path: PathBuf,
    /// The manifest's text, for pointing at lines in errors (not a TOML key).
    #[serde(skip)]
    pub source: String,
}

/// The largest manifest file read, in bytes (4 MiB: thousands of plugins and events).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A manifest that is not UTF-8, shown at its first bad byte like any syntax error.
fn not_utf8(path: &Path, error: std::string::FromUtf8Error) -> ManifestError {
    let at = error.utf8_error().valid_up_to();
    let byte = error.as_bytes()[at];
    let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
    let message = format!(
        "the manifest is not valid UTF-8 (byte 0x{byte:02x}); save it as UTF-8 (TOML files must be)"
    );
    // Everything before `at` is valid, so the lossy text has the same offsets up to there,
    // and one replacement character (3 bytes) at `at`.
    let problem = Problem::at(&text, at..at + '\u{FFFD}'.len_utf8(), message);
    ManifestError::Syntax {
        path: path.to_owned(),
        text,
        problem,
    }
}

/// Drops the `.` components that joining onto `.` leaves (`././libx.so` reads as `./libx.so`).
fn tidy(path: PathBuf) -> PathBuf {
    path.components().collect()
}

/// The platform's file name for a library called `name`.
#[doc(hidden)]
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

impl Manifest {
    /// Reads and parses the manifest at `path` (not yet validated).
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let refuse = |source: std::io::Error| ManifestError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(refuse)?;
        if !meta.is_file() {
            return Err(refuse(std::io::Error::other(
                "it is not a regular file (a folder, pipe or device); give the path of the events.toml file",
            )));
        }
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(refuse(std::io::Error::other(format!(
                "it is {} bytes; a manifest may have at most {MAX_MANIFEST_BYTES}",
                meta.len()
            ))));
        }
        let bytes = std::fs::read(path).map_err(refuse)?;
        let source = String::from_utf8(bytes).map_err(|e| not_utf8(path, e))?;
        Manifest::parse(&source, path)
    }

    /// Parses manifest text; `path` is used for messages and to resolve relative paths.
    pub fn parse(source: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let mut manifest: Manifest = toml::from_str(source).map_err(|err| {
            let message = with_suggestion(err.message());
            ManifestError::Syntax {
                path: path.to_owned(),
                text: source.to_owned(),
                problem: match err.span() {
                    Some(span) => Problem::at(source, span, message),
                    None => Problem::general(message),
                },
            }
        })?;
        manifest.path = path.to_owned();
        manifest.source = source.to_owned();
        Ok(manifest)
    }

    /// Loads and validates in one step.
    pub fn load_valid(path: &Path) -> Result<ValidManifest, ManifestError> {
        Manifest::load(path)?.validate()
    }

    /// Checks everything serde cannot, reporting every problem at once.
    pub fn validate(self) -> Result<ValidManifest, ManifestError> {
        // Every type is parsed once, here, and kept parsed for the host.
        let schemas = self.problems()?;
        let events = self
            .events
            .iter()
            .zip(schemas)
            .map(|((name, decl), schema)| DeclaredEvent::of(name.get_ref(), decl, schema))
            .collect();
        let plugin_dir = self.plugin_dir();
        let plugins = self
            .plugins
            .iter()
            .map(|entry| PluginSettings::of(entry, &self))
            .collect();
        let nats = self.nats.as_ref().map(NatsTable::settings);
        let serve = self.serve.settings();
        Ok(ValidManifest {
            manifest: self,
            events,
            plugins,
            plugin_dir,
            nats_settings: nats,
            serve_settings: serve,
        })
    }

    /// Every problem at once; without any, each event's arguments parsed, in order.
    fn problems(&self) -> Result<Vec<Schema>, ManifestError> {
        let mut schemas = Vec::with_capacity(self.events.len());
        let mut problems = Vec::new();
        let mut problem = |span: std::ops::Range<usize>, message: String| {
            problems.push(Problem::at(&self.source, span, message))
        };

        for (name, event) in &self.events {
            if builtin::is_builtin(name.get_ref()) {
                problem(
                    name.span(),
                    format!(
                        "`{}` is a built-in event and cannot be declared; remove this table (plugins may register for it as it is)",
                        name.get_ref()
                    ),
                );
                continue;
            }
            if let Err(why) = check_event_name(name.get_ref()) {
                problem(
                    name.span(),
                    format!("invalid event name `{}`: {why}", name.get_ref()),
                );
            }
            let mut schema = Schema::default();
            for (arg, ty) in &event.args {
                match ArgType::parse(ty.get_ref()) {
                    Ok(ty) => {
                        schema.names.push(arg.as_str().into());
                        schema.types.push(ty);
                    }
                    Err(why) => problem(
                        ty.span(),
                        format!("argument `{arg}` of event `{}`: {why}", name.get_ref()),
                    ),
                }
            }
            schemas.push(schema);
        }

        if self.host.max_depth == 0 || self.host.max_depth > MAX_MAX_DEPTH {
            let at = self.source.find("max_depth").unwrap_or(0);
            problem(
                at..at + "max_depth".len(),
                format!(
                    "`host.max_depth` must be from 1 to {MAX_MAX_DEPTH} (it is {}); a deeper chain of nested emits is almost always a cycle",
                    self.host.max_depth
                ),
            );
        }

        for (span, message) in serve::problems(&self.serve) {
            problem(span, message);
        }
        if let Some(settings) = &self.nats {
            let declared = |event: &str| self.events.keys().any(|k| k.get_ref() == event);
            for (span, message) in nats::problems(settings, declared) {
                problem(span, message);
            }
        }

        let mut seen = HashSet::new();
        for entry in &self.plugins {
            let name = entry.name.get_ref();
            if !seen.insert(name.as_str()) {
                problem(
                    entry.name.span(),
                    format!("plugin `{name}` is listed twice; give the second entry another `name` (and `library = \"{}\"` to load the same file)", entry.library_name()),
                );
            }
            if name.is_empty() || name.contains(['/', '\\']) {
                problem(
                    entry.name.span(),
                    format!("invalid plugin name `{name}`: use letters, digits, `_` and `-`"),
                );
            }
            if let Some(library) = &entry.library {
                if library.get_ref().contains(['/', '\\']) || library.get_ref().is_empty() {
                    problem(
                        library.span(),
                        format!("`library` of plugin `{name}` must be a library name like `greeter`, not a path; use `path` for a file elsewhere"),
                    );
                }
            }
            if let Some(sha) = &entry.sha256 {
                let hex = sha.get_ref();
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    problem(
                        sha.span(),
                        format!("`sha256` of plugin `{name}` must be 64 hex digits; `switchboard check --pin` prints the current value"),
                    );
                }
            }
            for (span, message) in plugins::isolation_problems(entry) {
                problem(span, message);
            }
            if entry.library.is_some() && entry.path.is_some() {
                problem(
                    entry.name.span(),
                    format!("plugin `{name}` sets both `library` and `path`; keep one"),
                );
            }
        }

        if problems.is_empty() {
            Ok(schemas)
        } else {
            Err(ManifestError::Invalid {
                path: self.path.clone(),
                text: self.source.clone(),
                problems,
            })
        }
    }

    /// The folder relative paths in the manifest are resolved against.
    pub fn base_dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// The plugin folder, resolved against the manifest's folder.
    pub fn plugin_dir(&self) -> PathBuf {
        tidy(self.base_dir().join(&self.host.plugin_dir))
    }

    /// Where the library of `entry` is expected.
    pub fn library_path(&self, entry: &PluginEntry) -> PathBuf {
        match &entry.path {
            Some(path) => tidy(self.base_dir().join(path.get_ref())),
            None => self
                .plugin_dir()
                .join(library_file_name(entry.library_name())),
        }
    }

    /// The line (1-based) of a byte offset in the manifest.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(&self.source, offset)
    }
}

/// The 1-based line of byte `offset` in `source`.
pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant" messages.
fn with_suggestion(message: &str) -> String {
    if !(message.starts_with("unknown field `") || message.starts_with("unknown variant `")) {
        return message.to_owned();
    }
    let parts: Vec<&str> = message.split('`').collect();
    let candidates = parts.iter().skip(3).step_by(2).copied();
    match crate::suggest::nearest(parts[1], candidates) {
        Some(near) => format!("{message} (did you mean `{near}`?)"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
