//! Checks on a plugin's file before it is loaded: where it resolves to, who may write it,
//! and whether it is the file the manifest pins. Loading a library runs its code, so
//! these happen first.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::LoadError;
use crate::manifest::PluginSettings;

/// A library path must name a regular file: not nothing, not a folder, not a pipe or a
/// device (opening a FIFO would wait forever, and `/dev/zero` never ends).
pub(crate) fn require_file(plugin: &str, path: &Path) -> Result<(), LoadError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Err(LoadError::Missing {
            plugin: plugin.to_owned(),
            path: path.to_owned(),
        });
    };
    if meta.is_dir() {
        return Err(LoadError::NotAFile {
            plugin: plugin.to_owned(),
            path: path.to_owned(),
        });
    }
    if !meta.is_file() {
        return Err(LoadError::NotRegular {
            plugin: plugin.to_owned(),
            path: path.to_owned(),
            kind: special_kind(&meta),
        });
    }
    Ok(())
}

/// What a file that is neither a regular file nor a folder is.
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = meta;
    "not a regular file"
}

/// The checked path of `entry`'s library (a plugin of a manifest whose plugin folder is
/// `plugin_dir`), or why it must not be loaded.
pub fn library_file(entry: &PluginSettings, plugin_dir: &Path) -> Result<PathBuf, LoadError> {
    let plugin = &entry.name;
    let path = entry.library.clone();
    if !entry.explicit_path && !plugin_dir.is_dir() {
        return Err(LoadError::MissingFolder {
            plugin: plugin.clone(),
            folder: plugin_dir.to_owned(),
        });
    }
    require_file(plugin, &path)?;
    check_containment(entry, plugin_dir, &path)?;
    if !entry.allow_writable {
        check_not_writable(plugin, &path)?;
    }
    if let Some(expected) = &entry.sha256 {
        let actual = sha256_of(&path).map_err(|e| LoadError::NotALibrary {
            plugin: plugin.clone(),
            path: path.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(LoadError::HashMismatch {
                plugin: plugin.clone(),
                path,
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(path)
}

/// A library found by name must stay in the plugin folder after following symbolic links
/// (a link dropped into the folder must not pull in code from elsewhere). A library the
/// manifest names with `path`, relative or absolute, is where the operator said it is.
fn check_containment(entry: &PluginSettings, folder: &Path, path: &Path) -> Result<(), LoadError> {
    if entry.explicit_path {
        return Ok(());
    }
    let (Ok(real_folder), Ok(real_path)) = (folder.canonicalize(), path.canonicalize()) else {
        return Ok(()); // is_file() passed; a race here fails at open with its own error
    };
    if real_path.starts_with(&real_folder) {
        Ok(())
    } else {
        Err(LoadError::Escapes {
            plugin: entry.name.clone(),
            path: path.to_owned(),
            resolved: real_path,
            folder: folder.to_owned(),
        })
    }
}

/// The file, its folder, and every folder above it must be writable only by their owner,
/// as ssh requires of its keys: whoever can write any of them can rename a folder on the
/// way and plant another library. A folder above the library's own with the sticky bit
/// (like `/tmp`) is fine: others cannot rename what they do not own there.
#[cfg(unix)]
fn check_not_writable(plugin: &str, path: &Path) -> Result<(), LoadError> {
    use std::os::unix::fs::PermissionsExt;
    const STICKY: u32 = 0o1000;
    let real = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    for (level, candidate) in real.ancestors().enumerate() {
        let Ok(meta) = std::fs::metadata(candidate) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let sticky_above = level >= 2 && mode & STICKY != 0;
        if mode & 0o022 != 0 && !sticky_above {
            return Err(LoadError::Writable {
                plugin: plugin.to_owned(),
                path: candidate.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_not_writable(_plugin: &str, _path: &Path) -> Result<(), LoadError> {
    Ok(())
}

/// The lowercase hex SHA-256 of a file.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A digest as lowercase hex, as `sha256` pins and private copies name builds.
pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
