//! A [`Generation`]: everything an emit reads, owned by one value: the manifest, the
//! registry, and one slot per plugin with its instance, breaker and counters. A
//! manifest's plugins are first prepared (`prepared`: libraries opened and checked, no
//! plugin code run), then started into a generation (`lifecycle`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use switchboard_plugin_api::abi::{CallEntry, PluginBox};
use switchboard_plugin_api::Error as PluginError;

use super::anchor::Anchor;
use super::application::AppInstance;
use super::breaker::{Breaker, BreakerState};
use super::outcome::Outcomes;
use super::registry::{Callback, CallbackId, EventId, Registry};
use super::stats::{Counters, Counts, Tally};
use crate::error::EmitError;
use crate::isolate::ProcessPlugin;
use crate::load::{Emits, LibraryInfo, Registered};
use crate::manifest::{event_table, BreakerSettings, Isolation, ProcessLimits, ValidManifest};

/// A plugin as the manifest and its library describe it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PluginMeta {
    /// The manifest name.
    pub name: String,
    /// The library file.
    pub path: PathBuf,
    /// What the plugin says about itself.
    pub info: LibraryInfo,
    /// Its circuit breaker's settings (its own, or the host's).
    pub breaker: BreakerSettings,
    /// The events it says it emits.
    pub emits: Vec<Emits>,
    /// Where it runs.
    pub isolation: Isolation,
    /// Its worker limits, when it runs in worker processes.
    pub limits: Option<ProcessLimits>,
    /// The SHA-256 of the library build it runs (of the file when it was loaded).
    pub sha256: String,
    /// What the library registered, kept for carrying the plugin over a reload.
    pub(crate) registered: Vec<Registered>,
}

/// A plugin left out under `on_load_error = "skip"`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SkippedPlugin {
    /// The manifest name.
    pub name: String,
    /// Why it was left out.
    pub error: String,
}

/// What stands behind a plugin's slot. Shared: a reload carries an unchanged plugin's
/// instance over into the next generation as it is.
#[derive(Clone)]
pub(crate) enum Instance {
    /// Code loaded into this process.
    InProcess(Arc<PluginBox>),
    /// Code in worker processes.
    Process(Arc<ProcessPlugin>),
    /// Not running, with the reason (its `init` failed and its policy is `skip`).
    Off(String),
    /// The embedding application's callbacks.
    App(Arc<AppInstance>),
}

/// One callback of an event's dispatch list: its plugin's direct entry point, copied out of
/// the plugin at start so that the dispatch loop makes one indirect call per callback.
pub(crate) struct Target {
    pub(crate) route: Route,
    /// Its plugin's slot.
    pub(crate) plugin: u32,
    /// Its index in the registry.
    pub(crate) callback: u32,
}

/// How a callback is reached.
pub(crate) enum Route {
    /// Its plugin's direct entry point, in this process.
    Direct(CallEntry),
    /// A C plugin's callback, in this process: its `on_call` hook, called by the dispatch
    /// loop with the emit's arguments lowered once for every C callback.
    C(crate::load::CTarget),
    /// Through its plugin's worker processes.
    Worker,
}

/// One plugin of a generation: what it is, what runs it, and its breaker.
pub(crate) struct Slot {
    pub(crate) meta: PluginMeta,
    pub(crate) instance: Instance,
    pub(crate) breaker: Breaker,
    /// Set when a newer generation took the instance over (a reload carried the plugin
    /// over unchanged): this generation then never shuts it down.
    pub(crate) handed_over: AtomicBool,
    /// Whether this slot's instance came from the previous generation.
    pub(crate) carried: bool,
}

/// Everything an emit reads: the validated manifest, the dispatch table, and one slot per
/// plugin (its metadata, instance and breaker), with the host's counters.
///
/// A running [`Switchboard`](crate::Switchboard) holds its current generation behind an
/// atomic swap; an emit finishes on the generation it started on. Dropping the last
/// reference to a generation runs its plugins' `shutdown`, once.
pub struct Generation {
    pub(crate) manifest: ValidManifest,
    pub(crate) registry: Registry,
    pub(crate) slots: Vec<Slot>,
    pub(crate) skipped: Vec<SkippedPlugin>,
    pub(crate) counters: Counters,
    pub(crate) shut_down: AtomicBool,
    /// Per event (by index), its callbacks' direct entry points in dispatch order.
    pub(crate) targets: Vec<Vec<Target>>,
    /// Per event (by index), whether it has C-ABI callbacks in this process: the dispatch
    /// loop then publishes the event's id for them.
    pub(crate) has_c_callbacks: Vec<bool>,
    /// How owned host handles find this generation once it is shared.
    pub(crate) anchor: Arc<Anchor<Generation>>,
    /// Told of the emits the host makes itself: see [`Generation::observe`].
    pub(crate) observer: std::sync::OnceLock<Observer>,
    /// The slots of the previous generation whose instances this one carried over.
    pub(crate) carried: Vec<usize>,
}

