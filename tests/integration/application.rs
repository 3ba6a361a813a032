//! Application callbacks: closures the embedding program registers on a running host,
//! dispatched among the real probe plugin's callbacks, checked against the manifest like a
//! plugin's, guarded, counted, and kept over reloads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard::{AppCallback, HostError, LoadError, Switchboard};
use switchboard_plugin_api::{Error as PluginError, Value};

use crate::util::{summarize, Sandbox};

/// A sandbox with the probe's events and one probe plugin, `p`, that logs its shutdown and
/// its count of pings into the sandbox.
fn sandbox() -> Sandbox {
    let s = Sandbox::with_probe("");
    let log = |name: &str| s.path(name).to_str().unwrap().to_owned();
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    let plugin = format!(
        "[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = {{ label = \"p\", shutdown_log = {:?}, calls_log = {:?} }}\n",
        log("shutdown.log"),
        log("calls.log")
    );
    std::fs::write(s.manifest(), manifest + &plugin).unwrap();
    s
}

fn constant(event: &str, name: &str, answer: &'static str) -> AppCallback {
    AppCallback::new(event, name, move |_args, _host| Ok(Value::from(answer)))
}

#[test]
fn application_callbacks_run_in_priority_order_among_the_plugins_callbacks() {
    let s = sandbox();
    let host = Switchboard::open(&s.manifest()).unwrap();
    // The probe's `ping` callbacks: ping_urgent (100), ping, ping_again (0).
    host.register(constant("ping", "first", "app.first").priority(200))
        .unwrap();
    host.register(constant("ping", "middle", "app.middle").priority(50))
        .unwrap();
    host.register(constant("ping", "last", "app.last")).unwrap();
    let board = host.current();
    let outcomes = board.emit_named("ping", []).unwrap();
    assert_eq!(
        summarize(&board, &outcomes),
        [
            "app.first = \"app.first\"",
            "p.ping_urgent = \"p.ping_urgent\"",
            "app.middle = \"app.middle\"",
            "p.ping = \"p.ping\"",
            "p.ping_again = \"p.ping_again\"",
            "app.last = \"app.last\"",
        ]
    );
    // Shown and counted like a plugin.
    let status = board.plugins();
    let app = status.iter().find(|p| p.meta.name == "app").unwrap();
    assert_eq!(
        app.meta.info.kind(),
        switchboard::load::PluginKind::Application
    );
    assert_eq!(app.counts.calls, 3);
    assert!(app.breaker.is_some());
}

#[test]
fn registering_keeps_the_plugins_running_and_a_reload_keeps_the_callbacks() {
    let s = sandbox();
    let host = Switchboard::open(&s.manifest()).unwrap();
    let first = host.current_number();
    assert_eq!(first, host.current().number());
    host.current().emit_named("ping", []).unwrap();
    host.register(constant("ping", "seen", "app.seen")).unwrap();
    // Every new generation is announced by its number, which callers key caches on.
    assert!(host.current_number() > first);
    assert_eq!(host.current_number(), host.current().number());
    host.current().emit_named("ping", []).unwrap();
    let registered = host.current_number();
    let reloaded = host.reload(&s.manifest()).unwrap();
    assert_eq!(reloaded.carried, ["p", "app"].map(String::from));
    assert_eq!(host.current_number(), reloaded.generation);
    assert!(host.current_number() > registered);
    let board = host.current();
    let outcomes = board.emit_named("ping", []).unwrap();
    assert!(summarize(&board, &outcomes).contains(&"app.seen = \"app.seen\"".to_owned()));
    drop(board);
    host.shutdown();
    // One instance of the probe the whole time: it shut down once, having seen all three
    // pings (a new instance would have started from zero).
    assert_eq!(
        std::fs::read_to_string(s.path("shutdown.log")).unwrap(),
        "p\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("calls.log")).unwrap(),
        "p 3\n"
    );
}

