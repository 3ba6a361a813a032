//! What the C callbacks of one emit share: the event's id (`sb_call.event_id`) and its
//! arguments already lowered into `sb_value`s. A C call gets no host handle to ask for the
//! id, and lowering the arguments once per emit instead of once per callback keeps a C
//! callback at one indirect call with nothing made for it. Whoever dispatches (the
//! dispatch loop, a worker process) publishes a frame on its thread for the argument list
//! it hands the plugins, and the C adapter finds it by that list's address: a thread-local
//! read per call, no allocation.
//!
//! A made-up id is kept on the thread beside the published frame and made there from the
//! last emit's (see `MadeUpId`): the outermost frame of a thread points at it, and a frame
//! published inside another (a nested emit, or an emit from inside a callback) that needs
//! a different one writes its own.
//!
//! The thread's state also holds the host handle of the C hook running on it, which the
//! one static `sb_host` stands for (see `c_host`); a frame keeps the thread's address, so
//! that its calls lend their handle without looking the thread-local up again.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;

use switchboard_plugin_api::abi::{ArgsRaw, HostRef};

use super::c_abi::{SbCall, SbReply, SbStr, SbValue};
use super::c_value::{lower_flat_into, sb_str, EMPTY_REPLY};
use crate::event_id::{EventTag, MadeUpId};

/// The most arguments a frame lowers (flat ones only); an event with more, or with a list
/// or a map, is lowered by each call instead.
pub(super) const INLINE: usize = 8;

/// One emit's shared view for its C callbacks, on the dispatching thread's stack.
pub(crate) struct CFrame {
    /// The argument list it was made for.
    key: *const (),
    /// The call every C callback of the emit gets: the event, the request, the id, and the
    /// arguments' values lowered into `values` when `lowered`. Each call writes its
    /// `callback`, `names` and `count` in place just before it is made (see
    /// [`CFrame::call_for`]); nothing else writes it while the frame is published.
    call: UnsafeCell<SbCall>,
    /// How many arguments were lowered here, when all were (at most [`INLINE`], none a
    /// list or a map, one value per name).
    lowered: Option<usize>,
    values: [MaybeUninit<SbValue>; INLINE],
    /// The frame published before this one on the thread (nested emits), restored after.
    outer: *const CFrame,
    /// The thread it is published on.
    thread: ThisThread,
    /// The handle of the C callback running with the frame: while the frame is published,
    /// the thread's hook handle points here, and each call writes its own handle here
    /// before it is made ([`CFrame::lend`]). Unwritten before the first call, when no C
    /// code runs on the thread to read it.
    host: UnsafeCell<MaybeUninit<HostRef<'static>>>,
    /// The thread's hook handle when the frame was published, restored with it.
    outer_host: *const HostRef<'static>,
    /// The reply every C callback of the emit gets, as `EMPTY_REPLY` makes it between
    /// calls (each call leaves it so: see `c_call::call_hook`), so that a call writes no
    /// fresh one: the thread's for an outermost frame, the slot's own for one published
    /// inside another (whose running call has the outer one's).
    reply: *mut SbReply,
}

/// Room on the dispatching thread's stack for a [`CFrame`] and, when the thread's cannot
/// serve (a frame published inside another), its own made-up id and reply: nothing is
/// written to it until [`CFrame::publish`], so an emit without C callbacks pays nothing
/// for it.
pub(crate) struct FrameSlot {
    frame: MaybeUninit<CFrame>,
    own_id: MaybeUninit<MadeUpId>,
    own_reply: MaybeUninit<SbReply>,
}

impl FrameSlot {
    /// An empty slot.
    #[inline(always)]
    pub(crate) fn new() -> FrameSlot {
        FrameSlot {
            frame: MaybeUninit::uninit(),
            own_id: MaybeUninit::uninit(),
            own_reply: MaybeUninit::uninit(),
        }
    }
}

/// What the C calls on a thread share.
struct OnThisThread {
    /// The innermost published frame.
    published: Cell<*const CFrame>,
    /// The last made-up id a frame on this thread used: written only while no frame is
    /// published, so that no frame's `event_id` points at it then.
    made_up_id: UnsafeCell<MadeUpId>,
    /// The handle of the hook running on this thread, which the borrowed `sb_host` stands
    /// for: lent around a hook ([`ThisThread::lend`]), or a published frame's slot, written
    /// before each of its calls ([`CFrame::lend`]); null when neither.
    hook_host: Cell<*const HostRef<'static>>,
    /// The reply the calls of outermost frames share, as `EMPTY_REPLY` makes it between
    /// calls (so that no emit writes a fresh one).
    reply: UnsafeCell<SbReply>,
}

