//! Times the reference workload outside criterion, in the format `bench/compare.sh` reads
//! from every peer: one line per path and callback count,
//!
//! ```text
//! peer=switchboard callbacks=3 ns_per_emit=41.20
//! ```
//!
//! Each figure is the median of `samples` timed batches of `emits` emits. `PROBE_ONLY=peer`
//! times one path; `PROBE_C_LIBRARY=path` adds the same workload in a C-ABI plugin
//! (`tests/c-abi/bench.c`, peer `switchboard-c`), its batches taken in turn with the Rust
//! plugin's, and a line `peer=switchboard-c callbacks=N paired_ratio=R` with the median of
//! their ratios batch by batch; `PROBE_RMW=1` makes every callback count with `fetch_add`
//! (peers are then named `switchboard-rmw`...).
//!
//! `cargo run --release -p switchboard --example dispatch_probe -- [emits] [samples]`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use switchboard::Outcomes;
use switchboard_plugin_api::Value;

use support::{Counting, RawPlugins, EMAIL, NAME};

/// Nanoseconds per call of `emit` over one batch of `emits`.
fn batch(emits: u32, emit: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..emits {
        emit();
    }
    start.elapsed().as_nanos() as f64 / f64::from(emits)
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median over `samples` batches of nanoseconds per call of `emit`.
fn time(emits: u32, samples: usize, mut emit: impl FnMut()) -> f64 {
    batch(emits, &mut emit); // warm up
    median((0..samples).map(|_| batch(emits, &mut emit)).collect())
}

/// [`time`] for two paths at once, their batches taken in turn, so that a machine whose
/// speed drifts (a shared VM, a CPU changing its clock) slows both alike: each path's
/// median, and the median of the second's time over the first's, batch by batch.
fn time_paired(
    emits: u32,
    samples: usize,
    mut first: impl FnMut(),
    mut second: impl FnMut(),
) -> (f64, f64, f64) {
    batch(emits, &mut first); // warm up
    batch(emits, &mut second);
    let pairs: Vec<(f64, f64)> = (0..samples)
        .map(|_| (batch(emits, &mut first), batch(emits, &mut second)))
        .collect();
    (
        median(pairs.iter().map(|p| p.0).collect()),
        median(pairs.iter().map(|p| p.1).collect()),
        median(pairs.iter().map(|p| p.1 / p.0).collect()),
    )
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let emits: u32 = arguments
        .next()
        .map_or(1_000_000, |a| a.parse().expect("emits: a number"));
    let samples: usize = arguments
        .next()
        .map_or(15, |a| a.parse().expect("samples: a number"));
    let only = std::env::var("PROBE_ONLY").ok();
    let wanted = |peer: &str| only.as_deref().is_none_or(|o| o == peer);
    let counting = match std::env::var("PROBE_RMW").as_deref() {
        Ok("1") => Counting::FetchAdd,
        _ => Counting::Add,
    };
    let report = |peer: &str, n: usize, ns: f64| {
        let suffix = counting.suffix();
        println!("peer={peer}{suffix} callbacks={n} ns_per_emit={ns:.2}");
    };

    let counts: Vec<usize> = std::env::var("PROBE_CALLBACKS").map_or(vec![1, 3, 10], |v| {
        v.split(',').filter_map(|n| n.parse().ok()).collect()
    });
    for n in counts {
        if wanted("rust-fn-pointer") {
            let callbacks = support::direct_callbacks(n, counting);
            report(
                "rust-fn-pointer",
                n,
                time(emits, samples, || {
                    support::call_direct(&callbacks, black_box(NAME), black_box(EMAIL))
                }),
            );
        }
        if wanted("raw-abi") {
            let raw = RawPlugins::new(n, counting);
            report(
                "raw-abi",
                n,
                time(emits, samples, || {
                    raw.call_all(black_box(NAME), black_box(EMAIL))
                }),
            );
        }

        let (_folder, board) = support::board(n, counting);
        let args = [Value::borrowed(NAME), Value::borrowed(EMAIL)];
        let mut outcomes = Outcomes::new();
        let before = support::total_work(&board);
        let joined = board.event("user_joined").unwrap();
        // The same workload in a C-ABI plugin (`tests/c-abi/bench.c`), when built: timed in
        // turn with the Rust plugin's, batch by batch.
        let c_library = std::env::var_os("PROBE_C_LIBRARY").filter(|_| wanted("switchboard-c"));
        let c = c_library.map(|library| {
            let (folder, c_board) = support::c_board(n, counting, std::path::Path::new(&library));
            let before = support::total_work(&c_board);
            (folder, c_board, before)
        });
        let rust_emit =
            |outcomes: &mut Outcomes| board.emit_into(joined, black_box(&args), outcomes).unwrap();
        match &c {
            Some((_, c_board, _)) if wanted("switchboard") => {
                let c_joined = c_board.event("user_joined").unwrap();
                let mut c_outcomes = Outcomes::new();
                let (rust, c, ratio) = time_paired(
                    emits,
                    samples,
                    || rust_emit(&mut outcomes),
                    || {
                        c_board
                            .emit_into(c_joined, black_box(&args), &mut c_outcomes)
                            .unwrap()
                    },
                );
                report("switchboard", n, rust);
                report("switchboard-c", n, c);
                println!(
                    "peer=switchboard-c{} callbacks={n} paired_ratio={ratio:.3}",
                    counting.suffix()
                );
            }
            Some((_, c_board, _)) => {
                let c_joined = c_board.event("user_joined").unwrap();
                report(
                    "switchboard-c",
                    n,
                    time(emits, samples, || {
                        c_board
                            .emit_into(c_joined, black_box(&args), &mut outcomes)
                            .unwrap()
                    }),
                );
            }
            None if wanted("switchboard") => {
                report(
                    "switchboard",
                    n,
                    time(emits, samples, || rust_emit(&mut outcomes)),
                );
            }
            None => {}
        }
        if wanted("switchboard-by-name") {
            report(
                "switchboard-by-name",
                n,
                time(emits, samples, || {
                    let event = board.event(black_box("user_joined")).unwrap();
                    board
                        .emit_into(event, black_box(&args), &mut outcomes)
                        .unwrap()
                }),
            );
        }
        if let Some((_, c_board, before)) = &c {
            let work = support::total_work(c_board) - before;
            assert!(
                work > 0 && work % (n * (NAME.len() + EMAIL.len())) as i64 == 0,
                "the C callbacks did their work"
            );
        }
        let work = support::total_work(&board) - before;
        let ran = wanted("switchboard") || wanted("switchboard-by-name");
        assert!(
            !ran || n == 0 || work > 0 && work % (n * (NAME.len() + EMAIL.len())) as i64 == 0,
            "the callbacks did their work"
        );
    }
}
