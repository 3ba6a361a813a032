//! One worker process, from the host's side: spawning it, the hello, frames in both
//! directions with a deadline, and what to say when it dies.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{read_frame, write_frame, FromWorker, ToWorker, WireError, VERSION};

/// How many of a worker's last standard-error lines a fault report quotes.
const STDERR_TAIL: usize = 12;

/// How long a new worker has to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// Why a worker gave no answer.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The deadline passed.
    TimedOut,
    /// The worker died, closed its pipe or sent a broken frame: the details.
    Died(String),
}

/// A running worker.
pub(crate) struct WorkerProcess {
    child: Child,
    stdin: ChildStdin,
    frames: Receiver<Result<Vec<u8>, WireError>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    pub(crate) pid: u32,
    plugin: String,
}

impl WorkerProcess {
    /// Starts `command __worker` for `plugin` and waits for its hello.
    pub(crate) fn spawn(
        command: &Path,
        plugin: &str,
        memory_mb: Option<u64>,
    ) -> Result<WorkerProcess, String> {
        let mut cmd = Command::new(command);
        cmd.arg("__worker");
        if let Some(mb) = memory_mb {
            cmd.arg("--memory-mb").arg(mb.to_string());
            // The `switchboard` binary's allocator (mimalloc) reserves 1 GiB of address
            // space up front, which a limit on the address space would refuse: reserve
            // as it goes instead.
            cmd.env("MIMALLOC_ARENA_RESERVE", "0");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("SWITCHBOARD_WORKER_PLUGIN", plugin);
        // The worker leads a process group of its own: whatever the plugin starts is in
        // it, and ends with it (see `end_group`). It also keeps a terminal's Ctrl-C, meant
        // for the host, from reaching the worker before the host has drained.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = spawn_from_lasting_thread(cmd)
            .map_err(|e| format!("cannot start a worker process ({}): {e}", command.display()))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err("the worker's pipes were not set up".to_owned());
        };

        let (sender, frames) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("switchboard-worker-{pid}-out"))
            .spawn(move || {
                let mut stdout = BufReader::new(stdout);
                loop {
                    let frame = read_frame(&mut stdout);
                    let end = frame.is_err();
                    if sender.send(frame).is_err() || end {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread for the worker: {e}"))?;

        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let lines = Arc::clone(&tail);
        let name = plugin.to_owned();
        std::thread::Builder::new()
            .name(format!("switchboard-worker-{pid}-err"))
            .spawn(move || {
                // The plugin's own output (its prints go here) passes through to ours, as
                // it would in-process, and its last lines are kept for fault reports.
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let _ = writeln!(std::io::stderr(), "[{name} {pid}] {line}");
                    if is_backtrace(&line) {
                        // Passed on above, but kept out of the fault report: the message
                        // before a backtrace says what happened, its frames would push it
                        // out of the tail.
                        continue;
                    }
                    let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if lines.len() == STDERR_TAIL {
                        lines.pop_front();
                    }
                    lines.push_back(line);
                }
            })
            .map_err(|e| format!("cannot start a thread for the worker: {e}"))?;

        let mut worker = WorkerProcess {
            child,
            stdin,
            frames,
            stderr: tail,
            pid,
            plugin: plugin.to_owned(),
        };
        match worker.recv(Some(Instant::now() + HELLO_WITHIN)) {
            Ok(FromWorker::Hello { version, .. }) if version == VERSION => Ok(worker),
            Ok(FromWorker::Hello { version, .. }) => {
                worker.kill();
                Err(format!(
                    "the worker ({}) speaks protocol {version}, this host {VERSION}; use the `switchboard` binary of the same release",
                    command.display()
                ))
            }
            Ok(_) => {
                worker.kill();
                Err("the worker did not start with a hello".to_owned())
            }
            Err(Fault::TimedOut) => {
                worker.kill();
                Err(format!(
                    "the worker did not say hello within {HELLO_WITHIN:?}"
                ))
            }
            Err(Fault::Died(why)) => Err(format!("the worker died at start: {why}")),
        }
    }

    /// Sends one message.
    pub(crate) fn send(&mut self, message: &ToWorker) -> Result<(), Fault> {
        self.send_encoded(&message.encode())
    }

    /// Sends one message already encoded.
    pub(crate) fn send_encoded(&mut self, body: &[u8]) -> Result<(), Fault> {
        write_frame(&mut self.stdin, body).map_err(|e| Fault::Died(self.death(&e)))
    }

    /// The next message, waiting until `deadline` at most.
    pub(crate) fn recv(&mut self, deadline: Option<Instant>) -> Result<FromWorker, Fault> {
        let frame = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.frames.recv_timeout(left) {
                    Ok(frame) => frame,
                    Err(RecvTimeoutError::Timeout) => return Err(Fault::TimedOut),
                    Err(RecvTimeoutError::Disconnected) => Err(WireError::Closed),
                }
            }
            None => self.frames.recv().unwrap_or(Err(WireError::Closed)),
        };
        frame
            .and_then(|bytes| FromWorker::decode(&bytes))
            .map_err(|e| Fault::Died(self.death(&e)))
    }