thread_local! {
    static ON_THIS_THREAD: OnThisThread = const {
        OnThisThread {
            published: Cell::new(std::ptr::null()),
            made_up_id: UnsafeCell::new(MadeUpId::EMPTY),
            hook_host: Cell::new(std::ptr::null()),
            reply: UnsafeCell::new(EMPTY_REPLY),
        }
    };
}

/// This thread's [`OnThisThread`], found once and kept where a loop needs it often; valid
/// as long as the thread (made without a destructor, so never torn down before the
/// thread's last frame or hook is gone). Neither `Send` nor `Sync`: it stays on its thread.
#[derive(Clone, Copy)]
pub(super) struct ThisThread(*const OnThisThread);

impl ThisThread {
    /// The calling thread's.
    #[inline(always)]
    pub(super) fn get() -> ThisThread {
        ThisThread(ON_THIS_THREAD.with(std::ptr::from_ref))
    }

    #[inline(always)]
    fn state(self) -> &'static OnThisThread {
        // SAFETY: see `ThisThread`: alive as long as the thread, and only used on it.
        unsafe { &*self.0 }
    }

    /// Runs `hook` with `host` as the handle the borrowed `sb_host` stands for on this
    /// thread, restoring the outer hook's after (hooks nest: a callback's emit runs other
    /// callbacks on the same thread).
    #[inline(always)]
    pub(super) fn lend<R>(self, host: &HostRef<'_>, hook: impl FnOnce() -> R) -> R {
        let here = self.state();
        let outer = here
            .hook_host
            .replace(std::ptr::from_ref(host).cast::<HostRef<'static>>());
        let answer = hook();
        here.hook_host.set(outer);
        answer
    }

    /// The handle of the hook running on this thread (see `OnThisThread::hook_host`), or
    /// null.
    pub(super) fn hook_host(self) -> *const HostRef<'static> {
        self.state().hook_host.get()
    }
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
    #[inline(always)]
    fn drop(&mut self) {
        let here = self.frame.thread.state();
        here.published.set(self.frame.outer);
        here.hook_host.set(self.frame.outer_host);
    }
}

impl CFrame {
    /// Makes the frame for `args` in `slot`, lowering the arguments, and publishes it with
    /// the event's id for the C calls made with `args` on this thread until the guard
    /// drops. `args` must stay where it is meanwhile (the caller's, on its stack).
    #[inline(always)]
    pub(crate) fn publish<'f>(
        slot: &'f mut FrameSlot,
        args: &'f ArgsRaw<'_>,
        id: EventTag<'f>,
    ) -> Published<'f> {
        let FrameSlot {
            frame: slot,
            own_id,
            own_reply,
        } = slot;
        let thread = ThisThread::get();
        let here = thread.state();
        let outer = here.published.get();
        let event_id = match id {
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
                    sb_str(own_id.write(MadeUpId::EMPTY).set(n))
                }
            }
        };
        let frame = slot.write(CFrame {
            key: std::ptr::from_ref(args).cast(),
            call: UnsafeCell::new(SbCall {
                struct_size: std::mem::size_of::<SbCall>() as u32,
                callback: 0,
                event: sb_str(args.event.as_str()),
                names: std::ptr::null(),
                values: std::ptr::null(),
                count: 0,
                request_id: args.request,
                event_id,
            }),
            lowered: None,
            values: [const { MaybeUninit::uninit() }; INLINE],
            outer,
            thread,
            host: UnsafeCell::new(MaybeUninit::uninit()),
            outer_host: here.hook_host.get(),
            reply: if outer.is_null() {
                here.reply.get()
            } else {
                own_reply.write(EMPTY_REPLY)
            },
        });
        if let Some(count) = frame.lower(args) {
            frame.lowered = Some(count);
            let call = frame.call.get_mut();
            call.values = frame.values.as_ptr().cast();
            call.count = count;
        }
        here.published.set(frame);
        here.hook_host
            .set(frame.host.get().cast::<HostRef<'static>>().cast_const());
        Published { frame }
    }

    /// Lowers every argument's value if they are all flat, at most [`INLINE`] and one per
    /// name: how many.
    #[inline(always)]
    fn lower(&mut self, args: &ArgsRaw<'_>) -> Option<usize> {
        let values = args.values.as_slice();
        if values.len() > INLINE || args.names.len() != values.len() {
            return None;
        }
        for (slot, value) in self.values.iter_mut().zip(values) {
            if !lower_flat_into(slot, value) {
                return None;
            }
        }
        Some(values.len())
    }
}

