//! Hot reload through the real binary, under load: SIGHUP and `--watch` on `run`, a
//! changed config and a rebuilt library (in-process and isolated), and the reloads that
//! must change nothing (a broken manifest, a library with another ABI, an `init` that
//! fails).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command};
use std::time::{Duration, Instant};

use crate::util::{profile_dir, spawn_run, Sandbox, PROBE_EVENTS};

/// A manifest with plugin `p` (probe, from `library`, with `label` and `settings`) and
/// plugin `steady`, which no reload changes.
fn manifest(library: &str, label: &str, settings: &str) -> String {
    format!(
        r#"{PROBE_EVENTS}
[[plugins]]
name = "steady"
library = "probe"
config = {{ label = "steady", shutdown_log = "shutdown.log", calls_log = "calls.log" }}
[[plugins]]
name = "p"
{library}
config = {{ label = "{label}", shutdown_log = "shutdown.log", calls_log = "calls.log" }}
{settings}
"#
    )
}

/// The sandbox's manifest body rewritten (the `[host]` table stays as the sandbox wrote it).
fn rewrite(s: &Sandbox, body: &str) {
    let text = std::fs::read_to_string(s.manifest()).unwrap();
    let host = text
        .split(PROBE_EVENTS.lines().nth(1).unwrap())
        .next()
        .unwrap();
    // Written aside and renamed, as editors do: the host never sees half a manifest.
    let aside = s.path("events.toml.new");
    std::fs::write(&aside, format!("{host}{body}")).unwrap();
    std::fs::rename(aside, s.manifest()).unwrap();
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Copies a built library over `lib/libp.so` in the sandbox, in place (the way a build
/// writes its output): the running host must not be hurt by it.
fn install(s: &Sandbox, built: &str) {
    let from = profile_dir().join(library_file(built));
    let to = s.path("lib").join(library_file("p"));
    std::fs::create_dir_all(s.path("lib")).unwrap();
    let bytes = std::fs::read(from).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(to)
        .unwrap();
    file.write_all(&bytes).unwrap();
}

fn library_file(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// `p`'s answer to a `ping` result line, and the generation that served it.
fn answer(line: &serde_json::Value) -> (String, u64) {
    let p = line["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{line}"))
        .iter()
        .find(|r| r["plugin"] == "p" && r["callback"] == "ping")
        .unwrap_or_else(|| panic!("{line}"));
    (
        p["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"))
            .to_owned(),
        line["generation"].as_u64().unwrap(),
    )
}

/// `run --workers 2` over `count` pings fed at full speed; after `reload_after` results,
/// `change` runs and SIGHUP is sent. Checks that every line got exactly one result, and
/// that the answers switch from `before` to `after` at one point (in input order) and never
/// back; returns the standard error.
fn reload_under_load(
    s: &Sandbox,
    count: usize,
    reload_after: usize,
    change: impl FnOnce(),
    before: &str,
    after: &str,
) -> String {
    let mut child = spawn_run(s, &["--workers", "2"]);
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut input = std::io::BufWriter::new(&mut stdin);
        for n in 0..count {
            writeln!(input, r#"{{"event": "ping", "id": {n}}}"#).unwrap();
        }
    });
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
        text
    });
    let mut by_id: HashMap<u64, (String, u64)> = HashMap::new();
    let mut change = Some(change);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = line["id"].as_u64().unwrap_or_else(|| panic!("{line}"));
        assert!(
            by_id.insert(id, answer(&line)).is_none(),
            "id {id} answered twice"
        );
        if by_id.len() == reload_after {
            if let Some(change) = change.take() {
                change();
                hangup(&child);
            }
        }
    }
    feeder.join().unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(by_id.len(), count, "every line gets one result");

    let answers: Vec<&(String, u64)> = (0..count as u64).map(|n| &by_id[&n]).collect();
    let switch = answers
        .iter()
        .position(|(value, _)| value != before)
        .unwrap_or_else(|| panic!("the answers never changed: {stderr}"));
    assert!(switch > 0, "the reload came before any event");
    assert!(
        answers[switch..].iter().all(|(value, _)| value == after),
        "after switching at line {switch} an answer went back or was another: {:?}",
        answers[switch..].iter().find(|(value, _)| value != after)
    );
    let (first, second) = (answers[0].1, answers[count - 1].1);
    assert!(answers[..switch].iter().all(|(_, g)| *g == first));
    assert!(answers[switch..].iter().all(|(_, g)| *g == second));
    assert!(second > first, "the new answers come from a new generation");
    assert!(
        stderr.contains(&format!("generation {second} serves events now")),
        "{stderr}"
    );
    stderr
}

/// The `label pings` lines the probes write at shutdown, added up by label.
fn pings(s: &Sandbox) -> HashMap<String, u64> {
    let mut pings = HashMap::new();
    for line in std::fs::read_to_string(s.path("calls.log"))
        .unwrap()
        .lines()
    {
        let (label, n) = line.rsplit_once(' ').unwrap();
        *pings.entry(label.to_owned()).or_default() += n.parse::<u64>().unwrap();
    }
    pings
}

