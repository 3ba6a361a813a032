//! The C ABI (`plugin-api/include/switchboard.h`) through the real binary: C plugins built
//! by gcc, beside Rust ones in one manifest, in-process and isolated; the same refusals as
//! Rust plugins; a plugin that breaks every rule it can; the version rules; and the header
//! and the host's mirror of it compared field by field.

use std::process::Command;

use crate::util::{binary, Sandbox};
use switchboard_tests::{c_library, profile_dir, workspace};

/// The example C plugin of `plugins/c-abi`.
fn welcome() -> std::path::PathBuf {
    c_library(
        "gcc",
        &["plugins/c-abi/welcome.c"],
        "welcome",
        &["-std=c11", "-pedantic"],
    )
}

/// The hostile fixture, built with `flags`.
fn hostile(flags: &[&str]) -> std::path::PathBuf {
    c_library("gcc", &["tests/c-abi/hostile.c"], "hostile", flags)
}

const SIGN_UP: &str = r#"
[events.user_joined]
args = { name = "string", email = "string" }
[events.greetings_count]
result = "first"
[events.greeting_sent]
args = { name = "string" }
"#;

#[test]
fn one_emit_reaches_rust_and_c_callbacks_in_process_and_isolated() {
    let s = Sandbox::new(&format!(
        r#"{SIGN_UP}
[[plugins]]
name = "greeter"
config = {{ greeting = "Hi" }}
[[plugins]]
name = "welcome"
path = {path:?}
config = {{ greeting = "Hello" }}
[[plugins]]
name = "welcome_isolated"
path = {path:?}
isolation = "process"
config = {{ greeting = "Howdy" }}
"#,
        path = welcome().to_str().unwrap()
    ));
    s.run(&["check"]).assert_code(0);
    let (results, _) = sign_up(&s);
    let results: Vec<String> = results
        .iter()
        .map(|r| format!("{}.{} = {}", r["plugin"], r["callback"], r["value"]))
        .collect();
    assert_eq!(
        results,
        [
            r#""greeter"."welcome" = "Hi, Ann!""#,
            r#""welcome"."greet" = "Hello, Ann! (from C)""#,
            r#""welcome_isolated"."greet" = "Howdy, Ann! (from C)""#,
        ]
    );
    // `list` and `inspect` say which kind each library is.
    let list = s.run(&["list"]);
    assert!(
        list.stdout().contains("welcome 0.1.0 (C ABI 1.0)"),
        "{}",
        list.stdout()
    );
    assert!(
        list.stdout().contains("greeter 0.1.0 (plugin-api 1.0.0)"),
        "{}",
        list.stdout()
    );
    let inspect = s.run(&["--format", "json", "inspect", welcome().to_str().unwrap()]);
    assert_eq!(inspect.json()["kind"], "c");
    assert_eq!(inspect.json()["plugin_api"], "1.0");
    assert_eq!(
        inspect.json()["callbacks"][0]["reads"],
        serde_json::json!({"name": "string"})
    );
}

#[test]
fn a_c_callback_reading_an_undeclared_argument_is_refused_as_a_rust_one_is() {
    let declared = SIGN_UP.replace(
        "args = { name = \"string\", email",
        "args = { nmae = \"string\", email",
    );
    let refusal = |plugin: &str| {
        let s = Sandbox::new(&format!("{declared}\n[[plugins]]\n{plugin}\n"));
        let run = s.run(&["check"]);
        run.assert_code(2);
        run.stderr()
    };
    let rust = refusal("name = \"greeter\"");
    let c = refusal(&format!(
        "name = \"welcome\"\npath = {:?}",
        welcome().to_str().unwrap()
    ));
    assert!(
        rust.contains("callback greeter.welcome reads `name`, but `user_joined` declares nmae, email (did you mean `nmae`?)"),
        "{rust}"
    );
    assert!(
        c.contains("callback welcome.greet reads `name`, but `user_joined` declares nmae, email (did you mean `nmae`?)"),
        "{c}"
    );
}

