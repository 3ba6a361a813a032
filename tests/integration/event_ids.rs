//! The event's id reaches the callbacks (`Host::event_id`), whichever way the event came:
//! `emit --id`, a `run` line's `id`, an HTTP request's `X-Request-Id`, or one the host
//! made; nested emits carry it; isolated plugins see it too.

use crate::util::Sandbox;

/// The probe, in-process or in a worker process, answering `whoami`.
fn probe(isolated: bool) -> Sandbox {
    Sandbox::with_probe(&format!(
        r#"
[[plugins]]
name = "probe"
config = {{ label = "p" }}
{}
"#,
        if isolated {
            r#"isolation = "process""#
        } else {
            ""
        }
    ))
}

fn value(run: &crate::util::Run) -> serde_json::Value {
    let out: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    out["results"][0]["value"].clone()
}

#[test]
fn emit_hands_its_id_to_the_callbacks_and_makes_one_without() {
    for isolated in [false, true] {
        let s = probe(isolated);
        let given = s.run(&["--format", "json", "emit", "whoami", "--id", "signup-7"]);
        given.assert_code(0);
        assert_eq!(value(&given), "signup-7", "isolated: {isolated}");
        let made = s.run(&["--format", "json", "emit", "whoami"]);
        made.assert_code(0);
        let made = value(&made);
        assert!(
            made.as_str().is_some_and(|id| id.starts_with("sb-")),
            "isolated: {isolated}: {made}"
        );
        // A nested emit carries the id of the event whose callback made it.
        let nested = s.run(&[
            "--format",
            "json",
            "emit",
            "whoami",
            "nest=true",
            "--id",
            "n-1",
        ]);
        nested.assert_code(0);
        assert_eq!(
            value(&nested),
            serde_json::json!(["n-1", "n-1"]),
            "isolated: {isolated}"
        );
    }
}

#[test]
fn run_lines_hand_their_ids_to_the_callbacks_one_by_one_and_in_batches() {
    // In-process lines are dispatched one at a time; isolated ones travel in batches.
    for isolated in [false, true] {
        let s = probe(isolated);
        let mut input = String::new();
        for n in 0..300 {
            input.push_str(&match n % 4 {
                0 => format!("{{\"event\": \"whoami\", \"id\": \"line-{n}\"}}\n"),
                1 => format!("{{\"event\": \"whoami\", \"id\": {n}}}\n"),
                2 => "{\"event\": \"whoami\"}\n".to_owned(),
                _ => format!("{{\"event\": \"whoami\", \"args\": {{\"nest\": true}}, \"id\": \"deep-{n}\"}}\n"),
            });
        }
        let run = s.run_with_stdin(&["run", "--ordered", "--workers", "2"], input);
        run.assert_code(0);
        let lines = run.json_lines();
        assert_eq!(lines.len(), 300, "{}", run.stderr());
        let mut made = std::collections::HashSet::new();
        for (n, line) in lines.iter().enumerate() {
            let seen = &line["results"][0]["value"];
            match n % 4 {
                0 => assert_eq!(seen, &format!("line-{n}"), "{line}"),
                1 => assert_eq!(seen, &n.to_string(), "{line}"),
                2 => {
                    let id = seen.as_str().unwrap();
                    assert!(id.starts_with("sb-"), "{line}");
                    assert!(made.insert(id.to_owned()), "a made-up id twice: {id}");
                }
                _ => assert_eq!(
                    seen,
                    &serde_json::json!([format!("deep-{n}"), format!("deep-{n}")]),
                    "{line}"
                ),
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn serve_hands_the_request_id_to_the_callbacks() {
    let s = probe(false);
    let server = crate::serve::Server::start(&s, &[]);
    let request = ureq::post(&server.url("/events/whoami")).set("X-Request-Id", "req-42");
    let (status, body, _) = server.send(request, Some("{}"));
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["results"][0]["value"], "req-42", "{body}");
    // Without one, the server's own id, which the answer names too.
    let (status, body, _) = server.post("/events/whoami", "{}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["value"], body["id"], "{body}");
}
