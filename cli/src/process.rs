//! What the command takes over from the process: stop signals, and standard output for
//! results (plugins run in this process and may print).

use std::io::Write;

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
