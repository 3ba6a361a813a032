//! The in-process host against plugins written to misbehave and inputs made to hurt, all
//! through the real binary: nothing stalls unrelated events, loses or corrupts a result
//! line, overflows the stack, grows without bound or prints a raw Rust panic.

// Several tests need Unix (signals, FIFOs, /proc) and are compiled there only.
#![cfg_attr(not(unix), allow(unused_imports))]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::faults::{drain_stderr, sandbox, summary};
use crate::util::{binary, feed, job, spawn_run, Sandbox};

/// One healthy `faulty` plugin (plus `extra` config).
fn faulty(host: &str, extra: &str) -> Sandbox {
    sandbox(
        host,
        &format!("[[plugins]]\nname = \"faulty\"\nconfig = {{ {extra} }}\n"),
    )
}

#[cfg(unix)]
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, failing the test after `limit`.
#[cfg(unix)]
fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("switchboard did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A field of `/proc/PID/status`, in KiB.
#[cfg(target_os = "linux")]
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON result line ({e}): {line}"))
}

#[test]
fn a_slow_event_holds_back_no_other_event() {
    let s = faulty("", "");
    let mut child = spawn_run(&s, &["--workers", "4"]);
    let stderr = drain_stderr(&mut child);
    let mut lines = vec![r#"{"event": "slow", "args": {"ms": 3000}}"#.to_owned()];
    lines.extend((1..=1000).map(job));
    feed(&mut child, lines.into_iter(), false);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let events: Vec<String> = stdout
        .lines()
        .map(|l| parse(&l.unwrap())["event"].as_str().unwrap().to_owned())
        .collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", stderr.join().unwrap());
    assert_eq!(events.len(), 1001);
    // Every fast result was written while the slow callback still slept, though all of
    // them travelled in the slow event's batch.
    assert_eq!(
        events.last().map(String::as_str),
        Some("slow"),
        "{events:?}"
    );
}

#[cfg(unix)]
#[test]
fn one_sigterm_ends_a_run_whose_callback_hangs_with_a_line_for_every_event() {
    let s = faulty("", "");
    let mut child = spawn_run(&s, &["--workers", "2", "--drain-timeout", "1"]);
    let stderr = drain_stderr(&mut child);
    let mut lines: Vec<String> = (1..=5).map(job).collect();
    lines.push(r#"{"event": "hang", "id": "stuck"}"#.to_owned());
    lines.extend((7..=10).map(job));
    feed(&mut child, lines.into_iter(), true);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut results = Vec::new();
    let mut line = String::new();
    while results.len() < 9 {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "run ended early");
        results.push(parse(&line));
    }
    signal(&child, "TERM");
    for rest in stdout.lines() {
        results.push(parse(&rest.unwrap()));
    }
    let status = wait_within(&mut child, Duration::from_secs(10));
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let mut seqs: Vec<u64> = results.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "one line per event");
    let stuck = results.iter().find(|r| r["seq"] == 6).unwrap();
    assert!(
        stuck["error"].as_str().unwrap().contains("still running"),
        "{stuck}"
    );
    let summary = summary(&stderr);
    assert_eq!(summary["still_running"], serde_json::json!([6]));
    assert_eq!(summary["abandoned"], 1);
    assert_eq!(summary["input_remained"], true);
}

