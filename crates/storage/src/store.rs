//! One object's database: opening it, and the transaction of a turn.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::Connection;
use rusqlite::limits::Limit;

use crate::error::{Result, StorageError};
use crate::guard::Guard;
use crate::log::{CHECKPOINT_PAGES, LogFlusher};

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
    /// survive a crash of the process and of the machine. The flush is the caller's, through
    /// [`ObjectStore::log_flusher`], so that one flush can cover several commits.
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

/// Where the running turn stands (see [`crate::turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// No turn: every operation commits on its own.
    Idle,
    /// A turn runs but has not touched storage yet.
    Started,
    /// The turn's savepoint is open; `dirty` once it wrote.
    Open { dirty: bool },
}

/// The transaction that consecutive turns share until it is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
    None,
    /// Begun; `dirty` once a turn kept writes in it.
    Open {
        dirty: bool,
    },
}

/// The database of one object.
///
/// Outside a turn every operation commits on its own. Inside a turn the first operation joins
/// the turn's savepoint and every later one joins it: all writes of a turn are one atomic unit,
/// kept or dropped together. Consecutive turns share one transaction, the batch, which
/// [`ObjectStore::commit_batch`] commits (see [`crate::turn`]).
#[derive(Debug)]
pub struct ObjectStore {
    pub(crate) conn: Connection,
    pub(crate) guard: Arc<Guard>,
    pub(crate) turn: Turn,
    pub(crate) batch: Batch,
    /// Open `transaction_sync` savepoints.
    pub(crate) savepoints: u32,
    /// Flushes the log before commits are acknowledged (`None`: relaxed durability).
    flusher: Option<LogFlusher>,
    /// Pages in the write-ahead log, as SQLite reported after the last commit.
    log_pages: Arc<AtomicU32>,
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
        // Commits do not wait for the disk in either mode: with full durability the caller
        // flushes the log (one flush for several commits) before it acknowledges them. NORMAL
        // still flushes around checkpoints, so the log is never reused before the database file
        // is on disk.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Replaces SQLite's automatic checkpoints, which would run inside a COMMIT on the
        // object's thread: the owner checkpoints when `checkpoint_due` says so, off that thread.
        let log_pages = Arc::new(AtomicU32::new(0));
        let counter = log_pages.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            counter.store(pages.max(0) as u32, Ordering::Relaxed);
            Ok(())
        }))?;
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
            turn: Turn::Idle,
            batch: Batch::None,
            savepoints: 0,
            flusher: (durability == Durability::Full).then(|| LogFlusher::for_database(path)),
            log_pages,
        })
    }

    /// What makes this database's commits durable, for the caller to run before it acknowledges
    /// them; `None` with relaxed durability, where a commit is acknowledged once it returns.
    pub fn log_flusher(&self) -> Option<LogFlusher> {
        self.flusher.clone()
    }

    /// The write-ahead log has grown enough that a [`checkpoint`](Self::checkpoint) is due.
    pub fn checkpoint_due(&self) -> bool {
        self.log_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES
    }

    /// Copies the write-ahead log into the database file (flushing both), so that the log starts
    /// again from its beginning. Slow: run it off the async threads.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        self.log_pages.store(0, Ordering::Relaxed);
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
        if !self.is_in_turn() && self.savepoints == 0 {
            self.commit_batch()?;
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
        let outer = if !self.is_in_turn() && self.savepoints == 0 {
            // The outermost savepoint was all this transaction held: once it ended, kept or
            // rolled back, COMMIT leaves exactly its outcome; if it could not end, nothing stays.
            self.conn
                .execute_batch(if end.is_ok() { "COMMIT" } else { "ROLLBACK" })
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
        let own_transaction = !self.is_in_turn();
        if own_transaction {
            self.commit_batch()?;
            self.conn.execute_batch("BEGIN")?;
        }
        let result = self.delete_everything();
        if own_transaction {
            match result {
                Ok(()) => {
                    self.conn.execute_batch("COMMIT")?;
                    self.vacuum()?;
                }
                Err(_) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
            }
        }
        result
    }

    /// Gives the space of deleted data back to the file system. VACUUM builds the new file in an
    /// attached database, which the limit that keeps application SQL from attaching would refuse:
    /// the limit is lifted for it alone (the guard still refuses `ATTACH` to applications).
    fn vacuum(&mut self) -> Result<()> {
        self.conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 1)?;
        let result = self.conn.execute_batch("VACUUM");
        self.conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        Ok(result?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TempPath, temp_store};

    fn store(label: &str) -> (TempPath, ObjectStore) {
        temp_store(label, Durability::Full)
    }

    fn reopen(path: &TempPath) -> ObjectStore {
        path.open(Durability::Full)
    }

    #[test]
    fn durability_names() {
        assert_eq!("full".parse::<Durability>(), Ok(Durability::Full));
        assert_eq!("relaxed".parse::<Durability>(), Ok(Durability::Relaxed));
        assert_eq!(
            "fast".parse::<Durability>(),
            Err(r#"unknown durability "fast" (expected "full" or "relaxed")"#.to_owned())
        );
    }

    #[test]
    fn transactions_nest_outside_a_turn_and_commit_with_the_outermost() {
        let (path, mut store) = store("txn-outside");
        assert!(!store.in_transaction());
        store.begin_transaction().unwrap();
        assert!(store.in_transaction());
        store.kv_put("outer", b"1").unwrap();
        store.begin_transaction().unwrap();
        store.kv_put("inner", b"2").unwrap();
        store.end_transaction(false).unwrap();
        assert!(store.in_transaction(), "the outer one still runs");
        assert_eq!(
            store.kv_get("inner").unwrap(),
            None,
            "the inner one rolled back"
        );
        store.end_transaction(true).unwrap();
        assert!(!store.in_transaction());
        assert!(store.end_transaction(true).is_err(), "nothing left to end");
        drop(store);
        let mut store = reopen(&path);
        assert_eq!(store.kv_get("outer").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.kv_get("inner").unwrap(), None);
    }

    #[test]
    fn a_transaction_outside_a_turn_that_fails_keeps_nothing() {
        let (path, mut store) = store("txn-fails");
        let result = store.transaction(|store| {
            store.kv_put("doomed", b"1")?;
            Err::<(), _>(StorageError::Invalid("no".into()))
        });
        assert!(result.is_err());
        assert!(!store.in_transaction());
        drop(store);
        assert_eq!(reopen(&path).kv_get("doomed").unwrap(), None);
    }

    #[test]
    fn a_transaction_in_a_turn_is_a_savepoint_of_it() {
        let (path, mut store) = store("txn-turn");
        store.begin_turn();
        store.kv_put("before", b"1").unwrap();
        store.begin_transaction().unwrap();
        store.kv_put("kept", b"2").unwrap();
        store.end_transaction(true).unwrap();
        store.begin_transaction().unwrap();
        store.kv_put("dropped", b"3").unwrap();
        store.end_transaction(false).unwrap();
        assert!(store.is_in_turn(), "the turn goes on");
        store.commit_turn().unwrap();
        drop(store);
        let mut store = reopen(&path);
        assert_eq!(store.kv_get("kept").unwrap(), Some(b"2".to_vec()));
        assert_eq!(store.kv_get("dropped").unwrap(), None);
    }

    #[test]
    fn delete_all_removes_tables_views_kv_and_the_alarm() {
        let (path, mut store) = store("delete-all");
        store
            .exec(
                "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1); CREATE VIEW v AS SELECT a FROM t",
                &[],
            )
            .unwrap();
        store.kv_put("k", b"v").unwrap();
        store.kv_put("big", &vec![7u8; 200_000]).unwrap();
        store.set_alarm(Some(1_000)).unwrap();
        let full = store.database_size().unwrap();
        store.delete_all().unwrap();
        let emptied = store.database_size().unwrap();
        assert!(
            emptied + 200_000 <= full,
            "the space is given back: {full} then {emptied}"
        );
        drop(store);
        let mut store = reopen(&path);
        assert_eq!(store.kv_get("k").unwrap(), None);
        assert_eq!(store.alarm().unwrap(), None);
        let tables = store
            .exec(
                "SELECT name FROM sqlite_master WHERE name IN ('t', 'v')",
                &[],
            )
            .unwrap();
        assert!(tables.rows.is_empty(), "{:?}", tables.rows);
    }

    #[test]
    fn delete_all_in_a_turn_is_undone_with_the_turn_and_refused_in_a_transaction() {
        let (_path, mut store) = store("delete-all-turn");
        store.kv_put("k", b"v").unwrap();
        store.begin_turn();
        store.delete_all().unwrap();
        assert_eq!(store.kv_get("k").unwrap(), None);
        store.rollback_turn();
        assert_eq!(store.kv_get("k").unwrap(), Some(b"v".to_vec()));
        store.begin_transaction().unwrap();
        assert_eq!(
            store.delete_all().unwrap_err().to_string(),
            "Cannot call deleteAll() within a transaction"
        );
        store.end_transaction(false).unwrap();
    }

    #[test]
    fn database_size_is_its_pages_times_the_page_size() {
        let (_path, mut store) = store("size");
        let page = 4096;
        let empty = store.database_size().unwrap();
        assert!(empty >= page && empty % page == 0, "{empty}");
        store.kv_put("big", &vec![1u8; 100_000]).unwrap();
        let grown = store.database_size().unwrap();
        assert!(grown >= empty + 100_000, "{empty} then {grown}");
        assert_eq!(grown % page, 0);
    }
}
