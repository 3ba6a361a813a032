//! What a library declares about itself, whatever its kind: its name and versions, the
//! callbacks it registers and the events it says it emits. Read by the loader of each
//! kind, checked against the manifest by `library`.

/// One callback a library registers, as the host reads it at load.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registered {
    /// The event name.
    pub event: String,
    /// The callback's name.
    pub callback: String,
    /// Higher runs earlier.
    pub priority: i32,
    /// What a typed callback reads: `(argument, type)` pairs, types as a manifest
    /// writes them. `None` for a callback that reads arguments by name as it runs.
    pub reads: Option<Vec<(String, String)>>,
    /// The number the plugin knows the callback by.
    pub(crate) id: u32,
}

/// An event a plugin says it emits, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Emits {
    /// The event name.
    pub event: String,
    /// `(argument, type)` pairs in order, types as a manifest writes them.
    pub args: Vec<(String, String)>,
}

/// What a plugin library says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
