//! Start-up cost: loading and initializing 100 plugins.
//!
//! - `open_100_entries`: 100 manifest entries naming one library, in this process (the
//!   file is opened once, each entry initialized);
//! - `check_1_copy` / `check_100_copies`: the `switchboard check` process on 1 and on 100
//!   distinct copies of the library under 100 names, so every iteration loads each file
//!   fresh, as an operator's start-up does (process start included; the difference is the
//!   loading).
//!
//! `cargo bench -p switchboard --bench load`
// A benchmark whose set-up fails should stop loudly rather than measure nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::Switchboard;

/// A folder with `n` copies of the bench library (`libcopy1.so`...) and a manifest
/// loading each under its own name.
fn copies(n: usize) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    let library = support::bench_library();
    let mut manifest = format!("[host]\nplugin_dir = \"lib\"\n{}\n", support::EVENTS);
    std::fs::create_dir(folder.path().join("lib")).unwrap();
    for i in 1..=n {
        let name = format!("copy{i}");
        let file = format!(
            "{}{name}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        std::fs::copy(&library, folder.path().join("lib").join(file)).unwrap();
        manifest.push_str(&format!("[[plugins]]\nname = \"{name}\"\n"));
    }
    std::fs::write(folder.path().join("events.toml"), manifest).unwrap();
    folder
}

fn check(binary: &Path, folder: &Path) {
    let status = Command::new(binary)
        .args(["--quiet", "check"])
        .current_dir(folder)
        .stdout(Stdio::null())
        .status()
        .expect("cannot start switchboard");
    assert!(status.success(), "switchboard check failed");
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(20);

    let folder = support::manifest_dir(100, support::Counting::Add);
    let manifest = folder.path().join("events.toml");
    group.bench_function("open_100_entries", |b| {
        b.iter(|| {
            let host = Switchboard::open(&manifest).unwrap();
            assert_eq!(host.current().live_plugins(), 100);
            host
        })
    });

    let binary = support::binary();
    for n in [1, 100] {
        let folder = copies(n);
        check(&binary, folder.path());
        group.bench_function(
            format!("check_{n}_cop{}", if n == 1 { "y" } else { "ies" }),
            |b| b.iter(|| check(&binary, folder.path())),
        );
    }
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
