//! Turns and batches: how an object's writes are grouped into transactions.
//!
//! A turn's operations run inside a savepoint of their own, so that an abandoned turn (a panic, a
//! reset) loses exactly its own writes. Consecutive turns share one SQLite transaction, the
//! batch: [`ObjectStore::end_turn`] keeps a turn's writes in it, and [`ObjectStore::commit_batch`]
//! commits all of them at once, writing each changed page to the log once however many turns
//! changed it. The runtime commits a batch when the previous one's flush has returned, so under
//! load a batch holds the turns that ran during one flush.
//!
//! Deferred foreign keys are checked at each turn's end rather than at the batch's commit: a turn
//! that leaves a violation fails alone, as it would have if it had committed by itself.

use crate::error::{Result, StorageError};
use crate::store::{Batch, ObjectStore, Turn};

/// The savepoint of the running turn.
const TURN_SAVEPOINT: &str = "dormouse_turn";

impl ObjectStore {
    /// Starts a turn: its operations, until [`end_turn`](Self::end_turn), are one atomic unit.
    pub fn begin_turn(&mut self) {
        self.turn = Turn::Started;
    }

    /// Whether a turn is running.
    pub fn is_in_turn(&self) -> bool {
        self.turn != Turn::Idle
    }

    /// Whether the running turn has written anything not yet committed.
    pub fn is_dirty(&self) -> bool {
        self.turn == Turn::Open { dirty: true }
    }

    /// Whether turns' writes wait in a batch that [`commit_batch`](Self::commit_batch) has not
    /// committed yet.
    pub fn has_uncommitted_batch(&self) -> bool {
        self.batch == Batch::Open { dirty: true }
    }

    /// Ends the turn, keeping what it wrote in the batch (not committed yet). Returns whether it
    /// wrote anything. A turn that leaves a deferred foreign key violated fails here, its writes
    /// rolled back.
    pub fn end_turn(&mut self) -> Result<bool> {
        let turn = std::mem::replace(&mut self.turn, Turn::Idle);
        self.savepoints = 0;
        let Turn::Open { dirty } = turn else {
            return Ok(false);
        };
        if dirty && crate::fk::deferred_violations(&self.conn) {
            self.rollback_savepoint();
            return Err(crate::fk::violation_error().into());
        }
        self.conn
            .execute_batch(&format!("RELEASE {TURN_SAVEPOINT}"))?;
        if dirty {
            self.batch = Batch::Open { dirty: true };
        } else if self.batch == (Batch::Open { dirty: false }) {
            // Nothing to keep: end the read transaction now rather than hold its snapshot.
            self.commit_batch()?;
        }
        Ok(dirty)
    }

    /// Commits the batch: every turn ended since the last commit (to the log: with full
    /// durability it is durable once the [`log_flusher`](Self::log_flusher) has run after it).
    /// Returns whether it held writes. On error all of them are rolled back.
    pub fn commit_batch(&mut self) -> Result<bool> {
        let Batch::Open { dirty } = std::mem::replace(&mut self.batch, Batch::None) else {
            return Ok(false);
        };
        if let Err(error) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
        Ok(dirty)
    }

    /// Whether a batch transaction is open (with writes or not): a checkpoint must wait for its
    /// commit.
    pub fn has_open_batch(&self) -> bool {
        self.batch != Batch::None
    }

