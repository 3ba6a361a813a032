//! `greeter`: the example plugin. It uses every SDK feature: a typed config, several
//! callbacks with a priority, a returned value, a nested emit, log lines and a shutdown.

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_plugin_api::prelude::*;

/// The `config` table of a `greeter` entry in `events.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The word to greet with.
    #[serde(default = "default_greeting")]
    pub greeting: String,
}

fn default_greeting() -> String {
    "Welcome".to_owned()
}

/// The arguments of `user_joined`, borrowed from the host.
#[derive(Args)]
struct NewUser<'a> {
    name: &'a str,
    email: &'a str,
}

/// Greets new users and counts the greetings it sent.
pub struct Greeter {
    greeting: String,
    sent: AtomicU64,
}

impl Plugin for Greeter {
    type Config = Config;

    fn init(config: Config, host: &Host) -> Result<Self> {
        host.debug(format!("greeting with {:?}", config.greeting));
        Ok(Greeter {
            greeting: config.greeting,
            sent: AtomicU64::new(0),
        })
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks
            .on("user_joined", "welcome", Self::welcome)
            .priority(10);
        callbacks.on("greeting_sent", "count_greeting", Self::count_greeting);
        callbacks.on("greetings_count", "greetings_count", Self::greetings_count);
        callbacks.emits("greeting_sent", &[("name", "string")]);
    }

    fn shutdown(&self, host: &Host) -> Result<()> {
        host.info(format!(
            "sent {} greetings",
            self.sent.load(Ordering::Relaxed)
        ));
        Ok(())
    }
}

impl Greeter {
    /// The greeting for `name`.
    pub fn greet(&self, name: &str) -> String {
        format!("{}, {name}!", self.greeting)
    }

    /// On `user_joined`: returns the greeting and announces it with a nested
    /// `greeting_sent` emit.
    fn welcome(&self, user: NewUser, host: &Host) -> Result<String> {
        let name = user.name;
        let greeting = self.greet(name);
        host.info(format!("greeting {name} <{}>", user.email));
        for outcome in host.emit("greeting_sent", [("name", Value::borrowed(name))])? {
            if let Err(error) = outcome.result() {
                host.warn(format!(
                    "{}.{} failed: {error}",
                    outcome.plugin(),
                    outcome.callback()
                ));
            }
        }
        Ok(greeting)
    }

    /// On `greeting_sent`: counts it.
    fn count_greeting(&self, _args: &Args, _host: &Host) -> Result<()> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// On `greetings_count`: how many greetings this instance sent.
    fn greetings_count(&self, _args: &Args, _host: &Host) -> Result<i64> {
        Ok(self.sent.load(Ordering::Relaxed) as i64)
    }
}

export_plugin!(Greeter);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_plugin_api::testing::TestHost;

    #[test]
    fn welcomes_announces_and_counts_through_the_host() {
        let host = TestHost::new()
            .strict()
            .expect_log("greeting")
            .expect_log("sent 1 greetings")
            .expect_emit("greeting_sent");
        let greeter = host
            .start::<Greeter>(BTreeMap::from([("greeting", "Hi")]))
            .unwrap();
        let joined = greeter.emit(
            "user_joined",
            [
                ("name", Value::borrowed("Ann")),
                ("email", Value::borrowed("ann@example.com")),
            ],
        );
        assert_eq!(joined[0].callback, "welcome");
        assert_eq!(joined[0].value().unwrap().as_str(), Some("Hi, Ann!"));
        let announced = &host.emits()[0];
        assert_eq!(announced.event, "greeting_sent");
        assert_eq!(announced.args[0].0, "name");
        assert_eq!(announced.args[0].1.as_str(), Some("Ann"));
        // The host dispatches greeting_sent back to the greeter in a real run.
        greeter.emit("greeting_sent", [("name", Value::borrowed("Ann"))]);
        let count = greeter.emit("greetings_count", []);
        assert_eq!(count[0].value().unwrap().as_i64(), Some(1));
        greeter.shutdown().unwrap();
        assert_eq!(host.logs().last().unwrap().message, "sent 1 greetings");
    }

    #[test]
    fn a_sign_up_without_an_email_is_an_error_naming_it() {
        let host = TestHost::new();
        let greeter = host
            .start::<Greeter>(BTreeMap::<&str, &str>::new())
            .unwrap();
        let joined = greeter.emit("user_joined", [("name", Value::borrowed("Ann"))]);
        let error = joined[0].value().unwrap_err();
        assert!(error.message().contains("email"), "{error}");
        assert!(
            host.emits().is_empty(),
            "nothing announced for a failed welcome"
        );
    }

    #[test]
    fn greets_with_the_configured_word() {
        let greeter = Greeter {
            greeting: "Hello".into(),
            sent: AtomicU64::new(0),
        };
        assert_eq!(greeter.greet("Ann"), "Hello, Ann!");
    }
}
