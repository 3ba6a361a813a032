//! Opening plugin libraries: file resolution, abi_stable's checks, and turning its long
//! reports into one readable line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary, RootModule};
use abi_stable::std_types::RResult;
use switchboard_plugin_api::abi::{ArgDecl, HostRef, PluginBox, PluginInfo, PluginModuleRef};
use switchboard_plugin_api::{Error as PluginError, Value};

use super::declared::{Emits, LibraryInfo, Registered};
use super::identify::explain_not_loadable;
use super::preflight::require_file;
use super::structure::damage;
use crate::error::LoadError;

/// The plugin-api version this host was built against.
pub const HOST_API_VERSION: &str = switchboard_plugin_api::export::API_VERSION;

/// An opened plugin library: its root module and what it declares about itself.
#[derive(Clone)]
pub(crate) struct Library {
    /// The file it was loaded from (its private copy was what got mapped).
    pub(crate) path: PathBuf,
    /// The SHA-256 of the build loaded (empty when loaded in place, by a worker).
    pub(crate) sha256: String,
    /// The plugin's entry: a Rust root module or a C-ABI table.
    pub(crate) module: Module,
    /// Name, version and plugin-api version, as the plugin reports them.
    pub(crate) info: LibraryInfo,
    /// The callbacks the plugin registers.
    pub(crate) registrations: Vec<Registered>,
    /// The events it says it emits.
    pub(crate) emits: Vec<Emits>,
}

/// A loaded library's way in, by its kind.
#[derive(Clone, Copy)]
pub(crate) enum Module {
    /// A Rust plugin (`switchboard-plugin-api`, abi_stable).
    Rust(PluginModuleRef),
    /// A C-ABI plugin (`switchboard.h`).
    C(super::c_table::Table),
}

impl Module {
    /// Runs the plugin's `init` with its config: the live plugin, whatever its kind.
    pub(crate) fn init(
        self,
        config: &Value<'_>,
        host: HostRef<'_>,
    ) -> RResult<PluginBox, PluginError> {
        match self {
            Module::Rust(module) => (module.init())(config, host),
            Module::C(table) => table.init(config, host),
        }
    }
}

/// What a library says about itself, read without a manifest: see [`inspect`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LibraryReport {
    /// The file.
    pub path: PathBuf,
    /// Name, versions and features.
    pub info: LibraryInfo,
    /// The callbacks it registers, in registration order.
    pub registrations: Vec<Registered>,
    /// The events it says it emits.
    pub emits: Vec<Emits>,
}

/// Opens the library at `path` and reports what it exports, without running any plugin
/// code but its static registration. A bare file name is looked up in the current folder,
/// not in the system's library path.
pub fn inspect(path: &Path) -> Result<LibraryReport, LoadError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = if path.components().count() == 1 {
        Path::new(".").join(path)
    } else {
        path.to_owned()
    };
    let library = Loader::new(None).open(&name, &path)?;
    Ok(LibraryReport {
        path: library.path,
        info: library.info,
        registrations: library.registrations,
        emits: library.emits,
    })
}

/// The two kinds of plugin library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginKind {
    /// Built with the Rust SDK, `switchboard-plugin-api` (`api_version` is its version).
    Rust,
    /// Built against `switchboard.h`, the C ABI (`api_version` is the ABI's `major.minor`).
    C,
    /// Not a library: the callbacks the embedding application registered itself (see
    /// `AppCallback`); `api_version` is the host's version.
    Application,
}

/// The feature an application's [`LibraryInfo`] lists, which makes its kind
/// [`PluginKind::Application`].
pub(crate) const APPLICATION_FEATURE: &str = "application";

impl LibraryInfo {
    /// Which kind of plugin the library is.
    pub fn kind(&self) -> PluginKind {
        let lists = |feature: &str| self.features.iter().any(|f| f == feature);
        if lists(super::c_table::C_ABI_FEATURE) {
            PluginKind::C
        } else if lists(APPLICATION_FEATURE) {
            PluginKind::Application
        } else {
            PluginKind::Rust
        }
    }

    /// What an application that registers its own callbacks is shown as.
    pub(crate) fn application(name: &str) -> LibraryInfo {
        LibraryInfo {
            name: name.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: env!("CARGO_PKG_VERSION").to_owned(),
            features: vec![APPLICATION_FEATURE.to_owned()],
        }
    }

    /// The interface and its version, for people: `plugin-api 1.0.0` or `C ABI 1.0`.
    pub fn interface(&self) -> String {
        match self.kind() {
            PluginKind::Rust => format!("plugin-api {}", self.api_version),
            PluginKind::C => format!("C ABI {}", self.api_version),
            PluginKind::Application => format!("application (host {})", self.api_version),
        }
    }
}

