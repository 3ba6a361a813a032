//! Publishing events to NATS JetStream, with a real `nats-server -js` on free loopback
//! ports and a temporary store, started by each test (`.ci/run` installs Debian's
//! `nats-server`; without it the tests are skipped, unless `CI` is set).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{eventually, spawn_run, Sandbox};

/// A running `nats-server` with JetStream.
pub(crate) struct NatsServer {
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

/// A port of 127.0.0.1 that refuses connections for as long as the socket lives: bound,
/// never listening, so that no other process can start listening there meanwhile (a port
/// found free and let go could be taken before the test connects).
fn refusing_port() -> (socket2::Socket, u16) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&any.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    (socket, port)
}

impl NatsServer {
    /// A new server, or `None` (the test is skipped) where nats-server is not installed.
    pub(crate) fn start() -> Option<NatsServer> {
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
        // A free port may be taken by another test between the look and nats-server's
        // bind (or the two looks may find one port): the server then exits, and is
        // started again on other ports.
        let mut failures = Vec::new();
        for _ in 0..5 {
            let (port, monitor) = (free_port(), free_port());
            if port == monitor {
                continue;
            }
            match NatsServer::spawn(port, monitor, store.path()) {
                Ok(child) => {
                    return Some(NatsServer {
                        child,
                        port,
                        monitor,
                        store,
                    })
                }
                Err(why) => failures.push(why),
            }
        }
        panic!("nats-server did not start: {}", failures.join("\n"));
    }

