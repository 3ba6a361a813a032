//! `switchboard-plugin-api`: for **plugin authors** (the SDK) and for **hosts** (the stable
//! binary interface). Plugins depend on this crate and nothing else from switchboard.
//!
//! # Stability
//!
//! The binary interface is frozen from 1.0: a plugin built against any 1.x release loads in
//! every host built against a later 1.x release. Additive SDK changes bump the minor
//! version; only a change to the frozen layouts would bump the major, and then the host
//! refuses older plugins with a message naming both versions. See [`abi`] for the rules.
//!
//! # A complete plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "greeter"
//! version = "0.1.0"
//! edition = "2021"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! switchboard-plugin-api = { path = "../switchboard/plugin-api" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use switchboard_plugin_api::prelude::*;
//!
//! /// The `config` table; a key left out takes its default, an unknown key is refused.
//! #[derive(Deserialize)]
//! struct Config {
//!     #[serde(default = "welcome")]
//!     greeting: String,
//! }
//!
//! fn welcome() -> String {
//!     "Welcome".to_owned()
//! }
//!
//! /// The arguments of `user_joined`, borrowed from the host: a typed callback's fields are
//! /// checked against the manifest when the plugin loads.
//! #[derive(Args)]
//! struct Joined<'a> {
//!     name: &'a str,
//!     email: &'a str,
//! }
//!
//! struct Greeter {
//!     greeting: String,
//!     greeted: AtomicU64,
//! }
//!
//! impl Plugin for Greeter {
//!     type Config = Config;
//!
//!     fn init(config: Config, _host: &Host) -> Result<Self> {
//!         Ok(Greeter { greeting: config.greeting, greeted: AtomicU64::new(0) })
//!     }
//!
//!     fn register(callbacks: &mut Callbacks<Self>) {
//!         callbacks.on("user_joined", "welcome", Self::welcome);
//!         callbacks.on("stats", "count", Self::count).priority(10);
//!     }
//!
//!     fn shutdown(&self, host: &Host) -> Result<()> {
//!         host.info(format!("greeted {}", self.greeted.load(Ordering::Relaxed)));
//!         Ok(())
//!     }
//! }
//!
//! impl Greeter {
//!     fn welcome(&self, user: Joined, host: &Host) -> Result<String> {
//!         self.greeted.fetch_add(1, Ordering::Relaxed);
//!         host.info(format!("greeting {} <{}>", user.name, user.email));
//!         Ok(format!("{}, {}!", self.greeting, user.name))
//!     }
//!
//!     /// A dynamic callback: it reads arguments by name (none here) as it runs.
//!     fn count(&self, _args: &Args, _host: &Host) -> Result<i64> {
//!         Ok(self.greeted.load(Ordering::Relaxed) as i64)
//!     }
//! }
//!
//! export_plugin!(Greeter);
//! ```
//!
//! Build it with `cargo build --release`, copy `target/release/libgreeter.so` (or
//! `greeter.dll`, `libgreeter.dylib`) into the host's plugin folder, and list it in
//! `events.toml`:
//!
//! ```toml
//! [[plugins]]
//! name = "greeter"
//! config = { greeting = "Welcome" }
//! ```
//!
//! # What the SDK guarantees
//!
//! - A panic in `init`, a callback or `shutdown` is caught inside the plugin and reaches the
//!   host as an [`Error`] whose [`Error::is_panic`] is true; it never unwinds across the
//!   boundary, which would abort the host. Plugins must therefore be built with
//!   `panic = "unwind"` (the default); [`export_plugin!`] refuses `panic = "abort"`.
//! - The plugin's state is shared by the host's worker threads, so [`Plugin`] requires
//!   `Send + Sync` and a plugin that is not does not compile.
//! - Arguments are borrowed from the host for the duration of one call: nothing is copied
//!   per callback, and typed arguments are read by position after the first call.
//! - Every callback is one direct entry point ([`abi::CallEntry`]): the host makes one
//!   indirect call per callback, and the panic guard touches no thread-local unless a
//!   panic happens.
#![deny(missing_docs)]

// Lets `#[derive(Args)]`, which names `::switchboard_plugin_api`, work in this crate's tests.
extern crate self as switchboard_plugin_api;

pub mod abi;
mod args;
mod de;
mod error;
#[doc(hidden)]
pub mod export;
mod host;
mod panic;
mod plugin;
pub mod testing;
mod trace;
mod typed;
mod value;

// Re-exports: consider semver.
pub use args::{Args, ArgsBuf};
pub use error::{Context, Error, Result};
pub use host::{Host, HostHandle};
pub use plugin::{Callback, CallbackOptions, Callbacks, NoConfig, Plugin};
/// Marks a struct as a typed callback's arguments (see [`TypedArgs`]).
pub use switchboard_plugin_api_macros::Args;
pub use typed::TypedArgs;
pub use value::{Entry, Value, ValueView};

pub use abi::Outcome;

/// Everything a plugin needs: `use switchboard_plugin_api::prelude::*;`.
pub mod prelude {
    pub use crate::{
        export_plugin, Args, Callbacks, Context, Error, Host, HostHandle, NoConfig, Plugin, Result,
        Value,
    };
    pub use serde::Deserialize;
}

/// Glue used by [`export_plugin!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::{PluginInfo, PluginModuleRef};
    pub use crate::export::{info, module};
    pub use crate::plugin::{Dynamic, Typed};
    pub use crate::trace::field;
    pub use crate::typed::ArgsAt;
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

/// Exports a [`Plugin`] type as this library's plugin. Use it once per plugin crate, whose
/// `crate-type` must include `"cdylib"`.
///
/// ```ignore
/// export_plugin!(Greeter);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            #[cfg(panic = "abort")]
            compile_error!(
                "switchboard plugins must be built with panic = \"unwind\": with \"abort\" a \
                 panic in the plugin cannot be caught and would take the host down"
            );

            extern "C" fn __switchboard_info() -> $crate::__private::PluginInfo {
                $crate::__private::info(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            }

            fn __switchboard_root_module() -> $crate::__private::PluginModuleRef {
                $crate::__private::module::<$plugin>(__switchboard_info)
            }

            extern "C" fn __switchboard_erased_root() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(__switchboard_root_module)
            }

            // The symbol abi_stable's loader looks up (`ROOT_MODULE_LOADER_NAME`, checked by
            // a test in switchboard-plugin-api).
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static __SWITCHBOARD_LIB_HEADER: $crate::__private::LibHeader = {
                // SAFETY: the constructor returns the root module of type `PluginModuleRef`,
                // the type `from_constructor` is instantiated with, as abi_stable requires.
                unsafe {
                    $crate::__private::LibHeader::from_constructor::<
                        $crate::__private::PluginModuleRef,
                    >(
                        __switchboard_erased_root,
                        $crate::__private::CheckTypeLayout::Yes,
                    )
                }
            };
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_symbol_matches_abi_stable() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
