//! An object's storage as the SDK sees it: the store, the output gate, the alarm scheduler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dormouse_sdk::host::StorageHost;
use dormouse_sdk::{Error, ErrorKind, ListOptions, SqlCursor, SqlStorageValue};
use dormouse_storage::{
    InspectLimits, ListQuery, LogFlusher, ObjectStore, SqlValue, StorageError, StorageView,
};

use crate::alarms::AlarmScheduler;
use crate::namespace::NamespaceStorage;
use crate::object::{ObjectCell, WriteFailure};

/// The storage of one object instance.
pub(crate) struct ObjectStorage {
    store: Mutex<ObjectStore>,
    /// Makes commits durable on this node (`None`: relaxed durability, where committing is
    /// enough).
    flusher: Option<LogFlusher>,
    /// Commits are durable once shipped to the cluster (cluster mode).
    replicated: bool,
    cell: Arc<ObjectCell>,
    alarms: Arc<AlarmScheduler>,
    /// The alarm was set or deleted since the last commit: the scheduler must learn the
    /// committed value.
    alarm_touched: AtomicBool,
    /// An alarm handler is running: `get_alarm` answers `None`, as on Cloudflare.
    alarm_running: AtomicBool,
    /// The alarm time the scheduler was last told of by this storage (`None`: not told yet).
    /// A commit that confirms it tells nothing again: the scheduler may already have fired it,
    /// and must not fire it twice.
    alarm_told: Mutex<Option<Option<i64>>>,
}

impl ObjectStorage {
    /// Opens the database of `cell`'s object in the namespace's directory.
    pub(crate) fn open(
        cell: Arc<ObjectCell>,
        site: &NamespaceStorage,
        in_turn: bool,
    ) -> Result<Arc<Self>, StorageError> {
        let path = site.database_path(&cell.id());
        let mut store = ObjectStore::open(&path, site.durability)?;
        if in_turn {
            store.begin_turn();
        }
        Ok(Arc::new(ObjectStorage {
            flusher: store.log_flusher(),
            replicated: site.replicated,
            store: Mutex::new(store),
            cell,
            alarms: site.alarms.clone(),
            alarm_touched: AtomicBool::new(false),
            alarm_running: AtomicBool::new(false),
            alarm_told: Mutex::new(None),
        }))
    }

    /// Deletes the alarm between turns (the inspector's action): committed, flushed, and the
    /// scheduler told.
    pub(crate) fn clear_alarm(&self) -> Result<(), StorageError> {
        self.store().set_alarm(None)?;
        if let Some(flusher) = &self.flusher {
            flusher.flush()?;
        }
        self.tell_scheduler(None);
        Ok(())
    }

    /// What the inspector shows of the storage; between turns.
    pub(crate) fn inspect(&self, limits: &InspectLimits) -> Result<StorageView, StorageError> {
        self.store().inspect(limits)
    }

