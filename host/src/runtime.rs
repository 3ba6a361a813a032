//! [`Switchboard`]: the running host. It holds the current [`Generation`] behind an atomic
//! swap, so that a new set of plugins can replace the old one while events flow: an emit
//! finishes on the generation it started on, and the old generation shuts its plugins down
//! when its last emit lets go of it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use crate::dispatch::{AppCallback, Carry, Generation, Observer, Prepared, ShutdownFailure};
use crate::error::{HostError, LoadError};
use crate::manifest::{builtin, Manifest, ValidManifest};

/// A running host: the current generation of plugins, replaceable while events flow.
///
/// Dropping it runs `host.stopping` and every plugin's shutdown; call
/// [`Switchboard::shutdown`] to see their errors.
pub struct Switchboard {
    current: Arc<ArcSwap<Generation>>,
    /// The number of `current`, stored after each swap: see [`Switchboard::current_number`].
    number: AtomicU64,
    stopped: AtomicBool,
    /// Held by a reload and by the shutdown: one at a time.
    changing: Mutex<()>,
    /// Given to every generation this host runs: see [`Switchboard::observe`].
    observer: OnceLock<Observer>,
    /// The application's own callbacks, in registration order: every generation this
    /// host starts runs them. Changed only while `changing` is held.
    applications: Mutex<Vec<AppCallback>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The number of the generation now current.
    pub generation: u64,
    /// The number of the generation it replaced (which finishes its events, then shuts
    /// down the plugins that were not carried over).
    pub previous: u64,
    /// Plugins carried over as they were (same build, config and settings).
    pub carried: Vec<String>,
    /// Plugins started anew (added, changed, or rebuilt).
    pub started: Vec<String>,
    /// Plugins of the previous generation not in this one.
    pub removed: Vec<String>,
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
    /// [`Prepared`] manifest).
    pub fn with(generation: Generation) -> Switchboard {
        Switchboard {
            number: AtomicU64::new(generation.number()),
            current: Arc::new(ArcSwap::new(generation.into_shared())),
            stopped: AtomicBool::new(false),
            changing: Mutex::new(()),
            observer: OnceLock::new(),
            applications: Mutex::new(Vec::new()),
        }
    }

    /// The current generation. Emit on it as long as you like: a later [`swap`] does not
    /// change it under you, and its plugins stay up until you let go of it.
    ///
    /// [`swap`]: Switchboard::swap
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// The number of the current generation, read without touching the generation: for
    /// a caller that keeps what it needs per generation (and the generation with it),
    /// so that it loads the current one only when the number changed. Just after a swap
    /// it may still say the previous number for a moment, as an emit that started just
    /// before the swap runs on the previous generation.
    pub fn current_number(&self) -> u64 {
        self.number.load(Ordering::Acquire)
    }

    /// A view of the current generation that threads can own.
    pub fn watch(&self) -> CurrentGeneration {
        CurrentGeneration(Arc::clone(&self.current))
    }

    /// Makes `next` the current generation and returns the previous one. Emits already
    /// running finish on the previous generation; its plugins shut down, once, when the
    /// last reference to it (the returned one included) is dropped.
    pub fn swap(&self, next: Generation) -> Arc<Generation> {
        // Said in `current_number` once it is current.
        let number = next.number();
        let previous = self.current.swap(next.into_shared());
        self.number.store(number, Ordering::Release);
        previous
    }

    /// Sets the [`Observer`] of every generation this host runs, the current one and
    /// those reloads start, once; `false` if it had one already. The event service
    /// (`run`) also tells it of every event it dispatches.
    pub fn observe(&self, observer: Observer) -> bool {
        let set = self.observer.set(Arc::clone(&observer)).is_ok();
        if set {
            self.current().observe(observer);
        }
        set
    }

