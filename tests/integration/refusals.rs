//! Libraries the host must refuse, each with one readable line naming the plugin, the
//! file and the fix, exit code 2 and no panic; details with `--verbose`.

use crate::abi::{api_v2, layout_changed};
#[cfg(unix)]
use crate::util::profile_dir;
use crate::util::{library, Run, Sandbox, PROBE_EVENTS};

/// `check` on a manifest with one plugin entry `entry` (TOML lines), in JSON.
fn check(sandbox_body: &str) -> (Sandbox, Run) {
    let s = Sandbox::new(&format!("{PROBE_EVENTS}\n{sandbox_body}"));
    let run = s.run(&["--format", "json", "check"]);
    (s, run)
}

/// The error object `--format json` prints on stderr.
fn error(run: &Run) -> serde_json::Value {
    let line = run
        .stderr()
        .lines()
        .find(|l| l.starts_with(r#"{"error""#))
        .map(str::to_owned);
    let line = line.unwrap_or_else(|| panic!("no JSON error on stderr:\n{}", run.stderr()));
    serde_json::from_str::<serde_json::Value>(&line).unwrap()["error"].clone()
}

/// Asserts exit code 2, the error kind (of the first refused plugin for `check`), and
/// that the message contains every one of `words`.
#[track_caller]
fn assert_refused(run: &Run, kind: &str, words: &[&str]) {
    run.assert_code(2);
    assert!(
        !run.stderr().contains("panicked at"),
        "the host panicked: {}",
        run.stderr()
    );
    let error = error(run);
    let (found_kind, message) = match error["plugins"].as_array() {
        Some(plugins) => (
            plugins[0]["kind"].clone(),
            plugins[0]["message"].as_str().unwrap().to_owned(),
        ),
        None => (
            error["kind"].clone(),
            error["message"].as_str().unwrap().to_owned(),
        ),
    };
    assert_eq!(found_kind, kind, "{message}");
    for word in words {
        assert!(message.contains(word), "missing {word:?} in: {message}");
    }
}

fn plugin_file(s: &Sandbox, name: &str, bytes: &[u8]) -> String {
    let path = s.path(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_missing_library_names_the_file_it_looked_for() {
    let (_s, run) = check("[[plugins]]\nname = \"nowhere\"\n");
    assert_refused(
        &run,
        "load.missing",
        &["plugin `nowhere`", "libnowhere.so", "build the plugin"],
    );
}

#[test]
fn a_missing_plugin_folder_says_so() {
    let s = Sandbox::new("");
    s.write(
        "events.toml",
        "[host]\nplugin_dir = \"no/such/folder\"\n[[plugins]]\nname = \"x\"\n",
    );
    let run = s.run(&["--format", "json", "check"]);
    let folder = s.path("no/such/folder");
    assert_refused(
        &run,
        "load.missing_folder",
        &["plugin folder", folder.to_str().unwrap(), "does not exist"],
    );
}

#[test]
fn a_file_that_is_not_a_shared_library() {
    let s = Sandbox::new("");
    let path = plugin_file(&s, "libtext.so", b"just some text, not a library\n");
    let (_s, run) = check(&format!("[[plugins]]\nname = \"text\"\npath = {path:?}\n"));
    assert_refused(
        &run,
        "load.not_a_library",
        &[
            "plugin `text`",
            "libtext.so",
            "it is a text file, not a shared library",
        ],
    );
}

#[test]
fn a_shared_library_for_another_architecture() {
    let s = Sandbox::new("");
    let mut bytes = std::fs::read(library("probe")).unwrap();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes()); // e_machine: AArch64
    let path = plugin_file(&s, "libarm.so", &bytes);
    let (_s, run) = check(&format!("[[plugins]]\nname = \"arm\"\npath = {path:?}\n"));
    assert_refused(
        &run,
        "load.not_a_library",
        &[
            "plugin `arm`",
            "it is an ELF library (Linux, System V ABI) for aarch64 (64-bit)",
            "but this host is Linux on x86_64",
            "rebuild",
        ],
    );
}

#[test]
fn a_system_library_is_not_a_plugin() {
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("no C library found");
    let (_s, run) = check(&format!("[[plugins]]\nname = \"libc\"\npath = {libc:?}\n"));
    assert_refused(
        &run,
        "load.not_a_plugin",
        &[
            "plugin `libc`",
            libc,
            "not a switchboard plugin",
            "export_plugin!",
        ],
    );
}

#[test]
fn a_plugin_built_against_a_changed_layout_gets_a_one_line_summary() {
    layout_changed();
    let (s, run) = check("[[plugins]]\nname = \"changed\"\nlibrary = \"layout_changed\"\nconfig = { label = \"x\" }\n");
    assert_refused(
        &run,
        "load.incompatible",
        &[
            "plugin `changed`",
            "liblayout_changed.so",
            "it says plugin-api 1.0.0 like this host, but its types differ, so it was built from a modified copy",
            "PluginModule > info > returns PluginInfo: incompatible type size: expected 128, found 136",
            "rebuild it against the unmodified switchboard-plugin-api 1.0.0 this host was built with",
        ],
    );
    let error = error(&run);
    assert!(
        error["details"].as_str().unwrap().lines().count() > 50,
        "the full report is kept"
    );
    let text = s.run(&["check"]);
    assert!(
        text.stderr()
            .contains("(run with --verbose for the full report)"),
        "{}",
        text.stderr()
    );
    let verbose = s.run(&["--verbose", "check"]);
    assert!(
        verbose.stderr().contains("Layout of expected type"),
        "{}",
        verbose.stderr()
    );
}

#[test]
fn a_plugin_built_against_another_major_version_names_both() {
    api_v2();
    let (_s, run) =
        check("[[plugins]]\nname = \"future\"\nlibrary = \"api_v2\"\nconfig = { label = \"x\" }\n");
    assert_refused(
        &run,
        "load.incompatible",
        &[
            "plugin `future`",
            "it uses plugin-api 2.0.0, this host uses 1.0.0",
        ],
    );
}

#[test]
fn init_failures_stop_the_host_or_skip_the_plugin() {
    let entry = "[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = { label = \"p\", fail_init = true }\n";
    let (_s, run) = check(entry);
    assert_refused(
        &run,
        "load.init",
        &["plugin `p` failed to initialize: probe p refuses to start"],
    );

    let panicking = "[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = { label = \"p\", panic_init = true }\n";
    let (_s, run) = check(panicking);
    assert_refused(&run, "load.init", &["panicked: probe p exploded in init"]);

    let (s, run) = check(&format!("{entry}on_load_error = \"skip\"\n[[plugins]]\nname = \"ok\"\nlibrary = \"probe\"\nconfig = {{ label = \"ok\" }}\n"));
    run.assert_code(0);
    assert_eq!(run.json()["skipped"][0]["plugin"], "p");
    // Its callbacks are out of dispatch; the others run.
    let ping = s.run(&["--format", "json", "emit", "ping"]);
    ping.assert_code(0);
    let results = ping.json()["results"].as_array().unwrap().clone();
    assert!(results.iter().all(|r| r["plugin"] == "ok"), "{results:?}");
    assert!(
        ping.stderr()
            .contains("skipping plugin (on_load_error = \"skip\")"),
        "{}",
        ping.stderr()
    );

    // The host-wide setting covers a missing library too.
    let s = Sandbox::new(&format!(
        "on_load_error = \"skip\"\n{PROBE_EVENTS}\n[[plugins]]\nname = \"gone\"\n"
    ));
    let run = s.run(&["check"]);
    run.assert_code(0);
    assert!(
        run.stdout().contains("0 plugins, 0 callbacks, 1 skipped"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_library_whose_hash_differs_from_its_pin_is_not_loaded() {
    let pin = "0".repeat(64);
    let (s, run) = check(&format!("[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nsha256 = \"{pin}\"\nconfig = {{ label = \"p\" }}\n"));
    let actual = switchboard::load::sha256_of(&library("probe")).unwrap();
    assert_refused(
        &run,
        "load.hash_mismatch",
        &["plugin `p`", &actual, &pin, "check --pin"],
    );

    // --pin --write stores the right pin; then the check passes.
    s.run(&["check", "--pin", "--write"]).assert_code(0);
    assert!(std::fs::read_to_string(s.manifest())
        .unwrap()
        .contains(&actual));
    s.run(&["check"]).assert_code(0);
}

#[cfg(unix)]
#[test]
fn a_library_or_folder_others_can_write_is_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::new("");
    let dir = s.path("plugins");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(library("probe"), dir.join("libprobe.so")).unwrap();
    let manifest = |extra: &str| {
        format!("[host]\nplugin_dir = \"plugins\"\n{extra}\n{PROBE_EVENTS}\n[[plugins]]\nname = \"probe\"\nconfig = {{ label = \"p\" }}\n")
    };
    s.write("events.toml", &manifest(""));
    s.run(&["check"]).assert_code(0);

    std::fs::set_permissions(
        dir.join("libprobe.so"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let run = s.run(&["--format", "json", "check"]);
    assert_refused(
        &run,
        "load.writable",
        &["plugin `probe`", "libprobe.so", "mode 0666", "chmod go-w"],
    );

    std::fs::set_permissions(
        dir.join("libprobe.so"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = s.run(&["--format", "json", "check"]);
    assert_refused(&run, "load.writable", &["plugins", "mode 0777"]);

    s.write("events.toml", &manifest("allow_writable = true"));
    s.run(&["check"]).assert_code(0);
}

#[cfg(unix)]
#[test]
fn a_library_cannot_escape_the_plugin_folder_through_a_link() {
    let s = Sandbox::new("");
    let dir = s.path("plugins");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(library("probe"), dir.join("libprobe.so")).unwrap();
    s.write(
        "events.toml",
        &format!("[host]\nplugin_dir = \"plugins\"\n{PROBE_EVENTS}\n[[plugins]]\nname = \"probe\"\nconfig = {{ label = \"p\" }}\n"),
    );
    let run = s.run(&["--format", "json", "check"]);
    assert_refused(
        &run,
        "load.escapes",
        &[
            "plugin `probe`",
            "resolves to",
            profile_dir().to_str().unwrap(),
            "name it with `path`",
        ],
    );

    // A library named with `path` is where the operator said it is, relative (even
    // through `..`) or absolute.
    let relative = pathdiff(&library("probe"), s.dir.path());
    s.write(
        "events.toml",
        &format!("{PROBE_EVENTS}\n[[plugins]]\nname = \"probe\"\npath = {relative:?}\nconfig = {{ label = \"p\" }}\n"),
    );
    assert!(relative.starts_with("../"), "{relative}");
    s.run(&["check"]).assert_code(0);
    let absolute = library("probe");
    s.write(
        "events.toml",
        &format!("{PROBE_EVENTS}\n[[plugins]]\nname = \"probe\"\npath = {:?}\nconfig = {{ label = \"p\" }}\n", absolute.to_str().unwrap()),
    );
    s.run(&["check"]).assert_code(0);
}

#[test]
fn relative_paths_are_resolved_against_the_manifest_folder() {
    let s = Sandbox::new("");
    let sub = s.path("conf");
    std::fs::create_dir(&sub).unwrap();
    std::fs::create_dir(s.path("plugins")).unwrap();
    std::fs::copy(library("probe"), s.path("plugins/libprobe.so")).unwrap();
    std::fs::write(
        sub.join("events.toml"),
        format!("[host]\nplugin_dir = \"../plugins\"\n{PROBE_EVENTS}\n[[plugins]]\nname = \"probe\"\nconfig = {{ label = \"p\" }}\n"),
    )
    .unwrap();
    // Run from somewhere else entirely.
    let run = std::process::Command::new(crate::util::binary())
        .args([
            "--manifest",
            sub.join("events.toml").to_str().unwrap(),
            "check",
        ])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn two_names_for_one_file_load_it_once_with_two_instances() {
    let s = Sandbox::with_probe(
        "[[plugins]]\nname = \"a\"\nlibrary = \"probe\"\nconfig = { label = \"a\" }\n[[plugins]]\nname = \"b\"\nlibrary = \"probe\"\nconfig = { label = \"b\" }\n",
    );
    let run = s.run(&["--format", "json", "emit", "config"]);
    run.assert_code(0);
    let labels: Vec<_> = run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"]["label"].clone())
        .collect();
    assert_eq!(labels, ["a", "b"]);
}

/// `target` relative to `base`, through `..` (both absolute).
#[cfg(unix)]
fn pathdiff(target: &std::path::Path, base: &std::path::Path) -> String {
    let base: Vec<_> = base.components().collect();
    let target: Vec<_> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); base.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
