//! The binary interface between the host and a plugin library. Hosts use it; plugin authors
//! never name anything here: the SDK and [`export_plugin!`](crate::export_plugin) do.
//!
//! # Evolution rules
//!
//! Every type reachable from [`PluginModule`] is layout-checked by `abi_stable` when a
//! library is loaded. `abi_stable` refuses a library whose root module has *fewer* fields
//! than the host expects (upstream issue #118), which is the direction a plugin host needs
//! most: an old plugin in a new host. So these layouts are **frozen**:
//!
//! - no field is ever added to [`PluginModule`], [`PluginInfo`], [`Registration`],
//!   [`ArgsRaw`] or [`Outcome`], and no method to [`PluginObject`] or [`HostApi`];
//! - new host services go through [`HostApi::call`] (string-keyed operations), new plugin
//!   services through [`PluginObject::control`], and both sides announce what they support
//!   in their feature lists ([`PluginInfo::features`], [`HOST_FEATURES`]);
//! - events are string-keyed, so new events never touch a layout.
//!
//! A change that breaks these rules is a new major version of `switchboard-plugin-api`;
//! `tests/abi` keeps a plugin built against the frozen 1.0 interface and CI loads it.

// `#[sabi_trait]` expands to impl blocks inside a const item.
#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, StableAbi};

use crate::error::Error;
use crate::value::Value;

/// The root module every plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Static facts about the plugin, readable without initializing it.
    pub info: extern "C" fn() -> PluginInfo,

    /// The callbacks the plugin registers; static, so the host checks them (and `inspect`
    /// lists them) before running any plugin code.
    pub registrations: extern "C" fn() -> RResult<RVec<Registration>, Error>,

    /// Creates the plugin from its config (a map, empty when the manifest gives none).
    ///
    /// This is the last prefix field and the module is frozen: see the module docs.
    #[sabi(last_prefix_field)]
    pub init: extern "C" fn(config: &Value<'_>, host: HostRef<'_>) -> RResult<PluginBox, Error>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "switchboard_plugin";
    const NAME: &'static str = "switchboard_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// What a plugin says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct PluginInfo {
    /// The plugin crate's name.
    pub name: RStr<'static>,
    /// The plugin crate's version.
    pub version: RStr<'static>,
    /// The `switchboard-plugin-api` version the plugin was built against.
    pub api_version: RStr<'static>,
    /// Optional capabilities the plugin supports; hosts ignore names they do not know.
    pub features: RSlice<'static, RStr<'static>>,
}

/// The operations hosts answer through [`HostApi::call`], by name. A host that predates
/// one answers it with an error, so callers fall back.
pub mod operation {
    /// The absolute folder of the manifest, as a string: relative paths in a manifest,
    /// plugin configs included, are relative to it.
    pub const MANIFEST_DIR: &str = "manifest_dir";
}

/// Features this host side of the interface understands (see [`HostApi::call`]).
pub const HOST_FEATURES: &[&str] = &[];

/// One callback a plugin registers.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Registration {
    /// The event name, as declared in the manifest.
    pub event: RString,
    /// The callback's name, shown in listings and errors.
    pub callback: RString,
    /// Higher runs earlier; ties keep manifest order, then registration order.
    pub priority: i32,
    /// The number the host passes back to [`PluginObject::call`].
    pub id: u32,
}

/// The arguments of one emit, in the order the event declares them.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct ArgsRaw<'a> {
    /// The event being dispatched.
    pub event: RStr<'a>,
    /// Argument names, as declared.
    pub names: RSlice<'a, RString>,
    /// Argument values; `names[i]` names `values[i]`. A missing optional argument is null.
    pub values: RSlice<'a, Value<'a>>,
}

/// One callback's result in a nested emit.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct Outcome {
    plugin: RString,
    callback: RString,
    result: RResult<Value<'static>, Error>,
}

impl Outcome {
    /// Builds an outcome; the host does this.
    #[doc(hidden)]
    pub fn new(plugin: &str, callback: &str, result: Result<Value<'static>, Error>) -> Self {
        Outcome {
            plugin: plugin.into(),
            callback: callback.into(),
            result: result.into(),
        }
    }

    /// The plugin (as named in the manifest) whose callback ran.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The callback's name.
    pub fn callback(&self) -> &str {
        &self.callback
    }

    /// What the callback returned.
    pub fn result(&self) -> Result<&Value<'static>, &Error> {
        self.result.as_ref().into_result()
    }
}

/// A live plugin, as the host sees it. Implemented by the SDK for every [`Plugin`](crate::Plugin).
#[sabi_trait]
pub trait PluginObject: Send + Sync {
    /// Runs callback `id` with these arguments and returns a [`status`]. A null result
    /// is only reported (the common case costs no copy); a value or an error is written
    /// to `result`, which the host provides holding `Ok(null)`.
    fn call(
        &self,
        id: u32,
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, Error>,
    ) -> u8;

    /// Runs the plugin's shutdown; called once, after its last callback.
    fn shutdown(&self, host: HostRef<'_>) -> RResult<(), Error>;

    /// Extension point for operations added after 1.0, keyed by name; unknown names must
    /// return an error.
    #[sabi(last_prefix_field)]
    fn control(
        &self,
        operation: RStr<'_>,
        argument: &Value<'_>,
        host: HostRef<'_>,
    ) -> RResult<Value<'static>, Error>;
}

/// What [`PluginObject::call`] returns.
pub mod status {
    /// The callback returned null; `result` was not touched.
    pub const NULL: u8 = 0;
    /// The callback returned a value, written to `result`.
    pub const VALUE: u8 = 1;
    /// The callback failed or panicked; the error is in `result`.
    pub const ERROR: u8 = 2;
}

/// A boxed live plugin.
pub type PluginBox = PluginObject_TO<'static, RBox<()>>;

/// Log levels for [`HostApi::log`].
pub mod level {
    /// Something failed.
    pub const ERROR: u8 = 1;
    /// Something is off.
    pub const WARN: u8 = 2;
    /// Normal operation.
    pub const INFO: u8 = 3;
    /// Details for debugging.
    pub const DEBUG: u8 = 4;
}

/// What the host offers a plugin while it runs. Implemented by the host.
#[sabi_trait]
pub trait HostApi {
    /// The plugin's name as given in the manifest.
    fn plugin_name(&self) -> RStr<'_>;

    /// Writes a line to the host's log under the plugin's name.
    fn log(&self, level: u8, message: RStr<'_>);

    /// Dispatches another event from inside a callback and returns its outcomes.
    fn emit(
        &self,
        event: RStr<'_>,
        args: RSlice<'_, crate::value::Entry<'_>>,
    ) -> RResult<RVec<Outcome>, Error>;

    /// Extension point for services added after 1.0, keyed by name; unknown names return an
    /// error.
    #[sabi(last_prefix_field)]
    fn call(&self, operation: RStr<'_>, argument: &Value<'_>) -> RResult<Value<'static>, Error>;
}

/// A borrowed host handle, valid for one call into the plugin.
pub type HostRef<'a> = HostApi_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>;
