//! The dispatch tables: every event with its callbacks in dispatch order, and the live
//! plugins they belong to. Built once at start-up; read without locks by every emit.

use std::collections::HashMap;

use switchboard_plugin_api::abi::PluginBox;

use crate::loader::LibraryInfo;
use crate::manifest::{ErrorPolicy, ResultPolicy};
use crate::schema::Schema;

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

/// A live plugin.
pub struct LivePlugin {
    /// The manifest name.
    pub name: String,
    /// The library file.
    pub path: std::path::PathBuf,
    /// What the plugin says about itself.
    pub info: LibraryInfo,
    pub(crate) instance: PluginBox,
}

/// All events, callbacks and plugins.
#[derive(Default)]
pub struct Registry {
    pub(crate) events: Vec<Event>,
    pub(crate) by_name: HashMap<String, EventId>,
    pub(crate) callbacks: Vec<Callback>,
    pub(crate) plugins: Vec<LivePlugin>,
}

impl Registry {
    pub(crate) fn add_event(&mut self, event: Event) -> EventId {
        let id = EventId(self.events.len() as u32);
        self.by_name.insert(event.name.clone(), id);
        self.events.push(event);
        id
    }

    /// Adds a callback; call [`Registry::sort`] once all are in.
    pub(crate) fn add_callback(&mut self, callback: Callback) {
        let id = CallbackId(self.callbacks.len() as u32);
        self.events[callback.event.0 as usize].callbacks.push(id);
        self.callbacks.push(callback);
    }

    /// Puts every event's callbacks in dispatch order. Callbacks were added in manifest
    /// order of plugins, then registration order, and the sort is stable, so sorting by
    /// priority alone gives the documented order.
    pub(crate) fn sort(&mut self) {
        let callbacks = &self.callbacks;
        for event in &mut self.events {
            event
                .callbacks
                .sort_by_key(|id| std::cmp::Reverse(callbacks[id.0 as usize].priority));
        }
    }

    /// The event called `name`.
    pub fn event_id(&self, name: &str) -> Option<EventId> {
        self.by_name.get(name).copied()
    }

    /// The event behind an id.
    pub fn event(&self, id: EventId) -> &Event {
        &self.events[id.0 as usize]
    }

    /// Every event, in manifest order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The callback behind an id.
    pub fn callback(&self, id: CallbackId) -> &Callback {
        &self.callbacks[id.0 as usize]
    }

    /// Every live plugin, in manifest order.
    pub fn plugins(&self) -> &[LivePlugin] {
        &self.plugins
    }
}
