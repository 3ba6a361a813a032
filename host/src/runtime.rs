//! [`Switchboard`]: the running host. It holds the current [`Generation`] behind an atomic
//! swap, so that a new set of plugins can replace the old one while events flow: an emit
//! finishes on the generation it started on, and the old generation shuts its plugins down
//! when its last emit lets go of it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dispatch::{Generation, ShutdownFailure};
use crate::error::{HostError, LoadError};
use crate::manifest::{builtin, Manifest, ValidManifest};

/// A running host: the current generation of plugins, replaceable while events flow.
///
/// Dropping it runs `host.stopping` and every plugin's shutdown; call
/// [`Switchboard::shutdown`] to see their errors.
pub struct Switchboard {
    current: Arc<ArcSwap<Generation>>,
    stopped: AtomicBool,
}

/// A cheap, clonable view of a running host's current generation, for threads that must
/// own what they use (the event service's workers). It does not keep plugins up: the
/// [`Switchboard`] decides when they shut down.
#[derive(Clone)]
pub struct CurrentGeneration(Arc<ArcSwap<Generation>>);

impl CurrentGeneration {
    /// The current generation; see [`Switchboard::current`].
    pub fn get(&self) -> Arc<Generation> {
        self.0.load_full()
    }

    /// Runs `f` on the current generation without touching its reference count, which
    /// threads that all emit at once would otherwise take turns on. For short work: a
    /// swap waits for nothing, but the generation `f` sees stays up until `f` returns.
    pub fn with<R>(&self, f: impl FnOnce(&Generation) -> R) -> R {
        f(&self.0.load())
    }
}

impl Switchboard {
    /// Reads and validates the manifest at `path`, then loads and starts every plugin.
    pub fn open(path: &Path) -> Result<Switchboard, HostError> {
        let manifest = Manifest::load_valid(path)?;
        Ok(Switchboard::start(manifest)?)
    }

    /// Loads and starts the plugins of a validated manifest.
    pub fn start(manifest: ValidManifest) -> Result<Switchboard, LoadError> {
        Ok(Switchboard::with(Generation::start(manifest)?))
    }

    /// A host running `generation` (for example one started from a
    /// [`Prepared`](crate::Prepared) manifest).
    pub fn with(generation: Generation) -> Switchboard {
        Switchboard {
            current: Arc::new(ArcSwap::new(generation.into_shared())),
            stopped: AtomicBool::new(false),
        }
    }

    /// The current generation. Emit on it as long as you like: a later [`swap`] does not
    /// change it under you, and its plugins stay up until you let go of it.
    ///
    /// [`swap`]: Switchboard::swap
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// A view of the current generation that threads can own.
    pub fn watch(&self) -> CurrentGeneration {
        CurrentGeneration(Arc::clone(&self.current))
    }

    /// Makes `next` the current generation and returns the previous one. Emits already
    /// running finish on the previous generation; its plugins shut down, once, when the
    /// last reference to it (the returned one included) is dropped.
    pub fn swap(&self, next: Generation) -> Arc<Generation> {
        self.current.swap(next.into_shared())
    }

    /// Emits `host.stopping`, then runs every plugin's shutdown once, in reverse load
    /// order, and returns the failures. Emits that start afterwards are refused with
    /// [`EmitError::ShutDown`](crate::EmitError::ShutDown).
    pub fn shutdown(&self) -> Vec<ShutdownFailure> {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let generation = self.current();
        generation.emit_builtin(builtin::HOST_STOPPING);
        generation.shutdown()
    }
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        self.shutdown();
    }
}