#[test]
fn a_callback_that_does_not_fit_the_manifest_is_refused_and_nothing_changes() {
    let s = sandbox();
    let host = Switchboard::open(&s.manifest()).unwrap();
    let refused = |callback: AppCallback| match host.register(callback) {
        Err(HostError::Load(error)) => error,
        other => panic!("expected a load error, got {other:?}"),
    };
    let error = refused(constant("pnig", "typo", "x"));
    assert!(
        matches!(error, LoadError::UndeclaredEvent { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("did you mean `ping`"), "{error}");
    let error = refused(constant("echo", "wrong", "x").reads([("name", "int")]));
    assert!(matches!(error, LoadError::ArgsMismatch { .. }), "{error}");
    assert!(error.to_string().contains("name"), "{error}");
    let error = refused(constant("echo", "unknown", "x").reads([("nmae", "string")]));
    assert!(error.to_string().contains("nmae"), "{error}");
    let error = refused(constant("echo", "typo_type", "x").reads([("name", "strnig")]));
    assert!(error.to_string().contains("not a type"), "{error}");
    let error = refused(constant("ping", "bad name!", "x"));
    assert!(
        matches!(error, LoadError::BadRegistration { .. }),
        "{error}"
    );
    let error = refused(constant("ping", "clash", "x").application("p"));
    assert!(error.to_string().contains("as a plugin of"), "{error}");
    host.register(constant("ping", "twice", "x")).unwrap();
    let error = refused(constant("ping", "twice", "y"));
    assert!(
        error
            .to_string()
            .contains("two callbacks are named `twice`"),
        "{error}"
    );
    // Only the one good registration changed anything.
    assert_eq!(host.applications().len(), 1);
    let board = host.current();
    let names: Vec<&str> = board
        .registry()
        .callbacks()
        .iter()
        .filter(|c| c.plugin_name == "app")
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["twice"]);
    // A typed callback that fits is accepted.
    host.register(constant("echo", "typed", "x").reads([("name", "string"), ("age", "int?")]))
        .unwrap();
}

#[test]
fn a_reload_the_callbacks_no_longer_fit_is_refused_and_the_host_runs_on() {
    let s = sandbox();
    let host = Switchboard::open(&s.manifest()).unwrap();
    host.register(constant("echo", "typed", "x").reads([("name", "string")]))
        .unwrap();
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    std::fs::write(
        s.manifest(),
        manifest.replace(
            "args = { name = \"string\", age = \"int?\" }",
            "args = { name = \"int\", age = \"int?\" }",
        ),
    )
    .unwrap();
    let error = host.reload(&s.manifest()).unwrap_err();
    assert!(error.to_string().contains("app.typed"), "{error}");
    let board = host.current();
    let outcomes = board
        .emit_named("echo", [("name", Value::from("Ann"))])
        .unwrap();
    assert!(summarize(&board, &outcomes).contains(&"app.typed = \"x\"".to_owned()));
}

#[test]
fn a_failing_or_panicking_application_callback_is_its_own_failure() {
    let s = sandbox();
    let host = Switchboard::open(&s.manifest()).unwrap();
    host.register(
        AppCallback::new("ping", "refuses", |_args, _host| {
            Err(PluginError::new("no thanks").with_help("ask later"))
        })
        .priority(300),
    )
    .unwrap();
    host.register(
        AppCallback::new("ping", "explodes", |_args, _host| panic!("app exploded")).priority(250),
    )
    .unwrap();
    let board = host.current();
    let outcomes = board.emit_named("ping", []).unwrap();
    let lines = summarize(&board, &outcomes);
    assert!(lines[0].starts_with("app.refuses ! no thanks"), "{lines:?}");
    assert!(lines[1].contains("app exploded"), "{lines:?}");
    assert!(outcomes
        .iter()
        .nth(1)
        .unwrap()
        .result
        .as_ref()
        .unwrap_err()
        .is_panic());
    // The plugin's three callbacks ran after them.
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[2..]
        .iter()
        .all(|l| l.starts_with("p.") && l.contains(" = ")));
    let app = board
        .plugins()
        .into_iter()
        .find(|p| p.meta.name == "app")
        .unwrap();
    assert_eq!(app.counts.errors, 2, "{:?}", app.counts);
    assert_eq!(app.counts.panics, 1, "{:?}", app.counts);
}

#[test]
fn an_application_callback_reads_arguments_emits_again_and_can_be_removed() {
    let s = sandbox();
    let host = Switchboard::open(&s.manifest()).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    host.register(
        AppCallback::new("echo", "nests", move |args, host| {
            counter.fetch_add(1, Ordering::SeqCst);
            let name = args.str("name")?;
            let nested = host.emit("ping", [])?;
            Ok(Value::from(format!(
                "{name}:{}:{}",
                nested.len(),
                host.event_id().is_some()
            )))
        })
        .reads([("name", "string")]),
    )
    .unwrap();
    let board = host.current();
    let outcomes = board
        .emit_named("echo", [("name", Value::from("Ann"))])
        .unwrap();
    assert!(
        summarize(&board, &outcomes).contains(&"app.nests = \"Ann:3:true\"".to_owned()),
        "{:?}",
        summarize(&board, &outcomes)
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(host.unregister("app", "nests").unwrap());
    assert!(!host.unregister("app", "nests").unwrap());
    let board = host.current();
    let outcomes = board
        .emit_named("echo", [("name", Value::from("Bo"))])
        .unwrap();
    assert_eq!(summarize(&board, &outcomes).len(), 1);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
