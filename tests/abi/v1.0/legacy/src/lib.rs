//! A plugin as it was written against plugin-api 1.0.0: config, arguments, a returned
//! value, a nested emit, an error and a panic.

use switchboard_plugin_api::prelude::*;

#[derive(Deserialize)]
struct Config {
    label: String,
}

struct Legacy {
    label: String,
}

impl Plugin for Legacy {
    type Config = Config;

    fn init(config: Config, _host: &Host) -> Result<Self> {
        Ok(Legacy { label: config.label })
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks.on("echo", Self::echo);
        callbacks.on("nest", Self::nest);
        callbacks.on("fail", |_: &Self, _: &Args, _: &Host| -> Result<()> {
            Err(Error::new("legacy refuses").with_help("it always does"))
        });
        callbacks.on("boom", |_: &Self, _: &Args, _: &Host| -> Result<()> {
            panic!("legacy exploded")
        });
    }
}

impl Legacy {
    fn echo(&self, args: &Args, host: &Host) -> Result<String> {
        host.info("echo from the 1.0 plugin");
        Ok(format!("{} saw {}", self.label, args.str("name")?))
    }

    fn nest(&self, _args: &Args, host: &Host) -> Result<i64> {
        Ok(host.emit("ping", [])?.len() as i64)
    }
}

export_plugin!(Legacy);
