//! One object's database: opening it, and the transaction of a turn.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::limits::Limit;

use crate::error::{Result, StorageError};
use crate::guard::Guard;

/// Largest string, BLOB or row (Cloudflare: 2 MB); also bounds a KV key plus its value.
pub const MAX_VALUE_BYTES: usize = 2_000_000;
/// Largest SQL statement (Cloudflare: 100 KB).
pub const MAX_STATEMENT_BYTES: usize = 100_000;
/// Bytes SQLite adds to a row (its record header), allowed on top of [`MAX_VALUE_BYTES`] so that a
/// key and value of exactly the advertised size fit.
const ROW_HEADER_SLACK: usize = 64;
/// Most bound parameters per statement (Cloudflare: 100).
pub const MAX_BINDINGS: usize = 100;
/// Most columns per table (Cloudflare: 100).
pub const MAX_COLUMNS: usize = 100;
/// Most arguments to an SQL function (Cloudflare: 32).
pub const MAX_FUNCTION_ARGS: usize = 32;
/// Longest LIKE or GLOB pattern (Cloudflare: 50 bytes).
pub const MAX_LIKE_PATTERN: usize = 50;

/// When a commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is flushed to disk (fsync) before it is acknowledged: acknowledged writes
    /// survive a crash of the process and of the machine.
    #[default]
    Full,
    /// Commits reach the operating system before they are acknowledged and are flushed to disk at
    /// checkpoints: acknowledged writes survive a crash of the process (`kill -9`), but the last
    /// ones may be lost if the machine loses power.
    Relaxed,
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "full" => Ok(Durability::Full),
            "relaxed" => Ok(Durability::Relaxed),
            other => Err(format!(
                "unknown durability {other:?} (expected \"full\" or \"relaxed\")"
            )),
        }
    }
}

/// Where a turn's transaction stands.
#[derive(Debug, Default, Clone, Copy)]
struct Turn {
    /// A turn is running: storage operations join its transaction.
    active: bool,
    /// The transaction was begun (on the turn's first storage operation).
    open: bool,
    /// The transaction wrote something.
    dirty: bool,
}

/// The database of one object.
///
/// Outside a turn every operation commits on its own. Inside a turn the first operation begins a
/// transaction and every later one joins it, until [`ObjectStore::commit_turn`]: all writes of a
/// turn are one atomic batch.
#[derive(Debug)]
pub struct ObjectStore {
    pub(crate) conn: Connection,
    pub(crate) guard: Arc<Guard>,
    turn: Turn,
    /// Open `transaction_sync` savepoints.
    savepoints: u32,
}

