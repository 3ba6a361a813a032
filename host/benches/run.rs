//! End-to-end throughput of `switchboard run`: JSON lines read from a file, dispatched to
//! three bench plugins, one result line each written out, with 1 and 2 workers.
//!
//! `cargo bench -p switchboard --bench run`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const EVENTS: u64 = 200_000;

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

    // Every event gets its result line, with all three callbacks in it.
    let out = support::run_switchboard(folder.path(), 2, true);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count() as u64, EVENTS);
    assert!(text.lines().all(|l| l.matches("\"callback\"").count() == 3));

    let mut group = c.benchmark_group("run");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    for workers in [1, 2] {
        group.bench_with_input(BenchmarkId::new("workers", workers), &workers, |b, &w| {
            b.iter(|| support::run_switchboard(folder.path(), w, false))
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
