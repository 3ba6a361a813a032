//! Typed errors of the host library. Each names the file, plugin, event or callback
//! involved and says what to do.

use std::path::PathBuf;

use switchboard_plugin_api::Error as PluginError;

/// What a plugin hears when it asks for the event id (`event_id`) outside a callback, in
/// process or in a worker.
pub(crate) const NO_EVENT_OUTSIDE_A_CALLBACK: &str =
    "there is no event outside a callback: `event_id` names the event a callback runs for";

/// Anything that stops a [`Switchboard`](crate::Switchboard) from starting or reloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The manifest could not be read, parsed or validated.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A plugin could not be loaded or initialized.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A reload came after the host began shutting down: nothing changed.
    #[error("the host is shutting down; nothing was reloaded")]
    ShuttingDown,
}

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

/// A plugin library that could not be loaded or initialized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No file at the resolved path.
    #[error("plugin `{plugin}`: no library at {}; build the plugin, or fix `plugin_dir`, `library` or `path` in the manifest", path.display())]
    Missing {
        /// The plugin's manifest name.
        plugin: String,
        /// Where the library was expected.
        path: PathBuf,
    },
    /// The path names a folder, not a library file.
    #[error("plugin `{plugin}`: {} is a folder, not a library file; give the library file itself in `path`, or name the folder in `plugin_dir`", path.display())]
    NotAFile {
        /// The plugin's manifest name.
        plugin: String,
        /// The folder.
        path: PathBuf,
    },
    /// The path names a pipe, a device or a socket: nothing a library can be loaded from.
    #[error("plugin `{plugin}`: {} is {kind}, not a library file; point `path` (or `plugin_dir`) at the library file itself", path.display())]
    NotRegular {
        /// The plugin's manifest name.
        plugin: String,
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The plugin folder does not exist.
    #[error("plugin `{plugin}`: the plugin folder {} does not exist; build the plugins (`cargo build --release`) or fix `plugin_dir` (relative to the manifest's folder)", folder.display())]
    MissingFolder {
        /// The plugin's manifest name.
        plugin: String,
        /// The folder.
        folder: PathBuf,
    },
    /// The file's SHA-256 differs from the manifest's pin.
    #[error("plugin `{plugin}`: {} has sha256 {actual}, but the manifest pins {expected}; it was not loaded. If you replaced the library on purpose, update `sha256` (`switchboard check --pin` prints the current values)", path.display())]
    HashMismatch {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The file, its folder or a folder above it may be written by other users.
    #[error("plugin `{plugin}`: {} is writable by other users (mode {mode:04o}), so anyone could change or replace the code the host runs; it was not loaded. Run `chmod go-w {}`, or set `allow_writable = true` if that is intended", path.display(), path.display())]
    Writable {
        /// The plugin's manifest name.
        plugin: String,
        /// The file or folder with the loose mode.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A library found by name in the plugin folder resolves (through a symbolic link)
    /// outside it.
    #[error("plugin `{plugin}`: {} resolves to {}, outside {}; it was not loaded. Move the library into the folder, or name it with `path` (relative to the manifest's folder, or absolute) to load it from where it is", path.display(), resolved.display(), folder.display())]
    Escapes {
        /// The plugin's manifest name.
        plugin: String,
        /// The path as resolved from the manifest.
        path: PathBuf,
        /// Where it really points.
        resolved: PathBuf,
        /// The folder it had to stay in.
        folder: PathBuf,
    },
    /// The file exists but the system loader refused it (not a shared library, or one for
    /// another architecture).
    #[error("plugin `{plugin}`: {} is not a loadable shared library ({reason}); rebuild the plugin for this platform", path.display())]
    NotALibrary {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The system loader's message.
        reason: String,
    },
    /// A C-ABI plugin whose table breaks the header's rules (a size, a count, a string, a
    /// missing hook).
    #[error("plugin `{plugin}`: {} is a C-ABI plugin whose table is broken: {problem}; fix the plugin to follow switchboard.h (C ABI {host_abi})", path.display())]
    CAbi {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// The C ABI version the host speaks (`major.minor`).
        host_abi: String,
    },
    /// A C-ABI plugin built for another major version of the C ABI.
    #[error("plugin `{plugin}`: {} was built for C ABI {plugin_abi}, and this host speaks C ABI {host_abi}; the major versions must match: rebuild the plugin against this host's switchboard.h", path.display())]
    CAbiVersion {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The ABI version the plugin was built for.
        plugin_abi: String,
        /// The host's.
        host_abi: String,
    },
    /// A second Go library for one process: Go supports one Go runtime per process.
    #[error("plugin `{plugin}`: {} is a Go library, and plugin `{first}` already loaded another Go library into this process; Go supports one Go runtime per process (golang/go#18976): run this plugin with isolation = \"process\" (the default for Go plugins)", path.display())]
    SecondGoRuntime {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The plugin whose Go library is loaded already.
        first: String,
    },
    /// The file is in a library format but cut short or damaged: a segment the system
    /// loader would map lies past its end (mapping it would crash the host), or its headers
    /// do not parse. Nothing of it was loaded.
    #[error("plugin `{plugin}`: {} is cut short or damaged ({reason}); it was not loaded. A build or a copy may still be writing it: let it finish, or copy the library again", path.display())]
    Damaged {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A new build of an in-process plugin past the number of builds one process keeps
    /// loaded (libraries are never unloaded).
    #[error("plugin `{plugin}`: {} is a new build, and this host already keeps {loaded} plugin builds loaded in-process (each stays mapped until the host exits; the limit is {limit}); restart the host to release them, or give the plugin isolation = \"process\" to reload it without limit", path.display())]
    TooManyBuilds {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// Builds loaded so far.
        loaded: usize,
        /// The most builds one process keeps loaded.
        limit: usize,
    },
    /// A shared library without switchboard's root module.
    #[error("plugin `{plugin}`: {} is a shared library but not a switchboard plugin (it exports no root module); plugins call `export_plugin!`", path.display())]
    NotAPlugin {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
    },
    /// A plugin built against an incompatible plugin-api.
    #[error("plugin `{plugin}`: {} was built against an incompatible plugin-api: {summary}; rebuild it against the unmodified switchboard-plugin-api {host_api} this host was built with", path.display())]
    Incompatible {
        /// The plugin's manifest name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// One line: versions and the first difference.
        summary: String,
        /// The plugin-api version this host uses.
        host_api: String,
        /// abi_stable's full report, for `--verbose`.
        report: String,
    },
    /// The plugin registers a callback for an event the manifest does not declare.
    #[error("plugin `{plugin}` registers callback `{callback}` for undeclared event `{event}`{suggestion}; declare it in {} as {} or remove the callback", manifest.display(), crate::suggest::event_table(event))]
    UndeclaredEvent {
        /// The plugin's manifest name.
        plugin: String,
        /// The callback's name.
        callback: String,
        /// The event it asked for.
        event: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The manifest to edit.
        manifest: PathBuf,
    },
    /// A typed callback reads an argument its event does not declare, or declares with a
    /// type it cannot read.
    #[error("callback {plugin}.{callback} {problem}; fix {} in {} or the arguments the callback reads (its argument struct in Rust, its `reads` in C)", crate::suggest::event_table(event), manifest.display())]
    ArgsMismatch {
        /// The plugin's manifest name.
        plugin: String,
        /// The callback's name.
        callback: String,
        /// The event.
        event: String,
        /// What does not fit, naming the argument and the event's declared arguments.
        problem: String,
        /// The manifest to edit.
        manifest: PathBuf,
    },
    /// The plugin's registrations break the interface's rules (a plugin not built with
    /// the SDK, or a buggy one).
    #[error("plugin `{plugin}` registers callbacks the host cannot use: {problem}; {fix}")]
    BadRegistration {
        /// The plugin's manifest name.
        plugin: String,
        /// What is wrong.
        problem: String,
        /// What to do, for the plugin's kind: rebuild a Rust plugin with the SDK, fix a C
        /// plugin's callback table.
        fix: &'static str,
    },
    /// An isolated plugin's worker refused its library, as the in-process loader would
    /// have (the message says why and what to do).
    #[error("{message}")]
    InWorker {
        /// The plugin's manifest name.
        plugin: String,
        /// The refusal's kind, as [`LoadError::kind`] names it in process.
        kind: String,
        /// The worker's message.
        message: String,
    },
    /// An isolated plugin's worker process could not be started or died while opening the
    /// library.
    #[error("plugin `{plugin}` (isolation = \"process\"): {message}")]
    Worker {
        /// The plugin's manifest name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// The plugin's `init` (or its registration code) returned an error or panicked.
    #[error("plugin `{plugin}` failed to initialize: {error}")]
    Init {
        /// The plugin's manifest name.
        plugin: String,
        /// The plugin's error.
        error: PluginError,
    },
}

impl LoadError {
    /// A stable name for the kind of error, for scripts (`--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::Missing { .. } => "load.missing",
            LoadError::MissingFolder { .. } => "load.missing_folder",
            LoadError::NotAFile { .. } => "load.not_a_file",
            LoadError::NotRegular { .. } => "load.not_a_regular_file",
            LoadError::HashMismatch { .. } => "load.hash_mismatch",
            LoadError::Writable { .. } => "load.writable",
            LoadError::Escapes { .. } => "load.escapes",
            LoadError::NotALibrary { .. } => "load.not_a_library",
            LoadError::Damaged { .. } => "load.damaged",
            LoadError::CAbi { .. } => "load.c_abi",
            LoadError::SecondGoRuntime { .. } => "load.second_go_runtime",
            LoadError::CAbiVersion { .. } => "load.c_abi_version",
            LoadError::TooManyBuilds { .. } => "load.too_many_builds",
            LoadError::NotAPlugin { .. } => "load.not_a_plugin",
            LoadError::Incompatible { .. } => "load.incompatible",
            LoadError::UndeclaredEvent { .. } => "load.undeclared_event",
            LoadError::ArgsMismatch { .. } => "load.args_mismatch",
            LoadError::InWorker { kind, .. } => worker_kind(kind),
            LoadError::Worker { .. } => "load.worker",
            LoadError::BadRegistration { .. } => "load.bad_registration",
            LoadError::Init { .. } => "load.init",
        }
    }

    /// The plugin's manifest name.
    pub fn plugin(&self) -> &str {
        match self {
            LoadError::Missing { plugin, .. }
            | LoadError::MissingFolder { plugin, .. }
            | LoadError::NotAFile { plugin, .. }
            | LoadError::NotRegular { plugin, .. }
            | LoadError::HashMismatch { plugin, .. }
            | LoadError::Writable { plugin, .. }
            | LoadError::Escapes { plugin, .. }
            | LoadError::NotALibrary { plugin, .. }
            | LoadError::Damaged { plugin, .. }
            | LoadError::CAbi { plugin, .. }
            | LoadError::SecondGoRuntime { plugin, .. }
            | LoadError::CAbiVersion { plugin, .. }
            | LoadError::TooManyBuilds { plugin, .. }
            | LoadError::NotAPlugin { plugin, .. }
            | LoadError::Incompatible { plugin, .. }
            | LoadError::UndeclaredEvent { plugin, .. }
            | LoadError::ArgsMismatch { plugin, .. }
            | LoadError::InWorker { plugin, .. }
            | LoadError::Worker { plugin, .. }
            | LoadError::BadRegistration { plugin, .. }
            | LoadError::Init { plugin, .. } => plugin,
        }
    }

    /// The long form for `--verbose`: abi_stable's full layout report when there is one.
    pub fn details(&self) -> Option<&str> {
        match self {
            LoadError::Incompatible { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// The static name of a load error kind a worker reported.
fn worker_kind(kind: &str) -> &'static str {
    const KINDS: &[&str] = &[
        "load.missing",
        "load.missing_folder",
        "load.not_a_file",
        "load.not_a_regular_file",
        "load.hash_mismatch",
        "load.writable",
        "load.escapes",
        "load.not_a_library",
        "load.damaged",
        "load.c_abi",
        "load.second_go_runtime",
        "load.c_abi_version",
        "load.not_a_plugin",
        "load.incompatible",
        "load.bad_registration",
        "load.init",
    ];
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("load.worker")
}

/// `a -> b -> c`, or for a long chain its first and last three events around a count, so
/// that a message repeated at every level of a deep cycle stays short.
fn chain_text(chain: &[String]) -> String {
    if chain.len() <= 8 {
        return chain.join(" -> ");
    }
    format!(
        "{} -> ({} more) -> {}",
        chain[..3].join(" -> "),
        chain.len() - 6,
        chain[chain.len() - 3..].join(" -> ")
    )
}

impl HostError {
    /// A stable name for the kind of error, for scripts (`--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Manifest(e) => e.kind(),
            HostError::Load(e) => e.kind(),
            HostError::ShuttingDown => "host.shutting_down",
        }
    }
}

impl EmitError {
    /// A stable name for the kind of error, for scripts (`--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            EmitError::UnknownEvent { .. } => "emit.unknown_event",
            EmitError::MissingArg { .. } => "emit.missing_argument",
            EmitError::UnknownArg { .. } => "emit.unknown_argument",
            EmitError::DuplicateArg { .. } => "emit.duplicate_argument",
            EmitError::WrongType { .. } => "emit.wrong_type",
            EmitError::WrongArity { .. } => "emit.wrong_arity",
            EmitError::TooDeep { .. } => "emit.too_deep",
            EmitError::Stale { .. } => "emit.stale_handle",
            EmitError::ShutDown => "emit.shut_down",
        }
    }
}

/// An emit that was refused before any callback ran.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// No such event in the manifest.
    #[error("unknown event `{event}`{suggestion}; the manifest declares: {declared}")]
    UnknownEvent {
        /// The name given.
        event: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The declared event names, comma-separated.
        declared: String,
    },
    /// A required argument is missing.
    #[error("event `{event}` needs argument `{arg}` ({ty})")]
    MissingArg {
        /// The event.
        event: String,
        /// The argument.
        arg: String,
        /// Its declared type.
        ty: String,
    },
    /// An argument the event does not declare.
    #[error("event `{event}` has no argument `{arg}`{suggestion}; it takes: {declared}")]
    UnknownArg {
        /// The event.
        event: String,
        /// The argument given.
        arg: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The declared arguments.
        declared: String,
    },
    /// The same argument given twice: which one was meant is ambiguous.
    #[error("argument `{arg}` of event `{event}` is given twice; give it once")]
    DuplicateArg {
        /// The event.
        event: String,
        /// The argument.
        arg: String,
    },
    /// An argument of the wrong type.
    #[error("argument `{arg}` of event `{event}`: {reason}")]
    WrongType {
        /// The event.
        event: String,
        /// The argument.
        arg: String,
        /// Expected and found.
        reason: String,
    },
    /// Positional arguments whose count differs from the declaration.
    #[error("event `{event}` takes {expected} arguments, got {got}")]
    WrongArity {
        /// The event.
        event: String,
        /// Declared count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// A nested emit went past `host.max_depth`, usually a cycle between callbacks.
    #[error("nested emit deeper than max_depth = {max_depth}: {}; break the cycle or raise `host.max_depth`", chain_text(chain))]
    TooDeep {
        /// The events from the outermost emit to the refused one.
        chain: Vec<String>,
        /// The limit.
        max_depth: u32,
    },
    /// An event handle resolved on another generation (before a reload, or on another
    /// host): it could name another event now.
    #[error("this event handle was resolved on generation {resolved_on}, but the host runs generation {current}; resolve the event again by name")]
    Stale {
        /// The generation the handle came from.
        resolved_on: u64,
        /// The generation it was used on.
        current: u64,
    },
    /// The generation was shut down; its plugins take no more calls.
    #[error("the host is shut down; its plugins take no more events")]
    ShutDown,
}

/// Why a control operation (see [`Generation::control`](crate::Generation::control)) got no
/// answer from its plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No plugin of that name runs.
    #[error("no plugin named `{plugin}`{suggestion}; the manifest has: {known}")]
    UnknownPlugin {
        /// The name asked for.
        plugin: String,
        /// A " (did you mean ...)" hint, or empty.
        suggestion: String,
        /// The plugins there are.
        known: String,
    },
    /// The plugin is not running (its `init` failed under `on_load_error = "skip"`).
    #[error("plugin `{plugin}` is not running: {reason}")]
    Off {
        /// The plugin.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The plugin answered with an error; [`PluginError::is_unsupported`] tells an
    /// operation it does not know from one that failed.
    #[error("plugin `{plugin}`: {error}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// Its error.
        error: PluginError,
    },
    /// The generation was shut down.
    #[error("the host is shut down; its plugins take no more operations")]
    ShutDown,
}

/// A plugin's error that claims a kind only the host gives (skipped, crashed, timed out),
/// turned into a plain failure that says so: a plugin cannot pass its own failure off as
/// the host's finding.
pub(crate) fn as_plain_failure(error: &PluginError) -> PluginError {
    let plain = PluginError::new(format!(
        "{} (the plugin returned an error marked as {} by the host; counted as a failure)",
        error.message(),
        error.kind_name()
    ));
    match error.help() {
        Some(help) => plain.with_help(help),
        None => plain,
    }
}
