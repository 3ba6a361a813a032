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
        callbacks.on("user_joined", Self::welcome).priority(10);
        callbacks.on("greeting_sent", Self::count_greeting);
        callbacks.on("greetings_count", Self::greetings_count);
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
    fn welcome(&self, args: &Args, host: &Host) -> Result<String> {
        let name = args.str("name")?;
        let greeting = self.greet(name);
        host.info(format!("greeting {name} <{}>", args.str("email")?));
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

    #[test]
    fn greets_with_the_configured_word() {
        let greeter = Greeter {
            greeting: "Hello".into(),
            sent: AtomicU64::new(0),
        };
        assert_eq!(greeter.greet("Ann"), "Hello, Ann!");
    }
}
