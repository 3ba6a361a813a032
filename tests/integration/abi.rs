//! The binary interface across plugin-api versions: a plugin built against the frozen
//! copy of plugin-api 1.0.0 in `tests/abi/v1.0` must keep loading in the current host.

use std::sync::OnceLock;

use switchboard::{ControlError, Switchboard};
use switchboard_plugin_api::Value;

use std::path::Path;

use crate::util::{cargo, profile_dir, summarize, workspace, Sandbox, PROBE_EVENTS};

fn profile_flag() -> &'static str {
    if profile_dir().ends_with("debug") {
        "dev"
    } else {
        "release"
    }
}

/// Builds `tests/abi/v1.0` (its own workspace) into the shared target folder, once.
fn build_legacy() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        crate::util::build();
        let profile = profile_dir();
        let status = cargo()
            .args([
                "build",
                "--manifest-path",
                "tests/abi/v1.0/Cargo.toml",
                "--locked",
            ])
            .args([
                "--profile",
                if profile.ends_with("debug") {
                    "dev"
                } else {
                    "release"
                },
            ])
            .arg("--target-dir")
            .arg(profile.parent().unwrap())
            .status()
            .expect("cannot run cargo");
        assert!(
            status.success(),
            "building the plugin-api 1.0 fixture failed"
        );
    });
}

/// The events of the 1.0 fixtures: the probe's, and two only `legacy` handles.
const LEGACY_EVENTS: &str = r#"
[events.values]
args = { value = "any" }
[events.spawn]
"#;

