//! End-to-end throughput of `switchboard run`: JSON lines read from a file, dispatched to
//! three bench plugins, one result line each written out, with 1 and 2 workers.
//!
//! `cargo bench -p switchboard --bench run`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const EVENTS: u64 = 200_000;

/// Runs `switchboard run` over `input` and returns its standard output.
fn run(binary: &Path, folder: &Path, workers: u32, keep_output: bool) -> Vec<u8> {
    let input = std::fs::File::open(folder.join("events.jsonl")).unwrap();
    let output = Command::new(binary)
        .args(["--quiet", "run", "--workers", &workers.to_string()])
        .current_dir(folder)
        .stdin(input)
        .stdout(if keep_output {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::null())
        .output()
        .expect("cannot start switchboard");
    assert!(output.status.success(), "switchboard run failed");
    output.stdout
}

fn throughput(c: &mut Criterion) {
    // Several workers call the plugins at once: count exactly.
    let folder = support::manifest_dir(3, support::Counting::FetchAdd);
    let lines: String = (0..EVENTS)
        .map(|i| {
            format!(
                "{{\"event\":\"user_joined\",\"args\":{{\"name\":\"user{i}\",\"email\":\"user{i}@example.com\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(folder.path().join("events.jsonl"), lines).unwrap();
    let binary = support::binary();

    // Every event gets its result line, with all three callbacks in it.
    let out = run(&binary, folder.path(), 2, true);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count() as u64, EVENTS);
    assert!(text.lines().all(|l| l.matches("\"callback\"").count() == 3));

    let mut group = c.benchmark_group("run");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    for workers in [1, 2] {
        group.bench_with_input(BenchmarkId::new("workers", workers), &workers, |b, &w| {
            b.iter(|| run(&binary, folder.path(), w, false))
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
