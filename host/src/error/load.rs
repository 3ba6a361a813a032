//! A plugin library that cannot be loaded or started, and why, in the words of the rule
//! it broke.

use std::path::PathBuf;

use switchboard_plugin_api::Error as PluginError;

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
