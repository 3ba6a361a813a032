//! [`Switchboard`]: a manifest's plugins loaded, initialized and ready to dispatch.

use std::path::Path;

use switchboard_plugin_api::{Error as PluginError, Value};

use crate::error::{HostError, LoadError};
use crate::host_api::CallCtx;
use crate::loader::{Library, Loader};
use crate::manifest::Manifest;
use crate::registry::{Callback, CallbackId, Event, EventId, LivePlugin, Registry};
use crate::schema::{ArgType, Schema};
use crate::suggest::did_you_mean;

/// A running host: the manifest's plugins loaded and initialized, events ready to emit.
///
/// Dropping it runs every plugin's shutdown in reverse load order; call
/// [`Switchboard::shutdown`] to see their errors.
pub struct Switchboard {
    pub(crate) manifest: Manifest,
    pub(crate) registry: Registry,
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
        let mut registry = Registry::default();
        for (name, decl) in &manifest.events {
            let mut schema = Schema::default();
            for (arg, ty) in &decl.args {
                schema.names.push(arg.as_str().into());
                // validate() has checked every type; an invalid one cannot reach here.
                schema
                    .types
                    .push(ArgType::parse(ty.get_ref()).unwrap_or(ArgType {
                        kind: crate::schema::Kind::Any,
                        optional: true,
                    }));
            }
            registry.add_event(Event {
                name: name.get_ref().clone(),
                doc: decl.doc.clone(),
                schema,
                result: decl.result,
                on_error: decl.on_error,
                callbacks: Vec::new(),
            });
        }

        let libraries = open_all(&manifest, &registry)?;

        let mut board = Switchboard {
            manifest,
            registry,
            shut_down: false,
        };
        for (index, library) in libraries.into_iter().enumerate() {
            let entry = &board.manifest.plugins[index];
            let name = entry.name.get_ref().clone();
            let config = config_value(entry.config.as_ref());
            let ctx = CallCtx::for_init(&board, &name);
            let instance = (library.module.init())(&config, ctx.handle()).into_result();
            let instance = match instance {
                Ok(instance) => instance,
                Err(error) => {
                    board.shutdown();
                    return Err(LoadError::Init {
                        plugin: name,
                        error,
                    });
                }
            };
            let plugin = board.registry.plugins.len();
            for registration in &library.registrations {
                let event = board
                    .registry
                    .event_id(&registration.event)
                    .expect("checked by open_all");
                board.registry.add_callback(Callback {
                    plugin,
                    plugin_name: name.clone(),
                    name: registration.callback.to_string(),
                    event,
                    priority: registration.priority,
                    id: registration.id,
                });
            }
            board.registry.plugins.push(LivePlugin {
                name,
                path: library.path,
                info: library.info,
                instance,
            });
        }
        board.registry.sort();
        Ok(board)
    }

    /// Runs every plugin's shutdown once, in reverse load order, and returns the failures.
    pub fn shutdown(&mut self) -> Vec<ShutdownFailure> {
        if std::mem::replace(&mut self.shut_down, true) {
            return Vec::new();
        }
        let mut failures = Vec::new();
        for plugin in self.registry.plugins.iter().rev() {
            let ctx = CallCtx::for_shutdown(self, &plugin.name);
            if let Err(error) = plugin.instance.shutdown(ctx.handle()).into_result() {
                tracing::error!(plugin = %plugin.name, "shutdown failed: {error}");
                failures.push(ShutdownFailure {
                    plugin: plugin.name.clone(),
                    error,
                });
            }
        }
        failures
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
        self.registry
            .event_id(name)
            .ok_or_else(|| crate::EmitError::UnknownEvent {
                event: name.to_owned(),
                suggestion: did_you_mean(name, self.registry.by_name.keys().map(String::as_str)),
                declared: self
                    .registry
                    .events
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
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

/// Opens every library and checks its registrations against the declared events.
fn open_all(manifest: &Manifest, registry: &Registry) -> Result<Vec<Library>, LoadError> {
    let mut loader = Loader::new();
    let mut libraries = Vec::with_capacity(manifest.plugins.len());
    for entry in &manifest.plugins {
        let name = entry.name.get_ref();
        let library = loader.open(name, &manifest.library_path(entry))?;
        for registration in &library.registrations {
            if registry.event_id(&registration.event).is_none() {
                return Err(LoadError::UndeclaredEvent {
                    plugin: name.clone(),
                    callback: registration.callback.to_string(),
                    event: registration.event.to_string(),
                    suggestion: did_you_mean(
                        &registration.event,
                        registry.by_name.keys().map(String::as_str),
                    ),
                    manifest: manifest.path.clone(),
                });
            }
        }
        libraries.push(library);
    }
    Ok(libraries)
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
