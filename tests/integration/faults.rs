//! Faulty plugins and heavy load: failures are recorded and reported, a failing plugin is
//! switched off and on again, and `run` loses no event under load or on SIGTERM.

use std::io::{BufRead, BufReader};
#[cfg(unix)]
use std::process::Command;
use std::time::Duration;

use switchboard::{BreakerState, Generation, Switchboard};
use switchboard_plugin_api::Value;

use crate::util::{feed, job, spawn_run, summarize, Sandbox};

/// The events the faulty fixture registers callbacks for (shared with the Python tests).
pub(crate) const EVENTS: &str = include_str!("../fixtures/faulty/events.toml");

/// A plugin's name, breaker state and how often the breaker tripped.
fn breaker_state(board: &Generation, plugin: usize) -> (String, BreakerState, u64) {
    let status = &board.plugins()[plugin];
    let state = status.breaker.expect("the plugin is running");
    (status.meta.name.clone(), state, status.trips)
}

pub(crate) fn sandbox(host: &str, plugins: &str) -> Sandbox {
    Sandbox::new(&format!("{host}\n{EVENTS}\n{plugins}"))
}

fn stats(board: &Generation) -> serde_json::Value {
    let outcomes = board.emit(board.event("stats").unwrap(), &[]).unwrap();
    outcomes.first_value().unwrap().to_json()
}

#[test]
fn a_panicking_callback_among_healthy_ones_is_recorded_and_reported() {
    let s = sandbox(
        "",
        r#"
        [[plugins]]
        name = "before"
        library = "counter"
        [[plugins]]
        name = "bad"
        library = "faulty"
        config = { panic_modulo = 1 }
        [[plugins]]
        name = "after"
        library = "counter"
        "#,
    );
    let host = Switchboard::open(&s.manifest()).unwrap();
    let board = host.current();
    let outcomes = board
        .emit(board.event("job").unwrap(), &[Value::from(7)])
        .unwrap();
    let summary = summarize(&board, &outcomes);
    assert_eq!(summary[0], "before.count = null");
    assert!(
        summary[1].starts_with("bad.job ! panicked: job 7 panicked on purpose (at "),
        "{summary:?}"
    );
    assert_eq!(summary[2], "after.count = null");
    // Both counters heard about it through plugin.failed, once.
    assert_eq!(stats(&board)["failure_reports"], 1);
    assert_eq!(
        stats(&board)["started"],
        true,
        "host.started reached the plugin"
    );

    let run = s.run(&["emit", "job", "n=7"]);
    run.assert_code(1);
    assert!(
        run.stdout()
            .contains("bad.job       panic  job 7 panicked on purpose"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_failing_failure_reporter_does_not_recurse() {
    let s = sandbox(
        "",
        r#"
        [[plugins]]
        name = "bad"
        library = "faulty"
        config = { fail_modulo = 1, fail_reports = true }
        [[plugins]]
        name = "watcher"
        library = "counter"
        "#,
    );
    let host = Switchboard::open(&s.manifest()).unwrap();
    let board = host.current();
    let outcomes = board
        .emit(board.event("job").unwrap(), &[Value::from(1)])
        .unwrap();
    assert!(outcomes.has_failures());
    // One report for bad.job; bad.report's own failure is only logged.
    assert_eq!(stats(&board)["failure_reports"], 1);
}

#[test]
fn the_circuit_breaker_switches_a_failing_plugin_off_and_on_again() {
    let s = sandbox(
        "breaker = { failures = 3, window_ms = 60000, cooldown_ms = 300 }",
        r#"
        [[plugins]]
        name = "flaky"
        library = "faulty"
        [[plugins]]
        name = "healthy"
        library = "counter"
        breaker = { failures = 0 }
        "#,
    );
    let host = Switchboard::open(&s.manifest()).unwrap();
    let board = host.current();
    let flaky = board.event("flaky").unwrap();
    let emit = |fail: bool| board.emit(flaky, &[Value::from(fail)]).unwrap();
    let state = || board.plugins()[0].breaker.unwrap();

    for _ in 0..3 {
        let error = emit(true).iter().next().unwrap().to_result().unwrap_err();
        assert!(!error.is_skipped(), "{error}");
    }
    assert_eq!(state(), BreakerState::Open);
    let skipped = emit(false).iter().next().unwrap().to_result().unwrap_err();
    assert!(skipped.is_skipped(), "{skipped}");
    assert!(
        skipped
            .message()
            .contains("plugin `flaky` is switched off after 3 failures"),
        "{skipped}"
    );

    // After the cool-down one trial goes through; a failure switches it off again...
    std::thread::sleep(Duration::from_millis(400));
    assert!(!emit(true)
        .iter()
        .next()
        .unwrap()
        .result
        .as_ref()
        .unwrap_err()
        .is_skipped());
    assert_eq!(state(), BreakerState::Open);
    // ...and a success switches it back on.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        emit(false)
            .iter()
            .next()
            .unwrap()
            .result
            .as_ref()
            .unwrap()
            .as_str(),
        Some("flaky worked")
    );
    assert_eq!(
        breaker_state(&board, 0),
        ("flaky".to_owned(), BreakerState::Closed, 2)
    );
    assert_eq!(
        breaker_state(&board, 1),
        ("healthy".to_owned(), BreakerState::Closed, 0)
    );
}

#[test]
fn a_cycle_between_two_events_ends_at_the_depth_limit_with_the_chain() {
    let s = sandbox(
        "max_depth = 5",
        "[[plugins]]\nname = \"cyclic\"\nlibrary = \"faulty\"\nbreaker = { failures = 0 }\n",
    );
    let host = Switchboard::open(&s.manifest()).unwrap();
    let board = host.current();
    let outcomes = board.emit(board.event("ping_a").unwrap(), &[]).unwrap();
    let error = outcomes.iter().next().unwrap().result.unwrap_err();
    assert!(
        error
            .message()
            .contains("max_depth = 5: ping_a -> ping_b -> ping_a -> ping_b -> ping_a -> ping_b"),
        "{error}"
    );
}

#[test]
fn a_panicking_shutdown_is_reported_and_the_others_still_shut_down() {
    let s = Sandbox::new("");
    let report = s.path("report.json");
    let s = sandbox(
        "",
        &format!(
            r#"
            [[plugins]]
            name = "counter"
            config = {{ report = {report:?} }}
            [[plugins]]
            name = "faulty"
            config = {{ panic_shutdown = true }}
            "#,
            report = report.to_str().unwrap()
        ),
    );
    let host = Switchboard::open(&s.manifest()).unwrap();
    let failures = host.shutdown();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].plugin, "faulty");
    assert!(
        failures[0].error.is_panic()
            && failures[0]
                .error
                .message()
                .contains("faulty exploded in shutdown")
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        report["stopping"], true,
        "host.stopping reached the counter first"
    );
}

