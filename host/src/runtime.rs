//! [`Switchboard`]: a manifest's plugins loaded, initialized and ready to dispatch.

use std::path::Path;

use switchboard_plugin_api::{Error as PluginError, Value};

use std::time::Instant;

use crate::breaker::{Breaker, BreakerState};
use crate::builtin;
use crate::error::{HostError, LoadError};
use crate::host_api::CallCtx;
use crate::loader::Library;
use crate::manifest::{LoadErrorPolicy, Manifest};
use crate::registry::{Callback, CallbackId, EventId, Registry};
use switchboard_plugin_api::abi::PluginBox;

/// A running host: the manifest's plugins loaded and initialized, events ready to emit.
///
/// Dropping it runs every plugin's shutdown in reverse load order; call
/// [`Switchboard::shutdown`] to see their errors.
pub struct Switchboard {
    pub(crate) manifest: Manifest,
    pub(crate) registry: Registry,
    /// Live plugins, indexed like `registry.plugins()`; `None` for one skipped after a
    /// failed `init`.
    pub(crate) instances: Vec<Option<PluginBox>>,
    /// Their circuit breakers, indexed the same way.
    pub(crate) breakers: Vec<Breaker>,
    /// `plugin.failed`, resolved once.
    pub(crate) plugin_failed: EventId,
    shut_down: bool,
}

/// A plugin's failure while shutting down.
#[derive(Debug)]
pub struct ShutdownFailure {
    /// The plugin's manifest name.
    pub plugin: String,
    /// Its error.
    pub error: PluginError,
}

impl Switchboard {
    /// Reads and validates the manifest at `path`, then loads every plugin.
    pub fn open(path: &Path) -> Result<Switchboard, HostError> {
        let manifest = Manifest::load_valid(path)?;
        Ok(Switchboard::start(manifest)?)
    }

    /// Loads and initializes the plugins of a validated manifest, in manifest order.
    ///
    /// Every library is opened and every registration checked before any plugin's `init`
    /// runs, so a manifest error never leaves half-initialized plugins behind. If an
    /// `init` fails, the plugins initialized before it are shut down again.
    pub fn start(manifest: Manifest) -> Result<Switchboard, LoadError> {
        let (registry, libraries) = Registry::build(&manifest)?;
        Switchboard::start_built(manifest, registry, &libraries)
    }

    /// Initializes the plugins of a registry built with [`Registry::build`], for callers
    /// that inspect the registry (to check arguments, say) before any plugin runs.
    pub fn start_built(
        manifest: Manifest,
        registry: Registry,
        libraries: &[Library],
    ) -> Result<Switchboard, LoadError> {
        let epoch = Instant::now();
        let breakers = registry
            .plugins
            .iter()
            .map(|plugin| {
                let entry = manifest
                    .plugins
                    .iter()
                    .find(|e| *e.name.get_ref() == plugin.name);
                let settings = entry
                    .and_then(|e| e.breaker)
                    .unwrap_or(manifest.host.breaker);
                Breaker::new(settings, epoch)
            })
            .collect();
        let plugin_failed = registry
            .event_id(builtin::PLUGIN_FAILED)
            .expect("built-in events are always registered");
        let mut board = Switchboard {
            manifest,
            registry,
            instances: Vec::with_capacity(libraries.len()),
            breakers,
            plugin_failed,
            shut_down: false,
        };
        let mut skipped = Vec::new();
        for (plugin, library) in board.registry.plugins.iter().zip(libraries) {
            let entry = board
                .manifest
                .plugins
                .iter()
                .find(|e| *e.name.get_ref() == plugin.name)
                .expect("registry plugins come from the manifest");
            let config = config_value(entry.config.as_ref());
            let ctx = CallCtx::for_init(&board, &plugin.name);
            match (library.module.init())(&config, ctx.handle()).into_result() {
                Ok(instance) => board.instances.push(Some(instance)),
                Err(error) => {
                    let error = LoadError::Init {
                        plugin: plugin.name.clone(),
                        error,
                    };
                    if entry.load_error_policy(&board.manifest.host) == LoadErrorPolicy::Fail {
                        board.shutdown();
                        return Err(error);
                    }
                    tracing::warn!("skipping plugin (on_load_error = \"skip\"): {error}");
                    board.instances.push(None);
                    skipped.push((board.instances.len() - 1, error.to_string()));
                }
            }
        }
        for (plugin, error) in skipped {
            board.registry.skip_plugin(plugin, error);
        }
        board.emit_builtin(builtin::HOST_STARTED);
        Ok(board)
    }

    /// Emits a built-in event without arguments, if anything listens.
    fn emit_builtin(&self, name: &str) {
        let id = self
            .registry
            .event_id(name)
            .expect("built-in events are always registered");
        if !self.registry.event(id).callbacks.is_empty() {
            // No arguments to check; failures are logged and reported via plugin.failed.
            let _ = self.emit(id, &[]);
        }
    }

    /// Whether each plugin is switched on, by manifest name, with how often its breaker
    /// tripped.
    pub fn breaker_states(&self) -> Vec<(&str, BreakerState, u64)> {
        self.registry
            .plugins
            .iter()
            .zip(&self.breakers)
            .map(|(p, b)| (p.name.as_str(), b.state(), b.trips()))
            .collect()
    }

    /// Runs every plugin's shutdown once, in reverse load order, and returns the failures.
    pub fn shutdown(&mut self) -> Vec<ShutdownFailure> {
        if std::mem::replace(&mut self.shut_down, true) {
            return Vec::new();
        }
        if self.instances.len() == self.registry.plugins.len() {
            self.emit_builtin(builtin::HOST_STOPPING);
        }
        let mut failures = Vec::new();
        let live = self.registry.plugins.iter().zip(&self.instances);
        for (plugin, instance) in live.rev() {
            let Some(instance) = instance else { continue };
            let ctx = CallCtx::for_shutdown(self, &plugin.name);
            if let Err(error) = instance.shutdown(ctx.handle()).into_result() {
                tracing::error!("plugin `{}` failed to shut down: {error}", plugin.name);
                failures.push(ShutdownFailure {
                    plugin: plugin.name.clone(),
                    error,
                });
            }
        }
        failures
    }

    /// How many plugins are live (loaded, initialized and not skipped).
    pub fn live_plugins(&self) -> usize {
        self.instances.iter().filter(|i| i.is_some()).count()
    }

    /// The manifest this host was started from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Events, callbacks and plugins.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The event called `name`, resolved once so that emits skip the lookup.
    pub fn event(&self, name: &str) -> Result<EventId, crate::EmitError> {
        self.registry.resolve(name)
    }

    /// The callback behind an outcome.
    pub fn callback(&self, id: CallbackId) -> &Callback {
        self.registry.callback(id)
    }
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A plugin's config as a payload map (empty when the manifest gives none).
fn config_value(config: Option<&toml::Table>) -> Value<'static> {
    match config {
        Some(table) => Value::from_json(&toml_to_json(&toml::Value::Table(table.clone()))),
        None => Value::map(std::iter::empty::<(String, Value)>()),
    }
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
