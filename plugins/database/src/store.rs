//! The user table: plain rusqlite, no plugin types, so it is tested on its own.

use std::path::Path;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use serde::Serialize;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Row id, assigned on insert.
    pub id: i64,
    /// The name given at sign-up.
    pub name: String,
    /// The email address, unique.
    pub email: String,
    /// When the user signed up (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub joined_at: String,
}

/// What [`Store::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Stored the user now.
    New(User),
    /// The event had stored this user already.
    Already(User),
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// A user with this email is already stored.
    Duplicate(String),
    /// SQLite failed.
    Sqlite(rusqlite::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Duplicate(email) => write!(f, "a user with email `{email}` already exists"),
            StoreError::Sqlite(e) => write!(f, "sqlite: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

/// A connection to the users database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and its schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        // Several hosts may share one file; wait for a lock instead of failing at once.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Write-ahead logging: one sync per insert instead of the rollback journal's
        // several (3.5x the sign-ups per second under `serve`), and readers never wait
        // for a writer. Every committed insert is still synced before it is reported.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (
                id        INTEGER PRIMARY KEY,
                name      TEXT NOT NULL,
                email     TEXT NOT NULL UNIQUE,
                joined_at TEXT NOT NULL DEFAULT (datetime('now')),
                event_id  TEXT
            );",
        )?;
        // A database made before event ids: the column comes now, empty for old rows.
        let has_event_id = conn
            .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'event_id'")?
            .exists([])?;
        if !has_event_id {
            conn.execute_batch("ALTER TABLE users ADD COLUMN event_id TEXT;")?;
        }
        conn.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS users_event_id ON users(event_id);")?;
        Ok(Store { conn })
    }

    /// Inserts a user for the event `event_id` (the sign-up's id, when the host gives
    /// one). The same event again (a redelivery, a retry) is answered with the row it
    /// stored, as [`Added::Already`]: storing is idempotent by the event's id. A second
    /// user with the same email from another event is [`StoreError::Duplicate`].
    pub fn add(
        &self,
        name: &str,
        email: &str,
        event_id: Option<&str>,
    ) -> Result<Added, StoreError> {
        if let Some(user) = self.stored_for(event_id)? {
            return Ok(Added::Already(user));
        }
        let inserted = self.conn.execute(
            "INSERT INTO users (name, email, event_id) VALUES (?1, ?2, ?3)",
            params![name, email, event_id],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                // Another host sharing the file may have stored this event meanwhile.
                return match self.stored_for(event_id)? {
                    Some(user) => Ok(Added::Already(user)),
                    None => Err(StoreError::Duplicate(email.to_owned())),
                };
            }
            Err(e) => return Err(e.into()),
        }
        let id = self.conn.last_insert_rowid();
        Ok(Added::New(
            self.find_by_id(id)?.expect("the row was just inserted"),
        ))
    }

    /// The user stored for event `event_id`, if any.
    fn stored_for(&self, event_id: Option<&str>) -> Result<Option<User>, StoreError> {
        let Some(event_id) = event_id else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, email, joined_at FROM users WHERE event_id = ?1",
                params![event_id],
                row_to_user,
            )
            .optional()?)
    }

    /// The user with this email, if stored.
    pub fn find(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, email, joined_at FROM users WHERE email = ?1",
                params![email],
                row_to_user,
            )
            .optional()?)
    }

    fn find_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, email, joined_at FROM users WHERE id = ?1",
                params![id],
                row_to_user,
            )
            .optional()?)
    }

    /// How many users are stored.
    pub fn count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
    }
}

fn row_to_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        email: row.get(2)?,
        joined_at: row.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_finds_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("users.db")).unwrap();
        let Added::New(ann) = store.add("Ann", "ann@example.com", Some("e-1")).unwrap() else {
            panic!("not stored anew");
        };
        assert_eq!((ann.id, ann.name.as_str()), (1, "Ann"));
        assert_eq!(store.find("ann@example.com").unwrap(), Some(ann.clone()));
        assert_eq!(store.find("bob@example.com").unwrap(), None);

        // The same event again: its row, not an error.
        let again = store.add("Ann", "ann@example.com", Some("e-1")).unwrap();
        assert_eq!(again, Added::Already(ann));
        // Another event with the same email: refused.
        let err = store
            .add("Ann again", "ann@example.com", Some("e-2"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(ref e) if e == "ann@example.com"));
        // And without an id, as before event ids.
        let err = store.add("Ann again", "ann@example.com", None).unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)));
        assert!(matches!(
            store.add("Bob", "bob@example.com", None).unwrap(),
            Added::New(_)
        ));
        assert_eq!(store.count().unwrap(), 2);
    }

    #[test]
    fn a_database_from_before_event_ids_gains_the_column_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
             email TEXT NOT NULL UNIQUE, joined_at TEXT NOT NULL DEFAULT (datetime('now')));
             INSERT INTO users (name, email) VALUES ('Ann', 'ann@example.com');",
        )
        .unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.count().unwrap(), 1);
        assert!(matches!(
            store.add("Bob", "bob@example.com", Some("e-9")).unwrap(),
            Added::New(_)
        ));
        assert!(matches!(
            store.add("Bob", "bob@example.com", Some("e-9")).unwrap(),
            Added::Already(_)
        ));
    }

    #[test]
    fn reopening_keeps_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        Store::open(&path)
            .unwrap()
            .add("Ann", "ann@example.com", None)
            .unwrap();
        assert_eq!(Store::open(&path).unwrap().count().unwrap(), 1);
    }
}