    fn store(&self) -> MutexGuard<'_, ObjectStore> {
        self.store.lock().expect("object store lock")
    }

    /// Runs a write. In a turn, the turn's output from now on waits for its commit; outside one,
    /// the write committed on its own and is made durable before this returns.
    fn write<R>(
        &self,
        f: impl FnOnce(&mut ObjectStore) -> dormouse_storage::Result<R>,
    ) -> dormouse_sdk::Result<R> {
        let mut store = self.store();
        let result = f(&mut store).map_err(to_sdk_error);
        if store.is_dirty() {
            self.cell.gate.wrote();
        } else if !store.is_in_turn()
            && !store.in_transaction()
            && let Some(flusher) = &self.flusher
        {
            drop(store);
            flusher.flush().map_err(to_sdk_error)?;
        }
        result
    }

    pub(crate) fn begin_turn(&self) {
        self.store().begin_turn();
    }

    /// Ends the turn, keeping its writes in the batch. Returns whether it wrote anything.
    pub(crate) fn end_turn(&self) -> Result<bool, StorageError> {
        self.store().end_turn()
    }

    /// Commits the batch to the log; durable once [`flusher`](Self::flusher) has run.
    pub(crate) fn commit_batch(&self) -> Result<(), StorageError> {
        self.store().commit_batch()?;
        self.after_commit();
        Ok(())
    }

    pub(crate) fn has_open_batch(&self) -> bool {
        self.store().has_open_batch()
    }

    /// Drops what the batch holds.
    pub(crate) fn rollback_batch(&self) {
        self.store().rollback_batch();
        self.alarm_touched.store(true, Ordering::Relaxed);
    }

    /// What makes commits durable; `None` with relaxed durability.
    pub(crate) fn flusher(&self) -> Option<LogFlusher> {
        self.flusher.clone()
    }

    /// Whether commits need a flush to be durable: full durability, or cluster mode (where the
    /// flush ships them).
    pub(crate) fn flushes(&self) -> bool {
        self.flusher.is_some() || self.replicated
    }

    /// Whether commits are shipped to the cluster before their output leaves.
    pub(crate) fn is_replicated(&self) -> bool {
        self.replicated
    }

    pub(crate) fn checkpoint_due(&self) -> bool {
        self.store().checkpoint_due()
    }

    /// Copies the log into the database file; slow, call off the async threads.
    pub(crate) fn checkpoint(&self) -> Result<(), StorageError> {
        self.store().checkpoint()
    }

    pub(crate) fn rollback_turn(&self) {
        self.store().rollback_turn();
        // The scheduler may hold a time this turn set; the object's database (now rolled back)
        // decides when it fires, so it is harmless, and corrected on the next commit.
        self.alarm_touched.store(true, Ordering::Relaxed);
    }

    /// After a commit: tell the scheduler the committed alarm, if it changed.
    fn after_commit(&self) {
        if self.alarm_touched.swap(false, Ordering::Relaxed) {
            let committed = self.store().alarm().ok().flatten();
            self.tell_scheduler(committed);
        }
    }

    /// Tells the scheduler (and its index) the alarm time, unless it was told this already.
    fn tell_scheduler(&self, at_ms: Option<i64>) {
        let mut told = self.alarm_told.lock().expect("alarm told lock");
        if *told != Some(at_ms) {
            self.alarms.set(&self.cell, at_ms);
            *told = Some(at_ms);
            if self.replicated
                && let Some(placement) = self
                    .cell
                    .namespace
                    .shared
                    .upgrade()
                    .and_then(|shared| shared.placement.clone())
            {
                let object = self.cell.namespace.placed(&self.cell.key().raw);
                placement.alarm_changed(object, at_ms);
            }
        }
    }

    /// The alarm as committed or written in this turn (ignoring whether a handler runs).
    pub(crate) fn stored_alarm(&self) -> dormouse_sdk::Result<Option<i64>> {
        self.store().alarm().map_err(to_sdk_error)
    }

    pub(crate) fn set_alarm_running(&self, running: bool) {
        self.alarm_running.store(running, Ordering::Relaxed);
    }

    /// Deletes the alarm if it is still set for `at_ms` (the handler did not set another).
    pub(crate) fn clear_fired_alarm(&self, at_ms: i64) -> dormouse_sdk::Result<()> {
        if self.stored_alarm()? == Some(at_ms) {
            self.set_alarm(None)?;
        }
        Ok(())
    }

    /// Outside a turn, every operation commits on its own: sync the scheduler at once.
    fn after_operation(&self) {
        let active = self.store().is_in_turn();
        if !active {
            self.after_commit();
        }
    }
}

impl StorageHost for ObjectStorage {
    fn get(&self, keys: &[&str]) -> dormouse_sdk::Result<Vec<(String, Vec<u8>)>> {
        let mut store = self.store();
        match keys {
            [key] => Ok(store
                .kv_get(key)
                .map_err(to_sdk_error)?
                .map(|value| ((*key).to_owned(), value))
                .into_iter()
                .collect()),
            keys => store.kv_get_many(keys).map_err(to_sdk_error),
        }
    }

    fn put(&self, entries: &[(&str, &[u8])]) -> dormouse_sdk::Result<()> {
        self.write(|store| match entries {
            [(key, value)] => store.kv_put(key, value),
            entries => store.kv_put_many(entries),
        })
    }

    fn delete(&self, keys: &[&str]) -> dormouse_sdk::Result<usize> {
        self.write(|store| match keys {
            [key] => store.kv_delete(key).map(usize::from),
            keys => store.kv_delete_many(keys),
        })
    }

