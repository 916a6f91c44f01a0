//! Making commits durable apart from committing them.
//!
//! An object's database runs in WAL mode with `synchronous = NORMAL`: a COMMIT appends the
//! transaction to the write-ahead log and returns without flushing it, so the object can go on
//! to its next turn at once. A [`LogFlusher`] then flushes the log to disk from another thread;
//! every transaction committed before the flush started is durable when it returns, which lets one
//! flush cover the commits of many turns (group commit). Checkpoints, which copy the log into the
//! database file, are run by the store's owner ([`ObjectStore::checkpoint`]) with SQLite's own
//! flushes, so that the log is never reused before the database file holds what it held.
//!
//! [`ObjectStore::checkpoint`]: crate::ObjectStore::checkpoint

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Result, StorageError};

/// Pages in the write-ahead log past which a checkpoint is due (SQLite's own default for its
/// automatic checkpoints, which the store replaces with explicit ones).
pub const CHECKPOINT_PAGES: u32 = 1_000;

/// Flushes one database's write-ahead log to disk. Cheap to clone (a shared path) and to send to
/// another thread; it holds a path, not a file descriptor, so an open object costs no extra
/// descriptor.
#[derive(Debug, Clone)]
pub struct LogFlusher {
    wal: Arc<Path>,
}

/// Where SQLite keeps the write-ahead log of the database at `database`.
pub fn wal_path(database: &Path) -> PathBuf {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

impl LogFlusher {
    pub(crate) fn for_database(database: &Path) -> LogFlusher {
        LogFlusher {
            wal: wal_path(database).into(),
        }
    }

    /// Makes every transaction committed to the log so far durable (`fdatasync` of the log).
    pub fn flush(&self) -> Result<()> {
        let context = || format!("flush {}", self.wal.display());
        // fsync applies to the file, not to the descriptor: a descriptor opened for the flush
        // flushes what SQLite wrote through its own.
        let file = File::open(&self.wal).map_err(|e| StorageError::io(context(), e))?;
        file.sync_data().map_err(|e| StorageError::io(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durability;
    use crate::test_support::{TempPath, temp_store};

    #[test]
    fn a_committed_turn_can_be_flushed_and_read_back_after_reopening() {
        let (path, mut store) = temp_store("flush", Durability::Full);
        let flusher = store
            .log_flusher()
            .expect("full durability flushes its log");
        store.begin_turn();
        store.kv_put("count", b"7").unwrap();
        assert!(store.commit_turn().unwrap());
        flusher.flush().unwrap();
        drop(store);
        let mut store = path.open(Durability::Full);
        assert_eq!(store.kv_get("count").unwrap(), Some(b"7".to_vec()));
    }

    #[test]
    fn relaxed_durability_has_no_flusher() {
        let (_path, store) = temp_store("relaxed", Durability::Relaxed);
        assert!(store.log_flusher().is_none());
    }

    #[test]
    fn a_missing_log_is_an_error_that_names_it() {
        let path = TempPath::new("missing");
        let error = LogFlusher::for_database(&path.0).flush().unwrap_err();
        assert!(
            error.to_string().contains("db.sqlite-wal"),
            "the message names the file: {error}"
        );
    }

    #[test]
    fn a_growing_log_asks_for_a_checkpoint_and_the_checkpoint_empties_it() {
        let (path, mut store) = temp_store("checkpoint", Durability::Full);
        let value = vec![7u8; 3_000];
        let mut turns = 0;
        while !store.checkpoint_due() {
            store.begin_turn();
            store.kv_put(&format!("key-{turns}"), &value).unwrap();
            store.commit_turn().unwrap();
            turns += 1;
            assert!(turns < 10_000, "the log never asked for a checkpoint");
        }
        assert!(turns > 100, "due after {turns} small turns: too early");
        store.checkpoint().unwrap();
        assert!(!store.checkpoint_due());
        store.begin_turn();
        store.kv_put("after", b"1").unwrap();
        store.commit_turn().unwrap();
        assert!(
            !store.checkpoint_due(),
            "the log starts again from its beginning"
        );
        drop(store);
        let mut store = path.open(Durability::Full);
        assert_eq!(store.kv_get("key-0").unwrap(), Some(value));
        assert_eq!(store.kv_get("after").unwrap(), Some(b"1".to_vec()));
    }
}