impl From<PluginInfo> for LibraryInfo {
    fn from(info: PluginInfo) -> Self {
        LibraryInfo {
            name: info.name.to_string(),
            version: info.version.to_string(),
            api_version: info.api_version.to_string(),
            features: info.features.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// `(name, type)` pairs from the interface's declarations.
fn pairs(decls: &[ArgDecl]) -> Vec<(String, String)> {
    decls
        .iter()
        .map(|d| (d.name.to_string(), d.kind.to_string()))
        .collect()
}

/// What to do about registrations that break the rules, for a plugin of `kind`.
pub(crate) fn registration_fix(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Rust => "rebuild it with switchboard-plugin-api",
        PluginKind::C => {
            "fix its `sb_callback` table (the rules are in plugin-api/include/switchboard.h) and rebuild it"
        }
        PluginKind::Application => "fix the callback's registration in the application",
    }
}

/// The longest callback name the host accepts (the SDK's own limit).
const MAX_CALLBACK_NAME: usize = 64;

/// Checks what a plugin registers against the interface's rules: the SDKs keep them, but a
/// library built without one, or with a modified copy, may not.
pub(crate) fn check_registrations(
    plugin: &str,
    kind: PluginKind,
    callbacks: &[Registered],
) -> Result<(), LoadError> {
    let bad = |problem: String| LoadError::BadRegistration {
        plugin: plugin.to_owned(),
        problem,
        fix: registration_fix(kind),
    };
    for (index, registration) in callbacks.iter().enumerate() {
        let name = registration.callback.as_str();
        if name.is_empty()
            || name.len() > MAX_CALLBACK_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(format!(
                "callback name {name:?} is not 1 to {MAX_CALLBACK_NAME} letters, digits, `_` or `-`"
            )));
        }
        if callbacks[..index]
            .iter()
            .any(|r| r.callback == registration.callback)
        {
            return Err(bad(format!("two callbacks are named `{name}`")));
        }
        if registration.id as usize != index {
            return Err(bad(format!(
                "callback `{name}` has number {}, expected {index}",
                registration.id
            )));
        }
    }
    Ok(())
}

/// Opens libraries, each file once: two manifest entries naming the same file share one
/// loaded copy (and get two plugin instances).
///
/// Libraries are never unloaded. abi_stable leaks them on purpose: unloading Rust
/// libraries that use thread-locals is unsound on several platforms, and a callback may
/// still be running on another thread when the host winds down.
///
/// Each library is loaded from a private copy named by its content (see `copy`), unless
/// the loader is [`Loader::in_place`] (a worker, handed a copy already).
pub(crate) struct Loader {
    opened: HashMap<PathBuf, Library>,
    /// Where copies go: `Some(state)` for a manifest's `.switchboard` folder, `None` for
    /// this process's temporary folder; no copies at all when `copies` is false.
    state: Option<PathBuf>,
    copies: bool,
}

impl Loader {
    /// A loader that keeps its private copies under `state` (a manifest's `.switchboard`
    /// folder), or in a temporary folder of this process.
    pub(crate) fn new(state: Option<PathBuf>) -> Self {
        Loader {
            opened: HashMap::new(),
            state,
            copies: true,
        }
    }

    /// A loader that loads files where they are: for a worker, whose host made the copy.
    pub(crate) fn in_place() -> Self {
        Loader {
            opened: HashMap::new(),
            state: None,
            copies: false,
        }
    }

    /// Opens the library at `path` for the manifest entry `plugin`.
    pub(crate) fn open(&mut self, plugin: &str, path: &Path) -> Result<Library, LoadError> {
        require_file(plugin, path)?;
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if let Some(library) = self.opened.get(&key) {
            return Ok(library.clone());
        }
        let library = if self.copies {
            let copy = self.copy(plugin, path)?;
            return self.open_copied(plugin, path, copy);
        } else {
            // The host checked the copy it hands a worker; a file changed since is
            // checked again before it is mapped.
            let bytes = std::fs::read(path).map_err(|e| LoadError::NotALibrary {
                plugin: plugin.to_owned(),
                path: path.to_owned(),
                reason: format!("cannot read it: {e}"),
            })?;
            if let Some(reason) = damage(&bytes) {
                return Err(LoadError::Damaged {
                    plugin: plugin.to_owned(),
                    path: path.to_owned(),
                    reason,
                });
            }
            open_library(plugin, path, path, String::new())?
        };
        self.opened.insert(key, library.clone());
        Ok(library)
    }

    /// The private copy `path` is loaded from: checked and read once, its hash and whether
    /// it brings a Go runtime known before anything maps it.
    pub(crate) fn copy(&self, plugin: &str, path: &Path) -> Result<super::copy::Copy, LoadError> {
        require_file(plugin, path)?;
        super::copy::private_copy(path, self.state.as_deref())
            .map_err(|problem| problem.for_plugin(plugin, path))
    }

