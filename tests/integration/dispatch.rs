//! Dispatch through the library API: order, results, nesting, failures, schema checks.

use switchboard::{EmitError, Switchboard};
use switchboard_plugin_api::Value;

use crate::util::{summarize, Running, Sandbox, PROBE_EVENTS};

/// Two instances of the probe library, `a` and `b`; `host` goes into `[host]`.
fn two_probes(host: &str) -> (Sandbox, Running) {
    let sandbox = Sandbox::new(&format!(
        r#"
        {host}
        {PROBE_EVENTS}
        [[plugins]]
        name = "a"
        library = "probe"
        config = {{ label = "a" }}

        [[plugins]]
        name = "b"
        library = "probe"
        config = {{ label = "b", answer = "42" }}
        "#
    ));
    let board = Running::open(&sandbox.manifest());
    (sandbox, board)
}

#[test]
fn callbacks_run_by_priority_then_manifest_order_then_registration_order() {
    let (_sandbox, board) = two_probes("");
    let ping = board.event("ping").unwrap();
    let outcomes = board.emit(ping, &[]).unwrap();
    assert_eq!(
        summarize(&board, &outcomes),
        [
            r#"a.ping_urgent = "a.ping_urgent""#,
            r#"b.ping_urgent = "b.ping_urgent""#,
            r#"a.ping = "a.ping""#,
            r#"a.ping_again = "a.ping_again""#,
            r#"b.ping = "b.ping""#,
            r#"b.ping_again = "b.ping_again""#,
        ]
    );
}

#[test]
fn result_first_stops_at_the_first_non_null_value() {
    let sandbox = Sandbox::with_probe(
        r#"
        [[plugins]]
        name = "silent"
        library = "probe"
        config = { label = "silent" }
        [[plugins]]
        name = "answers"
        library = "probe"
        config = { label = "answers", answer = "42" }
        [[plugins]]
        name = "never_asked"
        library = "probe"
        config = { label = "never_asked", answer = "7" }
        "#,
    );
    let host = Switchboard::open(&sandbox.manifest()).unwrap();
    let board = host.current();
    let outcomes = board.emit(board.event("ask").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &outcomes),
        ["silent.ask = null", r#"answers.ask = "42""#]
    );
    assert_eq!(outcomes.first_value().and_then(Value::as_str), Some("42"));
}

#[test]
fn one_library_under_two_names_gets_two_configs() {
    let (_sandbox, board) = two_probes("");
    let outcomes = board.emit(board.event("config").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &outcomes),
        [
            r#"a.config = {"label":"a"}"#,
            r#"b.config = {"answer":"42","label":"b"}"#
        ]
    );
    assert_eq!(board.plugins()[0].meta.path, board.plugins()[1].meta.path);
}

#[test]
fn nested_emit_returns_the_inner_results() {
    let (_sandbox, board) = two_probes("");
    let outcomes = board.emit(board.event("nest").unwrap(), &[]).unwrap();
    let first = outcomes.iter().next().unwrap().result.unwrap();
    let inner: Vec<_> = first
        .as_list()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        inner,
        [
            "a.ping_urgent",
            "b.ping_urgent",
            "a.ping",
            "a.ping_again",
            "b.ping",
            "b.ping_again"
        ]
    );
}

#[test]
fn a_cycle_of_nested_emits_ends_at_the_depth_limit_with_the_chain() {
    let (_sandbox, board) = two_probes("max_depth = 4");
    let outcomes = board
        .emit(board.event("cycle").unwrap(), &[Value::from(1)])
        .unwrap();
    let (_, error) = outcomes.failures().next().expect("the cycle must fail");
    let message = error.message();
    assert!(
        message.contains(
            "nested emit deeper than max_depth = 4: cycle -> cycle -> cycle -> cycle -> cycle"
        ),
        "{message}"
    );
    assert!(!error.is_panic());
}

#[test]
fn a_failing_or_panicking_callback_does_not_stop_the_others() {
    let (_sandbox, board) = two_probes("");
    let boom = board.emit(board.event("boom").unwrap(), &[]).unwrap();
    let summary = summarize(&board, &boom);
    assert_eq!(boom.len(), 2, "{summary:?}");
    for (outcome, label) in boom.iter().zip(["a", "b"]) {
        let error = outcome.result.as_ref().unwrap_err();
        assert!(error.is_panic(), "{error}");
        assert!(
            error
                .message()
                .starts_with(&format!("probe {label} exploded (at ")),
            "{error}"
        );
    }
    let fail = board.emit(board.event("fail").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &fail),
        [
            "a.fail ! probe a refuses (help: do not emit `fail`)",
            "b.fail ! probe b refuses (help: do not emit `fail`)"
        ]
    );
    // The host goes on after the panics.
    assert_eq!(
        board.emit(board.event("ping").unwrap(), &[]).unwrap().len(),
        6
    );
}

#[test]
fn on_error_stop_skips_the_remaining_callbacks() {
    let sandbox = Sandbox::new(
        r#"
        [events.ping]
        [events.ask]
        [events.fail]
        on_error = "stop"
        [events.boom]
        [events.echo]
        [events.nest]
        [events.cycle]
        args = { n = "int" }
        [events.config]
        [events.whoami]
        args = { nest = "bool?" }
        [[plugins]]
        name = "a"
        library = "probe"
        config = { label = "a" }
        [[plugins]]
        name = "b"
        library = "probe"
        config = { label = "b" }
        "#,
    );
    let host = Switchboard::open(&sandbox.manifest()).unwrap();
    let board = host.current();
    let outcomes = board.emit(board.event("fail").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &outcomes),
        ["a.fail ! probe a refuses (help: do not emit `fail`)"]
    );
}

#[test]
fn arguments_are_checked_against_the_schema_before_any_callback() {
    let (_sandbox, board) = two_probes("");
    let echo = board.event("echo").unwrap();

    let wrong = board.emit_named(
        "echo",
        [("name", Value::from("Ann")), ("age", Value::from("old"))],
    );
    assert_eq!(
        wrong.unwrap_err().to_string(),
        "argument `age` of event `echo`: expected int?, got a string"
    );
    let missing = board.emit_named("echo", [("age", Value::from(3))]);
    assert!(matches!(missing, Err(EmitError::MissingArg { ref arg, .. }) if arg == "name"));
    let unknown = board.emit_named("echo", [("nam", Value::from("Ann"))]);
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("has no argument `nam` (did you mean `name`?)"));
    let arity = board.emit(echo, &[Value::from("Ann")]);
    assert!(matches!(
        arity,
        Err(EmitError::WrongArity {
            expected: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        board.event("pong"),
        Err(EmitError::UnknownEvent { .. })
    ));

    // Borrowed arguments reach every callback; the optional one is null.
    let outcomes = board
        .emit_named("echo", [("name", Value::borrowed("Ann"))])
        .unwrap();
    assert_eq!(
        summarize(&board, &outcomes),
        [
            r#"a.echo = {"name":"Ann","age":null}"#,
            r#"b.echo = {"name":"Ann","age":null}"#
        ]
    );
}

#[test]
fn emit_into_reuses_the_outcome_buffer() {
    let (_sandbox, board) = two_probes("");
    let ping = board.event("ping").unwrap();
    let mut outcomes = switchboard::Outcomes::new();
    for _ in 0..3 {
        board.emit_into(ping, &[], &mut outcomes).unwrap();
        assert_eq!(outcomes.len(), 6);
    }
}