/// A manifest for the load tests: two counters around a plugin that fails 1% of jobs.
fn load_sandbox(capacity: usize) -> Sandbox {
    let s = Sandbox::new("");
    let (a, b) = (s.path("a.json"), s.path("b.json"));
    let body = format!(
        r#"
        breaker = {{ failures = 0 }}
        {EVENTS}
        [[plugins]]
        name = "first"
        library = "counter"
        config = {{ report = {a:?}, capacity = {capacity} }}
        [[plugins]]
        name = "one_percent"
        library = "faulty"
        config = {{ fail_modulo = 100 }}
        [[plugins]]
        name = "second"
        library = "counter"
        config = {{ report = {b:?}, capacity = {capacity} }}
        "#,
        a = a.to_str().unwrap(),
        b = b.to_str().unwrap()
    );
    // Keep the temp dir alive by moving it into the new sandbox's place.
    let manifest = format!(
        "[host]\nplugin_dir = {:?}\n{body}",
        crate::util::profile_dir().to_str().unwrap()
    );
    s.write("events.toml", &manifest);
    s
}

fn report(s: &Sandbox, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(s.path(name)).unwrap()).unwrap()
}

/// Starts `switchboard run` with `events` jobs written by a thread; `close` ends the input
/// after the last line, otherwise it stays open.
fn start_run(s: &Sandbox, args: &[&str], events: u64, close: bool) -> std::process::Child {
    let mut child = spawn_run(s, args);
    feed(&mut child, (1..=events).map(job), !close);
    child
}

