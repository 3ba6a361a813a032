//! Issue 22, through the real binary: files cut short, a hung isolated call among other
//! events, a worker's children, results past the frame limit, a plugin's `exit()`, a full
//! output, `init` and `shutdown` that never return, and what the host leaves in the
//! temporary folder. (serve's drain and connections are in `serve.rs`, a reload onto a
//! library cut short in `reload.rs`.)

// Several tests need Unix (signals, /proc, /dev/full) and are compiled there only.
#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::faults::{drain_stderr, summary, EVENTS};
#[cfg(target_os = "linux")]
use crate::util::{assert_gone_with_host, kill_host_while_running};
use crate::util::{binary, eventually, feed, library, spawn_run, Sandbox, PROBE_EVENTS};

/// A sandbox with `[host]` lines `host`, every event of the probe and faulty fixtures, and
/// `plugins`.
fn sandbox(host: &str, plugins: &str) -> Sandbox {
    Sandbox::new(&format!("{host}\n{EVENTS}\n{PROBE_EVENTS}\n{plugins}"))
}

#[test]
fn a_library_cut_short_is_refused_before_it_is_mapped() {
    let s = Sandbox::with_probe("[[plugins]]\nname = \"half\"\npath = \"libhalf.so\"\n");
    // A Rust plugin and a C one (built by gcc): the check reads the file, whatever its kind.
    let c = switchboard_tests::c_library(
        "gcc",
        &["plugins/c-abi/welcome.c"],
        "welcome",
        // As `c_abi` builds it, so that the test run builds it once.
        &["-std=c11", "-pedantic"],
    );
    for whole in [library("probe"), c].map(|path| std::fs::read(path).unwrap()) {
        for cut in [whole.len() / 2, whole.len() - 4096, 64] {
            std::fs::write(s.path("libhalf.so"), &whole[..cut]).unwrap();
            for args in [&["check"][..], &["inspect", "libhalf.so"]] {
                let run = s.run(args);
                run.assert_code(2);
                let stderr = run.stderr();
                assert!(
                    stderr.contains("is cut short or damaged"),
                    "{args:?}: {stderr}"
                );
                assert!(stderr.contains("libhalf.so"), "{stderr}");
                assert!(stderr.contains("copy the library again"), "{stderr}");
            }
        }
    }
}

