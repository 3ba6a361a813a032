//! What an emit returns: one outcome per callback that ran.

use switchboard_plugin_api::{Error as PluginError, Value};

use crate::registry::CallbackId;

/// The result of one callback.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// Which callback ran; [`Switchboard::callback`](crate::Switchboard::callback) names it.
    pub callback: CallbackId,
    /// What it returned, or its error (a caught panic is an error with `is_panic()`).
    pub result: Result<Value<'static>, PluginError>,
}

/// The outcomes of one emit, in the order the callbacks ran.
///
/// Reuse one `Outcomes` with [`Switchboard::emit_into`](crate::Switchboard::emit_into) to
/// dispatch without allocating.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    pub(crate) items: Vec<CallOutcome>,
}

impl Outcomes {
    /// An empty list.
    pub fn new() -> Self {
        Outcomes::default()
    }

    /// Every outcome, in run order.
    pub fn iter(&self) -> std::slice::Iter<'_, CallOutcome> {
        self.items.iter()
    }

    /// How many callbacks ran.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no callback ran.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The failed callbacks.
    pub fn failures(&self) -> impl Iterator<Item = (&CallOutcome, &PluginError)> {
        self.items
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (o, e)))
    }

    /// Whether any callback failed.
    pub fn has_failures(&self) -> bool {
        self.items.iter().any(|o| o.result.is_err())
    }

    /// The first non-null value returned (the answer of a `result = "first"` event).
    pub fn first_value(&self) -> Option<&Value<'static>> {
        self.items
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .find(|v| !v.is_null())
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }
}

impl<'a> IntoIterator for &'a Outcomes {
    type Item = &'a CallOutcome;
    type IntoIter = std::slice::Iter<'a, CallOutcome>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
