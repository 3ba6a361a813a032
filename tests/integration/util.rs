//! Test support: build the real plugin libraries once, give each test its own folder and
//! manifest, and run the real `switchboard` binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use switchboard_tests::{binary, build, cargo, library, profile_dir, workspace};

/// The `[events]` the `probe` fixture registers for, as TOML.
pub const PROBE_EVENTS: &str = r#"
[events.ping]
[events.ask]
result = "first"
[events.fail]
[events.boom]
[events.echo]
args = { name = "string", age = "int?" }
[events.nest]
[events.cycle]
args = { n = "int" }
[events.config]
[events.whoami]
args = { nest = "bool?" }
"#;

/// A temporary folder with a manifest, for one test.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox whose `events.toml` has `[host] plugin_dir` set to the built plugins and
    /// then `body`.
    pub fn new(body: &str) -> Sandbox {
        build();
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox { dir };
        sandbox.write(
            "events.toml",
            &format!(
                "[host]\nplugin_dir = {:?}\n{body}",
                profile_dir().to_str().unwrap()
            ),
        );
        sandbox
    }

    /// A sandbox whose manifest has the probe's events, then `body` (usually plugins).
    pub fn with_probe(body: &str) -> Sandbox {
        Sandbox::new(&format!("{PROBE_EVENTS}\n{body}"))
    }

    /// Writes a file in the sandbox.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The sandbox's path for `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The manifest's path.
    pub fn manifest(&self) -> PathBuf {
        self.path("events.toml")
    }

    /// Runs `switchboard --manifest <sandbox manifest> ARGS` in the sandbox.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    /// Runs the binary with `stdin` as its standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: impl AsRef<[u8]>) -> Run {
        use std::io::Write;
        let mut child = Command::new(binary())
            .arg("--manifest")
            .arg(self.manifest())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SWITCHBOARD_LOG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cannot start switchboard");
        // Written from a thread of its own, so that a long output never blocks the input.
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.as_ref().to_vec();
        let writer = std::thread::spawn(move || {
            // The child may stop reading early (a bad manifest): that is its answer.
            let _ = input.write_all(&stdin);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Run(output)
    }
}

/// A finished run of the binary.
pub struct Run(pub Output);

impl Run {
    /// The exit code.
    pub fn code(&self) -> i32 {
        self.0
            .status
            .code()
            .expect("switchboard was killed by a signal")
    }

    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Standard output parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }

    /// Standard output parsed as JSON lines, one document per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// A running host and its current generation, which a test emits on; the host shuts its
/// plugins down when this is dropped.
pub struct Running {
    _host: switchboard::Switchboard,
    board: std::sync::Arc<switchboard::Generation>,
}

impl Running {
    /// Starts the host of a manifest.
    pub fn open(manifest: &std::path::Path) -> Running {
        let host = switchboard::Switchboard::open(manifest)
            .unwrap_or_else(|e| panic!("cannot start the host: {e}"));
        let board = host.current();
        Running { _host: host, board }
    }
}

impl std::ops::Deref for Running {
    type Target = switchboard::Generation;

    fn deref(&self) -> &switchboard::Generation {
        &self.board
    }
}

/// `plugin.callback` names of outcomes in run order, and their JSON values or errors.
pub fn summarize(board: &switchboard::Generation, outcomes: &switchboard::Outcomes) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| {
            let c = board.callback(o.callback);
            match &o.result {
                Ok(v) => format!("{}.{} = {v}", c.plugin_name, c.name),
                Err(e) => format!("{}.{} ! {e}", c.plugin_name, c.name),
            }
        })
        .collect()
}

/// `switchboard --manifest <sandbox manifest> --format json run ARGS`, in the sandbox, with
/// piped standard streams.
pub fn spawn_run(s: &Sandbox, args: &[&str]) -> std::process::Child {
    Command::new(binary())
        .arg("--manifest")
        .arg(s.manifest())
        .args(["--format", "json", "run"])
        .args(args)
        .current_dir(s.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot start switchboard")
}

/// Writes `lines` to the child's standard input on a thread (stopping quietly if the
/// child stops reading), then closes it, or keeps it open for two minutes (for tests that
/// stop the run with a signal).
pub fn feed(
    child: &mut std::process::Child,
    lines: impl Iterator<Item = String> + Send + 'static,
    keep_open: bool,
) {
    use std::io::Write;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    std::thread::spawn(move || {
        let mut input = std::io::BufWriter::new(&mut stdin);
        for line in lines {
            if writeln!(input, "{line}").is_err() {
                return;
            }
        }
        let _ = input.flush();
        drop(input);
        if keep_open {
            std::thread::sleep(std::time::Duration::from_secs(120));
        }
    });
}

/// A `job` event line numbered `n` (for the `faulty` and `counter` fixtures).
pub fn job(n: u64) -> String {
    format!(r#"{{"event": "job", "args": {{"n": {n}}}}}"#)
}

/// Whether process `pid` is alive (a zombie is not).
#[cfg(target_os = "linux")]
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
}

/// Polls `done` every 20 ms for at most `limit`; whether it came true.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Asserts that `pid`, a process a plugin started and did not wait for, is gone within 5 s
/// of its host ending (`how` the host ended, for the message).
#[cfg(target_os = "linux")]
pub fn assert_gone_with_host(pid: u32, how: &str) {
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "process {pid}, started by a plugin, outlived a host that {how}"
    );
}

/// Kills `host` with SIGKILL while `pid`, a process its plugin started, runs, and asserts
/// that `pid` goes with it.
#[cfg(target_os = "linux")]
pub fn kill_host_while_running(host: &mut std::process::Child, pid: u32) {
    assert!(
        alive(pid),
        "process {pid} was gone before its host was killed"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    assert_gone_with_host(pid, "was killed with SIGKILL");
}
