//! Plugins of the C ABI (`plugin-api/include/switchboard.h`): their static table read and
//! checked at load, and the adapter that makes a started C plugin the same live plugin
//! (`PluginBox`) a Rust one is, so that dispatch, isolation, breakers, counts and reload
//! treat both kinds alike. Everything a C plugin hands over is checked before it is used.

use std::ffi::c_void;
use std::path::Path;
use std::sync::OnceLock;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use switchboard_plugin_api::abi::{
    feature, level, status, ArgsRaw, CallEntry, HostBox, HostRef, Outcome, PluginBox, PluginObject,
    PluginObject_TO,
};
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::c_abi::{
    self, SbCall, SbCallback, SbEntry, SbHost, SbOutcome, SbOutcomes, SbPlugin, SbReply, SbStr,
    SbValue,
};
use super::c_value::{lift, sb_str, static_text, text_of, Lowering, NULL};
use super::library::{Emits, LibraryInfo, Registered};
use crate::error::LoadError;
use crate::manifest::schema::ArgType;

/// The feature a C-ABI plugin's [`LibraryInfo`] lists: how `inspect`, `list` and a worker's
/// report tell the kinds apart.
pub const C_ABI_FEATURE: &str = "c_abi";

/// The most callbacks, emitted events and arguments per callback a table may list.
const MAX_CALLBACKS: usize = 4096;
const MAX_ARGS: usize = 256;