    /// Starts nats-server on `port` and `monitor` with its store in `store` (its log there
    /// too, `nats-server.log`), and waits up to 30 s for its monitoring port; or why it
    /// did not start, with the end of its log.
    fn spawn(port: u16, monitor: u16, store: &std::path::Path) -> Result<Child, String> {
        let log_path = store.join("nats-server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let said = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(10)..].join("\n")
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "it exited ({status}) on ports {port} and {monitor}:\n{}",
                    said()
                ));
            }
            if TcpStream::connect(("127.0.0.1", monitor)).is_ok() {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not listening within 30 s:\n{}", said()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM: it writes its store) and starts it again on the same
    /// port and store after `pause`.
    pub(crate) fn restart(&mut self, pause: Duration) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(pause);
        self.child = NatsServer::spawn(self.port, self.monitor, self.store.path())
            .unwrap_or_else(|why| panic!("nats-server did not start again: {why}"));
    }

    /// The streams the server's monitoring endpoint describes, asked with `query`
    /// (`streams=1`, `consumers=1`).
    fn streams(&self, query: &str) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/jsz?{query}", self.monitor);
        let jsz: serde_json::Value =
            serde_json::from_str(&ureq::get(&url).call().unwrap().into_string().unwrap()).unwrap();
        jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
            .cloned()
            .collect()
    }

    /// How many messages the stream holds.
    fn messages(&self, stream: &str) -> u64 {
        self.streams("streams=1")
            .iter()
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
/// Publishes `name`'s sign-up (email `<name in lowercase>@example.com`) through `emit`
/// from the publishing host `p`, with the id `id`.
pub(crate) fn emit_sign_up(p: &Sandbox, name: &str, id: &str) {
    let email = format!("email={}@example.com", name.to_lowercase());
    p.run(&[
        "emit",
        "user_joined",
        &format!("name={name}"),
        &email,
        "--id",
        id,
    ])
    .assert_code(0);
}

pub(crate) fn publishing(url: &str) -> Sandbox {
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

pub(crate) fn sign_ups(count: usize) -> String {
    sign_ups_numbered(0..count)
}

/// The `run` lines of the sign-ups numbered `numbers`, each with its id `signup-<n>`.
pub(crate) fn sign_ups_numbered(numbers: std::ops::Range<usize>) -> String {
    numbers
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
    let (_held, port) = refusing_port();
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
    // Both publishes were stored (the second as a duplicate); the refused one was not.
    let metrics = http.metrics();
    assert_eq!(
        metrics.get(r#"switchboard_nats_messages_total{event="user_joined",crossing="published"}"#),
        2.0
    );
    let events = |name: &str| metrics.get(&format!("switchboard_events_{name}"));
    assert_eq!(events(r#"received_total{event="user_joined"}"#), 3.0);
    assert_eq!(events(r#"forwarded_total{event="user_joined"}"#), 2.0);
    assert_eq!(
        events(r#"refused_total{event="user_joined",reason="bad_arguments"}"#),
        1.0
    );
}

// ---- Consuming ----

impl NatsServer {
    /// The server's view of a durable consumer (`num_pending`, `num_ack_pending`, ...).
    pub(crate) fn consumer(&self, name: &str) -> serde_json::Value {
        self.streams("consumers=1")
            .iter()
            .flat_map(|s| s["consumer_detail"].as_array().into_iter().flatten())
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    /// Whether the consumer has nothing left: no message undelivered or unacknowledged.
    pub(crate) fn drained(&self, consumer: &str) -> bool {
        let c = self.consumer(consumer);
        c["num_pending"] == 0 && c["num_ack_pending"] == 0
    }

    /// Publishes `payload` to `subject` as a client outside switchboard would (no id, no
    /// checks), and waits for the stream to store it.
    pub(crate) fn publish_raw(&self, subject: &str, payload: &[u8]) {
        let (url, subject, payload) = (self.url(), subject.to_owned(), payload.to_vec());
        outside(async move {
            let client = async_nats::connect(url).await.unwrap();
            let jetstream = async_nats::jetstream::new(client);
            jetstream
                .publish(subject, payload.into())
                .await
                .unwrap()
                .await
                .unwrap();
        });
    }

    /// Every message in the dead-letter subjects of `stream` (prefix `switchboard`): its
    /// headers and body.
    pub(crate) fn dead_letters(
        &self,
        stream: &str,
    ) -> Vec<(std::collections::HashMap<String, String>, String)> {
        use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
        use futures_util::StreamExt;
        let (url, stream) = (self.url(), stream.to_owned());
        outside(async move {
            let client = async_nats::connect(url).await.unwrap();
            let jetstream = async_nats::jetstream::new(client);
            let stream = jetstream.get_stream(stream).await.unwrap();
            let reader = stream
                .create_consumer(pull::Config {
                    filter_subject: "switchboard.dead-letter.>".to_owned(),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::None,
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut letters = Vec::new();
            let mut batch = reader
                .fetch()
                .max_messages(10_000)
                .messages()
                .await
                .unwrap();
            while let Some(Ok(message)) = batch.next().await {
                let headers = message
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .map(|(name, values)| (name.to_string(), values[0].to_string()))
                    .collect();
                letters.push((
                    headers,
                    String::from_utf8_lossy(&message.payload).into_owned(),
                ));
            }
            letters
        })
    }
}

/// Runs `work` on a runtime of its own: the test's client, outside switchboard.
pub(crate) fn outside<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// A host that consumes `events` (declared in `declarations`) from `url` with `plugins`.
pub(crate) fn consuming(url: &str, declarations: &str, events: &str, plugins: &str) -> Sandbox {
    Sandbox::new(&format!(
        r#"
{declarations}
[serve]
workers = 2
[nats]
url = "{url}"
stream = "SIGNUPS"
consume = [{events}]
consumer = "c"
ack_wait_ms = 1500
max_deliveries = 3
redeliver_after_ms = 100
{plugins}
"#
    ))
}

pub(crate) const SIGN_UP_EVENTS: &str = r#"
[events.user_joined]
args = { name = "string", email = "string" }
on_error = "stop"
[events.user_lookup]
args = { email = "string" }
result = "first"
"#;

/// A host that consumes sign-ups into its database.
fn consuming_sign_ups(url: &str) -> Sandbox {
    consuming(
        url,
        SIGN_UP_EVENTS,
        r#""user_joined""#,
        "[[plugins]]\nname = \"database\"\nconfig = { path = \"users.db\" }\n",
    )
}

/// Waits up to `within` for `done`, saying what it waited for when it gives up.
pub(crate) fn wait_for(within: Duration, what: &str, done: impl FnMut() -> bool) {
    assert!(eventually(within, done), "timed out waiting for {what}");
}

/// Waits up to `within` for `done`; when it gives up, shows what `log` says (the host's
/// stderr), since a timeout alone does not say why.
pub(crate) fn wait_for_or_show(
    within: Duration,
    what: &str,
    done: impl FnMut() -> bool,
    log: impl FnOnce() -> String,
) {
    if !eventually(within, done) {
        panic!("timed out waiting for {what}; the host said:\n{}", log());
    }
}

/// How many welcomes each address got, in the outbox folder `outbox`.
pub(crate) fn welcomes_in(outbox: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut mails: std::collections::HashMap<String, usize> = Default::default();
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return mails;
    };
    for entry in entries {
        let entry = entry.unwrap();
        // A message being written when a kill came stays under its hidden name.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let to = text
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or_else(|| panic!("a welcome cut short: {text}"));
        // `To: name <address>` or `To: address`.
        let to = to
            .rsplit_once('<')
            .map_or(to, |(_, rest)| rest.trim_end_matches('>'))
            .to_owned();
        *mails.entry(to).or_default() += 1;
    }
    mails
}

pub(crate) fn users_in(db: &std::path::Path) -> Vec<String> {
    let Ok(db) = rusqlite::Connection::open(db) else {
        return Vec::new();
    };
    let Ok(mut query) = db.prepare("SELECT email FROM users") else {
        return Vec::new();
    };
    let emails = query
        .query_map([], |row| row.get::<_, String>(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default();
    emails
}

/// Host P publishes 10,000 sign-ups, host C consumes them into its own database and
/// outbox; C is killed with SIGKILL midway and started again. At the end C's database
/// has every user exactly once, every user got exactly one welcome (the plugins are
/// idempotent by the event's id), and nothing went to the dead letters.
#[test]
fn a_consumer_killed_midway_ends_with_every_sign_up_stored_once() {
    const USERS: usize = 10_000;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = consuming(
        &server.url(),
        SIGN_UP_EVENTS,
        r#""user_joined""#,
        r#"
[[plugins]]
name = "database"
config = { path = "users.db" }
[[plugins]]
name = "emails"
config = { transport = "file", outbox = "outbox" }
"#,
    );
    let db = c.path("users.db");
    let first = crate::serve::Server::start(&c, &[]);
    let published = p.run_with_stdin(&["run", "--workers", "4"], sign_ups(USERS));
    published.assert_code(0);
    wait_for(Duration::from_secs(60), "a third of the users", || {
        users_in(&db).len() >= USERS / 3
    });
    drop(first); // SIGKILL, in the middle of the run
    let killed_at = users_in(&db).len();
    assert!(killed_at < USERS, "the kill came too late to test anything");
    // What C had completed (and remembered) when it was killed.
    let completed_before: Vec<String> =
        std::fs::read_to_string(c.path(".switchboard/nats/c.completed"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
    assert!(!completed_before.is_empty());

    let second = crate::serve::Server::start(&c, &[]);
    wait_for(Duration::from_secs(120), "every sign-up consumed", || {
        server.drained("c-user_joined")
    });
    drop(second);

    let users = users_in(&db);
    let distinct: std::collections::HashSet<&String> = users.iter().collect();
    assert_eq!(users.len(), USERS, "every user stored");
    assert_eq!(distinct.len(), USERS, "no user twice");
    // One welcome per address at most, and exactly one for each completed event.
    let mails = welcomes_in(&c.path("outbox"));
    assert!(mails.values().all(|&n| n == 1), "a welcome was sent twice");
    for id in &completed_before {
        let n: usize = id.strip_prefix("signup-").unwrap().parse().unwrap();
        assert_eq!(mails.get(&format!("user{n}@example.com")), Some(&1), "{id}");
    }
    // An event cut off inside its callbacks by the kill came back under its id: the
    // database answered the row it had stored and the mailer sent what it had not, so
    // nothing was given up on and every user was welcomed exactly once.
    let letters = server.dead_letters("SIGNUPS");
    assert!(letters.is_empty(), "{letters:?}");
    assert_eq!(mails.len(), USERS, "every user welcomed once");
}

#[test]
fn a_message_that_does_not_match_its_declaration_is_dead_lettered_and_consuming_goes_on() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = consuming_sign_ups(&server.url());
    let http = crate::serve::Server::start(&c, &[]);
    server.publish_raw(
        "switchboard.user_joined",
        br#"{"name": 1, "email": "x@example.com"}"#,
    );
    server.publish_raw("switchboard.user_joined", b"{not json");
    server.publish_raw("switchboard.user_joined", b"[1, 2]");
    p.run(&[
        "emit",
        "user_joined",
        "name=Ann",
        "email=ann@example.com",
        "--id",
        "ann",
    ])
    .assert_code(0);
    wait_for(Duration::from_secs(30), "the good event", || {
        users_in(&c.path("users.db")) == ["ann@example.com"]
    });
    wait_for(Duration::from_secs(30), "three dead letters", || {
        server.dead_letters("SIGNUPS").len() == 3
    });
    // Dispatched concurrently: the letters come in any order.
    let letters = server.dead_letters("SIGNUPS");
    let letter = |why: &str| {
        letters
            .iter()
            .find(|(h, _)| h["Switchboard-Reason"].contains(why))
            .unwrap_or_else(|| panic!("no letter for {why}: {letters:?}"))
    };
    let bad_arguments = letter("argument `name` of event `user_joined`: expected string");
    letter("the message is not JSON");
    // The message itself is kept as it came, with where it came from.
    assert_eq!(
        letter("not a JSON object of arguments but an array").1,
        "[1, 2]"
    );
    assert_eq!(bad_arguments.1, r#"{"name": 1, "email": "x@example.com"}"#);
    assert_eq!(
        bad_arguments.0["Switchboard-Subject"],
        "switchboard.user_joined"
    );
    assert_eq!(bad_arguments.0["Switchboard-Event"], "user_joined");
    assert_eq!(bad_arguments.0["Switchboard-Deliveries"], "1");
    let metrics = http.metrics();
    let count = |crossing: &str| {
        metrics.get(&format!(
            r#"switchboard_nats_messages_total{{event="user_joined",crossing="{crossing}"}}"#
        ))
    };
    assert_eq!(count("dead_lettered"), 3.0);
    assert_eq!(count("consumed"), 4.0);
    // The service counts the three it refused (two never reached a worker), as it counts
    // an HTTP request's refusals.
    let events = |name: &str| metrics.get(&format!("switchboard_events_{name}"));
    assert_eq!(events(r#"received_total{event="user_joined"}"#), 4.0);
    assert_eq!(
        events(r#"refused_total{event="user_joined",reason="bad_arguments"}"#),
        3.0
    );
    assert!(http
        .stderr()
        .contains("sent to switchboard.dead-letter.user_joined"));
}

/// A callback that keeps failing: delivered `max_deliveries` times, with pauses, then
/// dead-lettered with its failures; a slow callback (longer than the ack wait) is kept
/// alive by progress acknowledgements and runs once.
#[test]
fn failures_are_delivered_again_then_dead_lettered_and_slow_callbacks_run_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let c = consuming(
        &server.url(),
        crate::faults::EVENTS,
        r#""flaky", "slow""#,
        "[[plugins]]\nname = \"faulty\"\n",
    );
    let http = crate::serve::Server::start(&c, &[]);
    server.publish_raw("switchboard.flaky", br#"{"fail": true}"#);
    // Twice the ack wait (1.5 s).
    server.publish_raw("switchboard.slow", br#"{"ms": 3000}"#);
    wait_for(
        Duration::from_secs(30),
        "the failing event's dead letter",
        || !server.dead_letters("SIGNUPS").is_empty(),
    );
    wait_for(Duration::from_secs(30), "the slow event", || {
        server.drained("c-slow")
    });
    let letters = server.dead_letters("SIGNUPS");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let reason = &letters[0].0["Switchboard-Reason"];
    assert!(
        reason.contains("failed on each of 3 attempts") && reason.contains("faulty.flaky (error)"),
        "{reason}"
    );
    assert_eq!(letters[0].0["Switchboard-Deliveries"], "3");
    let metrics = http.metrics();
    let count = |event: &str, crossing: &str| {
        metrics.get(&format!(
            r#"switchboard_nats_messages_total{{event="{event}",crossing="{crossing}"}}"#
        ))
    };
    assert_eq!(count("flaky", "consumed"), 3.0);
    assert_eq!(count("flaky", "redelivered"), 2.0);
    assert_eq!(count("flaky", "dead_lettered"), 1.0);
    assert_eq!(
        count("slow", "consumed"),
        1.0,
        "the slow event was delivered again"
    );
    assert_eq!(
        metrics.get(r#"switchboard_callback_calls_total{plugin="faulty",callback="slow"}"#),
        1.0
    );
}

/// The server goes away while a host consumes; the host reconnects and goes on.
#[test]
fn consuming_goes_on_after_the_server_restarts() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = consuming_sign_ups(&server.url());
    let _http = crate::serve::Server::start(&c, &[]);
    p.run_with_stdin(&["run"], sign_ups(100)).assert_code(0);
    wait_for(Duration::from_secs(30), "the first 100 users", || {
        users_in(&c.path("users.db")).len() == 100
    });
    server.restart(Duration::from_millis(500));
    p.run_with_stdin(&["run"], sign_ups_numbered(100..200))
        .assert_code(0);
    wait_for(Duration::from_secs(60), "the next 100 users", || {
        users_in(&c.path("users.db")).len() == 200
    });
}

/// The host's durable consumer is deleted by hand while the host consumes: the host says
/// so by name, makes it again as a start would, recognizes the events it had completed
/// (delivered again from the stream's start) and consumes the new ones.
#[test]
fn a_durable_consumer_deleted_while_consuming_is_made_again() {
    consumer_deleted_by_hand(|_| {});
}

/// A durable consumer deleted while no pull of this host waits at the server (so no
/// "consumer deleted" notice reaches it, and its next pull finds no responder) is made
/// again too, not pulled from in vain until the host stops.
#[test]
fn a_durable_consumer_deleted_between_two_pulls_is_made_again() {
    consumer_deleted_by_hand(|http| {
        // Stopped, the host cannot renew its pull: the one waiting expires at the server
        // (a pull waits one second), and the deletion finds no pull to tell.
        http.signal("STOP");
        std::thread::sleep(Duration::from_millis(2500));
    });
}

/// Consumes 20 sign-ups, deletes the durable consumer (after `before_deleting` did what
/// it does to the host; a stopped host is continued after), consumes 20 more, and checks
/// that the host made the consumer again and ran each user's callbacks once.
fn consumer_deleted_by_hand(before_deleting: impl FnOnce(&crate::serve::Server)) {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = consuming_sign_ups(&server.url());
    let http = crate::serve::Server::start(&c, &[]);
    p.run_with_stdin(&["run"], sign_ups(20)).assert_code(0);
    wait_for(Duration::from_secs(30), "the first 20 users", || {
        users_in(&c.path("users.db")).len() == 20
    });
    before_deleting(&http);
    let url = server.url();
    outside(async move {
        let client = async_nats::connect(url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let stream = jetstream.get_stream("SIGNUPS").await.unwrap();
        // nats-server 2.9 may answer that it could not remove the consumer's folder (a
        // file in it still being written) when it has removed the consumer.
        if let Err(e) = stream.delete_consumer("c-user_joined").await {
            assert!(e.to_string().contains("directory not empty"), "{e}");
        }
    });
    http.signal("CONT");
    p.run_with_stdin(&["run"], sign_ups_numbered(20..40))
        .assert_code(0);
    wait_for_or_show(
        Duration::from_secs(60),
        "the next 20 users",
        || users_in(&c.path("users.db")).len() == 40,
        || http.stderr(),
    );
    wait_for(Duration::from_secs(30), "the stream drained", || {
        server.drained("c-user_joined")
    });
    let log = http.stderr();
    assert!(
        log.contains("the durable consumer `c-user_joined` of `user_joined` events was gone from stream SIGNUPS"),
        "{log}"
    );
    // The new consumer delivered the first 20 again (and the next 20 too, if the old one
    // had delivered them before it went): recognized, not run again: each user's
    // callbacks ran once.
    let metrics = http.metrics();
    let recognized = metrics.get(
        r#"switchboard_nats_messages_total{event="user_joined",crossing="already_completed_in_cache"}"#,
    );
    assert!(recognized >= 20.0, "{recognized}");
    assert_eq!(
        metrics.get(r#"switchboard_callback_calls_total{plugin="database",callback="add_user"}"#),
        40.0
    );
}

/// An event delivered again after this host completed it (its acknowledgement was lost:
/// the host was killed between the two) is recognized by its id and not run again.
#[test]
fn an_event_completed_before_a_lost_acknowledgement_is_not_run_again() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = consuming_sign_ups(&server.url());
    // What a host killed after completing `bob` (and before its ack) left behind.
    std::fs::create_dir_all(c.path(".switchboard/nats")).unwrap();
    c.write(".switchboard/nats/c.completed", "bob\n");
    for (name, id) in [("Bob", "bob"), ("Cy", "cy")] {
        emit_sign_up(&p, name, id);
    }
    let http = crate::serve::Server::start(&c, &[]);
    wait_for(Duration::from_secs(30), "both events", || {
        server.drained("c-user_joined")
    });
    assert_eq!(users_in(&c.path("users.db")), ["cy@example.com"]);
    let metrics = http.metrics();
    assert_eq!(
        metrics.get(
            r#"switchboard_nats_messages_total{event="user_joined",crossing="already_completed_in_cache"}"#
        ),
        1.0
    );
    let completed = std::fs::read_to_string(c.path(".switchboard/nats/c.completed")).unwrap();
    assert_eq!(completed, "bob\ncy\n");
}

#[test]
fn check_refuses_a_consumed_event_that_is_not_declared_and_bad_bounds() {
    let s = Sandbox::new(
        r#"
[events.user_joined]
args = { name = "string" }
[nats]
consume = ["user_joind"]
consumer = "has space"
max_deliveries = 0
"#,
    );
    let check = s.run(&["check"]);
    check.assert_code(2);
    let err = check.stderr();
    assert!(
        err.contains("`nats.consume` names `user_joind`, which the manifest does not declare"),
        "{err}"
    );
    assert!(
        err.contains("`nats.consumer` must be 1 to 64 letters"),
        "{err}"
    );
    assert!(
        err.contains("`nats.max_deliveries` must be from 1 to 1000 (it is 0)"),
        "{err}"
    );
    assert!(err.contains("events.toml:"), "errors name the line: {err}");
}

/// Ids travel in a header line: one with a line break (which would forge headers) or too
/// long is refused with the reason, and nothing is published.
#[test]
fn an_id_that_cannot_travel_in_a_header_is_refused() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let s = publishing(&server.url());
    let long = "x".repeat(300);
    let input = format!(
        "{{\"event\": \"user_joined\", \"args\": {{\"name\": \"a\", \"email\": \"a@example.com\"}}, \"id\": \"a\\r\\nNats-Msg-Id: b\"}}\n{{\"event\": \"user_joined\", \"args\": {{\"name\": \"a\", \"email\": \"a@example.com\"}}, \"id\": \"{long}\"}}\n"
    );
    let run = s.run_with_stdin(&["run", "--ordered"], input);
    run.assert_code(1);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    let error = |n: usize| lines[n]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error(0).contains("holds a space or a control character"),
        "{}",
        lines[0]
    );
    assert!(error(1).contains("it is too long"), "{}", lines[1]);
    assert_eq!(server.messages("SIGNUPS"), 0);
}

/// A run whose lines mix published and local events: the published ones go out together
/// (their acknowledgements awaited at once), the local ones reach the plugins, and every
/// line keeps its own result, in order.
#[test]
fn a_run_mixing_published_and_local_events_answers_each_line() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let s = Sandbox::with_probe(&format!(
        r#"
[events.user_joined]
args = {{ name = "string", email = "string" }}
[nats]
url = "{}"
stream = "SIGNUPS"
publish = ["user_joined"]
[[plugins]]
name = "probe"
config = {{ label = "p" }}
"#,
        server.url()
    ));
    let input: String = (0..1_000)
        .map(|n| match n % 3 {
            0 => "{\"event\": \"ping\"}\n".to_owned(),
            1 => format!("{{\"event\": \"user_joined\", \"args\": {{\"name\": \"u{n}\", \"email\": \"u{n}@example.com\"}}, \"id\": \"mix-{n}\"}}\n"),
            _ => "{\"event\": \"user_joined\", \"args\": {\"name\": 1}}\n".to_owned(),
        })
        .collect();
    let run = s.run_with_stdin(&["run", "--ordered", "--workers", "2"], input);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1_000, "{}", run.stderr());
    run.assert_code(2); // the bad lines
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], n as u64 + 1, "{line}");
        match n % 3 {
            0 => assert_eq!(line["results"][1]["value"], "p.ping", "{line}"),
            1 => {
                assert_eq!(line["id"], format!("mix-{n}"), "{line}");
                assert!(line["published"]["seq"].as_u64().unwrap() >= 1, "{line}");
            }
            _ => assert!(
                line["error"].as_str().unwrap().contains("argument `name`"),
                "{line}"
            ),
        }
    }
    assert_eq!(server.messages("SIGNUPS"), 333);
}

/// `list` says which events go to NATS and which come from it (it needs no server).
#[test]
fn list_shows_what_crosses_to_and_from_nats() {
    let s = Sandbox::new(
        r#"
[events.user_joined]
args = { name = "string", email = "string" }
[events.user_left]
args = { email = "string" }
[events.audit]
[nats]
stream = "SIGNUPS"
publish = ["user_joined"]
consume = ["user_left"]
consumer = "c"
"#,
    );
    let list = s.run(&["list"]);
    list.assert_code(0);
    let out = list.stdout();
    assert!(
        out.contains("published to NATS stream SIGNUPS as switchboard.user_joined"),
        "{out}"
    );
    assert!(out.contains("consumed from NATS stream SIGNUPS (switchboard.user_left) by run and serve, as durable consumer c-user_left"), "{out}");
    let json = s.run(&["--format", "json", "list"]).json();
    let events = json["events"].as_array().unwrap();
    let audit = events.iter().find(|e| e["name"] == "audit").unwrap();
    assert_eq!(audit["nats"]["published"], false);
    assert_eq!(audit["nats"]["consumed"], false);
}

/// Issue 22: an event larger than the server takes fails at once, naming both sizes, and
/// an id with control characters is shown escaped, never raw (it would split the error
/// across lines of an operator's terminal).
#[test]
fn an_event_past_max_payload_fails_at_once_and_ids_are_shown_escaped() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let s = publishing(&server.url());
    let big = "x".repeat(2 << 20); // the server's default max_payload is 1 MiB
    let input = format!(
        "{{\"event\": \"user_joined\", \"args\": {{\"name\": \"{big}\", \"email\": \"a@example.com\"}}, \"id\": \"big\"}}\n"
    );
    let started = Instant::now();
    let run = s.run_with_stdin(&["run"], input);
    // publish_timeout_ms is 15 s: failing at once is well under it.
    assert!(started.elapsed() < Duration::from_secs(10));
    let line = &run.json_lines()[0];
    let error = line["error"].as_str().unwrap_or_default();
    assert!(error.contains("max_payload"), "{line}");
    assert!(error.contains("1048576 bytes"), "{line}");
    assert_eq!(server.messages("SIGNUPS"), 0);

    let run = s.run(&[
        "emit",
        "user_joined",
        "name=a",
        "email=a@example.com",
        "--id",
        "a\r\nb",
    ]);
    run.assert_code(2);
    let stderr = run.stderr();
    assert!(stderr.contains("a\\r\\nb"), "{stderr}");
    assert!(!stderr.contains("a\r\nb"), "{stderr}");
}

/// Issue 22: when the completed-ids file cannot be written (a file-size limit reached), the
/// host says so once, naming the file, instead of once per event, and goes on consuming.
#[test]
fn a_completed_ids_file_that_cannot_be_written_is_said_once_by_name() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    // The local file alone (a ledger's host needs to keep its id, and would not start).
    let c = consuming(
        &server.url(),
        SIGN_UP_EVENTS,
        r#""user_joined""#,
        "ledger = false\n",
    );
    // Every write to a file fails with EFBIG (SIGXFSZ ignored, as it stays across exec).
    let mut host = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" --manifest \"$1\" serve --listen 127.0.0.1:0")
        .arg(crate::util::binary())
        .arg(c.manifest())
        .current_dir(c.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = crate::faults::drain_stderr(&mut host);
    p.run_with_stdin(&["run"], sign_ups(50)).assert_code(0);
    wait_for(Duration::from_secs(30), "the sign-ups consumed", || {
        server.drained("c-user_joined")
    });
    let _ = Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status();
    host.wait().unwrap();
    let stderr = stderr.join().unwrap();
    let said = stderr.matches("cannot record completed events in").count();
    assert_eq!(said, 1, "{stderr}");
    assert!(stderr.contains("c.completed"), "{stderr}");
}

/// A running `run`'s standard output and error, read on threads as they come (so that a
/// full pipe never holds the run up), and its exit, after SIGTERM or SIGINT.
struct Consuming {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Consuming {
    fn start(s: &Sandbox, args: &[&str], input: Vec<String>) -> Consuming {
        let mut child = crate::util::spawn_run(s, args);
        crate::util::feed(&mut child, input.into_iter(), false);
        let read = |mut from: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = from.read_to_string(&mut text);
                text
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        Consuming {
            child,
            stdout,
            stderr,
        }
    }

    /// Sends `signal` and waits for the exit: its code, stdout, stderr and the summary.
    fn stop(mut self, signal: &str) -> (Option<i32>, String, String, serde_json::Value) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        let (stdout, stderr) = (self.stdout.join().unwrap(), self.stderr.join().unwrap());
        let summary = stderr
            .lines()
            .find(|l| l.starts_with(r#"{"summary""#))
            .map(|l| serde_json::from_str(l).unwrap())
            .unwrap_or_else(|| panic!("no summary: {stderr}"));
        (status.code(), stdout, stderr, summary)
    }
}

/// `run` consumes too: the consumed sign-ups are stored beside the input's lookups, the
/// end of the input leaves it consuming, and SIGTERM ends it with every consumed event
/// acknowledged and exit 0.
#[test]
fn run_consumes_beside_its_input_until_a_signal() {
    const USERS: usize = 2_000;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = consuming_sign_ups(&server.url());
    let db = c.path("users.db");
    p.run_with_stdin(&["run", "--workers", "4"], sign_ups(USERS))
        .assert_code(0);
    let lookups = (0..300).map(|n| {
        format!(r#"{{"event": "user_lookup", "args": {{"email": "user{n}@example.com"}}, "id": "look-{n}"}}"#)
    });
    let mut run = Consuming::start(&c, &["--workers", "2", "--ordered"], lookups.collect());
    wait_for(Duration::from_secs(60), "every sign-up consumed", || {
        users_in(&db).len() == USERS && server.drained("c-user_joined")
    });
    // Its input ended long ago; it is still consuming.
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "the run ended with its input"
    );
    server.publish_raw(
        "switchboard.user_joined",
        br#"{"name": "late", "email": "late@example.com"}"#,
    );
    wait_for(Duration::from_secs(30), "the late sign-up", || {
        users_in(&db).len() == USERS + 1
    });
    let (code, stdout, stderr, summary) = run.stop("-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    // One result line per input line, whatever the consumed events did.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 300, "{stderr}");
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["id"], format!("look-{n}"), "{line}");
        assert_eq!(line["ok"], true, "{line}");
    }
    assert_eq!(summary["summary"]["accepted"], 300, "{stderr}");
    assert_eq!(summary["summary"]["consumed"], USERS as u64 + 1, "{stderr}");
    assert_eq!(summary["summary"]["consumed_failed"], 0, "{stderr}");
    // Every consumed event was counted as a call of the database's callback.
    let calls = summary["summary"]["plugins"][0]["calls"].as_u64().unwrap();
    assert_eq!(calls, 300 + USERS as u64 + 1, "{stderr}");
    assert!(server.drained("c-user_joined"));
    let users = users_in(&db);
    let distinct: std::collections::HashSet<&String> = users.iter().collect();
    assert_eq!(distinct.len(), USERS + 1, "no user twice");
}

/// A consumed event that fails under `run` is answered to NATS (delivered again, then
/// dead-lettered), counted in the summary, and does not change the run's exit code.
#[test]
fn run_answers_a_failing_consumed_event_to_nats() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let c = consuming_sign_ups(&server.url());
    let run = Consuming::start(&c, &["--workers", "2"], Vec::new());
    wait_for(Duration::from_secs(30), "the consumer", || {
        server.streams("consumers=1").iter().any(|s| {
            s["consumer_detail"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
    });
    server.publish_raw("switchboard.user_joined", br#"{"name": 1, "email": "x"}"#);
    wait_for(Duration::from_secs(30), "the dead letter", || {
        server.dead_letters("SIGNUPS").len() == 1
    });
    let (code, stdout, stderr, summary) = run.stop("-INT");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(summary["summary"]["consumed"], 1, "{stderr}");
    assert_eq!(summary["summary"]["consumed_failed"], 1, "{stderr}");
    let letters = server.dead_letters("SIGNUPS");
    assert!(
        letters[0].0["Switchboard-Reason"].contains("argument `name`"),
        "{letters:?}"
    );
}
