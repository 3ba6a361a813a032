//! The services a C plugin's `sb_host` offers (log, emit, its name, the manifest's folder,
//! feature queries, keeping a handle for its own threads), over the host handle of the hook
//! that runs: one static `sb_host` for every hook, which finds that handle in its thread's
//! state (`c_frame::ThisThread`), so that nothing is built per call and a pointer kept
//! past its hook reaches nothing.

use std::sync::OnceLock;

use abi_stable::std_types::{RSlice, RStr, RVec};
use switchboard_plugin_api::abi::{level, HostBox, HostRef, Outcome};
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::c_abi::{self, SbEntry, SbHost, SbOutcome, SbOutcomes, SbStr};
use super::c_frame::ThisThread;
use super::c_value::{lift, sb_str, slice, text_of, Lowering};

/// An `sb_host` of fixed content.
struct StaticHost(SbHost);

// SAFETY: function pointers and a null data pointer, never written: shared reads only.
unsafe impl Sync for StaticHost {}

/// The `sb_host` every hook receives for its call ("borrowed for the call"): its services
/// act on the handle of the hook running on the calling thread, so nothing is built per
/// call. A plugin that keeps it past its hook, or passes it to another thread, reaches no
/// handle there: its services then do nothing and report failure.
static BORROWED: StaticHost = StaticHost(SbHost {
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
});

/// Runs `hook` with [`BORROWED`] standing for `host`.
pub(super) fn with_borrowed<R>(host: HostRef<'_>, hook: impl FnOnce(*const SbHost) -> R) -> R {
    ThisThread::get().lend(&host, || hook(borrowed()))
}

/// The `sb_host` every hook receives: it stands for the handle its thread lends while
/// the hook runs ([`ThisThread::lend`]).
#[inline(always)]
pub(super) fn borrowed() -> *const SbHost {
    &BORROWED.0
}

/// A handle a plugin kept (`callback_keep`): an `sb_host` (first, so that the pointer the
/// plugin holds is this box's) over an owned host handle.
#[repr(C)]
struct Kept {
    sb: SbHost,
    host: HostBox,
    /// The manifest's folder, asked once.
    manifest_dir: OnceLock<String>,
}

/// What a host pointer a plugin passes back stands for.
enum Via<'a> {
    Borrowed(&'a HostRef<'static>),
    Kept(&'a Kept),
}

macro_rules! with_handle {
    ($via:expr, $h:ident => $body:expr) => {
        match $via {
            Via::Borrowed($h) => $body,
            Via::Kept(kept) => {
                let $h = &kept.host;
                $body
            }
        }
    };
}

/// The handle behind `host`: the running hook's for [`BORROWED`], a kept one's otherwise;
/// `None` for the borrowed host used outside its hook, or a null pointer.
///
/// # Safety
///
/// `host` must be [`BORROWED`], null, or a pointer `host_keep` returned and not released.
unsafe fn via<'a>(host: *const SbHost) -> Option<Via<'a>> {
    if std::ptr::eq(host, &BORROWED.0) {
        // SAFETY: the thread's hook handle points to the running hook's handle while that
        // hook runs on this thread (on the stack of the caller of `ThisThread::lend`, or
        // in the slot of the frame whose call it is), and is null when no hook or frame
        // is under way; no C code runs on the thread between a frame's calls.
        return unsafe { ThisThread::get().hook_host().as_ref() }.map(Via::Borrowed);
    }
    if host.is_null() {
        return None;
    }
    // SAFETY: the caller's promise; `sb` is the first field of the `#[repr(C)]` box.
    Some(Via::Kept(unsafe { &*host.cast::<Kept>() }))
}

/// A folder's text, kept for the life of the process (a borrowed handle's answer must
/// outlive the call; there are as many as manifests this host reads).
fn interned(text: String) -> &'static str {
    static KEPT: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = kept.iter().find(|k| **k == text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    kept.push(leaked);
    leaked
}