/// Told of the outcomes of every emit a generation makes on its own or on a plugin's
/// behalf: nested emits from callbacks and kept handles, and `plugin.failed` reports.
/// Emits made through the public `emit*` methods are the caller's to observe.
/// It is given the generation, the event's name and the outcomes.
pub type Observer = Arc<dyn Fn(&Generation, &str, &Outcomes) + Send + Sync>;

/// A plugin's failure while shutting down.
#[derive(Debug)]
#[non_exhaustive]
pub struct ShutdownFailure {
    /// The plugin's manifest name.
    pub plugin: String,
    /// Its error.
    pub error: PluginError,
}

/// A plugin of a running generation, with its state and counts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PluginStatus {
    /// Name, library and settings.
    pub meta: PluginMeta,
    /// Whether it runs: `None` when it is off, with the reason in `off_reason`.
    pub breaker: Option<BreakerState>,
    /// How often its breaker switched it off.
    pub trips: u64,
    /// While its breaker has it switched off: how long until the next trial call, in ms.
    pub retry_in_ms: Option<u64>,
    /// Why it is not running, if it is not.
    pub off_reason: Option<String>,
    /// Its callbacks' counts added up.
    pub counts: Counts,
    /// For a plugin in worker processes: its limits and faults.
    pub isolated: Option<IsolatedStatus>,
}

/// The state of a plugin that runs in worker processes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IsolatedStatus {
    /// Its limits.
    pub limits: ProcessLimits,
    /// Calls whose worker crashed (or exited).
    pub crashes: u64,
    /// Workers killed at the time limit.
    pub kills: u64,
    /// Workers started after the first.
    pub restarts: u64,
    /// Why it is quarantined, if it is.
    pub quarantined: Option<String>,
}

impl Generation {
    /// Shares the generation, so that handles plugins kept (see `Host::keep` in the SDK)
    /// can reach it; [`Switchboard`](crate::Switchboard) does this itself.
    pub fn into_shared(self) -> Arc<Generation> {
        let shared = Arc::new(self);
        shared.anchor.bind(&shared);
        shared
    }

    /// This generation's number, unique in the process.
    pub fn number(&self) -> u64 {
        self.registry.generation()
    }

    /// The event called `name`, resolved once so that emits skip the lookup.
    pub fn event(&self, name: &str) -> Result<EventId, EmitError> {
        self.registry.resolve(name)
    }

    /// The callback behind an outcome of this generation.
    ///
    /// # Panics
    ///
    /// If the outcome came from another generation (see [`Registry::callback`]).
    pub fn callback(&self, id: CallbackId) -> &Callback {
        self.registry.callback(id)
    }

    /// Events and callbacks.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The manifest this generation was started from.
    pub fn manifest(&self) -> &ValidManifest {
        &self.manifest
    }

    /// Plugins left out because they failed to load or initialize under
    /// `on_load_error = "skip"`.
    pub fn skipped(&self) -> &[SkippedPlugin] {
        &self.skipped
    }

