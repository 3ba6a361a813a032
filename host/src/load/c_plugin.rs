//! Plugins of the C ABI (`plugin-api/include/switchboard.h`): their static table read and
//! checked at load, and the adapter that makes a started C plugin the same live plugin
//! (`PluginBox`) a Rust one is, so that dispatch, isolation, breakers, counts and reload
//! treat both kinds alike. Everything a C plugin hands over is checked before it is used.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RString};
use switchboard_plugin_api::abi::{
    feature, status, ArgsRaw, CallEntry, HostRef, PluginBox, PluginObject, PluginObject_TO,
};
use switchboard_plugin_api::{Error as PluginError, Value};

use super::c_abi::{self, SbCall, SbCallback, SbHost, SbPlugin, SbReply, SbStr, SbValue};
use super::c_frame::{self, CFrame, ThisThread, INLINE};
use super::c_host::{borrowed, with_borrowed};
use super::c_value::{
    lift, lower_flat, sb_str, slice, static_text, text_of, Lowering, EMPTY_REPLY, NULL,
};
use super::declared::{Emits, LibraryInfo, Registered};
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
        host_abi: format!("{}.{}", c_abi::ABI_MAJOR, c_abi::ABI_MINOR),
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
    // SAFETY: the caller's promise: `count` entries at a non-null `args`.
    let args = unsafe { slice(args, count) }.map_err(|why| format!("{whose}'s arguments {why}"))?;
    let mut pairs = Vec::with_capacity(count);
    for (n, arg) in args.iter().enumerate() {
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
            let mut reply = EMPTY_REPLY;
            // SAFETY: the hook's contract: a host, a config and a reply valid for the call,
            // and a place for the state.
            let code = with_borrowed(host, |sb| unsafe {
                on_init(sb, &config, &mut state, &mut reply)
            });
            // SAFETY: the reply the plugin filled for this call.
            if let Err(error) = unsafe { take_reply(code, &reply, "on_init") } {
                return RResult::RErr(error);
            }
        }
        let count = self.0.callback_count;
        let inner = Box::new(Inner {
            table: self,
            state,
            reads: (0..count).map(|id| self.reads(id)).collect(),
            positions: (0..count)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            replaced: std::sync::Mutex::default(),
        });
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

impl Table {
    /// The argument names typed callback `id` reads, borrowed from the static table (the
    /// table was checked at load); `None` for a callback that reads by name.
    fn reads(self, id: usize) -> Option<Box<[SbStr]>> {
        // SAFETY: `id` is below `callback_count`, and entries are `callback_size` apart
        // (both checked when the table was read); the names are checked static strings.
        let callback = unsafe {
            &*self
                .0
                .callbacks
                .cast::<u8>()
                .add(id * self.0.callback_size)
                .cast::<SbCallback>()
        };
        if callback.flags & c_abi::CALLBACK_TYPED == 0 {
            return None;
        }
        Some(
            (0..callback.read_count)
                .map(|n| {
                    // SAFETY: as above: `read_count` checked arguments.
                    let name = unsafe { std::ffi::CStr::from_ptr((*callback.reads.add(n)).name) };
                    SbStr {
                        ptr: name.as_ptr(),
                        len: name.to_bytes().len(),
                    }
                })
                .collect(),
        )
    }
}

/// A started C plugin's state, behind a box so that its address (in every call entry)
/// holds while the instance moves.
struct Inner {
    table: Table,
    state: *mut c_void,
    /// Per callback: the names a typed callback reads (its `values` follow them).
    reads: Vec<Option<Box<[SbStr]>>>,
    /// Per typed callback: where its reads are among an event's arguments, found once per
    /// argument list (a host passes one list per event and generation, so after a reload
    /// a carried-over plugin finds them again once). Never freed while the plugin lives: a
    /// call on another thread may still read one that a reload replaced (a few bytes per
    /// typed callback per reload; freed with the instance).
    positions: Vec<AtomicPtr<Positions>>,
    /// Positions a reload replaced, freed with the instance.
    replaced: std::sync::Mutex<Vec<usize>>,
}

/// A typed callback's arguments' places in one event's argument list.
struct Positions {
    /// The argument list they were found in (its address and length).
    list: (usize, usize),
    /// Per read argument, its index in the list (`usize::MAX`: not there).
    at: Box<[usize]>,
    /// Whether they are the list's first arguments, in its order (`at[n] == n`): the
    /// callback's values are then the emit's lowered arguments as they are.
    in_order: bool,
}

