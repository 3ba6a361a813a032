//! The one error type a plugin returns, and that the host reports.

use std::fmt;

use abi_stable::std_types::{ROption, RString};
use abi_stable::StableAbi;

/// The result type of plugin code: `Ok(T)` or a plugin [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a plugin: a message, an optional hint on how to fix it, and whether it
/// came from a caught panic.
///
/// Any `std::error::Error` converts into it, so `?` works on I/O, database or parse errors.
/// Messages are lowercase and say what went wrong; the help says what to do.
///
/// ```
/// use switchboard_plugin_api::Error;
///
/// let err = Error::new("user ann@example.com already exists")
///     .with_help("sign up with another email address");
/// assert_eq!(err.message(), "user ann@example.com already exists");
/// assert_eq!(err.help(), Some("sign up with another email address"));
/// assert!(!err.is_panic());
/// ```
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq)]
pub struct Error {
    message: RString,
    help: ROption<RString>,
    kind: u32,
}

// `kind` is a plain integer, not an enum, so new kinds never change the layout.
const KIND_FAILED: u32 = 0;
const KIND_PANICKED: u32 = 1;
const KIND_SKIPPED: u32 = 2;
const KIND_UNSUPPORTED: u32 = 3;
const KIND_CRASHED: u32 = 4;
const KIND_TIMED_OUT: u32 = 5;

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: RString::from(message.into()),
            help: ROption::RNone,
            kind: KIND_FAILED,
        }
    }

    /// The same error with `what` in front of its message (`users.db: no such file`).
    pub fn prefixed(mut self, what: impl std::fmt::Display) -> Self {
        self.message = RString::from(format!("{what}: {}", self.message));
        self
    }

    /// Adds a hint that tells the user what to do about the error.
    ///
    /// ```
    /// # use switchboard_plugin_api::Error;
    /// let err = Error::new("no outbox folder").with_help("create it or set `outbox`");
    /// assert_eq!(err.to_string(), "no outbox folder (help: create it or set `outbox`)");
    /// ```
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = ROption::RSome(RString::from(help.into()));
        self
    }

    /// The error for a caught panic; the SDK makes these, plugin code does not need to.
    #[doc(hidden)]
    pub fn panicked(message: impl Into<String>) -> Self {
        Error {
            kind: KIND_PANICKED,
            ..Error::new(message)
        }
    }

    /// The error for a callback the host did not call because its plugin is switched off
    /// (the host makes these).
    #[doc(hidden)]
    pub fn skipped(message: impl Into<String>) -> Self {
        Error {
            kind: KIND_SKIPPED,
            ..Error::new(message)
        }
    }

    /// The error for an operation this side of the interface does not know (see
    /// [`PluginObject::control`](crate::abi::PluginObject::control)).
    ///
    /// ```
    /// # use switchboard_plugin_api::Error;
    /// let err = Error::unsupported("this plugin does not support the operation `reset`");
    /// assert!(err.is_unsupported());
    /// ```
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error {
            kind: KIND_UNSUPPORTED,
            ..Error::new(message)
        }
    }

    /// The error for a call whose worker process died under it (the host makes these for
    /// plugins run with `isolation = "process"`).
    #[doc(hidden)]
    pub fn crashed(message: impl Into<String>) -> Self {
        Error {
            kind: KIND_CRASHED,
            ..Error::new(message)
        }
    }

    /// The error for a call the host stopped at its plugin's `timeout_ms` (the host makes
    /// these).
    #[doc(hidden)]
    pub fn timed_out(message: impl Into<String>) -> Self {
        Error {
            kind: KIND_TIMED_OUT,
            ..Error::new(message)
        }
    }

    /// Whether the plugin's worker process crashed (or exited) during the call.
    ///
    /// ```
    /// # use switchboard_plugin_api::Error;
    /// assert!(!Error::new("failed").is_crashed());
    /// ```
    pub fn is_crashed(&self) -> bool {
        self.kind == KIND_CRASHED
    }

    /// Whether the host stopped the call at its time limit.
    ///
    /// ```
    /// # use switchboard_plugin_api::Error;
    /// assert!(!Error::new("failed").is_timed_out());
    /// ```
    pub fn is_timed_out(&self) -> bool {
        self.kind == KIND_TIMED_OUT
    }

    /// What kind of failure this is, as outcomes and `plugin.failed` name it: `error`,
    /// `panic`, `skipped`, `crashed` or `timed_out`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            KIND_PANICKED => "panic",
            KIND_SKIPPED => "skipped",
            KIND_CRASHED => "crashed",
            KIND_TIMED_OUT => "timed_out",
            _ => "error",
        }
    }

    /// Whether the other side does not support the operation asked for, as opposed to
    /// supporting it and failing: callers fall back.
    pub fn is_unsupported(&self) -> bool {
        self.kind == KIND_UNSUPPORTED
    }

    /// Whether the host skipped the callback instead of calling it (its plugin was
    /// switched off by the circuit breaker).
    ///
    /// ```
    /// # use switchboard_plugin_api::Error;
    /// assert!(!Error::new("failed").is_skipped());
    /// ```
    pub fn is_skipped(&self) -> bool {
        self.kind == KIND_SKIPPED
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }

    /// What to do about it, if the plugin said.
    pub fn help(&self) -> Option<&str> {
        self.help.as_ref().map(RString::as_str).into_option()
    }

    /// Whether this error is a panic caught inside the plugin.
    ///
    /// ```
    /// # use switchboard_plugin_api::Error;
    /// assert!(!Error::new("failed").is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.kind == KIND_PANICKED
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            KIND_PANICKED => write!(f, "panicked: ")?,
            KIND_SKIPPED => write!(f, "skipped: ")?,
            KIND_CRASHED => write!(f, "crashed: ")?,
            KIND_TIMED_OUT => write!(f, "timed out: ")?,
            _ => {}
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = self.help() {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Lets `?` turn any standard error into a plugin error, keeping its chain of causes.
impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
            source = cause_source(source);
        }
        Error::new(message)
    }
}

fn cause_source<'e>(
    current: Option<&'e (dyn std::error::Error + 'static)>,
) -> Option<&'e (dyn std::error::Error + 'static)> {
    current.and_then(std::error::Error::source)
}

/// Adds what a person needs to act on an error that `?` passes up: the file, value or
/// step involved. In the prelude.
///
/// ```
/// use switchboard_plugin_api::prelude::*;
///
/// fn read_template(path: &std::path::Path) -> Result<String> {
///     std::fs::read_to_string(path).for_path(path)
/// }
///
/// let error = read_template("no/such/template.txt".as_ref()).unwrap_err();
/// assert!(error.message().starts_with("no/such/template.txt: "), "{error}");
///
/// let port: Result<u16> = "80a".parse::<u16>().context("port `80a` in the config");
/// assert!(port.unwrap_err().message().starts_with("port `80a` in the config: "));
/// ```
pub trait Context<T> {
    /// Puts `what` (a step, a value) in front of the error's message.
    fn context(self, what: impl std::fmt::Display) -> Result<T>;

    /// Puts the path in front of the error's message: the one-word fix for "No such file
    /// or directory (os error 2)" with no file named.
    fn for_path(self, path: impl AsRef<std::path::Path>) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().prefixed(what))
    }

    fn for_path(self, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| e.into().prefixed(path.as_ref().display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "outbox missing");
        let err: Error = io.into();
        assert_eq!(err.message(), "outbox missing");
        assert!(!err.is_panic());
    }

    #[test]
    fn panics_are_marked_and_displayed() {
        let err = Error::panicked("boom");
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "panicked: boom");
    }
}