/// A checked C-ABI plugin table (static in its library, which is never unloaded).
#[derive(Clone, Copy)]
pub(crate) struct Table(&'static SbPlugin);

// SAFETY: the table is static, read-only data of a library that is never unloaded; the
// hooks it points to are required by the header to be callable from any thread.
unsafe impl Send for Table {}
// SAFETY: as for `Send`.
unsafe impl Sync for Table {}

/// What a C-ABI library says about itself, read from its table.
pub(crate) struct Described {
    pub(crate) table: Table,
    pub(crate) info: LibraryInfo,
    pub(crate) registrations: Vec<Registered>,
    pub(crate) emits: Vec<Emits>,
}

/// Calls the library's entry point and checks its table: sizes, versions, strings,
/// callbacks, arguments and the hooks it must have.
///
/// # Safety
///
/// `entry` must be the library's `switchboard_plugin` export; the pointers in the table it
/// returns must be valid as the header says (every count and size is checked).
pub(crate) unsafe fn describe(
    plugin: &str,
    path: &Path,
    entry: c_abi::EntryPoint,
) -> Result<Described, LoadError> {
    let broken = |problem: String| LoadError::CAbi {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        problem,
    };
    // SAFETY: the caller's promise: a function of the header's type.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(broken(
            "`switchboard_plugin` returned NULL instead of its table".into(),
        ));
    }
    // The size first: the table may be shorter than this host's (an older minor).
    // SAFETY: a non-null table starts with its u32 size and the two versions.
    let (size, major, minor) = unsafe {
        let t = table.cast::<u32>();
        (
            *t,
            *table.cast::<u8>().add(4).cast::<u16>(),
            *table.cast::<u8>().add(6).cast::<u16>(),
        )
    };
    if major != c_abi::ABI_MAJOR {
        return Err(LoadError::CAbiVersion {
            plugin: plugin.to_owned(),
            path: path.to_owned(),
            plugin_abi: format!("{major}.{minor}"),
            host_abi: format!("{}.{}", c_abi::ABI_MAJOR, c_abi::ABI_MINOR),
        });
    }
    let ours = std::mem::size_of::<SbPlugin>();
    if (size as usize) < ours {
        return Err(broken(format!(
            "its table says it is {size} bytes, smaller than the {ours} bytes of a C ABI 1.0 table (`struct_size` must be sizeof(sb_plugin))"
        )));
    }
    // SAFETY: the table is at least as large as this host's `SbPlugin`, so every field
    // read below is inside it.
    let table: &'static SbPlugin = unsafe { &*table };
    // SAFETY (static_text below): pointers of the table, valid by the caller's promise.
    let name = unsafe { static_text(table.name, "its name") }.map_err(broken)?;
    let version = unsafe { static_text(table.version, "its version") }.map_err(broken)?;
    if table.on_call.is_none() {
        return Err(broken(
            "its table has no `on_call` hook (it is required)".into(),
        ));
    }
    if table.callback_count > MAX_CALLBACKS || table.emit_count > MAX_CALLBACKS {
        return Err(broken(format!(
            "its table lists {} callbacks and {} emitted events; at most {MAX_CALLBACKS} each",
            table.callback_count, table.emit_count
        )));
    }
    let stride = table.callback_size;
    if table.callback_count > 0 {
        if stride < std::mem::size_of::<SbCallback>() {
            return Err(broken(format!(
                "its `callback_size` is {stride}, smaller than sizeof(sb_callback) = {}",
                std::mem::size_of::<SbCallback>()
            )));
        }
        if table.callbacks.is_null() {
            return Err(broken(format!(
                "it lists {} callbacks but `callbacks` is NULL",
                table.callback_count
            )));
        }
    }
    let mut registrations = Vec::with_capacity(table.callback_count);
    let mut typed = false;
    for index in 0..table.callback_count {
        // SAFETY: `callbacks` holds `callback_count` entries of `callback_size` bytes, each
        // starting with this host's `SbCallback` (stride checked above).
        let callback: &SbCallback = unsafe {
            &*table
                .callbacks
                .cast::<u8>()
                .add(index * stride)
                .cast::<SbCallback>()
        };
        let what = |field: &str| format!("callback {index}'s `{field}`");
        // SAFETY: pointers of the table.
        let event = unsafe { static_text(callback.event, &what("event")) }.map_err(broken)?;
        let callback_name = unsafe { static_text(callback.name, &what("name")) }.map_err(broken)?;
        let reads = if callback.flags & c_abi::CALLBACK_TYPED != 0 {
            typed = true;
            // SAFETY: pointers of the table.
            Some(
                unsafe { args(callback.reads, callback.read_count, &callback_name) }
                    .map_err(broken)?,
            )
        } else {
            None
        };
        registrations.push(Registered {
            event,
            callback: callback_name,
            priority: callback.priority,
            reads,
            id: index as u32,
        });
    }
    if table.emit_count > 0 && table.emits.is_null() {
        return Err(broken(format!(
            "it lists {} emitted events but `emits` is NULL",
            table.emit_count
        )));
    }
    let mut emits = Vec::with_capacity(table.emit_count);
    for index in 0..table.emit_count {
        // SAFETY: `emits` holds `emit_count` entries (checked non-null above).
        let emit = unsafe { &*table.emits.add(index) };
        let what = format!("emitted event {index}");
        // SAFETY: pointers of the table.
        let event =
            unsafe { static_text(emit.event, &format!("{what}'s name")) }.map_err(broken)?;
        // SAFETY: pointers of the table.
        let args = unsafe { args(emit.args, emit.arg_count, &what) }.map_err(broken)?;
        emits.push(Emits { event, args });
    }
    let mut features = vec![C_ABI_FEATURE.to_owned(), feature::REQUEST_IDS.to_owned()];
    if typed {
        features.push(feature::TYPED_ARGS.to_owned());
    }
    if table.on_control.is_some() {
        features.push(feature::CONTROL.to_owned());
    }
    Ok(Described {
        table: Table(table),
        info: LibraryInfo {
            name,
            version,
            api_version: format!("{major}.{minor}"),
            features,
        },
        registrations,
        emits,
    })
}

