//! Quarantine: a plugin whose workers crash too often is switched off until its library
//! changes or an operator clears it. The reason is kept in a state folder beside the
//! manifest (`.switchboard/quarantine/PLUGIN.json`), so that a restart of the host does
//! not run the crashing library again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::manifest::QuarantineSettings;

/// Why a plugin is quarantined, as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuarantineRecord {
    /// The plugin's manifest name.
    pub plugin: String,
    /// The library file.
    pub library: PathBuf,
    /// The library's SHA-256 when it was quarantined; another hash clears the record.
    pub sha256: String,
    /// What happened: the last crash, and how many in how long.
    pub reason: String,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
}

/// The state folder of a manifest's host.
pub fn state_dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join(".switchboard").join("quarantine")
}

fn record_path(manifest_dir: &Path, plugin: &str) -> PathBuf {
    state_dir(manifest_dir).join(format!("{plugin}.json"))
}

/// The plugin's quarantine record, if it has one for this library: a record for another
/// build of the library is removed (rebuilding a plugin clears its quarantine).
pub fn current(manifest_dir: &Path, plugin: &str, sha256: &str) -> Option<QuarantineRecord> {
    let path = record_path(manifest_dir, plugin);
    let text = std::fs::read_to_string(&path).ok()?;
    let record: QuarantineRecord = serde_json::from_str(&text).ok()?;
    if record.sha256 == sha256 {
        Some(record)
    } else {
        tracing::info!("plugin `{plugin}`: its library changed, so its quarantine is lifted");
        let _ = std::fs::remove_file(&path);
        None
    }
}

/// Every quarantine record of a manifest's host.
pub fn all(manifest_dir: &Path) -> Vec<QuarantineRecord> {
    let Ok(entries) = std::fs::read_dir(state_dir(manifest_dir)) else {
        return Vec::new();
    };
    let mut records: Vec<QuarantineRecord> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    records.sort_by(|a, b| a.plugin.cmp(&b.plugin));
    records
}

/// Lifts a plugin's quarantine; whether it had one.
pub fn clear(manifest_dir: &Path, plugin: &str) -> std::io::Result<bool> {
    match std::fs::remove_file(record_path(manifest_dir, plugin)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Counts one plugin's crashes and decides when it is quarantined.
pub(crate) struct Watch {
    settings: QuarantineSettings,
    crashes: Mutex<VecDeque<Instant>>,
    record: Mutex<Option<QuarantineRecord>>,
}

impl Watch {
    pub(crate) fn new(settings: QuarantineSettings, record: Option<QuarantineRecord>) -> Watch {
        Watch {
            settings,
            crashes: Mutex::new(VecDeque::new()),
            record: Mutex::new(record),
        }
    }

    /// The record, while the plugin is quarantined.
    pub(crate) fn record(&self) -> Option<QuarantineRecord> {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a crash; returns the record if this one quarantines the plugin (it is then
    /// written to the state folder).
    pub(crate) fn crashed(
        &self,
        manifest_dir: &Path,
        plugin: &str,
        library: &Path,
        sha256: &str,
        what: &str,
    ) -> Option<QuarantineRecord> {
        let limit = self.settings.crashes as usize;
        if limit == 0 {
            return None;
        }
        let window = Duration::from_secs(self.settings.window_s);
        let now = Instant::now();
        let mut crashes = self.crashes.lock().unwrap_or_else(|e| e.into_inner());
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            crashes.pop_front();
        }
        if crashes.len() < limit {
            return None;
        }
        crashes.clear();
        let record = QuarantineRecord {
            plugin: plugin.to_owned(),
            library: library.to_owned(),
            sha256: sha256.to_owned(),
            reason: format!(
                "{limit} crashes within {} s; the last: {what}",
                self.settings.window_s
            ),
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let path = record_path(manifest_dir, plugin);
        let written = std::fs::create_dir_all(state_dir(manifest_dir)).and_then(|()| {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&record).unwrap_or_default(),
            )
        });
        if let Err(error) = written {
            tracing::error!(
                "plugin `{plugin}`: cannot keep its quarantine in {}: {error}; it lasts until the host stops",
                path.display()
            );
        }
        *self.record.lock().unwrap_or_else(|e| e.into_inner()) = Some(record.clone());
        Some(record)
    }
}