/// Reads the child's stderr on a thread, so that its logs never fill the pipe and stall it.
pub(crate) fn drain_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    })
}

pub(crate) fn summary(stderr: &str) -> serde_json::Value {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(r#"{"summary""#))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    serde_json::from_str::<serde_json::Value>(line).unwrap()["summary"].clone()
}

#[test]
fn a_million_events_through_two_workers_reach_every_healthy_callback_exactly_once() {
    const EVENTS_TOTAL: u64 = 1_000_000;
    let s = load_sandbox(EVENTS_TOTAL as usize);
    let mut child = start_run(&s, &["--workers", "2"], EVENTS_TOTAL, true);
    let stderr = drain_stderr(&mut child);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut lines, mut failed, mut seq_sum) = (0u64, 0u64, 0u64);
    for line in stdout.lines() {
        let line = line.unwrap();
        lines += 1;
        failed += u64::from(line.contains(r#""ok":false"#));
        let seq: u64 = line[7..line.find(',').unwrap()].parse().unwrap();
        seq_sum += seq;
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(lines, EVENTS_TOTAL);
    assert_eq!(
        seq_sum,
        EVENTS_TOTAL * (EVENTS_TOTAL + 1) / 2,
        "every seq once"
    );
    assert_eq!(failed, EVENTS_TOTAL / 100);
    for name in ["a.json", "b.json"] {
        let r = report(&s, name);
        assert_eq!(r["calls"], EVENTS_TOTAL, "{name}: {r}");
        assert_eq!(r["max"], EVENTS_TOTAL, "{name}: {r}");
        assert_eq!(r["duplicates"], 0, "{name}: {r}");
        assert_eq!(r["missing"], 0, "{name}: {r}");
        assert_eq!(r["failure_reports"], EVENTS_TOTAL / 100, "{name}: {r}");
    }
    let summary = summary(&stderr);
    assert_eq!(summary["accepted"], EVENTS_TOTAL);
    assert_eq!(summary["plugins"][1]["failed"], EVENTS_TOTAL / 100);
}

#[cfg(unix)]
#[test]
fn sigterm_mid_stream_finishes_every_accepted_event() {
    let s = load_sandbox(1_000_000);
    let mut child = start_run(&s, &["--workers", "2", "--queue", "256"], 1_000_000, false);
    let stderr = drain_stderr(&mut child);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let mut line = String::new();
    while seen.len() < 2000 {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "run ended early");
        seen.push(line.clone());
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for rest in stdout.lines() {
        seen.push(rest.unwrap());
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    // Input remained: 128 + SIGTERM, whatever the callbacks did.
    assert_eq!(status.code(), Some(143), "{stderr}");
    let summary = summary(&stderr);
    assert_eq!(summary["stopped_by_signal"], true);
    assert_eq!(summary["input_remained"], true);
    assert_eq!(summary["abandoned"], 0);
    let accepted = summary["accepted"].as_u64().unwrap();
    assert!(
        accepted < 1_000_000,
        "the signal came after all input: {accepted}"
    );
    assert_eq!(
        seen.len() as u64,
        accepted,
        "one result line per accepted event"
    );
    for name in ["a.json", "b.json"] {
        let r = report(&s, name);
        assert_eq!(r["calls"], accepted, "{name}: {r}");
        assert_eq!(r["max"], accepted, "{name}: {r}");
        assert_eq!(
            (r["duplicates"].as_u64(), r["missing"].as_u64()),
            (Some(0), Some(0)),
            "{name}: {r}"
        );
        assert_eq!(r["stopping"], true);
    }
}

#[test]
fn one_worker_or_ordered_output_keeps_arrival_order() {
    for args in [
        &["--workers", "1"][..],
        &["--workers", "2", "--ordered"][..],
    ] {
        let s = load_sandbox(20_000);
        let mut child = start_run(&s, args, 20_000, true);
        let stderr = drain_stderr(&mut child);
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let seqs: Vec<u64> = stdout
            .lines()
            .map(|l| {
                let l = l.unwrap();
                l[7..l.find(',').unwrap()].parse().unwrap()
            })
            .collect();
        child.wait().unwrap();
        stderr.join().unwrap();
        assert_eq!(seqs, (1..=20_000).collect::<Vec<_>>(), "{args:?}");
    }
}
