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

use crate::NatsError;

/// The remembered ids, and the file they are appended to.
pub(crate) struct Completed {
    path: PathBuf,
    file: File,
    ids: HashSet<String>,
    order: VecDeque<String>,
    remember: usize,
    /// Lines in the file, whole or not.
    lines: usize,
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
        let mut completed = Completed {
            path: path.to_owned(),
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(failed)?,
            ids: HashSet::new(),
            order: VecDeque::new(),
            remember: remember.max(1),
            lines: text.lines().count(),
        };
        for id in &all[all.len().saturating_sub(completed.remember)..] {
            completed.keep(id);
        }
        if !text.is_empty() && !text.ends_with('\n') {
            // Start the next id on a line of its own.
            completed.file.write_all(b"\n").map_err(failed)?;
        }
        Ok(completed)
    }

    /// Whether `id` completed.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Remembers that `id` completed, in memory and on disk, before it is acknowledged.
    pub(crate) fn record(&mut self, id: &str) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(id.len() + 1);
        line.extend_from_slice(id.as_bytes());
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.lines += 1;
        self.keep(id);
        if self.lines >= 2 * self.remember {
            self.compact()?;
        }
        Ok(())
    }

    fn keep(&mut self, id: &str) {
        if self.ids.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > self.remember {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }

    /// Rewrites the file with the ids remembered, through a new file renamed over it.
    fn compact(&mut self) -> std::io::Result<()> {
        let fresh = self.path.with_extension("compacting");
        let mut text = String::with_capacity(self.order.len() * 24);
        for id in &self.order {
            text.push_str(id);
            text.push('\n');
        }
        std::fs::write(&fresh, text)?;
        File::open(&fresh)?.sync_all()?;
        std::fs::rename(&fresh, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = self.order.len();
        Ok(())
    }

    /// Writes what was appended through to the disk.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_reopen_and_a_cut_short_last_line_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nats/c.completed");
        let mut completed = Completed::open(&path, 10).unwrap();
        completed.record("a").unwrap();
        completed.record("b").unwrap();
        // A write cut short by a kill.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"half")
            .unwrap();
        let mut again = Completed::open(&path, 10).unwrap();
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
        let mut completed = Completed::open(&path, 100).unwrap();
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
