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
//! - no field is ever added to [`PluginModule`], [`PluginInfo`], [`Description`],
//!   [`Registration`], [`ArgDecl`], [`EmitDecl`], [`ArgsRaw`], [`CallEntry`] or
//!   [`Outcome`], and no method to [`PluginObject`] or [`HostApi`];
//! - new host services go through [`HostApi::call`] (string-keyed operations), new plugin
//!   services through [`PluginObject::control`], and both sides announce what they support
//!   in their feature lists ([`PluginInfo::features`], [`HostApi::features`]);
//! - new static facts go in the `extension` values of [`PluginInfo`], [`Description`] and
//!   [`Registration`]: maps whose keys name the extension, ignored by hosts that do not
//!   know them;
//! - asynchronous callbacks, when they come, answer [`status::PENDING`] and deliver their
//!   result under the call's [`ArgsRaw::request`] id;
//! - events are string-keyed, so new events never touch a layout.
//!
//! A change that breaks these rules is a new major version of `switchboard-plugin-api`;
//! `tests/abi` keeps a plugin built against the frozen 1.0 interface and CI loads it.

// `#[sabi_trait]` expands to impl blocks inside a const item.
#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};
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

    /// What the plugin registers and emits; static, so the host checks it against the
    /// manifest (and `inspect` lists it) before running any plugin code.
    pub describe: extern "C" fn() -> RResult<Description, Error>,

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
#[derive(StableAbi, Debug, Clone)]
pub struct PluginInfo {
    /// The plugin crate's name.
    pub name: RStr<'static>,
    /// The plugin crate's version.
    pub version: RStr<'static>,
    /// The `switchboard-plugin-api` version the plugin was built against.
    pub api_version: RStr<'static>,
    /// What the plugin's side of the interface supports (see [`feature`]); hosts ignore
    /// names they do not know.
    pub features: RVec<RString>,
    /// Room for facts added after 1.0: null, or a map whose keys name the extension.
    /// Hosts ignore keys they do not know.
    pub extension: Value<'static>,
}

/// Names of optional capabilities, in [`PluginInfo::features`] (the plugin's side) and
/// [`HostApi::features`] (the host's side). A side only relies on what the other lists.
pub mod feature {
    /// Registrations say which arguments a callback reads, with their types.
    pub const TYPED_ARGS: &str = "typed_args";
    /// [`PluginObject::control`](super::PluginObject::control) answers operations.
    pub const CONTROL: &str = "control";
    /// The host hands out owned handles ([`HostApi::keep`](super::HostApi::keep)) that
    /// plugins may use from their own threads.
    pub const OWNED_HOST: &str = "owned_host";
    /// [`PluginObject::entries`](super::PluginObject::entries) gives direct entry points.
    pub const DIRECT_CALLS: &str = "direct_calls";
    /// Every call carries a request id ([`ArgsRaw::request`](super::ArgsRaw::request)).
    pub const REQUEST_IDS: &str = "request_ids";
    /// The host answers [`operation::MANIFEST_DIR`](super::operation::MANIFEST_DIR).
    pub const MANIFEST_DIR: &str = "manifest_dir";
    /// Callbacks may emit further events ([`HostApi::emit`](super::HostApi::emit)).
    pub const NESTED_EMIT: &str = "nested_emit";
    /// The host answers [`operation::EVENT_ID`](super::operation::EVENT_ID) in callbacks.
    pub const EVENT_IDS: &str = "event_ids";
}

/// The operations hosts answer through [`HostApi::call`], by name. A host that predates
/// one answers it with an error, so callers fall back.
pub mod operation {
    /// The absolute folder of the manifest, as a string: relative paths in a manifest,
    /// plugin configs included, are relative to it.
    pub const MANIFEST_DIR: &str = "manifest_dir";
    /// The id of the event the running callback is called for, as a string: the id its
    /// sender gave (`emit --id`, a `run` line's `id`, `X-Request-Id`, a NATS message's id),
    /// the same on every delivery of that event, or one the host made for it. A nested
    /// emit carries the id of the event whose callback made it. Asked outside a callback,
    /// it is an error.
    pub const EVENT_ID: &str = "event_id";
}

/// Everything a plugin registers, read before it runs.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Description {
    /// Its callbacks, in registration order.
    pub callbacks: RVec<Registration>,
    /// The events it may emit, with their arguments, so that tools can declare them.
    pub emits: RVec<EmitDecl>,
    /// Room for facts added after 1.0: null, or a map whose keys name the extension.
    pub extension: Value<'static>,
}

/// One callback a plugin registers.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Registration {
    /// The event name, as declared in the manifest.
    pub event: RString,
    /// The callback's name, chosen by the plugin's author: stable across builds, shown in
    /// listings and errors, unique within the plugin.
    pub name: RString,
    /// Higher runs earlier; ties keep manifest order, then registration order.
    pub priority: i32,
    /// The number the host passes back to [`PluginObject::call`] (and the index of its
    /// entry in [`PluginObject::entries`]).
    pub id: u32,
    /// The arguments the callback reads, with their types, when it says (typed
    /// callbacks); `RNone` for a callback that reads its arguments by name at run time.
    pub reads: ROption<RVec<ArgDecl>>,
    /// Room for facts added after 1.0: null, or a map whose keys name the extension.
    pub extension: Value<'static>,
}