    /// Kills the worker and every process it started, and waits for it.
    pub(crate) fn kill(&mut self) {
        self.end_group();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the worker's process group: the worker and whatever the plugin started that
    /// did not leave the group (a process that calls `setsid` or `setpgid` leaves it, and
    /// is its own keeper). Called before the worker is reaped, so that its pid, which names
    /// the group, cannot have been given to another process yet.
    fn end_group(&self) {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: kill has no memory preconditions; a negative pid names the process
            // group this worker leads (it was started with `process_group(0)`), and the
            // worker is not reaped yet, so the group id is still ours.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }

    /// Asks the worker to stop after `shutdown`, gives it `grace`, then kills it.
    pub(crate) fn stop(&mut self, grace: Duration) -> Result<(), Fault> {
        let deadline = Instant::now() + grace;
        let said = self.send(&ToWorker::Shutdown).and_then(|()| loop {
            match self.recv(Some(deadline))? {
                FromWorker::Done(result) => {
                    break result.map(|_| ()).map_err(|e| Fault::Died(e.to_string()));
                }
                FromWorker::Log { level, message } => {
                    crate::plugin_log::log(&self.plugin, None, level, &message);
                }
                _ => break Ok(()),
            }
        });
        if self.wait_until(deadline).is_none() {
            self.kill();
        }
        said
    }

    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if self.exited() {
                // What the plugin started goes with the worker, before its pid is freed.
                self.end_group();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What became of a worker whose pipe failed: how it ended (it is given a moment to
    /// finish dying), and its last lines of standard error.
    fn death(&mut self, error: &WireError) -> String {
        let status = self.wait_until(Instant::now() + Duration::from_millis(500));
        let how = match status {
            Some(status) => describe_exit(status),
            None => {
                self.kill();
                format!("sent {error}, and was killed")
            }
        };
        // The reader thread may still be passing the last lines on.
        std::thread::sleep(Duration::from_millis(20));
        let tail = self.stderr_tail();
        if tail.is_empty() {
            format!("pid {}: {how}", self.pid)
        } else {
            format!("pid {}: {how}; its last output: {tail}", self.pid)
        }
    }

    /// Whether the worker has exited, without reaping it.
    fn exited(&self) -> bool {
        #[cfg(unix)]
        {
            let pid: libc::id_t = self.pid;
            // SAFETY: waitid writes only into `info`, a zeroed siginfo_t owned here;
            // WNOWAIT leaves the child to be reaped by `Child::try_wait`.
            unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let done = libc::waitid(
                    libc::P_PID,
                    pid,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                );
                done == 0 && info.si_pid() != 0
            }
        }
        #[cfg(not(unix))]
        false
    }

    /// The worker's last lines of standard error, joined with ` | `.
    pub(crate) fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for WorkerProcess {
    /// A worker never outlives the host's handle to it.
    fn drop(&mut self) {
        // Not reaped yet (still running, or exited unseen): its group ends before it is
        // reaped. One reaped already had its group ended by whoever reaped it.
        if self.exited() || matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Whether a line of standard error is part of a Rust backtrace.
fn is_backtrace(line: &str) -> bool {
    let line = line.trim_start();
    line == "stack backtrace:"
        || line.starts_with("note: Some details are omitted")
        || line.starts_with("at ")
        || line
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Starts a process from a thread that lives as long as the host. On Linux a worker asks
/// to be killed when its parent dies, and "parent" there means the thread that started
/// it: a worker started from a dispatch thread would die with that thread.
fn spawn_from_lasting_thread(command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Mutex<mpsc::Sender<Request>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        let started = std::thread::Builder::new()
            .name("switchboard-spawner".into())
            .spawn(move || {
                for (mut command, answer) in requests {
                    let _ = answer.send(command.spawn());
                }
            });
        if let Err(error) = started {
            tracing::error!("cannot start the worker-spawning thread: {error}");
        }
        Mutex::new(sender)
    });
    let (answer, answered) = mpsc::channel();
    let sent = spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, answer));
    if let Err(mpsc::SendError((mut command, _))) = sent {
        // No spawning thread: start it here (it then dies with this thread on Linux).
        return command.spawn();
    }
    answered
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the worker-spawning thread is gone")))
}

/// `killed by SIGSEGV (segmentation fault)`, `exited with code 3`.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by {}", signal_name(signal));
        }
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "ended".to_owned(),
    }
}

/// A signal's name and what it usually means.
#[cfg(unix)]
pub(crate) fn signal_name(signal: i32) -> String {
    let (name, meaning) = match signal {
        1 => ("SIGHUP", "hang-up"),
        2 => ("SIGINT", "interrupted"),
        3 => ("SIGQUIT", "quit"),
        4 => ("SIGILL", "illegal instruction"),
        5 => ("SIGTRAP", "trap"),
        6 => (
            "SIGABRT",
            "aborted: abort(), a failed allocation or a stack overflow",
        ),
        7 => ("SIGBUS", "bus error"),
        8 => ("SIGFPE", "arithmetic error"),
        9 => ("SIGKILL", "killed"),
        11 => (
            "SIGSEGV",
            "segmentation fault: a bad memory access or a stack overflow",
        ),
        13 => ("SIGPIPE", "broken pipe"),
        15 => ("SIGTERM", "terminated"),
        24 => ("SIGXCPU", "CPU time limit"),
        25 => ("SIGXFSZ", "file size limit"),
        31 => ("SIGSYS", "bad system call"),
        _ => return format!("signal {signal}"),
    };
    format!("{name} ({meaning})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn backtrace_lines_are_told_from_messages() {
        for line in [
            "stack backtrace:",
            "   0: std::alloc::rust_oom",
            "  17: <unknown>",
            "             at /rustc/library/std/src/alloc.rs:406:5",
            "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
        ] {
            assert!(super::is_backtrace(line), "{line}");
        }
        for line in [
            "memory allocation of 1048576 bytes failed",
            "thread 'main' has overflowed its stack",
            "fatal runtime error: stack overflow",
            "error: 3 things",
        ] {
            assert!(!super::is_backtrace(line), "{line}");
        }
    }
}
