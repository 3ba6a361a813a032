//! Dispatch cost of the reference workload (`user_joined`, two string arguments; every
//! callback reads both and adds their lengths to an atomic) with 1, 3 and 10 callbacks,
//! against two baselines in this process:
//!
//! - `direct_fn_pointer`: the same work through Rust function pointers (the floor);
//! - `raw_abi`: the loaded library's own `extern "C"` entry points, called without the host
//!   (what the stable ABI costs by itself);
//!
//! Each of the three runs twice: counting with a relaxed load and store (the plain add the
//! peers do) and, suffixed `-rmw`, with `fetch_add`.
//!
//! Then the host's other paths: a pre-resolved event handle with borrowed arguments
//! (`emit_handle`), the name resolved on every emit (`emit_by_name`), and named arguments
//! (`emit_named`, the convenient API). `user_lookup_first` is a `result = "first"` event
//! whose third callback answers.
//!
//! `cargo bench -p switchboard --bench dispatch`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use switchboard::Outcomes;
use switchboard_plugin_api::Value;

use support::{Counting, RawPlugins, EMAIL, NAME};

const CALLBACKS: [usize; 3] = [1, 3, 10];

fn user_joined(c: &mut Criterion) {
    let mut group = c.benchmark_group("user_joined");
    for n in CALLBACKS {
        for counting in [Counting::Add, Counting::FetchAdd] {
            let suffix = counting.suffix();
            let callbacks = support::direct_callbacks(n, counting);
            let id = BenchmarkId::new(format!("direct_fn_pointer{suffix}"), n);
            group.bench_with_input(id, &n, |b, _| {
                b.iter(|| support::call_direct(&callbacks, black_box(NAME), black_box(EMAIL)))
            });

            let raw = RawPlugins::new(n, counting);
            let id = BenchmarkId::new(format!("raw_abi{suffix}"), n);
            group.bench_with_input(id, &n, |b, _| {
                b.iter(|| raw.call_all(black_box(NAME), black_box(EMAIL)))
            });

            let (_folder, board) = support::board(n, counting);
            let joined = board.event("user_joined").unwrap();
            let args = [Value::borrowed(NAME), Value::borrowed(EMAIL)];
            let mut outcomes = Outcomes::new();
            let id = BenchmarkId::new(format!("emit_handle{suffix}"), n);
            group.bench_with_input(id, &n, |b, _| {
                b.iter(|| {
                    board
                        .emit_into(joined, black_box(&args), &mut outcomes)
                        .unwrap()
                })
            });
        }

        let (_folder, board) = support::board(n, Counting::Add);
        let joined = board.event("user_joined").unwrap();
        let args = [Value::borrowed(NAME), Value::borrowed(EMAIL)];
        let mut outcomes = Outcomes::new();
        let before = support::total_work(&board);
        board.emit_into(joined, &args, &mut outcomes).unwrap();
        assert_eq!(
            support::total_work(&board) - before,
            (n * (NAME.len() + EMAIL.len())) as i64,
            "every callback does the work"
        );
        group.bench_with_input(BenchmarkId::new("emit_by_name", n), &n, |b, _| {
            b.iter(|| {
                let event = board.event(black_box("user_joined")).unwrap();
                board
                    .emit_into(event, black_box(&args), &mut outcomes)
                    .unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("emit_named", n), &n, |b, _| {
            b.iter(|| {
                board
                    .emit_named(
                        black_box("user_joined"),
                        [
                            ("name", Value::borrowed(NAME)),
                            ("email", Value::borrowed(EMAIL)),
                        ],
                    )
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn user_lookup_first(c: &mut Criterion) {
    let (_folder, board) = support::board(3, Counting::Add);
    let lookup = board.event("user_lookup").unwrap();
    let args = [Value::borrowed(EMAIL)];
    let mut outcomes = Outcomes::new();
    board.emit_into(lookup, &args, &mut outcomes).unwrap();
    let answer = outcomes.iter().next_back().unwrap().result.unwrap();
    assert_eq!(
        answer.as_i64(),
        Some(EMAIL.len() as i64),
        "the third plugin answers"
    );
    c.bench_function("user_lookup_first/3", |b| {
        b.iter(|| {
            board
                .emit_into(lookup, black_box(&args), &mut outcomes)
                .unwrap()
        })
    });
}

criterion_group!(benches, user_joined, user_lookup_first);
criterion_main!(benches);
