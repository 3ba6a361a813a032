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
//! switchboard-plugin-api = { path = "../../plugin-api" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use switchboard_plugin_api::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     greeting: String,
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
//!         callbacks.on("user_joined", Self::welcome);
//!         callbacks.on("stats", Self::count).priority(10);
//!     }
//! }
//!
//! impl Greeter {
//!     fn welcome(&self, args: &Args, host: &Host) -> Result<String> {
//!         let name = args.str("name")?;
//!         self.greeted.fetch_add(1, Ordering::Relaxed);
//!         host.info(format!("greeting {name}"));
//!         Ok(format!("{}, {name}!", self.greeting))
//!     }
//!
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
//!   per callback.
#![deny(missing_docs)]

pub mod abi;
mod args;
mod error;
#[doc(hidden)]
pub mod export;
mod host;
mod plugin;
pub mod testing;
mod value;

// Re-exports: consider semver.
pub use args::{Args, ArgsBuf};
pub use error::{Context, Error, Result};
pub use host::Host;
pub use plugin::{CallbackOptions, Callbacks, NoConfig, Plugin};
pub use value::{Entry, Value, ValueView};

pub use abi::Outcome;

/// Everything a plugin needs: `use switchboard_plugin_api::prelude::*;`.
pub mod prelude {
    pub use crate::{
        export_plugin, Args, Callbacks, Context, Error, Host, NoConfig, Plugin, Result, Value,
    };
    pub use serde::Deserialize;
}

/// Glue used by [`export_plugin!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::{PluginInfo, PluginModuleRef};
    pub use crate::export::{info, module};
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
