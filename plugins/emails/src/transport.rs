//! Delivery: an outbox folder of `.eml` files (the default) or plain SMTP.
//!
//! A file appears in the outbox whole or not at all: it is written under a hidden
//! `.partial` name and renamed, so that a host killed mid-write never leaves a truncated
//! message for whatever sends the outbox on.

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

    /// Delivers `message`; returns where it went (a file path or `smtp://host:port`).
    pub fn send(&self, message: &Message) -> Result<String, String> {
        match self {
            Outbox::Folder(folder, shown_as) => {
                let name = format!("{}.eml", unique_name());
                let partial = folder.join(format!(".{name}.partial"));
                std::fs::write(&partial, message.formatted())
                    .and_then(|()| std::fs::rename(&partial, folder.join(&name)))
                    .map(|()| shown_as.join(&name).display().to_string())
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&partial);
                        format!("cannot write to outbox {}: {e}", shown_as.display())
                    })
            }
            Outbox::Smtp(transport, address) => transport
                .send(message)
                .map(|_| format!("smtp://{address}"))
                .map_err(|e| format!("smtp server {address} refused the message: {e}")),
        }
    }
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
    fn the_folder_outbox_writes_a_parsable_eml() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::folder(dir.path().join("outbox"), dir.path().join("outbox")).unwrap();
        let message = crate::message::welcome("t@example.com", "Ann", "ann@example.com").unwrap();
        let path = outbox.send(&message).unwrap();
        let second = outbox.send(&message).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(path.ends_with(".eml"));
        assert_ne!(path, second, "each message has a file of its own");
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
        let err = outbox.send(&message).unwrap_err();
        assert!(
            err.starts_with(&format!("smtp server 127.0.0.1:{port} refused")),
            "{err}"
        );
    }
}
