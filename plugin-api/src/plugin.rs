//! The trait a plugin implements and the registrar its callbacks go into.

use std::marker::PhantomData;

use abi_stable::std_types::RResult;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::abi::{status, ArgDecl, ArgsRaw, CallFn, EmitDecl, HostRef};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::panic::catch_panic;
use crate::typed::{Binding, TypedArgs};
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

    /// Registers callbacks, one line each: `callbacks.on("event", "name", Self::method)`.
    ///
    /// Registration is static (it does not see the config) so the host can check every
    /// callback against the manifest before the plugin runs.
    fn register(callbacks: &mut Callbacks<Self>);

    /// Runs when the host stops, after the plugin's last callback.
    fn shutdown(&self, host: &Host<'_>) -> Result<()> {
        let _ = host;
        Ok(())
    }

    /// Answers an operation the host (or a tool) sends by name, outside any event: a
    /// health check, a cache flush... Operations you do not know must return
    /// [`Error::unsupported`], as the default does.
    fn control(
        &self,
        operation: &str,
        argument: &Value<'_>,
        host: &Host<'_>,
    ) -> Result<Value<'static>> {
        let _ = (argument, host);
        Err(Error::unsupported(format!(
            "this plugin does not support the operation `{operation}`"
        )))
    }
}

/// The config of a plugin that takes none; any key given in the manifest is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// Something [`Callbacks::on`] accepts: a method taking `&Args` (read arguments by name
/// at run time) or a struct that derives [`Args`](macro@crate::Args) (typed: its fields
/// are checked against the manifest when the host loads the plugin). `M` tells the two
/// kinds apart; it is inferred.
pub trait Callback<P, M>: Send + Sync + 'static {
    /// The arguments the callback reads, for typed callbacks.
    #[doc(hidden)]
    fn reads() -> Option<Vec<ArgDecl>>;

    /// Runs the callback and reports its result in the ABI's shape: a [`status`], with
    /// anything but null written to `slot`.
    #[doc(hidden)]
    fn run(
        &self,
        plugin: &P,
        args: &Args<'_>,
        binding: &Binding,
        host: &Host<'_>,
        slot: &mut RResult<Value<'static>, Error>,
    ) -> u8;
}

/// Marks callbacks that read `&Args`.
#[doc(hidden)]
pub struct Dynamic;

/// Marks typed callbacks.
#[doc(hidden)]
pub struct Typed;

impl<P, F, R> Callback<P, (Dynamic, R)> for F
where
    F: Fn(&P, &Args<'_>, &Host<'_>) -> Result<R> + Send + Sync + 'static,
    R: Into<Value<'static>>,
{
    fn reads() -> Option<Vec<ArgDecl>> {
        None
    }

    #[inline(always)]
    fn run(
        &self,
        plugin: &P,
        args: &Args<'_>,
        _binding: &Binding,
        host: &Host<'_>,
        slot: &mut RResult<Value<'static>, Error>,
    ) -> u8 {
        report(self(plugin, args, host), slot)
    }
}

