//! The sign-up scenario: one `user_joined` emit reaches the real database, emails and
//! notify plugins; the test checks the SQLite row, the `.eml` file and the webhook POST.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;

use crate::util::Sandbox;

/// A webhook receiver on 127.0.0.1: answers 204 and passes each request body on.
struct Webhook {
    url: String,
    bodies: mpsc::Receiver<String>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, bodies) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                if tx.send(String::from_utf8(body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Webhook { url, bodies }
    }
}

/// The scenario's manifest, with the database and outbox in the sandbox.
fn signup(webhook: &str) -> Sandbox {
    Sandbox::new(&format!(
        r#"
        [events.user_joined]
        args = {{ name = "string", email = "string" }}
        [events.user_lookup]
        args = {{ email = "string" }}
        result = "first"

        [[plugins]]
        name = "database"
        config = {{ path = "users.db" }}
        [[plugins]]
        name = "emails"
        config = {{ outbox = "outbox", from = "Team <team@example.com>" }}
        [[plugins]]
        name = "notify"
        config = {{ webhook = "{webhook}", timeout_ms = 2000 }}
        "#
    ))
}

fn users(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, email FROM users ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The headers of an `.eml` file, unfolded, by name.
fn headers(eml: &str) -> std::collections::HashMap<String, String> {
    let head = eml.split("\r\n\r\n").next().unwrap();
    let mut map = std::collections::HashMap::new();
    let mut last = String::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            map.entry(last.clone())
                .and_modify(|v: &mut String| v.push_str(line.trim_start()));
        } else if let Some((k, v)) = line.split_once(": ") {
            last = k.to_owned();
            map.insert(k.to_owned(), v.to_owned());
        }
    }
    map
}

#[test]
fn one_sign_up_reaches_the_database_the_mailer_and_the_chat() {
    let hook = Webhook::start();
    let sandbox = signup(&hook.url);
    let run = sandbox.run(&[
        "--format",
        "json",
        "emit",
        "user_joined",
        "name=Ann",
        "email=ann@example.com",
    ]);
    run.assert_code(0);
    let results = run.json()["results"].clone();
    assert_eq!(results[0]["callback"], "add_user");
    assert_eq!(results[0]["value"]["name"], "Ann");

    assert_eq!(
        users(&sandbox.path("users.db")),
        [("Ann".to_owned(), "ann@example.com".to_owned())]
    );

    let outbox: Vec<_> = std::fs::read_dir(sandbox.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].extension().unwrap(), "eml");
    assert_eq!(
        results[1]["value"],
        outbox[0]
            .strip_prefix(sandbox.dir.path())
            .unwrap()
            .to_str()
            .unwrap()
    );
    let eml = std::fs::read_to_string(&outbox[0]).unwrap();
    let headers = headers(&eml);
    assert_eq!(headers["From"], "Team <team@example.com>");
    assert_eq!(headers["To"], "Ann <ann@example.com>");
    assert_eq!(headers["Subject"], "Welcome, Ann!");
    assert!(
        headers.contains_key("Date") && headers.contains_key("Message-ID"),
        "{headers:?}"
    );
    assert!(eml.contains("Hello Ann,"), "{eml}");

    let body: serde_json::Value = serde_json::from_str(&hook.bodies.recv().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"content": "📣 Ann (ann@example.com) just joined"})
    );
    assert_eq!(results[2]["value"], 204);
}

#[test]
fn a_duplicate_sign_up_is_a_clear_error_and_no_second_row() {
    let hook = Webhook::start();
    let sandbox = signup(&hook.url);
    sandbox
        .run(&["emit", "user_joined", "name=Ann", "email=ann@example.com"])
        .assert_code(0);
    let run = sandbox.run(&["emit", "user_joined", "name=Ann B", "email=ann@example.com"]);
    run.assert_code(1);
    assert!(
        run.stdout().contains(
            "database.add_user       error  a user with email `ann@example.com` already exists"
        ),
        "{}",
        run.stdout()
    );
    assert_eq!(users(&sandbox.path("users.db")).len(), 1);
    // No on_error = "stop" in this manifest: the others still ran.
    assert_eq!(
        std::fs::read_dir(sandbox.path("outbox")).unwrap().count(),
        2
    );
}

#[test]
fn an_unreachable_webhook_fails_notify_only() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let sandbox = signup(&url);
    let run = sandbox.run(&[
        "--format",
        "json",
        "emit",
        "user_joined",
        "name=Bo",
        "email=bo@example.com",
    ]);
    run.assert_code(1);
    let results = run.json()["results"].clone();
    let message = results[2]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("cannot reach webhook {url}")),
        "{message}"
    );
    assert!(
        results[0]["value"].is_object() && results[1]["value"].is_string(),
        "{results}"
    );
    assert_eq!(users(&sandbox.path("users.db")).len(), 1);
    assert_eq!(
        std::fs::read_dir(sandbox.path("outbox")).unwrap().count(),
        1
    );
}

#[test]
fn user_lookup_returns_the_stored_user_to_the_caller() {
    let hook = Webhook::start();
    let sandbox = signup(&hook.url);
    let input = concat!(
        r#"{"event": "user_joined", "args": {"name": "Ann", "email": "ann@example.com"}}"#,
        "\n",
        r#"{"event": "user_lookup", "args": {"email": "ann@example.com"}, "id": "q1"}"#,
        "\n",
        r#"{"event": "user_lookup", "args": {"email": "nobody@example.com"}, "id": "q2"}"#,
        "\n",
    );
    let run = sandbox.run_with_stdin(&["run", "--workers", "1"], input);
    run.assert_code(0);
    let lines = run.json_lines();
    let found = &lines[1]["results"][0];
    assert_eq!(lines[1]["id"], "q1");
    assert_eq!(found["plugin"], "database");
    assert_eq!(found["value"]["name"], "Ann");
    assert_eq!(found["value"]["id"], 1);
    assert_eq!(lines[2]["results"][0]["value"], serde_json::Value::Null);
}

#[test]
fn the_default_manifest_runs_the_scenario() {
    // The README's main command, from a copy of the repository's events.toml.
    let sandbox = Sandbox::new("");
    let text = std::fs::read_to_string(crate::util::workspace().join("events.toml")).unwrap();
    let text = text.replace(
        "plugin_dir = \"target/release\"",
        &format!(
            "plugin_dir = {:?}",
            crate::util::profile_dir().to_str().unwrap()
        ),
    );
    sandbox.write("events.toml", &text);
    let run = sandbox.run(&["emit", "user_joined", "name=Ann", "email=ann@example.com"]);
    run.assert_code(0);
    assert!(
        run.stdout().contains("user_joined: 4 callbacks ran"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr()
            .contains("notify: (no webhook configured) 📣 Ann (ann@example.com) just joined"),
        "{}",
        run.stderr()
    );
    // Again: the database refuses, and on_error = "stop" keeps the rest from running.
    let run = sandbox.run(&["emit", "user_joined", "name=Ann", "email=ann@example.com"]);
    run.assert_code(1);
    assert!(
        run.stdout()
            .contains("user_joined: 1 callback ran, 1 failed"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        std::fs::read_dir(sandbox.path("outbox")).unwrap().count(),
        1
    );
}
