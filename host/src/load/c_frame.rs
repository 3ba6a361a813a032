//! What the C callbacks of one emit share: the event's id (`sb_call.event_id`) and its
//! arguments already lowered into `sb_value`s. A C call gets no host handle to ask for the
//! id, and lowering the arguments once per emit instead of once per callback keeps a C
//! callback at one indirect call with nothing made for it. Whoever dispatches (the
//! dispatch loop, a worker process) publishes a frame on its thread for the argument list
//! it hands the plugins, and the C adapter finds it by that list's address: a thread-local
//! read per call, no allocation.
//!
//! A made-up id is kept on the thread beside the published frame and counted up there
//! from the last emit's: the outermost frame of a thread points at it, and a frame
//! published inside another (a nested emit, or an emit from inside a callback) that needs
//! a different one writes its own.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;

use switchboard_plugin_api::abi::ArgsRaw;

use super::c_abi::{SbCall, SbStr, SbValue};
use super::c_value::{lower_flat, sb_str};
use crate::event_id::{EventTag, MadeUpId};

/// The most arguments a frame lowers (flat ones only); an event with more, or with a list
/// or a map, is lowered by each call instead.
pub(super) const INLINE: usize = 8;

/// One emit's shared view for its C callbacks, on the dispatching thread's stack.
pub(crate) struct CFrame {
    /// The argument list it was made for.
    key: *const (),
    /// The call every C callback of the emit gets, but for its `callback` (and, for a
    /// typed callback, its names and values): the event, the request, the id, and the
    /// arguments lowered into `names` and `values` when `lowered`.
    call: SbCall,
    /// Whether every argument was lowered here (at most [`INLINE`], none a list or a map).
    lowered: bool,
    names: [MaybeUninit<SbStr>; INLINE],
    values: [MaybeUninit<SbValue>; INLINE],
    /// The frame published before this one on the thread (nested emits), restored after.
    outer: *const CFrame,
    /// The made-up id, when the thread's could not be used (see [`OnThisThread`]).
    own_id: MaybeUninit<MadeUpId>,
}

/// What the C calls on a thread share.
struct OnThisThread {
    /// The innermost published frame.
    published: Cell<*const CFrame>,
    /// The last made-up id a frame on this thread used: written only while no frame is
    /// published, so that no frame's `event_id` points at it then.
    made_up_id: UnsafeCell<MadeUpId>,
}

thread_local! {
    static ON_THIS_THREAD: OnThisThread = const {
        OnThisThread {
            published: Cell::new(std::ptr::null()),
            made_up_id: UnsafeCell::new(MadeUpId::EMPTY),
        }
    };
}

/// This thread's [`OnThisThread`], valid as long as the thread: it is made without a
/// destructor, so it is never torn down before the thread's last frame is gone.
#[inline]
fn on_this_thread() -> *const OnThisThread {
    ON_THIS_THREAD.with(std::ptr::from_ref)
}

/// While alive, its frame is what the C calls made with the frame's argument list see.
pub(crate) struct Published<'f> {
    frame: &'f CFrame,
}

impl<'f> Published<'f> {
    /// The published frame.
    #[inline]
    pub(crate) fn frame(&self) -> &'f CFrame {
        self.frame
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        // SAFETY: see `on_this_thread`.
        let here = unsafe { &*on_this_thread() };
        here.published.set(self.frame.outer);
    }
}

impl CFrame {
    /// Makes the frame for `args` in `slot`, lowering the arguments, and publishes it with
    /// the event's id for the C calls made with `args` on this thread until the guard
    /// drops. `args` must stay where it is meanwhile (the caller's, on its stack). Nothing
    /// is written to `slot` until this is called, so an emit without C callbacks pays
    /// nothing for it.
    #[inline(always)]
    pub(crate) fn publish<'f>(
        slot: &'f mut MaybeUninit<CFrame>,
        args: &'f ArgsRaw<'_>,
        id: EventTag<'f>,
    ) -> Published<'f> {
        // SAFETY: see `on_this_thread`.
        let here = unsafe { &*on_this_thread() };
        let outer = here.published.get();
        let frame = slot.write(CFrame {
            key: (args as *const ArgsRaw<'_>).cast(),
            call: SbCall {
                struct_size: std::mem::size_of::<SbCall>() as u32,
                callback: 0,
                event: sb_str(args.event.as_str()),
                names: std::ptr::null(),
                values: std::ptr::null(),
                count: 0,
                request_id: args.request,
                event_id: NO_ID,
            },
            lowered: false,
            names: [const { MaybeUninit::uninit() }; INLINE],
            values: [const { MaybeUninit::uninit() }; INLINE],
            outer,
            own_id: MaybeUninit::uninit(),
        });
        frame.call.event_id = match id {
            EventTag::Given(id) => sb_str(id),
            // SAFETY: no frame is published on this thread, so no `event_id` points at the
            // thread's id, and nothing else borrows it (this is its only writer, and
            // finishes with it before returning).
            EventTag::Made(n) if outer.is_null() => {
                sb_str(unsafe { &mut *here.made_up_id.get() }.set(n))
            }
            EventTag::Made(n) => {
                // SAFETY: only read: frames published meanwhile point at it, and it is
                // written only when none is.
                let last = unsafe { &*here.made_up_id.get() };
                if last.is(n) {
                    sb_str(last.as_str())
                } else {
                    sb_str(frame.own_id.write(MadeUpId::EMPTY).set(n))
                }
            }
        };
        if let Some(count) = frame.lower(args) {
            frame.lowered = true;
            frame.call.names = frame.names.as_ptr().cast();
            frame.call.values = frame.values.as_ptr().cast();
            frame.call.count = count;
        }
        here.published.set(frame);
        Published { frame }
    }

    /// Lowers every argument if they are all flat and at most [`INLINE`]: how many.
    #[inline]
    fn lower(&mut self, args: &ArgsRaw<'_>) -> Option<usize> {
        let (names, values) = (args.names.as_slice(), args.values.as_slice());
        if values.len() > INLINE || names.len() != values.len() {
            return None;
        }
        for ((value, name), (value_slot, name_slot)) in values
            .iter()
            .zip(names)
            .zip(self.values.iter_mut().zip(self.names.iter_mut()))
        {
            value_slot.write(lower_flat(value)?);
            name_slot.write(sb_str(name));
        }
        Some(values.len())
    }
}