/// The frame published for `args` on this thread, if any: the event id and, when they
/// could be lowered once, its arguments.
#[inline]
pub(super) fn for_args<'a>(args: &'a ArgsRaw<'_>) -> Option<&'a CFrame> {
    let frame = ThisThread::get().state().published.get();
    // SAFETY: a published frame stays alive and unmoved (borrowed by its guard) until the
    // guard drops and unpublishes it, and guards drop in reverse order on this thread, so
    // a non-null pointer here is a live frame on a frame of this thread's stack below the
    // current call.
    let frame = unsafe { frame.as_ref() }?;
    (frame.key == std::ptr::from_ref(args).cast()).then_some(frame)
}

impl CFrame {
    /// The event's id.
    #[inline]
    pub(super) fn id(&self) -> SbStr {
        // SAFETY: read while no call is being made with it (calls are made by the thread
        // that reads, and the field is never written after `publish`).
        unsafe { (*self.call.get()).event_id }
    }

    /// The thread the frame is published on.
    #[inline(always)]
    pub(super) fn thread(&self) -> ThisThread {
        self.thread
    }

    /// Makes `host` the handle the borrowed `sb_host` stands for on the frame's thread,
    /// for the call about to be made (until the next call's, or the frame is gone): the
    /// thread points at the frame's slot from `publish` on, so this is two stores, where
    /// lending it for each call would also save and restore the thread's.
    #[inline(always)]
    pub(super) fn lend(&self, host: HostRef<'_>) {
        // SAFETY: the frame's thread alone makes calls with the frame, one at a time, and
        // nothing reads the slot between them (no C code runs on the thread then: a hook
        // that runs is a call's, which lends first, or lends its own and restores the
        // frame's after). The handle is read only while the call it was lent for runs
        // (and releases its reply), which its borrow outlives.
        unsafe { self.host.get().cast::<HostRef<'_>>().write(host) };
    }

    /// A copy of the emit's call, when its arguments were lowered once for every callback:
    /// its `values` and `count` are then the event's arguments' values (valid while the
    /// frame is published), its `names` null.
    #[inline]
    pub(super) fn lowered_call(&self) -> Option<SbCall> {
        // SAFETY: as in `id`: no call is being made with it while its thread reads it.
        self.lowered.map(|_| unsafe { *self.call.get() })
    }

    /// The emit's call for callback `callback` reading `names` with the first `count`
    /// lowered values (`count` at most the lowered count), written in place, and the
    /// emit's reply: what the plugin's hook gets. `None` when the arguments were not
    /// lowered here.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // the frame's cell, used by one call at a time
    pub(super) fn call_for(
        &self,
        callback: u32,
        names: *const SbStr,
        count: usize,
    ) -> Option<(*const SbCall, &mut SbReply)> {
        let lowered = self.lowered?;
        let call = self.call.get();
        // SAFETY: the frame's thread is the only one that makes calls with it (it is
        // published on that thread alone), and no call with it is under way: a hook gets
        // the pointer for its own call only, and this runs between calls. Nested emits
        // publish frames of their own.
        unsafe {
            (*call).callback = callback;
            (*call).names = names;
            (*call).count = count.min(lowered);
        }
        // SAFETY: as for the call: one call at a time on the frame's thread has it (the
        // thread's is used by outermost frames only, of which a thread has one at a
        // time), and the `&mut` ends with that call (the caller's, until it returns).
        let reply = unsafe { &mut *self.reply };
        Some((call.cast_const(), reply))
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
    use abi_stable::std_types::{RSlice, RStr};
    use switchboard_plugin_api::abi::ArgsRaw;

    use super::{for_args, CFrame, FrameSlot};
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

    /// The thread's made-up id is rewritten only by an outermost frame: a frame published
    /// inside it that needs another id writes its own, and the outer frame's id reads the
    /// same after the inner one is gone.
    #[test]
    fn an_inner_frame_never_changes_the_id_an_outer_one_shows() {
        let (outer_args, inner_args, again_args, given_args) =
            (args(41), args(77), args(42), args(9));
        for n in [40, 41] {
            let mut slot = FrameSlot::new();
            let outer = CFrame::publish(&mut slot, &outer_args, EventTag::Made(n));
            assert_eq!(id_of(outer.frame()), made_up_id(n));
            {
                // A nested emit: the outer emit's id.
                let mut slot = FrameSlot::new();
                let nested = CFrame::publish(&mut slot, &again_args, EventTag::Made(n));
                assert_eq!(id_of(nested.frame()), made_up_id(n));
                // An emit of its own from inside a callback: another id.
                let mut slot = FrameSlot::new();
                let inner = CFrame::publish(&mut slot, &inner_args, EventTag::Made(n + 1));
                assert_eq!(id_of(inner.frame()), made_up_id(n + 1));
                let mut slot = FrameSlot::new();
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