unsafe extern "C" fn host_plugin_name(host: *const SbHost) -> SbStr {
    // SAFETY: the header's contract for host pointers.
    let Some(via) = (unsafe { via(host) }) else {
        return sb_str("");
    };
    with_handle!(via, h => sb_str(h.plugin_name().as_str()))
}

unsafe extern "C" fn host_log(host: *const SbHost, log_level: i32, message: SbStr) {
    // SAFETY: the header's contract for host pointers.
    let Some(via) = (unsafe { via(host) }) else {
        return;
    };
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
    with_handle!(via, h => h.log(level, RStr::from(text.as_str())));
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
    let emitted = match unsafe { via(host) } {
        // SAFETY: the plugin's borrowed arguments, checked as they are copied.
        Some(via) => unsafe { emit(via, event, args, count) },
        None => Err("this host handle was borrowed for a hook that has returned; keep one with callback_keep".to_owned()),
    };
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
    via: Via<'_>,
    event: SbStr,
    args: *const SbEntry,
    count: usize,
) -> Result<Vec<Outcome>, String> {
    // SAFETY: the caller's promise.
    let event = unsafe { text_of(event) }.map_err(|why| format!("the event name {why}"))?;
    // SAFETY: the caller's promise: `count` entries at a non-null `args`.
    let args = unsafe { slice(args, count) }
        .map_err(|why| format!("the arguments of the emit of `{event}` {why}"))?;
    let mut entries = Vec::with_capacity(count);
    for (n, entry) in args.iter().enumerate() {
        // SAFETY: the plugin's borrowed strings and values.
        let key =
            unsafe { text_of(entry.key) }.map_err(|why| format!("argument {n}'s name {why}"))?;
        // SAFETY: as above.
        let value =
            unsafe { lift(&entry.value) }.map_err(|why| format!("argument `{key}`: {why}"))?;
        entries.push(Entry::new(key, value));
    }
    let answer = with_handle!(via, h => h.emit(RStr::from(event), RSlice::from_slice(&entries)));
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
    let Some(via) = (unsafe { via(host) }) else {
        return 0;
    };
    // SAFETY: the plugin's borrowed string.
    let Ok(name) = (unsafe { text_of(name) }) else {
        return 0;
    };
    let features = with_handle!(via, h => h.features());
    i32::from(features.iter().any(|f| f.as_str() == name))
}

unsafe extern "C" fn host_manifest_dir(host: *const SbHost) -> SbStr {
    // SAFETY: the header's contract for host pointers.
    let Some(via) = (unsafe { via(host) }) else {
        return sb_str("");
    };
    let asked = || {
        let answer = with_handle!(&via, h => h.call(RStr::from("manifest_dir"), &Value::NULL));
        answer
            .into_result()
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    match &via {
        Via::Kept(kept) => sb_str(kept.manifest_dir.get_or_init(asked)),
        Via::Borrowed(_) => sb_str(interned(asked())),
    }
}

unsafe extern "C" fn host_keep(host: *const SbHost) -> *const SbHost {
    // SAFETY: the header's contract for host pointers.
    let Some(via) = (unsafe { via(host) }) else {
        return std::ptr::null();
    };
    let kept = with_handle!(via, h => h.keep());
    match kept.into_result() {
        Ok(owned) => {
            let kept = Box::new(Kept {
                sb: SbHost {
                    host_data: std::ptr::null_mut(),
                    ..BORROWED.0
                },
                host: owned,
                manifest_dir: OnceLock::new(),
            });
            Box::into_raw(kept).cast::<SbHost>()
        }
        Err(_) => std::ptr::null(),
    }
}

unsafe extern "C" fn host_release(kept: *const SbHost) {
    if kept.is_null() || std::ptr::eq(kept, &BORROWED.0) {
        return; // the borrowed handle is not the plugin's to release
    }
    // SAFETY: a pointer `host_keep` returned, released once (the header's contract).
    drop(unsafe { Box::from_raw(kept.cast::<Kept>().cast_mut()) });
}
