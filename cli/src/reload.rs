//! Hot reload for the long-running commands (`run`, `serve`): SIGHUP, and `--watch` on the
//! manifest and the plugin libraries it names. Each trigger runs
//! [`Switchboard::reload`], which checks everything first and changes nothing on an error.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{Manifest, Switchboard};

/// How long the watched files must stay unchanged before a reload: builds and editors
/// write in several steps.
const SETTLE: Duration = Duration::from_millis(500);

/// When the reload under way started, if one is (reloads run one at a time).
static UNDER_WAY: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// Reloads `host` from `manifest` and says what happened on the log; the new generation's
/// number, or the error (the running generation goes on). A reload asked for while another
/// is under way (a plugin's `init` taking its time) says so, and waits for it.
pub fn reload(host: &Switchboard, manifest: &Path, why: &str) -> Result<u64, String> {
    let started = Instant::now();
    let earlier = UNDER_WAY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(started);
    if let Some(earlier) = earlier {
        say_under_way(why, earlier);
    }
    let result = host.reload(manifest);
    *UNDER_WAY.lock().unwrap_or_else(|e| e.into_inner()) = None;
    match result {
        Ok(done) => {
            let list = |names: &[String]| {
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            };
            tracing::info!(
                "reloaded ({why}) in {} ms: generation {} serves events now, after {}; carried over: {}; started: {}; removed: {}",
                started.elapsed().as_millis(),
                done.generation,
                done.previous,
                list(&done.carried),
                list(&done.started),
                list(&done.removed),
            );
            Ok(done.generation)
        }
        Err(error) => {
            let serving = host.current().number();
            tracing::error!(
                "reload ({why}) refused; generation {serving} goes on serving:\n{error}"
            );
            Err(error.to_string())
        }
    }
}

/// Says that a reload asked for `why` waits for the one under way since `since`.
fn say_under_way(why: &str, since: Instant) {
    tracing::warn!(
        "reload ({why}) waits: the reload started {} ms ago is still under way (a plugin's init may run for up to [host] setup_timeout_ms)",
        since.elapsed().as_millis()
    );
}

/// Reloads on every SIGHUP, on a thread of its own; SIGHUPs that arrive during a reload
/// are said at once and make one more reload after it.
pub fn on_hangup(host: &Arc<Switchboard>, manifest: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
        let (host, manifest) = (Arc::clone(host), manifest.to_owned());
        // One reload waiting at most: it reads the manifest as it is when it runs.
        let (asked, asks) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("switchboard-reload".into())
            .spawn(move || {
                for () in asks {
                    let _ = reload(&host, &manifest, "SIGHUP");
                }
            })?;
        std::thread::Builder::new()
            .name("switchboard-sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let under_way = *UNDER_WAY.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(since) = under_way {
                        say_under_way("SIGHUP", since);
                    }
                    let _ = asked.try_send(());
                }
            })?;
    }
    #[cfg(not(unix))]
    {
        let _ = (host, manifest);
    }
    Ok(())
}

/// Watches the manifest and every library it names; reloads once they have stopped
/// changing. The watcher lives as long as the returned value.
pub fn watch(
    host: &Arc<Switchboard>,
    manifest: &Path,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (changed, changes) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !event.kind.is_access() {
                let _ = changed.send(event.paths);
            }
        }
    })?;
    // Folders, not files: editors and builds replace a file by renaming another over it,
    // which a watch on the file itself would lose.
    let folders = watched_folders(manifest);
    for folder in &folders {
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", folder.display()))?;
    }
    tracing::info!(
        "watching {} and the plugin libraries it names ({} folder(s)); a change reloads",
        manifest.display(),
        folders.len()
    );
    let (host, manifest) = (Arc::clone(host), manifest.to_owned());
    std::thread::Builder::new()
        .name("switchboard-watch".into())
        .spawn(move || watch_loop(&host, &manifest, &changes))?;
    Ok(watcher)
}

fn watch_loop(host: &Switchboard, manifest: &Path, changes: &mpsc::Receiver<Vec<PathBuf>>) {
    let mut relevant = watched_files(manifest);
    loop {
        // Wait for a change to one of the files, then until the files settle.
        let Ok(paths) = changes.recv() else { return };
        if !paths
            .iter()
            .any(|p| relevant.iter().any(|r| same_file(p, r)))
        {
            continue;
        }
        while changes.recv_timeout(SETTLE).is_ok() {}
        let _ = reload(host, manifest, "a watched file changed");
        // The manifest may name other libraries now.
        relevant = watched_files(manifest);
    }
}

/// The manifest and the library files it names (as far as it can be read now).
fn watched_files(manifest: &Path) -> Vec<PathBuf> {
    let mut files = vec![manifest.to_owned()];
    if let Ok(parsed) = Manifest::load(manifest) {
        files.extend(
            parsed
                .plugins
                .iter()
                .map(|entry| parsed.library_path(entry)),
        );
    }
    files
}

/// The folders of [`watched_files`], each once.
fn watched_folders(manifest: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = Vec::new();
    for file in watched_files(manifest) {
        let folder = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if folder.is_dir() && !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    folders
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| {
        p.canonicalize().unwrap_or_else(|_| {
            // A file being replaced may not exist this instant: compare its folder.
            match (
                p.parent().and_then(|d| d.canonicalize().ok()),
                p.file_name(),
            ) {
                (Some(dir), Some(name)) => dir.join(name),
                _ => p.to_owned(),
            }
        })
    };
    canonical(a) == canonical(b)
}
