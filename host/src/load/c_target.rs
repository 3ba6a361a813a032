//! A C callback as the dispatch table holds it ([`CTarget`]): the emit's shared call with
//! the callback's names and values chosen when the table was made, so that a call is three
//! stores and one indirect call.

use abi_stable::std_types::{RResult, RString};
use switchboard_plugin_api::abi::{ArgsRaw, CallEntry, HostRef};
use switchboard_plugin_api::{Error as PluginError, Value};

use super::c_abi::SbStr;
use super::c_call::{call_hook, is_c_entry, picked, Hook, Inner, Positions};
use super::c_frame::{CFrame, INLINE};
use super::c_value::sb_str;

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
