//! A manifest that passed validation: the checked, plain values a host starts from.

use std::path::{Path, PathBuf};

use super::{DeclaredEvent, HostSettings, Manifest, NatsSettings, PluginSettings, ServeSettings};
use crate::error::ManifestError;

/// A manifest that passed [`Manifest::validate`], as plain values: every name, argument
/// type and plugin entry checked, every event's arguments parsed into a
/// [`Schema`](super::schema::Schema), every plugin's defaults applied and its library's
/// path resolved. Hosts start only from this type, so nothing downstream re-checks or
/// parses again.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    pub(super) manifest: Manifest,
    /// The declared events, in declaration order.
    pub(super) events: Vec<DeclaredEvent>,
    /// The plugins to load, in manifest order.
    pub(super) plugins: Vec<PluginSettings>,
    /// The plugin folder, resolved.
    pub(super) plugin_dir: PathBuf,
    /// The `[nats]` table, checked.
    pub(super) nats_settings: Option<NatsSettings>,
    /// The `[serve]` table, checked.
    pub(super) serve_settings: ServeSettings,
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
