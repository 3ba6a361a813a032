//! Application callbacks: functions the embedding program registers for declared events
//! (a closure in Rust, a callable in Python), dispatched in order among the plugins'
//! callbacks, behind a breaker, counted, and checked against the manifest like a plugin's.
//!
//! An application's callbacks stand in a slot of their own, named after the application,
//! and are reached through the same direct entry point as a Rust plugin's: the dispatch
//! loop cannot tell them apart.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::std_types::RResult;
use switchboard_plugin_api::abi::{status, ArgsRaw, CallEntry, HostRef};
use switchboard_plugin_api::{Args, Error as PluginError, Host, Value};

use crate::load::Registered;

/// The application name of callbacks that do not set one.
pub const DEFAULT_APPLICATION: &str = "app";

/// What an application callback runs: the event's arguments and the host (for nested
/// emits, the event id and logging), as a plugin's callback gets them.
pub type AppFn =
    dyn Fn(Args<'_>, Host<'_>) -> Result<Value<'static>, PluginError> + Send + Sync + 'static;

/// A callback of the embedding application, for one declared event: see
/// [`Switchboard::register`](crate::Switchboard::register).
///
/// ```
/// use switchboard::AppCallback;
/// use switchboard_plugin_api::Value;
///
/// let audit = AppCallback::new("user_joined", "audit", |args, _host| {
///     println!("joined: {}", args.str("name")?);
///     Ok(Value::NULL)
/// })
/// .priority(5)
/// .reads([("name", "string")]);
/// assert_eq!(audit.name(), "audit");
/// ```
#[derive(Clone)]
pub struct AppCallback {
    pub(crate) application: String,
    pub(crate) registration: Registered,
    run: Arc<AppFn>,
}

impl std::fmt::Debug for AppCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCallback")
            .field("application", &self.application)
            .field("event", &self.registration.event)
            .field("name", &self.registration.callback)
            .field("priority", &self.registration.priority)
            .field("reads", &self.registration.reads)
            .finish_non_exhaustive()
    }
}

impl AppCallback {
    /// A callback called `name` for `event`, at priority 0, that reads its arguments by
    /// name as it runs. Its name is unique among the application's callbacks, as a
    /// plugin's are among the plugin's.
    pub fn new<F>(event: impl Into<String>, name: impl Into<String>, run: F) -> AppCallback
    where
        F: Fn(Args<'_>, Host<'_>) -> Result<Value<'static>, PluginError> + Send + Sync + 'static,
    {
        AppCallback {
            application: DEFAULT_APPLICATION.to_owned(),
            registration: Registered {
                event: event.into(),
                callback: name.into(),
                priority: 0,
                reads: None,
                id: 0,
            },
            run: Arc::new(run),
        }
    }

    /// The application it belongs to: the name its outcomes, counts and status are shown
    /// under, as a plugin's name is (`app` unless set). It may not be a plugin's name.
    pub fn application(mut self, name: impl Into<String>) -> AppCallback {
        self.application = name.into();
        self
    }

    /// Higher runs earlier; among equal priorities, plugins run in manifest order and the
    /// application's callbacks after them, in the order they were registered.
    pub fn priority(mut self, priority: i32) -> AppCallback {
        self.registration.priority = priority;
        self
    }

    /// The arguments it reads, `(name, type)` with types as a manifest writes them
    /// (`string`, `int?`, `list<string>`, `any`...). Checked against the event's
    /// declaration when the callback is registered, and at every reload, exactly as a
    /// typed plugin callback's are.
    pub fn reads<N: Into<String>, T: Into<String>>(
        mut self,
        args: impl IntoIterator<Item = (N, T)>,
    ) -> AppCallback {
        let reads = args
            .into_iter()
            .map(|(n, t)| (n.into(), t.into()))
            .collect();
        self.registration.reads = Some(reads);
        self
    }

    /// The application it belongs to.
    pub fn application_name(&self) -> &str {
        &self.application
    }

    /// The event it handles.
    pub fn event(&self) -> &str {
        &self.registration.event
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.registration.callback
    }
}

/// One application's callbacks, as a generation runs them: what the entry points point to.
pub(crate) struct AppInstance {
    callbacks: Box<[AppCallback]>,
}

impl AppInstance {
    /// The instance of `callbacks`, numbered in order (a registration's `id` is its index).
    pub(crate) fn new(callbacks: Vec<AppCallback>) -> AppInstance {
        AppInstance {
            callbacks: callbacks.into_boxed_slice(),
        }
    }

    /// The direct entry point of callback `id`.
    pub(crate) fn entry(&self, id: u32) -> Option<CallEntry> {
        let callback = self.callbacks.get(id as usize)?;
        Some(CallEntry {
            call: call_app,
            state: std::ptr::from_ref::<Arc<AppFn>>(&callback.run).cast::<()>(),
            data: std::ptr::null(),
        })
    }
}

/// The entry point of every application callback.
///
/// # Safety
///
/// `state` comes from [`AppInstance::entry`]: it points to an `Arc<AppFn>` inside an
/// instance that the calling generation keeps alive.
unsafe extern "C" fn call_app(
    state: *const (),
    _data: *const (),
    args: &ArgsRaw<'_>,
    host: HostRef<'_>,
    result: &mut RResult<Value<'static>, PluginError>,
) -> u8 {
    // SAFETY: see the function's contract: the boxed slice of callbacks is never moved or
    // changed while the generation that made the entry is alive, and the generation only
    // calls through its entries while it is.
    let run = unsafe { &*state.cast::<Arc<AppFn>>() };
    let args = Args::from_raw(*args);
    let host = Host::from_raw(host);
    // An application callback is the host's own code, but a panic in it is still one
    // callback's failure, not the host's: the other callbacks run.
    match catch_unwind(AssertUnwindSafe(|| run(args, host))) {
        Ok(Ok(value)) if value.is_null() => status::NULL,
        Ok(Ok(value)) => {
            *result = RResult::ROk(value);
            status::VALUE
        }
        Ok(Err(error)) => {
            *result = RResult::RErr(error);
            status::ERROR
        }
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic with a non-text payload".to_owned()
            };
            *result = RResult::RErr(PluginError::panicked(message));
            status::ERROR
        }
    }
}