impl Positions {
    /// Where `reads` are in `names`, the argument list identified by `list`.
    fn find(list: (usize, usize), reads: &[SbStr], names: &[RString]) -> Positions {
        let at: Box<[usize]> = reads
            .iter()
            .map(|read| {
                // SAFETY: the table's checked static names.
                let read = unsafe { text_of(*read) }.unwrap_or_default();
                names
                    .iter()
                    .position(|name| name.as_str() == read)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let in_order = at.iter().enumerate().all(|(n, &at)| n == at);
        Positions { list, at, in_order }
    }
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

/// Whether `entry` calls into a C plugin (the dispatch table then calls it as a
/// [`CTarget`]).
pub(crate) fn is_c_entry(entry: &CallEntry) -> bool {
    std::ptr::fn_addr_eq(
        entry.call,
        call_entry as switchboard_plugin_api::abi::CallFn,
    )
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
    let frame = c_frame::for_args(args);
    inner.call(data as usize as u32, args, frame, host, result)
}

/// The `on_call` hook's type.
type OnCall = unsafe extern "C" fn(*mut c_void, *const SbCall, *const SbHost, *mut SbReply) -> i32;

/// A plugin's `on_call` with the state it is called with.
#[derive(Clone, Copy)]
struct Hook {
    on_call: OnCall,
    state: *mut c_void,
}

/// A C callback as the dispatch loop calls it: straight into the plugin's `on_call`, with
/// the emit's shared call and the callback's names and values chosen when the dispatch
/// table was made (the table knows the event's argument list), so that a call is three
/// stores and one indirect call, with nothing looked up or lowered.
pub(crate) struct CTarget {
    /// The generic entry, for an emit whose arguments a frame could not lower.
    entry: CallEntry,
    hook: Hook,
    callback: u32,
    /// The names a call with the frame's lowered values gets, and how many values: a
    /// typed callback whose reads are the event's first arguments in order, its reads;
    /// one that reads by name, every argument's name (in `_event_names`). `None`: a typed
    /// callback whose values are picked from the frame's ([`picked`]).
    names: Option<(*const SbStr, usize)>,
    /// The event's argument names, for a callback that reads by name (`names` points into
    /// them; a box, so that the address holds while the target moves).
    _event_names: Box<[SbStr]>,
    /// A typed callback's reads (its values follow them), at most [`INLINE`].
    reads: Option<&'static [SbStr]>,
    /// Where the reads are among the event's arguments.
    positions: Positions,
}

// SAFETY: as for `Instance`: the state is required to be usable from several threads at
// once, and the rest is read-only data of the static table and of the generation.
unsafe impl Send for CTarget {}
// SAFETY: as for `Send`.
unsafe impl Sync for CTarget {}

impl CTarget {
    /// `entry` as a direct C target for an event whose arguments are `names`, or `None`
    /// when it is not a C plugin's (or reads more arguments than a frame holds).
    ///
    /// # Safety
    ///
    /// `entry` must be alive (its instance not dropped), and `names` must not move or
    /// change, for as long as the target is kept (the generation owns all three).
    pub(crate) unsafe fn of(entry: &CallEntry, names: &[RString]) -> Option<CTarget> {
        if !is_c_entry(entry) {
            return None;
        }
        // SAFETY: a C entry's state is its instance's `Inner`, alive (the caller's promise).
        let inner = unsafe { &*entry.state.cast::<Inner>() };
        let callback = entry.data as usize;
        let on_call = inner.table.0.on_call?;
        let reads: Option<&[SbStr]> = inner.reads.get(callback)?.as_deref();
        // SAFETY: the reads live in the instance, which outlives the target (as above);
        // the lifetime only spares a pointer and a length.
        let reads: Option<&'static [SbStr]> = reads.map(|r| unsafe { &*(r as *const [SbStr]) });
        let list = (names.as_ptr() as usize, names.len());
        let positions = Positions::find(list, reads.unwrap_or_default(), names);
        if positions.at.len() > INLINE {
            return None;
        }
        let event_names: Box<[SbStr]> = match reads {
            Some(_) => Box::default(),
            None => names.iter().map(|name| sb_str(name)).collect(),
        };
        let names = match reads {
            Some(reads) if positions.in_order => Some((reads.as_ptr(), reads.len())),
            Some(_) => None,
            None => Some((event_names.as_ptr(), event_names.len())),
        };
        Some(CTarget {
            entry: *entry,
            hook: Hook {
                on_call,
                state: inner.state,
            },
            callback: callback as u32,
            names,
            _event_names: event_names,
            reads,
            positions,
        })
    }

    /// Calls the callback for the emit whose C view is `frame` (made for `args`; the
    /// arguments are lowered for this call alone without one).
    #[inline(always)]
    pub(crate) fn call(
        &self,
        frame: Option<&CFrame>,
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, PluginError>,
    ) -> u8 {
        if let (Some(frame), Some((names, count))) = (frame, self.names) {
            if let Some((call, reply)) = frame.call_for(self.callback, names, count) {
                frame.lend(host);
                // SAFETY: the frame's call holds its lowered values, `count` of them at
                // least (the event's names pair with them one to one, and the reads are
                // its first arguments); `names` holds `count` (the target's or the
                // table's, both alive while the target is); the frame's reply is empty
                // between calls.
                return unsafe { call_hook(self.hook, call, reply, result) };
            }
        }
        self.unlowered(frame, args, host, result)
    }

    /// Calls a typed callback whose values are picked from the frame's, or any callback of
    /// an emit whose arguments no frame lowered (through its instance, which lowers them
    /// for it).
    #[inline(never)]
    fn unlowered(
        &self,
        frame: Option<&CFrame>,
        args: &ArgsRaw<'_>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, PluginError>,
    ) -> u8 {
        if let (Some(frame), Some(reads)) = (frame, self.reads) {
            if let Some(mut call) = frame.lowered_call() {
                call.callback = self.callback;
                let at = &self.positions.at;
                return picked(self.hook, call, reads, at, frame.thread(), host, result);
            }
        }
        // SAFETY: the entry's state is its instance's `Inner`, alive while the target is.
        let inner = unsafe { &*self.entry.state.cast::<Inner>() };
        inner.call(self.callback, args, frame, host, result)
    }
}

/// Calls a typed callback whose reads are not the event's first arguments in order: its
/// values (`at`: where each read is among the frame's) picked into an array of its own.
#[inline(never)]
fn picked(
    hook: Hook,
    mut call: SbCall,
    reads: &[SbStr],
    at: &[usize],
    thread: ThisThread,
    host: HostRef<'_>,
    result: &mut RResult<Value<'static>, PluginError>,
) -> u8 {
    let mut values = [const { MaybeUninit::<SbValue>::uninit() }; INLINE];
    // SAFETY: the frame's call holds its `count` lowered values.
    let lowered = unsafe { std::slice::from_raw_parts(call.values, call.count) };
    for (slot, &at) in values.iter_mut().zip(at) {
        slot.write(lowered.get(at).copied().unwrap_or(NULL));
    }
    call.names = reads.as_ptr();
    call.values = values.as_ptr().cast();
    call.count = reads.len().min(INLINE);
    // SAFETY: `values` holds the `reads.len()` (at most INLINE) values, on this stack.
    unsafe { call_hook_lent(hook, &call, thread, host, result) }
}

/// Calls `on_call` with `call` and `reply` and turns its status and reply into the host's
/// answer, leaving `reply` as [`EMPTY_REPLY`] again for the next call. The caller lends
/// the call's host handle.
///
/// # Safety
///
/// `call` must be valid for the call, its `count` names and values initialized; `state`
/// must be the plugin's; `reply` as [`EMPTY_REPLY`] makes it.
#[inline(always)]
unsafe fn call_hook(
    hook: Hook,
    call: *const SbCall,
    reply: &mut SbReply,
    result: &mut RResult<Value<'static>, PluginError>,
) -> u8 {
    let Hook { on_call, state } = hook;
    // SAFETY: the hook's contract: the plugin's state, a call valid for the call (the
    // caller's promise), a host (lent by the caller) and a reply valid for the call.
    let code = unsafe { on_call(state, call, borrowed(), reply) };
    // The common answer, nothing, with the reply as it was given: nothing to copy,
    // release or write back.
    if code == c_abi::OK && untouched(reply) {
        return status::NULL;
    }
    // SAFETY: the reply the plugin filled for this call.
    let taken = unsafe { take_reply(code, reply, "on_call") };
    *reply = EMPTY_REPLY;
    match taken {
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

/// [`call_hook`] with `host` lent on `thread` for the call alone.
///
/// # Safety
///
/// As for [`call_hook`]; `thread` must be the calling thread's.
unsafe fn call_hook_lent(
    hook: Hook,
    call: *const SbCall,
    thread: ThisThread,
    host: HostRef<'_>,
    result: &mut RResult<Value<'static>, PluginError>,
) -> u8 {
    let mut reply = EMPTY_REPLY;
    // SAFETY: the caller's promise, and a fresh reply.
    thread.lend(&host, || unsafe {
        call_hook(hook, call, &mut reply, result)
    })
}

/// Whether a hook left `reply` exactly as [`EMPTY_REPLY`] made it: then it answered
/// nothing, and the next call can have it as it is (zeroed, as the header promises). Loads
/// only, where writing a fresh reply for every call would be ten stores.
#[inline(always)]
fn untouched(reply: &SbReply) -> bool {
    reply.struct_size == std::mem::size_of::<SbReply>() as u32
        && reply.reserved == 0
        && reply.value.kind == c_abi::kind::NULL
        && reply.value.reserved == 0
        // SAFETY: any bytes are a valid pointer and length, which span the union's 16.
        && unsafe { reply.value.value.string.ptr.is_null() && reply.value.value.string.len == 0 }
        && reply.error.is_null()
        && reply.help.is_null()
        && reply.release.is_none()
        && reply.release_data.is_null()
}

impl Inner {
    /// Calls callback `id` through its generic entry (a worker process, or an emit whose
    /// arguments no frame lowered), with the emit's frame if one was published.
    fn call(
        &self,
        id: u32,
        args: &ArgsRaw<'_>,
        frame: Option<&CFrame>,
        host: HostRef<'_>,
        result: &mut RResult<Value<'static>, PluginError>,
    ) -> u8 {
        let Some(on_call) = self.table.0.on_call else {
            *result = RResult::RErr(PluginError::new("the plugin has no `on_call` hook"));
            return status::ERROR;
        };
        let hook = Hook {
            on_call,
            state: self.state,
        };
        let thread = frame.map_or_else(ThisThread::get, CFrame::thread);
        let reads = self.reads.get(id as usize).and_then(Option::as_deref);
        if let Some(mut call) = frame.and_then(CFrame::lowered_call) {
            // The emit's arguments were lowered once for all its C callbacks.
            call.callback = id;
            match reads {
                None => {
                    // Every argument, by name: the names beside the frame's values (as
                    // many: a frame lowers only lists with one value per name).
                    let mut names = [const { MaybeUninit::<SbStr>::uninit() }; INLINE];
                    for (slot, name) in names.iter_mut().zip(args.names.iter()) {
                        slot.write(sb_str(name));
                    }
                    call.names = names.as_ptr().cast();
                    call.count = call.count.min(args.names.len());
                    // SAFETY: `count` values (the frame's) and names (on this stack).
                    return unsafe { call_hook_lent(hook, &call, thread, host, result) };
                }
                Some(reads) if reads.len() <= INLINE => {
                    let positions = self.positions_of(id as usize, reads, args);
                    if !positions.in_order {
                        let at = &positions.at;
                        return picked(hook, call, reads, at, thread, host, result);
                    }
                    // Its reads are the event's first arguments, in order: the frame's.
                    call.names = reads.as_ptr();
                    call.count = reads.len().min(call.count);
                    // SAFETY: the frame's values and the table's names, `count` of each.
                    return unsafe { call_hook_lent(hook, &call, thread, host, result) };
                }
                Some(_) => {}
            }
        }
        let mut values = [const { MaybeUninit::<SbValue>::uninit() }; INLINE];
        let mut spill: Option<Box<Spill>> = None;
        let call = self.lowered_here(id, reads, args, frame, &mut values, &mut spill);
        // SAFETY: the call's names and values are initialized for its count (the frame's,
        // `values` on this stack, or `spill`, all alive until the hook returns).
        unsafe { call_hook_lent(hook, &call, thread, host, result) }
    }
}

impl Inner {
    /// The call for callback `id` with its arguments lowered for it alone: when no frame
    /// lowered them for the whole emit (an event with lists, maps or more than [`INLINE`]
    /// arguments, or a call from outside a dispatch loop). Up to [`INLINE`] flat ones go
    /// in `values`, on the caller's stack; more, or lists and maps, in `spill`.
    #[cold]
    fn lowered_here(
        &self,
        id: u32,
        reads: Option<&[SbStr]>,
        args: &ArgsRaw<'_>,
        frame: Option<&CFrame>,
        values: &mut [MaybeUninit<SbValue>; INLINE],
        spill: &mut Option<Box<Spill>>,
    ) -> SbCall {
        let (names, values, count): (*const SbStr, *const SbValue, usize) = match reads {
            Some(reads) => {
                let at = &self.positions_of(id as usize, reads, args).at;
                let picked = at.iter().map(|&at| args.values.get(at));
                match lower_inline(values, picked.clone()) {
                    Some(count) => (reads.as_ptr(), values.as_ptr().cast(), count),
                    None => {
                        let spill = spill.insert(Box::default());
                        let Spill {
                            values, lowering, ..
                        } = &mut **spill;
                        values.extend(picked.map(|v| v.map_or(NULL, |v| lowering.lower(v))));
                        (reads.as_ptr(), values.as_ptr(), values.len())
                    }
                }
            }
            None => {
                let spill = spill.insert(Box::default());
                let Spill {
                    names,
                    values,
                    lowering,
                } = &mut **spill;
                names.extend(args.names.iter().map(|n| sb_str(n)));
                values.extend(args.values.iter().map(|v| lowering.lower(v)));
                (names.as_ptr(), values.as_ptr(), values.len())
            }
        };
        SbCall {
            struct_size: std::mem::size_of::<SbCall>() as u32,
            callback: id,
            event: sb_str(args.event.as_str()),
            names,
            values,
            count,
            request_id: args.request,
            event_id: frame.map_or(c_frame::NO_ID, CFrame::id),
        }
    }
}

/// Arguments that do not fit on the stack (more than [`INLINE`], or lists and maps).
#[derive(Default)]
struct Spill {
    names: Vec<SbStr>,
    values: Vec<SbValue>,
    lowering: Lowering,
}

/// Lowers `given` (`None`: an argument not there) into `slots` if they are flat and fit;
/// how many were written.
fn lower_inline<'v>(
    slots: &mut [MaybeUninit<SbValue>; INLINE],
    given: impl Iterator<Item = Option<&'v Value<'v>>>,
) -> Option<usize> {
    let mut count = 0;
    for value in given {
        let slot = slots.get_mut(count)?;
        slot.write(match value {
            Some(value) => lower_flat(value)?,
            None => NULL,
        });
        count += 1;
    }
    Some(count)
}

impl Inner {
    /// Where typed callback `id`'s reads are in `args`, found once per argument list.
    fn positions_of(&self, id: usize, reads: &[SbStr], args: &ArgsRaw<'_>) -> &Positions {
        let list = (args.names.as_ptr() as usize, args.names.len());
        let known = self.positions[id].load(Ordering::Acquire);
        // SAFETY: a non-null pointer here came from `Box::into_raw` below and is never
        // freed while the instance lives (see `positions`).
        if let Some(known) = unsafe { known.as_ref() } {
            if known.list == list {
                return known;
            }
        }
        let found = Box::into_raw(Box::new(Positions::find(list, reads, &args.names)));
        // The one replaced, if any, is kept (another thread may be reading it) and freed
        // with the instance.
        let replaced = self.positions[id].swap(found, Ordering::AcqRel);
        if !replaced.is_null() {
            self.replaced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(replaced as usize);
        }
        // SAFETY: just made, and never freed while the instance lives.
        unsafe { &*found }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let replaced =
            std::mem::take(&mut *self.replaced.lock().unwrap_or_else(|e| e.into_inner()));
        let current = self
            .positions
            .iter()
            .map(|p| p.load(Ordering::Acquire) as usize);
        for pointer in replaced.into_iter().chain(current).filter(|&p| p != 0) {
            // SAFETY: every pointer came from `Box::into_raw` in `positions_of`, once, and
            // no call runs any more: the instance is being dropped.
            drop(unsafe { Box::from_raw(pointer as *mut Positions) });
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
        self.inner
            .call(id, args, c_frame::for_args(args), host, result)
    }

    fn entries(&self) -> RSlice<'_, CallEntry> {
        RSlice::from_slice(&self.entries)
    }

    fn shutdown(&self, host: HostRef<'_>) -> RResult<(), PluginError> {
        let Some(on_shutdown) = self.inner.table.0.on_shutdown else {
            return RResult::ROk(());
        };
        let mut reply = EMPTY_REPLY;
        // SAFETY: the hook's contract, as for `on_call`.
        let code = with_borrowed(host, |sb| unsafe {
            on_shutdown(self.inner.state, sb, &mut reply)
        });
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
        let mut reply = EMPTY_REPLY;
        // SAFETY: the hook's contract, as for `on_call`.
        let code = with_borrowed(host, |sb| unsafe {
            on_control(
                self.inner.state,
                sb_str(operation.as_str()),
                &argument,
                sb,
                &mut reply,
            )
        });
        // SAFETY: the reply the plugin filled for this call.
        unsafe { take_reply(code, &reply, "on_control") }.into()
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
