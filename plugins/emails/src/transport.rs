//! Delivery: an outbox folder of `.eml` files (the default) or plain SMTP.

use std::path::PathBuf;
use std::time::Duration;

use lettre::{FileTransport, Message, SmtpTransport, Transport};

/// Where messages go.
pub enum Outbox {
    /// `.eml` files in a folder.
    Folder(FileTransport, PathBuf),
    /// An SMTP server, without TLS (for a relay on this machine or a trusted network).
    Smtp(SmtpTransport, String),
}

impl Outbox {
    /// An outbox folder, created if missing.
    pub fn folder(path: PathBuf, shown_as: PathBuf) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(&path)?;
        Ok(Outbox::Folder(FileTransport::new(&path), shown_as))
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
            Outbox::Folder(transport, dir) => transport
                .send(message)
                .map(|id| dir.join(format!("{id}.eml")).display().to_string())
                .map_err(|e| format!("cannot write to outbox {}: {e}", dir.display())),
            Outbox::Smtp(transport, address) => transport
                .send(message)
                .map(|_| format!("smtp://{address}"))
                .map_err(|e| format!("smtp server {address} refused the message: {e}")),
        }
    }
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
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(path.ends_with(".eml"));
        assert!(text.contains("Subject: Welcome, Ann!"), "{text}");
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
