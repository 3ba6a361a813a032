//! The glue [`export_plugin!`](crate::export_plugin) expands to: the root module, the
//! `PluginObject` implementation, and the panic guard around every call into plugin code.

use std::mem::ManuallyDrop;

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};

use crate::abi::{
    feature, status, ArgsRaw, CallEntry, Description, HostRef, PluginBox, PluginInfo, PluginModule,
    PluginModuleRef, PluginObject, PluginObject_TO, Registration,
};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::panic::{catch_panic, guard, install_panic_hook, remember_name};
use crate::plugin::{Callbacks, Plugin};
use crate::value::Value;

/// The plugin-api version a plugin is built against, recorded in its [`PluginInfo`].
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this SDK's side of the interface supports.
const FEATURES: &[&str] = &[
    feature::TYPED_ARGS,
    feature::CONTROL,
    feature::DIRECT_CALLS,
    feature::REQUEST_IDS,
];

/// The plugin's static description.
pub fn info(name: &'static str, version: &'static str) -> PluginInfo {
    PluginInfo {
        name: RStr::from_str(name),
        version: RStr::from_str(version),
        api_version: RStr::from_str(API_VERSION),
        features: FEATURES.iter().map(|f| RString::from(*f)).collect(),
        extension: Value::NULL,
    }
}

/// The root module of a plugin library.
pub fn module<P: Plugin>(info: extern "C" fn() -> PluginInfo) -> PluginModuleRef {
    PluginModule {
        info,
        describe: describe::<P>,
        init: init::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn describe<P: Plugin>() -> RResult<Description, Error> {
    install_panic_hook();
    guard(|| {
        let mut callbacks = Callbacks::<P>::new();
        P::register(&mut callbacks);
        callbacks.check()?;
        Ok(Description {
            callbacks: callbacks
                .entries
                .iter()
                .enumerate()
                .map(|(id, c)| Registration {
                    event: c.event.as_str().into(),
                    name: c.name.as_str().into(),
                    priority: c.priority,
                    id: id as u32,
                    reads: c.reads.clone().map(RVec::from).into(),
                    extension: Value::NULL,
                })
                .collect(),
            emits: callbacks.emits.into(),
            extension: Value::NULL,
        })
    })
}

extern "C" fn init<P: Plugin>(config: &Value<'_>, host: HostRef<'_>) -> RResult<PluginBox, Error> {
    install_panic_hook();
    guard(|| {
        let host = Host::from_raw(host);
        let config: P::Config = parse_config(config)?;
        remember_name(host.plugin_name());
        let plugin = Box::new(P::init(config, &host)?);
        let mut callbacks = Callbacks::new();
        P::register(&mut callbacks);
        let state = std::ptr::from_ref::<P>(&*plugin).cast::<()>();
        let entries = callbacks
            .entries
            .iter()
            .map(|c| CallEntry {
                call: c.call,
                state,
                data: c.data,
            })
            .collect();
        Ok(PluginObject_TO::from_value(
            Live {
                plugin: ManuallyDrop::new(plugin),
                _callbacks: callbacks,
                entries,
                name: host.plugin_name().to_owned(),
            },
            TD_Opaque,
        ))
    })
}

struct Live<P: Plugin> {
    /// Dropped by hand, inside the panic guard: see `Drop for Live`.
    plugin: ManuallyDrop<Box<P>>,
    /// Owns what `entries` point to.
    _callbacks: Callbacks<P>,
    entries: RVec<CallEntry>,
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
        let Some(entry) = self.entries.get(id as usize) else {
            *result = RResult::RErr(Error::new(format!("plugin has no callback number {id}")));
            return status::ERROR;
        };
        // SAFETY: the entry is this object's own, and `self` is alive for the call.
        unsafe { (entry.call)(entry.state, entry.data, args, host, result) }
    }

    fn entries(&self) -> RSlice<'_, CallEntry> {
        self.entries.as_rslice()
    }

    fn shutdown(&self, host: HostRef<'_>) -> RResult<(), Error> {
        guard(|| self.plugin.shutdown(&Host::from_raw(host)))
    }

    fn control(
        &self,
        operation: RStr<'_>,
        argument: &Value<'_>,
        host: HostRef<'_>,
    ) -> RResult<Value<'static>, Error> {
        guard(|| {
            self.plugin
                .control(operation.as_str(), argument, &Host::from_raw(host))
        })
    }
}

/// A plugin's config from the manifest's table. A key the config type would ignore is
/// refused, as `#[serde(deny_unknown_fields)]` would: a misspelt key must not silently
/// fall back to a default.
pub(crate) fn parse_config<C: serde::de::DeserializeOwned>(config: &Value<'_>) -> Result<C> {
    let mut unknown = Vec::new();
    let parsed = serde_ignored::deserialize(crate::de::ValueDe(config.shorten()), |path| {
        unknown.push(path.to_string())
    });
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
