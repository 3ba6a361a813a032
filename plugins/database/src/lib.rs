//! `database`: stores users who sign up (`user_joined`) in SQLite and answers
//! `user_lookup` with the stored record.
//!
//! Storing is idempotent by the event's id (`host.event_id()`): the same sign-up event
//! again (a NATS redelivery, a retried request) is answered with the row it stored, a
//! success, so the callbacks after it run; a *different* event for a stored email is
//! refused.
//!
//! Config: `path`, the database file (default `users.db`), relative to the host's working
//! directory. The schema is created on first use.

use std::path::PathBuf;
use std::sync::Mutex;

use switchboard_plugin_api::prelude::*;

pub mod store;

use store::{Added, Store, StoreError};

/// The `config` table of a `database` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SQLite file.
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from("users.db")
}

/// The plugin: one connection, shared by the host's worker threads through a mutex.
pub struct Database {
    store: Mutex<Store>,
}

impl Plugin for Database {
    type Config = Config;

    fn init(config: Config, host: &Host) -> Result<Self> {
        let path = host.resolve_path(&config.path);
        let store = Store::open(&path).map_err(|e| {
            Error::new(format!("cannot open {}: {e}", path.display()))
                .with_help("check that the folder exists and is writable, or set `path`")
        })?;
        host.debug(format!("users database at {}", path.display()));
        Ok(Database {
            store: Mutex::new(store),
        })
    }

    fn register(callbacks: &mut Callbacks<Self>) {
        // First, so that with `on_error = "stop"` nobody announces a user who was not stored.
        callbacks
            .on("user_joined", "add_user", Self::add_user)
            .priority(100);
        callbacks.on("user_lookup", "find_user", Self::find_user);
    }
}

/// The arguments of `user_joined`.
#[derive(Args)]
struct NewUser<'a> {
    name: &'a str,
    email: &'a str,
}

/// The arguments of `user_lookup`.
#[derive(Args)]
struct Lookup<'a> {
    email: &'a str,
}

impl Database {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock leaves no half-written row (SQLite is
        // transactional), so a poisoned lock is still safe to use.
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// On `user_joined`: inserts the user and returns the stored row; for an event it
    /// stored already (by its id), that row.
    fn add_user(&self, user: NewUser, host: &Host) -> Result<Value<'static>> {
        let (name, email) = (user.name, user.email);
        let event_id = host.event_id();
        let added = self
            .store()
            .add(name, email, event_id.as_deref())
            .map_err(|e| match e {
                StoreError::Duplicate(_) => Error::new(e.to_string()).with_help(
                    "sign up with another email address, or look the user up with `user_lookup`",
                ),
                StoreError::Sqlite(_) => Error::new(e.to_string()),
            })?;
        let user = match added {
            Added::New(user) => {
                host.info(format!("stored user #{} {name} <{email}>", user.id));
                user
            }
            Added::Already(user) => {
                host.info(format!(
                    "user #{} <{email}> was stored by this event ({}) already; answering that row",
                    user.id,
                    event_id.as_deref().unwrap_or_default()
                ));
                user
            }
        };
        Value::from_serialize(&user)
    }

    /// On `user_lookup`: the stored user, or null so another plugin may answer.
    fn find_user(&self, lookup: Lookup, _host: &Host) -> Result<Value<'static>> {
        match self.store().find(lookup.email)? {
            Some(user) => Value::from_serialize(&user),
            None => Ok(Value::NULL),
        }
    }
}

export_plugin!(Database);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_plugin_api::testing::TestHost;

    fn sign_up<'v>(name: &'v str, email: &'v str) -> [(&'static str, Value<'v>); 2] {
        [
            ("name", Value::borrowed(name)),
            ("email", Value::borrowed(email)),
        ]
    }

    #[test]
    fn stores_refuses_duplicates_and_answers_lookups() {
        let folder = tempfile::tempdir().unwrap();
        let host = TestHost::new()
            .strict()
            .expect_log("users database at")
            .expect_log("stored user #1 Ann")
            .expect_log("was stored by this event (test-event) already")
            .with_manifest_dir(folder.path());
        // A relative path is the manifest's folder's: the database lands there.
        let database = host
            .start::<Database>(BTreeMap::from([("path", "users.db")]))
            .unwrap();
        assert!(folder.path().join("users.db").is_file());

        let stored = database.emit("user_joined", sign_up("Ann", "ann@example.com"));
        assert_eq!(stored[0].callback, "add_user");
        let row = stored[0].value().unwrap();
        assert_eq!(row.get("id").and_then(Value::as_i64), Some(1));

        // The same event again (the kit's one event id): its row, a success.
        let again = database.emit("user_joined", sign_up("Ann", "ann@example.com"));
        let row_again = again[0].value().unwrap();
        assert_eq!(row_again.get("id").and_then(Value::as_i64), Some(1));

        // Another event for the same email: refused.
        let other = TestHost::new()
            .with_manifest_dir(folder.path())
            .with_event_id("another-sign-up");
        let database_again = other
            .start::<Database>(BTreeMap::from([("path", "users.db")]))
            .unwrap();
        let refused = database_again.emit("user_joined", sign_up("Ann", "ann@example.com"));
        let error = refused[0].value().unwrap_err();
        assert!(error.message().contains("already exists"), "{error}");
        assert!(error.help().is_some_and(|h| h.contains("user_lookup")));

        let found = database.emit(
            "user_lookup",
            [("email", Value::borrowed("ann@example.com"))],
        );
        assert_eq!(
            found[0]
                .value()
                .unwrap()
                .get("name")
                .and_then(Value::as_str),
            Some("Ann")
        );
        let missing = database.emit(
            "user_lookup",
            [("email", Value::borrowed("bob@example.com"))],
        );
        assert!(
            missing[0].value().unwrap().is_null(),
            "null lets another plugin answer"
        );
    }
}