/// `(name, type)` pairs of an `sb_arg` array, each type one a manifest can write.
///
/// # Safety
///
/// A non-null `args` must hold `count` entries whose strings are valid.
unsafe fn args(
    args: *const c_abi::SbArg,
    count: usize,
    whose: &str,
) -> Result<Vec<(String, String)>, String> {
    if count > MAX_ARGS {
        return Err(format!(
            "{whose} lists {count} arguments; at most {MAX_ARGS}"
        ));
    }
    if count > 0 && args.is_null() {
        return Err(format!(
            "{whose} lists {count} arguments but points to none (NULL)"
        ));
    }
    let mut pairs = Vec::with_capacity(count);
    for n in 0..count {
        // SAFETY: `count` entries at `args` (non-null when count > 0).
        let arg = unsafe { &*args.add(n) };
        // SAFETY: strings of the table.
        let name = unsafe { static_text(arg.name, &format!("{whose}'s argument {n}")) }?;
        // SAFETY: as above.
        let kind = unsafe { static_text(arg.kind, &format!("the type of {whose}'s `{name}`")) }?;
        ArgType::parse(&kind)
            .map_err(|e| format!("{whose}'s argument `{name}` has type `{kind}`: {e}"))?;
        pairs.push((name, kind));
    }
    Ok(pairs)
}

impl Table {
    /// Runs the plugin's `on_init` with its config; the live plugin, or the plugin's error.
    pub(crate) fn init(
        self,
        config: &Value<'_>,
        host: HostRef<'_>,
    ) -> RResult<PluginBox, PluginError> {
        let mut state: *mut c_void = std::ptr::null_mut();
        if let Some(on_init) = self.0.on_init {
            let mut lowering = Lowering::default();
            let config = lowering.lower(config);
            let shim = Shim::new(Handle::Borrowed(host));
            let mut reply = empty_reply();
            // SAFETY: the hook's contract: a host, a config and a reply valid for the call,
            // and a place for the state.
            let code = unsafe { on_init(&shim.sb, &config, &mut state, &mut reply) };
            // SAFETY: the reply the plugin filled for this call.
            if let Err(error) = unsafe { take_reply(code, &reply, "on_init") } {
                return RResult::RErr(error);
            }
        }
        let inner = Box::new(Inner { table: self, state });
        let count = self.0.callback_count;
        let instance = Instance {
            entries: (0..count)
                .map(|id| CallEntry {
                    call: call_entry,
                    state: (&*inner as *const Inner).cast(),
                    data: id as *const (),
                })
                .collect(),
            inner,
        };
        RResult::ROk(PluginObject_TO::from_value(instance, TD_Opaque))
    }
}

/// A started C plugin's state, behind a box so that its address (in every call entry)
/// holds while the instance moves.
struct Inner {
    table: Table,
    state: *mut c_void,
}

/// A started C plugin, as the host's live-plugin interface.
struct Instance {
    inner: Box<Inner>,
    entries: Vec<CallEntry>,
}

// SAFETY: the header requires a plugin's state to be safe to use from several threads at
// once (`on_call` "is called from several threads at once"); the rest is plain data.
unsafe impl Send for Instance {}
// SAFETY: as for `Send`.
unsafe impl Sync for Instance {}

thread_local! {
    /// The arrays one call lowers its arguments into, reused from call to call; a nested
    /// call on the same thread takes fresh ones.
    static BUFFERS: std::cell::Cell<Option<Box<Buffers>>> = const { std::cell::Cell::new(None) };
}

#[derive(Default)]
struct Buffers {
    names: Vec<SbStr>,
    values: Vec<SbValue>,
    nested: Lowering,
}

/// A call entry's function: `state` is the instance's `Inner`, `data` the callback's index.
///
/// # Safety
///
/// `state` must point to a live `Inner` (the instance owns it and outlives its entries).
unsafe extern "C" fn call_entry(
    state: *const (),
    data: *const (),
    args: &ArgsRaw<'_>,
    host: HostRef<'_>,
    result: &mut RResult<Value<'static>, PluginError>,
) -> u8 {
    // SAFETY: the caller's promise.
    let inner = unsafe { &*state.cast::<Inner>() };
    inner.call(data as usize as u32, args, host, result)
}

