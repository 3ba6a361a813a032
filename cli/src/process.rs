//! What the command takes over from the process: stop signals, and standard output for
//! results (plugins run in this process and may print).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code when plugin code ends the process by calling `exit()` (EX_SOFTWARE).
#[cfg(unix)]
pub const EXIT_BY_PLUGIN: i32 = 70;

/// How long a plugin's `exit()` waits for the results already computed to be written.
#[cfg(unix)]
const FLUSH_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

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

/// Marks the exit that follows as the command's own, and removes the temporary copies of
/// libraries this process made (the host leaves nothing in the temporary folder).
pub fn ending() {
    ENDING.store(true, Ordering::SeqCst);
    switchboard::load::remove_temporary_copies();
}

#[cfg(unix)]
extern "C" fn refuse_foreign_exit() {
    if ENDING.load(Ordering::SeqCst) {
        return;
    }
    // Results already computed are owed to the reader: they are written first.
    let written = match switchboard::service::flush_results_now(FLUSH_WITHIN) {
        Some(0) | None => String::new(),
        Some(n) => format!(" ({n} result lines were written before it)"),
    };
    switchboard::load::remove_temporary_copies();
    let _ = writeln!(
        std::io::stderr(),
        "error: plugin code called exit() while the host was running{written}; the events still in flight got no result line and the summary is lost (exit code {EXIT_BY_PLUGIN}). Run that plugin with isolation = \"process\""
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

/// Raises this process's soft limit on open files to its hard limit, as servers do (the
/// common soft limit, 1,024, is below what `serve` holds); the soft limit now, or `None`
/// where there is no such limit.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read or write only the struct passed by reference,
        // and change only this process's limit.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        #[allow(clippy::useless_conversion)] // rlim_t is u64 here, not on every Unix
        Some(u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}