#[cfg(unix)]
#[test]
fn a_second_signal_stops_waiting_and_answers_events_that_never_ran() {
    let s = faulty("", "");
    // One worker, stuck at once: the other events are accepted but never start.
    let mut child = spawn_run(&s, &["--workers", "1", "--drain-timeout", "600"]);
    let stderr = drain_stderr(&mut child);
    let mut lines = vec![r#"{"event": "hang"}"#.to_owned()];
    lines.extend(
        (2..=100).map(|n| format!(r#"{{"event": "job", "args": {{"n": {n}}}, "id": {n}}}"#)),
    );
    feed(&mut child, lines.into_iter(), true);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let results: Vec<_> = stdout.lines().map(|l| parse(&l.unwrap())).collect();
    let status = wait_within(&mut child, Duration::from_secs(10));
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(results.len(), 100, "{stderr}");
    for r in &results[1..] {
        assert_eq!(r["id"], r["seq"], "the caller's id is kept: {r}");
        assert!(
            r["error"].as_str().unwrap().contains("not dispatched"),
            "{r}"
        );
    }
    assert_eq!(summary(&stderr)["abandoned"], 100);
}

#[test]
fn standard_output_carries_only_result_lines_whatever_plugins_print() {
    let s = faulty("", "");
    let mut child = spawn_run(&s, &["--workers", "2"]);
    let stderr = drain_stderr(&mut child);
    let lines: Vec<String> = (0..500)
        .map(|n| format!(r#"{{"event": "shout", "args": {{"text": "shout {n}"}}}}"#))
        .collect();
    feed(&mut child, lines.into_iter(), false);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let results: Vec<_> = stdout.lines().map(|l| parse(&l.unwrap())).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(results.len(), 500);
    assert!(results
        .iter()
        .all(|r| r["results"][0]["value"] == "shouted"));
    assert!(stderr.join().unwrap().contains("shout 499"));
}

#[cfg(target_os = "linux")]
#[test]
fn ordered_output_behind_a_stuck_event_keeps_memory_bounded() {
    let s = faulty("", "");
    let mut child = spawn_run(&s, &["--workers", "2", "--ordered", "--queue", "1024"]);
    let stderr = drain_stderr(&mut child);
    let mut lines = vec![r#"{"event": "slow", "args": {"ms": 2500}}"#.to_owned()];
    lines.extend((1..=1_000_000).map(job));
    feed(&mut child, lines.into_iter(), false);
    let stdout = child.stdout.take().unwrap();
    let counter = std::thread::spawn(move || BufReader::new(stdout).lines().count());
    std::thread::sleep(Duration::from_millis(2000));
    // Before the bound, 1M lines waiting behind the stuck event took 170 MB.
    let rss = proc_kib(child.id(), "VmRSS:");
    assert!(rss < 48 * 1024, "{rss} KiB resident behind a stuck event");
    assert_eq!(counter.join().unwrap(), 1_000_001);
    assert!(
        child.wait().unwrap().success(),
        "{}",
        stderr.join().unwrap()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_line_over_the_bound_is_refused_without_being_read_whole() {
    let s = faulty("", "");
    let mut child = spawn_run(&s, &["--workers", "1", "--max-line-bytes", "1048576"]);
    let stderr = drain_stderr(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let huge = format!(
        "{{\"event\": \"job\", \"args\": {{\"n\": 1}}, \"pad\": \"{}\"}}",
        "x".repeat(100 << 20)
    );
    stdin.write_all(huge.as_bytes()).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let refused = parse(&line);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1048576 bytes"),
        "{refused}"
    );
    // The 100 MiB line was never held in memory.
    let peak = proc_kib(child.id(), "VmHWM:");
    assert!(peak < 64 * 1024, "peak {peak} KiB");
    writeln!(stdin, "{}", job(2)).unwrap();
    drop(stdin);
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(parse(&line)["ok"], true, "the run goes on");
    assert_eq!(
        child.wait().unwrap().code(),
        Some(2),
        "{}",
        stderr.join().unwrap()
    );
}

#[test]
fn flag_values_out_of_range_are_refused_with_the_range() {
    let s = faulty("", "");
    for (flag, value) in [
        ("--queue", "4294967295"),
        ("--workers", "40000"),
        ("--queue", "0"),
    ] {
        let run = s.run(&["run", flag, value]);
        run.assert_code(2);
        assert!(run.stderr().contains(value), "{}", run.stderr());
        assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    }
}

#[test]
fn the_deepest_cycle_a_manifest_accepts_fails_cleanly_in_emit_and_run() {
    let s = sandbox(
        &format!("max_depth = {}", switchboard::manifest::MAX_MAX_DEPTH),
        "[[plugins]]\nname = \"cyclic\"\nlibrary = \"faulty\"\nbreaker = { failures = 0 }\n",
    );
    let emit = s.run(&["emit", "ping_a"]);
    emit.assert_code(1);
    assert!(emit.stderr().contains("more) ->"), "{}", emit.stderr());
    assert!(
        emit.stderr().len() < 1 << 20,
        "{} bytes of logs",
        emit.stderr().len()
    );
    let input: String = (0..20).map(|_| "{\"event\": \"ping_a\"}\n").collect();
    let run = s.run_with_stdin(&["run", "--workers", "2"], input);
    run.assert_code(1);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().all(|l| l["ok"] == false));
}

#[test]
fn a_callback_with_a_big_stack_runs_under_run_as_under_emit() {
    let s = faulty("", "");
    let emit = s.run(&["emit", "deep_stack", "kb=4096"]);
    emit.assert_code(0);
    let run = s.run_with_stdin(
        &["run", "--workers", "2"],
        "{\"event\": \"deep_stack\", \"args\": {\"kb\": 4096}}\n",
    );
    run.assert_code(0);
    assert_eq!(run.json_lines()[0]["ok"], true);
}

#[test]
fn a_result_nested_too_deep_is_refused_not_a_crash() {
    let s = faulty("", "");
    let emit = s.run(&["emit", "deep_result", "depth=100000"]);
    emit.assert_code(1);
    assert!(
        emit.stdout().contains("nested deeper than 100 levels"),
        "{}",
        emit.stdout()
    );
    let run = s.run_with_stdin(
        &["run"],
        "{\"event\": \"deep_result\", \"args\": {\"depth\": 100000}}\n{\"event\": \"deep_result\", \"args\": {\"depth\": 100}}\n{\"event\": \"deep_result\", \"args\": {\"depth\": 101}}\n",
    );
    run.assert_code(1);
    let lines = run.json_lines();
    let by_seq = |seq: u64| lines.iter().find(|l| l["seq"] == seq).unwrap();
    assert_eq!(by_seq(1)["ok"], false);
    assert_eq!(by_seq(2)["ok"], true, "100 levels are fine");
    assert_eq!(by_seq(3)["ok"], false, "101 are not");
}

#[test]
fn a_plugin_cannot_pass_its_failure_off_as_skipped() {
    let s = faulty("", "");
    let run = s.run_with_stdin(
        &["--format", "json", "run"],
        "{\"event\": \"forge_skip\"}\n",
    );
    run.assert_code(1);
    let summary = summary(&run.stderr());
    assert_eq!(summary["plugins"][0]["failed"], 1);
    assert_eq!(summary["plugins"][0]["skipped"], 0);
    assert!(
        run.stdout().contains("counted as a failure"),
        "{}",
        run.stdout()
    );
}

#[test]
fn panics_outside_callbacks_name_the_plugin() {
    let s = faulty("", "panic_drop = true");
    let run = s.run(&["emit", "thread_panic"]);
    run.assert_code(0);
    let stderr = run.stderr();
    assert!(
        stderr.contains("plugin `faulty`: thread 'faulty-helper' panicked at")
            && stderr.contains("faulty's helper thread gave up"),
        "{stderr}"
    );
    // The state's panic in Drop at exit is caught and named, and the exit code stays 0.
    assert!(
        stderr.contains("plugin `faulty`: its state panicked while being dropped"),
        "{stderr}"
    );
    assert!(!stderr.contains("ffi boundary"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_signal_during_emit_lets_the_event_finish_and_shuts_plugins_down() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let s = faulty(
        "",
        &format!("shutdown_log = {:?}", log.path().to_str().unwrap()),
    );
    let mut child = Command::new(binary())
        .arg("--manifest")
        .arg(s.manifest())
        .args(["emit", "slow", "ms=1500"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    let status = wait_within(&mut child, Duration::from_secs(10));
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(String::from_utf8_lossy(&output.stdout).contains("slept"));
    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap(),
        "faulty shut down\n"
    );
}

#[cfg(unix)]
#[test]
fn pipes_and_devices_are_named_for_what_they_are() {
    let s = faulty("", "");
    let fifo = s.path("libfifo.so");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    s.write(
        "events.toml",
        &format!("{manifest}[[plugins]]\nname = \"fifo\"\npath = \"libfifo.so\"\n"),
    );
    let check = s.run(&["check"]);
    check.assert_code(2);
    assert!(
        check.stderr().contains("is a named pipe (FIFO)"),
        "{}",
        check.stderr()
    );
    let inspect = s.run(&["inspect", "/dev/zero"]);
    inspect.assert_code(2);
    assert!(
        inspect.stderr().contains("is a character device"),
        "{}",
        inspect.stderr()
    );
}

#[cfg(unix)]
#[test]
fn a_world_writable_folder_anywhere_up_the_path_is_refused_unless_sticky() {
    use crate::util::library;
    use std::os::unix::fs::PermissionsExt;
    let s = faulty("", "");
    let open = s.path("open");
    let lib = open.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(library("faulty"), lib.join("libfaulty.so")).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    s.write(
        "events.toml",
        &format!("{manifest}[[plugins]]\nname = \"copy\"\npath = \"open/lib/libfaulty.so\"\n"),
    );
    let check = s.run(&["--format", "json", "check"]);
    check.assert_code(2);
    assert!(
        check.stderr().contains("load.writable"),
        "{}",
        check.stderr()
    );
    assert!(
        check.stderr().contains("/open is writable by other users"),
        "{}",
        check.stderr()
    );
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    s.run(&["check"]).assert_code(0);
}

#[cfg(unix)]
#[test]
fn a_plugin_calling_exit_does_not_pass_for_a_successful_run() {
    let s = faulty("", "");
    let input: String = (1..=50)
        .map(job)
        .chain(["{\"event\": \"quit\", \"args\": {\"code\": 0}}".to_owned()])
        .map(|l| l + "\n")
        .collect();
    let run = s.run_with_stdin(&["run", "--workers", "1"], input);
    run.assert_code(70);
    assert!(
        run.stderr().contains("plugin code called exit()"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_panic_while_unwinding_names_the_plugin_before_the_abort() {
    let s = faulty("", "");
    let run = s.run(&["emit", "double_panic"]);
    // Rust aborts on a panic during unwinding; nothing in-process can catch it.
    assert_eq!(run.0.status.code(), None, "{}", run.stderr());
    assert!(
        run.stderr().contains("plugin `faulty`")
            && run.stderr().contains("a second panic while unwinding")
            && run.stderr().contains("the process aborts"),
        "{}",
        run.stderr()
    );
}

#[cfg(unix)]
#[test]
fn a_manifest_that_is_a_pipe_or_huge_is_refused_before_reading() {
    let s = faulty("", "");
    let fifo = s.path("fifo.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let check = |manifest: &std::path::Path| {
        let output = Command::new(binary())
            .args(["check", "--manifest"])
            .arg(manifest)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(&fifo);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    let huge = s.write("huge.toml", &"# padding\n".repeat(500_000));
    let (code, stderr) = check(&huge);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("a manifest may have at most 4194304"),
        "{stderr}"
    );
}

#[test]
fn an_argument_given_twice_is_refused_as_ambiguous() {
    let s = faulty("", "");
    let emit = s.run(&["emit", "slow", "ms=1", "ms=2"]);
    emit.assert_code(2);
    assert!(
        emit.stderr()
            .contains("`ms` of event `slow` is given twice"),
        "{}",
        emit.stderr()
    );
    let json = s.run(&["emit", "slow", "--json", r#"{"ms": 1, "ms": 2}"#]);
    json.assert_code(2);
    assert!(
        json.stderr().contains("the key `ms` appears twice"),
        "{}",
        json.stderr()
    );
    let run = s.run_with_stdin(
        &["run"],
        "{\"event\": \"slow\", \"args\": {\"ms\": 1, \"ms\": 2}}\n{\"event\": \"shout\", \"args\": {\"text\": {\"a\": 1, \"a\": 2}}}\n",
    );
    run.assert_code(2);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["error"].as_str().unwrap().contains("appears twice")),
        "{lines:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_signal_during_a_hung_emit_exits_after_the_drain_without_shutting_down() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let s = faulty(
        "",
        &format!("shutdown_log = {:?}", log.path().to_str().unwrap()),
    );
    let mut child = Command::new(binary())
        .arg("--manifest")
        .arg(s.manifest())
        .args(["emit", "hang"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    // The event gets 10 s to finish; then the command gives up on it.
    let status = wait_within(&mut child, Duration::from_secs(20));
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("the event is still running"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap(),
        "",
        "a plugin is never shut down under its own running callback"
    );
}
