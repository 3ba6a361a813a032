//! The ledger the hosts of one consumer share: which events a host has claimed (it began
//! their callbacks) and which are done, in a JetStream key-value bucket.
//!
//! A host claims an event before its callbacks run (`create`, which only one host can win),
//! marks it done after they succeed (`update` at the claim's revision), and only then
//! acknowledges. A delivery of an event that is done is acknowledged without dispatch; one
//! that another host claimed waits for that host, which may have been killed inside its
//! callbacks and whose effects (kept in its own files) only it can finish once. A host is
//! known across restarts by an id kept in its state folder. A claim older than
//! `takeover_after_ms` is taken over, for a host that never comes back.
//!
//! Keys are `<consumer>.<event>.<id in URL-safe base64>`; values are small JSON records.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::{self, stream::StorageType};
use base64::Engine as _;
use serde_json::{json, Value as Json};
use switchboard::manifest::NatsSettings;

use crate::NatsError;

/// The longest a ledger value may be: a record is well under it.
const MOST_VALUE_BYTES: i32 = 1024;

/// How often a broken ledger is looked for again (re-created if it was deleted).
const REPAIR_EVERY: Duration = Duration::from_secs(2);

/// How many times a claim is tried when another host changes the key meanwhile.
const CLAIM_TRIES: usize = 4;

/// The shared ledger of one consumer.
pub(crate) struct Ledger {
    jetstream: jetstream::Context,
    config: kv::Config,
    /// The bucket, and how many times it was looked for again (re-created): a failure of
    /// an operation begun on an older one is not news.
    store: Mutex<(u64, kv::Store)>,
    consumer: String,
    /// This host, as its claims name it.
    host: String,
    takeover_after: Duration,
    /// Whether the last operation failed (said once, until it works again).
    failing: AtomicBool,
    /// When the ledger was last looked for again.
    repaired: Mutex<Option<Instant>>,
}

/// What the ledger says about a delivery, before its callbacks run.
#[derive(Debug)]
pub(crate) enum Claim {
    /// A host completed it: acknowledge without dispatch.
    Done,
    /// This host holds the claim now (new, its own from before a restart, or taken over);
    /// `attempts` counts the times a host began it, this one included.
    Held {
        /// The claim's revision, for marking it done.
        revision: u64,
        /// How many times a host began this event.
        attempts: u64,
    },
    /// Another host holds the claim: the event waits for it.
    Elsewhere {
        /// The host's id.
        host: String,
        /// How long ago it claimed the event.
        since: Duration,
    },
    /// The ledger could not answer; the event goes on as if there were none.
    Unreachable(String),
}

/// What marking an event done found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Marked done.
    Recorded,
    /// The ledger had it done already, or another host had taken it over: its callbacks ran
    /// more than once.
    RanAgain,
    /// The ledger could not be written.
    Unreachable(String),
}

