//! A [`Generation`]: everything an emit reads, owned by one value. A manifest's plugins
//! are first [`Prepared`] (libraries opened and checked, no plugin code run), then
//! started into a generation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use switchboard_plugin_api::abi::{CallEntry, PluginBox};
use switchboard_plugin_api::Error as PluginError;

use super::anchor::Anchor;
use super::application::{AppCallback, AppInstance};
use super::breaker::{Breaker, BreakerState};
use super::outcome::Outcomes;
use super::registry::{Callback, CallbackId, EventId, Registry};
use super::stats::{Counters, Counts, Tally};
use crate::error::{EmitError, LoadError};
use crate::isolate::quarantine;
use crate::isolate::ProcessPlugin;
use crate::load::{library_file, Emits, Library, LibraryInfo, Loader, PluginKind, Registered};
use crate::manifest::{
    event_table, ArgType, BreakerSettings, Isolation, LoadErrorPolicy, PluginSettings,
    ProcessLimits, ValidManifest,
};

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

/// A manifest's plugins with their libraries opened and every registration checked
/// against the manifest, before any plugin's `init` runs: what `switchboard list` shows,
/// and where `emit` checks its arguments so that bad input has no side effects.
pub struct Prepared {
    pub(crate) manifest: ValidManifest,
    pub(crate) registry: Registry,
    pub(crate) plugins: Vec<(PluginMeta, Opened)>,
    pub(crate) skipped: Vec<SkippedPlugin>,
}

impl Prepared {
    /// Opens every library of the manifest and resolves the dispatch order. A library
    /// that cannot be loaded, or a callback for an undeclared event, is an error (or a
    /// skipped plugin, under `on_load_error = "skip"`).
    pub fn new(manifest: ValidManifest) -> Result<Prepared, LoadError> {
        Prepared::open(manifest, None, &[])
    }

    /// Like [`Prepared::new`], for the generation after `previous`, with the application's
    /// callbacks `apps`: a plugin whose library build, config and settings are unchanged
    /// keeps its running instance (no `init`, its state and workers as they are); the
    /// others are opened anew. With `Carry::All` (the manifest is `previous`'s own), every
    /// plugin keeps its instance, whatever its file on disk now holds.
    pub(crate) fn carrying(
        manifest: ValidManifest,
        previous: &Generation,
        carry: Carry,
        apps: &[AppCallback],
    ) -> Result<Prepared, LoadError> {
        Prepared::open(manifest, Some((previous, carry)), apps)
    }

