//! The host handle a plugin receives in `init`, in callbacks and in `shutdown`.

use std::path::{Path, PathBuf};

use abi_stable::std_types::{RSlice, RStr};

use crate::abi::{level, operation, HostBox, HostRef, Outcome};
use crate::error::Result;
use crate::value::{Entry, Value};

/// The host, as seen from inside one call into the plugin: log through the host's logger
/// under the plugin's name, emit further events, read the plugin's manifest name.
///
/// A `Host` is only valid for the call it was passed to; to keep one (for a thread of
/// your own, say), take an owned [`HostHandle`] with [`Host::keep`].
#[repr(transparent)]
pub struct Host<'a> {
    raw: HostRef<'a>,
}

impl<'a> Host<'a> {
    #[doc(hidden)]
    pub fn from_raw(raw: HostRef<'a>) -> Self {
        Host { raw }
    }

    /// An owned handle to the host that the plugin may keep and use from any thread
    /// (log, emit) until its `shutdown` returns: for work that starts outside a callback,
    /// such as a timer or a socket the plugin listens on.
    ///
    /// ```
    /// # use switchboard_plugin_api::prelude::*;
    /// # fn start(host: &Host) -> Result<()> {
    /// let handle = host.keep()?;
    /// std::thread::spawn(move || {
    ///     handle.host().info("tick");
    ///     let _ = handle.host().emit("ticked", []);
    /// });
    /// # Ok(()) }
    /// ```
    pub fn keep(&self) -> Result<HostHandle> {
        let owned = self.raw.keep().into_result()?;
        Ok(HostHandle {
            raw: std::sync::Arc::new(owned),
        })
    }

    /// Whether the host supports an optional feature (see
    /// [`abi::feature`](crate::abi::feature)); a plugin that needs one checks in `init`.
    pub fn supports(&self, feature: &str) -> bool {
        self.raw.features().iter().any(|f| f.as_str() == feature)
    }

    /// The plugin's name as the manifest gives it (one library may be loaded twice under
    /// two names).
    pub fn plugin_name(&self) -> &str {
        self.raw.plugin_name().as_str()
    }

    /// A path from the plugin's config, resolved the way the operator reads the manifest:
    /// relative to the manifest's folder (absolute paths stay as they are). Use it for
    /// every file or folder a config names, so that `switchboard -m ops/events.toml` finds
    /// `users.db` in `ops/` from any working directory.
    ///
    /// ```
    /// # fn open(host: &switchboard_plugin_api::Host, config_path: &str) {
    /// let database = host.resolve_path(config_path); // "users.db" -> "/srv/app/users.db"
    /// # let _ = database;
    /// # }
    /// ```
    pub fn resolve_path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        if path.is_absolute() {
            return path.to_owned();
        }
        let folder = self
            .raw
            .call(RStr::from(operation::MANIFEST_DIR), &Value::NULL)
            .into_result();
        match folder.as_ref().ok().and_then(Value::as_str) {
            Some(folder) => Path::new(folder).join(path),
            // A host that predates the operation: relative to the working directory, as
            // such hosts did.
            None => path.to_owned(),
        }
    }

    /// The id of the event this callback runs for: the one its sender gave (`emit --id`,
    /// a `run` line's `id`, an HTTP request's `X-Request-Id`, a NATS message's id), or one
    /// the host made. Every delivery of one event carries the same id, so a callback whose
    /// effect must happen once (a row, a mail) keys that effect by the event's name and
    /// this id, and answers a repeat with what it did the first time. A nested emit
    /// carries the id of the event whose callback made it.
    ///
    /// `None` outside a callback (in `init`, `shutdown`, a control operation, or from a
    /// kept handle), and from a host that predates event ids.
    ///
    /// ```
    /// # fn store(host: &switchboard_plugin_api::Host) {
    /// if let Some(id) = host.event_id() {
    ///     // INSERT ... ON CONFLICT(event_id) DO NOTHING, keyed by `id`
    /// #   let _ = id;
    /// }
    /// # }
    /// ```
    pub fn event_id(&self) -> Option<String> {
        let id = self
            .raw
            .call(RStr::from(operation::EVENT_ID), &Value::NULL)
            .into_result()
            .ok()?;
        id.as_str().map(str::to_owned)
    }

    /// Logs at error level.
    pub fn error(&self, message: impl AsRef<str>) {
        self.log(level::ERROR, message.as_ref());
    }

    /// Logs at warning level.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(level::WARN, message.as_ref());
    }

    /// Logs at info level.
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(level::INFO, message.as_ref());
    }

    /// Logs at debug level.
    pub fn debug(&self, message: impl AsRef<str>) {
        self.log(level::DEBUG, message.as_ref());
    }

    fn log(&self, level: u8, message: &str) {
        self.raw.log(level, RStr::from(message));
    }

    /// Emits `event` with named arguments from inside a callback and waits for its
    /// callbacks. Nesting is limited by the host (`max_depth`); going deeper is an error.
    ///
    /// The result lists every callback's outcome; a failing callback is an `Err` inside
    /// the list, not an error of `emit` itself.
    pub fn emit<'v>(
        &self,
        event: &str,
        args: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) -> Result<Vec<Outcome>> {
        let entries: Vec<Entry<'v>> = args
            .into_iter()
            .map(|(name, value)| Entry::borrowed(name, value))
            .collect();
        self.raw
            .emit(RStr::from(event), RSlice::from_slice(&entries))
            .into_result()
            .map(|outcomes| outcomes.into_vec())
    }
}

/// An owned handle to the host (see [`Host::keep`]): cheap to clone, usable from any
/// thread. Emits from it are outermost emits, as if the host's own caller made them.
#[derive(Clone)]
pub struct HostHandle {
    raw: std::sync::Arc<HostBox>,
}

impl HostHandle {
    /// The host, for logging and emitting.
    pub fn host(&self) -> Host<'_> {
        Host::from_raw(self.raw.sabi_reborrow())
    }
}

impl std::fmt::Debug for HostHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostHandle({})", self.raw.plugin_name())
    }
}
