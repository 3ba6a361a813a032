//! `emails`: sends every new user (`user_joined`) a welcome email, once per sign-up event:
//! the outbox file is named by the event's id (`host.event_id()`), so the same event
//! again (a redelivery) sends nothing twice.
//!
//! Config:
//! - `from`: the sender (default `switchboard <noreply@example.com>`);
//! - `transport`: `"file"` (default) writes `.eml` files into `outbox` (default `outbox`,
//!   relative to the manifest's folder, created if missing); `"smtp"` sends through
//!   `smtp_host` (default `127.0.0.1`) and `smtp_port` (default 25), without TLS, giving up
//!   after `timeout_ms` (default 5000).

use std::path::PathBuf;
use std::time::Duration;

use switchboard_plugin_api::prelude::*;

pub mod message;
pub mod transport;

use transport::Outbox;

/// How messages are delivered.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// `.eml` files in the outbox folder.
    #[default]
    File,
    /// An SMTP relay.
    Smtp,
}

/// The `config` table of an `emails` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sender.
    #[serde(default = "default_from")]
    pub from: String,
    /// How messages are delivered.
    #[serde(default)]
    pub transport: TransportKind,
    /// The outbox folder, for `transport = "file"`.
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
    /// The SMTP host, for `transport = "smtp"`.
    #[serde(default = "default_smtp_host")]
    pub smtp_host: String,
    /// The SMTP port.
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// How long to wait for the SMTP server.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_from() -> String {
    "switchboard <noreply@example.com>".to_owned()
}
fn default_outbox() -> PathBuf {
    PathBuf::from("outbox")
}
fn default_smtp_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_smtp_port() -> u16 {
    25
}
fn default_timeout_ms() -> u64 {
    5000
}

/// The plugin.
pub struct Emails {
    from: String,
    outbox: Outbox,
}

impl Plugin for Emails {
    type Config = Config;

    fn init(config: Config, host: &Host) -> Result<Self> {
        let outbox = match config.transport {
            // Written under the manifest's folder; results show the path as configured.
            TransportKind::File => {
                let folder = host.resolve_path(&config.outbox);
                Outbox::folder(folder.clone(), config.outbox.clone()).map_err(|e| {
                    Error::new(format!("cannot create outbox {}: {e}", folder.display()))
                        .with_help("set `outbox` to a writable folder")
                })?
            }
            TransportKind::Smtp => Outbox::smtp(
                &config.smtp_host,
                config.smtp_port,
                Duration::from_millis(config.timeout_ms),
            ),
        };
        // Fail at load, not at the first sign-up, when the sender is malformed.
        message::welcome(&config.from, "check", "check@example.com")
            .map_err(|e| Error::new(e.to_string()).with_help("fix `from` in the config"))?;
        Ok(Emails {
            from: config.from,
            outbox,
        })
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks.on("user_joined", "greet_new_user", Self::greet_new_user);
    }
}

/// The arguments of `user_joined`.
#[derive(Args)]
struct NewUser<'a> {
    name: &'a str,
    email: &'a str,
}

impl Emails {
    /// On `user_joined`: sends the welcome message; returns where it went.
    fn greet_new_user(&self, user: NewUser, host: &Host) -> Result<String> {
        let (name, email) = (user.name, user.email);
        let message = message::welcome(&self.from, name, email)?;
        let sent = self
            .outbox
            .send(&message, host.event_id().as_deref())
            .map_err(Error::new)?;
        if sent.now {
            host.info(format!("welcome email for {email} -> {}", sent.to));
        } else {
            host.info(format!(
                "welcome email for {email} was sent for this event already ({}); not sent again",
                sent.to
            ));
        }
        Ok(sent.to)
    }
}

export_plugin!(Emails);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_plugin_api::testing::TestHost;

    #[test]
    fn writes_the_welcome_into_the_outbox_beside_the_manifest() {
        let folder = tempfile::tempdir().unwrap();
        let host = TestHost::new()
            .strict()
            .expect_log("welcome email for ann@example.com")
            .expect_log("was sent for this event already")
            .with_manifest_dir(folder.path());
        let emails = host
            .start::<Emails>(BTreeMap::from([
                ("outbox", "mail"),
                ("from", "Team <team@example.com>"),
            ]))
            .unwrap();
        let sent = emails.emit(
            "user_joined",
            [
                ("name", Value::borrowed("Ann")),
                ("email", Value::borrowed("ann@example.com")),
            ],
        );
        let shown = sent[0].value().unwrap().as_str().unwrap().to_owned();
        assert!(shown.starts_with("mail"), "shown as configured: {shown}");
        // The same event again sends nothing twice.
        let again = emails.emit(
            "user_joined",
            [
                ("name", Value::borrowed("Ann")),
                ("email", Value::borrowed("ann@example.com")),
            ],
        );
        assert_eq!(again[0].value().unwrap().as_str(), Some(shown.as_str()));
        let files: Vec<_> = std::fs::read_dir(folder.path().join("mail"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("To: Ann <ann@example.com>"), "{text}");
    }

    #[test]
    fn a_malformed_sender_fails_init_not_the_first_sign_up() {
        let host = TestHost::new();
        let error = host
            .start::<Emails>(BTreeMap::from([("from", "not an address")]))
            .err()
            .expect("init refuses it");
        assert!(error.help().is_some_and(|h| h.contains("from")), "{error}");
    }
}