    /// Opens `copy`, the private copy of `path` ([`Loader::copy`]), in this process.
    pub(crate) fn open_copied(
        &mut self,
        plugin: &str,
        path: &Path,
        copy: super::copy::Copy,
    ) -> Result<Library, LoadError> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if let Some(library) = self.opened.get(&key) {
            return Ok(library.clone());
        }
        if copy.go {
            if let Err(first) = super::copy::note_go_runtime(&copy.sha256, plugin) {
                return Err(LoadError::SecondGoRuntime {
                    plugin: plugin.to_owned(),
                    path: path.to_owned(),
                    first,
                });
            }
        }
        if let Err(loaded) = super::copy::note_in_process(&copy.sha256) {
            return Err(LoadError::TooManyBuilds {
                plugin: plugin.to_owned(),
                path: path.to_owned(),
                loaded,
                limit: super::copy::MAX_IN_PROCESS_BUILDS,
            });
        }
        let library = open_library(plugin, path, &copy.path, copy.sha256)?;
        self.opened.insert(key, library.clone());
        Ok(library)
    }
}

/// Loads `file` (the private copy of `path`, or `path` itself) and reads what it
/// registers; its kind is told by what it exports: `switchboard_plugin` for the C ABI,
/// abi_stable's root module for Rust. Errors name `path`, the file the operator knows.
fn open_library(
    plugin: &str,
    path: &Path,
    file: &Path,
    sha256: String,
) -> Result<Library, LoadError> {
    let named_as_known = |mut error: LoadError| {
        if let LoadError::NotALibrary { reason, .. } = &mut error {
            *reason = reason.replace(&file.display().to_string(), &path.display().to_string());
        }
        error
    };
    let raw = RawLibrary::load_at(file)
        .map_err(|e| named_as_known(library_error(plugin, path, e, None)))?;
    // Libraries are never unloaded (see `Loader`).
    let raw: &'static RawLibrary = Box::leak(Box::new(raw));
    // SAFETY: a library exporting `switchboard_plugin` declares it as the header's entry
    // point (that name is the C ABI's); the symbol lives as long as the leaked library.
    let c_entry = unsafe { raw.get::<super::c_abi::EntryPoint>(super::c_abi::ENTRY_POINT) }
        .ok()
        .map(|symbol| *symbol);
    let (module, info, registrations, emits) = match c_entry {
        Some(entry) => {
            // SAFETY: the library's own entry point; its table is checked as it is read.
            let described = unsafe { super::c_table::describe(plugin, path, entry) }?;
            (
                Module::C(described.table),
                described.info,
                described.registrations,
                described.emits,
            )
        }
        None => rust_module(plugin, path, raw)?,
    };
    let kind = match module {
        Module::C(_) => PluginKind::C,
        Module::Rust(_) => PluginKind::Rust,
    };
    check_registrations(plugin, kind, &registrations)?;
    Ok(Library {
        path: path.to_owned(),
        sha256,
        module,
        info,
        registrations,
        emits,
    })
}

/// A Rust plugin's root module, checked by abi_stable, and what it registers.
fn rust_module(
    plugin: &str,
    path: &Path,
    raw: &'static RawLibrary,
) -> Result<(Module, LibraryInfo, Vec<Registered>, Vec<Emits>), LoadError> {
    // SAFETY: the library is leaked, so the header's references stay valid.
    let header = unsafe { lib_header_from_raw_library(raw) }
        .map_err(|e| library_error(plugin, path, e, None))?;
    let plugin_api = header.version_strings().version.to_string();
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| library_error(plugin, path, e, Some(&plugin_api)))?;
    let info = LibraryInfo::from((module.info())());
    let description = (module.describe())()
        .into_result()
        .map_err(|error| LoadError::Init {
            plugin: plugin.to_owned(),
            error,
        })?;
    let registrations = description
        .callbacks
        .iter()
        .map(|r| Registered {
            event: r.event.to_string(),
            callback: r.name.to_string(),
            priority: r.priority,
            reads: r.reads.as_ref().map(|reads| pairs(reads)).into_option(),
            id: r.id,
        })
        .collect();
    let emits = description
        .emits
        .iter()
        .map(|e| Emits {
            event: e.event.to_string(),
            args: pairs(&e.args),
        })
        .collect();
    Ok((Module::Rust(module), info, registrations, emits))
}

