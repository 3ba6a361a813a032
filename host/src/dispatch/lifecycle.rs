//! A generation's plugins coming up and going down: `init` in manifest order when a
//! [`Prepared`] manifest starts, `shutdown` in reverse order, once, when the generation is
//! shut down or its last reference is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use switchboard_plugin_api::{Error as PluginError, Value};

use super::bounded::{self, Unfinished};
use super::breaker::Breaker;
use super::context::{CallCtx, SetupCtx};
use super::generation::{
    Generation, Instance, Route, ShutdownFailure, SkippedPlugin, Slot, Target,
};
use super::prepared::{Opened, Prepared};
use super::stats::Counters;
use crate::error::{ControlError, LoadError};
use crate::manifest::{LoadErrorPolicy, ValidManifest};

impl Generation {
    /// Opens, checks and starts a manifest's plugins: [`Prepared::new`] then
    /// [`Prepared::start`].
    pub fn start(manifest: ValidManifest) -> Result<Generation, LoadError> {
        Prepared::new(manifest)?.start()
    }
}

impl Prepared {
    /// Runs every plugin's `init`, in manifest order, and emits `host.started`.
    ///
    /// If an `init` fails (and the plugin's policy is not `skip`), the plugins initialized
    /// before it are shut down again and the error is returned.
    pub fn start(self) -> Result<Generation, LoadError> {
        self.start_with(Arc::default(), true)
    }

    /// Starts the generation after `previous`: the plugins carried over keep running as
    /// they are (no `init`), and handles the plugins kept reach the new generation once it
    /// is current.
    /// `announce`: whether to emit `host.started` (not when only the application's
    /// callbacks changed, and every plugin runs on as it was).
    pub(crate) fn start_after(
        self,
        previous: &Generation,
        announce: bool,
    ) -> Result<Generation, LoadError> {
        self.start_with(Arc::clone(&previous.anchor), announce)
    }

    fn start_with(
        self,
        anchor: Arc<super::anchor::Anchor<Generation>>,
        announce: bool,
    ) -> Result<Generation, LoadError> {
        let Prepared {
            manifest,
            registry,
            plugins,
            skipped,
        } = self;
        let epoch = Instant::now();
        let counters = Counters::new(registry.callbacks().len());
        let mut generation = Generation {
            slots: Vec::with_capacity(plugins.len()),
            manifest,
            registry,
            skipped,
            counters,
            shut_down: AtomicBool::new(false),
            targets: Vec::new(),
            has_c_callbacks: Vec::new(),
            anchor,
            observer: std::sync::OnceLock::new(),
            carried: Vec::new(),
        };
        let mut failed = Vec::new();
        for (index, (meta, library)) in plugins.into_iter().enumerate() {
            let entry = generation.manifest.plugin(&meta.name);
            let config = config_value(entry.and_then(|e| e.config.as_ref()));
            let carried = matches!(library, Opened::Carried(..));
            let started = match library {
                Opened::InProcess(library) => {
                    let ctx = SetupCtx::new(&generation, &meta.name);
                    let module = library.module;
                    let limit = generation.manifest.host().setup_timeout();
                    bounded::within(&meta.name, limit, move || {
                        module.init(&config, ctx.handle()).into_result()
                    })
                    .unwrap_or_else(|why| Err(unfinished("init", why, limit)))
                    .map(|instance| Instance::InProcess(Arc::new(instance)))
                }
                Opened::Isolated(plugin) => plugin
                    .init(config)
                    .map(|()| Instance::Process(Arc::from(plugin))),
                Opened::Carried(instance, previous) => {
                    generation.carried.push(previous);
                    Ok(instance)
                }
                Opened::App(callbacks) => Ok(Instance::App(callbacks)),
            };
            let instance = match started {
                Ok(instance) => instance,
                Err(error) => {
                    let error = LoadError::Init {
                        plugin: meta.name.clone(),
                        error,
                    };
                    let policy = entry.map_or(LoadErrorPolicy::Fail, |e| e.on_load_error);
                    if policy == LoadErrorPolicy::Fail {
                        // The instances carried over keep running in the previous
                        // generation, which still owns them.
                        for slot in generation.slots.iter().filter(|s| s.carried) {
                            slot.handed_over.store(true, Ordering::Release);
                        }
                        generation.shutdown();
                        return Err(error);
                    }
                    tracing::warn!("skipping plugin (on_load_error = \"skip\"): {error}");
                    failed.push((index, error.to_string()));
                    Instance::Off(error.to_string())
                }
            };
            let breaker = Breaker::new(meta.breaker, epoch);
            generation.slots.push(Slot {
                meta,
                instance,
                breaker,
                handed_over: AtomicBool::new(false),
                carried,
            });
        }
        for (plugin, error) in failed {
            generation.registry.remove_plugin(plugin);
            generation.skipped.push(SkippedPlugin {
                name: generation.slots[plugin].meta.name.clone(),
                error,
            });
        }
        generation.targets = targets(&generation);
        generation.has_c_callbacks = generation
            .targets
            .iter()
            .map(|targets| {
                targets.iter().any(|t| match &t.route {
                    Route::C(_) => true,
                    Route::Direct(entry) => crate::load::is_c_entry(entry),
                    Route::Worker => false,
                })
            })
            .collect();
        if announce {
            generation.emit_builtin(crate::manifest::builtin::HOST_STARTED);
        }
        Ok(generation)
    }
}

