//! `switchboard serve` through the real binary on a free loopback port, with a real HTTP
//! client: every route and error status, the metrics parsed as Prometheus text and checked
//! against the requests made, the admin token, slow clients, a full queue, graceful
//! shutdown with requests in flight, the status page in a real browser, and a load test
//! against the default manifest.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::faults::EVENTS;
use crate::util::{binary, Sandbox};

/// The most of a server's standard error a test keeps.
const KEEP_STDERR: usize = 1 << 20;

/// A running `switchboard serve` on a free port.
pub(crate) struct Server {
    child: Child,
    address: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on `sandbox`'s manifest with `env` set, and waits for it to listen.
    pub(crate) fn start(sandbox: &Sandbox, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(binary())
            .arg("--manifest")
            .arg(sandbox.manifest())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .current_dir(sandbox.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start switchboard serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { return };
                if let Some(rest) = line.split("serving on http://").nth(1) {
                    let _ = found.send(rest.split(' ').next().unwrap_or_default().to_owned());
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() < KEEP_STDERR {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        let address = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {}", stderr.lock().unwrap());
            }
        };
        Server {
            child,
            address,
            stderr,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A request and its answer, whatever the status: (status, body, headers by name).
    pub(crate) fn send(
        &self,
        request: ureq::Request,
        body: Option<&str>,
    ) -> (u16, String, Headers) {
        let response = match body {
            Some(body) => request.send_string(body),
            None => request.call(),
        };
        let response = match response {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("no answer: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_owned();
                Some((name, value))
            })
            .collect();
        (status, response.into_string().unwrap(), headers)
    }

    pub(crate) fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value, Headers) {
        let request = ureq::post(&self.url(path)).set("Content-Type", "application/json");
        let (status, text, headers) = self.send(request, Some(body));
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, json, headers)
    }

    fn get(&self, path: &str) -> (u16, String) {
        let (status, text, _) = self.send(ureq::get(&self.url(path)), None);
        (status, text)
    }

    /// The metrics, parsed.
    pub(crate) fn metrics(&self) -> Metrics {
        let (status, text) = self.get("/metrics");
        assert_eq!(status, 200);
        Metrics::parse(&text)
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status and everything it wrote on standard error.
    fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        let status = wait(&mut self.child, Duration::from_secs(30));
        // The reader thread passes the last lines on.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }

    /// How it exited, if it has.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) type Headers = HashMap<String, String>;

fn wait(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Prometheus text exposition, checked line by line and read into `series -> value`.
pub(crate) struct Metrics(HashMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut values = HashMap::new();
        let mut typed = Vec::new();
        assert!(text.trim_end().ends_with("# EOF"), "no `# EOF`: {text}");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split(' ');
                typed.push(words.next().unwrap().to_owned());
                let kind = words.next().unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line}"
            );
            assert!(
                typed.iter().any(|family| name.starts_with(family.as_str())),
                "{name} has no # TYPE line"
            );
            if let Some(labels) = series.strip_prefix(name) {
                if !labels.is_empty() {
                    assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                    for pair in labels[1..labels.len() - 1].split("\",") {
                        let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        assert!(!key.is_empty() && value.starts_with('"'), "{line}");
                    }
                }
            }
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(
                values.insert(series.to_owned(), value).is_none(),
                "{series} twice"
            );
        }
        Metrics(values)
    }

