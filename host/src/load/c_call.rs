//! A started C plugin's state and how its callbacks are called: through its call entry
//! (worker processes, emits no frame lowered), with the emit's frame when one is
//! published, or with arguments lowered for the call alone; the hook called and its
//! reply taken the same way on every path.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, Ordering};

use abi_stable::std_types::{RResult, RString};
use switchboard_plugin_api::abi::{status, ArgsRaw, CallEntry, HostRef};
use switchboard_plugin_api::{Error as PluginError, Value};

use super::c_abi::{self, SbCall, SbHost, SbReply, SbStr, SbValue};
use super::c_frame::{self, CFrame, ThisThread, INLINE};
use super::c_host::borrowed;
use super::c_reply::{take_reply, untouched};
use super::c_table::Table;
use super::c_value::{lower_flat, sb_str, text_of, Lowering, EMPTY_REPLY, NULL};

/// The `on_call` hook's type.
pub(super) type OnCall =
    unsafe extern "C" fn(*mut c_void, *const SbCall, *const SbHost, *mut SbReply) -> i32;

/// A plugin's `on_call` with the state it is called with.
#[derive(Clone, Copy)]
pub(super) struct Hook {
    pub(super) on_call: OnCall,
    pub(super) state: *mut c_void,
}

/// A started C plugin's state, behind a box so that its address (in every call entry)
/// holds while the instance moves.
pub(super) struct Inner {
    pub(super) table: Table,
    pub(super) state: *mut c_void,
    /// Per callback: the names a typed callback reads (its `values` follow them).
    pub(super) reads: Vec<Option<Box<[SbStr]>>>,
    /// Per typed callback: where its reads are among an event's arguments, found once per
    /// argument list (a host passes one list per event and generation, so after a reload
    /// a carried-over plugin finds them again once). Never freed while the plugin lives: a
    /// call on another thread may still read one that a reload replaced (a few bytes per
    /// typed callback per reload; freed with the instance).
    pub(super) positions: Vec<AtomicPtr<Positions>>,
    /// Positions a reload replaced, freed with the instance.
    pub(super) replaced: std::sync::Mutex<Vec<usize>>,
}

/// A typed callback's arguments' places in one event's argument list.
pub(super) struct Positions {
    /// The argument list they were found in (its address and length).
    list: (usize, usize),
    /// Per read argument, its index in the list (`usize::MAX`: not there).
    pub(super) at: Box<[usize]>,
    /// Whether they are the list's first arguments, in its order (`at[n] == n`): the
    /// callback's values are then the emit's lowered arguments as they are.
    pub(super) in_order: bool,
}

impl Positions {
    /// Where `reads` are in `names`, the argument list identified by `list`.
    pub(super) fn find(list: (usize, usize), reads: &[SbStr], names: &[RString]) -> Positions {
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

/// Whether `entry` calls into a C plugin (the dispatch table then calls it as a
/// [`CTarget`](super::c_target::CTarget)).
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
pub(super) unsafe extern "C" fn call_entry(
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

impl Inner {
    /// Calls callback `id` through its generic entry (a worker process, or an emit whose
    /// arguments no frame lowered), with the emit's frame if one was published.
    pub(super) fn call(
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

impl Inner {
    /// Where typed callback `id`'s reads are in `args`, found once per argument list.
    pub(super) fn positions_of(
        &self,
        id: usize,
        reads: &[SbStr],
        args: &ArgsRaw<'_>,
    ) -> &Positions {
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

/// Calls a typed callback whose reads are not the event's first arguments in order: its
/// values (`at`: where each read is among the frame's) picked into an array of its own.
#[inline(never)]
pub(super) fn picked(
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
pub(super) unsafe fn call_hook(
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
