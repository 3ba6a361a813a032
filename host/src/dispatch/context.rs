//! The host handle plugins receive: logging under the plugin's name and nested emits, and
//! the chain of emits that led to a call.

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use switchboard_plugin_api::abi::{level, operation, HostApi, HostApi_TO, HostRef, Outcome};
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::generation::Generation;

/// The chain of emits that led to the current one, for the depth limit and its message.
pub(crate) struct Frame<'p> {
    pub(crate) event: &'p str,
    pub(crate) depth: u32,
    pub(crate) parent: Option<&'p Frame<'p>>,
}

impl<'p> Frame<'p> {
    /// The outermost emit.
    pub(crate) fn root(event: &'p str) -> Frame<'p> {
        Frame {
            event,
            depth: 1,
            parent: None,
        }
    }

    /// The events from the outermost emit to this one.
    pub(crate) fn chain(&self) -> Vec<String> {
        let mut chain = vec![self.event.to_owned()];
        let mut frame = self.parent;
        while let Some(f) = frame {
            chain.push(f.event.to_owned());
            frame = f.parent;
        }
        chain.reverse();
        chain
    }
}

/// What a plugin is doing when it calls back into the host.
enum Phase<'p> {
    Init,
    Callback(&'p Frame<'p>),
    Shutdown,
}

/// The context of one call into a plugin; lives on the stack for that call.
pub(crate) struct CallCtx<'b> {
    board: &'b Generation,
    plugin: &'b str,
    phase: Phase<'b>,
}

impl<'b> CallCtx<'b> {
    pub(crate) fn for_init(board: &'b Generation, plugin: &'b str) -> Self {
        CallCtx {
            board,
            plugin,
            phase: Phase::Init,
        }
    }

    pub(crate) fn for_callback(
        board: &'b Generation,
        plugin: &'b str,
        frame: &'b Frame<'b>,
    ) -> Self {
        CallCtx {
            board,
            plugin,
            phase: Phase::Callback(frame),
        }
    }

    pub(crate) fn for_shutdown(board: &'b Generation, plugin: &'b str) -> Self {
        CallCtx {
            board,
            plugin,
            phase: Phase::Shutdown,
        }
    }

    /// A borrowed handle to pass across the boundary; no allocation.
    pub(crate) fn handle(&self) -> HostRef<'_> {
        HostApi_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

impl HostApi for CallCtx<'_> {
    fn plugin_name(&self) -> RStr<'_> {
        RStr::from(self.plugin)
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        let plugin = self.plugin;
        match level {
            level::ERROR => tracing::error!(target: "plugin", plugin, "{message}"),
            level::WARN => tracing::warn!(target: "plugin", plugin, "{message}"),
            level::INFO => tracing::info!(target: "plugin", plugin, "{message}"),
            _ => tracing::debug!(target: "plugin", plugin, "{message}"),
        }
    }

    fn emit(
        &self,
        event: RStr<'_>,
        args: RSlice<'_, Entry<'_>>,
    ) -> RResult<RVec<Outcome>, PluginError> {
        let Phase::Callback(frame) = self.phase else {
            return RResult::RErr(
                PluginError::new(format!("cannot emit `{event}` outside a callback")).with_help(
                    "emit from a callback; init and shutdown run before and after dispatch",
                ),
            );
        };
        match self
            .board
            .emit_nested(event.as_str(), args.as_slice(), frame)
        {
            Ok(outcomes) => RResult::ROk(
                outcomes
                    .iter()
                    .map(|o| {
                        let callback = self.board.registry().callback(o.callback);
                        Outcome::new(&callback.plugin_name, &callback.name, o.to_result())
                    })
                    .collect(),
            ),
            Err(error) => RResult::RErr(PluginError::new(error.to_string())),
        }
    }

    fn call(
        &self,
        operation: RStr<'_>,
        _argument: &Value<'_>,
    ) -> RResult<Value<'static>, PluginError> {
        match operation.as_str() {
            operation::MANIFEST_DIR => {
                let folder = self.board.manifest().base_dir();
                let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned());
                RResult::ROk(Value::from(folder.to_string_lossy().as_ref()))
            }
            _ => RResult::RErr(PluginError::new(format!(
                "this host does not support the operation `{operation}`"
            ))),
        }
    }
}
