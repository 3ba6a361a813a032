//! The event id a C callback sees (`sb_call.event_id`). A C call gets no host handle to
//! ask for it, so whoever dispatches (the dispatch loop, a worker process) publishes the
//! id on its thread for the argument list it hands the plugins, and the C adapter reads
//! it back by that list's address: a thread-local read per call, no allocation.

use std::cell::Cell;

use switchboard_plugin_api::abi::ArgsRaw;

use super::c_abi::SbStr;

/// The argument list's address and the id's bytes.
type Entry = (*const (), *const u8, usize);

thread_local! {
    /// The innermost publication on this thread (each restores the outer one).
    static PUBLISHED: Cell<Entry> = const { Cell::new((std::ptr::null(), std::ptr::null(), 0)) };
}

/// While alive, `id` is the event id of the calls made with its argument list.
pub(crate) struct Published<'a> {
    outer: Entry,
    _id: std::marker::PhantomData<&'a str>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        PUBLISHED.set(self.outer);
    }
}

/// Publishes `id` for the C calls made with `args` on this thread, until the guard drops.
/// `args` must stay where it is meanwhile (the caller's, on its stack).
#[inline]
pub(crate) fn publish<'a>(args: &'a ArgsRaw<'_>, id: &'a str) -> Published<'a> {
    let entry = ((args as *const ArgsRaw<'_>).cast(), id.as_ptr(), id.len());
    Published {
        outer: PUBLISHED.replace(entry),
        _id: std::marker::PhantomData,
    }
}

/// The id published for `args`, or empty (the host dispatches it without one: an emit
/// that did not come through a dispatch loop or a worker).
#[inline]
pub(super) fn for_args(args: &ArgsRaw<'_>) -> SbStr {
    let (key, ptr, len) = PUBLISHED.get();
    if key == (args as *const ArgsRaw<'_>).cast() {
        // The published id outlives this call: its guard is alive on a frame below it.
        SbStr {
            ptr: ptr.cast(),
            len,
        }
    } else {
        SbStr {
            ptr: "".as_ptr().cast(),
            len: 0,
        }
    }
}
