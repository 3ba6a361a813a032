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
//!         callbacks.on("user_joined", Self::welcome);
//!     }
//! }
//!
//! impl Greeter {
//!     fn welcome(&self, args: &Args, host: &Host) -> Result<String> {
//!         let name = args.str("name")?;
//!         host.info(format!("greeting {name}"));
//!         Ok(format!("{}, {name}!", self.greeting))
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
use std::sync::Mutex;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use serde::Serialize;

use crate::abi::{level, operation, HostApi, HostApi_TO, Outcome};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::export::{catch_panic, parse_config};
use crate::host::Host;
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

type EmitAnswer = Box<dyn Fn(&[(String, Value<'static>)]) -> Vec<Outcome> + Send + Sync>;

#[derive(Default)]
struct Record {
    logs: Vec<LogLine>,
    emits: Vec<Emitted>,
    unexpected: Vec<String>,
}

/// A recording host for tests: see the module docs.
pub struct TestHost {
    plugin_name: String,
    manifest_dir: PathBuf,
    strict: bool,
    expected_emits: Vec<String>,
    expected_logs: Vec<String>,
    answers: Vec<(String, EmitAnswer)>,
    record: Mutex<Record>,
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
            plugin_name: "test".to_owned(),
            manifest_dir: PathBuf::from("."),
            strict: false,
            expected_emits: Vec::new(),
            expected_logs: Vec::new(),
            answers: Vec::new(),
            record: Mutex::new(Record::default()),
        }
    }

    /// The plugin's manifest name, as `Host::plugin_name` reports it.
    pub fn named(mut self, name: &str) -> Self {
        self.plugin_name = name.to_owned();
        self
    }

    /// The folder `Host::resolve_path` resolves config paths against (a temporary folder,
    /// say), as the manifest's folder would be.
    pub fn with_manifest_dir(mut self, folder: impl AsRef<Path>) -> Self {
        self.manifest_dir = folder.as_ref().to_owned();
        self
    }

    /// Fails the test on any emit, log line or host operation not announced with
    /// [`TestHost::expect_emit`] or [`TestHost::expect_log`].
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// In strict mode, allows emits of `event`.
    pub fn expect_emit(mut self, event: &str) -> Self {
        self.expected_emits.push(event.to_owned());
        self
    }

    /// In strict mode, allows log lines that contain `text`.
    pub fn expect_log(mut self, text: &str) -> Self {
        self.expected_logs.push(text.to_owned());
        self
    }

    /// Answers emits of `event` with these outcomes (by default an emit has none, as when
    /// no other plugin listens).
    pub fn on_emit(
        mut self,
        event: &str,
        answer: impl Fn(&[(String, Value<'static>)]) -> Vec<Outcome> + Send + Sync + 'static,
    ) -> Self {
        self.answers.push((event.to_owned(), Box::new(answer)));
        self
    }

    /// Runs the plugin's `init` with `config` (anything serde serializes: a
    /// `serde_json::json!({...})`, a struct), as the host does with the manifest's table.
    pub fn start<P: Plugin>(&self, config: impl Serialize) -> Result<Started<'_, P>> {
        let config = Value::from_serialize(&config)?;
        let plugin = self.with_host(|host| {
            catch_panic(|| {
                let config: P::Config = parse_config(&config)?;
                P::init(config, host)
            })
            .and_then(|r| r)
        })?;
        let mut callbacks = Callbacks::new();
        P::register(&mut callbacks);
        Ok(Started {
            host: self,
            plugin,
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
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_host<T>(&self, body: impl FnOnce(&Host<'_>) -> T) -> T {
        let recorder = Recorder { kit: self };
        let host = Host::from_raw(HostApi_TO::from_ptr(RRef::new(&recorder), TD_Opaque));
        let result = body(&host);
        self.fail_on_unexpected();
        result
    }

    /// A strict host's complaint reaches the test here, outside the plugin: a panic inside
    /// a host call would cross the plugin boundary.
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
    plugin: P,
    callbacks: Callbacks<P>,
}

impl<P: Plugin> Started<'_, P> {
    /// Runs every callback the plugin registered for `event`, highest priority first, then
    /// in registration order, and returns their results. Arguments are given by name;
    /// nothing checks them against a manifest.
    pub fn emit<'v>(
        &self,
        event: &str,
        args: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) -> Vec<Called> {
        let (names, values): (Vec<_>, Vec<_>) = args.into_iter().unzip();
        let names: Vec<abi_stable::std_types::RString> =
            names.into_iter().map(Into::into).collect();
        let args = Args::new(event, &names, &values);
        let mut order: Vec<_> = self
            .callbacks
            .entries
            .iter()
            .filter(|c| c.event == event)
            .collect();
        order.sort_by_key(|c| std::cmp::Reverse(c.priority));
        self.host.with_host(|host| {
            order
                .into_iter()
                .map(|callback| {
                    let mut slot = RResult::ROk(Value::NULL);
                    let result =
                        match catch_panic(|| (callback.func)(&self.plugin, &args, host, &mut slot))
                        {
                            Ok(_) => slot.into_result(),
                            Err(panicked) => Err(panicked),
                        };
                    Called {
                        callback: callback.name.clone(),
                        result,
                    }
                })
                .collect()
        })
    }

    /// The plugin's state, to check what a callback changed.
    pub fn plugin(&self) -> &P {
        &self.plugin
    }

    /// Runs the plugin's `shutdown`, as the host does after its last callback.
    pub fn shutdown(self) -> Result<()> {
        self.host
            .with_host(|host| catch_panic(|| self.plugin.shutdown(host)).and_then(|r| r))
    }
}

/// The host side of the kit: records, and in strict mode notes what was not expected.
struct Recorder<'k> {
    kit: &'k TestHost,
}

impl HostApi for Recorder<'_> {
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
mod tests {
    use super::*;
    use crate::plugin::NoConfig;

    struct Relay;

    impl Plugin for Relay {
        type Config = NoConfig;
        fn init(_: NoConfig, host: &Host<'_>) -> Result<Self> {
            host.debug("relay ready");
            Ok(Relay)
        }
        fn register(callbacks: &mut Callbacks<Self>) {
            callbacks.on("ping", |_: &Relay, args: &Args<'_>, host: &Host<'_>| {
                let outcomes = host.emit("pong", [("n", Value::from(args.i64("n")? + 1))])?;
                Ok(outcomes.len() as i64)
            });
            callbacks
                .on(
                    "boom",
                    |_: &Relay, _: &Args<'_>, _: &Host<'_>| -> Result<()> {
                        panic!("relay exploded")
                    },
                )
                .name("boom");
        }
    }

    #[test]
    fn records_emits_and_answers_them() {
        let host = TestHost::new().on_emit("pong", |args| {
            vec![Outcome::new("other", "got", Ok(args[0].1.clone()))]
        });
        let relay = host.start::<Relay>(serde_json::json!({})).unwrap();
        let results = relay.emit("ping", [("n", Value::from(41))]);
        assert_eq!(results[0].value().unwrap().as_i64(), Some(1), "one answer");
        assert_eq!(host.emits()[0].event, "pong");
        assert_eq!(host.emits()[0].args[0].1.as_i64(), Some(42));
        assert_eq!(host.logs()[0].message, "relay ready");
    }

    #[test]
    fn a_panicking_callback_is_an_error_as_in_the_host() {
        let host = TestHost::new();
        let relay = host.start::<Relay>(serde_json::json!({})).unwrap();
        let results = relay.emit("boom", []);
        let error = results[0].value().unwrap_err();
        assert!(
            error.is_panic() && error.message().contains("relay exploded"),
            "{error}"
        );
    }

    #[test]
    fn a_strict_host_fails_the_test_on_what_it_did_not_expect() {
        let host = TestHost::new().strict().expect_log("relay ready");
        let relay = host.start::<Relay>(serde_json::json!({})).unwrap();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            relay.emit("ping", [("n", Value::from(1))])
        }));
        let message = failed
            .err()
            .and_then(|p| p.downcast::<String>().ok())
            .expect("the unexpected emit fails the test");
        assert!(message.contains("unexpected emit of `pong`"), "{message}");

        let allowed = TestHost::new()
            .strict()
            .expect_log("ready")
            .expect_emit("pong");
        let relay = allowed.start::<Relay>(serde_json::json!({})).unwrap();
        assert!(relay.emit("ping", [("n", Value::from(1))])[0]
            .result
            .is_ok());
    }

    #[test]
    fn a_config_that_does_not_fit_fails_init_like_the_host() {
        let host = TestHost::new();
        let error = host
            .start::<Relay>(serde_json::json!({"unknown": 1}))
            .err()
            .expect("NoConfig refuses keys");
        assert!(error.message().contains("invalid config"), "{error}");
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use serde::Deserialize;

    /// A config type that forgot `deny_unknown_fields`, with a default.
    #[derive(Deserialize)]
    struct Loose {
        #[serde(default = "red")]
        color: String,
    }

    fn red() -> String {
        "red".to_owned()
    }

    struct Painter(String);

    impl Plugin for Painter {
        type Config = Loose;
        fn init(config: Loose, _: &Host<'_>) -> Result<Self> {
            Ok(Painter(config.color))
        }
        fn register(_: &mut Callbacks<Self>) {}
    }

    #[test]
    fn an_unknown_config_key_is_refused_even_without_deny_unknown_fields() {
        let host = TestHost::new();
        let error = host
            .start::<Painter>(serde_json::json!({"colour": "blue"}))
            .err()
            .expect("a misspelt key must not fall back to the default");
        assert_eq!(error.message(), "invalid config: unknown key `colour`");
        assert!(error.help().is_some_and(|h| h.contains("spelling")));
        let painter = host.start::<Painter>(serde_json::json!({})).unwrap();
        assert_eq!(painter.plugin().0, "red", "defaults still apply");
    }
}
