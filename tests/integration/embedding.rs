//! An application that embeds the library's event service: it submits requests of its
//! own and consumes NATS through it, with the same queue, workers and drain as `run` and
//! `serve`.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use switchboard::service::{
    Abandoned, Answer, Busy, Refusal, Request, Service, ServiceConfig, Stop,
};
use switchboard::Switchboard;

use crate::faults::EVENTS;
use crate::util::Sandbox;

/// What a reply saw, reduced to plain values the test thread can keep.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// Dispatched: the event, the id, and each callback's `plugin.callback` with whether
    /// it succeeded.
    Dispatched(String, String, Vec<(String, bool)>),
    Refused(String, String),
    Abandoned(Abandoned),
    Forwarded,
}

/// A request whose answer arrives on `tx`, tagged with `tag`.
fn request(
    event: &str,
    args: serde_json::Value,
    tag: usize,
    tx: &mpsc::Sender<(usize, Seen)>,
) -> Request {
    let tx = tx.clone();
    Request {
        event: event.to_owned(),
        args: args.as_object().cloned().unwrap_or_default(),
        id: format!("app-{tag}"),
        reply: Box::new(move |answer: Answer<'_>| {
            let seen = match answer {
                Answer::Dispatched {
                    event,
                    id,
                    generation,
                    outcomes,
                } => Seen::Dispatched(
                    event.to_owned(),
                    id.to_owned(),
                    outcomes
                        .iter()
                        .map(|o| {
                            let callback = generation.callback(o.callback);
                            (
                                format!("{}.{}", callback.plugin_name, callback.name),
                                o.result.is_ok(),
                            )
                        })
                        .collect(),
                ),
                Answer::Refused { event, error } => {
                    Seen::Refused(event.to_owned(), error.to_string())
                }
                Answer::Abandoned(why) => Seen::Abandoned(why),
                Answer::Forwarded { .. } => Seen::Forwarded,
            };
            tx.send((tag, seen))
                .expect("the test waits for every answer");
        }),
    }
}

/// Every answer until `count` arrived, by tag; a second answer to one tag fails the test.
fn answers(rx: &mpsc::Receiver<(usize, Seen)>, count: usize) -> Vec<Seen> {
    let mut seen: Vec<Option<Seen>> = vec![None; count];
    for _ in 0..count {
        let (tag, answer) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("every accepted request is answered");
        assert!(
            seen[tag].is_none(),
            "request {tag} answered twice: {answer:?}"
        );
        seen[tag] = Some(answer);
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "an answer past the last request"
    );
    seen.into_iter().map(Option::unwrap).collect()
}

fn faults_host(workers: usize) -> (Sandbox, Switchboard, ServiceConfig) {
    let s = Sandbox::new(&format!(
        "{EVENTS}\n[[plugins]]\nname = \"counter\"\n[[plugins]]\nname = \"faulty\"\nconfig = {{ fail_modulo = 2 }}\n"
    ));
    let host = Switchboard::open(&s.manifest()).unwrap();
    let config = ServiceConfig::default()
        .with_workers(workers)
        .with_queue(64)
        .with_drain_timeout(Duration::from_millis(600));
    (s, host, config)
}

