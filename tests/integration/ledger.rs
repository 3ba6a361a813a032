//! The ledger the hosts of one consumer share, with a real `nats-server -js`: hosts killed
//! at random moments and inside their callbacks, a ledger that says what other hosts did,
//! and a ledger that goes away.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::nats::{
    consuming, emit_sign_up, outside, publishing, sign_ups, sign_ups_numbered, users_in, wait_for,
    welcomes_in, NatsServer, SIGN_UP_EVENTS,
};
use crate::serve::Server;
use crate::util::Sandbox;

/// The ledger bucket of the test stream `SIGNUPS`, by default.
const BUCKET: &str = "SIGNUPS_completed";

/// The database and the mailer, as the sign-up example loads them.
const DATABASE_AND_MAILER: &str = r#"
[[plugins]]
name = "database"
config = { path = "users.db" }
[[plugins]]
name = "emails"
config = { transport = "file", outbox = "outbox" }
"#;

/// A host consuming sign-ups into its own database and outbox: `nats` adds lines to its
/// `[nats]` table, `plugins` more plugins after those two.
fn signing_up(url: &str, nats: &str, plugins: &str) -> Sandbox {
    consuming(
        url,
        SIGN_UP_EVENTS,
        r#""user_joined""#,
        &format!("{nats}{DATABASE_AND_MAILER}{plugins}"),
    )
}

/// Writes `value` under `key` in the ledger bucket, as another host would, creating the
/// bucket when missing.
fn write_ledger(server: &NatsServer, key: &str, value: &str) {
    let (url, key, value) = (server.url(), key.to_owned(), value.to_owned());
    outside(async move {
        let client = async_nats::connect(url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        // A bucket's stream, made as a bucket (`create_key_value` asks the server a
        // question nats-server 2.9 answers in a form the client does not read).
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: format!("KV_{BUCKET}"),
                subjects: vec![format!("$KV.{BUCKET}.>")],
                max_messages_per_subject: 1,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let store = jetstream.get_key_value(BUCKET).await.unwrap();
        store.put(key, value.into()).await.unwrap();
    });
}

/// The ledger's record under `key`, if there is one.
fn read_ledger(server: &NatsServer, key: &str) -> Option<serde_json::Value> {
    let (url, key) = (server.url(), key.to_owned());
    outside(async move {
        let client = async_nats::connect(url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let store = jetstream.get_key_value(BUCKET).await.ok()?;
        let value = store.get(key).await.unwrap()?;
        Some(serde_json::from_slice(&value).unwrap())
    })
}

/// Every user in the databases of `hosts`, each once at most, and every welcome in their
/// outboxes, each once: asserted, with what went wrong named.
fn assert_each_user_stored_and_welcomed_once(hosts: &[&Sandbox], users: usize) {
    let mut stored = Vec::new();
    for host in hosts {
        stored.extend(users_in(&host.path("users.db")));
    }
    let distinct: HashSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), users, "every user stored");
    assert_eq!(
        stored.len(),
        users,
        "no user stored twice, across the hosts"
    );
    let mut welcomed = std::collections::HashMap::new();
    for host in hosts {
        for (to, n) in welcomes_in(&host.path("outbox")) {
            *welcomed.entry(to).or_insert(0) += n;
        }
    }
    let twice: Vec<_> = welcomed.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "welcomed more than once: {twice:?}");
    assert_eq!(welcomed.len(), users, "every user welcomed");
}

/// A small random number generator seeded from the clock: the kills come at different
/// moments on each run, and the seed is printed to repeat one.
struct Moments(u64);

impl Moments {
    fn new() -> Moments {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            | 1;
        eprintln!("kill moments seeded with {seed}");
        Moments(seed)
    }

    /// A duration from 0 to `most_ms` milliseconds.
    fn upto(&mut self, most_ms: u64) -> Duration {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(self.0 % (most_ms + 1))
    }
}