impl ObjectStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<ObjectStore> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::io(format!("create {}", parent.display()), e))?;
        }
        let mut conn = Connection::open(path)?;
        // One connection per object: exclusive locking lets WAL keep its index in memory, so no
        // `-shm` file (and no extra file descriptor) per open object.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        for (limit, value) in [
            (
                Limit::SQLITE_LIMIT_LENGTH,
                MAX_VALUE_BYTES + ROW_HEADER_SLACK,
            ),
            (Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_STATEMENT_BYTES),
            (Limit::SQLITE_LIMIT_COLUMN, MAX_COLUMNS),
            (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, MAX_BINDINGS),
            (Limit::SQLITE_LIMIT_FUNCTION_ARG, MAX_FUNCTION_ARGS),
            (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_LIKE_PATTERN),
            (Limit::SQLITE_LIMIT_ATTACHED, 0),
        ] {
            conn.set_limit(limit, value as i32)?;
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _dormouse_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS _dormouse_alarm (id INTEGER PRIMARY KEY CHECK (id = 0), at_ms INTEGER NOT NULL);",
        )?;
        let guard = Guard::new();
        let hook = guard.clone();
        conn.authorizer(Some(move |context: rusqlite::hooks::AuthContext<'_>| {
            hook.authorize(context)
        }))?;
        Ok(ObjectStore {
            conn,
            guard,
            turn: Turn::default(),
            savepoints: 0,
        })
    }

    /// Starts a turn: operations until [`commit_turn`](Self::commit_turn) form one transaction.
    pub fn begin_turn(&mut self) {
        self.turn = Turn {
            active: true,
            ..Turn::default()
        };
    }

    /// Whether a turn is running.
    pub fn is_in_turn(&self) -> bool {
        self.turn.active
    }

    /// Whether the running turn has written anything not yet committed.
    pub fn is_dirty(&self) -> bool {
        self.turn.dirty
    }

    /// Ends the turn, committing what it wrote (durably, as configured). Returns whether anything
    /// was written. On error the turn's writes are rolled back.
    pub fn commit_turn(&mut self) -> Result<bool> {
        let turn = std::mem::take(&mut self.turn);
        self.savepoints = 0;
        if !turn.open {
            return Ok(false);
        }
        if let Err(error) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
        Ok(turn.dirty)
    }

    /// Commits what the turn wrote so far and keeps the turn going (`storage.sync()`).
    pub fn commit_so_far(&mut self) -> Result<()> {
        if self.savepoints > 0 {
            return Err(StorageError::Invalid(
                "sync() cannot be called inside transaction_sync()".into(),
            ));
        }
        if self.turn.open {
            self.conn.execute_batch("COMMIT")?;
            self.turn.open = false;
            self.turn.dirty = false;
        }
        Ok(())
    }

    /// Ends the turn, discarding what it wrote.
    pub fn rollback_turn(&mut self) {
        let turn = std::mem::take(&mut self.turn);
        self.savepoints = 0;
        if turn.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Called before every operation: joins (or begins) the turn's transaction.
    pub(crate) fn before(&mut self, writes: bool) -> Result<()> {
        if self.turn.active && !self.turn.open {
            self.conn.execute_batch("BEGIN")?;
            self.turn.open = true;
        }
        if writes && self.turn.active {
            self.turn.dirty = true;
        }
        Ok(())
    }

    /// Runs `f` atomically: inside a turn as a savepoint, outside as its own transaction. An
    /// error from `f` rolls back what it wrote.
    pub fn transaction<R>(&mut self, f: impl FnOnce(&mut ObjectStore) -> Result<R>) -> Result<R> {
        self.begin_transaction()?;
        let result = f(self);
        let end = self.end_transaction(result.is_ok());
        match (result, end) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), _) => Err(error),
            (Ok(_), Err(error)) => Err(error),
        }
    }

    /// Starts an atomic section that [`end_transaction`](Self::end_transaction) ends; for callers
    /// that cannot hold `&mut self` across it. Sections nest.
    pub fn begin_transaction(&mut self) -> Result<()> {
        if !self.turn.active && self.savepoints == 0 {
            self.conn.execute_batch("BEGIN")?;
        } else {
            self.before(false)?;
        }
        self.conn
            .execute_batch(&format!("SAVEPOINT dormouse_txn_{}", self.savepoints))?;
        self.savepoints += 1;
        Ok(())
    }

    /// Ends the innermost atomic section: keeps what it wrote if `keep`, else rolls it back.
    pub fn end_transaction(&mut self, keep: bool) -> Result<()> {
        if self.savepoints == 0 {
            return Err(StorageError::Invalid("no transaction to end".into()));
        }
        self.savepoints -= 1;
        let name = format!("dormouse_txn_{}", self.savepoints);
        let end = if keep {
            self.conn.execute_batch(&format!("RELEASE {name}"))
        } else {
            self.conn
                .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
        };
        let outer = if !self.turn.active && self.savepoints == 0 {
            self.conn.execute_batch(if keep && end.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            })
        } else {
            Ok(())
        };
        end.and(outer).map_err(StorageError::from)
    }

    /// Whether a `transaction` is running.
    pub fn in_transaction(&self) -> bool {
        self.savepoints > 0
    }

    /// Deletes everything: application tables, KV data and the alarm.
    pub fn delete_all(&mut self) -> Result<()> {
        if self.savepoints > 0 {
            return Err(StorageError::Invalid(
                "Cannot call deleteAll() within a transaction".into(),
            ));
        }
        let own_transaction = !self.turn.active;
        if own_transaction {
            self.conn.execute_batch("BEGIN")?;
        }
        let result = self.delete_everything();
        if own_transaction {
            match result {
                Ok(()) => {
                    self.conn.execute_batch("COMMIT")?;
                    // Give the space back.
                    self.conn.execute_batch("VACUUM")?;
                }
                Err(_) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
            }
        }
        result
    }

    fn delete_everything(&mut self) -> Result<()> {
        self.before(true)?;
        let objects: Vec<(String, String)> = {
            let mut statement = self.conn.prepare(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_dormouse\\_%' ESCAPE '\\'",
            )?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        self.conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        for (kind, name) in objects {
            let kind = if kind == "view" { "VIEW" } else { "TABLE" };
            self.conn.execute_batch(&format!(
                "DROP {kind} IF EXISTS \"{}\"",
                name.replace('"', "\"\"")
            ))?;
        }
        self.conn
            .execute_batch("DELETE FROM _dormouse_kv; DELETE FROM _dormouse_alarm;")?;
        Ok(())
    }

    /// Bytes the database occupies.
    pub fn database_size(&self) -> Result<u64> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))?;
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))?;
        Ok((pages * size) as u64)
    }
}
