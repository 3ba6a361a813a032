//! The manifest's parsing and validation, end to end on manifest text.

use super::*;

fn parse(text: &str) -> Result<ValidManifest, ManifestError> {
    ValidManifest::parse(text, Path::new("dir/events.toml"))
}

#[test]
fn event_tables_quote_what_toml_would_nest() {
    assert_eq!(event_table("user_joined"), "[events.user_joined]");
    assert_eq!(event_table("c.ping"), "[events.\"c.ping\"]");
    assert_eq!(event_table("a b"), "[events.\"a b\"]");
    // What the hint says parses back to the one event.
    let text = format!("{}\n", event_table("c.ping"));
    let table: toml::Table = text.parse().unwrap();
    assert!(table["events"].as_table().unwrap().contains_key("c.ping"));
}

#[test]
fn parses_the_documented_shape() {
    let m = parse(
        r#"
        [host]
        plugin_dir = "plugins"

        [events.user_joined]
        doc = "A user signed up"
        args = { name = "string", email = "string" }

        [events.user_lookup]
        args = { email = "string" }
        result = "first"

        [[plugins]]
        name = "database"
        config = { path = "users.db" }
        "#,
    )
    .unwrap();
    let names: Vec<_> = m.events().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["user_joined", "user_lookup"]);
    let args: Vec<_> = m.events()[0]
        .schema
        .names
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(args, ["name", "email"]);
    assert_eq!(m.events()[0].doc, "A user signed up");
    assert_eq!(m.events()[1].result, ResultPolicy::First);
    assert_eq!(m.plugin_dir(), Path::new("dir/plugins"));
    // Plain values: the library's path resolved, the host's defaults applied, the
    // config as JSON.
    let database = &m.plugins()[0];
    assert_eq!(
        database.library,
        Path::new("dir/plugins").join(library_file_name("database"))
    );
    assert!(!database.explicit_path);
    assert_eq!(database.breaker, m.host().breaker);
    assert_eq!(database.on_load_error, LoadErrorPolicy::Fail);
    assert_eq!(database.isolation, None);
    assert_eq!(
        database.config.as_ref().map(|c| c["path"].clone()),
        Some(serde_json::json!("users.db"))
    );
    assert_eq!(m.host().max_depth, DEFAULT_MAX_DEPTH);
}

#[test]
fn a_plugin_entry_is_checked_into_plain_values() {
    let m = parse(
        r#"
        [host]
        allow_writable = true
        on_load_error = "skip"
        timeout_ms = 700
        [[plugins]]
        name = "a"
        path = "./libs/../libs/liba.so"
        sha256 = "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
        isolation = "process"
        processes = 2
        breaker = { failures = 9 }
        config = { when = 1979-05-27T07:32:00Z, nested = { list = [1, 2.5, true] } }
        [[plugins]]
        name = "b"
        library = "shared"
        allow_writable = false
        on_load_error = "fail"
        isolation = "process"
        timeout_ms = 50
        "#,
    )
    .unwrap();
    let (a, b) = (&m.plugins()[0], &m.plugins()[1]);
    assert_eq!(a.library, Path::new("dir/libs/../libs/liba.so"));
    assert!(a.explicit_path);
    assert_eq!(
        a.sha256.as_deref(),
        Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
    );
    assert_eq!(
        (a.allow_writable, a.on_load_error),
        (true, LoadErrorPolicy::Skip)
    );
    assert_eq!(a.isolation, Some(Isolation::Process));
    assert_eq!((a.limits.timeout_ms, a.limits.processes), (700, 2));
    assert_eq!(a.breaker.failures, 9);
    assert_eq!(
        a.config,
        serde_json::json!({
            "when": "1979-05-27T07:32:00Z",
            "nested": {"list": [1, 2.5, true]}
        })
        .as_object()
        .cloned()
    );
    // In the default plugin folder, the manifest's own.
    assert_eq!(
        b.library,
        Path::new("dir").join(library_file_name("shared"))
    );
    assert_eq!(
        (b.allow_writable, b.on_load_error),
        (false, LoadErrorPolicy::Fail)
    );
    assert_eq!((b.limits.timeout_ms, b.limits.processes), (50, 1));
    assert!(m.plugin("b").is_some() && m.plugin("c").is_none());
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let err = parse("[host]\nplugin_dri = \"x\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("--> dir/events.toml:2:1"), "{text}");
    assert!(text.contains("2 | plugin_dri = \"x\""), "{text}");
    assert!(
        text.contains("unknown field `plugin_dri`, expected one of `plugin_dir`, `max_depth`, `breaker`, `on_load_error`, `allow_writable`, `timeout_ms`, `quarantine`, `setup_timeout_ms` (did you mean `plugin_dir`?)"),
        "{text}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = parse(
        r#"
        [events.UserJoined]
        args = { name = "strng" }
        [[plugins]]
        name = "a"
        [[plugins]]
        name = "a"
        "#,
    )
    .unwrap_err();
    let ManifestError::Invalid { problems, .. } = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert_eq!(problems.len(), 3, "{err}");
    assert!(problems[0]
        .message
        .contains("invalid event name `UserJoined`"));
    assert_eq!(problems[0].line, 2);
    assert!(problems[1].message.contains("unknown type `strng`"));
    assert!(problems[2].message.contains("listed twice"));
    assert_eq!(problems[2].line, 7);
}

#[test]
fn lines_of_tabs_render_without_overflow() {
    // Found by cargo-fuzz: annotate-snippets overflowed on long runs of tabs.
    let text = format!("[events.a]\nmax = -2\n{}%\t\0\0\0", "\t".repeat(70));
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("--> dir/events.toml:3:71"), "{err}");
}

#[test]
fn wrong_types_name_the_key() {
    let err = parse("[host]\nmax_depth = \"deep\"\n").unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn serve_settings_have_defaults_and_bounds() {
    let m = parse("").unwrap();
    assert!(m.serve().admin_token_env.is_none());
    // Checked into plain values: the address parsed, durations as durations.
    let serve = m.serve();
    assert_eq!(serve.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(serve.max_body_bytes, 1 << 20);
    assert_eq!(serve.drain_timeout, std::time::Duration::from_secs(10));
    assert_eq!(serve.workers, None);
    let m = parse(
        "[serve]
listen = \"0.0.0.0:9000\"
workers = 3
body_timeout_ms = 250
",
    )
    .unwrap();
    assert_eq!(m.serve().listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(m.serve().workers, Some(3));
    assert_eq!(
        m.serve().body_timeout,
        std::time::Duration::from_millis(250)
    );

    let err = parse(
        "[serve]\nlisten = \"localhost\"\nqueue = 0\nmax_body_bytes = 1000000000\nadmin_token_env = \"s3cret token\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    for expected in [
        "`serve.listen` must be an address and port",
        "`serve.queue` must be from 1 to 1000000 (it is 0)",
        "`serve.max_body_bytes` must be from 1 to 67108864",
        "`serve.admin_token_env` must name an environment variable",
        "events.toml:2:",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(parse("[serve]\nlisten = \"0.0.0.0:80\"\nworkers = 8\n").is_ok());
    assert!(parse("[serve]\nlistn = \"0.0.0.0:80\"\n").is_err());
}