/// 10,000 sign-ups published with ids; hosts A and B, each with its own SQLite file and
/// outbox, share one consumer; A is SIGKILLed three times at random moments (and
/// restarted) while B goes on. Together they store each user once and welcome each once,
/// nothing is dead-lettered and nothing is left on the consumer.
#[test]
fn two_hosts_on_one_consumer_with_one_killed_three_times_store_and_welcome_each_user_once() {
    const USERS: usize = 10_000;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let a = signing_up(&server.url(), "", "");
    let b = signing_up(&server.url(), "", "");
    let mut host_a = Server::start(&a, &[]);
    let host_b = Server::start(&b, &[]);
    p.run_with_stdin(&["run", "--workers", "4"], sign_ups(USERS))
        .assert_code(0);
    let stored = || users_in(&a.path("users.db")).len() + users_in(&b.path("users.db")).len();
    let mut moments = Moments::new();
    for kill in 1..=3 {
        wait_for(
            Duration::from_secs(120),
            "the next fifth of the users",
            || stored() >= kill * USERS / 5,
        );
        std::thread::sleep(moments.upto(300));
        drop(host_a); // SIGKILL, wherever A is: inside callbacks, between them, acking
        let at = stored();
        assert!(at < USERS, "kill {kill} came after every user was stored");
        std::thread::sleep(moments.upto(500));
        host_a = Server::start(&a, &[]);
    }
    wait_for(Duration::from_secs(180), "every sign-up consumed", || {
        server.drained("c-user_joined")
    });
    let b_metrics = host_b.metrics();
    drop((host_a, host_b));
    assert_each_user_stored_and_welcomed_once(&[&a, &b], USERS);
    let letters = server.dead_letters("SIGNUPS");
    assert!(letters.is_empty(), "{letters:?}");
    // B found A's claims while A was down, and handed those events back for A.
    let elsewhere = b_metrics.get(
        r#"switchboard_nats_messages_total{event="user_joined",crossing="claimed_elsewhere"}"#,
    );
    let consumed = b_metrics
        .get(r#"switchboard_nats_messages_total{event="user_joined",crossing="consumed"}"#);
    assert!(consumed > 0.0, "B consumed nothing");
    eprintln!("B: {consumed} deliveries, {elsewhere} claimed by A");
}

/// One host, killed inside a sign-up's callbacks (after the database stored the user,
/// before the mailer ran), and restarted: the user is stored once and welcomed once, the
/// event counts as having run more than once, and nothing is dead-lettered.
#[test]
fn a_host_killed_inside_a_callback_stores_and_welcomes_the_user_once() {
    const USERS: usize = 40;
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = signing_up(
        &server.url(),
        "",
        "[[plugins]]\nname = \"dies_once\"\nconfig = { email = \"user7@example.com\", marker = \"died\" }\n",
    );
    let mut first = Server::start(&c, &[]);
    p.run_with_stdin(&["run"], sign_ups(USERS)).assert_code(0);
    wait_for(
        Duration::from_secs(30),
        "the host to die in user7's callbacks",
        || first.exited().is_some(),
    );
    assert!(c.path("died").exists(), "the host died of something else");
    assert!(users_in(&c.path("users.db")).contains(&"user7@example.com".to_owned()));
    assert!(!welcomes_in(&c.path("outbox")).contains_key("user7@example.com"));
    drop(first);
    let second = Server::start(&c, &[]);
    wait_for(Duration::from_secs(60), "every sign-up consumed", || {
        server.drained("c-user_joined")
    });
    let metrics = second.metrics();
    drop(second);
    assert_each_user_stored_and_welcomed_once(&[&c], USERS);
    assert!(server.dead_letters("SIGNUPS").is_empty());
    // user7 was begun again, by this host (and at most one more event, on the other of
    // the two workers when the host died); the events only queued then do not count.
    let again =
        metrics.get(r#"switchboard_nats_messages_total{event="user_joined",crossing="ran_again"}"#);
    assert!((1.0..=2.0).contains(&again), "{again} events ran again");
    // The key of `signup-7` (the id in URL-safe base64) says done.
    let record = read_ledger(&server, "c.user_joined.c2lnbnVwLTc").expect("signup-7 in the ledger");
    assert_eq!(record["state"], "done");
    assert_eq!(record["attempts"], 0);
}

/// What other hosts left in the ledger is obeyed: an event another host completed is
/// acknowledged without dispatch; one another host claimed waits for it, then, past
/// `takeover_after_ms`, is taken over and run here.
#[test]
fn the_ledger_says_what_other_hosts_did_and_a_stale_claim_is_taken_over() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = signing_up(&server.url(), "takeover_after_ms = 3000\n", "");
    // `bob` and `cy` in URL-safe base64.
    write_ledger(
        &server,
        "c.user_joined.Ym9i",
        r#"{"state":"done","host":"host-other","attempts":1}"#,
    );
    write_ledger(
        &server,
        "c.user_joined.Y3k",
        r#"{"state":"running","host":"host-other","attempts":1}"#,
    );
    for (name, id) in [("Bob", "bob"), ("Cy", "cy"), ("Dee", "dee")] {
        emit_sign_up(&p, name, id);
    }
    let host = Server::start(&c, &[]);
    wait_for(Duration::from_secs(30), "every event consumed", || {
        server.drained("c-user_joined")
    });
    let metrics = host.metrics();
    let count = |crossing: &str| {
        metrics.get(&format!(
            r#"switchboard_nats_messages_total{{event="user_joined",crossing="{crossing}"}}"#
        ))
    };
    let mut users = users_in(&c.path("users.db"));
    users.sort();
    assert_eq!(
        users,
        ["cy@example.com", "dee@example.com"],
        "bob was done elsewhere"
    );
    assert_eq!(count("already_completed_in_ledger"), 1.0);
    assert!(
        count("claimed_elsewhere") >= 1.0,
        "cy did not wait for its host"
    );
    assert!(host
        .stderr()
        .contains("taking over event c.user_joined.Y3k"));
    // The status page says the same, for a person.
    let (status, page, _) = host.send(ureq::get(&host.url("/")), None);
    assert_eq!(status, 200);
    assert!(
        page.contains("<tr><td><code>user_joined</code></td><td><code>already_completed_in_ledger</code></td><td class=\"n\">1</td></tr>"),
        "{page}"
    );
    assert!(page.contains("<code>claimed_elsewhere</code>"), "{page}");
    let cy = read_ledger(&server, "c.user_joined.Y3k").unwrap();
    assert_eq!(cy["state"], "done");
    assert_ne!(cy["host"], "host-other");
    let id = std::fs::read_to_string(c.path(".switchboard/nats/host-id")).unwrap();
    assert_eq!(cy["host"], id.trim());
}

/// The ledger's bucket deleted under a running host: said once by name, the host goes on
/// with its own completed ids and loses nothing, and the bucket is made again; then the
/// server restarted under it, and nothing is lost either.
#[test]
fn a_deleted_ledger_or_a_restarted_server_is_said_and_nothing_is_lost() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = signing_up(&server.url(), "", "");
    let host = Server::start(&c, &[]);
    p.run_with_stdin(&["run"], sign_ups(20)).assert_code(0);
    wait_for(Duration::from_secs(30), "the first 20 users", || {
        users_in(&c.path("users.db")).len() == 20
    });
    let url = server.url();
    outside(async move {
        let client = async_nats::connect(url).await.unwrap();
        async_nats::jetstream::new(client)
            .delete_key_value(BUCKET)
            .await
            .unwrap();
    });
    p.run_with_stdin(&["run"], sign_ups_numbered(20..60))
        .assert_code(0);
    wait_for(Duration::from_secs(60), "every sign-up consumed", || {
        server.drained("c-user_joined")
    });
    // Past the deletion, events may still be ledgered in the bucket made again.
    wait_for(Duration::from_secs(30), "the ledger made again", || {
        host.stderr()
            .contains("the ledger SIGNUPS_completed works again")
    });
    // Said once until it works again: the two messages alternate, the warning first (on
    // a loaded machine, a timeout after the bucket is back may start a second round).
    let stderr = host.stderr();
    let said: Vec<bool> = stderr
        .lines()
        .filter_map(|line| {
            if line.contains("the ledger SIGNUPS_completed cannot be used") {
                Some(true)
            } else if line.contains("the ledger SIGNUPS_completed works again") {
                Some(false)
            } else {
                None
            }
        })
        .collect();
    assert!(said.first() == Some(&true), "{stderr}");
    assert!(said.windows(2).all(|w| w[0] != w[1]), "{stderr}");
    assert!(stderr.contains("at-least-once across hosts"));
    let metrics = host.metrics();
    assert!(
        metrics
            .get(r#"switchboard_nats_messages_total{event="user_joined",crossing="ledger_error"}"#)
            >= 1.0
    );
    // The server restarted under the host: the ledger (kept in the server's store) and
    // the consumer come back, and the next sign-ups are stored once too.
    server.restart(Duration::from_millis(500));
    p.run_with_stdin(&["run"], sign_ups_numbered(60..90))
        .assert_code(0);
    wait_for(
        Duration::from_secs(60),
        "the sign-ups after the restart",
        || server.drained("c-user_joined") && users_in(&c.path("users.db")).len() == 90,
    );
    drop(host);
    assert_each_user_stored_and_welcomed_once(&[&c], 90);
    assert!(server.dead_letters("SIGNUPS").is_empty());
}

/// `nats.ledger = false` consumes as before, with no bucket made; bad ledger settings are
/// refused by `check`, naming the line.
#[test]
fn the_ledger_can_be_turned_off_and_its_settings_are_checked() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let p = publishing(&server.url());
    let c = signing_up(&server.url(), "ledger = false\n", "");
    let host = Server::start(&c, &[]);
    p.run_with_stdin(&["run"], sign_ups(10)).assert_code(0);
    wait_for(Duration::from_secs(30), "every sign-up consumed", || {
        server.drained("c-user_joined")
    });
    assert!(host.stderr().contains("no shared ledger"));
    drop(host);
    assert_each_user_stored_and_welcomed_once(&[&c], 10);
    assert!(read_ledger(&server, "c.user_joined.c2lnbnVwLTA").is_none());
    let url = server.url();
    let made = outside(async move {
        let client = async_nats::connect(url).await.unwrap();
        async_nats::jetstream::new(client)
            .get_key_value(BUCKET)
            .await
            .is_ok()
    });
    assert!(!made, "a bucket was made with the ledger off");

    let bad = consuming(
        &server.url(),
        SIGN_UP_EVENTS,
        r#""user_joined""#,
        "ledger_bucket = \"no.dots\"\nledger_max_age_s = 1\ntakeover_after_ms = 0\n",
    );
    let checked = bad.run(&["check"]);
    checked.assert_code(2);
    let said = checked.stderr();
    assert!(
        said.contains("`nats.ledger_bucket` must be 1 to 64 letters"),
        "{said}"
    );
    assert!(
        said.contains("`nats.ledger_max_age_s` must be from 60"),
        "{said}"
    );
    assert!(
        said.contains("`nats.takeover_after_ms` must be from 100"),
        "{said}"
    );
}
