//! Plugins in worker processes, through the real binary: a segfault, an abort, a stack
//! overflow, an allocation past `memory_mb`, an endless loop and `exit(0)` each cost one
//! call and a restart, never the host; quarantine survives a restart of the host; no
//! worker outlives its host.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use crate::faults::sandbox;
use crate::util::{feed, spawn_run};

/// `faulty` in worker processes with `extra` settings, beside `bystander` in-process.
fn isolated(host: &str, extra: &str) -> crate::util::Sandbox {
    sandbox(
        host,
        &format!(
            r#"
            [[plugins]]
            name = "faulty"
            isolation = "process"
            timeout_ms = 1500
            memory_mb = 256
            {extra}
            [[plugins]]
            name = "bystander"
            "#
        ),
    )
}

/// The pids a fault message names (`pid 1234`).
pub(crate) fn pids(text: &str) -> Vec<u32> {
    text.split("pid ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(target_os = "linux")]
#[test]
fn every_fault_costs_one_call_and_names_what_happened() {
    let s = isolated("", "");
    let cases: &[(&[&str], &str, &[&str])] = &[
        (&["segfault"], "crashed", &["SIGSEGV", "segmentation fault"]),
        (&["abort"], "crashed", &["SIGABRT"]),
        (
            &["overflow"],
            "crashed",
            &["SIGABRT", "overflowed its stack"],
        ),
        (
            &["hog", "mb=1024"],
            "crashed",
            &["SIGABRT", "memory allocation"],
        ),
        (
            &["hang"],
            "timed_out",
            &["within timeout_ms = 1500", "the worker was killed"],
        ),
        (&["quit", "code=0"], "crashed", &["exited with code 0"]),
    ];
    for (args, kind, words) in cases {
        let mut command = vec!["emit"];
        command.extend_from_slice(args);
        let started = Instant::now();
        let run = s.run(&command);
        run.assert_code(1);
        let stdout = run.stdout();
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("faulty.{}", args[0])))
            .unwrap_or_default();
        assert!(
            line.contains(&format!(" {kind} ")),
            "{args:?}: {stdout}\n{}",
            run.stderr()
        );
        for word in *words {
            assert!(
                stdout.contains(word),
                "{args:?}: missing {word:?} in {stdout}"
            );
        }
        assert!(
            stdout.contains(&format!("bystander.{}", args[0])) && stdout.contains("\"still here\""),
            "the healthy callback of the same event ran: {stdout}"
        );
        assert!(!run.stderr().contains("panicked at"), "{}", run.stderr());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took too long"
        );
        for pid in pids(&stdout) {
            assert!(!alive(pid), "worker {pid} outlived its host");
        }
    }
}

#[test]
fn a_plugin_printing_to_stdout_cannot_corrupt_the_frames() {
    let s = isolated("", "");
    let run = s.run(&["emit", "shout", "text=hello"]);
    run.assert_code(0);
    assert!(run.stdout().contains("\"shouted\""), "{}", run.stdout());
    assert!(!run.stdout().contains("{\"half\""), "{}", run.stdout());
    assert!(
        run.stderr().contains("{\"half\": \"hello\"}"),
        "{}",
        run.stderr()
    );
}

#[test]
fn worker_limits_on_an_in_process_plugin_are_refused() {
    let s = sandbox(
        "",
        r#"
        [[plugins]]
        name = "faulty"
        timeout_ms = 100
        "#,
    );
    let run = s.run(&["check"]);
    run.assert_code(2);
    let stderr = run.stderr();
    assert!(
        stderr.contains("plugin `faulty` sets `timeout_ms`, but it runs in the host's process")
            && stderr.contains("isolation = \"process\""),
        "{stderr}"
    );
    let ok = isolated("", "processes = 2");
    let list = ok.run(&["list"]);
    list.assert_code(0);
    assert!(
        list.stdout()
            .contains("in 2 worker processes, 1.5 s per call, 256 MiB"),
        "{}",
        list.stdout()
    );
}

