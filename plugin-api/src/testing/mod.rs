//! A test kit for plugin authors: run a plugin's `init`, callbacks and `shutdown` in your
//! own `#[test]`s, in-process, against a recording host, with panics caught exactly as the
//! real host catches them.
//!
//! ```
//! use switchboard_plugin_api::prelude::*;
//! use switchboard_plugin_api::testing::TestHost;
//!
//! #[derive(Deserialize)]
//! struct Config { greeting: String }
//!
//! struct Greeter { greeting: String }
//!
//! impl Plugin for Greeter {
//!     type Config = Config;
//!     fn init(config: Config, _host: &Host) -> Result<Self> {
//!         Ok(Greeter { greeting: config.greeting })
//!     }
//!     fn register(callbacks: &mut Callbacks<Self>) {
//!         callbacks.on("user_joined", "welcome", Self::welcome);
//!     }
//! }
//!
//! #[derive(Deserialize, Args)]
//! struct Joined<'a> { name: &'a str }
//!
//! impl Greeter {
//!     fn welcome(&self, user: Joined, host: &Host) -> Result<String> {
//!         host.info(format!("greeting {}", user.name));
//!         Ok(format!("{}, {}!", self.greeting, user.name))
//!     }
//! }
//!
//! let host = TestHost::new().strict().expect_log("greeting Ann");
//! let greeter = host.start::<Greeter>(serde_json::json!({"greeting": "Hi"}))?;
//! let results = greeter.emit("user_joined", [("name", Value::borrowed("Ann"))]);
//! assert_eq!(results[0].callback, "welcome");
//! assert_eq!(results[0].value()?.as_str(), Some("Hi, Ann!"));
//! assert_eq!(host.logs()[0].message, "greeting Ann");
//! # Ok::<(), Error>(())
//! ```
//!
//! A lenient host (the default) records every log line and emit and answers emits with no
//! outcomes (or with what [`TestHost::on_emit`] gives). A strict one fails the test on any
//! emit, log line or host operation it was not told to expect.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use serde::Serialize;

use crate::abi::{feature, level, operation, HostApi, HostApi_TO, HostBox, HostRef, Outcome};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::export::parse_config;
use crate::host::Host;
use crate::panic::catch_panic;
use crate::plugin::{Callbacks, Plugin};
use crate::value::{Entry, Value};

/// A log line a plugin wrote through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLine {
    /// `error`, `warn`, `info` or `debug`.
    pub level: &'static str,
    /// The message.
    pub message: String,
}

/// An event a plugin emitted through the host.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Emitted {
    /// The event's name.
    pub event: String,
    /// Its arguments, by name, in the order the plugin gave them.
    pub args: Vec<(String, Value<'static>)>,
}

/// One registered callback, from [`Started::registrations`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registered {
    /// The event.
    pub event: String,
    /// The callback's name.
    pub callback: String,
    /// Its priority.
    pub priority: i32,
    /// For a typed callback, the arguments it reads as `(name, type)`, types as a
    /// manifest writes them; `None` for one that reads by name.
    pub reads: Option<Vec<(String, String)>>,
}

/// One callback's result, from [`Started::emit`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Called {
    /// The callback's name.
    pub callback: String,
    /// What it returned, or its error (a caught panic is an error with `is_panic()`).
    pub result: std::result::Result<Value<'static>, Error>,
}

impl Called {
    /// The value, or the callback's error.
    pub fn value(&self) -> Result<&Value<'static>> {
        self.result.as_ref().map_err(Clone::clone)
    }
}

