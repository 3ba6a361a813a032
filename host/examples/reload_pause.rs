//! What a hot reload costs the events flowing through the host: two threads emit
//! `user_joined` to three `bench` plugins as fast as they can, taking the current
//! generation every 256 emits (as `run`'s workers take it per batch), and timing every
//! emit; meanwhile the host reloads `reloads` times, each reload changing one plugin's
//! config (it is started anew; the other two are carried over). Prints the reload times,
//! and per phase (before the first reload, while reloads run, after the last) the events
//! per second, the median and the worst emit latency; then the resident memory added by
//! loading a second build of a plugin in-process.
//!
//! `cargo run --release -p switchboard --example reload_pause -- [reloads]`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

#[path = "../benches/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{Outcomes, Switchboard};
use switchboard_plugin_api::Value;

use support::{EMAIL, NAME};

/// Emits timed, as (start offset from the epoch, latency), in nanoseconds.
type Samples = Vec<(u64, u64)>;

fn manifest(dir: &std::path::Path, round: usize) -> String {
    let libraries = support::bench_library().parent().unwrap().to_owned();
    format!(
        "[host]\nplugin_dir = {libraries:?}\n{}\n\
         [[plugins]]\nname = \"a\"\nlibrary = \"bench\"\nconfig = {{ rmw = true }}\n\
         [[plugins]]\nname = \"b\"\nlibrary = \"bench\"\nconfig = {{ rmw = true }}\n\
         [[plugins]]\nname = \"changing\"\nlibrary = \"bench\"\nconfig = {{ rmw = true, answers = {} }}\n\
         # {}\n",
        support::EVENTS,
        round % 2 == 1,
        dir.display()
    )
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let reloads: usize = std::env::args()
        .nth(1)
        .map_or(20, |a| a.parse().expect("reloads: a number"));
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.toml");
    std::fs::write(&path, manifest(folder.path(), 0)).unwrap();
    let host = Arc::new(Switchboard::open(&path).unwrap());
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let emitters: Vec<_> = (0..2)
        .map(|_| {
            let (watch, stop) = (host.watch(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let args = [Value::borrowed(NAME), Value::borrowed(EMAIL)];
                let mut outcomes = Outcomes::new();
                let mut samples: Samples = Vec::with_capacity(8 << 20);
                while !stop.load(Ordering::Relaxed) {
                    let generation = watch.get();
                    let joined = generation.event("user_joined").unwrap();
                    for _ in 0..256 {
                        let start = Instant::now();
                        generation.emit_into(joined, &args, &mut outcomes).unwrap();
                        let took = start.elapsed().as_nanos() as u64;
                        samples.push(((start - epoch).as_nanos() as u64, took));
                    }
                }
                samples
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(1));
    let reloads_start = epoch.elapsed().as_nanos() as u64;
    let mut took = Vec::with_capacity(reloads);
    for round in 1..=reloads {
        std::fs::write(&path, manifest(folder.path(), round)).unwrap();
        let start = Instant::now();
        let done = host.reload(&path).unwrap();
        took.push(start.elapsed());
        assert_eq!(done.carried, ["a", "b"]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let reloads_end = epoch.elapsed().as_nanos() as u64;
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let samples: Samples = emitters
        .into_iter()
        .flat_map(|e| e.join().unwrap())
        .collect();

    took.sort();
    println!(
        "{reloads} reloads (one plugin of three restarted, two carried over): median {:.2} ms, worst {:.2} ms",
        took[took.len() / 2].as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3
    );
    println!("| phase | events/s | p50 latency | worst latency |");
    println!("|---|---|---|---|");
    let phases = [
        ("before (1 s)", 0, reloads_start),
        ("during the reloads", reloads_start, reloads_end),
        ("after (1 s)", reloads_end, u64::MAX),
    ];
    for (name, from, to) in phases {
        let mut latencies: Vec<u64> = samples
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, ns)| *ns)
            .collect();
        latencies.sort_unstable();
        let end = if to == u64::MAX {
            samples.iter().map(|(at, _)| *at).max().unwrap_or(from)
        } else {
            to
        };
        let seconds = (end - from) as f64 / 1e9;
        println!(
            "| {name} | {:.0} | {} ns | {:.1} us |",
            latencies.len() as f64 / seconds,
            latencies[latencies.len() / 2],
            *latencies.last().unwrap() as f64 / 1e3
        );
    }

    // A new build loaded in-process stays mapped: what that costs.
    let before = resident_kib();
    let rebuilt = folder.path().join(format!(
        "{}bench_copy{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let mut bytes = std::fs::read(support::bench_library()).unwrap();
    bytes.extend_from_slice(b"another build"); // a new content hash, the same code
    std::fs::write(&rebuilt, bytes).unwrap();
    std::fs::write(
        &path,
        manifest(folder.path(), 0).replace(
            "name = \"changing\"\nlibrary = \"bench\"",
            &format!("name = \"changing\"\npath = {rebuilt:?}"),
        ),
    )
    .unwrap();
    host.reload(&path).unwrap();
    println!(
        "a second build of one plugin loaded in-process: +{} KiB resident ({} KiB library file)",
        resident_kib().saturating_sub(before),
        std::fs::metadata(&rebuilt).unwrap().len() / 1024
    );
}