/// Under `run`, events travel to a worker in batches: each event still runs its callbacks
/// in dispatch order (in-process ones before and after the isolated one, and none after a
/// failure on an `on_error = "stop"` event), a crash costs only its own event, and no call
/// runs twice, not even the calls after a crash in the same batch (they go to a new worker).
#[test]
fn batches_keep_each_events_order_and_run_every_call_once() {
    const JOBS: u64 = 3_000;
    const CRASHES: u64 = 3_000;
    let events = crate::faults::EVENTS.replace(
        "[events.job]\nargs = { n = \"int\" }",
        "[events.job]\nargs = { n = \"int\" }\non_error = \"stop\"",
    );
    assert!(events.contains("on_error"));
    let s = crate::util::Sandbox::new(&format!(
        r#"breaker = {{ failures = 0 }}
quarantine = {{ crashes = 0 }}
{events}
[[plugins]]
name = "first"
library = "counter"
config = {{ report = "first.json", capacity = 4000 }}
[[plugins]]
name = "faulty"
isolation = "process"
processes = 2
config = {{ fail_modulo = 7, call_log = "calls.log" }}
[[plugins]]
name = "last"
library = "counter"
isolation = "process"
config = {{ report = "last.json", capacity = 4000 }}
"#
    ));
    let mut child = spawn_run(&s, &["--workers", "2"]);
    feed(
        &mut child,
        (1..=JOBS.max(CRASHES)).flat_map(|n| {
            [
                crate::util::job(n),
                format!(r#"{{"event": "crash_every", "args": {{"n": {n}, "every": 250}}}}"#),
            ]
        }),
        false,
    );
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut jobs, mut crashes) = (0u64, 0u64);
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let results = line["results"].as_array().expect("a dispatched event");
        let called: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "{}.{}",
                    r["plugin"].as_str().unwrap(),
                    r["callback"].as_str().unwrap()
                )
            })
            .collect();
        if line["event"] == "job" {
            jobs += 1;
            // The results say which n: the failing ones name it.
            let failed = results.iter().any(|r| r.get("error").is_some());
            if failed {
                assert_eq!(called, ["first.count", "faulty.job"], "{line}");
                let message = results[1]["error"]["message"].as_str().unwrap();
                let n: u64 = message.split(' ').nth(1).unwrap().parse().unwrap();
                assert_eq!(n % 7, 0, "{line}");
            } else {
                assert_eq!(
                    called,
                    ["first.count", "faulty.job", "last.count"],
                    "{line}"
                );
            }
        } else {
            crashes += 1;
            assert_eq!(called, ["faulty.crash_every"], "{line}");
            let result = &results[0];
            match result.get("value") {
                Some(n) => assert_ne!(n.as_u64().unwrap() % 250, 0, "{line}"),
                None => assert_eq!(result["error"]["kind"], "crashed", "{line}"),
            }
        }
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    // Some callbacks failed: exit code 1.
    assert_eq!(child.wait().unwrap().code(), Some(1), "{stderr}");
    assert_eq!((jobs, crashes), (JOBS, CRASHES));

    // Every job reached the in-process counter once, and the isolated one once unless the
    // isolated plugin before it failed.
    let report = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(s.path(name)).unwrap()).unwrap()
    };
    let (first, last) = (report("first.json"), report("last.json"));
    assert_eq!(
        (first["calls"].as_u64(), first["missing"].as_u64()),
        (Some(JOBS), Some(0))
    );
    assert_eq!(first["duplicates"], 0);
    assert_eq!(last["calls"].as_u64(), Some(JOBS - JOBS / 7));
    assert_eq!(last["duplicates"], 0);
    assert_eq!(
        last["missing"].as_u64(),
        Some(JOBS / 7 - u64::from(JOBS.is_multiple_of(7)))
    );

    // Each crash_every call ran exactly once, the crashing ones included.
    let log = std::fs::read_to_string(s.path("calls.log")).unwrap();
    let mut seen = vec![0u32; CRASHES as usize + 1];
    for n in log.lines() {
        seen[n.parse::<usize>().unwrap()] += 1;
    }
    assert!(
        seen[1..].iter().all(|&c| c == 1),
        "a call ran twice or never"
    );
}