    /// Reads the manifest at `path` again and makes it the running generation: every
    /// check `switchboard check` makes runs first (the manifest, each library that is new
    /// or rebuilt, the callbacks against the events), then the plugins that changed are
    /// started (`init`) while the plugins whose library build, config and settings are the
    /// same are carried over as they are, and the new generation is swapped in. Emits
    /// already running finish on the previous generation, which then shuts down the
    /// instances it did not hand over (after their last call); every emit after the swap
    /// sees the new one.
    ///
    /// On any error nothing changes: the running generation goes on, and the error says
    /// what `check` would (file, line, plugin).
    pub fn reload(&self, path: &Path) -> Result<Reloaded, HostError> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped.load(Ordering::Acquire) {
            return Err(HostError::ShuttingDown);
        }
        let manifest = Manifest::load_valid(path)?;
        let previous = self.current();
        let apps = self.applications();
        let next = Prepared::carrying(manifest, &previous, Carry::Unchanged, &apps)?
            .start_after(&previous, true)?;
        let names = |g: &Generation| -> Vec<String> {
            g.plugins().into_iter().map(|p| p.meta.name).collect()
        };
        // The application's callbacks are the same functions before and after.
        let carried: Vec<String> = next
            .carried_over()
            .map(str::to_owned)
            .chain(applications_of(&apps))
            .collect();
        let now = names(&next);
        let reloaded = Reloaded {
            generation: next.number(),
            previous: previous.number(),
            started: now
                .iter()
                .filter(|n| !carried.contains(n))
                .cloned()
                .collect(),
            removed: names(&previous)
                .into_iter()
                .filter(|n| !now.contains(n))
                .collect(),
            carried,
        };
        if let Some(observer) = self.observer.get() {
            next.observe(Arc::clone(observer));
        }
        next.take_over_from(&previous);
        self.swap(next);
        Ok(reloaded)
    }

    /// Adds an application callback: from the next emit on, `callback` runs for its event
    /// among the plugins' callbacks, in priority order, behind a breaker of its own
    /// application's, counted and shown like a plugin's callback under the application's
    /// name (see [`AppCallback::application`]).
    ///
    /// It is checked first as a plugin's callback is at load: its event must be declared
    /// (the error suggests the nearest name), the arguments it reads must match the
    /// declaration, and its name must be new in its application. On any error nothing
    /// changes.
    ///
    /// The plugins run on as they are (no `init`); the host starts a generation with the
    /// same plugins and the new callback, as a reload does, so counts start again from
    /// zero. Every later [`Switchboard::reload`] keeps the application's callbacks, and
    /// refuses a manifest they no longer fit (an event removed, an argument retyped),
    /// saying which callback.
    pub fn register(&self, callback: AppCallback) -> Result<(), HostError> {
        self.change_applications(|apps| {
            apps.push(callback);
            true
        })
        .map(|_| ())
    }

    /// Removes the application callback called `name` of `application`; `false` if there
    /// is none (and nothing changes).
    pub fn unregister(&self, application: &str, name: &str) -> Result<bool, HostError> {
        self.change_applications(|apps| {
            let before = apps.len();
            apps.retain(|c| !(c.application == application && c.name() == name));
            apps.len() != before
        })
    }

    /// The application callbacks every generation of this host runs, in registration
    /// order.
    pub fn applications(&self) -> Vec<AppCallback> {
        self.applications
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies `change` to a copy of the application's callbacks and, if it says it
    /// changed something, starts a generation with them and the running plugins as they
    /// are; then keeps the copy. Nothing changes on an error.
    fn change_applications(
        &self,
        change: impl FnOnce(&mut Vec<AppCallback>) -> bool,
    ) -> Result<bool, HostError> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped.load(Ordering::Acquire) {
            return Err(HostError::ShuttingDown);
        }
        let mut apps = self.applications();
        if !change(&mut apps) {
            return Ok(false);
        }
        let previous = self.current();
        let manifest = previous.manifest().clone();
        let next = Prepared::carrying(manifest, &previous, Carry::All, &apps)?
            .start_after(&previous, false)?;
        if let Some(observer) = self.observer.get() {
            next.observe(Arc::clone(observer));
        }
        next.take_over_from(&previous);
        self.swap(next);
        *self.applications.lock().unwrap_or_else(|e| e.into_inner()) = apps;
        Ok(true)
    }

    /// Emits `host.stopping`, then runs every plugin's shutdown once, in reverse load
    /// order, and returns the failures. Emits that start afterwards are refused with
    /// [`EmitError::ShutDown`](crate::EmitError::ShutDown).
    pub fn shutdown(&self) -> Vec<ShutdownFailure> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let generation = self.current();
        generation.emit_builtin(builtin::HOST_STOPPING);
        generation.shutdown()
    }
}

/// The names of the applications of `apps`, each once, in order of first appearance.
fn applications_of(apps: &[AppCallback]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for app in apps {
        if !names.iter().any(|n| *n == app.application_name()) {
            names.push(app.application_name().to_owned());
        }
    }
    names
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        self.shutdown();
    }
}
