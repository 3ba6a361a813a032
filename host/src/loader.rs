//! Opening plugin libraries: file resolution, abi_stable's checks, and turning its long
//! reports into one readable line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use switchboard_plugin_api::abi::{PluginInfo, PluginModuleRef, Registration};

use crate::error::LoadError;

/// The plugin-api version this host was built against.
pub const HOST_API_VERSION: &str = switchboard_plugin_api::export::API_VERSION;

/// An opened plugin library: its root module and what it declares about itself.
#[derive(Clone)]
pub struct Library {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The root module.
    pub module: PluginModuleRef,
    /// Name, version and plugin-api version, as the plugin reports them.
    pub info: LibraryInfo,
    /// The callbacks the plugin registers.
    pub registrations: Vec<Registration>,
}

/// Owned copy of a plugin's [`PluginInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryInfo {
    /// The plugin crate's name.
    pub name: String,
    /// The plugin crate's version.
    pub version: String,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// Optional features it announces.
    pub features: Vec<String>,
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

/// Opens libraries, each file once: two manifest entries naming the same file share one
/// loaded copy (and get two plugin instances).
///
/// Libraries are never unloaded. abi_stable leaks them on purpose: unloading Rust
/// libraries that use thread-locals is unsound on several platforms, and a callback may
/// still be running on another thread when the host winds down.
#[derive(Default)]
pub struct Loader {
    opened: HashMap<PathBuf, Library>,
}

impl Loader {
    /// A loader with nothing opened yet.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Opens the library at `path` for the manifest entry `plugin`.
    pub fn open(&mut self, plugin: &str, path: &Path) -> Result<Library, LoadError> {
        if !path.is_file() {
            return Err(LoadError::Missing {
                plugin: plugin.to_owned(),
                path: path.to_owned(),
            });
        }
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if let Some(library) = self.opened.get(&key) {
            return Ok(library.clone());
        }
        let library = open_library(plugin, path)?;
        self.opened.insert(key, library.clone());
        Ok(library)
    }
}

fn open_library(plugin: &str, path: &Path) -> Result<Library, LoadError> {
    let header = lib_header_from_path(path).map_err(|e| library_error(plugin, path, e, None))?;
    let plugin_api = header.version_strings().version.to_string();
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| library_error(plugin, path, e, Some(&plugin_api)))?;
    let info = LibraryInfo::from((module.info())());
    let registrations = (module.registrations())()
        .into_result()
        .map_err(|error| LoadError::Init {
            plugin: plugin.to_owned(),
            error,
        })?
        .into_vec();
    Ok(Library {
        path: path.to_owned(),
        module,
        info,
        registrations,
    })
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
            plugin,
            path,
            reason: err.to_string(),
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
            let version = plugin_api.unwrap_or("an unknown version");
            incompatible(
                format!(
                    "it uses plugin-api {version}, this host uses {HOST_API_VERSION}; {}",
                    summarize_layout_report(&report)
                ),
                report,
            )
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

/// The first difference in abi_stable's layout report, on one line: which type and field,
/// what the host expected and what the plugin has.
pub fn summarize_layout_report(report: &str) -> String {
    let mut error = None;
    let mut expected = None;
    let mut found = None;
    let mut field = None;
    let mut lines = report.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let value = |line: &str, key: &str| -> Option<String> {
            line.strip_prefix(key).map(|rest| rest.trim().to_owned())
        };
        if error.is_none() {
            error = value(line, "Error:");
            if error.as_deref() == Some("") {
                error = lines.peek().map(|l| l.to_string());
            }
        } else if expected.is_none() && line.starts_with("Expected:") {
            expected = value(line, "Expected:")
                .filter(|v| !v.is_empty())
                .or_else(|| lines.peek().map(|l| l.to_string()));
        } else if found.is_none() && line.starts_with("Found:") {
            found = value(line, "Found:")
                .filter(|v| !v.is_empty())
                .or_else(|| lines.peek().map(|l| l.to_string()));
        }
        if field.is_none() {
            field = value(line, "field_name:");
        }
    }
    let mut summary = error.unwrap_or_else(|| "the type layouts differ".to_owned());
    if let Some(field) = field {
        summary.push_str(&format!(" at field `{field}`"));
    }
    if let (Some(expected), Some(found)) = (expected, found) {
        summary.push_str(&format!(": expected {expected}, found {found}"));
    }
    summary
}
