//! The dispatch tables: every event with its callbacks in dispatch order, and the live
//! plugins they belong to. Built once at start-up; read without locks by every emit.

use rustc_hash::FxHashMap;

use crate::error::{EmitError, LoadError};
use crate::loader::{Library, LibraryInfo, Loader};
use crate::manifest::{ErrorPolicy, ResultPolicy};
use crate::manifest::{LoadErrorPolicy, Manifest};
use crate::schema::{ArgType, Kind, Schema};
use crate::suggest::did_you_mean;

/// A pre-resolved event: emitting through it skips the name lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId(pub(crate) u32);

/// A registered callback, as listed by [`Switchboard::callbacks`](crate::Switchboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(pub(crate) u32);

/// A declared event and its callbacks.
#[derive(Debug)]
pub struct Event {
    /// The event's name.
    pub name: String,
    /// Its description from the manifest.
    pub doc: String,
    /// Its payload schema.
    pub schema: Schema,
    /// How results are collected.
    pub result: ResultPolicy,
    /// What a failing callback does.
    pub on_error: ErrorPolicy,
    /// Callbacks in dispatch order: priority (higher first), then manifest order of
    /// plugins, then registration order.
    pub callbacks: Vec<CallbackId>,
}

/// One registered callback.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The index of its plugin in [`Registry::plugins`].
    pub plugin: usize,
    /// The plugin's manifest name.
    pub plugin_name: String,
    /// The callback's name.
    pub name: String,
    /// The event it handles.
    pub event: EventId,
    /// Its priority.
    pub priority: i32,
    /// The number the plugin knows it by.
    pub(crate) id: u32,
}

/// A plugin as the manifest and its library describe it.
#[derive(Debug, Clone)]
pub struct PluginMeta {
    /// The manifest name.
    pub name: String,
    /// The library file.
    pub path: std::path::PathBuf,
    /// What the plugin says about itself.
    pub info: LibraryInfo,
}

/// All events, callbacks and plugins.
#[derive(Default)]
pub struct Registry {
    pub(crate) events: Vec<Event>,
    /// Fx hashing: names are few and fixed at load, and lookups never insert, so SipHash's
    /// flooding defence buys nothing on the by-name emit path while costing most of it.
    pub(crate) by_name: FxHashMap<String, EventId>,
    pub(crate) callbacks: Vec<Callback>,
    pub(crate) plugins: Vec<PluginMeta>,
    pub(crate) skipped: Vec<SkippedPlugin>,
}

/// A plugin left out under `on_load_error = "skip"`.
#[derive(Debug, Clone)]
pub struct SkippedPlugin {
    /// The manifest name.
    pub name: String,
    /// Why it was left out.
    pub error: String,
}

/// Checks, opens and checks the registrations of one plugin's library.
fn open_checked(
    manifest: &Manifest,
    registry: &Registry,
    loader: &mut Loader,
    entry: &crate::manifest::PluginEntry,
) -> Result<Library, LoadError> {
    let name = entry.name.get_ref();
    let path = crate::preflight::library_file(manifest, entry)?;
    let library = loader.open(name, &path)?;
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
    Ok(library)
}

