//! The dispatch table: every event with its callbacks in dispatch order. Built once per
//! generation; read without locks by every emit.
//!
//! Handles ([`EventId`], [`CallbackId`]) carry the number of the table they were resolved
//! on, so that a handle kept across a reload is refused instead of naming whatever now
//! sits at its index.

use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;

use crate::error::EmitError;
use crate::load::Registered;
use crate::manifest::builtin;
use crate::manifest::schema::Schema;
use crate::manifest::{ErrorPolicy, ResultPolicy, ValidManifest};
use crate::suggest::did_you_mean;

/// A pre-resolved event: emitting through it skips the name lookup. Valid for the
/// generation it was resolved on; see [`Generation::event`](crate::Generation::event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    pub(crate) generation: u64,
    pub(crate) index: u32,
}

/// A registered callback of one generation, as found in
/// [`CallOutcome::callback`](crate::CallOutcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId {
    pub(crate) generation: u64,
    pub(crate) index: u32,
}

impl CallbackId {
    /// Its position in [`Registry::callbacks`] of its generation: a dense index for tables
    /// kept per callback.
    pub fn index(&self) -> usize {
        self.index as usize
    }
}

/// A declared event and its callbacks.
#[derive(Debug)]
#[non_exhaustive]
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
    /// Its index in the registry.
    pub(crate) index: u32,
}

/// One registered callback.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Callback {
    /// The index of its plugin among the generation's plugins.
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

/// Every event and callback of one generation.
#[derive(Debug)]
pub struct Registry {
    /// Unique in this process: handles from another registry are refused.
    generation: u64,
    events: Vec<Event>,
    /// Fx hashing: names are few and fixed at load, and lookups never insert, so SipHash's
    /// flooding defence buys nothing on the by-name emit path while costing most of it.
    by_name: FxHashMap<String, EventId>,
    callbacks: Vec<Callback>,
    plugin_failed: EventId,
}

/// Numbers generations across every host in the process, from 1.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

impl Registry {
    /// The manifest's events, then the built-in ones, all without callbacks yet.
    pub(crate) fn with_events(manifest: &ValidManifest) -> Registry {
        let mut registry = Registry {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            events: Vec::new(),
            by_name: FxHashMap::default(),
            callbacks: Vec::new(),
            plugin_failed: EventId {
                generation: 0,
                index: 0,
            },
        };
        for declared in manifest.events() {
            registry.add_event(Event {
                name: declared.name.clone(),
                doc: declared.doc.clone(),
                schema: declared.schema.clone(),
                result: declared.result,
                on_error: declared.on_error,
                callbacks: Vec::new(),
                index: 0,
            });
        }
        for (name, doc, schema) in builtin::declarations() {
            // Built-in events run every callback and never stop early.
            let id = registry.add_event(Event {
                name: name.to_owned(),
                doc: doc.to_owned(),
                schema,
                result: ResultPolicy::All,
                on_error: ErrorPolicy::Continue,
                callbacks: Vec::new(),
                index: 0,
            });
            if name == builtin::PLUGIN_FAILED {
                registry.plugin_failed = id;
            }
        }
        registry
    }

    fn add_event(&mut self, mut event: Event) -> EventId {
        let id = EventId {
            generation: self.generation,
            index: self.events.len() as u32,
        };
        event.index = id.index;
        self.by_name.insert(event.name.clone(), id);
        self.events.push(event);
        id
    }

    /// Adds a plugin's callbacks, which must all be for declared events (the caller
    /// checked with [`Registry::undeclared`]).
    pub(crate) fn add_callbacks(&mut self, plugin: usize, plugin_name: &str, all: &[Registered]) {
        for registration in all {
            let Some(event) = self.event_id(&registration.event) else {
                continue;
            };
            let id = CallbackId {
                generation: self.generation,
                index: self.callbacks.len() as u32,
            };
            self.events[event.index as usize].callbacks.push(id);
            self.callbacks.push(Callback {
                plugin,
                plugin_name: plugin_name.to_owned(),
                name: registration.callback.clone(),
                event,
                priority: registration.priority,
                id: registration.id,
            });
        }
    }

    /// The first registration for an event this table does not declare.
    pub(crate) fn undeclared<'r>(&self, all: &'r [Registered]) -> Option<&'r Registered> {
        all.iter().find(|r| self.event_id(&r.event).is_none())
    }

    /// A " (did you mean ...)" hint for an unknown event name.
    pub(crate) fn suggest(&self, name: &str) -> String {
        did_you_mean(name, self.by_name.keys().map(String::as_str))
    }

    /// Puts every event's callbacks in dispatch order. Callbacks were added in manifest
    /// order of plugins, then registration order, and the sort is stable, so sorting by
    /// priority alone gives the documented order.
    pub(crate) fn sort(&mut self) {
        let callbacks = &self.callbacks;
        for event in &mut self.events {
            event
                .callbacks
                .sort_by_key(|id| std::cmp::Reverse(callbacks[id.index as usize].priority));
        }
    }

    /// Takes a plugin that failed to initialize (and may be skipped) out of dispatch.
    pub(crate) fn remove_plugin(&mut self, plugin: usize) {
        let callbacks = &self.callbacks;
        for event in &mut self.events {
            event
                .callbacks
                .retain(|id| callbacks[id.index as usize].plugin != plugin);
        }
    }

    /// The number shared by this table's handles.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// `plugin.failed`, resolved once.
    pub(crate) fn plugin_failed(&self) -> &Event {
        &self.events[self.plugin_failed.index as usize]
    }

    /// The event called `name`, or an error that suggests the nearest declared name.
    pub fn resolve(&self, name: &str) -> Result<EventId, EmitError> {
        self.event_id(name).ok_or_else(|| EmitError::UnknownEvent {
            event: name.to_owned(),
            suggestion: self.suggest(name),
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

    /// The event behind a handle, or [`EmitError::Stale`] for a handle resolved on another
    /// generation.
    #[inline]
    pub fn event(&self, id: EventId) -> Result<&Event, EmitError> {
        if id.generation != self.generation {
            return Err(self.stale(id.generation));
        }
        // Handles are only made by this table, so the index is in range.
        self.events
            .get(id.index as usize)
            .ok_or_else(|| self.stale(id.generation))
    }

    #[cold]
    fn stale(&self, resolved_on: u64) -> EmitError {
        EmitError::Stale {
            resolved_on,
            current: self.generation,
        }
    }

    /// Every event: the manifest's in order, then the built-in ones.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The callback behind a handle of this generation.
    ///
    /// # Panics
    ///
    /// If `id` comes from another generation's outcomes: naming it here would name another
    /// callback. Read outcomes on the generation that produced them.
    pub fn callback(&self, id: CallbackId) -> &Callback {
        assert_eq!(
            id.generation, self.generation,
            "a callback handle of generation {} was read on generation {}; read outcomes on the generation that produced them",
            id.generation, self.generation
        );
        &self.callbacks[id.index as usize]
    }

    /// Every callback, in registration order (not dispatch order).
    pub fn callbacks(&self) -> &[Callback] {
        &self.callbacks
    }
}
