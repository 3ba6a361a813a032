//! A manifest's plugins [`Prepared`]: every library opened and checked, every
//! registration checked against the manifest, and what a reload carries over from the
//! generation before, all before any plugin code runs.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::application::{AppCallback, AppInstance};
use super::generation::{Generation, Instance, PluginMeta, SkippedPlugin};
use super::registry::Registry;
use crate::error::LoadError;
use crate::isolate::quarantine;
use crate::isolate::ProcessPlugin;
use crate::load::{library_file, Emits, Library, LibraryInfo, Loader, PluginKind, Registered};
use crate::manifest::{ArgType, Isolation, LoadErrorPolicy, PluginSettings, ValidManifest};

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
