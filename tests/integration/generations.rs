//! The running host's generations: swapped while threads emit, each emit finishes on the
//! generation it started on, and a retired generation shuts its plugins down once, after
//! its last call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use switchboard::{EmitError, Generation, Switchboard, ValidManifest};

use crate::util::Sandbox;

/// A manifest with one probe labelled `label` that logs its ping count at shutdown.
fn probe_manifest(sandbox: &Sandbox, file: &str, label: &str) -> std::path::PathBuf {
    let body = std::fs::read_to_string(sandbox.manifest()).unwrap();
    sandbox.write(
        file,
        &format!(
            "{body}\n[[plugins]]\nname = \"p\"\nlibrary = \"probe\"\nconfig = {{ label = \"{label}\", calls_log = {:?} }}\n",
            sandbox.path("calls.log").to_str().unwrap()
        ),
    )
}

/// Which generation served an emit: the label every `ping` result carries, if they agree.
fn served_by(board: &Generation) -> Result<String, String> {
    let ping = board.event("ping").map_err(|e| e.to_string())?;
    let outcomes = board.emit(ping, &[]).map_err(|e| e.to_string())?;
    let labels: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let value = o.result.map_err(|e| e.to_string())?;
            let text = value.as_str().ok_or("not a string")?;
            Ok(text.split('.').next().unwrap_or_default().to_owned())
        })
        .collect::<Result<_, String>>()?;
    if labels.len() != 3 || labels.iter().any(|l| *l != labels[0]) {
        return Err(format!("one emit saw several generations: {labels:?}"));
    }
    Ok(labels[0].clone())
}

#[test]
fn a_swap_under_load_loses_no_emit_and_shuts_the_old_plugins_down_once_after_their_last_call() {
    let sandbox = Sandbox::with_probe("");
    let old_manifest = probe_manifest(&sandbox, "old.toml", "old");
    let new_manifest = probe_manifest(&sandbox, "new.toml", "new");
    let host = Switchboard::open(&old_manifest).unwrap();
    let stale = host.current().event("ping").unwrap();

    let stop = AtomicBool::new(false);
    let emitted = AtomicU64::new(0);
    let served: Vec<BTreeMap<String, u64>> = std::thread::scope(|scope| {
        let emitters: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut served = BTreeMap::new();
                    while !stop.load(Ordering::Relaxed) {
                        // A new generation is picked up by the next emit, never mid-emit.
                        let label = served_by(&host.current()).unwrap_or_else(|e| panic!("{e}"));
                        *served.entry(label).or_insert(0) += 1;
                        emitted.fetch_add(1, Ordering::Relaxed);
                    }
                    served
                })
            })
            .collect();
        let wait_for = |n: u64| {
            while emitted.load(Ordering::Relaxed) < n {
                std::thread::yield_now();
            }
        };
        wait_for(2_000);
        let next = Generation::start(ValidManifest::load(&new_manifest).unwrap()).unwrap();
        let old = host.swap(next);
        drop(old);
        let at_swap = emitted.load(Ordering::Relaxed);
        wait_for(at_swap + 2_000);
        stop.store(true, Ordering::Relaxed);
        emitters.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let count = |label: &str| served.iter().filter_map(|m| m.get(label)).sum::<u64>();
    let (old, new) = (count("old"), count("new"));
    assert!(old >= 2_000 && new >= 1, "old {old}, new {new}");
    assert_eq!(
        old + new,
        emitted.load(Ordering::Relaxed),
        "every emit was served by exactly one of the two generations"
    );

    // The old generation shut down once, after its last call: the count it logged at
    // shutdown is every ping the emitters saw it answer.
    let log = std::fs::read_to_string(sandbox.path("calls.log")).unwrap();
    assert_eq!(log, format!("old {old}\n"));

    // A handle from the old generation cannot name an event of the new one.
    let current = host.current();
    assert!(matches!(
        current.emit(stale, &[]),
        Err(EmitError::Stale { .. })
    ));
    drop(current);

    assert!(host.shutdown().is_empty());
    let log = std::fs::read_to_string(sandbox.path("calls.log")).unwrap();
    assert_eq!(log, format!("old {old}\nnew {new}\n"));
    // Emits after shutdown are refused, not sent to a plugin that has shut down.
    let current = host.current();
    let ping = current.event("ping").unwrap();
    assert!(matches!(current.emit(ping, &[]), Err(EmitError::ShutDown)));
}