/// `emit user_joined` for Ann through the binary, which must succeed: every callback's
/// outcome, and the run (for its standard error).
fn sign_up(s: &Sandbox) -> (Vec<serde_json::Value>, crate::util::Run) {
    let run = s.run(&[
        "--format",
        "json",
        "emit",
        "user_joined",
        "name=Ann",
        "email=ann@example.com",
    ]);
    run.assert_code(0);
    let results = run.json()["results"].as_array().unwrap().clone();
    (results, run)
}

/// A manifest with the hostile plugin built with `flags`.
fn hostile_sandbox(flags: &[&str], extra: &str) -> Sandbox {
    Sandbox::new(&format!(
        "[events.misbehave]\nargs = {{ what = \"string\" }}\n[events.ok]\n[events.releases]\nresult = \"first\"\n[[plugins]]\nname = \"hostile\"\npath = {:?}\n{extra}\n",
        hostile(flags).to_str().unwrap()
    ))
}

#[test]
fn broken_tables_are_refused_naming_the_plugin_and_the_rule() {
    for (flags, kind, says) in [
        (
            &["-DTABLE_MAJOR=2"][..],
            "load.c_abi_version",
            "was built for C ABI 2.0, and this host speaks C ABI 1.0",
        ),
        (
            &["-DSHORT_TABLE"],
            "load.c_abi",
            "its table says it is 16 bytes, smaller than",
        ),
        (&["-DNO_ON_CALL"], "load.c_abi", "no `on_call` hook"),
        (&["-DBAD_TYPE"], "load.c_abi", "has type `strng`"),
        (
            &["-DDUP_NAME"],
            "load.bad_registration",
            "two callbacks are named `misbehave`; fix its `sb_callback` table",
        ),
        (&["-DREAD_UNDECLARED"], "load.args_mismatch", "reads `nick`"),
    ] {
        let s = hostile_sandbox(flags, "");
        let run = s.run(&["--format", "json", "check"]);
        run.assert_code(2);
        let report: serde_json::Value = serde_json::from_str(&run.stderr()).unwrap();
        let error = &report["error"];
        assert_eq!(error["kind"], kind, "{flags:?}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("plugin `hostile`") || message.contains("callback hostile."),
            "{message}"
        );
        assert!(message.contains(says), "{flags:?}: {message}");
    }
    // A plugin built for a later minor of the same major loads: the host reads what it knows.
    hostile_sandbox(&["-DTABLE_MINOR=7"], "")
        .run(&["check"])
        .assert_code(0);
}

#[test]
fn nothing_a_c_plugin_answers_is_trusted_and_the_host_goes_on() {
    for isolation in ["", "isolation = \"process\""] {
        let s = hostile_sandbox(&[], isolation);
        let cases = [
            ("bad_utf8", "is not UTF-8"),
            (
                "bad_status",
                "returned status 7, which is not a status of the C ABI",
            ),
            ("null_string", "points to nothing (NULL) but says it has 5"),
            ("bad_kind", "has kind 99, which is not a kind of the C ABI"),
            ("bad_bool", "is a bool holding 3, not 0 or 1"),
            ("pending", "answered SB_PENDING"),
            ("deep", "nests deeper than 64 levels"),
            ("dup_key", "has the key `k` twice"),
            ("fail", "hostile fails on purpose"),
            ("fail_silent", "failed without a message"),
        ];
        let mut input = String::new();
        for (what, _) in &cases {
            input.push_str(&format!("{{\"event\": \"misbehave\", \"args\": {{\"what\": \"{what}\"}}}}\n{{\"event\": \"ok\"}}\n"));
        }
        input.push_str("{\"event\": \"misbehave\", \"args\": {\"what\": \"emit\"}}\n{\"event\": \"releases\"}\n");
        let run = s.run_with_stdin(&["run", "--ordered", "--workers", "1"], input);
        let lines = run.json_lines();
        assert_eq!(lines.len(), cases.len() * 2 + 2, "{}", run.stderr());
        for (n, (what, says)) in cases.iter().enumerate() {
            let error = &lines[n * 2]["results"][0]["error"];
            let message = error["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: {}", lines[n * 2]));
            assert!(message.contains(says), "{isolation} {what}: {message}");
            assert_eq!(
                lines[n * 2 + 1]["results"][0]["value"],
                "ok",
                "the next event is served"
            );
        }
        assert_eq!(error_help(&lines[16]), Some("do not ask it to".to_owned()));
        // A nested emit from C reaches the plugin's own `ok` callback.
        assert_eq!(
            lines[cases.len() * 2]["results"][0]["value"],
            1,
            "{}",
            lines[cases.len() * 2]
        );
        // Every reply whose hook set a `release` was released once: every call before
        // `releases` (the nested emit's `ok` too), whatever it answered.
        let released = lines.last().unwrap()["results"][0]["value"]
            .as_i64()
            .unwrap();
        assert_eq!(released as usize, cases.len() * 2 + 2, "{}", run.stderr());
        // The hook's borrowed host still acted for it after the nested emit's calls.
        assert!(
            run.stderr().lines().any(|l| l.contains("hostile")
                && l.contains("still hostile after the nested emit")),
            "{isolation}: {}",
            run.stderr()
        );
    }
}