/// The frame published for `args` on this thread, if any: the event id and, when they
/// could be lowered once, its arguments.
#[inline]
pub(super) fn for_args<'a>(args: &'a ArgsRaw<'_>) -> Option<&'a CFrame> {
    // SAFETY: see `on_this_thread`.
    let frame = unsafe { &*on_this_thread() }.published.get();
    // SAFETY: a published frame stays alive and unmoved (borrowed by its guard) until the
    // guard drops and unpublishes it, and guards drop in reverse order on this thread, so
    // a non-null pointer here is a live frame on a frame of this thread's stack below the
    // current call.
    let frame = unsafe { frame.as_ref() }?;
    (frame.key == (args as *const ArgsRaw<'_>).cast()).then_some(frame)
}

impl CFrame {
    /// The event's id.
    #[inline]
    pub(super) fn id(&self) -> SbStr {
        self.call.event_id
    }

    /// The emit's call, when its arguments were lowered once for every callback: its
    /// `names`, `values` and `count` are then the event's arguments, valid while the frame
    /// is published.
    #[inline]
    pub(super) fn lowered_call(&self) -> Option<&SbCall> {
        self.lowered.then_some(&self.call)
    }
}

/// An empty id, for a call no dispatcher published a frame for (an emit that did not come
/// through a dispatch loop or a worker).
pub(super) const NO_ID: SbStr = SbStr {
    ptr: c"".as_ptr(),
    len: 0,
};

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use abi_stable::std_types::{RSlice, RStr};
    use switchboard_plugin_api::abi::ArgsRaw;

    use super::{for_args, CFrame};
    use crate::event_id::{made_up_id, EventTag};

    fn id_of(frame: &CFrame) -> String {
        let id = frame.id();
        // SAFETY: a published frame's id is valid while it is published.
        let bytes = unsafe { std::slice::from_raw_parts(id.ptr.cast::<u8>(), id.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn args(request: u64) -> ArgsRaw<'static> {
        ArgsRaw {
            event: RStr::from_str("user_joined"),
            names: RSlice::EMPTY,
            values: RSlice::EMPTY,
            request,
        }
    }

    /// The thread's made-up id is counted up only by an outermost frame: a frame published
    /// inside it that needs another id writes its own, and the outer frame's id reads the
    /// same after the inner one is gone.
    #[test]
    fn an_inner_frame_never_changes_the_id_an_outer_one_shows() {
        let (outer_args, inner_args, again_args, given_args) =
            (args(41), args(77), args(42), args(9));
        for n in [40, 41] {
            let mut slot = MaybeUninit::uninit();
            let outer = CFrame::publish(&mut slot, &outer_args, EventTag::Made(n));
            assert_eq!(id_of(outer.frame()), made_up_id(n));
            {
                // A nested emit: the outer emit's id.
                let mut slot = MaybeUninit::uninit();
                let nested = CFrame::publish(&mut slot, &again_args, EventTag::Made(n));
                assert_eq!(id_of(nested.frame()), made_up_id(n));
                // An emit of its own from inside a callback: another id.
                let mut slot = MaybeUninit::uninit();
                let inner = CFrame::publish(&mut slot, &inner_args, EventTag::Made(n + 1));
                assert_eq!(id_of(inner.frame()), made_up_id(n + 1));
                let mut slot = MaybeUninit::uninit();
                let given = CFrame::publish(&mut slot, &given_args, EventTag::Given("signup-7"));
                assert_eq!(id_of(given.frame()), "signup-7");
                assert!(
                    for_args(&inner_args).is_none(),
                    "only the innermost is found"
                );
            }
            assert_eq!(id_of(outer.frame()), made_up_id(n));
            assert!(for_args(&outer_args).is_some_and(|f| id_of(f) == made_up_id(n)));
        }
        assert!(
            for_args(&outer_args).is_none(),
            "unpublished when the guard drops"
        );
    }
}
