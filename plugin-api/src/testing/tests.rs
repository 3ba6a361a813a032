//! The test host against a plugin that relays, logs, emits and answers control calls.

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
        callbacks.on(
            "ping",
            "relay",
            |_: &Relay, args: &Args<'_>, host: &Host<'_>| {
                let outcomes = host.emit("pong", [("n", Value::from(args.i64("n")? + 1))])?;
                Ok(outcomes.len() as i64)
            },
        );
        callbacks.on(
            "boom",
            "boom",
            |_: &Relay, _: &Args<'_>, _: &Host<'_>| -> Result<()> { panic!("relay exploded") },
        );
        callbacks.on("joined", "greet", Relay::greet).priority(5);
    }

    fn control(
        &self,
        operation: &str,
        argument: &Value<'_>,
        _: &Host<'_>,
    ) -> Result<Value<'static>> {
        match operation {
            "echo" => Ok(argument.clone().into_owned()),
            _ => Err(Error::unsupported(format!("no operation `{operation}`"))),
        }
    }
}

#[derive(serde::Deserialize, crate::Args)]
struct Joined<'a> {
    name: &'a str,
    age: Option<i64>,
}

impl Relay {
    fn greet(&self, user: Joined<'_>, _: &Host<'_>) -> Result<String> {
        Ok(format!("{} ({})", user.name, user.age.unwrap_or(-1)))
    }
}

#[test]
fn typed_callbacks_read_borrowed_fields_and_say_what_they_read() {
    let host = TestHost::new();
    let relay = host.start::<Relay>(serde_json::json!({})).unwrap();
    let name = String::from("Ann");
    let results = relay.emit(
        "joined",
        [("name", Value::borrowed(&name)), ("age", Value::from(36))],
    );
    assert_eq!(results[0].value().unwrap().as_str(), Some("Ann (36)"));
    let results = relay.emit(
        "joined",
        [("name", Value::borrowed(&name)), ("age", Value::NULL)],
    );
    assert_eq!(
        results[0].value().unwrap().as_str(),
        Some("Ann (-1)"),
        "null is absent"
    );
    let results = relay.emit("joined", [("name", Value::from(7))]);
    let error = results[0].value().unwrap_err();
    assert!(
        error.message().contains(
            "argument `name` of event `joined` does not fit: invalid type: integer `7`, expected a borrowed string"
        ),
        "{error}"
    );

    let registrations = relay.registrations();
    let greet = registrations
        .iter()
        .find(|r| r.callback == "greet")
        .unwrap();
    assert_eq!(greet.priority, 5);
    assert_eq!(
        greet.reads,
        Some(vec![
            ("name".into(), "string".into()),
            ("age".into(), "int?".into())
        ])
    );
    assert_eq!(
        registrations[0].reads, None,
        "a dynamic callback reads anything"
    );
}

#[test]
fn control_reaches_the_plugin_and_unknown_operations_are_unsupported() {
    let host = TestHost::new();
    let relay = host.start::<Relay>(serde_json::json!({})).unwrap();
    assert_eq!(
        relay.control("echo", &Value::from(3)).unwrap(),
        Value::from(3)
    );
    assert!(relay
        .control("reset", &Value::NULL)
        .unwrap_err()
        .is_unsupported());
}

struct Twice;

impl Plugin for Twice {
    type Config = NoConfig;
    fn init(_: NoConfig, _: &Host<'_>) -> Result<Self> {
        Ok(Twice)
    }
    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks.on("a", "same", |_: &Twice, _: &Args<'_>, _: &Host<'_>| Ok(()));
        callbacks.on("b", "same", |_: &Twice, _: &Args<'_>, _: &Host<'_>| Ok(()));
    }
}

#[test]
fn callback_names_must_be_unique() {
    let error = TestHost::new()
        .start::<Twice>(serde_json::json!({}))
        .err()
        .unwrap();
    assert!(
        error.message().contains("two callbacks are named `same`"),
        "{error}"
    );
}

struct Ticker;

impl Plugin for Ticker {
    type Config = NoConfig;
    fn init(_: NoConfig, host: &Host<'_>) -> Result<Self> {
        let handle = host.keep()?;
        std::thread::spawn(move || {
            handle.host().info("tick from my thread");
            handle.host().emit("ticked", [("n", Value::from(1))])
        })
        .join()
        .map_err(|_| Error::new("the ticker thread panicked"))??;
        Ok(Ticker)
    }
    fn register(_: &mut Callbacks<Self>) {}
}

#[test]
fn a_kept_handle_works_from_another_thread() {
    let host = TestHost::new();
    host.start::<Ticker>(serde_json::json!({})).unwrap();
    assert_eq!(host.logs()[0].message, "tick from my thread");
    assert_eq!(host.emits()[0].event, "ticked");
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