/// Every C call gets its reply zeroed (`struct_size` aside), as the header promises, though
/// the host hands one reply to call after call on a thread: a callback that answered nothing
/// but left the reply's other fields written does not leak them into the next call.
#[test]
fn every_c_call_gets_a_zeroed_reply_though_the_last_one_left_it_dirty() {
    for isolation in ["", "isolation = \"process\""] {
        let s = hostile_sandbox(&[], isolation);
        let line = |what: &str| {
            format!("{{\"event\": \"misbehave\", \"args\": {{\"what\": \"{what}\"}}}}\n")
        };
        let whats = [
            "zeroed",
            "dirty",
            "zeroed",
            "dirty",
            "fail_silent",
            "dirty",
            "ok_event",
        ];
        let input: String = whats
            .iter()
            .map(|what| match *what {
                "ok_event" => "{\"event\": \"ok\"}\n".to_owned(),
                what => line(what),
            })
            .collect();
        let run = s.run_with_stdin(&["run", "--ordered", "--workers", "1"], input);
        let lines = run.json_lines();
        assert_eq!(lines.len(), whats.len(), "{}", run.stderr());
        let result = |n: usize| &lines[n]["results"][0];
        assert_eq!(result(0)["value"], "zeroed", "{isolation}: {}", lines[0]);
        assert!(result(1)["value"].is_null(), "{isolation}: {}", lines[1]);
        assert_eq!(result(2)["value"], "zeroed", "{isolation}: {}", lines[2]);
        let message = result(4)["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("failed without a message") && !message.contains("stale"),
            "{isolation}: {}",
            lines[4]
        );
        assert!(result(4)["error"]["help"]
            .as_str()
            .is_none_or(|h| !h.contains("stale")));
        assert_eq!(result(6)["value"], "ok", "{isolation}: {}", lines[6]);
    }
}

/// A C callback reads the event's id from its call, in-process and isolated: the sender's,
/// or one the host made.
#[test]
fn a_c_callback_sees_the_event_id() {
    for isolation in ["", "isolation = \"process\""] {
        let s = hostile_sandbox(&[], isolation);
        let given = s.run(&[
            "--format",
            "json",
            "emit",
            "misbehave",
            "what=event_id",
            "--id",
            "signup-7",
        ]);
        given.assert_code(0);
        let out: serde_json::Value = serde_json::from_str(&given.stdout()).unwrap();
        assert_eq!(out["results"][0]["value"], "signup-7", "{isolation}: {out}");
        let input =
            "{\"event\": \"misbehave\", \"args\": {\"what\": \"event_id\"}, \"id\": \"line-1\"}\n\
                     {\"event\": \"misbehave\", \"args\": {\"what\": \"event_id\"}}\n";
        let run = s.run_with_stdin(&["run", "--ordered", "--workers", "1"], input);
        let lines = run.json_lines();
        assert_eq!(lines[0]["results"][0]["value"], "line-1", "{isolation}");
        let made = lines[1]["results"][0]["value"].as_str().unwrap_or_default();
        assert!(made.starts_with("sb-"), "{isolation}: {}", lines[1]);
    }
}