impl Inner {
    fn call(
        &self,
        id: u32,
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, PluginError>,
    ) -> u8 {
        let Some(on_call) = self.table.0.on_call else {
            *result = RResult::RErr(PluginError::new("the plugin has no `on_call` hook"));
            return status::ERROR;
        };
        let mut buffers = BUFFERS.take().unwrap_or_default();
        buffers.names.clear();
        buffers.values.clear();
        buffers.nested.clear();
        buffers.names.extend(args.names.iter().map(|n| sb_str(n)));
        for value in args.values.iter() {
            let lowered = buffers.nested.lower(value);
            buffers.values.push(lowered);
        }
        let call = SbCall {
            struct_size: std::mem::size_of::<SbCall>() as u32,
            callback: id,
            event: sb_str(args.event.as_str()),
            names: buffers.names.as_ptr(),
            values: buffers.values.as_ptr(),
            count: buffers.values.len(),
            request_id: args.request,
            event_id: sb_str(""),
        };
        let shim = Shim::new(Handle::Borrowed(host));
        let mut reply = empty_reply();
        // SAFETY: the hook's contract: the plugin's state, a call whose arrays live in
        // `buffers` and `args` for the call, a host and a reply valid for the call.
        let code = unsafe { on_call(self.state, &call, &shim.sb, &mut reply) };
        // SAFETY: the reply the plugin filled for this call.
        let answer = unsafe { take_reply(code, &reply, "on_call") };
        BUFFERS.set(Some(buffers));
        match answer {
            Ok(value) if value.is_null() => status::NULL,
            Ok(value) => {
                *result = RResult::ROk(value);
                status::VALUE
            }
            Err(error) => {
                *result = RResult::RErr(error);
                status::ERROR
            }
        }
    }
}

impl PluginObject for Instance {
    fn call(
        &self,
        id: u32,
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, PluginError>,
    ) -> u8 {
        if id as usize >= self.entries.len() {
            *result = RResult::RErr(PluginError::new(format!("the plugin has no callback {id}")));
            return status::ERROR;
        }
        self.inner.call(id, args, host, result)
    }

    fn entries(&self) -> RSlice<'_, CallEntry> {
        RSlice::from_slice(&self.entries)
    }

    fn shutdown(&self, host: HostRef<'_>) -> RResult<(), PluginError> {
        let Some(on_shutdown) = self.inner.table.0.on_shutdown else {
            return RResult::ROk(());
        };
        let shim = Shim::new(Handle::Borrowed(host));
        let mut reply = empty_reply();
        // SAFETY: the hook's contract, as for `on_call`.
        let code = unsafe { on_shutdown(self.inner.state, &shim.sb, &mut reply) };
        // SAFETY: the reply the plugin filled for this call.
        unsafe { take_reply(code, &reply, "on_shutdown") }
            .map(|_| ())
            .into()
    }

    fn control(
        &self,
        operation: RStr<'_>,
        argument: &Value<'_>,
        host: HostRef<'_>,
    ) -> RResult<Value<'static>, PluginError> {
        let Some(on_control) = self.inner.table.0.on_control else {
            return RResult::RErr(PluginError::unsupported(format!(
                "the plugin answers no control operations (`{operation}` asked)"
            )));
        };
        let mut lowering = Lowering::default();
        let argument = lowering.lower(argument);
        let shim = Shim::new(Handle::Borrowed(host));
        let mut reply = empty_reply();
        // SAFETY: the hook's contract, as for `on_call`.
        let code = unsafe {
            on_control(
                self.inner.state,
                sb_str(operation.as_str()),
                &argument,
                &shim.sb,
                &mut reply,
            )
        };
        // SAFETY: the reply the plugin filled for this call.
        unsafe { take_reply(code, &reply, "on_control") }.into()
    }
}