    fn open(
        manifest: ValidManifest,
        previous: Option<(&Generation, Carry)>,
        apps: &[AppCallback],
    ) -> Result<Prepared, LoadError> {
        let mut registry = Registry::with_events(&manifest);
        let mut loader = Loader::new(Some(manifest.base_dir().join(".switchboard")));
        let mut plugins = Vec::with_capacity(manifest.plugins().len());
        let mut skipped = Vec::new();
        for entry in manifest.plugins() {
            let name = &entry.name;
            let opened = match previous.and_then(|(p, carry)| carried(p, &manifest, entry, carry)) {
                Some((instance, index, found)) => check_found(
                    &manifest,
                    &registry,
                    name,
                    found.info.kind(),
                    &found.registrations,
                )
                .map(|()| (Opened::Carried(instance, index), found)),
                None => open_checked(&manifest, &registry, &mut loader, entry),
            };
            match opened {
                Ok((opened, found)) => {
                    registry.add_callbacks(plugins.len(), name, &found.registrations);
                    let isolation = found.isolation;
                    let meta = PluginMeta {
                        name: name.clone(),
                        path: found.path,
                        info: found.info,
                        breaker: entry.breaker,
                        emits: found.emits,
                        isolation,
                        limits: (isolation == Isolation::Process).then_some(entry.limits),
                        sha256: found.sha256,
                        registered: found.registrations,
                    };
                    plugins.push((meta, opened));
                }
                Err(error) if entry.on_load_error == LoadErrorPolicy::Skip => {
                    tracing::warn!("skipping plugin `{name}` (on_load_error = \"skip\"): {error}");
                    skipped.push(SkippedPlugin {
                        name: name.clone(),
                        error: error.to_string(),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        for (application, callbacks) in applications(apps) {
            let (meta, instance) = open_application(&manifest, &registry, application, callbacks)?;
            registry.add_callbacks(plugins.len(), &meta.name, &meta.registered);
            plugins.push((meta, Opened::App(instance)));
        }
        registry.sort();
        Ok(Prepared {
            manifest,
            registry,
            plugins,
            skipped,
        })
    }

    /// Events and callbacks. Handles resolved here stay valid on the generation this
    /// starts.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The plugins that will be started, in manifest order.
    pub fn plugins(&self) -> impl ExactSizeIterator<Item = &PluginMeta> {
        self.plugins.iter().map(|(meta, _)| meta)
    }

    /// Plugins left out because they failed to load and their policy is `skip`.
    pub fn skipped(&self) -> &[SkippedPlugin] {
        &self.skipped
    }

    /// Why the plugin called `name` is quarantined, if it runs in worker processes and is.
    pub fn quarantined(&self, name: &str) -> Option<String> {
        self.plugins.iter().find_map(|(meta, opened)| match opened {
            Opened::Isolated(plugin) if meta.name == name => plugin.quarantined().map(|r| r.reason),
            Opened::Carried(Instance::Process(plugin), _) if meta.name == name => {
                plugin.quarantined().map(|r| r.reason)
            }
            _ => None,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &ValidManifest {
        &self.manifest
    }
}

/// A plugin's library, opened where the plugin will run.
pub(crate) enum Opened {
    /// In this process.
    InProcess(Library),
    /// In a worker process, ready for `init`.
    Isolated(Box<ProcessPlugin>),
    /// Running already: the instance of the previous generation, carried over unchanged
    /// (same library build, same config, same settings), and its slot there.
    Carried(Instance, usize),
    /// The embedding application's callbacks.
    App(Arc<AppInstance>),
}

/// Which of the previous generation's plugins a new generation keeps running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carry {
    /// Those whose library build, config and settings are unchanged (a reload).
    Unchanged,
    /// All of them: the manifest is the previous generation's own, and only the
    /// application's callbacks changed.
    All,
}

/// The application callbacks `apps`, grouped by application in order of first
/// appearance, each group in registration order.
fn applications(apps: &[AppCallback]) -> Vec<(&str, Vec<AppCallback>)> {
    let mut groups: Vec<(&str, Vec<AppCallback>)> = Vec::new();
    for app in apps {
        match groups.iter_mut().find(|(name, _)| *name == app.application) {
            Some((_, group)) => group.push(app.clone()),
            None => groups.push((&app.application, vec![app.clone()])),
        }
    }
    groups
}

/// Checks one application's callbacks against the manifest as a plugin's registrations
/// are checked, and makes the slot's metadata and instance.
fn open_application(
    manifest: &ValidManifest,
    registry: &Registry,
    application: &str,
    mut callbacks: Vec<AppCallback>,
) -> Result<(PluginMeta, Arc<AppInstance>), LoadError> {
    let info = LibraryInfo::application(application);
    if manifest.plugin(application).is_some() {
        return Err(LoadError::BadRegistration {
            plugin: application.to_owned(),
            problem: format!(
                "the application is named `{application}`, as a plugin of {} is",
                manifest.path().display()
            ),
            fix: "give the application's callbacks another application name",
        });
    }
    for (id, callback) in callbacks.iter_mut().enumerate() {
        callback.registration.id = id as u32;
    }
    let registered: Vec<Registered> = callbacks.iter().map(|c| c.registration.clone()).collect();
    crate::load::check_registrations(application, PluginKind::Application, &registered)?;
    // A plugin built against a newer SDK may read types this host does not know; an
    // application is built with this host, so an unknown type is a typo.
    for registration in &registered {
        let reads = registration.reads.iter().flatten();
        if let Some((arg, kind)) = reads.clone().find(|(_, k)| ArgType::parse(k).is_err()) {
            return Err(LoadError::BadRegistration {
                plugin: application.to_owned(),
                problem: format!(
                    "callback `{}` reads `{arg}` as `{kind}`, which is not a type (string, int, float, bool, bytes, list, map or any, `?` for optional)",
                    registration.callback
                ),
                fix: crate::load::registration_fix(PluginKind::Application),
            });
        }
    }
    check_found(
        manifest,
        registry,
        application,
        PluginKind::Application,
        &registered,
    )?;
    let meta = PluginMeta {
        name: application.to_owned(),
        path: manifest.path().to_owned(),
        info,
        breaker: manifest.host().breaker,
        emits: Vec::new(),
        isolation: Isolation::InProcess,
        limits: None,
        sha256: String::new(),
        registered,
    };
    Ok((meta, Arc::new(AppInstance::new(callbacks))))
}

/// What an opened library says about itself, wherever it was opened.
pub(crate) struct Found {
    path: PathBuf,
    /// Where the plugin runs (see [`isolation_of`]).
    isolation: Isolation,
    sha256: String,
    info: LibraryInfo,
    registrations: Vec<Registered>,
    emits: Vec<Emits>,
}

/// Where a plugin runs: where its entry says, and otherwise in-process, except a Go library,
/// which brings a Go runtime of its own (Go supports one per process, golang/go#18976):
/// it runs in a worker process unless its entry says `isolation = "in_process"`.
fn isolation_of(entry: &PluginSettings, runs_go: bool) -> Isolation {
    match entry.isolation {
        Some(isolation) => isolation,
        None if runs_go => Isolation::Process,
        None => Isolation::InProcess,
    }
}

/// Opens one plugin's library where it will run: here, or in a worker process.
fn open(
    manifest: &ValidManifest,
    loader: &mut Loader,
    entry: &PluginSettings,
) -> Result<(Opened, Found), LoadError> {
    let name = &entry.name;
    let path = library_file(entry, manifest.plugin_dir())?;
    let copy = loader.copy(name, &path)?;
    let isolation = isolation_of(entry, copy.go);
    if isolation == Isolation::InProcess {
        let library = loader.open_copied(name, &path, copy)?;
        let found = Found {
            path: library.path.clone(),
            isolation,
            sha256: library.sha256.clone(),
            info: library.info.clone(),
            registrations: library.registrations.clone(),
            emits: library.emits.clone(),
        };
        return Ok((Opened::InProcess(library), found));
    }
    let worker_failed = |message: String| LoadError::Worker {
        plugin: name.clone(),
        message,
    };
    let command = crate::isolate::worker_command().map_err(worker_failed)?;
    let record = quarantine::current(manifest.base_dir(), name, &copy.sha256);
    let (plugin, described) = ProcessPlugin::prepare(
        name,
        &path,
        &copy.path,
        copy.sha256,
        command,
        entry.limits,
        manifest.base_dir(),
        manifest.host().quarantine,
        record,
    )?;
    let found = Found {
        path,
        isolation,
        sha256: plugin.sha256().to_owned(),
        info: described.info,
        registrations: described.registrations,
        emits: described.emits,
    };
    Ok((Opened::Isolated(Box::new(plugin)), found))
}

/// Checks, opens and checks the registrations of one plugin's library.
fn open_checked(
    manifest: &ValidManifest,
    registry: &Registry,
    loader: &mut Loader,
    entry: &PluginSettings,
) -> Result<(Opened, Found), LoadError> {
    let (opened, library) = open(manifest, loader, entry)?;
    let name = &entry.name;
    check_found(
        manifest,
        registry,
        name,
        library.info.kind(),
        &library.registrations,
    )?;
    Ok((opened, library))
}

/// Checks the registrations of a library (or an application) against the manifest's
/// events.
fn check_found(
    manifest: &ValidManifest,
    registry: &Registry,
    name: &str,
    kind: PluginKind,
    registrations: &[Registered],
) -> Result<(), LoadError> {
    if let Some(registration) = registry.undeclared(registrations) {
        return Err(LoadError::UndeclaredEvent {
            plugin: name.to_owned(),
            callback: registration.callback.clone(),
            event: registration.event.clone(),
            suggestion: registry.suggest(&registration.event),
            manifest: manifest.path().to_owned(),
        });
    }
    for registration in registrations {
        let Some(id) = registry.event_id(&registration.event) else {
            continue;
        };
        let event = registry.event(id).map_err(|_| LoadError::BadRegistration {
            plugin: name.to_owned(),
            problem: format!("event `{}` vanished", registration.event),
            fix: crate::load::registration_fix(kind),
        })?;
        if let Some(problem) = super::typed::mismatch(registration, &event.schema) {
            return Err(LoadError::ArgsMismatch {
                plugin: name.to_owned(),
                callback: registration.callback.clone(),
                event: registration.event.clone(),
                problem,
                manifest: manifest.path().to_owned(),
            });
        }
    }
    Ok(())
}

/// The previous generation's instance of `entry`, if it can be carried over as it is: the
/// same name, running, the same library build (by content) where it runs, the same
/// config and the same settings; under `Carry::All`, whenever it runs.
fn carried(
    previous: &Generation,
    manifest: &ValidManifest,
    entry: &PluginSettings,
    carry: Carry,
) -> Option<(Instance, usize, Found)> {
    let name = &entry.name;
    let index = previous.slots.iter().position(|s| s.meta.name == *name)?;
    let slot = &previous.slots[index];
    if matches!(slot.instance, Instance::Off(_) | Instance::App(_))
        || slot.handed_over.load(Ordering::Acquire)
    {
        return None;
    }
    let found = || Found {
        path: slot.meta.path.clone(),
        isolation: slot.meta.isolation,
        sha256: slot.meta.sha256.clone(),
        info: slot.meta.info.clone(),
        registrations: slot.meta.registered.clone(),
        emits: slot.meta.emits.clone(),
    };
    if carry == Carry::All {
        return Some((slot.instance.clone(), index, found()));
    }
    let before = previous.manifest.plugin(name)?;
    let path = library_file(entry, manifest.plugin_dir()).ok()?;
    let same = path == slot.meta.path
        && entry.config == before.config
        && entry.isolation == before.isolation
        && entry.limits == before.limits
        && manifest.host().quarantine == previous.manifest.host().quarantine
        && crate::load::sha256_of(&path).ok()? == slot.meta.sha256;
    same.then(|| (slot.instance.clone(), index, found()))
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
    /// Opens, checks and starts a manifest's plugins: [`Prepared::new`] then
    /// [`Prepared::start`].
    pub fn start(manifest: ValidManifest) -> Result<Generation, LoadError> {
        Prepared::new(manifest)?.start()
    }

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