fn error_help(line: &serde_json::Value) -> Option<String> {
    line["results"][0]["error"]["help"]
        .as_str()
        .map(str::to_owned)
}

/// The header and the host's Rust mirror of it cannot drift: a C program prints every
/// struct's size and every field's offset, and the host's mirror must print the same.
#[test]
fn the_header_and_the_host_agree_on_every_size_and_offset() {
    let header = layout_of_header(&workspace().join("plugin-api/include/switchboard.h"));
    let host = switchboard::load::c_abi_layout_report();
    let differing: Vec<String> = header
        .lines()
        .zip(host.lines())
        .filter(|(c, rust)| c != rust)
        .map(|(c, rust)| format!("C says `{c}`, the host's mirror `{rust}`"))
        .collect();
    assert!(
        differing.is_empty() && header.lines().count() == host.lines().count(),
        "switchboard.h and host/src/load/c_abi.rs differ:\n{}",
        differing.join("\n")
    );
}

/// Every struct's size and field offsets as C lays out `header`, in the mirror's format.
pub(crate) fn layout_of_header(header: &std::path::Path) -> String {
    let program = profile_dir().join("c-abi").join("layout.c");
    std::fs::create_dir_all(program.parent().unwrap()).unwrap();
    let structs: &[(&str, &[&str])] = &[
        ("sb_str", &["ptr", "len"]),
        ("sb_bytes", &["ptr", "len"]),
        ("sb_value", &["kind", "reserved", "as"]),
        ("sb_entry", &["key", "value"]),
        ("sb_arg", &["name", "type"]),
        (
            "sb_callback",
            &["event", "name", "priority", "flags", "reads", "read_count"],
        ),
        ("sb_emit", &["event", "args", "arg_count"]),
        (
            "sb_call",
            &[
                "struct_size",
                "callback",
                "event",
                "names",
                "values",
                "count",
                "request_id",
                "event_id",
            ],
        ),
        (
            "sb_reply",
            &[
                "struct_size",
                "reserved",
                "value",
                "error",
                "help",
                "release",
                "release_data",
            ],
        ),
        (
            "sb_outcome",
            &["plugin", "callback", "status", "reserved", "value", "error"],
        ),
        ("sb_outcomes", &["items", "count", "host_data"]),
        (
            "sb_host",
            &[
                "struct_size",
                "abi_major",
                "abi_minor",
                "host_data",
                "callback_plugin_name",
                "callback_log",
                "callback_emit",
                "callback_outcomes_free",
                "callback_has_feature",
                "callback_manifest_dir",
                "callback_keep",
                "callback_release",
            ],
        ),
        (
            "sb_plugin",
            &[
                "struct_size",
                "abi_major",
                "abi_minor",
                "name",
                "version",
                "callbacks",
                "callback_count",
                "callback_size",
                "emits",
                "emit_count",
                "on_init",
                "on_call",
                "on_control",
                "on_shutdown",
            ],
        ),
    ];
    let mut c = format!(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"{}\"\nint main(void) {{\n",
        header.display()
    );
    for (name, fields) in structs {
        c.push_str(&format!("    printf(\"{name} %zu\\n\", sizeof({name}));\n"));
        for field in *fields {
            c.push_str(&format!(
                "    printf(\"{name}.{field} %zu\\n\", offsetof({name}, {field}));\n"
            ));
        }
    }
    c.push_str("    return 0;\n}\n");
    std::fs::write(&program, c).unwrap();
    let exe = program.with_extension("bin");
    let status = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"])
        .arg(&program)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success(), "the layout program did not build");
    let out = Command::new(&exe).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The header compiles warning-free as C99 and as C++.
