//! The trait a plugin implements and the registrar its callbacks go into.

use abi_stable::std_types::RResult;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::abi::status;
use crate::args::Args;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::value::Value;

/// A plugin: state built from its config, and callbacks for named events.
///
/// The state is shared by every worker thread of the host, so it must be `Send + Sync`;
/// use atomics or a `Mutex` for anything a callback changes. See the crate docs for a
/// complete plugin. State that is not thread-safe does not compile:
///
/// ```compile_fail
/// use std::cell::Cell;
/// use switchboard_plugin_api::prelude::*;
///
/// struct Counter {
///     count: Cell<u64>, // not Sync: two worker threads could race on it
/// }
///
/// impl Plugin for Counter {
///     type Config = NoConfig;
///     fn init(_: NoConfig, _: &Host) -> Result<Self> {
///         Ok(Counter { count: Cell::new(0) })
///     }
///     fn register(_: &mut Callbacks<Self>) {}
/// }
/// ```
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The plugin's config, deserialized from the `config` table of its manifest entry.
    /// Use [`NoConfig`] when there is none.
    type Config: DeserializeOwned;

    /// Builds the plugin. An error here stops the host from loading the plugin.
    fn init(config: Self::Config, host: &Host<'_>) -> Result<Self>;

    /// Registers callbacks, one line each: `callbacks.on("event", Self::method)`.
    ///
    /// Registration is static (it does not see the config) so the host can check every
    /// callback against the manifest before the plugin runs.
    fn register(callbacks: &mut Callbacks<Self>);

    /// Runs when the host stops, after the plugin's last callback.
    fn shutdown(&self, host: &Host<'_>) -> Result<()> {
        let _ = host;
        Ok(())
    }
}

/// The config of a plugin that takes none; any key given in the manifest is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// A registered callback in the ABI's shape: it returns a [`status`] and writes anything
/// but a null result to the slot, so that the common case moves no result at all.
pub(crate) type CallbackFn<P> =
    Box<dyn Fn(&P, &Args<'_>, &Host<'_>, &mut RResult<Value<'static>, Error>) -> u8 + Send + Sync>;

pub(crate) struct Callback<P> {
    pub(crate) event: String,
    pub(crate) name: String,
    pub(crate) priority: i32,
    pub(crate) func: CallbackFn<P>,
}

/// Where a plugin registers its callbacks.
pub struct Callbacks<P> {
    pub(crate) entries: Vec<Callback<P>>,
}

impl<P: Plugin> Callbacks<P> {
    pub(crate) fn new() -> Self {
        Callbacks {
            entries: Vec::new(),
        }
    }

    /// Calls `callback` for every `event`. The callback's name (shown by `switchboard list`
    /// and in errors) is the function's own name; set another with
    /// [`CallbackOptions::name`].
    ///
    /// A callback returns anything that converts into a [`Value`]: `()`, a string, a
    /// number, a `Value`...
    pub fn on<F, R>(&mut self, event: &str, callback: F) -> CallbackOptions<'_, P>
    where
        F: Fn(&P, &Args<'_>, &Host<'_>) -> Result<R> + Send + Sync + 'static,
        R: Into<Value<'static>>,
    {
        let name = callback_name::<F>(event, self.entries.len());
        self.entries.push(Callback {
            event: event.to_owned(),
            name,
            priority: 0,
            func: Box::new(
                move |plugin, args, host, slot| match callback(plugin, args, host) {
                    Ok(value) => {
                        let value: Value<'static> = value.into();
                        if value.is_null() {
                            status::NULL
                        } else {
                            *slot = RResult::ROk(value);
                            status::VALUE
                        }
                    }
                    Err(error) => {
                        *slot = RResult::RErr(error);
                        status::ERROR
                    }
                },
            ),
        });
        let last = self.entries.len() - 1;
        CallbackOptions {
            entry: &mut self.entries[last],
        }
    }
}

/// Options of one registered callback.
pub struct CallbackOptions<'r, P> {
    entry: &'r mut Callback<P>,
}

impl<P> CallbackOptions<'_, P> {
    /// Runs this callback earlier (higher) or later (lower) than the default 0.
    pub fn priority(self, priority: i32) -> Self {
        self.entry.priority = priority;
        self
    }

    /// Names the callback in listings and errors.
    pub fn name(self, name: &str) -> Self {
        self.entry.name = name.to_owned();
        self
    }
}

/// A function's own name (`welcome` for `MyPlugin::welcome`); closures get `event#index`.
fn callback_name<F>(event: &str, index: usize) -> String {
    let full = std::any::type_name::<F>();
    match full.rsplit("::").next() {
        Some(last) if !full.contains("{{closure}}") && !last.is_empty() => last.to_owned(),
        _ => format!("{event}#{index}"),
    }
}
