//! Private copies of plugin libraries, named by content hash: the host never maps the file
//! an operator or a build writes to. A mapped library cannot be loaded again from the same
//! path (the system loader hands back the image it has), and a file overwritten in place
//! under a mapping crashes whoever has it mapped; a copy named by its hash is written once,
//! never changed, and a new build is a new file beside it.
//!
//! Copies go to `.switchboard/libs/` beside the manifest (kept across runs: the same build
//! is not copied twice), or, when that folder cannot be written, to a private folder of
//! this process in the system's temporary folder.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::preflight::hex;
use super::structure::examine;

/// The largest library the host copies: 1 GiB.
const MAX_LIBRARY_BYTES: u64 = 1 << 30;

/// How many distinct library builds one host process loads in-process at most. Each stays
/// mapped until the process exits (libraries are never unloaded); a reload that would go
/// past this is refused with `LoadError::TooManyBuilds`.
pub const MAX_IN_PROCESS_BUILDS: usize = 64;

/// A library's private copy.
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    /// Where the copy is.
    pub(crate) path: PathBuf,
    /// The content's SHA-256, lowercase hex.
    pub(crate) sha256: String,
    /// Whether the library brings a Go runtime (see `structure::examine`).
    pub(crate) go: bool,
}

/// Why a library could not be copied.
#[derive(Debug)]
pub(crate) enum CopyProblem {
    /// Reading the library or writing its copy failed.
    Io(std::io::Error),
    /// The bytes read are not a whole library (see [`damage`](super::structure::damage)): nothing was copied.
    Damaged(String),
}

impl CopyProblem {
    /// The load error for plugin `plugin`, whose library is `path`.
    pub(crate) fn for_plugin(self, plugin: &str, path: &Path) -> crate::error::LoadError {
        use crate::error::LoadError;
        match self {
            CopyProblem::Io(e) => LoadError::NotALibrary {
                plugin: plugin.to_owned(),
                path: path.to_owned(),
                reason: format!("cannot make a private copy to load: {e}"),
            },
            CopyProblem::Damaged(reason) => LoadError::Damaged {
                plugin: plugin.to_owned(),
                path: path.to_owned(),
                reason,
            },
        }
    }
}

impl From<std::io::Error> for CopyProblem {
    fn from(error: std::io::Error) -> Self {
        CopyProblem::Io(error)
    }
}

/// Copies `original` under `state` (a manifest's `.switchboard` folder), or into this
/// process's private temporary folder if `state` is `None` or cannot be written. A file
/// whose structure says it is cut short is refused before anything is written.
pub(crate) fn private_copy(original: &Path, state: Option<&Path>) -> Result<Copy, CopyProblem> {
    let size = std::fs::metadata(original)?.len();
    if size > MAX_LIBRARY_BYTES {
        return Err(CopyProblem::Io(std::io::Error::other(format!(
            "it is {size} bytes, over the {MAX_LIBRARY_BYTES}-byte limit for a plugin library"
        ))));
    }
    // One read: the hash names exactly the bytes that are checked and copied, even if a
    // build is writing the file at this moment.
    let bytes = std::fs::read(original)?;
    let go = examine(&bytes).map_err(CopyProblem::Damaged)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let file_name = original
        .file_name()
        .map_or_else(|| "plugin".into(), |n| n.to_string_lossy().into_owned());
    let name = format!("{}-{file_name}", &sha256[..16]);
    let beside_manifest = state.map(|s| s.join("libs"));
    // The temporary folder only when the manifest's cannot be written: it is made then,
    // not before.
    let folders = beside_manifest
        .into_iter()
        .map(Some)
        .chain(std::iter::once_with(process_folder));
    for folder in folders.flatten() {
        match write_once(&folder, &name, &bytes) {
            Ok(path) => return Ok(Copy { path, sha256, go }),
            Err(error) => {
                tracing::debug!(
                    "cannot keep a copy of {} in {}: {error}",
                    original.display(),
                    folder.display()
                );
            }
        }
    }
    Err(CopyProblem::Io(std::io::Error::other(
        "no folder to keep a private copy in: neither `.switchboard/libs` beside the manifest nor the temporary folder can be written",
    )))
}