/// One argument: its name and type, written as in a manifest (`string`, `int?`, `any`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The argument's name.
    pub name: RString,
    /// Its type, as a manifest writes it; `?` marks an argument that may be left out.
    pub kind: RString,
}

/// An event a plugin may emit.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct EmitDecl {
    /// The event name.
    pub event: RString,
    /// Its arguments, in order.
    pub args: RVec<ArgDecl>,
}

/// The arguments of one emit, in the order the event declares them.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct ArgsRaw<'a> {
    /// The event being dispatched.
    pub event: RStr<'a>,
    /// Argument names, as declared. A host passes the same slice (the same memory) on
    /// every call of one event to one plugin instance, so a plugin may find its typed
    /// arguments' positions once and key them by the slice's address.
    pub names: RSlice<'a, RString>,
    /// Argument values; `names[i]` names `values[i]`. A missing optional argument is null.
    pub values: RSlice<'a, Value<'a>>,
    /// The emit's request id, unique in the host process (0 when the host gives none):
    /// the key an asynchronous result will be delivered under.
    pub request: u64,
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

/// A callback's direct entry point: the host calls `call(state, data, ...)` with the two
/// pointers of its [`CallEntry`]. It has the contract of [`PluginObject::call`].
///
/// # Safety
///
/// `state` and `data` must be the pointers of the same [`CallEntry`], whose
/// [`PluginObject`] is still alive.
pub type CallFn = unsafe extern "C" fn(
    state: *const (),
    data: *const (),
    args: &ArgsRaw<'_>,
    host: HostRef<'_>,
    result: &mut RResult<Value<'static>, Error>,
) -> u8;

/// One callback's direct entry point, from [`PluginObject::entries`]: one indirect call
/// per callback, with no lookup or vtable in between (the dispatch hot path).
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct CallEntry {
    /// The function to call (a [`CallFn`], spelled out for the layout check).
    pub call: unsafe extern "C" fn(
        state: *const (),
        data: *const (),
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, Error>,
    ) -> u8,
    /// Its first argument: the plugin's state.
    pub state: *const (),
    /// Its second argument: the callback's own data.
    pub data: *const (),
}

// SAFETY: the pointers are only passed back to `call`, which reads them as shared
// references to the plugin's state and callback; `PluginObject` requires both to be
// `Send + Sync`, and the entries live as long as the `PluginBox` they came from.
unsafe impl Send for CallEntry {}
// SAFETY: as for `Send`: a `CallEntry` is only a pair of shared references.
unsafe impl Sync for CallEntry {}

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

    /// The callbacks' direct entry points, indexed by registration id; valid while this
    /// object lives. Calling `entries()[id]` is the same as `call(id, ...)`, minus the
    /// lookup.
    fn entries(&self) -> RSlice<'_, CallEntry>;

    /// Runs the plugin's shutdown; called once, after its last callback.
    fn shutdown(&self, host: HostRef<'_>) -> RResult<(), Error>;

    /// Operations added after 1.0, and operations of the plugin's own, keyed by name.
    /// An operation the plugin does not know returns an error for which
    /// [`Error::is_unsupported`] is true.
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
    /// Reserved for asynchronous callbacks: the result will be delivered later under the
    /// call's request id. No 1.0 SDK returns it, and a host that does not list the
    /// feature treats it as an error.
    pub const PENDING: u8 = 3;
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

/// What the host offers a plugin. Implemented by the host.
#[sabi_trait]
pub trait HostApi: Send + Sync {
    /// The plugin's name as given in the manifest.
    fn plugin_name(&self) -> RStr<'_>;

    /// Writes a line to the host's log under the plugin's name.
    fn log(&self, level: u8, message: RStr<'_>);

    /// Dispatches another event and returns its outcomes: nested in the current emit
    /// when called from a callback, a new outermost emit from an owned handle.
    fn emit(
        &self,
        event: RStr<'_>,
        args: RSlice<'_, crate::value::Entry<'_>>,
    ) -> RResult<RVec<Outcome>, Error>;

    /// What the host's side of the interface supports (see [`feature`]).
    fn features(&self) -> RSlice<'static, RStr<'static>>;

    /// An owned handle to the same host for the same plugin, which the plugin may keep
    /// and use from any thread until its `shutdown` returns.
    fn keep(&self) -> RResult<HostBox, Error>;

    /// Services added after 1.0, keyed by name (see [`operation`]); unknown names return
    /// an error for which [`Error::is_unsupported`] is true.
    #[sabi(last_prefix_field)]
    fn call(&self, operation: RStr<'_>, argument: &Value<'_>) -> RResult<Value<'static>, Error>;
}

/// A borrowed host handle, valid for one call into the plugin.
pub type HostRef<'a> = HostApi_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>;

/// An owned host handle (see [`HostApi::keep`]).
pub type HostBox = HostApi_TO<'static, RBox<()>>;
