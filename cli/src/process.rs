//! What the command takes over from the process: stop signals, and standard output for
//! results (plugins run in this process and may print).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code when plugin code ends the process by calling `exit()` (EX_SOFTWARE).
#[cfg(unix)]
pub const EXIT_BY_PLUGIN: i32 = 70;

/// Whether the command itself is ending the process; a plugin's `exit()` is not.
static ENDING: AtomicBool = AtomicBool::new(false);

/// From here on, a call to `exit()` that the command did not make (plugin code calling
/// `std::process::exit(0)`, say) ends the process with [`EXIT_BY_PLUGIN`] and a message,
/// instead of the plugin's code: a `run` cut short must not look like a success.
pub fn guard_against_foreign_exit() {
    #[cfg(unix)]
    // SAFETY: `refuse_foreign_exit` is an `extern "C" fn()` that only reads an atomic,
    // writes to stderr and calls `_exit`, all allowed while the process exits; `atexit`
    // has no other precondition.
    unsafe {
        libc::atexit(refuse_foreign_exit);
    }
}

/// A panic on the command's own main thread (a bug of ours, not a plugin's) ends the
/// process through the runtime's `exit`: mark that exit as ours, so the guard above does
/// not blame a plugin. Plugins' panics run their own copy of the hook, not this one.
pub fn own_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            ending();
        }
        previous(info);
    }));
}

/// Marks the exit that follows as the command's own.
pub fn ending() {
    ENDING.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
extern "C" fn refuse_foreign_exit() {
    if ENDING.load(Ordering::SeqCst) {
        return;
    }
    let _ = writeln!(
        std::io::stderr(),
        "error: plugin code called exit() while the host was running; results of the events in flight and the summary are lost (exit code {EXIT_BY_PLUGIN}). Run that plugin with isolation = \"process\""
    );
    // SAFETY: `_exit` ends the process at once, running no further handlers; nothing runs
    // after it.
    unsafe { libc::_exit(EXIT_BY_PLUGIN) }
}

/// Calls `on_signal(number, count)` on a thread of its own for every SIGINT or SIGTERM:
/// `count` is 1 for the first, 2 for the second, and so on.
pub fn on_stop(on_signal: impl Fn(i32, usize) + Send + 'static) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        std::thread::Builder::new()
            .name("switchboard-signals".into())
            .spawn(move || {
                for (count, number) in signals.forever().enumerate() {
                    on_signal(number, count + 1);
                }
            })?;
    }
    #[cfg(not(unix))]
    {
        // Ctrl-C on Windows ends the process; a console handler is future work.
        let _ = on_signal;
    }
    Ok(())
}

/// Standard output for results only: a duplicate of it is returned, and the process's own
/// standard output is pointed at standard error, so that a plugin's `println!` can neither
/// mix text into nor split a result line.
pub fn claim_stdout() -> std::io::Result<Box<dyn Write + Send>> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        std::io::stdout().flush()?;
        let results = std::io::stdout().as_fd().try_clone_to_owned()?;
        rustix::stdio::dup2_stdout(std::io::stderr())?;
        Ok(Box::new(std::fs::File::from(results)))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::new(std::io::stdout()))
    }
}