impl Ledger {
    /// Opens the consumer's bucket, creating it when missing, as this host (its id kept
    /// under `state`).
    pub(crate) async fn open(
        jetstream: &jetstream::Context,
        settings: &NatsSettings,
        bucket: String,
        state: &Path,
    ) -> Result<Ledger, NatsError> {
        let failed = |reason: String| NatsError::Ledger {
            bucket: bucket.clone(),
            url: settings.url.clone(),
            reason,
        };
        let config = kv::Config {
            bucket: bucket.clone(),
            description: format!(
                "switchboard: events claimed and completed by the hosts of consumer `{}`",
                &settings.consumer
            ),
            max_value_size: MOST_VALUE_BYTES,
            history: 1,
            max_age: settings.ledger_max_age,
            max_bytes: i64::try_from(settings.ledger_max_bytes).unwrap_or(i64::MAX),
            storage: StorageType::File,
            ..Default::default()
        };
        let store = find_or_create(jetstream, &config).await.map_err(failed)?;
        let host = host_id(state).map_err(|e| NatsError::Completed {
            path: state.join("nats").join("host-id").display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Ledger {
            jetstream: jetstream.clone(),
            config,
            store: Mutex::new((0, store)),
            consumer: settings.consumer.clone(),
            host,
            takeover_after: settings.takeover_after,
            failing: AtomicBool::new(false),
            repaired: Mutex::new(None),
        })
    }

    /// The bucket's name.
    pub(crate) fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// This host's id in its claims.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The key of `event`'s `id`.
    pub(crate) fn key(&self, event: &str, id: &str) -> String {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        format!("{}.{event}.{id}", self.consumer)
    }

    /// Claims `key` for this host, unless it is done or another host holds it.
    /// `begun_here` says whether this host began the event's callbacks before (its own
    /// claim from before a restart then counts one more attempt; a claim it made and never
    /// acted on does not).
    pub(crate) async fn claim(&self, key: &str, begun_here: bool) -> Claim {
        let (epoch, store) = self.store();
        let claim = self.try_claim(&store, key, begun_here).await;
        match &claim {
            Claim::Unreachable(reason) => self.broken(epoch, reason).await,
            _ => self.works(epoch),
        }
        claim
    }

    async fn try_claim(&self, store: &kv::Store, key: &str, begun_here: bool) -> Claim {
        for _ in 0..CLAIM_TRIES {
            // Most events are new: the create is the one round trip they need.
            match store.create(key, self.record("running", 1).into()).await {
                Ok(revision) => {
                    return Claim::Held {
                        revision,
                        attempts: 1,
                    }
                }
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Err(e) => return Claim::Unreachable(e.to_string()),
            }
            let entry = match store.entry(key).await {
                Ok(Some(entry)) if entry.operation == Operation::Put => entry,
                // Deleted meanwhile: create it again.
                Ok(_) => continue,
                Err(e) => return Claim::Unreachable(e.to_string()),
            };
            let record = serde_json::from_slice::<Json>(&entry.value).unwrap_or(Json::Null);
            let state = record["state"].as_str().unwrap_or("");
            let owner = record["host"].as_str().unwrap_or("");
            let attempts = record["attempts"].as_u64().unwrap_or(0);
            if state == "done" {
                return Claim::Done;
            }
            let since = age(entry.created.unix_timestamp_nanos());
            if state == "running" && owner != self.host && since < self.takeover_after {
                return Claim::Elsewhere {
                    host: owner.to_owned(),
                    since,
                };
            }
            if owner == self.host && state == "running" && !begun_here {
                // Claimed, then this host stopped before the callbacks began.
                return Claim::Held {
                    revision: entry.revision,
                    attempts,
                };
            }
            if owner != self.host {
                tracing::warn!(
                    "taking over event {key} in ledger {} from host `{}`, which claimed it {} s ago and has not finished it (`nats.takeover_after_ms`); its effects may happen on both hosts",
                    self.bucket(),
                    owner.escape_debug(),
                    since.as_secs()
                );
            }
            let next = self.record("running", attempts + 1);
            match store.update(key, next.into(), entry.revision).await {
                Ok(revision) => {
                    return Claim::Held {
                        revision,
                        attempts: attempts + 1,
                    }
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Claim::Unreachable(e.to_string()),
            }
        }
        Claim::Unreachable(format!(
            "key {key} changed {CLAIM_TRIES} times while this host claimed it"
        ))
    }

    /// Marks `key` done: at the revision of this host's claim, or (the claim not made)
    /// only if no host marked it first.
    pub(crate) async fn finish(&self, key: &str, claim: Option<u64>) -> Finish {
        let (epoch, store) = self.store();
        let done = self.record("done", 0);
        let written = match claim {
            Some(revision) => store
                .update(key, done.clone().into(), revision)
                .await
                .map(drop)
                .map_err(|e| {
                    (
                        e.kind() == UpdateErrorKind::WrongLastRevision,
                        e.to_string(),
                    )
                }),
            None => store
                .create(key, done.clone().into())
                .await
                .map(drop)
                .map_err(|e| (e.kind() == CreateErrorKind::AlreadyExists, e.to_string())),
        };
        let finish = match written {
            Ok(()) => Finish::Recorded,
            Err((true, _)) => {
                // Another host marked or took it meanwhile: this run was one more. Done
                // either way, so that no host runs it again.
                match store.put(key, done.into()).await {
                    Ok(_) => Finish::RanAgain,
                    Err(e) => Finish::Unreachable(e.to_string()),
                }
            }
            Err((false, reason)) => Finish::Unreachable(reason),
        };
        match &finish {
            Finish::Unreachable(reason) => self.broken(epoch, reason).await,
            _ => self.works(epoch),
        }
        finish
    }

    /// Marks `key` done whatever it says: for an event this host's own completed ids
    /// know, whose mark a kill may have cut off, so that no other host waits for it.
    pub(crate) async fn settle(&self, key: &str) {
        if let Err(e) = self.store().1.put(key, self.record("done", 0).into()).await {
            tracing::debug!("cannot mark {key} done in ledger {}: {e}", self.bucket());
        }
    }

    /// Forgets `key`, so that the same id published again runs again (after a dead
    /// letter, which ends the event's deliveries).
    pub(crate) async fn forget(&self, key: &str) {
        if let Err(e) = self.store().1.delete(key).await {
            tracing::debug!("cannot forget {key} in ledger {}: {e}", self.bucket());
        }
    }

    fn store(&self) -> (u64, kv::Store) {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn epoch(&self) -> u64 {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn record(&self, state: &str, attempts: u64) -> String {
        json!({ "state": state, "host": self.host, "attempts": attempts }).to_string()
    }

    /// Says once that the ledger cannot be used, and looks for it again (re-creating a
    /// deleted bucket) at most every [`REPAIR_EVERY`]. `epoch` is the bucket the failed
    /// operation began on: one begun before the bucket was looked for again says nothing.
    async fn broken(&self, epoch: u64, reason: &str) {
        if epoch < self.epoch() {
            return;
        }
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                "the ledger {} cannot be used: {reason}; until it can, events go on with this host's completed ids only (at-least-once across hosts, nothing lost). Said once until it works again",
                self.bucket()
            );
        }
        {
            let mut repaired = self.repaired.lock().unwrap_or_else(|e| e.into_inner());
            if repaired.is_some_and(|at| at.elapsed() < REPAIR_EVERY) {
                return;
            }
            *repaired = Some(Instant::now());
        }
        if let Ok(store) = find_or_create(&self.jetstream, &self.config).await {
            let mut current = self.store.lock().unwrap_or_else(|e| e.into_inner());
            *current = (current.0 + 1, store);
        }
    }

    fn works(&self, epoch: u64) {
        if epoch == self.epoch() && self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("the ledger {} works again", self.bucket());
        }
    }
}

/// The bucket `config` names, created with it when missing (a bucket made by another
/// host is used as it is).
async fn find_or_create(
    jetstream: &jetstream::Context,
    config: &kv::Config,
) -> Result<kv::Store, String> {
    if let Ok(store) = jetstream.get_key_value(config.bucket.as_str()).await {
        return Ok(store);
    }
    // The bucket's stream, made here rather than by `create_key_value`, whose account
    // query Debian's nats-server 2.9 answers in a form the client does not read. The
    // settings are a bucket's, but for the discard policy: a full ledger forgets its
    // oldest events instead of refusing new ones.
    let stream = jetstream::stream::Config {
        name: format!("KV_{}", config.bucket),
        description: Some(config.description.clone()),
        subjects: vec![format!("$KV.{}.>", config.bucket)],
        max_messages_per_subject: config.history,
        max_bytes: config.max_bytes,
        max_age: config.max_age,
        max_message_size: config.max_value_size,
        storage: config.storage,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: jetstream::stream::DiscardPolicy::Old,
        ..Default::default()
    };
    crate::open_or_create_stream(jetstream, stream).await?;
    jetstream
        .get_key_value(config.bucket.as_str())
        .await
        .map_err(|e| e.to_string())
}

/// How long ago `created_ns` (nanoseconds since the epoch, the server's clock) was.
fn age(created_ns: i128) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    Duration::from_nanos(u64::try_from(now - created_ns).unwrap_or(0))
}