#[test]
fn an_application_submits_requests_and_each_gets_one_answer() {
    let (_s, host, config) = faults_host(2);
    let service = Service::start(&host, &config).unwrap();
    let (tx, rx) = mpsc::channel();
    let submitted = [
        request("job", json!({"n": 1}), 0, &tx),
        request("job", json!({"n": "one"}), 1, &tx),
        request("jbo", json!({}), 2, &tx),
        request("flaky", json!({"fail": true}), 3, &tx),
    ];
    for r in submitted {
        service.submit(r).expect("room in the queue");
    }
    let seen = answers(&rx, 4);
    match &seen[0] {
        Seen::Dispatched(event, id, calls) => {
            assert_eq!((event.as_str(), id.as_str()), ("job", "app-0"));
            assert!(
                !calls.is_empty() && calls.iter().all(|(_, ok)| *ok),
                "{calls:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&seen[1], Seen::Refused(event, why) if event == "job" && why.contains("argument `n`")),
        "{:?}",
        seen[1]
    );
    assert!(
        matches!(&seen[2], Seen::Refused(event, why) if event == "jbo" && why.starts_with("unknown event `jbo`")),
        "{:?}",
        seen[2]
    );
    assert!(
        matches!(&seen[3], Seen::Dispatched(_, _, calls) if calls.iter().any(|(_, ok)| !ok)),
        "{:?}",
        seen[3]
    );
    let report = service.stop();
    assert_eq!(
        (report.requests, report.requests_failed),
        (4, 3),
        "{report:?}"
    );
    assert!(!report.gave_up, "{report:?}");
    // Counted by declared event: the refused `job` under its reason, and nothing for the
    // undeclared `jbo`.
    let job = report.events.get("job").copied().unwrap_or_default();
    assert_eq!(job.received, 2, "{report:?}");
    assert_eq!(job.refused(Refusal::BadArguments), 1, "{report:?}");
    assert_eq!(report.events.get("flaky").map(|c| c.received), Some(1));
    assert!(!report.events.contains_key("jbo"), "{report:?}");
    assert_eq!(service.event_counts(), report.events);
    // Stopped: a request now is handed back, unanswered, saying why.
    let declined = service
        .submit(request("job", json!({"n": 2}), 0, &tx))
        .expect_err("a stopped service takes nothing");
    assert_eq!(declined.0, Busy::Stopping);
    assert_eq!(declined.1.id, "app-0");
    // The host counted the calls the service made (one `job` with its callbacks).
    let plugins = host.current().plugins();
    let calls: u64 = plugins.iter().map(|p| p.counts.calls).sum();
    assert!(calls >= 2, "{calls}");
    host.shutdown();
}

#[test]
fn a_full_queue_hands_the_request_back_and_a_drain_that_gives_up_answers_the_rest() {
    let (_s, host, config) = faults_host(1);
    let service = Service::start(&host, &config.with_queue(3)).unwrap();
    let (tx, rx) = mpsc::channel();
    // One worker: the first request runs for 3 s, two wait behind it, the fourth finds no
    // room.
    for tag in 0..3 {
        service
            .submit(request("slow", json!({"ms": 3000}), tag, &tx))
            .expect("room for three");
    }
    let declined = service
        .submit(request("slow", json!({"ms": 1}), 3, &tx))
        .expect_err("the queue holds three");
    assert_eq!(declined.0, Busy::Full);
    // The application counts what it could not hand over, as `serve` does.
    service.refused("slow", Refusal::QueueFull);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(service.depth(), 2);
    let stop = Stop::new();
    stop.drain();
    let report = service.drain(&stop);
    let seen = answers(&rx, 3);
    assert_eq!(seen[0], Seen::Abandoned(Abandoned::StillRunning));
    assert_eq!(seen[1], Seen::Abandoned(Abandoned::NotStarted));
    assert_eq!(seen[2], Seen::Abandoned(Abandoned::NotStarted));
    assert!(report.gave_up, "{report:?}");
    assert_eq!(report.abandoned, 3, "{report:?}");
    assert_eq!(report.requests, 0, "{report:?}");
    // The two that never started are refused as `stopping`; the running one is counted
    // when it ends.
    let slow = report.events.get("slow").copied().unwrap_or_default();
    assert_eq!(
        (slow.received, slow.refused(Refusal::Stopping)),
        (3, 2),
        "{report:?}"
    );
    assert_eq!(slow.refused(Refusal::QueueFull), 1, "{report:?}");
    // The slow callback is still running: the plugins are not shut down under it.
    std::mem::forget(host);
}

#[test]
fn a_reply_that_panics_costs_the_service_nothing() {
    // One worker: were its thread lost to the panic, the next request would never be
    // answered.
    let (_s, host, config) = faults_host(1);
    let service = Service::start(&host, &config).unwrap();
    let panicking = Request {
        event: "job".into(),
        args: json!({"n": 1}).as_object().cloned().unwrap_or_default(),
        id: "app-panics".into(),
        reply: Box::new(|_: Answer<'_>| panic!("the application's reply panicked")),
    };
    service.submit(panicking).unwrap();
    let (tx, rx) = mpsc::channel();
    service
        .submit(request("job", json!({"n": 1}), 0, &tx))
        .unwrap();
    let seen = answers(&rx, 1);
    assert!(matches!(&seen[0], Seen::Dispatched(..)), "{seen:?}");
    let report = service.stop();
    assert_eq!(report.requests, 2, "{report:?}");
    assert!(!report.gave_up, "{report:?}");
    host.shutdown();
}

/// With a real nats-server (Linux, as the other NATS tests).
#[cfg(target_os = "linux")]
mod nats_source {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use switchboard::service::{Service, ServiceConfig, Source};
    use switchboard::Switchboard;

    use super::{answers, request, Seen};
    use crate::nats::{consuming, users_in, wait_for, NatsServer, SIGN_UP_EVENTS};

    #[test]
    fn an_application_consumes_nats_through_the_library_service() {
        const USERS: usize = 300;
        let Some(server) = NatsServer::start() else {
            return;
        };
        let c = consuming(
            &server.url(),
            SIGN_UP_EVENTS,
            r#""user_joined""#,
            "[[plugins]]\nname = \"database\"\nconfig = { path = \"users.db\" }\n",
        );
        let host = Switchboard::open(&c.manifest()).unwrap();
        let settings = host.current().manifest().nats().cloned().unwrap();
        let connection = switchboard_nats::Connection::open(&settings).unwrap();
        let consumer =
            switchboard_nats::Consumer::on(connection, &c.path(".switchboard"), None).unwrap();
        let config = ServiceConfig::default()
            .with_workers(2)
            .with_source(Arc::new(consumer) as Arc<dyn Source>);
        let service = Service::start(&host, &config).unwrap();
        for n in 0..USERS {
            server.publish_raw(
                "switchboard.user_joined",
                format!(r#"{{"name": "user{n}", "email": "user{n}@example.com"}}"#).as_bytes(),
            );
        }
        // The database is read here only once the plugin has closed it: this process holds
        // another copy of SQLite, whose closing of the file would drop the plugin's locks
        // (sqlite.org/howtocorrupt.html, 2.2.1).
        wait_for(Duration::from_secs(60), "every sign-up consumed", || {
            service.report().consumed == USERS as u64 && server.drained("c-user_joined")
        });
        // The application's own request goes through the same workers, beside the consumer.
        let (tx, rx) = mpsc::channel();
        service
            .submit(request(
                "user_lookup",
                json!({"email": "user7@example.com"}),
                0,
                &tx,
            ))
            .unwrap();
        let seen = answers(&rx, 1);
        assert!(
            matches!(&seen[0], Seen::Dispatched(event, _, calls) if event == "user_lookup" && calls.iter().all(|(_, ok)| *ok)),
            "{seen:?}"
        );
        let report = service.stop();
        assert_eq!(report.consumed, USERS as u64, "{report:?}");
        assert_eq!(report.consumed_failed, 0, "{report:?}");
        assert_eq!(report.requests, 1, "{report:?}");
        assert!(report.sources_drained && !report.gave_up, "{report:?}");
        host.shutdown();
        let distinct: std::collections::HashSet<String> =
            users_in(&c.path("users.db")).into_iter().collect();
        assert_eq!(distinct.len(), USERS, "every user, none twice");
    }
}