fn legacy_sandbox() -> Sandbox {
    build_legacy();
    Sandbox::new(&format!(
        r#"
        {PROBE_EVENTS}
        {LEGACY_EVENTS}
        [[plugins]]
        name = "old"
        library = "legacy"
        config = {{ label = "old" }}
        [[plugins]]
        name = "bare"
        library = "bare"
        [[plugins]]
        name = "new"
        library = "probe"
        config = {{ label = "new" }}
        "#
    ))
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_loads_and_runs_in_this_host() {
    let sandbox = legacy_sandbox();
    let host = Switchboard::open(&sandbox.manifest()).unwrap();
    let board = host.current();
    let info = &board.plugins()[0].meta.info;
    assert_eq!(info.api_version, "1.0.0");
    assert!(info.features.iter().any(|f| f == "typed_args"), "{info:?}");

    // Typed and by-name arguments, priorities and names; the request id reaches the plugin.
    let echo = board
        .emit_named(
            "echo",
            [("name", Value::borrowed("Ann")), ("age", Value::from(36))],
        )
        .unwrap();
    let lines = summarize(&board, &echo);
    assert_eq!(lines[0], r#"old.echo = "old saw Ann (Some(36))""#);
    assert_eq!(
        lines[1],
        format!(
            r#"old.echo_by_name = {{"name":"Ann","request":{}}}"#,
            echo.request_id()
        )
    );
    assert!(echo.request_id() > 0);
    let left_out = board
        .emit_named("echo", [("name", Value::borrowed("Bo"))])
        .unwrap();
    assert_eq!(
        summarize(&board, &left_out)[0],
        r#"old.echo = "old saw Bo (None)""#
    );

    // Values of every kind, both ways.
    let given = Value::from_json(&serde_json::json!({"a": [1, 2.5, null, "x"]}));
    let values = board.emit_named("values", [("value", given)]).unwrap();
    assert_eq!(
        values.first_value().unwrap().to_json(),
        serde_json::json!({
            "null": null, "bool": true, "int": -7, "float": 2.5, "string": "text",
            "bytes": [0, 255], "list": [1, "two"], "map": {"k": false},
            "given": {"a": [1, 2.5, null, "x"]}
        })
    );

    // A nested emit, and an emit from the plugin's own thread through a kept handle.
    let ping = board.emit(board.event("ping").unwrap(), &[]).unwrap();
    assert!(summarize(&board, &ping).contains(&r#"bare.pong = "pong""#.to_owned()));
    let nest = board.emit(board.event("nest").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &nest)[0],
        format!("old.nest = {}", ping.len())
    );
    let spawn = board.emit(board.event("spawn").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &spawn),
        [format!("old.spawn = {}", ping.len())]
    );

    // Errors and panics.
    let fail = board.emit(board.event("fail").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &fail)[0],
        "old.fail ! legacy refuses (help: it always does)"
    );
    let boom = board.emit(board.event("boom").unwrap(), &[]).unwrap();
    let error = boom.iter().next().unwrap().result.unwrap_err();
    assert!(
        error.is_panic() && error.message().contains("legacy exploded"),
        "{error}"
    );

    // Control: an operation it knows, one it does not, and a plugin with none at all.
    assert_eq!(
        board.control("old", "echo", &Value::from(3)).unwrap(),
        Value::from(3)
    );
    assert_eq!(
        board.control("old", "calls", &Value::NULL).unwrap(),
        Value::from(4),
        "two echo emits, two callbacks each"
    );
    for (plugin, operation) in [("old", "reset"), ("bare", "calls")] {
        match board.control(plugin, operation, &Value::NULL) {
            Err(ControlError::Plugin { error, .. }) => {
                assert!(error.is_unsupported(), "{error}")
            }
            other => panic!("expected an unsupported operation, got {other:?}"),
        }
    }
    assert!(matches!(
        board.control("olld", "calls", &Value::NULL),
        Err(ControlError::UnknownPlugin { suggestion, .. }) if suggestion.contains("`old`")
    ));
    drop(board);
    assert!(host.shutdown().is_empty());
}

#[test]
fn a_1_0_plugin_logs_through_the_host_and_shuts_down() {
    let sandbox = legacy_sandbox();
    let run = sandbox.run(&["--verbose", "emit", "echo", "name=Ann"]);
    run.assert_code(0);
    let stderr = run.stderr();
    assert!(stderr.contains("legacy `old` starting"), "{stderr}");
    assert!(
        stderr.contains("legacy shutting down after 2 calls"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_typed_callback_that_reads_an_undeclared_argument() {
    build_legacy();
    let sandbox = Sandbox::new(&format!(
        r#"
        {}
        {LEGACY_EVENTS}
        [[plugins]]
        name = "audit"
        library = "legacy"
        config = {{ label = "x" }}
        "#,
        PROBE_EVENTS.replace(
            r#"args = { name = "string", age = "int?" }"#,
            r#"args = { nmae = "string", age = "int?" }"#
        )
    ));
    let run = sandbox.run(&["check"]);
    run.assert_code(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains(
            "callback audit.echo reads `name`, but `echo` declares nmae, age (did you mean `nmae`?)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("fix [events.echo] in"), "{stderr}");

    // A type it cannot read, and a required field for an optional argument.
    for (args, problem) in [
        (
            r#"args = { name = "int", age = "int?" }"#,
            "reads `name` as string, but `echo` declares it int",
        ),
        (
            r#"args = { name = "string?", age = "int?" }"#,
            "reads `name` as required, but `echo` declares it optional (`string?`)",
        ),
    ] {
        let events = PROBE_EVENTS.replace(r#"args = { name = "string", age = "int?" }"#, args);
        sandbox.write(
            "events.toml",
            &std::fs::read_to_string(sandbox.manifest())
                .unwrap()
                .replace(
                    &PROBE_EVENTS.replace(
                        r#"args = { name = "string", age = "int?" }"#,
                        r#"args = { nmae = "string", age = "int?" }"#,
                    ),
                    &events,
                ),
        );
        let run = sandbox.run(&["check"]);
        run.assert_code(2);
        assert!(run.stderr().contains(problem), "{}", run.stderr());
        // Put the misspelt version back for the next round's replace.
        sandbox.write(
            "events.toml",
            &std::fs::read_to_string(sandbox.manifest())
                .unwrap()
                .replace(
                    &events,
                    &PROBE_EVENTS.replace(
                        r#"args = { name = "string", age = "int?" }"#,
                        r#"args = { nmae = "string", age = "int?" }"#,
                    ),
                ),
        );
    }
}

/// Every file of the frozen copy and its plugins, with its SHA-256: the copy never
/// changes after release, so a difference is an edit to undo.
#[test]
fn the_frozen_copy_is_unchanged() {
    let root = workspace().join("tests/abi/v1.0");
    let recorded = std::fs::read_to_string(root.join("CHECKSUMS")).unwrap();
    let mut expected: Vec<(String, String)> = recorded
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (hash, path) = l.split_once("  ").unwrap();
            (path.to_owned(), hash.to_owned())
        })
        .collect();
    expected.sort();
    let mut found = Vec::new();
    collect_files(&root, &root, &mut found);
    found.sort();
    let paths = |list: &[(String, String)]| list.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&found),
        paths(&expected),
        "files were added to or removed from the frozen copy in tests/abi/v1.0"
    );
    for ((path, hash), (_, recorded)) in found.iter().zip(&expected) {
        assert_eq!(
            hash, recorded,
            "tests/abi/v1.0/{path} changed: the frozen 1.0 copy must never be edited; undo the change (see tests/abi/README.md)"
        );
    }
}

/// `(relative path, sha256)` of every file under `dir` but CHECKSUMS and build output.
fn collect_files(root: &Path, dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" {
                collect_files(root, &path, found);
            }
        } else if name != "CHECKSUMS" {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            found.push((relative, switchboard::load::sha256_of(&path).unwrap()));
        }
    }
}