#[test]
fn the_header_compiles_warning_free_as_c_and_cpp() {
    let folder = profile_dir().join("c-abi");
    std::fs::create_dir_all(&folder).unwrap();
    let source = folder.join("header_only.c");
    std::fs::write(&source, "#include \"switchboard.h\"\nint main(void) { sb_value v = sb_int(1); return (int)(v.kind - SB_INT); }\n").unwrap();
    for (compiler, standard, language) in [("gcc", "-std=c99", "c"), ("g++", "-std=c++11", "c++")] {
        let status = Command::new(compiler)
            .args([
                standard,
                "-Wall",
                "-Wextra",
                "-pedantic",
                "-Werror",
                "-x",
                language,
            ])
            .arg("-I")
            .arg(workspace().join("plugin-api/include"))
            .arg(&source)
            .arg("-o")
            .arg(folder.join(format!("header_only_{language}")))
            .status()
            .unwrap();
        assert!(status.success(), "{compiler} refused the header");
    }
    let _ = binary();
}

/// The frozen copy of the 1.0 header (`tests/abi/c-v1.0`) never changes, its structs are a
/// prefix of today's (structs grow only at their end), and a plugin built against it loads
/// in this host and uses every service.
#[test]
fn a_plugin_built_against_the_frozen_1_0_header_keeps_loading() {
    let root = workspace().join("tests/abi/c-v1.0");
    let recorded = std::fs::read_to_string(root.join("CHECKSUMS")).unwrap();
    for line in recorded.lines() {
        let (hash, file) = line.split_once("  ").unwrap();
        assert_eq!(
            switchboard::load::sha256_of(&root.join(file)).unwrap(),
            hash,
            "tests/abi/c-v1.0/{file} changed: the frozen 1.0 header must never be edited"
        );
    }
    let frozen = layout_of_header(&root.join("switchboard.h"));
    let today = switchboard::load::c_abi_layout_report();
    for line in frozen.lines().filter(|l| l.contains('.')) {
        assert!(today.lines().any(|t| t == line), "1.0 field moved: {line}");
    }

    let legacy = c_library(
        "gcc",
        &["tests/abi/c-v1.0/legacy.c"],
        "legacy",
        &["-std=c11", "-I", root.to_str().unwrap()],
    );
    let s = Sandbox::new(&format!(
        "{}\n[[plugins]]\nname = \"legacy\"\npath = {:?}\nconfig = {{ label = \"old\" }}\n",
        crate::util::PROBE_EVENTS,
        legacy.to_str().unwrap()
    ));
    let input = [
        r#"{"event": "ping"}"#,
        r#"{"event": "echo", "args": {"name": "Ann"}}"#,
        r#"{"event": "nest"}"#,
        r#"{"event": "config"}"#,
        r#"{"event": "fail"}"#,
    ]
    .join("\n");
    let run = s.run_with_stdin(&["run", "--ordered", "--workers", "1"], input);
    let lines = run.json_lines();
    let value = |n: usize| lines[n]["results"][0]["value"].clone();
    assert_eq!(value(0), "old", "{}", run.stderr());
    assert_eq!(value(1), "Ann");
    assert_eq!(value(2), 1);
    assert_eq!(value(3), 1);
    assert_eq!(
        lines[4]["results"][0]["error"]["help"],
        "ask something else"
    );
    let stderr = run.stderr();
    for said in ["legacy ready", "from a kept handle", "legacy shut down"] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
}

/// Says why a test that needs `tool` is skipped, or fails it in CI (scripts/setup installs
/// every tool there).
fn skipped(tool: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have {tool} (scripts/setup installs it)"
    );
    eprintln!("SKIPPED: this test needs {tool} (scripts/setup installs it)");
}

