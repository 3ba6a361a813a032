//! The ids of consumed events this host completed, remembered across restarts: when an
//! acknowledgement is lost (the host was killed between finishing an event and the server
//! hearing of it), the server delivers the event again, and its id says it is done.
//!
//! One file per durable consumer, one id per line, appended before the acknowledgement is
//! sent. An append is one `write`: a killed process leaves whole lines (the page cache
//! keeps them; a power loss may forget the last moments, which at-least-once delivery
//! covers). The newest `remember` ids are kept: the file is rewritten when it holds twice
//! as many.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::NatsError;

/// The remembered ids, and the file they are appended to. The two have locks of their
/// own, so that looking an id up (for each delivery) never waits for a write to the
/// disk (for each completed event).
pub(crate) struct Completed {
    path: PathBuf,
    log: Mutex<Log>,
    ids: Mutex<Ids>,
    remember: usize,
}

/// The file, and how many lines it holds, whole or not.
struct Log {
    file: File,
    lines: usize,
}

/// The newest ids, each kept once and shared by the set and the order.
#[derive(Default)]
struct Ids {
    set: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
}

impl Ids {
    fn keep(&mut self, id: &str, remember: usize) {
        if !self.set.contains(id) {
            let id: Arc<str> = Arc::from(id);
            self.set.insert(Arc::clone(&id));
            self.order.push_back(id);
        }
        while self.order.len() > remember {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }
}

/// A lock's value: plain lists and a file, which a panic elsewhere cannot leave
/// half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Completed {
    /// Reads the ids `path` holds (the newest `remember` of them), and appends there.
    pub(crate) fn open(path: &Path, remember: usize) -> Result<Completed, NatsError> {
        let failed = |e: std::io::Error| NatsError::Completed {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(failed)?;
        }
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(failed(e)),
        };
        // A last line without its newline was cut short: not an id.
        let whole = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
        let all: Vec<&str> = whole.lines().filter(|l| !l.is_empty()).collect();
        let remember = remember.max(1);
        let mut ids = Ids::default();
        for id in &all[all.len().saturating_sub(remember)..] {
            ids.keep(id, remember);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(failed)?;
        if !text.is_empty() && !text.ends_with('\n') {
            // Start the next id on a line of its own.
            file.write_all(b"\n").map_err(failed)?;
        }
        Ok(Completed {
            path: path.to_owned(),
            log: Mutex::new(Log {
                file,
                lines: text.lines().count(),
            }),
            ids: Mutex::new(ids),
            remember,
        })
    }

    /// Whether `id` completed.
    pub(crate) fn contains(&self, id: &str) -> bool {
        lock(&self.ids).set.contains(id)
    }

    /// Remembers that `id` completed, on disk and then in memory, before it is
    /// acknowledged.
    pub(crate) fn record(&self, id: &str) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(id.len() + 1);
        line.extend_from_slice(id.as_bytes());
        line.push(b'\n');
        let mut log = lock(&self.log);
        log.file.write_all(&line)?;
        log.lines += 1;
        lock(&self.ids).keep(id, self.remember);
        if log.lines >= 2 * self.remember {
            self.compact(&mut log)?;
        }
        Ok(())
    }

    /// Rewrites the file with the ids remembered, through a new file renamed over it.
    fn compact(&self, log: &mut Log) -> std::io::Result<()> {
        let fresh = self.path.with_extension("compacting");
        let (text, kept) = {
            let ids = lock(&self.ids);
            let mut text = String::with_capacity(ids.order.len() * 24);
            for id in &ids.order {
                text.push_str(id);
                text.push('\n');
            }
            (text, ids.order.len())
        };
        std::fs::write(&fresh, text)?;
        File::open(&fresh)?.sync_all()?;
        std::fs::rename(&fresh, &self.path)?;
        log.file = OpenOptions::new().append(true).open(&self.path)?;
        log.lines = kept;
        Ok(())
    }

    /// Writes what was appended through to the disk.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        lock(&self.log).file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_reopen_and_a_cut_short_last_line_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nats/c.completed");
        let completed = Completed::open(&path, 10).unwrap();
        completed.record("a").unwrap();
        completed.record("b").unwrap();
        // A write cut short by a kill.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"half")
            .unwrap();
        let again = Completed::open(&path, 10).unwrap();
        assert!(again.contains("a") && again.contains("b"));
        assert!(!again.contains("half"));
        again.record("c").unwrap();
        let reopened = Completed::open(&path, 10).unwrap();
        assert!(reopened.contains("c") && !reopened.contains("halfc"));
    }

    #[test]
    fn only_the_newest_ids_are_kept_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.completed");
        let completed = Completed::open(&path, 100).unwrap();
        for n in 0..1_000 {
            completed.record(&format!("id-{n}")).unwrap();
        }
        assert!(completed.contains("id-999") && completed.contains("id-900"));
        assert!(!completed.contains("id-899"));
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!((100..200).contains(&lines), "{lines} lines");
        let reopened = Completed::open(&path, 100).unwrap();
        assert!(reopened.contains("id-999") && !reopened.contains("id-899"));
    }
}