    /// Drops the batch: every turn's writes since the last commit.
    pub fn rollback_batch(&mut self) {
        self.rollback_turn();
        if std::mem::replace(&mut self.batch, Batch::None) != Batch::None {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Ends the turn and commits it with the rest of the batch. Returns whether the turn wrote
    /// anything.
    pub fn commit_turn(&mut self) -> Result<bool> {
        let wrote = self.end_turn()?;
        self.commit_batch()?;
        Ok(wrote)
    }

    /// Commits what the turn (and the batch before it) wrote so far and keeps the turn going
    /// (`storage.sync()`).
    pub fn commit_so_far(&mut self) -> Result<()> {
        if self.savepoints > 0 {
            return Err(StorageError::Invalid(
                "sync() cannot be called inside transaction_sync()".into(),
            ));
        }
        if self.is_in_turn() {
            self.end_turn()?;
            self.turn = Turn::Started;
        }
        self.commit_batch()?;
        Ok(())
    }

    /// Ends the turn, discarding what it wrote; earlier turns of the batch keep theirs.
    pub fn rollback_turn(&mut self) {
        let turn = std::mem::replace(&mut self.turn, Turn::Idle);
        self.savepoints = 0;
        if let Turn::Open { .. } = turn {
            self.rollback_savepoint();
        }
    }

    fn rollback_savepoint(&mut self) {
        let _ = self.conn.execute_batch(&format!(
            "ROLLBACK TO {TURN_SAVEPOINT}; RELEASE {TURN_SAVEPOINT}"
        ));
    }

    /// Called before every operation: in a turn, joins (or opens) the turn's savepoint inside
    /// the batch; outside one, commits the batch first, so that the operation commits on its own.
    pub(crate) fn before(&mut self, writes: bool) -> Result<()> {
        match self.turn {
            Turn::Idle => {
                if self.savepoints == 0 {
                    self.commit_batch()?;
                }
            }
            Turn::Started => {
                if self.batch == Batch::None {
                    self.conn.execute_batch("BEGIN")?;
                    self.batch = Batch::Open { dirty: false };
                }
                self.conn
                    .execute_batch(&format!("SAVEPOINT {TURN_SAVEPOINT}"))?;
                self.turn = Turn::Open { dirty: writes };
            }
            Turn::Open { dirty } => {
                self.turn = Turn::Open {
                    dirty: dirty || writes,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{TempPath, temp_store};
    use crate::{Durability, ObjectStore};

    fn store(label: &str) -> (TempPath, ObjectStore) {
        temp_store(label, Durability::Full)
    }

    #[test]
    fn turns_of_one_batch_read_each_others_writes_and_commit_together() {
        let (path, mut store) = store("batch");
        store.begin_turn();
        store.kv_put("a", b"1").unwrap();
        assert!(store.end_turn().unwrap());
        store.begin_turn();
        assert_eq!(
            store.kv_get("a").unwrap(),
            Some(b"1".to_vec()),
            "read your writes"
        );
        store.kv_put("b", b"2").unwrap();
        assert!(store.end_turn().unwrap());
        assert!(store.has_uncommitted_batch());
        assert!(store.commit_batch().unwrap());
        assert!(!store.has_uncommitted_batch());
        assert!(!store.commit_batch().unwrap(), "nothing left to commit");
        drop(store);
        let mut store = path.open(Durability::Full);
        assert_eq!(store.kv_get("b").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn a_turn_says_whether_it_runs_and_whether_it_wrote() {
        let (_path, mut store) = store("state");
        assert!(!store.is_in_turn());
        store.begin_turn();
        assert!(store.is_in_turn());
        assert!(!store.is_dirty());
        store.kv_get("a").unwrap();
        assert!(!store.is_dirty(), "a read writes nothing");
        store.kv_put("a", b"1").unwrap();
        assert!(store.is_dirty());
        store.end_turn().unwrap();
        assert!(!store.is_in_turn());
        assert!(!store.is_dirty());
    }

    #[test]
    fn a_read_only_turn_leaves_no_transaction_open_unless_writes_wait() {
        let (_path, mut store) = store("read-only");
        assert!(!store.has_open_batch());
        store.begin_turn();
        store.kv_get("a").unwrap();
        assert!(!store.end_turn().unwrap());
        assert!(!store.has_open_batch(), "its read transaction ended");
        store.begin_turn();
        store.kv_put("a", b"1").unwrap();
        store.end_turn().unwrap();
        store.begin_turn();
        store.kv_get("a").unwrap();
        store.end_turn().unwrap();
        assert!(store.has_open_batch());
        assert!(
            store.has_uncommitted_batch(),
            "the read did not commit the batch"
        );
        store.commit_batch().unwrap();
        assert!(!store.has_open_batch());
    }

    #[test]
    fn rolling_back_the_batch_drops_every_turn_since_the_last_commit() {
        let (_path, mut store) = store("rollback-batch");
        store.begin_turn();
        store.kv_put("committed", b"1").unwrap();
        store.commit_turn().unwrap();
        for key in ["first", "second"] {
            store.begin_turn();
            store.kv_put(key, b"1").unwrap();
            store.end_turn().unwrap();
        }
        store.rollback_batch();
        assert!(!store.has_open_batch());
        assert_eq!(store.kv_get("committed").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.kv_get("first").unwrap(), None);
        assert_eq!(store.kv_get("second").unwrap(), None);
        store.rollback_batch();
    }

    #[test]
    fn sync_commits_so_far_and_the_turn_goes_on() {
        let (path, mut store) = store("sync");
        store.begin_turn();
        store.kv_put("synced", b"1").unwrap();
        store.commit_so_far().unwrap();
        assert!(!store.has_uncommitted_batch());
        assert!(store.is_in_turn());
        store.kv_put("later", b"2").unwrap();
        store.rollback_turn();
        store.begin_turn();
        store.begin_transaction().unwrap();
        assert_eq!(
            store.commit_so_far().unwrap_err().to_string(),
            "sync() cannot be called inside transaction_sync()"
        );
        store.end_transaction(false).unwrap();
        store.rollback_turn();
        drop(store);
        let mut store = path.open(Durability::Full);
        assert_eq!(store.kv_get("synced").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.kv_get("later").unwrap(), None);
    }

    #[test]
    fn an_abandoned_turn_loses_only_its_own_writes() {
        let (_path, mut store) = store("rollback");
        store.begin_turn();
        store.kv_put("kept", b"1").unwrap();
        store.end_turn().unwrap();
        store.begin_turn();
        store.kv_put("lost", b"2").unwrap();
        store.rollback_turn();
        store.commit_batch().unwrap();
        assert_eq!(store.kv_get("kept").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.kv_get("lost").unwrap(), None);
    }

    #[test]
    fn a_batch_that_is_not_committed_is_lost_with_the_connection() {
        let (path, mut store) = store("uncommitted");
        store.begin_turn();
        store.kv_put("a", b"1").unwrap();
        store.end_turn().unwrap();
        drop(store);
        let mut store = path.open(Durability::Full);
        assert_eq!(store.kv_get("a").unwrap(), None);
    }

    #[test]
    fn an_operation_outside_a_turn_commits_the_batch_and_itself() {
        let (path, mut store) = store("outside");
        store.begin_turn();
        store.kv_put("turn", b"1").unwrap();
        store.end_turn().unwrap();
        store.kv_put("outside", b"2").unwrap();
        assert!(!store.has_uncommitted_batch());
        drop(store);
        let mut store = path.open(Durability::Full);
        assert_eq!(store.kv_get("turn").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.kv_get("outside").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn a_turn_that_leaves_a_deferred_foreign_key_broken_fails_alone() {
        let (_path, mut store) = store("deferred");
        store
            .exec(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
                &[],
            )
            .unwrap();
        store.begin_turn();
        store.kv_put("before", b"1").unwrap();
        store.end_turn().unwrap();
        store.begin_turn();
        store.exec("INSERT INTO child VALUES (42)", &[]).unwrap();
        let error = store.end_turn().unwrap_err();
        assert!(
            error.to_string().contains("FOREIGN KEY constraint failed"),
            "{error}"
        );
        store.begin_turn();
        store
            .exec(
                "INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1)",
                &[],
            )
            .unwrap();
        assert!(
            store.end_turn().unwrap(),
            "a violation resolved in the turn is fine"
        );
        assert!(store.commit_batch().unwrap());
        assert_eq!(store.kv_get("before").unwrap(), Some(b"1".to_vec()));
        let children = store.exec("SELECT pid FROM child", &[]).unwrap();
        assert_eq!(children.rows.len(), 1, "only the valid child was kept");
    }
}
