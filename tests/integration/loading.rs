//! Loading: config, init failures, undeclared events, shutdown order.

use switchboard::{HostError, LoadError, Switchboard};

use crate::util::Sandbox;

#[test]
fn shutdown_runs_in_reverse_load_order() {
    let sandbox = Sandbox::with_probe("");
    let log = sandbox.path("shutdown.log");
    let mut body = String::new();
    for label in ["first", "second", "third"] {
        body.push_str(&format!(
            "[[plugins]]\nname = \"{label}\"\nlibrary = \"probe\"\nconfig = {{ label = \"{label}\", shutdown_log = {:?} }}\n",
            log.to_str().unwrap()
        ));
    }
    let sandbox = Sandbox::with_probe(&body);
    let host = Switchboard::open(&sandbox.manifest()).unwrap();
    let board = host.current();
    assert!(host.shutdown().is_empty());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "third\nsecond\nfirst\n"
    );
    // Idempotent, and dropping does not run it again.
    assert!(host.shutdown().is_empty());
    drop((board, host));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 3);
}

#[test]
fn a_failing_init_stops_the_host_and_shuts_down_the_plugins_before_it() {
    let sandbox = Sandbox::with_probe("");
    let log = sandbox.path("shutdown.log");
    let sandbox = Sandbox::with_probe(&format!(
        r#"
        [[plugins]]
        name = "healthy"
        library = "probe"
        config = {{ label = "healthy", shutdown_log = {log:?} }}
        [[plugins]]
        name = "broken"
        library = "probe"
        config = {{ label = "broken", fail_init = true }}
        "#,
        log = log.to_str().unwrap()
    ));
    let err = match Switchboard::open(&sandbox.manifest()) {
        Err(HostError::Load(err)) => err,
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("a failing init must stop the host"),
    };
    assert!(
        matches!(&err, LoadError::Init { plugin, error } if plugin == "broken" && !error.is_panic())
    );
    assert_eq!(
        err.to_string(),
        "plugin `broken` failed to initialize: probe broken refuses to start (help: remove `fail_init`)"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "healthy\n");
}

#[test]
fn a_panicking_init_is_caught_and_reported() {
    let sandbox = Sandbox::with_probe(
        "[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = { label = \"p\", panic_init = true }\n",
    );
    let Err(HostError::Load(LoadError::Init { plugin, error })) =
        Switchboard::open(&sandbox.manifest())
    else {
        panic!("expected an init error");
    };
    assert_eq!(plugin, "p");
    assert!(error.is_panic());
    assert!(
        error.message().contains("probe p exploded in init"),
        "{error}"
    );
}

#[test]
fn a_bad_config_names_the_field() {
    let sandbox = Sandbox::with_probe(
        "[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = { lable = \"p\" }\n",
    );
    let err = Switchboard::open(&sandbox.manifest())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("plugin `p` failed to initialize: invalid config: unknown field `lable`"),
        "{err}"
    );
}

#[test]
fn a_callback_for_an_undeclared_event_is_refused_before_init() {
    let sandbox = Sandbox::new(
        r#"
        [events.ping]
        [events.ask]
        [events.fail]
        [events.boom]
        [events.echo]
        [events.nest]
        [events.config]
        [[plugins]]
        name = "p"
        library = "probe"
        config = { label = "p", fail_init = true }
        "#,
    );
    let err = Switchboard::open(&sandbox.manifest()).err().unwrap();
    let HostError::Load(LoadError::UndeclaredEvent {
        plugin,
        callback,
        event,
        ..
    }) = &err
    else {
        panic!("expected UndeclaredEvent, got {err}");
    };
    assert_eq!(
        (plugin.as_str(), callback.as_str(), event.as_str()),
        ("p", "cycle", "cycle")
    );
    assert!(err.to_string().contains("as [events.cycle]"), "{err}");
}

#[test]
fn a_missing_library_says_where_it_looked() {
    let sandbox = Sandbox::new("[[plugins]]\nname = \"nowhere\"\n");
    let err = Switchboard::open(&sandbox.manifest()).err().unwrap();
    let HostError::Load(LoadError::Missing { plugin, path }) = &err else {
        panic!("expected Missing, got {err}");
    };
    assert_eq!(plugin, "nowhere");
    assert!(path.ends_with(format!(
        "{}nowhere{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )));
}
