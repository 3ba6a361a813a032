//! The host handles plugins receive: the borrowed one of each call (logging under the
//! plugin's name, nested emits, the chain of emits that led to the call) and the owned one
//! a plugin may keep for its own threads.

use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use switchboard_plugin_api::abi::{
    feature, operation, HostApi, HostApi_TO, HostBox, HostRef, Outcome,
};
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::anchor::Anchor;
use super::generation::Generation;
use super::outcome::Outcomes;
use crate::event_id::EventTag;
use crate::plugin_log::log;

/// What this host's side of the interface supports.
static HOST_FEATURES: [RStr<'static>; 6] = [
    RStr::from_str(feature::EVENT_IDS),
    RStr::from_str(feature::MANIFEST_DIR),
    RStr::from_str(feature::NESTED_EMIT),
    RStr::from_str(feature::OWNED_HOST),
    RStr::from_str(feature::REQUEST_IDS),
    RStr::from_str(feature::CONTROL),
];

/// The chain of emits that led to the current one, for the depth limit and its message.
pub(crate) struct Frame<'p> {
    pub(crate) event: &'p str,
    pub(crate) depth: u32,
    pub(crate) parent: Option<&'p Frame<'p>>,
    /// The id its callbacks see (a nested emit's is its outermost emit's).
    pub(crate) id: EventTag<'p>,
}

impl<'p> Frame<'p> {
    /// The outermost emit, whose callbacks see `id`.
    pub(crate) fn root(event: &'p str, id: EventTag<'p>) -> Frame<'p> {
        Frame {
            event,
            depth: 1,
            parent: None,
            id,
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

/// What a plugin is doing when it calls back into the host (`init` and `shutdown` get a
/// [`SetupCtx`] instead).
enum Phase<'p> {
    /// A control operation.
    Control,
    Callback(&'p Frame<'p>),
}

/// The context of one call into a plugin; lives on the stack for that call.
pub(crate) struct CallCtx<'b> {
    board: &'b Generation,
    plugin: &'b str,
    phase: Phase<'b>,
}

impl<'b> CallCtx<'b> {
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

    pub(crate) fn for_control(board: &'b Generation, plugin: &'b str) -> Self {
        CallCtx {
            board,
            plugin,
            phase: Phase::Control,
        }
    }

    /// A borrowed handle to pass across the boundary; no allocation.
    pub(crate) fn handle(&self) -> HostRef<'_> {
        HostApi_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

/// An emit's outcomes as the interface returns them.
fn boundary_outcomes(board: &Generation, outcomes: &Outcomes) -> RVec<Outcome> {
    outcomes
        .iter()
        .map(|o| {
            let callback = board.registry().callback(o.callback);
            Outcome::new(&callback.plugin_name, &callback.name, o.to_result())
        })
        .collect()
}

/// The operations of [`HostApi::call`].
fn operation(board: &Generation, operation: &str) -> RResult<Value<'static>, PluginError> {
    self::operation_in(board.manifest().base_dir(), operation)
}

/// An operation of [`HostApi::call`] for a plugin whose manifest is in `base_dir`.
fn operation_in(
    base_dir: &std::path::Path,
    operation: &str,
) -> RResult<Value<'static>, PluginError> {
    match operation {
        operation::MANIFEST_DIR => {
            let folder = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_owned());
            RResult::ROk(Value::from(folder.to_string_lossy().as_ref()))
        }
        _ => RResult::RErr(PluginError::unsupported(format!(
            "this host does not support the operation `{operation}`"
        ))),
    }
}

/// An owned handle for `plugin`, reaching its generation through `anchor`.
fn keep(anchor: &Arc<Anchor<Generation>>, plugin: &str) -> RResult<HostBox, PluginError> {
    RResult::ROk(HostApi_TO::from_value(
        OwnedHost {
            plugin: plugin.to_owned(),
            anchor: Arc::clone(anchor),
        },
        TD_Opaque,
    ))
}

/// The refusal of an emit made outside a callback (from `init`, `shutdown` or a control
/// operation).
fn outside_callback(event: RStr<'_>) -> RResult<RVec<Outcome>, PluginError> {
    RResult::RErr(
        PluginError::new(format!("cannot emit `{event}` outside a callback"))
            .with_help("emit from a callback; init and shutdown run before and after dispatch"),
    )
}

impl HostApi for CallCtx<'_> {
    fn plugin_name(&self) -> RStr<'_> {
        RStr::from(self.plugin)
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        log(
            self.plugin,
            Some(self.board.number()),
            level,
            message.as_str(),
        );
    }

    fn features(&self) -> RSlice<'static, RStr<'static>> {
        RSlice::from_slice(&HOST_FEATURES)
    }

    fn keep(&self) -> RResult<HostBox, PluginError> {
        keep(&self.board.anchor, self.plugin)
    }

    fn emit(
        &self,
        event: RStr<'_>,
        args: RSlice<'_, Entry<'_>>,
    ) -> RResult<RVec<Outcome>, PluginError> {
        let Phase::Callback(frame) = self.phase else {
            return outside_callback(event);
        };
        match self
            .board
            .emit_nested(event.as_str(), args.as_slice(), Some(frame))
        {
            Ok(outcomes) => RResult::ROk(boundary_outcomes(self.board, &outcomes)),
            Err(error) => RResult::RErr(PluginError::new(error.to_string())),
        }
    }

    fn call(
        &self,
        operation: RStr<'_>,
        _argument: &Value<'_>,
    ) -> RResult<Value<'static>, PluginError> {
        if operation.as_str() == operation::EVENT_ID {
            return match self.phase {
                Phase::Callback(frame) => RResult::ROk(Value::from(frame.id.text().as_ref())),
                Phase::Control => no_event(),
            };
        }
        self::operation(self.board, operation.as_str())
    }
}

