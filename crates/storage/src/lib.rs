//! Durable storage for Dormouse objects.
//!
//! Every object has its own SQLite database file. Its key-value data lives in a hidden table of
//! that database, so KV writes and SQL writes commit together. The runtime drives transactions by
//! turns: everything an object writes while handling one event commits as one batch, and no output
//! of that event leaves the process before the batch is durable.
//!
//! # Layout
//! - [`store`] — [`ObjectStore`]: opening an object's database, transactions, `delete_all`.
//! - [`turn`] — turns (a savepoint each) and the batch of turns one commit writes.
//! - `fk` — whether deferred foreign keys are violated, checked at each turn's end.
//! - [`log`] — [`LogFlusher`]: commits made durable apart from committing them (group commit),
//!   and checkpoints.
//! - [`kv`] — the key-value API over the hidden table, with [`ListQuery`].
//! - [`sql`] — application SQL under a guard (no `BEGIN`, no reserved tables, a pragma allow-list).
//! - `alarm` — the object's alarm.
//! - [`inspect`] — [`StorageView`]: what the inspector shows of an object's storage.
//! - [`wal`] — [`WalCursor`]: each commit's pages read back from the write-ahead log, and
//!   [`restore`], a database rebuilt from them (cluster mode ships and replays them).
//! - [`catalog`] — [`Catalog`]: classes, applied migrations, the index of pending alarms.
//! - [`error`] — [`StorageError`].
//!
//! ```
//! use dormouse_storage::{Durability, ObjectStore};
//!
//! # fn main() -> dormouse_storage::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("dormouse-doc-{}", std::process::id()));
//! let mut store = ObjectStore::open(&dir.join("object.sqlite"), Durability::Full)?;
//! store.begin_turn();
//! store.kv_put("count", b"1")?;
//! store.exec("CREATE TABLE IF NOT EXISTS log (line TEXT)", &[])?;
//! assert!(store.commit_turn()?, "the turn wrote something");
//! assert_eq!(store.kv_get("count")?, Some(b"1".to_vec()));
//! # drop(store); std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

mod alarm;
pub mod catalog;
pub mod error;
pub mod inspect;
pub mod kv;
pub mod log;
pub mod sql;
pub mod store;
pub mod turn;
pub mod wal;

mod fk;

mod guard;

pub use catalog::{Catalog, ClassInfo};
pub use dormouse_config::{Migration, Rename};
pub use error::{Result, StorageError};
pub use inspect::{InspectLimits, StorageView, TableView};
pub use kv::{Entry, ListQuery, MAX_KEYS_PER_OPERATION};
pub use log::{CHECKPOINT_PAGES, LogFlusher};
pub use sql::{SqlResult, SqlValue};
pub use store::{Durability, ObjectStore};
pub use wal::{CommitPages, WalCursor, restore};

#[cfg(test)]
mod test_support {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A path under the temporary directory, removed (with its neighbours) when dropped.
    pub(crate) struct TempPath(pub(crate) PathBuf);

    impl TempPath {
        pub(crate) fn new(label: &str) -> TempPath {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "dormouse-storage-{label}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            TempPath(dir.join("db.sqlite"))
        }
    }

    impl TempPath {
        /// Opens (again) the store at this path.
        pub(crate) fn open(&self, durability: crate::Durability) -> crate::ObjectStore {
            crate::ObjectStore::open(&self.0, durability).expect("open the test store")
        }
    }

    /// A store in a fresh temporary directory, with its path (which removes it when dropped).
    pub(crate) fn temp_store(
        label: &str,
        durability: crate::Durability,
    ) -> (TempPath, crate::ObjectStore) {
        let path = TempPath::new(label);
        let store = path.open(durability);
        (path, store)
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            if let Some(parent) = self.0.parent() {
                let _ = std::fs::remove_dir_all(parent);
            }
        }
    }
}