/// `run --workers 2` over many events to an isolated plugin that aborts on every
/// 10,000th: one result per line, the crashing ones marked, the rest ok.
#[test]
fn run_loses_nothing_when_an_isolated_plugin_crashes_again_and_again() {
    const EVENTS: u64 = 1_000_000;
    let s = isolated(
        "breaker = { failures = 0 }\nquarantine = { crashes = 0 }",
        "processes = 2",
    );
    let mut child = spawn_run(&s, &["--workers", "2"]);
    feed(
        &mut child,
        (0..EVENTS).map(|n| {
            format!(
                r#"{{"event": "crash_every", "args": {{"n": {n}, "every": 10000}}, "id": {n}}}"#
            )
        }),
        false,
    );
    let stderr = child.stderr.take().unwrap();
    let summary = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
        text
    });
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = vec![false; EVENTS as usize];
    let (mut crashed, mut ok) = (0u64, 0u64);
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = line["id"].as_u64().unwrap();
        assert!(!seen[id as usize], "event {id} answered twice");
        seen[id as usize] = true;
        let result = &line["results"][0];
        if id.is_multiple_of(10_000) {
            assert_eq!(result["error"]["kind"], "crashed", "{line}");
            crashed += 1;
        } else {
            assert_eq!(result["value"], id, "{line}");
            ok += 1;
        }
    }
    let status = child.wait().unwrap();
    assert_eq!((crashed, ok), (EVENTS / 10_000, EVENTS - EVENTS / 10_000));
    assert!(seen.iter().all(|s| *s), "an event got no result line");
    // Some callbacks failed: exit code 1, as for any failed callback; the summary counts
    // the crashes and restarts.
    assert_eq!(status.code(), Some(1));
    let summary = summary.join().unwrap();
    assert!(
        summary.contains(r#""isolated":{"crashes":100,"kills":0"#),
        "{summary}"
    );
}