#[test]
fn nothing_is_left_in_the_temporary_folder() {
    let s = Sandbox::with_probe("[[plugins]]\nname = \"probe\"\nconfig = { label = \"probe\" }\n");
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(binary())
            .arg("--manifest")
            .arg(s.manifest())
            .args(args)
            .env("TMPDIR", tmp.path())
            .current_dir(s.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // `inspect` has no manifest folder: its copy goes to the temporary folder, and goes.
    run(&["inspect", library("probe").to_str().unwrap()]);
    run(&["check"]);
    run(&["emit", "ping"]);
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the temporary folder: {left:?}");
}

#[test]
fn a_hung_isolated_call_holds_back_no_other_event() {
    let s = sandbox(
        "",
        "[[plugins]]\nname = \"faulty\"\nisolation = \"process\"\ntimeout_ms = 3000\n[[plugins]]\nname = \"probe\"\nconfig = { label = \"probe\" }\n",
    );
    let mut child = spawn_run(&s, &["--workers", "2"]);
    let stderr = drain_stderr(&mut child);
    let lines = std::iter::once(r#"{"event": "hang", "id": "hung"}"#.to_owned())
        .chain((0..3000).map(|n| format!(r#"{{"event": "ping", "id": {n}}}"#)));
    feed(&mut child, lines, false);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let answered: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    child.wait().unwrap();
    assert_eq!(answered.len(), 3001, "{}", stderr.join().unwrap());
    // Every ping was answered before the hung call's time limit ended it.
    let last = answered.last().unwrap();
    assert_eq!(last["id"], "hung", "{last}");
    assert_eq!(last["results"][0]["error"]["kind"], "timed_out", "{last}");
    assert!(answered[..3000].iter().all(|l| l["ok"] == true));
}

#[cfg(target_os = "linux")]
#[test]
fn what_a_worker_starts_ends_with_it() {
    let s = sandbox(
        "",
        "[[plugins]]\nname = \"faulty\"\nisolation = \"process\"\n",
    );
    let fork = |file: &Path| {
        format!(
            r#"{{"event": "fork", "args": {{"pid_file": {:?}}}}}"#,
            file.to_str().unwrap()
        )
    };
    let pid_of = |file: &Path| -> u32 {
        assert!(eventually(Duration::from_secs(10), || file.exists()));
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };

    // The host ends normally: the worker's child goes with it.
    let file = s.path("child.pid");
    let run = s.run_with_stdin(&["run"], fork(&file));
    run.assert_code(0);
    assert_gone_with_host(pid_of(&file), "ended normally");

    // The host is killed: the worker and its child still go.
    let file = s.path("killed.pid");
    let mut child = spawn_run(&s, &[]);
    feed(&mut child, std::iter::once(fork(&file)), true);
    kill_host_while_running(&mut child, pid_of(&file));
}

#[cfg(target_os = "linux")]
#[test]
fn an_isolated_result_past_the_frame_limit_is_an_error_not_a_crash() {
    let s = sandbox(
        "",
        "[[plugins]]\nname = \"faulty\"\nisolation = \"process\"\n",
    );
    let input = "{\"event\": \"big\", \"args\": {\"mb\": 100}}\n{\"event\": \"flaky\", \"args\": {\"fail\": false}}\n";
    let run = s.run_with_stdin(
        &["--format", "json", "run", "--workers", "1", "--ordered"],
        input,
    );
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stderr());
    let error = &lines[0]["results"][0]["error"];
    assert_eq!(error["kind"], "error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("over the 64 MiB limit"), "{message}");
    assert_eq!(lines[1]["results"][0]["value"], "flaky worked");
    let isolated = &summary(&run.stderr())["plugins"][0]["isolated"];
    assert_eq!(isolated["crashes"], 0, "{isolated}");
}

#[cfg(unix)]
#[test]
fn results_computed_before_a_plugins_exit_reach_the_reader() {
    let s = sandbox("", "[[plugins]]\nname = \"faulty\"\n");
    let mut input: String = (1..=300)
        .map(|n| format!("{{\"event\": \"job\", \"args\": {{\"n\": {n}}}}}\n"))
        .collect();
    input.push_str("{\"event\": \"quit\", \"args\": {\"code\": 0}}\n");
    let run = s.run_with_stdin(&["run", "--workers", "1"], input);
    run.assert_code(70);
    assert_eq!(run.json_lines().len(), 300, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("300 result lines were written before it"),
        "{}",
        run.stderr()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_output_exits_74_and_names_standard_output() {
    let s = sandbox(
        "",
        "[[plugins]]\nname = \"probe\"\nconfig = { label = \"probe\" }\n",
    );
    let mut child = Command::new(binary())
        .arg("--manifest")
        .arg(s.manifest())
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = drain_stderr(&mut child);
    feed(
        &mut child,
        (0..100).map(|_| r#"{"event": "ping"}"#.to_owned()),
        false,
    );
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains("cannot write result lines to standard output"),
        "{stderr}"
    );
    assert!(stderr.contains("run: "), "the summary is printed: {stderr}");
}

#[cfg(unix)]
#[test]
fn a_reload_whose_init_never_returns_changes_nothing_and_says_so() {
    let s = sandbox(
        "setup_timeout_ms = 1000",
        "[[plugins]]\nname = \"faulty\"\n",
    );
    let mut child = spawn_run(&s, &["--workers", "1"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (said, stderr) = std::sync::mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let mut ask = || {
        writeln!(stdin, r#"{{"event": "flaky", "args": {{"fail": false}}}}"#).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(&stdout.next().unwrap().unwrap()).unwrap();
        (
            line["results"][0]["value"].clone(),
            line["generation"].clone(),
        )
    };
    let (value, generation) = ask();
    assert_eq!(value, "flaky worked");

    let text = std::fs::read_to_string(s.manifest()).unwrap();
    std::fs::write(
        s.manifest(),
        text.replace(
            "name = \"faulty\"\n",
            "name = \"faulty\"\nconfig = { hang_init = true }\n",
        ),
    )
    .unwrap();
    let hup = |child: &std::process::Child| {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    hup(&child);
    std::thread::sleep(Duration::from_millis(200));
    hup(&child); // asked again while the first is under way: said at once
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("did not return within") {
        let left = deadline.saturating_duration_since(Instant::now());
        match stderr.recv_timeout(left) {
            Ok(line) => seen.push_str(&(line + "\n")),
            Err(_) => panic!("no refusal on stderr: {seen}"),
        }
    }
    assert!(seen.contains("still under way"), "{seen}");
    assert!(seen.contains("plugin `faulty`"), "{seen}");
    assert!(seen.contains("did not return within 1000 ms"), "{seen}");
    assert_eq!(ask(), ("flaky worked".into(), generation));

    // The end of the input ends the run, within the bound of the reload still queued.
    drop(stdin);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the run did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_shutdown_that_never_returns_is_given_up_on_by_name() {
    let s = sandbox(
        "setup_timeout_ms = 500",
        "[[plugins]]\nname = \"faulty\"\nconfig = { hang_shutdown = true }\n",
    );
    let start = Instant::now();
    let run = s.run_with_stdin(
        &["run"],
        "{\"event\": \"flaky\", \"args\": {\"fail\": false}}\n",
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    run.assert_code(0);
    let stderr = run.stderr();
    assert!(
        stderr.contains("plugin `faulty` failed to shut down"),
        "{stderr}"
    );
    assert!(stderr.contains("did not return within 500 ms"), "{stderr}");
}

#[test]
fn arguments_say_what_is_wrong_with_them() {
    let s = sandbox(
        "",
        "[[plugins]]\nname = \"probe\"\nconfig = { label = \"probe\" }\n",
    );
    let run = s.run(&["emit", "echo", "name=Ann", "age=9223372036854775808"]);
    run.assert_code(2);
    assert!(
        run.stderr().contains("out of the 64-bit range"),
        "{}",
        run.stderr()
    );
    let line = r#"{"event": "echo", "args": {"name": "Ann", "age": 9223372036854775808}}"#;
    let run = s.run_with_stdin(&["run"], line);
    let error = run.json_lines()[0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("out of the 64-bit range"), "{error}");

    // Input that ends before the optional arguments leaves them out.
    let run = s.run_with_stdin(&["--format", "json", "emit", "-i", "echo"], "Ann\n");
    run.assert_code(0);
    assert_eq!(run.json()["ok"], true, "{}", run.stdout());
}