/// Writes `bytes` as `folder/name` unless a file with the same content is there already.
/// The copy there is compared byte for byte, not hashed again: the same check, at a tenth
/// of the cost, where hashing it made up a quarter of starting a host with 100 plugins.
fn write_once(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let path = folder.join(name);
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        return Ok(path);
    }
    // Written aside, then renamed into place: a reader never sees half a library.
    let partial = folder.join(format!(".{name}.{}.partial", std::process::id()));
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o700))?;
    }
    if let Err(error) = std::fs::rename(&partial, &path) {
        let _ = std::fs::remove_file(&partial);
        // Another host wrote the same build at the same moment: theirs is as good.
        if path.is_file() {
            return Ok(path);
        }
        return Err(error);
    }
    Ok(path)
}

/// This process's own temporary folder (created at its first use, readable only by this
/// user), removed by [`remove_temporary_copies`].
static PROCESS_FOLDER: Mutex<Option<PathBuf>> = Mutex::new(None);

fn process_folder() -> Option<PathBuf> {
    let mut folder = PROCESS_FOLDER.lock().unwrap_or_else(|e| e.into_inner());
    if folder.is_none() {
        let made = tempfile::Builder::new()
            .prefix("switchboard-libs-")
            .tempdir()
            .ok()?;
        // Kept until the process ends, then removed by `remove_temporary_copies`.
        *folder = Some(made.keep());
    }
    folder.clone()
}

/// Removes this process's temporary folder of library copies, if it made one: a host
/// calls it as it exits. Libraries loaded from it stay mapped (on Unix a removed file
/// lives on while mapped); on Windows a loaded library cannot be removed, and the folder
/// is left for the system's temporary-file cleanup.
#[doc(hidden)]
pub fn remove_temporary_copies() {
    let folder = PROCESS_FOLDER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(folder) = folder {
        if let Err(error) = std::fs::remove_dir_all(&folder) {
            tracing::debug!(
                "cannot remove the temporary copies in {}: {error}",
                folder.display()
            );
        }
    }
}

/// Records that the Go library `sha256` (plugin `plugin`) is loaded in this process; the
/// plugin that loaded another Go library here already, if one did (a second Go runtime in
/// one process is not supported by Go).
pub(crate) fn note_go_runtime(sha256: &str, plugin: &str) -> Result<(), String> {
    static GO: Mutex<Option<(String, String)>> = Mutex::new(None);
    let mut loaded = GO.lock().unwrap_or_else(|e| e.into_inner());
    match loaded.as_ref() {
        Some((build, _)) if build == sha256 => Ok(()),
        Some((_, first)) => Err(first.clone()),
        None => {
            *loaded = Some((sha256.to_owned(), plugin.to_owned()));
            Ok(())
        }
    }
}

/// Records that the build `sha256` is loaded in this process; refuses a new build past
/// [`MAX_IN_PROCESS_BUILDS`]. Returns how many builds are loaded.
pub(crate) fn note_in_process(sha256: &str) -> Result<usize, usize> {
    static LOADED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let loaded = loaded.get_or_insert_with(HashSet::new);
    if loaded.contains(sha256) {
        return Ok(loaded.len());
    }
    if loaded.len() >= MAX_IN_PROCESS_BUILDS {
        return Err(loaded.len());
    }
    loaded.insert(sha256.to_owned());
    Ok(loaded.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_named_by_content_and_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("libx.so");
        std::fs::write(&original, b"build one").unwrap();
        let state = dir.path().join(".switchboard");
        let first = private_copy(&original, Some(&state)).unwrap();
        assert!(first.path.starts_with(state.join("libs")));
        assert_eq!(std::fs::read(&first.path).unwrap(), b"build one");
        let again = private_copy(&original, Some(&state)).unwrap();
        assert_eq!(again.path, first.path);

        // A new build in place: a new copy beside the first, which is left as it was.
        std::fs::write(&original, b"build two").unwrap();
        let second = private_copy(&original, Some(&state)).unwrap();
        assert_ne!(second.path, first.path);
        assert_ne!(second.sha256, first.sha256);
        assert_eq!(std::fs::read(&first.path).unwrap(), b"build one");

        // A copy tampered with is replaced, not trusted.
        std::fs::write(&second.path, b"tampered").unwrap();
        let third = private_copy(&original, Some(&state)).unwrap();
        assert_eq!(std::fs::read(&third.path).unwrap(), b"build two");
    }
}
