//! The operator's workflow: output into pipes that close early, libraries named the way a
//! person types them.

use std::process::{Command, Stdio};

use crate::util::{binary, library, Sandbox, PROBE_EVENTS};

fn probe_sandbox() -> Sandbox {
    Sandbox::new(&format!(
        "{PROBE_EVENTS}\n[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = {{ label = \"p\" }}\n"
    ))
}

/// Runs the binary with its standard output a pipe whose reader is already gone.
fn with_closed_stdout(s: &Sandbox, args: &[&str], input: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut child = Command::new(binary())
        .arg("--manifest")
        .arg(s.manifest())
        .args(args)
        .current_dir(s.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_goes_away_early_is_no_panic_in_any_command() {
    let s = probe_sandbox();
    let inspect = library("probe");
    let lines: String = (0..20_000).map(|_| "{\"event\": \"ping\"}\n").collect();
    let cases: [(&[&str], &str, i32); 5] = [
        (&["check"], "", 0),
        (&["list"], "", 0),
        (&["emit", "ping"], "", 0),
        (&["inspect", inspect.to_str().unwrap()], "", 0),
        // `run` stops reading and says so; 141 is the shell's code for a closed pipe.
        (&["run"], &lines, 141),
    ];
    for (args, input, code) in cases {
        for _ in 0..3 {
            let (status, stderr) = with_closed_stdout(&s, args, input);
            assert_eq!(status, Some(code), "{args:?}: {stderr}");
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_output_that_cannot_be_written_is_an_error_not_a_success() {
    let s = probe_sandbox();
    let output = Command::new(binary())
        .arg("--manifest")
        .arg(s.manifest())
        .arg("list")
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(74));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot write to standard output"));
}

#[test]
fn inspect_takes_a_bare_file_name_in_the_current_folder() {
    let s = probe_sandbox();
    let name = library("probe").file_name().unwrap().to_owned();
    std::fs::copy(library("probe"), s.dir.path().join(&name)).unwrap();
    let output = Command::new(binary())
        .arg("inspect")
        .arg(&name)
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("plugin      probe"), "{stdout}");
}

#[test]
fn list_shows_breaker_settings_as_settings_and_run_shows_when_an_off_plugin_retries() {
    let s = crate::faults::sandbox(
        "",
        "[[plugins]]\nname = \"flaky\"\nlibrary = \"faulty\"\nbreaker = { failures = 2, window_ms = 60000, cooldown_ms = 60000 }\n",
    );
    let list = s.run(&["list"]);
    list.assert_code(0);
    assert!(
        list.stdout().contains(
            "on; in process; breaker: after 2 failures within 60 s, skip its calls for 60 s"
        ),
        "{}",
        list.stdout()
    );
    assert!(!list.stdout().contains("switched off"), "{}", list.stdout());
    assert_eq!(
        s.run(&["--format", "json", "list"]).json()["plugins"][0]["state"],
        "on"
    );

    let input = "{\"event\": \"flaky\", \"args\": {\"fail\": true}}\n".repeat(3);
    let run = s.run_with_stdin(&["run", "--workers", "1"], &input);
    run.assert_code(1);
    assert!(
        run.stderr().contains("; switched off (next trial call in "),
        "{}",
        run.stderr()
    );
    let json = s.run_with_stdin(&["--format", "json", "run", "--workers", "1"], &input);
    let summary = crate::faults::summary(&json.stderr());
    assert!(summary["plugins"][0]["retry_in_ms"].as_u64().unwrap() > 50_000);
}

/// `check` on a manifest whose one plugin is the file `bytes`; returns the refusal.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn refusal_for(bytes: &[u8]) -> String {
    let s = Sandbox::new("");
    std::fs::write(s.path("libother.so"), bytes).unwrap();
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    s.write(
        "events.toml",
        &format!("{manifest}[[plugins]]\nname = \"other\"\npath = \"libother.so\"\n"),
    );
    let run = s.run(&["check"]);
    run.assert_code(2);
    run.stderr()
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn a_file_that_is_no_library_here_is_named_for_what_it_is() {
    use object::write::Object;
    use object::{Architecture, BinaryFormat, Endianness};
    let macho = Object::new(
        BinaryFormat::MachO,
        Architecture::Aarch64,
        Endianness::Little,
    )
    .write()
    .unwrap();
    let stderr = refusal_for(&macho);
    assert!(
        stderr.contains(
            "it is a macOS library (Mach-O) for aarch64 (64-bit), but this host is Linux on x86_64"
        ),
        "{stderr}"
    );

    // An rlib is an `ar` archive: what a plugin built without crate-type = ["cdylib"] gives.
    let rlib = std::fs::read_dir(crate::util::profile_dir().join("deps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "rlib"))
        .expect("the build left rlibs");
    let stderr = refusal_for(&std::fs::read(rlib).unwrap());
    assert!(
        stderr.contains("it is a static library archive"),
        "{stderr}"
    );
    assert!(stderr.contains("crate-type = [\"cdylib\"]"), "{stderr}");

    assert!(refusal_for(b"").contains("it is an empty file"));
    assert!(refusal_for(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2])
        .contains("no library format this host knows"));
}

#[test]
fn add_copies_pins_and_declares_a_plugin_and_remove_undoes_it() {
    let s = Sandbox::new("");
    let head = "# the operator's manifest\n[host]\nplugin_dir = \"plugins\"  # where libraries go\n\n[events.user_joined]\nargs = { name = \"string\", email = \"string\" }\n";
    s.write("events.toml", head);
    let greeter = library("greeter");
    let add = s.run(&["add", greeter.to_str().unwrap(), "--config", "greeting=Hi"]);
    add.assert_code(0);
    assert!(
        add.stdout().contains("added plugin `greeter`"),
        "{}",
        add.stdout()
    );
    let copied = s.path("plugins").join(greeter.file_name().unwrap());
    assert!(copied.is_file());
    let text = std::fs::read_to_string(s.manifest()).unwrap();
    assert!(
        text.starts_with(head),
        "comments and layout are kept:\n{text}"
    );
    let sha = switchboard::load::sha256_of(&copied).unwrap();
    assert!(text.contains(&format!("sha256 = \"{sha}\"")), "{text}");
    assert!(text.contains("config = { greeting = \"Hi\" }"), "{text}");
    assert!(text.contains("[events.greetings_count]"), "{text}");
    s.run(&["check"]).assert_code(0);
    assert!(s.run(&["list"]).stdout().contains("greeter"));

    // Twice is refused, and so is a file that is no plugin; neither touches the manifest.
    let again = s.run(&["add", greeter.to_str().unwrap()]);
    again.assert_code(2);
    assert!(
        again
            .stderr()
            .contains("already has a plugin named `greeter`"),
        "{}",
        again.stderr()
    );
    let junk = s.write("libjunk.so", "not a library");
    s.run(&["add", junk.to_str().unwrap()]).assert_code(2);
    assert_eq!(std::fs::read_to_string(s.manifest()).unwrap(), text);

    let remove = s.run(&["remove", "greeter"]);
    remove.assert_code(0);
    assert!(!copied.exists(), "the copied library goes too");
    assert_eq!(std::fs::read_to_string(s.manifest()).unwrap(), head);
    s.run(&["check"]).assert_code(0);
    let unknown = s.run(&["remove", "greeter"]);
    unknown.assert_code(2);
    assert!(
        unknown.stderr().contains("has no plugin named `greeter`"),
        "{}",
        unknown.stderr()
    );
}

#[test]
fn bundle_makes_a_folder_that_runs_from_anywhere() {
    let s = Sandbox::new(&format!(
        "{PROBE_EVENTS}\n[[plugins]]\nname = \"a\"\nlibrary = \"probe\"\nconfig = {{ label = \"a\" }}\n[[plugins]]\nname = \"b\"\npath = {:?}\nconfig = {{ label = \"b\" }}\n",
        library("probe").to_str().unwrap()
    ));
    let dist = s.path("dist");
    let bundle = s.run(&["bundle", dist.to_str().unwrap()]);
    bundle.assert_code(0);
    let manifest = std::fs::read_to_string(dist.join("events.toml")).unwrap();
    assert!(manifest.contains("plugin_dir = \"plugins\""), "{manifest}");
    assert!(!manifest.contains("path ="), "{manifest}");
    assert_eq!(manifest.matches("sha256 = ").count(), 2, "{manifest}");
    // The bundled binary runs from an unrelated folder, on the bundle's own libraries.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Command::new(dist.join("switchboard"))
        .args([
            "--manifest",
            dist.join("events.toml").to_str().unwrap(),
            "emit",
            "ping",
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("a.ping") && stdout.contains("b.ping"),
        "{stdout}"
    );
    // The libraries it loaded are the bundle's own.
    let list = Command::new(dist.join("switchboard"))
        .args([
            "--manifest",
            dist.join("events.toml").to_str().unwrap(),
            "--format",
            "json",
            "list",
        ])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    for plugin in list["plugins"].as_array().unwrap() {
        assert!(
            plugin["library"]
                .as_str()
                .unwrap()
                .contains("dist/plugins/"),
            "{plugin}"
        );
    }
    let again = s.run(&["bundle", dist.to_str().unwrap()]);
    again.assert_code(2);
    assert!(
        again.stderr().contains("is not empty"),
        "{}",
        again.stderr()
    );
}

#[cfg(unix)]
#[test]
fn config_paths_are_relative_to_the_manifest_folder_from_any_working_directory() {
    use crate::util::{profile_dir, workspace};
    let s = Sandbox::new("");
    let ops = s.path("ops");
    std::fs::create_dir(&ops).unwrap();
    let manifest = std::fs::read_to_string(workspace().join("events.toml"))
        .unwrap()
        .replace(
            "plugin_dir = \"target/release\"",
            &format!("plugin_dir = {:?}", profile_dir().to_str().unwrap()),
        );
    std::fs::write(ops.join("events.toml"), manifest).unwrap();
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let output = Command::new(binary())
        .args([
            "-m",
            "../ops/events.toml",
            "emit",
            "user_joined",
            "name=Ann",
            "email=ann@example.com",
        ])
        .current_dir(&elsewhere)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        ops.join("users.db").is_file(),
        "the database sits beside the manifest"
    );
    assert_eq!(std::fs::read_dir(ops.join("outbox")).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing in the working directory"
    );
    // Results show the path as configured.
    assert!(stdout.contains("\"outbox/"), "{stdout}");
}
