//! What the C callbacks of one emit share: the event's id (`sb_call.event_id`) and its
//! arguments already lowered into `sb_value`s. A C call gets no host handle to ask for the
//! id, and lowering the arguments once per emit instead of once per callback keeps a C
//! callback at one indirect call with nothing made for it. Whoever dispatches (the
//! dispatch loop, a worker process) publishes a frame on its thread for the argument list
//! it hands the plugins, and the C adapter finds it by that list's address: a thread-local
//! read per call, no allocation.

use std::cell::Cell;
use std::mem::MaybeUninit;

use switchboard_plugin_api::abi::ArgsRaw;

use super::c_abi::{SbCall, SbStr, SbValue};
use super::c_value::{lower_flat, sb_str};

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
}

thread_local! {
    /// The innermost published frame on this thread.
    static PUBLISHED: Cell<*const CFrame> = const { Cell::new(std::ptr::null()) };
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
        PUBLISHED.set(self.frame.outer);
    }
}

impl CFrame {
    /// Makes the frame for `args` in `slot`, lowering the arguments, and publishes it with
    /// `id` for the C calls made with `args` on this thread until the guard drops. `args`
    /// must stay where it is meanwhile (the caller's, on its stack). Nothing is written
    /// to `slot` until this is called, so an emit without C callbacks pays nothing for it.
    #[inline]
    pub(crate) fn publish<'f>(
        slot: &'f mut MaybeUninit<CFrame>,
        args: &'f ArgsRaw<'_>,
        id: &'f str,
    ) -> Published<'f> {
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
                event_id: sb_str(id),
            },
            lowered: false,
            names: [const { MaybeUninit::uninit() }; INLINE],
            values: [const { MaybeUninit::uninit() }; INLINE],
            outer: std::ptr::null(),
        });
        if let Some(count) = frame.lower(args) {
            frame.lowered = true;
            frame.call.names = frame.names.as_ptr().cast();
            frame.call.values = frame.values.as_ptr().cast();
            frame.call.count = count;
        }
        frame.outer = PUBLISHED.replace(frame);
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
    let frame = PUBLISHED.get();
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