    /// The value of one series, 0 when absent.
    pub(crate) fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

/// The `faulty` and `counter` fixtures with `serve` settings.
fn sandbox(serve: &str, faulty: &str) -> Sandbox {
    Sandbox::new(&format!(
        r#"
{EVENTS}
[serve]
{serve}

[[plugins]]
name = "counter"
[[plugins]]
name = "faulty"
config = {{ {faulty} }}
"#
    ))
}

#[test]
fn every_route_answers_as_documented() {
    let s = sandbox("max_body_bytes = 1024", "fail_modulo = 3");
    let server = Server::start(&s, &[]);

    // An event whose callbacks succeed: 200, every outcome, the caller's id echoed.
    let request = ureq::post(&server.url("/events/job")).set("X-Request-Id", "signup-7");
    let (status, text, headers) = server.send(request, Some(r#"{"n": 1}"#));
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["id"], "signup-7");
    assert_eq!(
        headers.get("x-request-id").map(String::as_str),
        Some("signup-7")
    );
    assert_eq!(body["generation"], 1);
    let called: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(called, ["counter", "faulty"]);

    // A failing callback: 500, with the failure among the outcomes.
    let (status, body, _) = server.post("/events/job", r#"{"n": 3}"#);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(
        body["results"][1]["error"]["message"],
        "job 3 failed on purpose"
    );

    // Undeclared event: 404 with the closest name.
    let (status, body, _) = server.post("/events/jobs", "{}");
    assert_eq!(status, 404);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("did you mean `job`?"), "{message}");

    // Bad JSON, not an object, wrong and missing arguments: 400 with what to do.
    let (status, body, _) = server.post("/events/job", r#"{"n": "#);
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (400, Some("emit.bad_json"))
    );
    let (status, body, _) = server.post("/events/job", "[1]");
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (400, Some("emit.not_an_object"))
    );
    let (status, body, _) = server.post("/events/job", r#"{"n": "one"}"#);
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "argument `n` of event `job`: expected int, got a string"
    );
    let (status, body, _) = server.post("/events/job", r#"{"n": 1, "n": 2}"#);
    assert_eq!(status, 400, "a key given twice is refused: {body}");
    let (status, _, _) = server.post("/events/job", "{}");
    assert_eq!(status, 400);

    // Over the body limit: 413, declared or not.
    let big = format!(r#"{{"n": 1, "pad": "{}"}}"#, "x".repeat(2000));
    let (status, body, _) = server.post("/events/job", &big);
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1024 bytes"));

    // Health, readiness, unknown routes, wrong methods.
    assert_eq!(server.get("/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(server.get("/readyz"), (200, "ready\n".to_owned()));
    assert_eq!(server.get("/nope").0, 404);
    assert_eq!(server.get("/events/job").0, 405);

    // The status page names the plugins, the event's callbacks and the failure.
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    for needle in [
        "counter",
        "faulty",
        "counter.count",
        "job 3 failed on purpose",
    ] {
        assert!(page.contains(needle), "the page lacks {needle}");
    }

    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn metrics_count_exactly_the_requests_made() {
    let s = sandbox("", "fail_modulo = 4, panic_modulo = 10");
    let server = Server::start(&s, &[]);
    // Before any event: every callback already has its series, at zero.
    let before = server.metrics();
    assert_eq!(
        before.get(r#"switchboard_callback_calls_total{plugin="faulty",callback="job"}"#),
        0.0
    );
    assert_eq!(before.get("switchboard_generation"), 1.0);

    let (mut ok, mut failed) = (0, 0);
    for n in 1..=40 {
        let (status, _, _) = server.post("/events/job", &format!(r#"{{"n": {n}}}"#));
        match status {
            200 => ok += 1,
            500 => failed += 1,
            other => panic!("status {other}"),
        }
    }
    server.post("/events/job", r#"{"n": "bad"}"#);
    server.post("/events/nope", "{}");
    // 10, 20, 30 and 40 panic; the other multiples of 4 fail.
    assert_eq!((ok, failed), (28, 12));

    let m = server.metrics();
    let series = |name: &str, labels: &str| m.get(&format!("switchboard_{name}{{{labels}}}"));
    assert_eq!(series("events_received_total", r#"event="job""#), 41.0);
    assert_eq!(series("events_dispatched_total", r#"event="job""#), 40.0);
    assert_eq!(
        series(
            "events_refused_total",
            r#"event="job",reason="bad_arguments""#
        ),
        1.0
    );
    assert_eq!(
        series("callback_calls_total", r#"plugin="faulty",callback="job""#),
        40.0
    );
    assert_eq!(
        series(
            "callback_calls_total",
            r#"plugin="counter",callback="count""#
        ),
        40.0
    );
    assert_eq!(
        series(
            "callback_failures_total",
            r#"plugin="faulty",callback="job",kind="panic""#
        ),
        4.0
    );
    assert_eq!(
        series(
            "callback_failures_total",
            r#"plugin="faulty",callback="job",kind="error""#
        ),
        8.0
    );
    // Every failure was reported to `plugin.failed`, whose callbacks are counted too.
    assert_eq!(
        series(
            "callback_calls_total",
            r#"plugin="counter",callback="failure_reported""#
        ),
        12.0
    );
    assert_eq!(
        series(
            "callback_duration_seconds_count",
            r#"plugin="faulty",callback="job""#
        ),
        40.0
    );
    assert_eq!(series("plugin_state", r#"plugin="faulty",state="on""#), 1.0);
    assert_eq!(
        series(
            "http_requests_total",
            r#"route="/events/{event}",status="404""#
        ),
        1.0
    );
    assert_eq!(m.get("switchboard_queue_depth"), 0.0);
    assert!(m.get("switchboard_queue_capacity") >= 1.0);
    server.stop();
}

#[test]
fn run_writes_the_same_counters_on_exit() {
    let s = sandbox("", "fail_modulo = 5");
    let input: String = (1..=20).map(|n| crate::util::job(n) + "\n").collect();
    let run = s.run_with_stdin(&["run", "--metrics", "metrics.txt"], input);
    assert_eq!(run.code(), 1, "two jobs fail: {}", run.stderr());
    let m = Metrics::parse(&std::fs::read_to_string(s.path("metrics.txt")).unwrap());
    assert_eq!(
        m.get(r#"switchboard_events_dispatched_total{event="job"}"#),
        20.0
    );
    assert_eq!(
        m.get(r#"switchboard_callback_calls_total{plugin="faulty",callback="job"}"#),
        20.0
    );
    assert_eq!(
        m.get(
            r#"switchboard_callback_failures_total{plugin="faulty",callback="job",kind="error"}"#
        ),
        4.0
    );
    // The failures' reports are counted as they happen (nested in the failing events).
    assert_eq!(
        m.get(r#"switchboard_events_dispatched_total{event="plugin.failed"}"#),
        4.0
    );
}

/// `run --metrics` counts what the service did with each declared event, refusals
/// included, and makes no series for an event that is not declared.
#[test]
fn run_metrics_count_what_the_service_received_and_refused() {
    let s = sandbox("", "");
    let input = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        crate::util::job(1),
        r#"{"event": "job", "args": {"n": "bad"}}"#,
        crate::util::job(2),
        r#"{"event": "nope", "args": {}}"#,
        crate::util::job(3),
    );
    let run = s.run_with_stdin(&["run", "--metrics", "metrics.txt"], input);
    assert_ne!(run.code(), 0, "two lines are refused: {}", run.stderr());
    let text = std::fs::read_to_string(s.path("metrics.txt")).unwrap();
    let m = Metrics::parse(&text);
    assert_eq!(
        m.get(r#"switchboard_events_received_total{event="job"}"#),
        4.0
    );
    assert_eq!(
        m.get(r#"switchboard_events_dispatched_total{event="job"}"#),
        3.0
    );
    assert_eq!(
        m.get(r#"switchboard_events_refused_total{event="job",reason="bad_arguments"}"#),
        1.0
    );
    assert!(!text.contains(r#"event="nope""#), "{text}");
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let s = sandbox("queue = 1\nworkers = 1", "");
    let server = Arc::new(Server::start(&s, &[]));
    let answers: Vec<(u16, Headers)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let server = Arc::clone(&server);
                scope.spawn(move || {
                    let request = ureq::post(&server.url("/events/slow"));
                    let (status, _, headers) = server.send(request, Some(r#"{"ms": 600}"#));
                    (status, headers)
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!refused.is_empty(), "{answers:?}");
    assert!(answers.iter().any(|(s, _)| *s == 200), "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 503));
    for (_, headers) in refused {
        assert_eq!(headers.get("retry-after").map(String::as_str), Some("1"));
    }
    let m = server.metrics();
    assert!(m.get(r#"switchboard_events_refused_total{event="slow",reason="queue_full"}"#) >= 1.0);
}

#[test]
fn admin_routes_need_the_token_and_never_log_it() {
    let s = sandbox("admin_token_env = \"SB_TEST_ADMIN_TOKEN\"", "");
    let server = Server::start(&s, &[("SB_TEST_ADMIN_TOKEN", "s3cret-token")]);
    let reload = |auth: Option<&str>| {
        let mut request = ureq::post(&server.url("/admin/reload"));
        if let Some(auth) = auth {
            request = request.set("Authorization", auth);
        }
        server.send(request, Some(""))
    };
    let (status, _, headers) = reload(None);
    assert_eq!(status, 401);
    assert_eq!(
        headers.get("www-authenticate").map(String::as_str),
        Some("Bearer")
    );
    assert_eq!(reload(Some("Bearer wrong-guess-123")).0, 401);
    let (status, body, _) = reload(Some("Bearer s3cret-token"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"generation\":2"), "{body}");
    // The new generation serves the next event.
    let (_, body, _) = server.post("/events/job", r#"{"n": 1}"#);
    assert_eq!(body["generation"], 2);

    // A broken manifest: 422 with the reason; the running generation goes on.
    let manifest = std::fs::read_to_string(s.manifest()).unwrap();
    std::fs::write(
        s.manifest(),
        manifest.replace("[events.job]", "[events.job"),
    )
    .unwrap();
    let (status, body, _) = reload(Some("Bearer s3cret-token"));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("events.toml"),
        "the error names the file: {body}"
    );
    let (status, body, _) = server.post("/events/job", r#"{"n": 2}"#);
    assert_eq!((status, &body["generation"]), (200, &serde_json::json!(2)));

    let (status, stderr) = server.stop();
    assert!(status.success());
    assert!(stderr.contains("wrong bearer token"), "{stderr}");
    assert!(
        !stderr.contains("wrong-guess-123"),
        "a token was logged: {stderr}"
    );
    assert!(!stderr.contains("s3cret-token"), "the token was logged");

    // Without the variable the admin routes are off.
    let s = sandbox("admin_token_env = \"SB_TEST_ADMIN_TOKEN_UNSET\"", "");
    let server = Server::start(&s, &[]);
    let request = ureq::post(&server.url("/admin/reload")).set("Authorization", "Bearer x");
    assert_eq!(server.send(request, Some("")).0, 404);
    assert!(server.stderr().contains("admin routes are off"));
}

#[test]
fn sigterm_answers_every_request_in_flight_then_shuts_plugins_down() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let s = sandbox(
        "workers = 2",
        &format!("shutdown_log = {:?}", log.path().to_str().unwrap()),
    );
    let server = Arc::new(Server::start(&s, &[]));
    let answers = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let server = Arc::clone(&server);
                scope.spawn(move || server.post("/events/slow", r#"{"ms": 500}"#).0)
            })
            .collect();
        // Every request is in: two running, four waiting in the queue.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.metrics().get("switchboard_requests_in_flight") < 6.0 {
            assert!(Instant::now() < deadline, "the requests did not arrive");
            std::thread::sleep(Duration::from_millis(10));
        }
        server.signal("TERM");
        calls
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(answers, [200; 6], "a request in flight was cut off");
    let mut server = Arc::into_inner(server).unwrap();
    let status = wait(&mut server.child, Duration::from_secs(30));
    assert!(status.success(), "{}", server.stderr());
    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap(),
        "faulty shut down\n",
        "shutdown ran once"
    );
    // Nothing listens any more.
    assert!(TcpStream::connect(&server.address).is_err());
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let s = sandbox("header_timeout_ms = 300\nbody_timeout_ms = 300", "");
    let server = Server::start(&s, &[]);

    // Headers that never end: the connection is closed after the header timeout.
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.write_all(b"POST /events/job HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "held {:?}",
        started.elapsed()
    );

    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(&server.address).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap_or(0), 0);
    assert!(started.elapsed() < Duration::from_secs(3));

    // A body that stops halfway: 408.
    let mut stalled = TcpStream::connect(&server.address).unwrap();
    stalled
        .write_all(b"POST /events/job HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"n\": ")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // The server still serves.
    assert_eq!(server.post("/events/job", r#"{"n": 1}"#).0, 200);
}

/// The status page opened in headless Chromium: it renders, and shows the plugins and a
/// failure that was provoked. Needs `chromium` (`.ci/run` installs it); skipped without it
/// unless `CI` is set.
#[test]
fn the_status_page_renders_in_a_real_browser() {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium");
        eprintln!("skipped: no chromium on this machine");
        return;
    };
    let s = sandbox("", "fail_modulo = 1");
    let server = Server::start(&s, &[]);
    server.post("/events/job", r#"{"n": 5}"#);
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(server.url("/"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("<h1>switchboard</h1>"), "{dom}");
    for needle in [
        "counter",
        "faulty",
        "Recent failures",
        "job 5 failed on purpose",
    ] {
        assert!(
            dom.contains(needle),
            "the rendered page lacks {needle}: {dom}"
        );
    }
}

/// 100,000 sign-ups at 64 concurrent connections against the default manifest: no error,
/// exactly 100,000 rows, and the metrics say the same.
#[test]
fn a_hundred_thousand_sign_ups_at_64_connections() {
    const SIGN_UPS: usize = 100_000;
    const CONNECTIONS: usize = 64;
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events.toml"),
    )
    .unwrap();
    // The sandbox sets its own plugin folder.
    let body: String = manifest
        .lines()
        .filter(|l| l.trim() != "[host]" && !l.starts_with("plugin_dir"))
        .collect::<Vec<_>>()
        .join("\n");
    let s = Sandbox::new(&body);
    let server = Arc::new(Server::start(&s, &[]));
    let started = Instant::now();
    let errors: usize = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let server = Arc::clone(&server);
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(30))
                        .max_idle_connections_per_host(1)
                        .build();
                    let url = server.url("/events/user_joined");
                    let mut errors = 0;
                    for n in (c..SIGN_UPS).step_by(CONNECTIONS) {
                        let body =
                            format!(r#"{{"name": "user{n}", "email": "user{n}@example.com"}}"#);
                        match agent.post(&url).send_string(&body) {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.into_string();
                            }
                            _ => errors += 1,
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(600),
                            "the load test is over its time bound"
                        );
                    }
                    errors
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).sum()
    });
    assert_eq!(errors, 0);
    let m = server.metrics();
    let sent = SIGN_UPS as f64;
    assert_eq!(
        m.get(r#"switchboard_events_received_total{event="user_joined"}"#),
        sent
    );
    assert_eq!(
        m.get(r#"switchboard_events_dispatched_total{event="user_joined"}"#),
        sent
    );
    assert_eq!(
        m.get(r#"switchboard_callback_calls_total{plugin="database",callback="add_user"}"#),
        sent
    );
    assert_eq!(
        m.get(r#"switchboard_http_requests_total{route="/events/{event}",status="200"}"#),
        sent
    );
    let server = Arc::into_inner(server).unwrap();
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let conn = rusqlite::Connection::open(s.path("users.db")).unwrap();
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT email) FROM users",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct), (SIGN_UPS as i64, SIGN_UPS as i64));
}

/// Issue 22: a drain that gives up still answers every accepted request (a 503 that says
/// why), and the exit code says the drain gave up.
#[test]
fn a_drain_that_gives_up_answers_every_request_and_says_so() {
    let s = sandbox("workers = 2\ndrain_timeout_ms = 2000", "");
    let server = Arc::new(Server::start(&s, &[]));
    let answers = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..12)
            .map(|_| {
                let server = Arc::clone(&server);
                scope.spawn(move || {
                    let (status, body, _) = server.post("/events/slow", r#"{"ms": 1500}"#);
                    (status, body)
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.metrics().get("switchboard_requests_in_flight") < 12.0 {
            assert!(Instant::now() < deadline, "the requests did not arrive");
            std::thread::sleep(Duration::from_millis(10));
        }
        server.signal("TERM");
        calls
            .into_iter()
            .map(|c| c.join().expect("every request gets an HTTP answer"))
            .collect::<Vec<_>>()
    });
    let ok = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 503)
        .collect();
    assert_eq!(ok + refused.len(), 12, "{answers:?}");
    // 2 s of drain at 2 workers x 1.5 s: some finish, the rest cannot.
    assert!(ok >= 2 && !refused.is_empty(), "{answers:?}");
    for (_, body) in &refused {
        assert_eq!(body["error"]["kind"], "http.abandoned", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("drain timeout"), "{message}");
    }
    let mut server = Arc::into_inner(server).unwrap();
    let status = wait(&mut server.child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(128 + 15), "{}", server.stderr());
    assert!(
        server.stderr().contains("answered with 503"),
        "{}",
        server.stderr()
    );
}

/// Issue 22: an answer given before the request's body was read (an undeclared event, a
/// wrong token) says `Connection: close`, so that a client reusing connections does not
/// send its next request into a closed one; a normal answer keeps the connection.
#[test]
fn an_early_answer_closes_the_connection_and_says_so() {
    let s = sandbox("admin_token_env = \"TEST_ADMIN_TOKEN\"", "");
    let server = Server::start(&s, &[("TEST_ADMIN_TOKEN", "s3cret")]);
    let exchange = |head: &str, body: &str| -> String {
        let mut stream = TcpStream::connect(&server.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The body arrives in a second packet, after the server may have answered.
        stream.write_all(head.as_bytes()).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let _ = stream.write_all(body.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_lowercase()
    };
    let body = r#"{"name": "Ann"}"#;
    // An undeclared event, a wrong token, and an event name that is not UTF-8 once
    // percent-decoded (refused before the route runs).
    for (path, status) in [
        ("/events/nope", "404"),
        ("/admin/reload", "401"),
        ("/events/%FF", "400"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer wrong\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let answer = exchange(&head, body);
        assert!(
            answer.starts_with(&format!("http/1.1 {status}")),
            "{path}: {answer}"
        );
        assert!(answer.contains("connection: close"), "{path}: {answer}");
        assert!(
            answer.contains("\"kind\":"),
            "{path}: not a JSON error: {answer}"
        );
    }
    // A request whose body was read keeps its connection: two on one.
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = "POST /events/stats HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        stream.write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let lower = line.to_lowercase();
            assert!(!lower.starts_with("connection: close"), "{line}");
            if let Some(n) = lower.strip_prefix("content-length:") {
                length = n.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
    }
}

/// Issue 22: with the common soft limit of 1,024 open files, serve raises it to the hard
/// limit at start, so 2,000 idle connections do not keep a normal request from an answer.
#[cfg(target_os = "linux")]
#[test]
fn idle_connections_past_the_soft_file_limit_leave_room_for_requests() {
    let s = sandbox("", "");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -S -n 1024 && exec \"$0\" --manifest \"$1\" serve --listen 127.0.0.1:0")
        .arg(binary())
        .arg(s.manifest())
        .current_dir(s.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    let mut line = String::new();
    while address.is_none() && err.read_line(&mut line).unwrap() > 0 {
        address = line
            .split("serving on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        line.clear();
    }
    let address = address.expect("serve says where it listens");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let answer = ureq::post(&format!("http://{address}/events/stats"))
        .timeout(Duration::from_secs(10))
        .send_string("{}");
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer.map(|r| r.status()).ok(), Some(200));
}

/// The calls, failures and skips one plugin's row of the status page shows.
fn status_row(page: &str, plugin: &str) -> (f64, f64, f64) {
    let numbers = row_numbers(page, &format!("<tr><td><b>{plugin}</b>"));
    assert!(numbers.len() >= 3, "{numbers:?}");
    (numbers[0], numbers[1], numbers[2])
}

/// The numbers in the right-aligned cells of the status page's row that starts `start`.
fn row_numbers(page: &str, start: &str) -> Vec<f64> {
    let row = page
        .lines()
        .find(|line| line.starts_with(start))
        .unwrap_or_else(|| panic!("no row starting {start}: {page}"));
    row.split("<td class=\"n\">")
        .skip(1)
        .filter_map(|cell| cell.split('<').next()?.parse().ok())
        .collect()
}

/// `/metrics` and the status page count the same calls of every plugin, after successes,
/// errors, panics, a crash, a timeout and skipped calls: they read one set of counts.
#[test]
fn the_metrics_and_the_status_page_agree_after_every_kind_of_outcome() {
    let s = Sandbox::new(&format!(
        r#"
{EVENTS}
[serve]
workers = 2

[[plugins]]
name = "counter"
[[plugins]]
name = "faulty"
isolation = "process"
timeout_ms = 500
breaker = {{ failures = 4, window_ms = 60000, cooldown_ms = 60000 }}
config = {{ fail_modulo = 3, panic_modulo = 5 }}
"#
    ));
    let server = Server::start(&s, &[]);
    // A crash and a timeout first (the breaker counts them), then jobs: an error at 3, a
    // panic at 5, and the breaker switches the plugin off for the rest.
    assert_eq!(server.post("/events/segfault", "{}").0, 500);
    assert_eq!(server.post("/events/hang", "{}").0, 500);
    for n in 1..=12 {
        server.post("/events/job", &format!(r#"{{"n": {n}}}"#));
    }
    let metrics = server.metrics();
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    let sum = |family: &str, plugin: &str, kind: Option<&str>| -> f64 {
        let prefix = format!("switchboard_{family}{{plugin=\"{plugin}\",");
        metrics
            .0
            .iter()
            .filter(|(series, _)| series.starts_with(&prefix))
            .filter(|(series, _)| match kind {
                Some(kind) => series.ends_with(&format!("kind=\"{kind}\"}}")),
                None => !series.ends_with("kind=\"skipped\"}"),
            })
            .map(|(_, value)| value)
            .sum()
    };
    for plugin in ["counter", "faulty"] {
        let from_metrics = (
            sum("callback_calls_total", plugin, None),
            sum("callback_failures_total", plugin, None),
            sum("callback_failures_total", plugin, Some("skipped")),
        );
        assert_eq!(status_row(&page, plugin), from_metrics, "{plugin}");
    }
    // Every kind happened, so the agreement above covers each.
    for kind in ["error", "panic", "crashed", "timed_out", "skipped"] {
        assert!(
            sum("callback_failures_total", "faulty", Some(kind)) >= 1.0,
            "no {kind} counted"
        );
    }
    // Every job reached the counter, and so did what the host emitted itself (its start,
    // the failure reports), which an observer set after the start used to miss.
    assert!(sum("callback_calls_total", "counter", None) > 12.0);
    // The events' counts are the service's, on both.
    assert_eq!(server.post("/events/job", r#"{"n": "bad"}"#).0, 400);
    let metrics = server.metrics();
    let (_, page) = server.get("/");
    let refused = |reason: &str| {
        metrics.get(&format!(
            r#"switchboard_events_refused_total{{event="job",reason="{reason}"}}"#
        ))
    };
    let from_metrics = (
        metrics.get(r#"switchboard_events_received_total{event="job"}"#),
        metrics.get(r#"switchboard_events_forwarded_total{event="job"}"#),
        ["bad_arguments", "unreadable", "queue_full", "stopping"]
            .map(refused)
            .iter()
            .sum(),
    );
    assert_eq!(from_metrics, (13.0, 0.0, 1.0));
    assert_eq!(event_row(&page, "job"), from_metrics);
    server.stop();
}

/// The received, forwarded and refused counts of `event`'s row on the status page.
fn event_row(page: &str, event: &str) -> (f64, f64, f64) {
    let numbers = row_numbers(page, &format!("<tr><td><code>{event}</code>"));
    assert_eq!(numbers.len(), 3, "{numbers:?}");
    (numbers[0], numbers[1], numbers[2])
}