/// Every event's dispatch list as direct entry points. A plugin that is off has no
/// callbacks left in any event, and a registration whose entry the plugin did not give is
/// left out (a plugin breaking the interface; its `describe` and `init` disagree).
fn targets(generation: &Generation) -> Vec<Vec<Target>> {
    let registry = &generation.registry;
    registry
        .events()
        .iter()
        .map(|event| {
            event
                .callbacks
                .iter()
                .filter_map(|id| {
                    let callback = registry.callback(*id);
                    let route = match &generation.slots[callback.plugin].instance {
                        Instance::InProcess(instance) => {
                            let entry = instance.entries().get(callback.id as usize).copied();
                            if entry.is_none() {
                                tracing::error!(
                                    "plugin `{}` gave no entry point for callback `{}`; it is left out",
                                    callback.plugin_name,
                                    callback.name
                                );
                            }
                            let entry = entry?;
                            let names = &event.schema.names;
                            // SAFETY: the target is kept in this generation's dispatch
                            // table, which is only called through while the generation,
                            // and so the instance in its slot, is alive.
                            match unsafe { crate::load::CTarget::of(&entry, names) } {
                                Some(c) => Route::C(c),
                                None => Route::Direct(entry),
                            }
                        }
                        Instance::Process(_) => Route::Worker,
                        Instance::App(callbacks) => Route::Direct(callbacks.entry(callback.id)?),
                        Instance::Off(_) => return None,
                    };
                    Some(Target {
                        route,
                        plugin: callback.plugin as u32,
                        callback: id.index,
                    })
                })
                .collect()
        })
        .collect()
}

impl Generation {
    /// Sends `plugin` a control operation (see `Plugin::control` in the SDK): a health
    /// check, a cache flush, whatever operations the plugin documents. An operation it does
    /// not know fails with [`ControlError::Plugin`] whose error `is_unsupported()`.
    pub fn control(
        &self,
        plugin: &str,
        operation: &str,
        argument: &Value<'_>,
    ) -> Result<Value<'static>, ControlError> {
        if self.is_shut_down() {
            return Err(ControlError::ShutDown);
        }
        let Some(slot) = self.slots.iter().find(|s| s.meta.name == plugin) else {
            let names = || self.slots.iter().map(|s| s.meta.name.as_str());
            return Err(ControlError::UnknownPlugin {
                plugin: plugin.to_owned(),
                suggestion: crate::suggest::did_you_mean(plugin, names()),
                known: names().collect::<Vec<_>>().join(", "),
            });
        };
        let answer = match &slot.instance {
            Instance::InProcess(instance) => {
                let ctx = CallCtx::for_control(self, &slot.meta.name);
                instance
                    .control(operation.into(), argument, ctx.handle())
                    .into_result()
            }
            Instance::Process(isolated) => isolated.control(operation, argument),
            Instance::App(_) => Err(PluginError::unsupported(format!(
                "`{plugin}` is the application's own callbacks, which take no control operations"
            ))),
            Instance::Off(reason) => {
                return Err(ControlError::Off {
                    plugin: plugin.to_owned(),
                    reason: reason.clone(),
                })
            }
        };
        answer.map_err(|error| ControlError::Plugin {
            plugin: plugin.to_owned(),
            error,
        })
    }

    /// Runs every live plugin's `shutdown` once, in reverse load order, and returns the
    /// failures. Later emits are refused. Runs by itself when the last reference to the
    /// generation is dropped.
    pub fn shutdown(&self) -> Vec<ShutdownFailure> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let mut failures = Vec::new();
        for slot in self.slots.iter().rev() {
            if slot.handed_over.load(Ordering::Acquire) {
                // A newer generation runs this instance now, and shuts it down.
                continue;
            }
            let stopped = match &slot.instance {
                Instance::InProcess(instance) => {
                    let ctx = SetupCtx::new(self, &slot.meta.name);
                    let instance = Arc::clone(instance);
                    let limit = self.manifest.host().setup_timeout();
                    bounded::within(&slot.meta.name, limit, move || {
                        instance.shutdown(ctx.handle()).into_result()
                    })
                    .unwrap_or_else(|why| Err(unfinished("shutdown", why, limit)))
                }
                Instance::Process(isolated) => isolated.shutdown(),
                Instance::Off(_) | Instance::App(_) => continue,
            };
            if let Err(error) = stopped {
                tracing::error!("plugin `{}` failed to shut down: {error}", slot.meta.name);
                failures.push(ShutdownFailure {
                    plugin: slot.meta.name.clone(),
                    error,
                });
            }
        }
        failures
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The error of a plugin's `init` or `shutdown` that the host stopped waiting for.
fn unfinished(what: &str, why: Unfinished, limit: std::time::Duration) -> PluginError {
    match why {
        Unfinished::TimedOut => PluginError::timed_out(format!(
            "its {what} did not return within {} ms ([host] setup_timeout_ms); the host stopped waiting, and the call goes on on a thread of its own until the process exits",
            limit.as_millis()
        ))
        .with_help(format!(
            "find out why the plugin's {what} hangs, raise [host] setup_timeout_ms if it is only slow, or give the plugin isolation = \"process\""
        )),
        Unfinished::NoThread(error) => {
            PluginError::new(format!("its {what} could not be run: no thread for it ({error})"))
        }
    }
}

/// A plugin's config as a payload map (empty when the manifest gives none).
fn config_value(config: Option<&serde_json::Map<String, serde_json::Value>>) -> Value<'static> {
    match config {
        Some(table) => Value::from_json(&serde_json::Value::Object(table.clone())),
        None => Value::map(std::iter::empty::<(String, Value)>()),
    }
}