/// One manifest, one emit: Rust, C, C++, Zig and Go callbacks run in dispatch order, the
/// Go plugin in a worker process by default.
#[test]
fn one_emit_reaches_rust_c_cpp_zig_and_go_callbacks_in_order() {
    let Some(zig) = switchboard_tests::zig_library("plugins/c-abi/tally.zig", "tally") else {
        return skipped("the Zig compiler (pip install ziglang)");
    };
    let Some(go) = switchboard_tests::go_library("plugins/c-abi/go", "ledger") else {
        return skipped("Go (apt-get install golang-go)");
    };
    let audit = c_library(
        "g++",
        &["plugins/c-abi/audit.cpp"],
        "audit",
        &["-std=c++17"],
    );
    let s = Sandbox::new(&format!(
        r#"{SIGN_UP}
[events.audit_count]
[events.tally_count]
[events.ledger_count]
[[plugins]]
name = "greeter"
[[plugins]]
name = "welcome"
path = {welcome:?}
[[plugins]]
name = "audit"
path = {audit:?}
[[plugins]]
name = "tally"
path = {zig:?}
[[plugins]]
name = "ledger"
path = {go:?}
"#,
        welcome = welcome().to_str().unwrap(),
        audit = audit.to_str().unwrap(),
        zig = zig.to_str().unwrap(),
        go = go.to_str().unwrap(),
    ));
    let (results, run) = sign_up(&s);
    let results: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "{}.{}: {}",
                r["plugin"].as_str().unwrap(),
                r["callback"].as_str().unwrap(),
                r["value"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            "greeter.welcome: Welcome, Ann!",
            "welcome.greet: Hello, Ann! (from C)",
            "audit.record: audit: Ann <ann@example.com> (from C++)",
            "tally.count: example.com: sign-up 1 (from Zig)",
            "ledger.record: entry 1: Ann at example.com (from Go)",
        ],
        "{}",
        run.stderr()
    );
    let list = s.run(&["list"]).stdout();
    let ledger = list
        .lines()
        .skip_while(|l| !l.contains("ledger 0.1.0"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        ledger.contains("in 1 worker process"),
        "Go runs isolated by default: {list}"
    );

    // A second, different Go library in one process is refused, naming the first.
    let copy = s.path("libledger2.so");
    let mut bytes = std::fs::read(&go).unwrap();
    bytes.extend_from_slice(b"another build");
    std::fs::write(&copy, bytes).unwrap();
    s.write(
        "events.toml",
        &format!(
            "[host]\nplugin_dir = \".\"\n{SIGN_UP}\n[events.ledger_count]\n[[plugins]]\nname = \"first\"\npath = {:?}\nisolation = \"in_process\"\n[[plugins]]\nname = \"second\"\npath = \"libledger2.so\"\nisolation = \"in_process\"\n",
            go.to_str().unwrap()
        ),
    );
    let run = s.run(&["check"]);
    run.assert_code(2);
    assert!(
        run.stderr()
            .contains("plugin `first` already loaded another Go library into this process"),
        "{}",
        run.stderr()
    );
}

/// The README's C, C++, Zig and Go plugins are the files the tests build, to the letter.
#[test]
fn the_readme_guide_is_the_code_the_tests_build() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    for (block, file) in [
        ("welcome.c", "plugins/c-abi/welcome.c"),
        ("audit.cpp", "plugins/c-abi/audit.cpp"),
        ("tally.zig", "plugins/c-abi/tally.zig"),
        ("ledger.go", "plugins/c-abi/go/ledger.go"),
        ("table.c", "plugins/c-abi/go/table.c"),
    ] {
        let marker = format!("<!-- guide: {block} -->");
        let start = readme
            .find(&marker)
            .unwrap_or_else(|| panic!("the README lost {marker}"));
        let after = &readme[start + marker.len()..];
        let body = &after[after.find("```").unwrap()..];
        let body = &body[body.find('\n').unwrap() + 1..];
        let body = &body[..body.find("```").unwrap()];
        let source = std::fs::read_to_string(workspace().join(file)).unwrap();
        assert_eq!(body, source, "the README's {block} differs from {file}");
    }
}

