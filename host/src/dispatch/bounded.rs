//! Waiting on plugin code with a bound: a plugin's `init` or `shutdown` runs on a thread of
//! its own, and the host stops waiting for it after its time limit. A call into a library
//! cannot be stopped in-process; one that never returns keeps its thread (and whatever it
//! holds) until the process exits, and the host goes on without it and says so.

use std::time::Duration;

/// Runs `work` (a call into plugin `plugin`, for the thread's name) and waits `limit` for
/// it: its result, or why there is none (the limit passed, or no thread could be started).
pub(crate) fn within<T: Send + 'static>(
    plugin: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Unfinished> {
    let (done, result) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(format!("switchboard-setup-{plugin}"))
        // As much stack as a dispatch worker: init may do what a callback does.
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(|e| Unfinished::NoThread(e.to_string()))?;
    result.recv_timeout(limit).map_err(|_| Unfinished::TimedOut)
}

/// Why [`within`] has no result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unfinished {
    /// The limit passed; the call goes on on its thread.
    TimedOut,
    /// No thread could be started for it (it did not run).
    NoThread(String),
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn a_result_in_time_is_returned_and_a_hang_is_given_up_on() {
        assert_eq!(super::within("quick", Duration::from_secs(5), || 7), Ok(7));
        let start = Instant::now();
        let hung = super::within("hung", Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(3600));
        });
        assert_eq!(hung, Err(super::Unfinished::TimedOut));
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
