//! Panics in plugin code: caught at every entry point so they never unwind into the host
//! (which would abort it), and reported once, with their message and location.
//!
//! The guard around a call is `catch_unwind` alone: no thread-local is touched unless a
//! panic happens, so a guarded callback costs what an unguarded one does. The panic hook
//! records each panic's message for the guard that catches it. A panic no guard claims (one
//! on a thread of the plugin's own, or one the plugin caught itself) is printed, naming the
//! plugin: when the next panic on that thread begins, or when the thread ends. A panic while
//! unwinding from another aborts the process; its message is printed before the abort.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

use abi_stable::std_types::RResult;

use crate::error::{Error, Result};

/// What the standard library's panic machinery says when a panic escapes a destructor
/// that runs during unwinding, right before it aborts the process.
const ABORTING: &str = "panic in a destructor during cleanup";

/// A panic's report, kept until a guard claims it.
struct Pending {
    message: String,
    at: Option<String>,
    thread: String,
}

impl Pending {
    /// The message a guard puts in its error.
    fn into_message(self) -> String {
        match self.at {
            Some(at) => format!("{} (at {at})", self.message),
            None => self.message,
        }
    }

    /// Prints a panic nobody claimed, naming the plugin: the host cannot see it, since
    /// each plugin has its own copy of the standard library and its panic hook.
    fn print(&self, note: &str) {
        // Before any host started the plugin (its own tests, say), there is no name.
        let names = match NAMES.try_lock() {
            Ok(names) if !names.is_empty() => format!("plugin `{}`: ", names.join("`, `")),
            _ => String::new(),
        };
        eprintln!(
            "error: {names}thread '{}' panicked{}: {}{note}",
            self.thread,
            self.at
                .as_ref()
                .map(|at| format!(" at {at}"))
                .unwrap_or_default(),
            self.message
        );
    }
}

/// This thread's unclaimed panic; printed if the thread ends with it still here.
struct Unclaimed(RefCell<Option<Pending>>);

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(pending) = self.0.get_mut().take() {
            pending.print("");
        }
    }
}

thread_local! {
    static UNCLAIMED: Unclaimed = const { Unclaimed(RefCell::new(None)) };
}

/// Runs plugin code, turning a panic into an [`Error`] so that it never unwinds into the
/// host (a panic crossing `extern "C"` aborts the whole process).
pub(crate) fn guard<T>(body: impl FnOnce() -> Result<T>) -> RResult<T, Error> {
    match catch_panic(body) {
        Ok(result) => result.into(),
        Err(panicked) => RResult::RErr(panicked),
    }
}

/// Runs `body`, turning a panic into an error that carries its message and location.
#[inline(always)]
pub(crate) fn catch_panic<T>(body: impl FnOnce() -> T) -> std::result::Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(body)).map_err(|payload| claim(payload.as_ref()))
}

/// The error for a caught panic: the hook's record of it, or failing that its payload.
#[cold]
#[inline(never)]
fn claim(payload: &(dyn std::any::Any + Send)) -> Error {
    let pending = UNCLAIMED
        .try_with(|unclaimed| unclaimed.0.borrow_mut().take())
        .ok()
        .flatten();
    Error::panicked(match pending {
        Some(pending) => pending.into_message(),
        None => payload_message(payload),
    })
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// The manifest names of this library's instances, for panics that happen outside any
/// call from the host (one library may be loaded under several names).
static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn remember_name(name: &str) {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

/// Installs the hook that records panics instead of printing them (see the module docs).
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| panic::set_hook(Box::new(record)));
}

fn record(info: &panic::PanicHookInfo<'_>) {
    let pending = Pending {
        message: payload_message(info.payload()),
        at: info
            .location()
            .map(|at| format!("{}:{}", at.file(), at.line())),
        thread: std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned(),
    };
    let aborting = pending.message == ABORTING;
    let stored = UNCLAIMED.try_with(|unclaimed| {
        let mut slot = unclaimed.0.borrow_mut();
        let earlier = slot.take();
        if aborting {
            // The panic that escaped the destructor is the one still unclaimed.
            let second = earlier.unwrap_or(pending);
            second
                .print(" (a second panic while unwinding from another panic: the process aborts)");
            return;
        }
        if let Some(earlier) = earlier {
            // Caught by the plugin's own code, or unwinding into this second panic.
            earlier.print("");
        }
        *slot = Some(pending);
    });
    if stored.is_err() {
        // The thread is ending: nothing can claim the panic any more.
        eprintln!("error: a plugin panicked while its thread was ending");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_carries_its_message_and_location() {
        install_panic_hook();
        let error = catch_panic(|| panic!("exploded on purpose")).unwrap_err();
        assert!(error.is_panic());
        assert!(
            error.message().starts_with("exploded on purpose (at "),
            "{error}"
        );
        assert!(error.message().contains("panic.rs:"), "{error}");
        // Claimed: a second caught panic reports its own message, not the first.
        let again = catch_panic(|| panic!("again")).unwrap_err();
        assert!(again.message().starts_with("again (at "), "{again}");
    }
}