/// `add` copies in, pins and declares a C-ABI library as it does a Rust one, and the
/// manifest it writes checks and runs.
#[test]
fn add_takes_a_c_library_as_it_takes_a_rust_one() {
    let s = Sandbox::new("");
    s.write(
        "events.toml",
        &format!("[host]\nplugin_dir = \"plugins\"\n{SIGN_UP}"),
    );
    let run = s.run(&[
        "add",
        welcome().to_str().unwrap(),
        "--config",
        "greeting=Hey",
    ]);
    run.assert_code(0);
    assert!(
        run.stdout()
            .contains("added plugin `welcome` (welcome 0.1.0)"),
        "{}",
        run.stdout()
    );
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    assert!(
        manifest.contains("name = \"welcome\"") && manifest.contains("sha256 = "),
        "{manifest}"
    );
    assert!(s.path("plugins/libwelcome.so").is_file());
    let emit = s.run(&["emit", "user_joined", "name=Ann", "email=ann@example.com"]);
    emit.assert_code(0);
    assert!(
        emit.stdout().contains("\"Hey, Ann! (from C)\""),
        "{}",
        emit.stdout()
    );
}

/// Every way a C callback is handed its arguments gives it the same values, in-process
/// (where the dispatch loop lowers an emit's flat arguments once for all its C callbacks)
/// and isolated: typed reads in the event's order, out of it, a subset, an optional left
/// out; reading by name; lists and maps, and more arguments than the shared frame holds
/// (lowered per call instead).
#[test]
fn every_way_of_handing_a_c_callback_its_arguments_gives_the_same_values() {
    let library = c_library(
        "gcc",
        &["tests/c-abi/views.c"],
        "views",
        &["-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror"],
    );
    let wide: Vec<String> = (1..=9).map(|n| format!("a{n} = \"int\"")).collect();
    let input = [
        r#"{"event": "pair", "args": {"a": "Ann", "b": 7}}"#.to_owned(),
        r#"{"event": "pair", "args": {"a": "Bob"}}"#.to_owned(),
        r#"{"event": "nested", "args": {"xs": [1, "two"], "m": {"k": [3]}}}"#.to_owned(),
        format!(
            r#"{{"event": "wide", "args": {{{}}}}}"#,
            (1..=9)
                .map(|n| format!("\"a{n}\": {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ]
    .join("\n")
        + "\n";
    let all_nine = (1..=9)
        .map(|n| format!("a{n}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    let expected = vec![
        vec!["a=Ann b=7", "b=7 a=Ann", "b=7", "a=Ann b=7"],
        vec!["a=Bob b=null", "b=null a=Bob", "b=null", "a=Bob b=null"],
        vec!["xs=list(2) m=map(1)", "xs=list(2) m=map(1)"],
        vec![all_nine.as_str(), all_nine.as_str()],
    ];
    for isolation in ["", "isolation = \"process\""] {
        let s = Sandbox::new(&format!(
            "[events.pair]\nargs = {{ a = \"string\", b = \"int?\" }}\n\
             [events.nested]\nargs = {{ xs = \"list\", m = \"map\" }}\n\
             [events.wide]\nargs = {{ {} }}\n\
             [[plugins]]\nname = \"views\"\npath = {:?}\n{isolation}\n",
            wide.join(", "),
            library.to_str().unwrap()
        ));
        let run = s.run_with_stdin(&["run", "--ordered", "--workers", "1"], &input);
        run.assert_code(0);
        let got: Vec<Vec<String>> = run
            .json_lines()
            .iter()
            .map(|line| {
                line["results"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{isolation}: no results in {line}"))
                    .iter()
                    .map(|r| r["value"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .collect();
        assert_eq!(got, expected, "{isolation}");
    }
}

/// A C plugin that crashes, hangs, exits or allocates past `memory_mb` in a worker process
/// costs its own call, named for what happened, as a Rust plugin's does (see `isolation`):
/// the next event is served, and no worker it ran in outlives the host.
#[cfg(target_os = "linux")]
#[test]
fn a_c_plugin_that_crashes_or_hangs_in_a_worker_costs_only_its_call() {
    use crate::isolation::pids;
    use crate::util::alive;
    let s = hostile_sandbox(
        &[],
        "isolation = \"process\"\ntimeout_ms = 1500\nmemory_mb = 256",
    );
    let cases: &[(&str, &str, &[&str])] = &[
        ("segfault", "crashed", &["SIGSEGV"]),
        ("abort", "crashed", &["SIGABRT"]),
        ("quit", "crashed", &["exited with code 0"]),
        (
            "hang",
            "timed_out",
            &["within timeout_ms = 1500", "the worker was killed"],
        ),
        // The worker's limit holds for C's malloc too: 1 GiB is refused.
        ("hog", "error", &["malloc of 1024 MB failed"]),
    ];
    for (what, kind, words) in cases {
        let started = std::time::Instant::now();
        let input = format!(
            "{{\"event\": \"misbehave\", \"args\": {{\"what\": \"{what}\"}}}}\n{{\"event\": \"ok\"}}\n"
        );
        let run = s.run_with_stdin(&["run", "--ordered", "--workers", "1"], input);
        let lines = run.json_lines();
        assert_eq!(lines.len(), 2, "{what}: {}", run.stderr());
        let error = &lines[0]["results"][0]["error"];
        assert_eq!(error["kind"], *kind, "{what}: {}", lines[0]);
        let message = error["message"].as_str().unwrap_or_default();
        for word in *words {
            assert!(
                message.contains(word),
                "{what}: missing {word:?} in {message}"
            );
        }
        assert_eq!(
            lines[1]["results"][0]["value"], "ok",
            "{what}: the next event is served"
        );
        assert!(!run.stderr().contains("panicked at"), "{}", run.stderr());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what} took too long"
        );
        for pid in pids(message) {
            assert!(!alive(pid), "{what}: worker {pid} outlived its host");
        }
    }
}

/// What a C plugin prints goes to standard error, in process and in a worker: standard
/// output carries result lines only.
#[test]
fn a_c_plugin_printing_to_stdout_cannot_corrupt_the_result_lines() {
    for isolation in ["", "isolation = \"process\""] {
        let s = hostile_sandbox(&[], isolation);
        let input: String = (0..200)
            .map(|_| "{\"event\": \"misbehave\", \"args\": {\"what\": \"shout\"}}\n")
            .collect();
        let run = s.run_with_stdin(&["run", "--workers", "2"], input);
        run.assert_code(0);
        let lines = run.json_lines();
        assert_eq!(lines.len(), 200, "{isolation}: {}", run.stderr());
        assert!(
            lines.iter().all(|l| l["results"][0]["value"] == "shouted"),
            "{isolation}: {}",
            run.stdout()
        );
        assert!(!run.stdout().contains("{\"half\""), "{}", run.stdout());
        assert!(
            run.stderr().contains("{\"half\": \"shouted by C\"}"),
            "{isolation}: {}",
            run.stderr()
        );
    }
}

/// A process a C plugin starts in its worker and does not wait for ends with the worker,
/// when the host ends and when it is killed.
#[cfg(target_os = "linux")]
#[test]
fn what_a_c_plugin_starts_in_a_worker_ends_with_the_host() {
    use crate::util::{assert_gone_with_host, kill_host_while_running};
    use std::io::BufRead;
    let s = hostile_sandbox(&[], "isolation = \"process\"");
    let fork = || "{\"event\": \"misbehave\", \"args\": {\"what\": \"fork\"}}".to_owned();
    let pid_in = |line: &serde_json::Value| -> u32 {
        let pid = line["results"][0]["value"].as_u64();
        u32::try_from(pid.unwrap_or_else(|| panic!("no pid: {line}"))).unwrap()
    };

    let run = s.run_with_stdin(&["run"], fork() + "\n");
    run.assert_code(0);
    assert_gone_with_host(pid_in(&run.json_lines()[0]), "ended normally");

    let mut child = crate::util::spawn_run(&s, &[]);
    crate::util::feed(&mut child, std::iter::once(fork()), true);
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    kill_host_while_running(&mut child, pid_in(&serde_json::from_str(&first).unwrap()));
}