/// This host's id, made once and kept in `<state>/nats/host-id`: a restarted host knows its
/// own claims by it.
fn host_id(state: &Path) -> std::io::Result<String> {
    let folder = state.join("nats");
    let path = folder.join("host-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && crate::id_problem(id).is_none() {
            return Ok(id.to_owned());
        }
    }
    std::fs::create_dir_all(&folder)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let id = format!("host-{nanos:x}-{:x}", std::process::id());
    // Written whole under another name, then renamed: a kill leaves no half id.
    let fresh = folder.join(".host-id.new");
    std::fs::write(&fresh, &id)?;
    std::fs::rename(&fresh, &path)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_keeps_its_id_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = host_id(dir.path()).unwrap();
        assert!(first.starts_with("host-"));
        assert_eq!(host_id(dir.path()).unwrap(), first);
        // A garbled file is replaced by a fresh id.
        std::fs::write(dir.path().join("nats/host-id"), "two words").unwrap();
        let fresh = host_id(dir.path()).unwrap();
        assert!(fresh.starts_with("host-") && fresh != "two words");
    }

    #[test]
    fn any_id_becomes_a_key_of_allowed_characters() {
        let id = "sign up/é#1?";
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        assert!(encoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let back = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&encoded)
            .unwrap();
        assert_eq!(back, id.as_bytes());
    }
}
