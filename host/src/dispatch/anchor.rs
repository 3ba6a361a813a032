//! Where owned host handles find their generation. Generic over what it points at, so
//! that the generation (which holds one) and the handles (which read it) both depend on
//! this file and not on each other.

use std::sync::{Arc, RwLock, Weak};

/// Where owned handles find their generation once it is shared: a generation is built
/// (and its plugins' `init` run, which may keep a handle) before it is put behind an `Arc`.
/// A reload hands the anchor on to the next generation, so that a plugin carried over (or
/// any kept handle) reaches the generation that is current.
pub(crate) struct Anchor<G> {
    generation: RwLock<Weak<G>>,
}

impl<G> Anchor<G> {
    /// Points the anchor at the shared generation; owned handles work from then on.
    pub(crate) fn bind(&self, generation: &Arc<G>) {
        *self.generation.write().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(generation);
    }

    pub(super) fn get(&self) -> Option<Arc<G>> {
        self.generation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
    }
}

impl<G> Default for Anchor<G> {
    fn default() -> Self {
        Anchor {
            generation: RwLock::new(Weak::new()),
        }
    }
}