#[test]
fn a_hung_callback_ends_at_its_time_limit_while_other_events_flow() {
    let s = isolated("", "processes = 2");
    let mut child = spawn_run(&s, &["--workers", "2"]);
    let started = Instant::now();
    let lines = std::iter::once(r#"{"event": "hang", "id": "hang"}"#.to_owned())
        .chain((0..200).map(|n| format!(r#"{{"event": "slow", "args": {{"ms": 1}}, "id": {n}}}"#)));
    feed(&mut child, lines, false);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut slow_done = 0;
    let mut hang = None;
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if line["id"] == "hang" {
            hang = Some(line["results"][0]["error"]["kind"].clone());
        } else {
            assert_eq!(line["results"][0]["value"], "slept", "{line}");
            slow_done += 1;
        }
    }
    child.wait().unwrap();
    assert_eq!(slow_done, 200);
    assert_eq!(hang, Some(serde_json::json!("timed_out")));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the hang held the others back: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_plugin_that_keeps_crashing_is_quarantined_across_restarts_until_rebuilt() {
    // The library is a copy in the sandbox, so that "rebuilding" it can change its bytes.
    let copy = tempfile::tempdir().unwrap();
    let library = copy.path().join(format!(
        "{}faulty{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    std::fs::copy(crate::util::library("faulty"), &library).unwrap();
    let s = sandbox(
        "quarantine = { crashes = 2, window_s = 60 }\nbreaker = { failures = 0 }",
        &format!(
            "[[plugins]]\nname = \"faulty\"\npath = {:?}\nisolation = \"process\"\n",
            library.to_str().unwrap()
        ),
    );
    let mut child = spawn_run(&s, &["--workers", "1"]);
    feed(
        &mut child,
        (0..3).map(|n| format!(r#"{{"event": "segfault", "id": {n}}}"#)),
        false,
    );
    let out = child.wait_with_output().unwrap();
    let mut lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.sort_by_key(|l| l["id"].as_u64());
    let kinds: Vec<_> = lines
        .iter()
        .map(|l| l["results"][0]["error"]["kind"].clone())
        .collect();
    assert_eq!(kinds, ["crashed", "crashed", "skipped"], "{lines:?}");

    // A new host: still quarantined, and it says so.
    let run = s.run(&["emit", "segfault"]);
    run.assert_code(1);
    assert!(
        run.stdout()
            .contains("is quarantined: 2 crashes within 60 s"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("SIGSEGV"),
        "the reason keeps the signal: {}",
        run.stdout()
    );
    let list = s.run(&["list"]);
    assert!(list.stdout().contains("QUARANTINED"), "{}", list.stdout());
    let listed = s.run(&["quarantine"]);
    assert!(
        listed.stdout().contains("faulty: 2 crashes within 60 s"),
        "{}",
        listed.stdout()
    );

    // Clearing it by hand: it runs (and crashes) again.
    let cleared = s.run(&["quarantine", "--clear", "faulty"]);
    assert!(
        cleared.stdout().contains("no longer quarantined"),
        "{}",
        cleared.stdout()
    );
    let again = s.run(&["emit", "segfault"]);
    assert!(again.stdout().contains("SIGSEGV"), "{}", again.stdout());

    // Quarantined again, then a rebuilt library (other bytes) lifts it.
    let mut child = spawn_run(&s, &[]);
    feed(
        &mut child,
        (0..2).map(|_| r#"{"event": "segfault"}"#.to_owned()),
        false,
    );
    child.wait_with_output().unwrap();
    assert!(s
        .run(&["emit", "segfault"])
        .stdout()
        .contains("is quarantined"));
    let mut bytes = std::fs::read(&library).unwrap();
    bytes.extend_from_slice(b"rebuilt");
    std::fs::write(&library, bytes).unwrap();
    let rebuilt = s.run(&["emit", "segfault"]);
    assert!(rebuilt.stdout().contains("SIGSEGV"), "{}", rebuilt.stdout());
}

/// The pids of a process's children.
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                found.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[test]
fn no_worker_outlives_a_host_killed_with_sigkill() {
    let s = isolated("", "processes = 2");
    let mut child = spawn_run(&s, &["--workers", "2"]);
    feed(
        &mut child,
        (0..2).map(|_| r#"{"event": "slow", "args": {"ms": 60000}}"#.to_owned()),
        true,
    );
    let host = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = Vec::new();
    while workers.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        workers = children(host);
    }
    assert_eq!(workers.len(), 2, "two workers started");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers.iter().any(|w| alive(*w)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<_> = workers.iter().filter(|w| alive(**w)).collect();
    assert!(left.is_empty(), "workers {left:?} outlived the host");
}

/// An isolated callback that emits an event its own plugin handles: the nested call runs
/// in the worker that waits in the emit (there is only one), and its state is the same.
#[test]
fn an_isolated_plugin_can_emit_into_its_own_callbacks() {
    let s = crate::util::Sandbox::new(
        r#"
        [events.user_joined]
        args = { name = "string", email = "string" }
        [events.greeting_sent]
        args = { name = "string" }
        [events.greetings_count]
        [[plugins]]
        name = "greeter"
        isolation = "process"
        "#,
    );
    let mut child = spawn_run(&s, &["--workers", "1"]);
    feed(
        &mut child,
        [
            r#"{"event": "user_joined", "args": {"name": "Ann", "email": "a@b"}, "id": 1}"#,
            r#"{"event": "greetings_count", "id": 2}"#,
        ]
        .into_iter()
        .map(str::to_owned),
        false,
    );
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["results"][0]["value"], "Welcome, Ann!",
        "{lines:?}"
    );
    assert_eq!(
        lines[1]["results"][0]["value"], 1,
        "the nested call counted: {lines:?}"
    );
    assert_eq!(out.status.code(), Some(0));
}
