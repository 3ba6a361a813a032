//! Call shapes: how the keyword arguments of one call site land on an event's declared
//! arguments, remembered by the identity of the Python strings involved.
//!
//! A call site such as `host.emit("user_joined", name=n, email=e)` passes the same
//! objects every time: the event name is a constant of its code, and so is the tuple of
//! its keyword names (`keywords`). The first emit goes by name and, once it succeeds, its
//! shape is kept: later emits with the same tuple (or, from a `**dict`, the same interned
//! names in a new tuple) skip the names' UTF-8 conversion, the event lookup and the
//! arrangement, and emit by position on the same generation.

use std::sync::Arc;

use parking_lot::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use switchboard::{CallbackId, EventId, Generation};

use crate::keywords::Keywords;
use crate::outcomes::Reusable;

/// How many shapes a host keeps; past it, they are all forgotten and learned again.
const MAX_SHAPES: usize = 64;

/// One call site's argument layout on one generation.
pub(crate) struct Shape {
    generation: u64,
    /// Kept so that the identities compared stay those of live objects.
    event: Py<PyString>,
    /// The call's tuple of keyword names, `None` for a call without keywords.
    names: Option<Py<PyTuple>>,
    keys: Vec<Py<PyString>>,
    /// The event, resolved on `generation`.
    pub(crate) event_id: EventId,
    /// Per keyword argument, in call order, its position among the declared arguments.
    pub(crate) positions: Vec<usize>,
    /// How many arguments the event declares.
    pub(crate) arity: usize,
    /// Whether `positions` are `0, 1, 2...`: the keywords come in the declared order.
    pub(crate) in_order: bool,
    /// Whether a callback of the event is a Python callback of this host, which may be
    /// handed the caller's own `str`s back.
    pub(crate) reaches_python: bool,
    /// Whether no callback of the generation, of any event, is a Python callback of this
    /// host: then nothing a native callback does can need the GIL (see `gil`).
    pub(crate) no_python_elsewhere: bool,
    /// Whether every callback of the event is a Python callback of this host: its
    /// dispatch then keeps the GIL, which each of them would take again at once.
    pub(crate) python_only: bool,
    /// The outcomes object this call site returned last, to be refilled.
    pub(crate) answer: Reusable,
}

/// The shapes one host learned.
#[derive(Default)]
pub(crate) struct Shapes(Mutex<Vec<Arc<Shape>>>);

impl Shape {
    /// The generation it was learned on.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl Shapes {
    /// Forgets every shape, and the outcomes they kept with their generations: after a
    /// reload, so that the previous generation's plugins shut down once nothing else
    /// holds it.
    pub(crate) fn clear(&self) {
        let forgotten = std::mem::take(&mut *self.0.lock());
        drop(forgotten);
    }

    /// The shape of this call on generation `number`, if it was learned.
    pub(crate) fn find(
        &self,
        number: u64,
        event: &Bound<'_, PyString>,
        keywords: &Keywords<'_, '_>,
    ) -> Option<Arc<Shape>> {
        let shapes = self.0.lock();
        let names = keywords.names().map(|n| n.as_ptr());
        let same_call = |shape: &&Arc<Shape>| {
            shape.generation == number && shape.event.as_ptr() == event.as_ptr()
        };
        let by_tuple = shapes
            .iter()
            .filter(same_call)
            .find(|shape| shape.names.as_ref().map(|n| n.as_ptr()) == names);
        by_tuple
            .or_else(|| {
                shapes.iter().filter(same_call).find(|shape| {
                    shape.keys.len() == keywords.len()
                        && keywords.iter().zip(&shape.keys).all(|(pair, known)| {
                            pair.is_ok_and(|(key, _)| key.as_ptr() == known.as_ptr())
                        })
                })
            })
            .cloned()
    }

    /// Learns the shape of a call that just succeeded by name on `board`. Keys that are
    /// not `str` or not declared make no shape (the call went by name, and will again).
    pub(crate) fn learn(
        &self,
        board: &Generation,
        application: &str,
        event: &Bound<'_, PyString>,
        keywords: &Keywords<'_, '_>,
    ) {
        let Ok(name) = event.to_cow() else {
            return;
        };
        let Ok(declared) = board.declared(&name) else {
            return;
        };
        let Ok(event_id) = board.event(&name) else {
            return;
        };
        let mut keys = Vec::new();
        let mut positions = Vec::new();
        for pair in keywords.iter() {
            let Ok((key, _)) = pair else {
                return;
            };
            let Some(position) = key.to_cow().ok().and_then(|k| declared.schema.position(&k))
            else {
                return;
            };
            keys.push(key.to_owned().unbind());
            positions.push(position);
        }
        let is_python = |id: &CallbackId| board.callback(*id).plugin_name == application;
        let python_only =
            !declared.callbacks.is_empty() && declared.callbacks.iter().all(is_python);
        let reaches_python = declared.callbacks.iter().any(is_python);
        let no_python_elsewhere = !board
            .registry()
            .events()
            .iter()
            .any(|e| e.callbacks.iter().any(is_python));
        let in_order = positions.iter().enumerate().all(|(i, p)| i == *p);
        let shape = Shape {
            generation: board.number(),
            event: event.clone().unbind(),
            names: keywords.names().map(|n| n.to_owned().unbind()),
            keys,
            event_id,
            positions,
            in_order,
            reaches_python,
            no_python_elsewhere,
            arity: declared.schema.names.len(),
            python_only,
            answer: Reusable::default(),
        };
        let mut shapes = self.0.lock();
        if shapes.len() >= MAX_SHAPES {
            shapes.clear();
        }
        shapes.retain(|s| s.generation == board.number());
        shapes.push(Arc::new(shape));
    }
}