fn library_error(
    plugin: &str,
    path: &Path,
    error: LibraryError,
    plugin_api: Option<&str>,
) -> LoadError {
    let plugin = plugin.to_owned();
    let path = path.to_owned();
    let incompatible = |summary: String, report: String| LoadError::Incompatible {
        plugin: plugin.clone(),
        path: path.clone(),
        summary,
        host_api: HOST_API_VERSION.to_owned(),
        report,
    };
    match error {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary {
            reason: explain_not_loadable(&path).unwrap_or_else(|| err.to_string()),
            plugin,
            path,
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { plugin, path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => incompatible(
            format!("it uses plugin-api {actual_version}, this host uses {expected_version}"),
            String::new(),
        ),
        LibraryError::AbiInstability(report) => {
            let report = report.to_string();
            let difference = summarize_layout_report(&report);
            let summary = match plugin_api {
                Some(version) if version == HOST_API_VERSION => format!(
                    "it says plugin-api {version} like this host, but its types differ, so it was built from a modified copy; {difference}"
                ),
                Some(version) => {
                    format!("it uses plugin-api {version}, this host uses {HOST_API_VERSION}; {difference}")
                }
                None => format!("its plugin-api version is unknown; {difference}"),
            };
            incompatible(summary, report)
        }
        LibraryError::RootModule { err, .. } => LoadError::Init {
            plugin,
            error: switchboard_plugin_api::Error::new(err.to_string()),
        },
        other => incompatible(
            format!("{} refused it", PluginModuleRef::NAME),
            other.to_string(),
        ),
    }
}

/// The first difference in abi_stable's layout report, on one line: the path through the
/// types to it, and what the host expected against what the plugin has. For example
/// "PluginModule > info > returns PluginInfo: incompatible type size: expected 64, found 72".
pub fn summarize_layout_report(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let Some(first_error) = lines.iter().position(|l| l.starts_with("Error:")) else {
        return "the type layouts differ".to_owned();
    };
    let error = lines[first_error].trim_start_matches("Error:").trim();
    let value_after = |key: &str| {
        lines[first_error..]
            .iter()
            .position(|l| l.starts_with(key))
            .and_then(|i| {
                let at = first_error + i;
                let inline = lines[at].trim_start_matches(key).trim();
                if inline.is_empty() {
                    lines.get(at + 1).map(|l| l.to_string())
                } else {
                    Some(inline.to_owned())
                }
            })
    };

    // The block that locates the error: from the last "error(s)inside:" before it to the
    // first "Layout of expected type:" after that.
    let block_start = lines[..first_error]
        .iter()
        .rposition(|l| l.ends_with("error(s)inside:"))
        .unwrap_or(0);
    let block_end = lines[block_start..first_error]
        .iter()
        .position(|l| l.starts_with("Layout of expected type"))
        .map_or(first_error, |i| block_start + i);
    let mut path: Vec<String> = Vec::new();
    let mut field: Option<&str> = None;
    for line in &lines[block_start..block_end] {
        if let Some(name) = line.strip_prefix("field_name:") {
            field = Some(name);
        } else if let (Some(name), Some(ty)) = (field.take(), line.strip_prefix("type:")) {
            path.push(match name {
                // Transparent wrappers (PrefixRef, the module itself) are named by type.
                "0" => ty.to_owned(),
                "__returns" => format!("returns {ty}"),
                _ => name.to_owned(),
            });
        }
    }
    path.dedup();

    let mut summary = String::new();
    if !path.is_empty() {
        summary.push_str(&path.join(" > "));
        summary.push_str(": ");
    }
    summary.push_str(error);
    if let (Some(expected), Some(found)) = (value_after("Expected:"), value_after("Found:")) {
        summary.push_str(&format!(": expected {expected}, found {found}"));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of a real report: PluginInfo gained a field in the plugin's plugin-api.
    const REPORT: &str = "Compared <this>:\n    --- Type Layout ---\n    type:PrefixRef<'a, PluginModule>\n\n2 error(s)inside:\n    <other>\n\n    field_name:0\n    type:PluginModule\n    size:24 align:8\n\n    field_name:info\n    type:AFunctionPointer\n    size:8 align:8\n    fn pointer(s):\n        fn()->PluginInfo\n\n    fn()->PluginInfo\n\n    field_name:__returns\n    type:PluginInfo\n    size:64 align:8\n\nLayout of expected type:\n    --- Type Layout ---\n    type:PluginInfo\n    field_name:name\n    type:RStr<'a>\n\nError:incompatible type size\nExpected:\n    64\nFound:\n    72\n\nError:too many fields\nExpected:\n    4\nFound:\n    5\n";

    #[test]
    fn summarizes_the_path_and_the_first_difference() {
        assert_eq!(
            summarize_layout_report(REPORT),
            "PluginModule > info > returns PluginInfo: incompatible type size: expected 64, found 72"
        );
        assert_eq!(
            summarize_layout_report("nothing useful"),
            "the type layouts differ"
        );
    }
}
