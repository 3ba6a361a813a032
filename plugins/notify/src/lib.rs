//! `notify`: the chat-bot notification. On `user_joined` it posts
//! `{"content": "📣 Ann (ann@example.com) just joined"}` to a webhook (the shape a Discord
//! webhook accepts); with no webhook configured it writes the line to the host's log.
//!
//! Config: `webhook`, the URL (optional, `http://` only: this build has no TLS);
//! `timeout_ms`, how long to wait for it (default 2000).

use std::time::Duration;

use switchboard_plugin_api::prelude::*;

pub mod webhook;

use webhook::Webhook;

/// The `config` table of a `notify` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to post; `None` logs the message instead.
    #[serde(default)]
    pub webhook: Option<String>,
    /// How long to wait for the webhook.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    2000
}

/// The plugin.
pub struct Notify {
    webhook: Option<Webhook>,
}

impl Plugin for Notify {
    type Config = Config;

    fn init(config: Config, _host: &Host) -> Result<Self> {
        if let Some(url) = &config.webhook {
            if !url.starts_with("http://") {
                return Err(Error::new(format!("unsupported webhook url `{url}`"))
                    .with_help("use an http:// URL (this build has no TLS; put a local relay in front of https endpoints)"));
            }
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(Notify {
            webhook: config.webhook.map(|url| Webhook::new(url, timeout)),
        })
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks.on("user_joined", "notify_new_user", Self::notify_new_user);
    }
}

/// The arguments of `user_joined`.
#[derive(Args)]
struct NewUser<'a> {
    name: &'a str,
    email: &'a str,
}

impl Notify {
    /// On `user_joined`: posts the chat line (or logs it); returns the HTTP status.
    fn notify_new_user(&self, user: NewUser, host: &Host) -> Result<Value<'static>> {
        let content = webhook::new_user_message(user.name, user.email);
        match &self.webhook {
            Some(hook) => {
                let status = hook.post(&content).map_err(|e| {
                    Error::new(e)
                        .with_help("check `webhook` in the config and that the chat service is up")
                })?;
                host.debug(format!("posted to {}", hook.url()));
                Ok(Value::from(status))
            }
            None => {
                host.info(format!("(no webhook configured) {content}"));
                Ok(Value::NULL)
            }
        }
    }
}

export_plugin!(Notify);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_plugin_api::testing::TestHost;

    #[test]
    fn without_a_webhook_the_line_goes_to_the_log() {
        let host = TestHost::new().strict().expect_log("just joined");
        let notify = host.start::<Notify>(BTreeMap::<&str, &str>::new()).unwrap();
        let posted = notify.emit(
            "user_joined",
            [
                ("name", Value::borrowed("Ann")),
                ("email", Value::borrowed("ann@example.com")),
            ],
        );
        assert!(posted[0].value().unwrap().is_null());
        let line = &host.logs()[0];
        assert_eq!(line.level, "info");
        assert!(
            line.message.contains("Ann (ann@example.com) just joined"),
            "{}",
            line.message
        );
    }

    #[test]
    fn an_unreachable_webhook_is_an_error_with_what_to_check() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = TestHost::new();
        let url = format!("http://127.0.0.1:{port}/hook");
        let notify = host
            .start::<Notify>(BTreeMap::from([("webhook", url.as_str())]))
            .unwrap();
        let posted = notify.emit(
            "user_joined",
            [
                ("name", Value::borrowed("Ann")),
                ("email", Value::borrowed("ann@example.com")),
            ],
        );
        let error = posted[0].value().unwrap_err();
        assert!(
            error.help().is_some_and(|h| h.contains("webhook")),
            "{error}"
        );
    }
}