impl<P, F, A, R> Callback<P, (Typed, A, R)> for F
where
    A: TypedArgs,
    F: Fn(&P, A, &Host<'_>) -> Result<R>
        + for<'a> Fn(&P, A::At<'a>, &Host<'_>) -> Result<R>
        + Send
        + Sync
        + 'static,
    R: Into<Value<'static>>,
{
    fn reads() -> Option<Vec<ArgDecl>> {
        Some(A::reads())
    }

    #[inline(always)]
    fn run(
        &self,
        plugin: &P,
        args: &Args<'_>,
        binding: &Binding,
        host: &Host<'_>,
        slot: &mut RResult<Value<'static>, Error>,
    ) -> u8 {
        let args = args.shorten();
        match A::read(binding.bind(args, A::NAMES)) {
            Ok(typed) => report(call_typed(self, plugin, typed, host), slot),
            Err(error) => report::<()>(Err(error), slot),
        }
    }
}

/// Calls `f` through the one `Fn` signature that takes `T` (a typed callback implements
/// two, for inference).
#[inline(always)]
fn call_typed<P, T, R>(
    f: impl Fn(&P, T, &Host<'_>) -> Result<R>,
    plugin: &P,
    typed: T,
    host: &Host<'_>,
) -> Result<R> {
    f(plugin, typed, host)
}

/// A callback's result in the ABI's shape.
#[inline(always)]
fn report<R: Into<Value<'static>>>(
    result: Result<R>,
    slot: &mut RResult<Value<'static>, Error>,
) -> u8 {
    match result {
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
    }
}

/// One registered callback: what the host reads at load, and its direct entry point.
pub(crate) struct Registered {
    pub(crate) event: String,
    pub(crate) name: String,
    pub(crate) priority: i32,
    pub(crate) reads: Option<Vec<ArgDecl>>,
    /// The monomorphized entry point for this callback's type.
    pub(crate) call: CallFn,
    /// The callback and its argument positions; `data` points to it.
    _owner: Box<dyn Send + Sync>,
    pub(crate) data: *const (),
}

/// What a callback's `data` pointer points to: the callback, and where its typed
/// arguments sit.
pub(crate) struct Bound<F> {
    pub(crate) callback: F,
    pub(crate) binding: Binding,
}

/// A callback's direct entry point ([`CallFn`](crate::abi::CallFn)), one per plugin and callback type, so
/// that the callback's code is inlined into it: the host's one indirect call per callback
/// lands here, and this guards it.
///
/// # Safety
///
/// `state` and `data` come from one [`CallEntry`](crate::abi::CallEntry) of a live plugin (see [`CallFn`](crate::abi::CallFn)).
pub(crate) unsafe extern "C" fn direct<P: Plugin, F: Callback<P, M>, M>(
    state: *const (),
    data: *const (),
    args: &ArgsRaw<'_>,
    host: HostRef<'_>,
    result: &mut RResult<Value<'static>, Error>,
) -> u8 {
    // SAFETY: the host passes back the pointers of a `CallEntry` made in `init`: `state`
    // points to the plugin's boxed `P` and `data` to this callback's boxed `F`, both owned
    // by the `Live` the entry came from, which the host keeps alive while it calls.
    let (plugin, bound) = unsafe { (&*state.cast::<P>(), &*data.cast::<Bound<F>>()) };
    let args = Args::from_raw_ref(args);
    let host = Host::from_raw(host);
    let slot = &mut *result;
    match catch_panic(|| {
        bound
            .callback
            .run(plugin, args, &bound.binding, &host, slot)
    }) {
        Ok(code) => code,
        Err(error) => {
            *result = RResult::RErr(error);
            status::ERROR
        }
    }
}

// SAFETY: `data` points into `_owner`, which is `Send + Sync`.
unsafe impl Send for Registered {}
// SAFETY: as above.
unsafe impl Sync for Registered {}

/// Where a plugin registers its callbacks, and declares the events it emits.
pub struct Callbacks<P> {
    pub(crate) entries: Vec<Registered>,
    pub(crate) emits: Vec<EmitDecl>,
    plugin: PhantomData<fn(&P)>,
}

impl<P: Plugin> Callbacks<P> {
    pub(crate) fn new() -> Self {
        Callbacks {
            entries: Vec::new(),
            emits: Vec::new(),
            plugin: PhantomData,
        }
    }

    /// Calls `callback` for every `event`, under `name`: a stable name of your choosing
    /// (letters, digits, `_` and `-`), unique in the plugin, shown by `switchboard list`
    /// and in errors, as in `audit.joined`.
    ///
    /// The callback is a method taking either `&Args` (arguments read by name when it
    /// runs) or a struct deriving [`Args`](macro@crate::Args) (typed: the host checks at
    /// load that the event declares every field). It returns anything that converts into a
    /// [`Value`]: `()`, a string, a number, an `Option`, a `Value`...
    pub fn on<F, M>(&mut self, event: &str, name: &str, callback: F) -> CallbackOptions<'_>
    where
        F: Callback<P, M>,
    {
        let owner = Box::new(Bound {
            callback,
            binding: Binding::default(),
        });
        let data = std::ptr::from_ref::<Bound<F>>(&*owner).cast::<()>();
        self.entries.push(Registered {
            event: event.to_owned(),
            name: name.to_owned(),
            priority: 0,
            reads: F::reads(),
            call: direct::<P, F, M>,
            _owner: owner,
            data,
        });
        let last = self.entries.len() - 1;
        CallbackOptions {
            entry: &mut self.entries[last],
        }
    }

    /// Declares that the plugin emits `event` with these arguments (`(name, type)`, types
    /// as a manifest writes them: `"string"`, `"int?"`...). `switchboard inspect` shows
    /// it, and `switchboard add` declares it in the manifest.
    pub fn emits(&mut self, event: &str, args: &[(&str, &str)]) {
        self.emits.push(EmitDecl {
            event: event.into(),
            args: args
                .iter()
                .map(|(name, kind)| ArgDecl {
                    name: (*name).into(),
                    kind: (*kind).into(),
                })
                .collect(),
        });
    }

    /// Checks what the author chose: names that are stable, printable and unique.
    pub(crate) fn check(&self) -> Result<()> {
        for (index, entry) in self.entries.iter().enumerate() {
            let name = &entry.name;
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(Error::new(format!(
                    "callback name `{name}` (on `{}`) must be 1 to 64 letters, digits, `_` or `-`",
                    entry.event
                ))
                .with_help("pass another name to `callbacks.on`"));
            }
            if self.entries[..index].iter().any(|e| e.name == *name) {
                return Err(Error::new(format!(
                    "two callbacks are named `{name}`; names must be unique in a plugin"
                ))
                .with_help("pass another name to `callbacks.on` for one of them"));
            }
        }
        Ok(())
    }
}

/// Options of one registered callback.
pub struct CallbackOptions<'r> {
    entry: &'r mut Registered,
}

impl CallbackOptions<'_> {
    /// Runs this callback earlier (higher) or later (lower) than the default 0.
    pub fn priority(self, priority: i32) -> Self {
        self.entry.priority = priority;
        self
    }
}
