//! The `switchboard` binary: output, exit codes, every subcommand.

use crate::util::{library, Sandbox};

const GREETER: &str = r#"
[events.user_joined]
doc = "A user signed up"
args = { name = "string", email = "string" }
[events.greeting_sent]
args = { name = "string" }
[events.greetings_count]
result = "first"

[[plugins]]
name = "greeter"
config = { greeting = "Hello" }
"#;

#[test]
fn emit_prints_each_result_and_the_plugin_log() {
    let sandbox = Sandbox::new(GREETER);
    let run = sandbox.run(&["emit", "user_joined", "name=Ann", "email=ann@example.com"]);
    run.assert_code(0);
    assert!(
        run.stdout().contains("user_joined: 1 callback ran"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains(r#"greeter.welcome  ok     "Hello, Ann!""#),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr()
            .contains(" INFO greeter: greeting Ann <ann@example.com>"),
        "{}",
        run.stderr()
    );
}

#[test]
fn emit_json_in_and_out() {
    let sandbox = Sandbox::new(GREETER);
    let run = sandbox.run(&[
        "--format",
        "json",
        "emit",
        "user_joined",
        "--json",
        r#"{"name": "Bo", "email": "bo@example.com"}"#,
    ]);
    run.assert_code(0);
    assert_eq!(
        run.json(),
        serde_json::json!({
            "event": "user_joined",
            "ok": true,
            "results": [{"plugin": "greeter", "callback": "welcome", "value": "Hello, Bo!"}]
        })
    );
}

#[test]
fn bad_arguments_exit_2_before_any_plugin_runs() {
    let sandbox = Sandbox::new(GREETER);
    let run = sandbox.run(&["emit", "user_joined", "name=Ann"]);
    run.assert_code(2);
    assert_eq!(run.stdout(), "");
    assert!(run
        .stderr()
        .contains("error: event `user_joined` needs argument `email` (string)"));
    assert!(
        !run.stderr().contains("sent 0 greetings"),
        "a plugin ran: {}",
        run.stderr()
    );

    let run = sandbox.run(&["emit", "user_joind", "name=Ann"]);
    run.assert_code(2);
    assert!(run
        .stderr()
        .contains("unknown event `user_joind` (did you mean `user_joined`?)"));

    let run = sandbox.run(&["emit", "user_joined", "--json", "[1]"]);
    run.assert_code(2);
    assert!(run.stderr().contains("--json must be a JSON object"));
}

#[test]
fn a_failing_callback_exits_1_and_names_plugin_callback_and_message() {
    let sandbox = Sandbox::with_probe(
        "[[plugins]]\nname = \"a\"\nlibrary = \"probe\"\nconfig = { label = \"a\" }\n",
    );
    let run = sandbox.run(&["emit", "boom"]);
    run.assert_code(1);
    assert!(
        run.stdout().contains("boom: 1 callback ran, 1 failed"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("a.boom  panic  probe a exploded"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr().contains(
            "callback a.boom failed on `boom` (generation 1): panicked: probe a exploded"
        ),
        "{}",
        run.stderr()
    );
    assert!(
        !run.stderr().contains("panicked at"),
        "the plugin's panic hook printed: {}",
        run.stderr()
    );
}

#[test]
fn run_answers_each_json_line_with_its_id() {
    let sandbox = Sandbox::new(GREETER);
    let input = concat!(
        r#"{"event": "user_joined", "args": {"name": "Ann", "email": "a@x"}, "id": "r1"}"#,
        "\n",
        "not json\n",
        r#"{"event": "greetings_count"}"#,
        "\n",
    );
    let run = sandbox.run_with_stdin(&["run", "--workers", "1"], input);
    run.assert_code(2);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], "r1");
    assert_eq!(lines[0]["results"][0]["value"], "Hello, Ann!");
    assert_eq!(lines[1]["seq"], 2);
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("line 2 is not a valid event"));
    assert_eq!(lines[2]["seq"], 3);
    assert_eq!(
        lines[2]["results"][0]["value"], 1,
        "the greeting count after one sign-up"
    );
}

#[test]
fn run_reports_a_line_that_is_not_utf8_and_goes_on() {
    let sandbox = Sandbox::new(GREETER);
    let mut input =
        br#"{"event": "user_joined", "args": {"name": "Ann", "email": "a@x"}}"#.to_vec();
    input.extend_from_slice(b"\n{\"event\": \"user_joined\", \"args\": {\"name\": \"\xff\"}}\n");
    input.extend_from_slice(br#"{"event": "greetings_count"}"#);
    input.push(b'\n');
    let run = sandbox.run_with_stdin(&["run", "--workers", "1"], input);
    run.assert_code(2);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout());
    assert_eq!(lines[0]["ok"], true);
    let error = lines[1]["error"].as_str().unwrap();
    assert!(error.contains("line 2 is not valid UTF-8"), "{error}");
    assert_eq!(
        lines[2]["results"][0]["value"], 1,
        "the line after it still ran"
    );
    assert!(
        run.stderr().contains("2 dispatched, 1 bad line"),
        "{}",
        run.stderr()
    );
}

#[test]
fn check_list_and_inspect() {
    let sandbox = Sandbox::new(GREETER);
    let run = sandbox.run(&["check"]);
    run.assert_code(0);
    assert!(
        run.stdout().contains("ok: 3 events, 1 plugin, 3 callbacks"),
        "{}",
        run.stdout()
    );

    let run = sandbox.run(&["list"]);
    run.assert_code(0);
    let out = run.stdout();
    assert!(
        out.contains("user_joined(name: string, email: string)  # A user signed up"),
        "{out}"
    );
    assert!(out.contains("1. greeter.welcome  (priority 10)"), "{out}");
    assert!(out.contains("greetings_count()  result = first"), "{out}");

    let run = sandbox.run(&["--format", "json", "list"]);
    run.assert_code(0);
    assert_eq!(
        run.json()["events"][0]["callbacks"][0]["callback"],
        "welcome"
    );

    let lib = library("greeter");
    let run = sandbox.run(&["--format", "json", "inspect", lib.to_str().unwrap()]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["name"], "greeter");
    assert_eq!(json["plugin_api"], "1.0.0");
    assert_eq!(json["callbacks"].as_array().unwrap().len(), 3);
}

#[test]
fn a_bad_manifest_exits_2_with_file_and_line() {
    let sandbox = Sandbox::new("[events.user_joined]\nargs = { name = \"strng\" }\n");
    let run = sandbox.run(&["check"]);
    run.assert_code(2);
    let manifest = sandbox.manifest();
    assert!(
        run.stderr().contains(&format!("error: argument `name` of event `user_joined`: unknown type `strng` (did you mean `string`?); the types are string, int, float, bool, bytes, list, map, any, with `?` for optional\n --> {}:4:17\n  |\n4 | args = {{ name = \"strng\" }}\n  |                 ^^^^^^^", manifest.display())),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("panicked"));
}

#[test]
fn emit_asks_for_missing_arguments_like_the_original_input_prompts() {
    let sandbox = Sandbox::new(GREETER);
    let run = sandbox.run_with_stdin(&["emit", "user_joined", "-i"], "Ann\n\nann@example.com\n");
    run.assert_code(0);
    assert!(
        run.stdout()
            .contains(r#"greeter.welcome  ok     "Hello, Ann!""#),
        "{}",
        run.stdout()
    );
    let prompts = run.stderr();
    assert!(
        prompts.contains("name (string): email (string):   `email` is required"),
        "{prompts}"
    );
    assert!(
        prompts.contains("greeting Ann <ann@example.com>"),
        "{prompts}"
    );

    // Arguments given on the command line are not asked for.
    let run = sandbox.run_with_stdin(
        &["emit", "user_joined", "-i", "name=Bo"],
        "bo@example.com\n",
    );
    run.assert_code(0);
    assert!(!run.stderr().contains("name (string)"), "{}", run.stderr());

    // Input that ends early is bad input, and no plugin ran.
    let run = sandbox.run_with_stdin(&["emit", "user_joined", "-i"], "Ann\n");
    run.assert_code(2);
    assert!(run
        .stderr()
        .contains("input ended before argument `email` of event `user_joined` was given"));
    assert!(!run.stderr().contains("greetings"), "{}", run.stderr());
}