impl Registry {
    /// Opens every library of a validated manifest and resolves the dispatch order,
    /// without running any plugin code but the plugins' static registration. A callback
    /// for an undeclared event is refused here.
    pub fn build(manifest: &Manifest) -> Result<(Registry, Vec<Library>), LoadError> {
        let mut registry = Registry::default();
        for (name, decl) in &manifest.events {
            let mut schema = Schema::default();
            for (arg, ty) in &decl.args {
                schema.names.push(arg.as_str().into());
                // validate() has checked every type; an invalid one cannot reach here.
                schema
                    .types
                    .push(ArgType::parse(ty.get_ref()).unwrap_or(ArgType {
                        kind: Kind::Any,
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

        for (name, doc, schema) in crate::builtin::declarations() {
            let (result, on_error) = crate::builtin::POLICIES;
            registry.add_event(Event {
                name: name.to_owned(),
                doc: doc.to_owned(),
                schema,
                result,
                on_error,
                callbacks: Vec::new(),
            });
        }

        let mut loader = Loader::new();
        let mut libraries = Vec::with_capacity(manifest.plugins.len());
        for entry in &manifest.plugins {
            let name = entry.name.get_ref();
            let library = match open_checked(manifest, &registry, &mut loader, entry) {
                Ok(library) => library,
                Err(error) if entry.load_error_policy(&manifest.host) == LoadErrorPolicy::Skip => {
                    tracing::warn!("skipping plugin `{name}` (on_load_error = \"skip\"): {error}");
                    registry.skipped.push(SkippedPlugin {
                        name: name.clone(),
                        error: error.to_string(),
                    });
                    continue;
                }
                Err(error) => return Err(error),
            };
            let plugin = registry.plugins.len();
            for registration in &library.registrations {
                let event = registry
                    .event_id(&registration.event)
                    .expect("open_checked refuses undeclared events");
                registry.add_callback(Callback {
                    plugin,
                    plugin_name: name.clone(),
                    name: registration.callback.to_string(),
                    event,
                    priority: registration.priority,
                    id: registration.id,
                });
            }
            registry.plugins.push(PluginMeta {
                name: name.clone(),
                path: library.path.clone(),
                info: library.info.clone(),
            });
            libraries.push(library);
        }
        registry.sort();
        Ok((registry, libraries))
    }

    fn add_event(&mut self, event: Event) -> EventId {
        let id = EventId(self.events.len() as u32);
        self.by_name.insert(event.name.clone(), id);
        self.events.push(event);
        id
    }

    fn add_callback(&mut self, callback: Callback) {
        let id = CallbackId(self.callbacks.len() as u32);
        self.events[callback.event.0 as usize].callbacks.push(id);
        self.callbacks.push(callback);
    }

    /// Puts every event's callbacks in dispatch order. Callbacks were added in manifest
    /// order of plugins, then registration order, and the sort is stable, so sorting by
    /// priority alone gives the documented order.
    fn sort(&mut self) {
        let callbacks = &self.callbacks;
        for event in &mut self.events {
            event
                .callbacks
                .sort_by_key(|id| std::cmp::Reverse(callbacks[id.0 as usize].priority));
        }
    }

    /// Takes a plugin that failed to initialize (and may be skipped) out of dispatch.
    pub(crate) fn skip_plugin(&mut self, plugin: usize, error: String) {
        let callbacks = &self.callbacks;
        for event in &mut self.events {
            event
                .callbacks
                .retain(|id| callbacks[id.0 as usize].plugin != plugin);
        }
        self.skipped.push(SkippedPlugin {
            name: self.plugins[plugin].name.clone(),
            error,
        });
    }

    /// Plugins left out because they failed to load and their policy is `skip`.
    pub fn skipped(&self) -> &[SkippedPlugin] {
        &self.skipped
    }

    /// The event called `name`, or an error that suggests the nearest declared name.
    pub fn resolve(&self, name: &str) -> Result<EventId, EmitError> {
        self.event_id(name).ok_or_else(|| EmitError::UnknownEvent {
            event: name.to_owned(),
            suggestion: did_you_mean(name, self.by_name.keys().map(String::as_str)),
            declared: self
                .events
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The event called `name`.
    pub fn event_id(&self, name: &str) -> Option<EventId> {
        self.by_name.get(name).copied()
    }

    /// The event behind an id.
    pub fn event(&self, id: EventId) -> &Event {
        &self.events[id.0 as usize]
    }

    /// Every event: the manifest's in order, then the built-in ones.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The callback behind an id.
    pub fn callback(&self, id: CallbackId) -> &Callback {
        &self.callbacks[id.0 as usize]
    }

    /// Every plugin, in manifest order.
    pub fn plugins(&self) -> &[PluginMeta] {
        &self.plugins
    }
}
