//! The glue [`export_plugin!`](crate::export_plugin) expands to: the root module, the
//! `PluginObject` implementation, and the panic guard around every call into plugin code.

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};

use crate::abi::{
    status, ArgsRaw, HostRef, PluginBox, PluginInfo, PluginModule, PluginModuleRef, PluginObject,
    PluginObject_TO, Registration,
};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::plugin::{Callbacks, Plugin};
use crate::value::Value;

/// The plugin-api version a plugin is built against, recorded in its [`PluginInfo`].
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The plugin's static description.
pub fn info(name: &'static str, version: &'static str) -> PluginInfo {
    PluginInfo {
        name: RStr::from_str(name),
        version: RStr::from_str(version),
        api_version: RStr::from_str(API_VERSION),
        features: RSlice::from_slice(&[]),
    }
}

/// The root module of a plugin library.
pub fn module<P: Plugin>(info: extern "C" fn() -> PluginInfo) -> PluginModuleRef {
    PluginModule {
        info,
        registrations: registrations::<P>,
        init: init::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn registrations<P: Plugin>() -> RResult<RVec<Registration>, Error> {
    install_panic_hook();
    guard(|| {
        let mut callbacks = Callbacks::<P>::new();
        P::register(&mut callbacks);
        Ok(callbacks
            .entries
            .iter()
            .enumerate()
            .map(|(id, c)| Registration {
                event: c.event.as_str().into(),
                callback: c.name.as_str().into(),
                priority: c.priority,
                id: id as u32,
            })
            .collect())
    })
}

extern "C" fn init<P: Plugin>(config: &Value<'_>, host: HostRef<'_>) -> RResult<PluginBox, Error> {
    install_panic_hook();
    guard(|| {
        let host = Host::from_raw(host);
        let config: P::Config = parse_config(config)?;
        remember_name(host.plugin_name());
        let plugin = P::init(config, &host)?;
        let mut callbacks = Callbacks::new();
        P::register(&mut callbacks);
        Ok(PluginObject_TO::from_value(
            Live {
                plugin: ManuallyDrop::new(plugin),
                callbacks,
                name: host.plugin_name().to_owned(),
            },
            TD_Opaque,
        ))
    })
}

struct Live<P: Plugin> {
    /// Dropped by hand, inside the panic guard: see `Drop for Live`.
    plugin: ManuallyDrop<P>,
    callbacks: Callbacks<P>,
    /// The manifest name, for reporting a panic while the state is dropped.
    name: String,
}

/// A plugin's state that panics while being dropped must not unwind into the host (the
/// host would abort); the panic is caught here and reported with the plugin's name.
impl<P: Plugin> Drop for Live<P> {
    fn drop(&mut self) {
        let plugin = &mut self.plugin;
        // SAFETY: `plugin` is dropped exactly once, here, and never used afterwards: this
        // is the destructor of the only value that holds it.
        let dropped = catch_panic(|| unsafe { ManuallyDrop::drop(plugin) });
        if let Err(error) = dropped {
            eprintln!(
                "error: plugin `{}`: its state panicked while being dropped: {}",
                self.name,
                error.message()
            );
        }
    }
}

impl<P: Plugin> PluginObject for Live<P> {
    fn call(
        &self,
        id: u32,
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, Error>,
    ) -> u8 {
        let Some(callback) = self.callbacks.entries.get(id as usize) else {
            *result = RResult::RErr(Error::new(format!("plugin has no callback number {id}")));
            return status::ERROR;
        };
        let args = Args::from_raw(*args);
        let host = Host::from_raw(host);
        let slot = &mut *result;
        match catch_panic(|| (callback.func)(&self.plugin, &args, &host, slot)) {
            Ok(code) => code,
            Err(error) => {
                *result = RResult::RErr(error);
                status::ERROR
            }
        }
    }

    fn shutdown(&self, host: HostRef<'_>) -> RResult<(), Error> {
        guard(|| self.plugin.shutdown(&Host::from_raw(host)))
    }

    fn control(
        &self,
        operation: RStr<'_>,
        _argument: &Value<'_>,
        _host: HostRef<'_>,
    ) -> RResult<Value<'static>, Error> {
        RResult::RErr(Error::new(format!(
            "this plugin does not support the operation `{operation}`"
        )))
    }
}

/// This thread's guard: how deep in guarded plugin code it is, and how many panics were
/// raised since the last guarded call began (a second one is a panic while unwinding, which
/// Rust turns into an abort the guard cannot catch). One cell, so that a guarded call costs
/// one thread-local lookup.
#[derive(Clone, Copy)]
struct Guard {
    depth: u32,
    panics: u32,
}

thread_local! {
    static GUARD: Cell<Guard> = const { Cell::new(Guard { depth: 0, panics: 0 }) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A plugin's config from the manifest's table. A key the config type would ignore is
/// refused, as `#[serde(deny_unknown_fields)]` would: a misspelt key must not silently
/// fall back to a default.
pub(crate) fn parse_config<C: serde::de::DeserializeOwned>(config: &Value<'_>) -> Result<C> {
    let mut unknown = Vec::new();
    let parsed =
        serde_ignored::deserialize(config.to_json(), |path| unknown.push(path.to_string()));
    let config = parsed.map_err(|e| {
        Error::new(format!("invalid config: {e}"))
            .with_help("fix the `config` table of this plugin in the manifest")
    })?;
    if !unknown.is_empty() {
        return Err(Error::new(format!(
            "invalid config: unknown key{} `{}`",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join("`, `")
        ))
        .with_help("remove it from the plugin's `config` table, or check its spelling against the plugin's documentation"));
    }
    Ok(config)
}

/// Runs plugin code, turning a panic into an [`Error`] so that it never unwinds into the
/// host (a panic crossing `extern "C"` aborts the whole process).
pub fn guard<T>(body: impl FnOnce() -> Result<T>) -> RResult<T, Error> {
    match catch_panic(body) {
        Ok(result) => result.into(),
        Err(panicked) => RResult::RErr(panicked),
    }
}

/// Runs `body`, turning a panic into an error that carries its message and location.
#[inline]
pub(crate) fn catch_panic<T>(body: impl FnOnce() -> T) -> std::result::Result<T, Error> {
    // One thread-local lookup per call: in a shared library each costs a call into the
    // dynamic linker.
    let outcome = GUARD.with(|guard| {
        let depth = guard.get().depth;
        guard.set(Guard {
            depth: depth + 1,
            panics: 0,
        });
        let outcome = panic::catch_unwind(AssertUnwindSafe(body));
        guard.set(Guard {
            depth,
            panics: guard.get().panics,
        });
        outcome
    });
    outcome.map_err(|payload| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| payload_message(payload.as_ref()));
        Error::panicked(message)
    })
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// The manifest names of this library's instances, for panics that happen outside any
/// call from the host (one library may be loaded under several names).
static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn remember_name(name: &str) {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

/// Records the message and location of a panic inside guarded plugin code instead of
/// printing it, so the host reports it once, through its own logger. A panic elsewhere (a
/// plugin's own thread, or a panic while unwinding, which aborts) is printed as one line
/// that names the plugin, since the host cannot see it: each plugin has its own copy of
/// the standard library and its panic hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(move |info| {
            let message = payload_message(info.payload());
            let at = info
                .location()
                .map(|at| format!("{}:{}", at.file(), at.line()));
            let guard = GUARD.with(|guard| {
                let mut now = guard.get();
                now.panics += 1;
                guard.set(now);
                now
            });
            let unwinding = guard.panics > 1;
            if guard.depth > 0 && !unwinding {
                let message = match at {
                    Some(at) => format!("{message} (at {at})"),
                    None => message,
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
                return;
            }
            let names = match NAMES.try_lock() {
                Ok(names) if !names.is_empty() => names.join("`, `"),
                _ => "(not yet started)".to_owned(),
            };
            let thread = std::thread::current();
            eprintln!(
                "error: plugin `{names}`: thread '{}' panicked{}: {message}{}",
                thread.name().unwrap_or("unnamed"),
                at.map(|at| format!(" at {at}")).unwrap_or_default(),
                if unwinding {
                    " (while unwinding from another panic: the process aborts)"
                } else {
                    ""
                }
            );
        }));
    });
}