/// A reply as the host hands it to a hook: null value, no error, no release.
fn empty_reply() -> SbReply {
    SbReply {
        struct_size: std::mem::size_of::<SbReply>() as u32,
        reserved: 0,
        value: NULL,
        error: std::ptr::null(),
        help: std::ptr::null(),
        release: None,
        release_data: std::ptr::null_mut(),
    }
}

/// What a hook's status and reply say, copied and checked; the plugin's `release` is called
/// once the copy is made, whatever it held.
///
/// # Safety
///
/// `reply` must be the reply the plugin filled for this call (its pointers valid until
/// `release`).
unsafe fn take_reply(
    code: i32,
    reply: &SbReply,
    hook: &str,
) -> Result<Value<'static>, PluginError> {
    let answer = match code {
        // SAFETY: the plugin's value, valid until release.
        c_abi::OK => unsafe { lift(&reply.value) }.map_err(|why| {
            PluginError::new(format!("the plugin's {hook} answered a bad value: {why}"))
                .with_help("fix the plugin: every value must follow switchboard.h")
        }),
        c_abi::ERROR => {
            // SAFETY: strings of the reply, valid until release.
            let message = unsafe { optional_text(reply.error) }
                .unwrap_or_else(|why| Some(format!("(its error message {why})")))
                .unwrap_or_else(|| format!("the plugin's {hook} failed without a message"));
            // SAFETY: as above.
            let help = unsafe { optional_text(reply.help) }.unwrap_or_default();
            let error = PluginError::new(message);
            Err(match help {
                Some(help) => error.with_help(help),
                None => error,
            })
        }
        c_abi::PENDING => Err(PluginError::new(format!(
            "the plugin's {hook} answered SB_PENDING (a result to come later), which this host (C ABI {}.{}) does not support yet",
            c_abi::ABI_MAJOR,
            c_abi::ABI_MINOR
        ))
        .with_help("answer SB_OK or SB_ERROR")),
        other => Err(PluginError::new(format!(
            "the plugin's {hook} returned status {other}, which is not a status of the C ABI (SB_OK 0, SB_ERROR 1)"
        ))
        .with_help("fix the plugin: return SB_OK or SB_ERROR")),
    };
    if let Some(release) = reply.release {
        // SAFETY: the plugin's own function with its own data, called once, after the
        // host has copied everything it needs from the reply.
        unsafe { release(reply.release_data) };
    }
    answer
}

/// A reply's optional NUL-terminated text.
///
/// # Safety
///
/// As for `static_text`.
unsafe fn optional_text(ptr: *const std::ffi::c_char) -> Result<Option<String>, String> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's promise.
    unsafe { static_text(ptr, "text") }.map(Some)
}

/// The host handle a C plugin holds: an `sb_host` (first, so that the pointer the plugin
/// passes back is the shim's) over the host's own handle.
#[repr(C)]
struct Shim<'h> {
    sb: SbHost,
    handle: Handle<'h>,
    /// The manifest's folder, asked once.
    manifest_dir: OnceLock<String>,
}

/// The handle under a shim: borrowed for one hook, or owned (kept by the plugin).
enum Handle<'h> {
    Borrowed(HostRef<'h>),
    Owned(HostBox),
}

macro_rules! with_handle {
    ($handle:expr, $h:ident => $body:expr) => {
        match $handle {
            Handle::Borrowed($h) => $body,
            Handle::Owned($h) => $body,
        }
    };
}

