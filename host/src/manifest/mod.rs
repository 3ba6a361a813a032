//! The manifest, `events.toml`: plain serde types, parsed strictly, then validated.
//!
//! Parsing ([`Manifest::parse`]) rejects unknown keys and wrong types; validation
//! ([`Manifest::validate`]) then checks what serde cannot (names, argument types,
//! duplicate plugins, paths) and reports every problem it finds, each with its line.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{ManifestError, Problem};
pub(crate) use schema::ArgType;
use schema::Schema;

pub use checked::{DeclaredEvent, PluginSettings};
pub use isolation::{Isolation, ProcessLimits, QuarantineSettings};
pub use nats::{NatsSettings, NatsTable};
pub use serve::{ServeSettings, ServeTable};

#[doc(hidden)]
pub use crate::suggest::event_table;

pub mod builtin;
mod checked;
pub mod isolation;
pub mod nats;
pub mod schema;
pub mod serve;

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

/// The `[host]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HostSettings {
    /// Where plugin libraries are found, relative to the manifest's folder.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// How deep callbacks may nest `emit` calls before the innermost emit fails.
    #[serde(default = "default_max_depth")]
    pub max_depth: u32,
    /// The circuit breaker every plugin gets unless its entry sets its own.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// What a plugin that cannot be loaded or initialized does to the host, unless its
    /// entry says otherwise.
    #[serde(default)]
    pub on_load_error: LoadErrorPolicy,
    /// Load plugin files (and folders) that other users may write to. Off by default:
    /// anyone who can write the file can run code in the host.
    #[serde(default)]
    pub allow_writable: bool,
    /// The time limit of a call to an isolated plugin, in milliseconds, unless its entry
    /// sets its own.
    #[serde(default = "isolation::default_timeout_ms")]
    pub timeout_ms: u64,
    /// When an isolated plugin whose workers keep crashing is quarantined.
    #[serde(default)]
    pub quarantine: QuarantineSettings,
    /// How long a plugin's `init`, and its `shutdown`, may run before the host stops
    /// waiting for it, in milliseconds: an `init` past it fails the plugin's start (a reload
    /// then changes nothing), a `shutdown` past it is reported and the host goes on. A call
    /// that never returns keeps its thread until the process exits.
    #[serde(default = "default_setup_timeout_ms")]
    pub setup_timeout_ms: u64,
}

/// 30 seconds.
fn default_setup_timeout_ms() -> u64 {
    30_000
}

impl HostSettings {
    /// [`HostSettings::setup_timeout_ms`] as a duration (at least a millisecond).
    pub fn setup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.setup_timeout_ms.max(1))
    }
}

/// What a plugin that fails to load does to the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadErrorPolicy {
    /// Stop the host with the error.
    #[default]
    Fail,
    /// Say so on stderr and run without the plugin.
    Skip,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            plugin_dir: default_plugin_dir(),
            max_depth: default_max_depth(),
            breaker: BreakerSettings::default(),
            on_load_error: LoadErrorPolicy::default(),
            allow_writable: false,
            timeout_ms: isolation::default_timeout_ms(),
            quarantine: QuarantineSettings::default(),
            setup_timeout_ms: default_setup_timeout_ms(),
        }
    }
}

/// When a failing plugin is switched off, and for how long.
///
/// After `failures` failed calls within `window_ms`, the plugin's callbacks are skipped for
/// `cooldown_ms`; then one call is let through: a success switches the plugin back on, a
/// failure off again for another cool-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Failures within the window that switch the plugin off; 0 never does.
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    /// The window failures are counted in, in milliseconds.
    #[serde(default = "default_breaker_window_ms")]
    pub window_ms: u64,
    /// How long a switched-off plugin is skipped, in milliseconds.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: default_breaker_failures(),
            window_ms: default_breaker_window_ms(),
            cooldown_ms: default_breaker_cooldown_ms(),
        }
    }
}

fn default_breaker_failures() -> u32 {
    20
}
fn default_breaker_window_ms() -> u64 {
    10_000
}
fn default_breaker_cooldown_ms() -> u64 {
    30_000
}

fn default_plugin_dir() -> PathBuf {
    PathBuf::from(".")
}

/// The largest manifest file read, in bytes (4 MiB: thousands of plugins and events).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The default nesting limit for `emit` inside callbacks.
pub const DEFAULT_MAX_DEPTH: u32 = 8;

/// The highest `max_depth` a manifest may set: nested emits use the stack, and every level
/// up to this one is tested to fit in a worker's (and the main thread's) stack.
pub const MAX_MAX_DEPTH: u32 = 100;

