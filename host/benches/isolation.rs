//! What a call to an isolated plugin costs, side by side with its floor and with the same
//! plugin in-process:
//!
//! - `pipe_ping_pong`: 16 bytes to `cat` through a pipe and back: the raw round trip
//!   between two processes;
//! - `isolated_emit`: `user_joined` to the `bench` plugin with `isolation = "process"`
//!   (one callback, a pipe round trip with the arguments framed);
//! - `in_process_emit`: the same emit with the plugin loaded into the host;
//!
//! and the throughput of `switchboard run --workers 2` over 200,000 `user_joined` lines to
//! the same plugin, isolated (`processes = 2`) and in-process (`run_isolated`,
//! `run_in_process`; elements per second).
//!
//! `cargo bench -p switchboard --bench isolation`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard::{Outcomes, Switchboard};
use switchboard_plugin_api::Value;

use support::{EMAIL, NAME};

/// Events in each `run`.
const EVENTS: u64 = 200_000;

/// A folder with an `events.toml` for the `bench` plugin with `settings` (its isolation).
fn folder(settings: &str) -> tempfile::TempDir {
    let folder = support::manifest_dir(0, support::Counting::Add);
    let libraries = support::bench_library().parent().unwrap().to_owned();
    let manifest = format!(
        "[host]\nplugin_dir = {libraries:?}\n{}\n[[plugins]]\nname = \"bench\"\nconfig = {{ rmw = true }}\n{settings}\n",
        support::EVENTS
    );
    std::fs::write(folder.path().join("events.toml"), manifest).unwrap();
    folder
}

fn host(isolation: &str) -> (tempfile::TempDir, Switchboard) {
    let folder = folder(&format!("isolation = \"{isolation}\""));
    // SAFETY: set before any thread of this benchmark reads the environment.
    unsafe { std::env::set_var("SWITCHBOARD_WORKER", support::binary()) };
    let host = Switchboard::open(&folder.path().join("events.toml")).unwrap();
    (folder, host)
}

fn isolation(c: &mut Criterion) {
    let mut group = c.benchmark_group("isolation");
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut to_cat, mut from_cat) = (cat.stdin.take().unwrap(), cat.stdout.take().unwrap());
    group.bench_function("pipe_ping_pong", |b| {
        let mut back = [0u8; 16];
        b.iter(|| {
            to_cat.write_all(&[7u8; 16]).unwrap();
            from_cat.read_exact(&mut back).unwrap();
        })
    });
    drop(to_cat);
    let _ = cat.wait();

    let args = [Value::borrowed(NAME), Value::borrowed(EMAIL)];
    for isolation in ["process", "in_process"] {
        let (_folder, host) = host(isolation);
        let board = host.current();
        let joined = board.event("user_joined").unwrap();
        let mut outcomes = Outcomes::new();
        let name = if isolation == "process" {
            "isolated_emit"
        } else {
            "in_process_emit"
        };
        group.bench_function(name, |b| {
            b.iter(|| board.emit_into(joined, &args, &mut outcomes).unwrap())
        });
        assert!(outcomes.failures().next().is_none());
    }
    group.finish();
}

fn run_throughput(c: &mut Criterion) {
    let lines: String = (0..EVENTS)
        .map(|i| {
            format!(
                "{{\"event\":\"user_joined\",\"args\":{{\"name\":\"user{i}\",\"email\":\"user{i}@example.com\"}}}}\n"
            )
        })
        .collect();
    let mut group = c.benchmark_group("isolation");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    for (name, settings) in [
        ("run_isolated", "isolation = \"process\"\nprocesses = 2"),
        ("run_in_process", ""),
    ] {
        let folder = folder(settings);
        std::fs::write(folder.path().join("events.jsonl"), &lines).unwrap();
        // Every event gets its result line, and the callback ran for each.
        let out = String::from_utf8(support::run_switchboard(folder.path(), 2, true)).unwrap();
        assert_eq!(out.lines().count() as u64, EVENTS);
        assert!(out.lines().all(|l| l.contains("\"ok\":true")));
        group.bench_function(name, |b| {
            b.iter(|| support::run_switchboard(folder.path(), 2, false))
        });
    }
    group.finish();
}

criterion_group!(benches, isolation, run_throughput);
criterion_main!(benches);
