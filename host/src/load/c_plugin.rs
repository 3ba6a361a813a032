//! A started plugin of the C ABI (`plugin-api/include/switchboard.h`): the adapter that
//! makes it the same live plugin (`PluginBox`) a Rust one is, so that dispatch, isolation,
//! breakers, counts and reload treat both kinds alike. Its table is read and checked at
//! load by `c_table`, and its callbacks are called by `c_call`.

use std::ffi::c_void;
use std::sync::atomic::AtomicPtr;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr};
use switchboard_plugin_api::abi::{
    status, ArgsRaw, CallEntry, HostRef, PluginBox, PluginObject, PluginObject_TO,
};
use switchboard_plugin_api::{Error as PluginError, Value};

use super::c_call::{call_entry, Inner};
use super::c_frame;
use super::c_host::with_borrowed;
use super::c_reply::take_reply;
use super::c_table::Table;
use super::c_value::{sb_str, Lowering, EMPTY_REPLY};

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