/// The answer to [`operation::EVENT_ID`] outside a callback.
fn no_event() -> RResult<Value<'static>, PluginError> {
    RResult::RErr(PluginError::new(crate::error::NO_EVENT_OUTSIDE_A_CALLBACK))
}

/// The handle a plugin keeps ([`HostApi::keep`]): usable from any thread while its
/// generation runs. Emits from it are outermost emits.
struct OwnedHost {
    plugin: String,
    anchor: Arc<Anchor<Generation>>,
}

impl OwnedHost {
    /// The running generation, or why there is none.
    fn generation(&self) -> Result<Arc<Generation>, PluginError> {
        let generation = self.anchor.get();
        match generation {
            Some(generation) if !generation.is_shut_down() => Ok(generation),
            Some(_) | None => Err(PluginError::new(format!(
                "plugin `{}`: the host has shut this plugin down (or has not finished starting it)",
                self.plugin
            ))
            .with_help(
                "stop the plugin's own threads in its `shutdown`; emit after `init` returns",
            )),
        }
    }
}

impl HostApi for OwnedHost {
    fn plugin_name(&self) -> RStr<'_> {
        RStr::from(self.plugin.as_str())
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        let generation = self.generation().ok().map(|g| g.number());
        log(&self.plugin, generation, level, message.as_str());
    }

    fn emit(
        &self,
        event: RStr<'_>,
        args: RSlice<'_, Entry<'_>>,
    ) -> RResult<RVec<Outcome>, PluginError> {
        let board = match self.generation() {
            Ok(board) => board,
            Err(error) => return RResult::RErr(error),
        };
        match board.emit_nested(event.as_str(), args.as_slice(), None) {
            Ok(outcomes) => RResult::ROk(boundary_outcomes(&board, &outcomes)),
            Err(error) => RResult::RErr(PluginError::new(error.to_string())),
        }
    }

    fn features(&self) -> RSlice<'static, RStr<'static>> {
        RSlice::from_slice(&HOST_FEATURES)
    }

    fn keep(&self) -> RResult<HostBox, PluginError> {
        keep(&self.anchor, &self.plugin)
    }

    fn call(
        &self,
        operation: RStr<'_>,
        _argument: &Value<'_>,
    ) -> RResult<Value<'static>, PluginError> {
        if operation.as_str() == operation::EVENT_ID {
            return no_event();
        }
        match self.generation() {
            Ok(board) => self::operation(&board, operation.as_str()),
            Err(error) => RResult::RErr(error),
        }
    }
}

/// The handle of a plugin's `init` or `shutdown`, which the host runs on a thread of its
/// own so that it can stop waiting for one that never returns (see `bounded`): it owns
/// what it serves, and borrows nothing from a generation that may go away meanwhile.
pub(crate) struct SetupCtx {
    plugin: String,
    generation: u64,
    anchor: Arc<Anchor<Generation>>,
    base_dir: std::path::PathBuf,
}

impl SetupCtx {
    /// The handle for plugin `plugin` of `board`.
    pub(crate) fn new(board: &Generation, plugin: &str) -> SetupCtx {
        SetupCtx {
            plugin: plugin.to_owned(),
            generation: board.number(),
            anchor: Arc::clone(&board.anchor),
            base_dir: board.manifest().base_dir().to_owned(),
        }
    }

    /// A borrowed handle to pass across the boundary.
    pub(crate) fn handle(&self) -> HostRef<'_> {
        HostApi_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

impl HostApi for SetupCtx {
    fn plugin_name(&self) -> RStr<'_> {
        RStr::from(self.plugin.as_str())
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        log(&self.plugin, Some(self.generation), level, message.as_str());
    }

    fn features(&self) -> RSlice<'static, RStr<'static>> {
        RSlice::from_slice(&HOST_FEATURES)
    }

    fn keep(&self) -> RResult<HostBox, PluginError> {
        keep(&self.anchor, &self.plugin)
    }

    fn emit(
        &self,
        event: RStr<'_>,
        _args: RSlice<'_, Entry<'_>>,
    ) -> RResult<RVec<Outcome>, PluginError> {
        outside_callback(event)
    }

    fn call(
        &self,
        operation: RStr<'_>,
        _argument: &Value<'_>,
    ) -> RResult<Value<'static>, PluginError> {
        if operation.as_str() == operation::EVENT_ID {
            return no_event();
        }
        operation_in(&self.base_dir, operation.as_str())
    }
}