fn default_max_depth() -> u32 {
    DEFAULT_MAX_DEPTH
}

/// One `[events.NAME]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EventDecl {
    /// What the event means, shown by `switchboard list`.
    #[serde(default)]
    pub doc: String,
    /// The payload schema: argument name to type (`string`, `int`, `float`, `bool`,
    /// `bytes`, `list`, `map`, `any`; a trailing `?` makes it optional). Order matters:
    /// callbacks see arguments in this order.
    #[serde(default)]
    pub args: IndexMap<String, Spanned<String>>,
    /// How results are collected.
    #[serde(default)]
    pub result: ResultPolicy,
    /// What a failing callback does to the rest of the dispatch.
    #[serde(default)]
    pub on_error: ErrorPolicy,
}

/// How an event's results are collected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultPolicy {
    /// Run every callback and collect every result.
    #[default]
    All,
    /// Stop at the first callback that returns a non-null value.
    First,
}

/// What happens after a callback fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorPolicy {
    /// Record the failure and run the remaining callbacks.
    #[default]
    Continue,
    /// Record the failure and skip the remaining callbacks.
    Stop,
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PluginEntry {
    /// The plugin's name in this manifest, unique. Also the library's name unless
    /// `library` or `path` says otherwise.
    pub name: Spanned<String>,
    /// The library's short name when it differs from `name`, for example to load one
    /// library twice with two configs. Resolves to `libLIBRARY.so`, `LIBRARY.dll` or
    /// `libLIBRARY.dylib` in `plugin_dir`.
    #[serde(default)]
    pub library: Option<Spanned<String>>,
    /// An explicit path to the library file, relative to the manifest's folder.
    #[serde(default)]
    pub path: Option<Spanned<PathBuf>>,
    /// The table handed to the plugin's `init`, deserialized into its config type.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// This plugin's circuit breaker, instead of `[host] breaker`.
    #[serde(default)]
    pub breaker: Option<BreakerSettings>,
    /// The library's expected SHA-256 (64 hex digits); a file that differs is refused
    /// before it is loaded. `switchboard check --pin` prints the current values.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// Overrides `[host] on_load_error` for this plugin.
    #[serde(default)]
    pub on_load_error: Option<LoadErrorPolicy>,
    /// Overrides `[host] allow_writable` for this plugin.
    #[serde(default)]
    pub allow_writable: Option<bool>,
    /// Where the plugin runs: `"in_process"` (the default) or `"process"` (worker
    /// processes that may crash or hang without taking the host down).
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// With `isolation = "process"`: how long one call may take, in milliseconds, before
    /// its worker is killed (default: `[host] timeout_ms`).
    #[serde(default)]
    pub timeout_ms: Option<isolation::SpannedU64>,
    /// With `isolation = "process"`: how many worker processes serve the plugin (default 1).
    #[serde(default)]
    pub processes: Option<Spanned<u32>>,
    /// With `isolation = "process"`: the worker's memory limit in MiB (its address space;
    /// an allocation past it aborts the worker, not the host).
    #[serde(default)]
    pub memory_mb: Option<isolation::SpannedU64>,
}

impl PluginEntry {
    /// What a load failure of this plugin does: its own policy, or the host's.
    pub fn load_error_policy(&self, host: &HostSettings) -> LoadErrorPolicy {
        self.on_load_error.unwrap_or(host.on_load_error)
    }

    /// Whether this plugin's file may be writable by others.
    pub fn writable_allowed(&self, host: &HostSettings) -> bool {
        self.allow_writable.unwrap_or(host.allow_writable)
    }

    /// The library's short name: `library`, or else `name`.
    pub fn library_name(&self) -> &str {
        self.library.as_ref().unwrap_or(&self.name).get_ref()
    }
}

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
            for (span, message) in isolation::problems(entry) {
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

/// A manifest that passed [`Manifest::validate`], as plain values: every name, argument
/// type and plugin entry checked, every event's arguments parsed into a [`Schema`], every
/// plugin's defaults applied and its library's path resolved. Hosts start only from this
/// type, so nothing downstream re-checks or parses again.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    manifest: Manifest,
    /// The declared events, in declaration order.
    events: Vec<DeclaredEvent>,
    /// The plugins to load, in manifest order.
    plugins: Vec<PluginSettings>,
    /// The plugin folder, resolved.
    plugin_dir: PathBuf,
    /// The `[nats]` table, checked.
    nats_settings: Option<NatsSettings>,
    /// The `[serve]` table, checked.
    serve_settings: ServeSettings,
}

