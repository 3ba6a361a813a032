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

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: RString::from(message.into()),
            help: ROption::RNone,
            kind: KIND_FAILED,
        }
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
        if self.is_panic() {
            write!(f, "panicked: ")?;
        } else if self.is_skipped() {
            write!(f, "skipped: ")?;
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