/// Builds, once per name, the 1.0 `legacy` plugin as library `name` against a copy of
/// the frozen plugin-api changed by `edit` (given the copy's folder): a plugin built
/// against an incompatible plugin-api, for real. The copy lives under `target/`, so no
/// second copy of the source is committed.
pub fn build_variant(name: &str, edit: fn(&Path)) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, std::path::PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(name) {
        return path.clone();
    }
    crate::util::build();
    let frozen = crate::util::workspace().join("tests/abi/v1.0");
    let root = profile_dir()
        .parent()
        .unwrap()
        .join("abi-variants")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    // Cargo hashes a path package by its path relative to its workspace, so a copy in a
    // folder called `plugin-api` would share (and overwrite) the frozen copy's artifacts
    // in the common target folder.
    let api = format!("api-{name}");
    copy_dir(&frozen.join("plugin-api"), &root.join(&api));
    copy_dir(&frozen.join("legacy"), &root.join("plugin"));
    std::fs::copy(frozen.join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[workspace]\nresolver = \"2\"\nmembers = [\"{api}\", \"plugin\"]\n"),
    )
    .unwrap();
    let manifest = root.join("plugin/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace("name = \"legacy\"", &format!("name = \"{name}\""))
        .replace("path = \"../plugin-api\"", &format!("path = \"../{api}\""));
    std::fs::write(&manifest, text).unwrap();
    edit(&root.join(&api));
    let status = cargo()
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["--profile", profile_flag()])
        .arg("--target-dir")
        .arg(profile_dir().parent().unwrap())
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "building the `{name}` fixture failed");
    let library = crate::util::library(name);
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), library.clone());
    library
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Replaces `from` with `to` in `file`, failing loudly if the frozen source moved on.
pub fn patch(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// PluginInfo gains a field: the layout every host checks changes.
pub fn layout_changed() -> std::path::PathBuf {
    build_variant("layout_changed", |api| {
        patch(
            &api.join("src/abi.rs"),
            "pub extension: Value<'static>,\n}",
            "pub extension: Value<'static>,\n    /// Added.\n    pub extra: u32,\n}",
        );
        patch(
            &api.join("src/export.rs"),
            "extension: Value::NULL,\n",
            "extension: Value::NULL,\n        extra: 0,\n",
        );
    })
}

/// The same interface, released as plugin-api 2.0.0.
pub fn api_v2() -> std::path::PathBuf {
    build_variant("api_v2", |api| {
        patch(
            &api.join("Cargo.toml"),
            "version = \"1.0.0\"",
            "version = \"2.0.0\"",
        );
    })
}

/// `module::NAME = value` for every integer constant in a plugin-api source file: these
/// travel across the boundary as plain numbers, so no layout check sees them change.
fn boundary_constants(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in ["abi.rs", "error.rs", "value.rs"] {
        let text = std::fs::read_to_string(root.join("src").join(file)).unwrap();
        let mut module = file.trim_end_matches(".rs").to_owned();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("pub mod ") {
                module = rest.trim_end_matches(" {").to_owned();
            }
            let Some(rest) = line
                .strip_prefix("pub const ")
                .or(line.strip_prefix("const "))
            else {
                continue;
            };
            if let Some((name, value)) = rest.split_once(':') {
                if let Some((ty, value)) = value.split_once('=') {
                    if ["u8", "u32", "i32", "u64", "i64"].contains(&ty.trim()) {
                        found.push(format!(
                            "{module}::{name} = {}",
                            value.trim_end_matches(';').trim()
                        ));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn numbers_that_cross_the_boundary_keep_their_frozen_values() {
    let current = boundary_constants(&workspace().join("plugin-api"));
    let frozen = boundary_constants(&workspace().join("tests/abi/v1.0/plugin-api"));
    assert!(
        current.iter().any(|c| c == "level::INFO = 3") && current.len() >= 10,
        "the scan finds the constants: {current:?}"
    );
    let changed: Vec<&String> = frozen.iter().filter(|c| !current.contains(c)).collect();
    assert!(
        changed.is_empty(),
        "a constant that plugins built against 1.0 rely on changed or vanished (log levels, call statuses, error kinds): {changed:?}; new constants may be added, old ones never change"
    );
}