impl ValidManifest {
    /// Reads, parses and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<ValidManifest, ManifestError> {
        Manifest::load_valid(path)
    }

    /// Parses and validates manifest text; `path` is used for messages and to resolve
    /// relative paths.
    pub fn parse(source: &str, path: &Path) -> Result<ValidManifest, ManifestError> {
        Manifest::parse(source, path)?.validate()
    }

    /// The `[serve]` table, checked (its defaults without one).
    pub fn serve(&self) -> &ServeSettings {
        &self.serve_settings
    }

    /// The `[nats]` table, checked; `None` without one.
    pub fn nats(&self) -> Option<&NatsSettings> {
        self.nats_settings.as_ref()
    }

    /// The declared events, with their parsed arguments, in declaration order.
    pub fn events(&self) -> &[DeclaredEvent] {
        &self.events
    }

    /// The plugins to load, in manifest order (dispatch ties follow it).
    pub fn plugins(&self) -> &[PluginSettings] {
        &self.plugins
    }

    /// The plugin called `name`, if the manifest lists it.
    pub fn plugin(&self, name: &str) -> Option<&PluginSettings> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// The `[host]` table.
    pub fn host(&self) -> &HostSettings {
        &self.manifest.host
    }

    /// The manifest's path, as it was given.
    pub fn path(&self) -> &Path {
        &self.manifest.path
    }

    /// The folder relative paths in the manifest are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.manifest.base_dir()
    }

    /// The plugin folder, resolved against the manifest's folder.
    pub fn plugin_dir(&self) -> &Path {
        &self.plugin_dir
    }

    /// The manifest's text, for the commands that edit it and keep its comments.
    pub fn source(&self) -> &str {
        &self.manifest.source
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

/// Event names: lowercase ASCII letters, digits, `_`, and `.` between words
/// (`user_joined`, `plugin.failed`).
fn check_event_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    {
        return Err("use lowercase letters, digits, `_` and `.`");
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err("`.` only goes between words");
    }
    Ok(())
}