    fn list(&self, options: &ListOptions) -> dormouse_sdk::Result<Vec<(String, Vec<u8>)>> {
        let query = ListQuery {
            start: options.start.clone(),
            start_after: options.start_after.clone(),
            end: options.end.clone(),
            prefix: options.prefix.clone(),
            reverse: options.reverse,
            limit: options.limit,
        };
        self.store().kv_list(&query).map_err(to_sdk_error)
    }

    fn delete_all(&self) -> dormouse_sdk::Result<()> {
        self.alarm_touched.store(true, Ordering::Relaxed);
        let result = self.write(ObjectStore::delete_all);
        self.after_operation();
        result
    }

    fn exec(&self, sql: &str, bindings: &[SqlStorageValue]) -> dormouse_sdk::Result<SqlCursor> {
        let params: Vec<SqlValue> = bindings.iter().map(to_sql_value).collect();
        let result = self.write(|store| store.exec(sql, &params))?;
        let rows = result
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(from_sql_value).collect())
            .collect();
        Ok(SqlCursor::new(
            result.columns,
            rows,
            result.rows_read,
            result.rows_written,
        ))
    }

    fn database_size(&self) -> dormouse_sdk::Result<u64> {
        self.store().database_size().map_err(to_sdk_error)
    }

    fn transaction(
        &self,
        body: &mut dyn FnMut() -> dormouse_sdk::Result<()>,
    ) -> dormouse_sdk::Result<()> {
        self.store().begin_transaction().map_err(to_sdk_error)?;
        // The body uses this storage again: the store's lock is not held while it runs.
        let result = body();
        let end = self.write(|store| store.end_transaction(result.is_ok()));
        self.after_operation();
        result.and(end)
    }

    fn get_alarm(&self) -> dormouse_sdk::Result<Option<i64>> {
        if self.alarm_running.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.stored_alarm()
    }

    fn set_alarm(&self, at_ms: Option<i64>) -> dormouse_sdk::Result<()> {
        self.write(|store| store.set_alarm(at_ms))?;
        self.alarm_touched.store(true, Ordering::Relaxed);
        if let Some(at) = at_ms {
            // Scheduled (and indexed) before the commit: the index may name an alarm the object
            // never committed, never miss one it did. The object's database decides at fire time.
            self.tell_scheduler(Some(at));
        }
        self.after_operation();
        Ok(())
    }

    fn sync(&self) -> dormouse_sdk::Result<()> {
        self.store().commit_so_far().map_err(to_sdk_error)?;
        self.after_commit();
        // One flush covers this commit and every earlier one still waiting for its own.
        if let Some(flusher) = &self.flusher
            && let Err(error) = flusher.flush()
        {
            let answer = sdk_error_of(&error);
            self.cell.gate.fail(WriteFailure::Flush(error));
            self.cell.wake_task();
            return Err(answer);
        }
        self.cell.gate.synced();
        Ok(())
    }
}

fn to_sql_value(value: &SqlStorageValue) -> SqlValue {
    match value {
        SqlStorageValue::Null => SqlValue::Null,
        SqlStorageValue::Boolean(b) => SqlValue::Integer(i64::from(*b)),
        SqlStorageValue::Integer(i) => SqlValue::Integer(*i),
        SqlStorageValue::Float(f) => SqlValue::Real(*f),
        SqlStorageValue::String(s) => SqlValue::Text(s.clone()),
        SqlStorageValue::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn from_sql_value(value: SqlValue) -> SqlStorageValue {
    match value {
        SqlValue::Null => SqlStorageValue::Null,
        SqlValue::Integer(i) => SqlStorageValue::Integer(i),
        SqlValue::Real(f) => SqlStorageValue::Float(f),
        SqlValue::Text(s) => SqlStorageValue::String(s),
        SqlValue::Blob(b) => SqlStorageValue::Blob(b),
    }
}

/// Maps a storage failure to the SDK's error, keeping the message.
pub(crate) fn to_sdk_error(error: StorageError) -> Error {
    sdk_error_of(&error)
}

/// The error the application sees for `error`.
fn sdk_error_of(error: &StorageError) -> Error {
    let kind = match error {
        StorageError::Limit(_) => ErrorKind::Range,
        StorageError::Invalid(_) => ErrorKind::Type,
        StorageError::Forbidden(_) => ErrorKind::InvalidState,
        _ => ErrorKind::Storage,
    };
    Error::new(kind, error.to_string())
}
