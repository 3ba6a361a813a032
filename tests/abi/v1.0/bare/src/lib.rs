//! A plugin built against the frozen plugin-api 1.0.0 with no config and no shutdown: the
//! smallest plugin there is.

use switchboard_plugin_api::prelude::*;

struct Bare;

impl Plugin for Bare {
    type Config = NoConfig;

    fn init(_: NoConfig, _host: &Host) -> Result<Self> {
        Ok(Bare)
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        callbacks.on("ping", "pong", |_: &Self, _: &Args, _: &Host| Ok("pong"));
    }
}

export_plugin!(Bare);