impl fmt::Display for ResultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResultPolicy::All => "all",
            ResultPolicy::First => "first",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ValidManifest, ManifestError> {
        ValidManifest::parse(text, Path::new("dir/events.toml"))
    }

    #[test]
    fn event_tables_quote_what_toml_would_nest() {
        assert_eq!(event_table("user_joined"), "[events.user_joined]");
        assert_eq!(event_table("c.ping"), "[events.\"c.ping\"]");
        assert_eq!(event_table("a b"), "[events.\"a b\"]");
        // What the hint says parses back to the one event.
        let text = format!("{}\n", event_table("c.ping"));
        let table: toml::Table = text.parse().unwrap();
        assert!(table["events"].as_table().unwrap().contains_key("c.ping"));
    }

    #[test]
    fn parses_the_documented_shape() {
        let m = parse(
            r#"
            [host]
            plugin_dir = "plugins"

            [events.user_joined]
            doc = "A user signed up"
            args = { name = "string", email = "string" }

            [events.user_lookup]
            args = { email = "string" }
            result = "first"

            [[plugins]]
            name = "database"
            config = { path = "users.db" }
            "#,
        )
        .unwrap();
        let names: Vec<_> = m.events().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["user_joined", "user_lookup"]);
        let args: Vec<_> = m.events()[0]
            .schema
            .names
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(args, ["name", "email"]);
        assert_eq!(m.events()[0].doc, "A user signed up");
        assert_eq!(m.events()[1].result, ResultPolicy::First);
        assert_eq!(m.plugin_dir(), Path::new("dir/plugins"));
        // Plain values: the library's path resolved, the host's defaults applied, the
        // config as JSON.
        let database = &m.plugins()[0];
        assert_eq!(
            database.library,
            Path::new("dir/plugins").join(library_file_name("database"))
        );
        assert!(!database.explicit_path);
        assert_eq!(database.breaker, m.host().breaker);
        assert_eq!(database.on_load_error, LoadErrorPolicy::Fail);
        assert_eq!(database.isolation, None);
        assert_eq!(
            database.config.as_ref().map(|c| c["path"].clone()),
            Some(serde_json::json!("users.db"))
        );
        assert_eq!(m.host().max_depth, DEFAULT_MAX_DEPTH);
    }

    #[test]
    fn a_plugin_entry_is_checked_into_plain_values() {
        let m = parse(
            r#"
            [host]
            allow_writable = true
            on_load_error = "skip"
            timeout_ms = 700
            [[plugins]]
            name = "a"
            path = "./libs/../libs/liba.so"
            sha256 = "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
            isolation = "process"
            processes = 2
            breaker = { failures = 9 }
            config = { when = 1979-05-27T07:32:00Z, nested = { list = [1, 2.5, true] } }
            [[plugins]]
            name = "b"
            library = "shared"
            allow_writable = false
            on_load_error = "fail"
            isolation = "process"
            timeout_ms = 50
            "#,
        )
        .unwrap();
        let (a, b) = (&m.plugins()[0], &m.plugins()[1]);
        assert_eq!(a.library, Path::new("dir/libs/../libs/liba.so"));
        assert!(a.explicit_path);
        assert_eq!(
            a.sha256.as_deref(),
            Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
        );
        assert_eq!(
            (a.allow_writable, a.on_load_error),
            (true, LoadErrorPolicy::Skip)
        );
        assert_eq!(a.isolation, Some(Isolation::Process));
        assert_eq!((a.limits.timeout_ms, a.limits.processes), (700, 2));
        assert_eq!(a.breaker.failures, 9);
        assert_eq!(
            a.config,
            serde_json::json!({
                "when": "1979-05-27T07:32:00Z",
                "nested": {"list": [1, 2.5, true]}
            })
            .as_object()
            .cloned()
        );
        // In the default plugin folder, the manifest's own.
        assert_eq!(
            b.library,
            Path::new("dir").join(library_file_name("shared"))
        );
        assert_eq!(
            (b.allow_writable, b.on_load_error),
            (false, LoadErrorPolicy::Fail)
        );
        assert_eq!((b.limits.timeout_ms, b.limits.processes), (50, 1));
        assert!(m.plugin("b").is_some() && m.plugin("c").is_none());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let err = parse("[host]\nplugin_dri = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--> dir/events.toml:2:1"), "{text}");
        assert!(text.contains("2 | plugin_dri = \"x\""), "{text}");
        assert!(
            text.contains("unknown field `plugin_dri`, expected one of `plugin_dir`, `max_depth`, `breaker`, `on_load_error`, `allow_writable`, `timeout_ms`, `quarantine`, `setup_timeout_ms` (did you mean `plugin_dir`?)"),
            "{text}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse(
            r#"
            [events.UserJoined]
            args = { name = "strng" }
            [[plugins]]
            name = "a"
            [[plugins]]
            name = "a"
            "#,
        )
        .unwrap_err();
        let ManifestError::Invalid { problems, .. } = &err else {
            panic!("expected Invalid, got {err:?}");
        };
        assert_eq!(problems.len(), 3, "{err}");
        assert!(problems[0]
            .message
            .contains("invalid event name `UserJoined`"));
        assert_eq!(problems[0].line, 2);
        assert!(problems[1].message.contains("unknown type `strng`"));
        assert!(problems[2].message.contains("listed twice"));
        assert_eq!(problems[2].line, 7);
    }

    #[test]
    fn lines_of_tabs_render_without_overflow() {
        // Found by cargo-fuzz: annotate-snippets overflowed on long runs of tabs.
        let text = format!("[events.a]\nmax = -2\n{}%\t\0\0\0", "\t".repeat(70));
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("--> dir/events.toml:3:71"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse("[host]\nmax_depth = \"deep\"\n").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn serve_settings_have_defaults_and_bounds() {
        let m = parse("").unwrap();
        assert!(m.serve().admin_token_env.is_none());
        // Checked into plain values: the address parsed, durations as durations.
        let serve = m.serve();
        assert_eq!(serve.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(serve.max_body_bytes, 1 << 20);
        assert_eq!(serve.drain_timeout, std::time::Duration::from_secs(10));
        assert_eq!(serve.workers, None);
        let m = parse(
            "[serve]
listen = \"0.0.0.0:9000\"
workers = 3
body_timeout_ms = 250
",
        )
        .unwrap();
        assert_eq!(m.serve().listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(m.serve().workers, Some(3));
        assert_eq!(
            m.serve().body_timeout,
            std::time::Duration::from_millis(250)
        );

        let err = parse(
            "[serve]\nlisten = \"localhost\"\nqueue = 0\nmax_body_bytes = 1000000000\nadmin_token_env = \"s3cret token\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "`serve.listen` must be an address and port",
            "`serve.queue` must be from 1 to 1000000 (it is 0)",
            "`serve.max_body_bytes` must be from 1 to 67108864",
            "`serve.admin_token_env` must name an environment variable",
            "events.toml:2:",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        assert!(parse("[serve]\nlisten = \"0.0.0.0:80\"\nworkers = 8\n").is_ok());
        assert!(parse("[serve]\nlistn = \"0.0.0.0:80\"\n").is_err());
    }
}