impl<'h> Shim<'h> {
    fn new(handle: Handle<'h>) -> Shim<'h> {
        Shim {
            sb: SbHost {
                struct_size: std::mem::size_of::<SbHost>() as u32,
                abi_major: c_abi::ABI_MAJOR,
                abi_minor: c_abi::ABI_MINOR,
                host_data: std::ptr::null_mut(),
                callback_plugin_name: host_plugin_name,
                callback_log: host_log,
                callback_emit: host_emit,
                callback_outcomes_free: host_outcomes_free,
                callback_has_feature: host_has_feature,
                callback_manifest_dir: host_manifest_dir,
                callback_keep: host_keep,
                callback_release: host_release,
            },
            handle,
            manifest_dir: OnceLock::new(),
        }
    }
}

/// The shim behind a host pointer a plugin passes back.
///
/// # Safety
///
/// `host` must be a pointer the host handed the plugin, still valid (borrowed for the
/// running hook, or kept and not released).
unsafe fn shim<'a>(host: *const SbHost) -> &'a Shim<'a> {
    // SAFETY: the caller's promise; `sb` is the first field of the `#[repr(C)]` shim.
    unsafe { &*host.cast::<Shim<'a>>() }
}

unsafe extern "C" fn host_plugin_name(host: *const SbHost) -> SbStr {
    // SAFETY: the header's contract for host pointers.
    let shim = unsafe { shim(host) };
    with_handle!(&shim.handle, h => sb_str(h.plugin_name().as_str()))
}

unsafe extern "C" fn host_log(host: *const SbHost, log_level: i32, message: SbStr) {
    // SAFETY: the header's contract for host pointers.
    let shim = unsafe { shim(host) };
    // SAFETY: the plugin's borrowed string for this call.
    let text = match unsafe { text_of(message) } {
        Ok(text) => text.to_owned(),
        Err(why) => format!("(a log message that {why})"),
    };
    let level = match log_level {
        i32::MIN..=1 => level::ERROR,
        2 => level::WARN,
        3 => level::INFO,
        _ => level::DEBUG,
    };
    with_handle!(&shim.handle, h => h.log(level, RStr::from(text.as_str())));
}

/// The outcomes handed to a plugin, kept until it frees them.
struct Handed {
    items: Vec<SbOutcome>,
    _strings: Vec<String>,
    _values: Vec<Value<'static>>,
    _lowering: Lowering,
}

unsafe extern "C" fn host_emit(
    host: *const SbHost,
    event: SbStr,
    args: *const SbEntry,
    count: usize,
    outcomes: *mut SbOutcomes,
) -> i32 {
    if outcomes.is_null() {
        return c_abi::ERROR;
    }
    // SAFETY: the header's contract for host pointers.
    let shim = unsafe { shim(host) };
    // SAFETY: the plugin's borrowed arguments, checked as they are copied.
    let emitted = unsafe { emit(shim, event, args, count) };
    let (code, handed) = match emitted {
        Ok(list) => (c_abi::OK, hand(list)),
        Err(error) => (
            c_abi::ERROR,
            hand(vec![Outcome::new("", "", Err(PluginError::new(error)))]),
        ),
    };
    let handed = Box::new(handed);
    // SAFETY: `outcomes` is the plugin's, non-null, valid for one write.
    unsafe {
        *outcomes = SbOutcomes {
            items: handed.items.as_ptr(),
            count: handed.items.len(),
            host_data: Box::into_raw(handed).cast(),
        }
    };
    code
}

/// Copies a plugin's emit in and makes it.
///
/// # Safety
///
/// `args` must be valid for `count` entries, as the header requires.
unsafe fn emit(
    shim: &Shim<'_>,
    event: SbStr,
    args: *const SbEntry,
    count: usize,
) -> Result<Vec<Outcome>, String> {
    // SAFETY: the caller's promise.
    let event = unsafe { text_of(event) }.map_err(|why| format!("the event name {why}"))?;
    if count > 0 && args.is_null() {
        return Err(format!(
            "the emit of `{event}` lists {count} arguments but points to none"
        ));
    }
    let mut entries = Vec::with_capacity(count);
    for n in 0..count {
        // SAFETY: `count` entries at `args`, checked non-null.
        let entry = unsafe { &*args.add(n) };
        // SAFETY: the plugin's borrowed strings and values.
        let key =
            unsafe { text_of(entry.key) }.map_err(|why| format!("argument {n}'s name {why}"))?;
        // SAFETY: as above.
        let value =
            unsafe { lift(&entry.value) }.map_err(|why| format!("argument `{key}`: {why}"))?;
        entries.push(Entry::new(key, value));
    }
    let answer =
        with_handle!(&shim.handle, h => h.emit(RStr::from(event), RSlice::from_slice(&entries)));
    answer
        .into_result()
        .map(RVec::into_vec)
        .map_err(|e| e.message().to_owned())
}

/// Outcomes in the C layout, with the storage they point into.
fn hand(list: Vec<Outcome>) -> Handed {
    let mut strings = Vec::with_capacity(list.len() * 3);
    let mut values = Vec::with_capacity(list.len());
    for outcome in &list {
        strings.push(outcome.plugin().to_owned());
        strings.push(outcome.callback().to_owned());
        match outcome.result() {
            Ok(value) => {
                strings.push(String::new());
                values.push(value.clone());
            }
            Err(error) => {
                strings.push(error.message().to_owned());
                values.push(Value::NULL);
            }
        }
    }
    let mut lowering = Lowering::default();
    let items = list
        .iter()
        .enumerate()
        .map(|(n, outcome)| SbOutcome {
            plugin: sb_str(&strings[n * 3]),
            callback: sb_str(&strings[n * 3 + 1]),
            status: if outcome.result().is_ok() {
                c_abi::OK
            } else {
                c_abi::ERROR
            },
            reserved: 0,
            value: lowering.lower(&values[n]),
            error: sb_str(&strings[n * 3 + 2]),
        })
        .collect();
    Handed {
        items,
        _strings: strings,
        _values: values,
        _lowering: lowering,
    }
}

unsafe extern "C" fn host_outcomes_free(_host: *const SbHost, outcomes: *mut SbOutcomes) {
    if outcomes.is_null() {
        return;
    }
    // SAFETY: the plugin's pointer to outcomes this host filled in `host_emit`.
    let outcomes = unsafe { &mut *outcomes };
    if !outcomes.host_data.is_null() {
        // SAFETY: `host_data` is the box `host_emit` leaked, freed once (then cleared).
        drop(unsafe { Box::from_raw(outcomes.host_data.cast::<Handed>()) });
    }
    outcomes.host_data = std::ptr::null_mut();
    outcomes.items = std::ptr::null();
    outcomes.count = 0;
}

unsafe extern "C" fn host_has_feature(host: *const SbHost, name: SbStr) -> i32 {
    // SAFETY: the header's contract for host pointers.
    let shim = unsafe { shim(host) };
    // SAFETY: the plugin's borrowed string.
    let Ok(name) = (unsafe { text_of(name) }) else {
        return 0;
    };
    let features = with_handle!(&shim.handle, h => h.features());
    i32::from(features.iter().any(|f| f.as_str() == name))
}

unsafe extern "C" fn host_manifest_dir(host: *const SbHost) -> SbStr {
    // SAFETY: the header's contract for host pointers.
    let shim = unsafe { shim(host) };
    let dir = shim.manifest_dir.get_or_init(|| {
        let answer =
            with_handle!(&shim.handle, h => h.call(RStr::from("manifest_dir"), &Value::NULL));
        answer
            .into_result()
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    sb_str(dir)
}

unsafe extern "C" fn host_keep(host: *const SbHost) -> *const SbHost {
    // SAFETY: the header's contract for host pointers.
    let shim = unsafe { shim(host) };
    let kept = with_handle!(&shim.handle, h => h.keep());
    match kept.into_result() {
        Ok(owned) => {
            let kept: Box<Shim<'static>> = Box::new(Shim::new(Handle::Owned(owned)));
            Box::into_raw(kept).cast::<SbHost>()
        }
        Err(_) => std::ptr::null(),
    }
}

unsafe extern "C" fn host_release(kept: *const SbHost) {
    if kept.is_null() {
        return;
    }
    // SAFETY: a pointer `host_keep` returned, released once (the header's contract).
    drop(unsafe { Box::from_raw(kept.cast::<Shim<'static>>().cast_mut()) });
}
