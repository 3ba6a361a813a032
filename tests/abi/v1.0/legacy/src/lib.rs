//! A plugin written against the frozen plugin-api 1.0.0 that uses every entry point of the
//! interface: a typed config with a default, typed and by-name arguments, priorities and
//! names, values of every kind, a nested emit, an error, a panic, log lines, a declared
//! emitted event, `control`, an owned host handle used from its own thread, and shutdown.

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_plugin_api::prelude::*;

#[derive(Deserialize)]
struct Config {
    label: String,
    #[serde(default)]
    shout: bool,
}

struct Legacy {
    label: String,
    calls: AtomicU64,
}

#[derive(Args)]
struct Echo<'a> {
    name: &'a str,
    age: Option<i64>,
}

impl Plugin for Legacy {
    type Config = Config;

    fn init(config: Config, host: &Host) -> Result<Self> {
        host.info(format!("legacy `{}` starting", host.plugin_name()));
        let label = if config.shout {
            config.label.to_uppercase()
        } else {
            config.label
        };
        Ok(Legacy {
            label,
            calls: AtomicU64::new(0),
        })
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks.on("echo", "echo", Self::echo).priority(5);
        callbacks.on("echo", "echo_by_name", Self::echo_by_name);
        callbacks.on("values", "values", Self::values);
        callbacks.on("nest", "nest", Self::nest);
        callbacks.on("spawn", "spawn", Self::spawn);
        callbacks.on("fail", "fail", |_: &Self, _: &Args, _: &Host| -> Result<()> {
            Err(Error::new("legacy refuses").with_help("it always does"))
        });
        callbacks.on("boom", "boom", |_: &Self, _: &Args, _: &Host| -> Result<()> {
            panic!("legacy exploded")
        });
        callbacks.emits("ping", &[]);
    }

    fn shutdown(&self, host: &Host) -> Result<()> {
        host.info(format!(
            "legacy shutting down after {} calls",
            self.calls.load(Ordering::Relaxed)
        ));
        Ok(())
    }

    fn control(&self, operation: &str, argument: &Value, _host: &Host) -> Result<Value<'static>> {
        match operation {
            "calls" => Ok(Value::from(self.calls.load(Ordering::Relaxed) as i64)),
            "echo" => Ok(argument.clone().into_owned()),
            _ => Err(Error::unsupported(format!(
                "legacy does not support the operation `{operation}`"
            ))),
        }
    }
}

impl Legacy {
    fn echo(&self, args: Echo, host: &Host) -> Result<String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        host.debug("echo from the 1.0 plugin");
        Ok(format!("{} saw {} ({:?})", self.label, args.name, args.age))
    }

    fn echo_by_name(&self, args: &Args, _host: &Host) -> Result<Value<'static>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Value::map([
            ("name", Value::from(args.str("name")?)),
            ("request", Value::from(args.request_id() as i64)),
        ]))
    }

    /// Every kind of value, and the `any` argument it was given, back.
    fn values(&self, args: &Args, _host: &Host) -> Result<Value<'static>> {
        Ok(Value::map([
            ("null", Value::NULL),
            ("bool", Value::from(true)),
            ("int", Value::from(-7)),
            ("float", Value::from(2.5)),
            ("string", Value::from("text")),
            ("bytes", Value::bytes(vec![0u8, 255])),
            ("list", Value::list([Value::from(1), Value::from("two")])),
            ("map", Value::map([("k", Value::from(false))])),
            ("given", args.value("value")?.clone().into_owned()),
        ]))
    }

    fn nest(&self, _args: &Args, host: &Host) -> Result<i64> {
        Ok(host.emit("ping", [])?.len() as i64)
    }

    /// Emits `ping` from a thread of its own through a kept handle, and reports how many
    /// callbacks answered.
    fn spawn(&self, _args: &Args, host: &Host) -> Result<i64> {
        let handle = host.keep()?;
        let answered = std::thread::spawn(move || -> Result<i64> {
            handle.host().info("emitting from my own thread");
            Ok(handle.host().emit("ping", [])?.len() as i64)
        })
        .join()
        .map_err(|_| Error::new("the emitting thread panicked"))??;
        Ok(answered)
    }
}

export_plugin!(Legacy);