type EmitAnswer = std::sync::Arc<dyn Fn(&[(String, Value<'static>)]) -> Vec<Outcome> + Send + Sync>;

#[derive(Default)]
struct Record {
    logs: Vec<LogLine>,
    emits: Vec<Emitted>,
    unexpected: Vec<String>,
}

/// What a test host was told, and what it recorded; shared with the owned handles a
/// plugin keeps.
struct Kit {
    plugin_name: String,
    manifest_dir: PathBuf,
    event_id: String,
    strict: bool,
    expected_emits: Vec<String>,
    expected_logs: Vec<String>,
    answers: Vec<(String, EmitAnswer)>,
    record: Mutex<Record>,
}

impl Clone for Kit {
    fn clone(&self) -> Self {
        Kit {
            plugin_name: self.plugin_name.clone(),
            manifest_dir: self.manifest_dir.clone(),
            event_id: self.event_id.clone(),
            strict: self.strict,
            expected_emits: self.expected_emits.clone(),
            expected_logs: self.expected_logs.clone(),
            answers: self.answers.clone(),
            record: Mutex::new(Record::default()),
        }
    }
}

/// A recording host for tests: see the module docs.
pub struct TestHost {
    kit: Arc<Kit>,
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost::new()
    }
}

impl TestHost {
    /// A lenient host that names the plugin `test` and resolves config paths against the
    /// working directory.
    pub fn new() -> TestHost {
        TestHost {
            kit: Arc::new(Kit {
                plugin_name: "test".to_owned(),
                manifest_dir: PathBuf::from("."),
                event_id: "test-event".to_owned(),
                strict: false,
                expected_emits: Vec::new(),
                expected_logs: Vec::new(),
                answers: Vec::new(),
                record: Mutex::new(Record::default()),
            }),
        }
    }

    fn edit(mut self, change: impl FnOnce(&mut Kit)) -> Self {
        change(Arc::make_mut(&mut self.kit));
        self
    }

    /// The plugin's manifest name, as `Host::plugin_name` reports it.
    pub fn named(self, name: &str) -> Self {
        self.edit(|kit| kit.plugin_name = name.to_owned())
    }

    /// The folder `Host::resolve_path` resolves config paths against (a temporary folder,
    /// say), as the manifest's folder would be.
    pub fn with_manifest_dir(self, folder: impl AsRef<Path>) -> Self {
        self.edit(|kit| kit.manifest_dir = folder.as_ref().to_owned())
    }

    /// The id `Host::event_id` reports in callbacks (`test-event` unless set): call a
    /// callback twice under one id to test that its effect happens once.
    pub fn with_event_id(self, id: &str) -> Self {
        self.edit(|kit| kit.event_id = id.to_owned())
    }

    /// Fails the test on any emit, log line or host operation not announced with
    /// [`TestHost::expect_emit`] or [`TestHost::expect_log`].
    pub fn strict(self) -> Self {
        self.edit(|kit| kit.strict = true)
    }

    /// In strict mode, allows emits of `event`.
    pub fn expect_emit(self, event: &str) -> Self {
        self.edit(|kit| kit.expected_emits.push(event.to_owned()))
    }

    /// In strict mode, allows log lines that contain `text`.
    pub fn expect_log(self, text: &str) -> Self {
        self.edit(|kit| kit.expected_logs.push(text.to_owned()))
    }

    /// Answers emits of `event` with these outcomes (by default an emit has none, as when
    /// no other plugin listens).
    pub fn on_emit(
        self,
        event: &str,
        answer: impl Fn(&[(String, Value<'static>)]) -> Vec<Outcome> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|kit| kit.answers.push((event.to_owned(), Arc::new(answer))))
    }

    /// Runs the plugin's `init` with `config` (anything serde serializes: a
    /// `serde_json::json!({...})`, a struct), as the host does with the manifest's table.
    /// Callback names are checked as the host checks them.
    pub fn start<P: Plugin>(&self, config: impl Serialize) -> Result<Started<'_, P>> {
        let config = Value::from_serialize(&config)?;
        let mut callbacks = Callbacks::new();
        P::register(&mut callbacks);
        callbacks.check()?;
        let plugin = self.with_host(|host| {
            catch_panic(|| {
                let config: P::Config = parse_config(&config)?;
                P::init(config, &Host::from_raw(host))
            })
            .and_then(|r| r)
        })?;
        Ok(Started {
            host: self,
            plugin: Box::new(plugin),
            callbacks,
        })
    }

    /// Every log line so far, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.lock().logs.clone()
    }

    /// Every emit so far, in order.
    pub fn emits(&self) -> Vec<Emitted> {
        self.lock().emits.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.kit.lock()
    }

    fn with_host<T>(&self, body: impl FnOnce(HostRef<'_>) -> T) -> T {
        let recorder = Recorder {
            kit: self.kit.clone(),
        };
        let result = body(HostApi_TO::from_ptr(RRef::new(&recorder), TD_Opaque));
        self.fail_on_unexpected();
        result
    }

    /// A strict host's complaint reaches the test here, outside the plugin: a panic inside
    /// a host call would cross the plugin boundary. (Complaints about calls a plugin's own
    /// thread makes through a kept handle reach the test at its next emit or shutdown.)
    fn fail_on_unexpected(&self) {
        let unexpected = std::mem::take(&mut self.lock().unexpected);
        if !unexpected.is_empty() && !std::thread::panicking() {
            panic!("strict TestHost: {}", unexpected.join("; "));
        }
    }
}

/// A started plugin: emit events to it, then shut it down.
pub struct Started<'h, P: Plugin> {
    host: &'h TestHost,
    plugin: Box<P>,
    callbacks: Callbacks<P>,
}

impl<P: Plugin> Started<'_, P> {
    /// Runs every callback the plugin registered for `event`, highest priority first, then
    /// in registration order, and returns their results. Arguments are given by name;
    /// nothing checks them against a manifest, but a typed callback whose struct they do
    /// not fit fails as it would in the host.
    pub fn emit<'v>(
        &self,
        event: &str,
        args: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) -> Vec<Called> {
        let (names, values): (Vec<_>, Vec<_>) = args.into_iter().unzip();
        let names: Vec<abi_stable::std_types::RString> =
            names.into_iter().map(Into::into).collect();
        let args = Args::new(event, &names, &values).into_raw();
        let mut order: Vec<_> = self
            .callbacks
            .entries
            .iter()
            .filter(|c| c.event == event)
            .collect();
        order.sort_by_key(|c| std::cmp::Reverse(c.priority));
        let state = std::ptr::from_ref::<P>(&self.plugin).cast::<()>();
        self.host.with_host(|host| {
            order
                .into_iter()
                .map(|callback| {
                    // The same entry point, and so the same panic guard, the host calls.
                    let mut slot = RResult::ROk(Value::NULL);
                    // SAFETY: `state` and `data` are the plugin and callback this `Started`
                    // owns, alive for the call.
                    unsafe {
                        (callback.call)(
                            state,
                            callback.data,
                            &args,
                            host.sabi_reborrow(),
                            &mut slot,
                        )
                    };
                    Called {
                        callback: callback.name.clone(),
                        result: slot.into_result(),
                    }
                })
                .collect()
        })
    }

    /// Sends the plugin a control operation, as a host or tool would.
    pub fn control(&self, operation: &str, argument: &Value<'_>) -> Result<Value<'static>> {
        self.host.with_host(|host| {
            catch_panic(|| {
                self.plugin
                    .control(operation, argument, &Host::from_raw(host))
            })
            .and_then(|r| r)
        })
    }

    /// What the plugin registered, in registration order, as the host reads it at load.
    pub fn registrations(&self) -> Vec<Registered> {
        self.callbacks
            .entries
            .iter()
            .map(|c| Registered {
                event: c.event.clone(),
                callback: c.name.clone(),
                priority: c.priority,
                reads: c.reads.as_ref().map(|reads| {
                    reads
                        .iter()
                        .map(|d| (d.name.to_string(), d.kind.to_string()))
                        .collect()
                }),
            })
            .collect()
    }

    /// The plugin's state, to check what a callback changed.
    pub fn plugin(&self) -> &P {
        &self.plugin
    }

    /// Runs the plugin's `shutdown`, as the host does after its last callback.
    pub fn shutdown(self) -> Result<()> {
        self.host.with_host(|host| {
            catch_panic(|| self.plugin.shutdown(&Host::from_raw(host))).and_then(|r| r)
        })
    }
}

impl Kit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the kit's host supports: what the real host does, but nested emits are only
/// recorded.
static TEST_HOST_FEATURES: [RStr<'static>; 5] = [
    RStr::from_str(feature::EVENT_IDS),
    RStr::from_str(feature::MANIFEST_DIR),
    RStr::from_str(feature::NESTED_EMIT),
    RStr::from_str(feature::OWNED_HOST),
    RStr::from_str(feature::REQUEST_IDS),
];

/// The host side of the kit: records, and in strict mode notes what was not expected.
struct Recorder {
    kit: Arc<Kit>,
}

impl HostApi for Recorder {
    fn features(&self) -> RSlice<'static, RStr<'static>> {
        RSlice::from_slice(&TEST_HOST_FEATURES)
    }

    fn keep(&self) -> RResult<HostBox, Error> {
        RResult::ROk(HostApi_TO::from_value(
            Recorder {
                kit: self.kit.clone(),
            },
            TD_Opaque,
        ))
    }

    fn plugin_name(&self) -> RStr<'_> {
        RStr::from(self.kit.plugin_name.as_str())
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        let level = match level {
            level::ERROR => "error",
            level::WARN => "warn",
            level::INFO => "info",
            _ => "debug",
        };
        let mut record = self.kit.lock();
        if self.kit.strict
            && !self
                .kit
                .expected_logs
                .iter()
                .any(|text| message.as_str().contains(text.as_str()))
        {
            record
                .unexpected
                .push(format!("unexpected {level} log line `{message}`"));
        }
        record.logs.push(LogLine {
            level,
            message: message.to_string(),
        });
    }

    fn emit(&self, event: RStr<'_>, args: RSlice<'_, Entry<'_>>) -> RResult<RVec<Outcome>, Error> {
        let args: Vec<(String, Value<'static>)> = args
            .iter()
            .map(|e| (e.key().to_owned(), e.value().clone().into_owned()))
            .collect();
        {
            let mut record = self.kit.lock();
            if self.kit.strict && !self.kit.expected_emits.iter().any(|e| e == event.as_str()) {
                record
                    .unexpected
                    .push(format!("unexpected emit of `{event}`"));
            }
            record.emits.push(Emitted {
                event: event.to_string(),
                args: args.clone(),
            });
        }
        let outcomes = self
            .kit
            .answers
            .iter()
            .find(|(name, _)| name == event.as_str())
            .map(|(_, answer)| answer(&args))
            .unwrap_or_default();
        RResult::ROk(outcomes.into_iter().collect())
    }

    fn call(&self, operation: RStr<'_>, _argument: &Value<'_>) -> RResult<Value<'static>, Error> {
        match operation.as_str() {
            operation::MANIFEST_DIR => {
                let folder = std::path::absolute(&self.kit.manifest_dir)
                    .unwrap_or_else(|_| self.kit.manifest_dir.clone());
                RResult::ROk(Value::from(folder.to_string_lossy().as_ref()))
            }
            operation::EVENT_ID => RResult::ROk(Value::from(self.kit.event_id.as_str())),
            other => {
                if self.kit.strict {
                    self.kit
                        .lock()
                        .unexpected
                        .push(format!("unexpected host operation `{other}`"));
                }
                RResult::RErr(Error::new(format!(
                    "this host does not support the operation `{other}`"
                )))
            }
        }
    }
}

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod tests;
