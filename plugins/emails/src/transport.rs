//! Delivery: an outbox folder of `.eml` files (the default) or plain SMTP.
//!
//! A file appears in the outbox whole or not at all: it is written under a hidden
//! `.partial` name and then linked under its name, so that a host killed mid-write never
//! leaves a truncated message for whatever sends the outbox on.
//!
//! A message for an event with an id is named by that id and written at most once: the
//! same event again (a redelivery, a retry, another host sharing the folder) finds its
//! file and sends nothing twice. The SMTP transport cannot ask the relay what it sent, so
//! there a repeated event sends again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::{Message, SmtpTransport, Transport};

/// Where messages go.
pub enum Outbox {
    /// `.eml` files in a folder: where they are written, and the path shown for it.
    Folder(PathBuf, PathBuf),
    /// An SMTP server, without TLS (for a relay on this machine or a trusted network).
    Smtp(SmtpTransport, String),
}

impl Outbox {
    /// An outbox folder, created if missing.
    pub fn folder(path: PathBuf, shown_as: PathBuf) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(&path)?;
        Ok(Outbox::Folder(path, shown_as))
    }

    /// An SMTP relay at `host:port`, giving up after `timeout`. The crate is built without
    /// TLS backends, so the connection is plain SMTP.
    pub fn smtp(host: &str, port: u16, timeout: Duration) -> Outbox {
        let transport = SmtpTransport::builder_dangerous(host)
            .port(port)
            .timeout(Some(timeout))
            .build();
        Outbox::Smtp(transport, format!("{host}:{port}"))
    }

    /// Delivers `message` for the event `event_id` (if the host gives one); returns where
    /// it went (a file path or `smtp://host:port`) and whether it was sent now (`false`:
    /// the outbox held this event's message already).
    pub fn send(&self, message: &Message, event_id: Option<&str>) -> Result<Sent, String> {
        match self {
            Outbox::Folder(folder, shown_as) => {
                let name = match event_id {
                    Some(id) => format!("welcome-{}.eml", file_name_for(id)),
                    None => format!("{}.eml", unique_name()),
                };
                let shown = shown_as.join(&name).display().to_string();
                let path = folder.join(&name);
                if path.exists() {
                    return Ok(Sent {
                        to: shown,
                        now: false,
                    });
                }
                let partial = folder.join(format!(".{name}.{}.partial", unique_name()));
                let written = std::fs::write(&partial, message.formatted()).and_then(|()| {
                    // A link, unlike a rename, never replaces a file of that name: of two
                    // hosts writing one event's message, one wins and the other sees it.
                    // A file system without links (FAT) gets the rename.
                    match std::fs::hard_link(&partial, &path) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                            std::fs::rename(&partial, &path)
                        }
                        linked => linked,
                    }
                });
                let _ = std::fs::remove_file(&partial);
                match written {
                    Ok(()) => Ok(Sent {
                        to: shown,
                        now: true,
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Sent {
                        to: shown,
                        now: false,
                    }),
                    Err(e) => Err(format!(
                        "cannot write to outbox {}: {e}",
                        shown_as.display()
                    )),
                }
            }
            Outbox::Smtp(transport, address) => transport
                .send(message)
                .map(|_| Sent {
                    to: format!("smtp://{address}"),
                    now: true,
                })
                .map_err(|e| format!("smtp server {address} refused the message: {e}")),
        }
    }
}

/// Where a message went, and whether it was sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// A file path or `smtp://host:port`.
    pub to: String,
    /// `false` when the outbox held this event's message already.
    pub now: bool,
}

/// A file name part for an event id: its safe characters, then a hash of the whole id, so
/// that two ids that differ only in unsafe characters still get two names.
fn file_name_for(id: &str) -> String {
    let safe: String = id
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    // FNV-1a: stable across builds and platforms (the name must be the same next year).
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{safe}-{hash:016x}")
}

/// A file name no other message of this or another process takes: the time, the process
/// and a count.
fn unique_name() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_is_written_once_and_unsafe_ids_get_names_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::folder(dir.path().to_owned(), dir.path().to_owned()).unwrap();
        let message = crate::message::welcome("t@example.com", "Ann", "ann@example.com").unwrap();
        let first = outbox.send(&message, Some("signup/7")).unwrap();
        assert!(first.now);
        let again = outbox.send(&message, Some("signup/7")).unwrap();
        assert_eq!((again.to.as_str(), again.now), (first.to.as_str(), false));
        let other = outbox.send(&message, Some("signup:7")).unwrap();
        assert!(other.now);
        assert_ne!(other.to, first.to, "two ids, two files");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("welcome-signup_7-")),
            "{names:?}"
        );
    }

    #[test]
    fn the_folder_outbox_writes_a_parsable_eml() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::folder(dir.path().join("outbox"), dir.path().join("outbox")).unwrap();
        let message = crate::message::welcome("t@example.com", "Ann", "ann@example.com").unwrap();
        let path = outbox.send(&message, None).unwrap().to;
        let second = outbox.send(&message, None).unwrap().to;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(path.ends_with(".eml"));
        assert_ne!(
            path, second,
            "each message without an event id has a file of its own"
        );
        assert!(text.contains("Subject: Welcome, Ann!"), "{text}");
        // Nothing half-written is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names
            .iter()
            .all(|n| n.ends_with(".eml") && !n.starts_with('.')));
    }

    #[test]
    fn an_unreachable_smtp_server_is_an_error_naming_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let outbox = Outbox::smtp("127.0.0.1", port, Duration::from_millis(500));
        let message = crate::message::welcome("t@example.com", "Ann", "ann@example.com").unwrap();
        let err = outbox.send(&message, None).unwrap_err();
        assert!(
            err.starts_with(&format!("smtp server 127.0.0.1:{port} refused")),
            "{err}"
        );
    }
}