#[test]
fn sighup_switches_to_a_new_config_once_and_loses_nothing() {
    const EVENTS: usize = 200_000;
    let s = Sandbox::new(&manifest("library = \"probe\"", "old", ""));
    let stderr = reload_under_load(
        &s,
        EVENTS,
        20_000,
        || rewrite(&s, &manifest("library = \"probe\"", "new", "")),
        "old.ping",
        "new.ping",
    );
    assert!(
        stderr.contains("carried over: steady; started: p"),
        "{stderr}"
    );
    // Every event reached exactly one instance of `p`, and `steady` throughout; each
    // instance shut down once, `old` at the reload and the others at the end.
    let pings = pings(&s);
    assert_eq!(pings["old"] + pings["new"], EVENTS as u64, "{pings:?}");
    assert_eq!(pings["steady"], EVENTS as u64);
    let mut shutdowns: Vec<String> = std::fs::read_to_string(s.path("shutdown.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        shutdowns.first().map(String::as_str),
        Some("old"),
        "old goes first"
    );
    shutdowns.sort();
    assert_eq!(shutdowns, ["new", "old", "steady"]);
}

#[test]
fn a_library_rebuilt_in_place_replaces_the_running_build() {
    for settings in ["", "isolation = \"process\""] {
        let s = Sandbox::new(&manifest(
            &format!("path = \"lib/{}\"", library_file("p")),
            "p",
            settings,
        ));
        install(&s, "probe");
        let stderr = reload_under_load(
            &s,
            30_000,
            5_000,
            || install(&s, "probe_v2"),
            "p.ping",
            "p.ping.v2",
        );
        assert!(
            stderr.contains("carried over: steady; started: p"),
            "{settings}: {stderr}"
        );
        // Both builds label themselves `p`: together they answered every ping once.
        let pings = pings(&s);
        assert_eq!(pings["p"], 30_000, "{settings}: {pings:?}");
    }
}

/// A running `run --workers 1` to send pings to one at a time.
struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stderr: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Running {
    fn start(s: &Sandbox, args: &[&str]) -> Running {
        let mut child = spawn_run(s, args);
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let (lines, stderr) = std::sync::mpsc::channel();
        let err = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            stdin,
            stdout,
            stderr,
            seen: String::new(),
        }
    }

    /// `p`'s answer to one ping.
    fn ping(&mut self) -> (String, u64) {
        writeln!(self.stdin, r#"{{"event": "ping"}}"#).unwrap();
        let line = self.stdout.next().unwrap().unwrap();
        answer(&serde_json::from_str(&line).unwrap())
    }

    /// Waits until standard error has a line containing `text`; all it said so far.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                }
                Err(_) => panic!("no `{text}` on stderr: {}", self.seen),
            }
        }
        self.seen.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_reload_that_fails_leaves_the_running_generation_serving() {
    let s = Sandbox::new(&manifest(
        &format!("path = \"lib/{}\"", library_file("p")),
        "p",
        "",
    ));
    install(&s, "probe");
    let mut run = Running::start(&s, &["--workers", "1"]);
    let (value, generation) = run.ping();
    assert_eq!(value, "p.ping");

    // A broken manifest: the check's message with file and line.
    let good = std::fs::read_to_string(s.manifest()).unwrap();
    std::fs::write(
        s.manifest(),
        good.replace("[[plugins]]\nname = \"p\"", "[[plugins]\nname = \"p\""),
    )
    .unwrap();
    hangup(&run.child);
    run.wait_for("goes on serving");
    // The error names file and line, as `check` would.
    let said = run.wait_for("events.toml:");
    assert!(
        said.contains(&format!("generation {generation} goes on serving")),
        "{said}"
    );
    assert_eq!(run.ping(), ("p.ping".to_owned(), generation));
    std::fs::write(s.manifest(), &good).unwrap();

    // A library built against another plugin-api: refused as `check` refuses it.
    install(&s, "layout_changed");
    hangup(&run.child);
    let said = run.wait_for("incompatible");
    assert!(said.contains(&library_file("p")), "{said}");
    assert_eq!(run.ping(), ("p.ping".to_owned(), generation));
    install(&s, "probe");

    // A new config whose `init` fails.
    std::fs::write(
        s.manifest(),
        good.replace("label = \"p\",", "label = \"p\", fail_init = true,"),
    )
    .unwrap();
    hangup(&run.child);
    let said = run.wait_for("refuses to start");
    assert!(said.contains("probe p refuses to start"), "{said}");
    assert_eq!(run.ping(), ("p.ping".to_owned(), generation));

    // And a good one after all that.
    std::fs::write(
        s.manifest(),
        good.replace("label = \"p\",", "label = \"q\","),
    )
    .unwrap();
    hangup(&run.child);
    run.wait_for("serves events now");
    let (value, next) = run.ping();
    assert_eq!(value, "q.ping");
    assert!(next > generation);
}

#[test]
fn watch_picks_up_an_edit_without_a_signal() {
    let s = Sandbox::new(&manifest("library = \"probe\"", "before", ""));
    let mut run = Running::start(&s, &["--workers", "1", "--watch"]);
    run.wait_for("watching");
    assert_eq!(run.ping().0, "before.ping");
    rewrite(&s, &manifest("library = \"probe\"", "after", ""));
    let said = run.wait_for("serves events now");
    assert!(said.contains("a watched file changed"), "{said}");
    assert_eq!(run.ping().0, "after.ping");
}

/// Issue 22: a library cut short (a copy still being written) put in place under a running
/// host and followed by SIGHUP is refused before it is mapped; the host goes on serving.
#[test]
fn a_reload_onto_a_library_cut_short_is_refused_and_the_host_goes_on() {
    let s = Sandbox::new(&manifest(
        &format!("path = \"lib/{}\"", library_file("p")),
        "p",
        "",
    ));
    install(&s, "probe");
    let mut run = Running::start(&s, &["--workers", "1"]);
    let (value, generation) = run.ping();
    assert_eq!(value, "p.ping");
    let whole = std::fs::read(profile_dir().join(library_file("probe_v2"))).unwrap();
    std::fs::write(
        s.path("lib").join(library_file("p")),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    hangup(&run.child);
    let said = run.wait_for("is cut short or damaged");
    assert!(said.contains("goes on serving"), "{said}");
    assert_eq!(run.ping(), ("p.ping".to_owned(), generation));
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "the host is still up"
    );
}