    /// How many plugins are live (loaded, initialized and not skipped).
    pub fn live_plugins(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s.instance, Instance::Off(_)))
            .count()
    }

    /// What a plugin says it emits but the manifest does not declare as it says: one
    /// sentence each, for `switchboard check` to warn about (such emits fail when made).
    pub fn emit_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for slot in &self.slots {
            for emits in &slot.meta.emits {
                let plugin = &slot.meta.name;
                let event = &emits.event;
                let Some(declared) = self.registry.event_id(event) else {
                    warnings.push(format!(
                        "plugin `{plugin}` emits `{event}`, which the manifest does not declare; declare it as {} (`switchboard add` does) or its emits fail", event_table(event)
                    ));
                    continue;
                };
                let Ok(declared) = self.registry.event(declared) else {
                    continue;
                };
                let schema = &declared.schema;
                let mut theirs: Vec<(String, String)> = emits.args.clone();
                let mut ours: Vec<(String, String)> = schema
                    .names()
                    .zip(&schema.types)
                    .map(|(n, t)| (n.to_owned(), t.to_string()))
                    .collect();
                theirs.sort();
                ours.sort();
                if theirs != ours {
                    let show = |args: &[(String, String)]| {
                        args.iter()
                            .map(|(n, t)| format!("{n}: {t}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    warnings.push(format!(
                        "plugin `{plugin}` emits `{event}` with ({}), but the manifest declares ({})",
                        show(&emits.args),
                        show(&ours)
                    ));
                }
            }
        }
        warnings
    }

    /// Every plugin with its state and counts, in manifest order.
    pub fn plugins(&self) -> Vec<PluginStatus> {
        let mut counts = vec![Counts::default(); self.slots.len()];
        for (index, callback) in self.registry.callbacks().iter().enumerate() {
            counts[callback.plugin].add(&self.counters.get(index));
        }
        self.slots
            .iter()
            .zip(counts)
            .map(|(slot, counts)| PluginStatus {
                meta: slot.meta.clone(),
                breaker: match slot.instance {
                    Instance::InProcess(_) | Instance::Process(_) | Instance::App(_) => {
                        Some(slot.breaker.state())
                    }
                    Instance::Off(_) => None,
                },
                trips: slot.breaker.trips(),
                retry_in_ms: slot.breaker.retry_in_ms(),
                off_reason: match &slot.instance {
                    Instance::Off(reason) => Some(reason.clone()),
                    Instance::InProcess(_) | Instance::Process(_) | Instance::App(_) => None,
                },
                isolated: match &slot.instance {
                    Instance::Process(plugin) => Some(IsolatedStatus {
                        limits: plugin.limits(),
                        crashes: plugin.faults.crashes.load(Ordering::Relaxed),
                        kills: plugin.faults.kills.load(Ordering::Relaxed),
                        restarts: plugin.faults.restarts.load(Ordering::Relaxed),
                        quarantined: plugin.quarantined().map(|r| r.reason),
                    }),
                    _ => None,
                },
                counts,
            })
            .collect()
    }

    /// The counts of one callback.
    ///
    /// # Panics
    ///
    /// If `id` comes from another generation (see [`Registry::callback`]).
    pub fn callback_counts(&self, id: CallbackId) -> Counts {
        self.registry.callback(id);
        self.counters.get(id.index as usize)
    }

    /// The counts of every callback, in the order of
    /// [`Registry::callbacks`](crate::dispatch::Registry::callbacks): what `/metrics`,
    /// the status page and `run --metrics` render.
    pub fn every_callback_counts(&self) -> Vec<Counts> {
        (0..self.registry.callbacks().len())
            .map(|index| self.counters.get(index))
            .collect()
    }

    /// Adds the outcomes of an emit made with [`Generation::emit_into`] to this
    /// generation's counters (the other `emit` methods count by themselves).
    pub fn record(&self, outcomes: &Outcomes) {
        if outcomes.generation() == self.number() {
            self.counters.record(outcomes);
        }
    }

    /// Hands a thread's [`Tally`] over to this generation's counters and prepares it for
    /// this generation; a tally kept for another generation must be handed to that one
    /// first.
    pub fn absorb(&self, tally: &mut Tally) {
        if tally.generation() == self.number() {
            self.counters.absorb(tally);
        }
        tally.retarget(self.number(), self.registry.callbacks().len());
    }

    /// Emits a built-in event without arguments, if anything listens.
    pub(crate) fn emit_builtin(&self, name: &str) {
        let Some(id) = self.registry.event_id(name) else {
            return;
        };
        if self
            .registry
            .event(id)
            .is_ok_and(|e| !e.callbacks.is_empty())
        {
            // No arguments to check; failures are logged and reported via plugin.failed.
            let _ = self.emit(id, &[]);
        }
    }

    /// Whether [`Generation::shutdown`] ran.
    #[inline]
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }

    /// Marks the instances this generation carried over as handed over by `previous`,
    /// which then leaves them running when it shuts down. Called when this generation
    /// becomes current.
    pub(crate) fn take_over_from(&self, previous: &Generation) {
        for &index in &self.carried {
            if let Some(slot) = previous.slots.get(index) {
                slot.handed_over.store(true, Ordering::Release);
            }
        }
    }

    /// The names of the plugins this generation carried over from the previous one.
    pub fn carried_over(&self) -> impl Iterator<Item = &str> {
        self.slots
            .iter()
            .filter(|s| s.carried)
            .map(|s| s.meta.name.as_str())
    }

    /// Sets the generation's [`Observer`], once; `false` if it already had one (which
    /// stays).
    pub fn observe(&self, observer: Observer) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Tells the observer (if any) of an emit made through the public methods, which the
    /// caller counted: the event service does this for every event it dispatches.
    pub(crate) fn tell_observer(&self, event: &str, outcomes: &Outcomes) {
        if let Some(observer) = self.observer.get() {
            observer(self, event, outcomes);
        }
    }

    /// Counts the outcomes of an emit the host made itself, and tells the observer.
    pub(crate) fn record_own(&self, event: &str, outcomes: &Outcomes) {
        self.counters.record(outcomes);
        if let Some(observer) = self.observer.get() {
            observer(self, event, outcomes);
        }
    }

    /// Whether a plugin runs in worker processes (then a stream of events goes faster in
    /// batches).
    pub(crate) fn isolates(&self) -> bool {
        self.slots
            .iter()
            .any(|slot| matches!(slot.instance, Instance::Process(_)))
    }
}
