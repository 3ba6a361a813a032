//! Publishing events to NATS JetStream, with a real `nats-server -js` on free loopback
//! ports and a temporary store, started by each test (`.ci/run` installs Debian's
//! `nats-server`; without it the tests are skipped, unless `CI` is set).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{spawn_run, Sandbox};

/// A running `nats-server` with JetStream.
struct NatsServer {
    child: Child,
    port: u16,
    monitor: u16,
    store: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    /// A new server, or `None` (the test is skipped) where nats-server is not installed.
    fn start() -> Option<NatsServer> {
        let installed = Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(std::env::var_os("CI").is_none(), "CI must have nats-server");
            eprintln!("skipped: no nats-server on this machine");
            return None;
        }
        let store = tempfile::tempdir().unwrap();
        let (port, monitor) = (free_port(), free_port());
        let child = NatsServer::spawn(port, monitor, store.path());
        Some(NatsServer {
            child,
            port,
            monitor,
            store,
        })
    }

    fn spawn(port: u16, monitor: u16, store: &std::path::Path) -> Child {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", monitor)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM: it writes its store) and starts it again on the same
    /// port and store after `pause`.
    fn restart(&mut self, pause: Duration) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(pause);
        self.child = NatsServer::spawn(self.port, self.monitor, self.store.path());
    }

    /// How many messages the stream holds, from the server's monitoring endpoint.
    fn messages(&self, stream: &str) -> u64 {
        let url = format!("http://127.0.0.1:{}/jsz?streams=1", self.monitor);
        let jsz: serde_json::Value =
            serde_json::from_str(&ureq::get(&url).call().unwrap().into_string().unwrap()).unwrap();
        jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
            .find(|s| s["name"] == stream)
            .map_or(0, |s| s["state"]["messages"].as_u64().unwrap())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sign-up event, published to `url`.
fn publishing(url: &str) -> Sandbox {
    Sandbox::new(&format!(
        r#"
[events.user_joined]
args = {{ name = "string", email = "string" }}
[nats]
url = "{url}"
stream = "SIGNUPS"
publish = ["user_joined"]
publish_timeout_ms = 15000
"#
    ))
}

fn sign_ups(count: usize) -> String {
    (0..count)
        .map(|n| {
            format!(
                "{{\"event\": \"user_joined\", \"args\": {{\"name\": \"user{n}\", \"email\": \"user{n}@example.com\"}}, \"id\": \"signup-{n}\"}}\n"
            )
        })
        .collect()
}

#[test]
fn a_publish_run_repeated_with_the_same_ids_is_stored_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let s = publishing(&server.url());
    for attempt in 0..2 {
        let mut child = spawn_run(&s, &[]);
        let input: Vec<String> = sign_ups(10_000).lines().map(str::to_owned).collect();
        crate::util::feed(&mut child, input.into_iter(), false);
        let lines: Vec<serde_json::Value> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        assert!(child.wait().unwrap().success());
        assert_eq!(lines.len(), 10_000);
        for line in &lines {
            assert_eq!(line["ok"], true, "{line}");
            assert_eq!(line["published"]["stream"], "SIGNUPS");
            assert!(line["published"]["seq"].as_u64().unwrap() >= 1);
            assert_eq!(line["published"]["duplicate"], attempt == 1, "{line}");
        }
    }
    assert_eq!(server.messages("SIGNUPS"), 10_000);
}

#[test]
fn emit_publishes_under_its_id_and_checks_arguments_first() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let s = publishing(&server.url());
    let first = s.run(&[
        "emit",
        "user_joined",
        "name=Ann",
        "email=ann@example.com",
        "--id",
        "ann-1",
    ]);
    first.assert_code(0);
    assert!(first
        .stdout()
        .contains("published to stream SIGNUPS as message 1 (id ann-1)"));
    let again = s.run(&[
        "emit",
        "user_joined",
        "name=Ann",
        "email=ann@example.com",
        "--id",
        "ann-1",
    ]);
    again.assert_code(0);
    assert!(again.stdout().contains("stored once"), "{}", again.stdout());
    let bad = s.run(&[
        "emit",
        "user_joined",
        "--json",
        r#"{"name": 1, "email": "x"}"#,
    ]);
    bad.assert_code(2);
    assert!(bad.stderr().contains("argument `name`"), "{}", bad.stderr());
    assert_eq!(server.messages("SIGNUPS"), 1);
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = free_port();
    let s = publishing(&format!("nats://127.0.0.1:{port}"));
    let run = s.run_with_stdin(&["run"], sign_ups(1));
    run.assert_code(2);
    assert!(
        run.stderr()
            .contains(&format!("cannot reach NATS at nats://127.0.0.1:{port}")),
        "{}",
        run.stderr()
    );
}

/// The server stops and starts again in the middle of a publish run: every event the run
/// answered as published is in the stream afterwards, once.
#[test]
fn a_server_restart_during_a_publish_run_loses_no_acknowledged_event() {
    const EVENTS: usize = 3_000;
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let s = publishing(&server.url());
    let mut child = spawn_run(&s, &["--workers", "2"]);
    let mut stdin = child.stdin.take().unwrap();
    let input = sign_ups(EVENTS);
    let feeder = std::thread::spawn(move || {
        // Not all at once: the run is still publishing when the server goes away.
        for chunk in input.lines().collect::<Vec<_>>().chunks(100) {
            for line in chunk {
                writeln!(stdin, "{line}").unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut acknowledged = std::collections::HashSet::new();
    let mut restarted = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(line["ok"], true, "a publish failed: {line}");
        assert!(acknowledged.insert(line["id"].as_str().unwrap().to_owned()));
        if acknowledged.len() == 500 && !restarted {
            server.restart(Duration::from_millis(500));
            restarted = true;
        }
    }
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(restarted);
    assert_eq!(acknowledged.len(), EVENTS);
    assert_eq!(server.messages("SIGNUPS"), EVENTS as u64);
}

#[test]
fn serve_publishes_and_answers_with_the_stream_sequence() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let s = publishing(&server.url());
    let http = crate::serve::Server::start(&s, &[]);
    let sign_up = |id: &str| {
        let request = ureq::post(&http.url("/events/user_joined")).set("X-Request-Id", id);
        let (status, body, _) = http.send(
            request,
            Some(r#"{"name": "Ann", "email": "ann@example.com"}"#),
        );
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, body) = sign_up("ann-1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["published"]["seq"], 1);
    assert_eq!(body["published"]["duplicate"], false);
    let (status, body) = sign_up("ann-1");
    assert_eq!(
        (status, &body["published"]["duplicate"]),
        (200, &serde_json::json!(true))
    );
    let (status, _, _) = http.post("/events/user_joined", r#"{"name": 1}"#);
    assert_eq!(status, 400, "arguments are checked before publishing");
    assert_eq!(server.messages("SIGNUPS"), 1);
}
