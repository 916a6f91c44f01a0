//! Durable storage: synchronous key-value, SQL, transactions and the alarm of one object.
//!
//! Everything an object writes while handling one event commits as one atomic batch when the
//! handler returns, before anything the handler sent leaves the process; a client that got a reply
//! never sees the write behind it disappear.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::host::StorageHost;

/// The storage of one object. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    host: Arc<dyn StorageHost>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            format!("cannot serialize value: {e}"),
        )
    })
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            format!("cannot deserialize the value of {key:?}: {e}"),
        )
    })
}

impl Storage {
    /// Wraps a runtime's storage; for runtimes.
    #[doc(hidden)]
    pub fn from_host(host: Arc<dyn StorageHost>) -> Self {
        Storage { host }
    }

    /// The runtime's side of this storage; for guests written in another language.
    #[doc(hidden)]
    pub fn host(&self) -> &Arc<dyn StorageHost> {
        &self.host
    }

    /// The value stored under `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.host
            .get(&[key])?
            .into_iter()
            .next()
            .map(|(key, bytes)| decode(&key, &bytes))
            .transpose()
    }

    /// The values stored under `keys`, sorted by key; missing keys are left out (at most 128 keys).
    pub fn get_multiple<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<(String, T)>> {
        self.host
            .get(keys)?
            .into_iter()
            .map(|(key, bytes)| {
                let value = decode(&key, &bytes)?;
                Ok((key, value))
            })
            .collect()
    }

    /// Stores `value` under `key` (key and serialized value together at most 2 MB).
    pub fn put<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let bytes = encode(&value)?;
        self.host.put(&[(key, &bytes)])
    }

    /// Stores several entries, all or none (at most 128).
    pub fn put_multiple<K: AsRef<str>, T: Serialize>(
        &self,
        entries: impl IntoIterator<Item = (K, T)>,
    ) -> Result<()> {
        let encoded: Vec<(K, Vec<u8>)> = entries
            .into_iter()
            .map(|(key, value)| Ok((key, encode(&value)?)))
            .collect::<Result<_>>()?;
        let refs: Vec<(&str, &[u8])> = encoded
            .iter()
            .map(|(key, value)| (key.as_ref(), value.as_slice()))
            .collect();
        self.host.put(&refs)
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.host.delete(&[key])? > 0)
    }

    /// Deletes `keys` (at most 128); returns how many existed.
    pub fn delete_multiple(&self, keys: &[&str]) -> Result<usize> {
        self.host.delete(keys)
    }

    /// Every entry, in key order.
    pub fn list<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>> {
        self.list_with_options(ListOptions::new())
    }

    /// Entries selected by `options`, in key order (descending with `reverse`).
    pub fn list_with_options<T: DeserializeOwned>(
        &self,
        options: ListOptions,
    ) -> Result<Vec<(String, T)>> {
        self.host
            .list(&options)?
            .into_iter()
            .map(|(key, bytes)| {
                let value = decode(&key, &bytes)?;
                Ok((key, value))
            })
            .collect()
    }

    /// Deletes every key, every SQL table and the alarm, atomically.
    pub fn delete_all(&self) -> Result<()> {
        self.host.delete_all()
    }

    /// Runs `f` atomically: if it returns an error, everything it wrote is rolled back. Nests.
    pub fn transaction_sync<R>(&self, f: impl FnOnce(&Storage) -> Result<R>) -> Result<R> {
        let mut f = Some(f);
        let mut output = None;
        self.host.transaction(&mut || {
            let f = f.take().expect("the transaction body runs once");
            output = Some(f(self)?);
            Ok(())
        })?;
        Ok(output.expect("the body succeeded"))
    }

    /// The SQL interface to the same database.
    pub fn sql(&self) -> SqlStorage {
        SqlStorage {
            host: self.host.clone(),
        }
    }

    /// When the alarm is set for, in milliseconds since the epoch; `None` if unset or running.
    pub fn get_alarm(&self) -> Result<Option<i64>> {
        self.host.get_alarm()
    }

    /// Sets the alarm, replacing any other: `alarm()` runs at that time (at least once). A time
    /// in the past fires at once.
    pub fn set_alarm(&self, time: impl Into<ScheduledTime>) -> Result<()> {
        let at = time.into().epoch_millis()?;
        self.host.set_alarm(Some(at))
    }

    /// Deletes the alarm (an alarm handler already running finishes).
    pub fn delete_alarm(&self) -> Result<()> {
        self.host.set_alarm(None)
    }

    /// Makes what was written so far durable now, instead of at the end of the handler.
    pub fn sync(&self) -> Result<()> {
        self.host.sync()
    }
}

/// Which entries [`Storage::list_with_options`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// First key (inclusive).
    pub start: Option<String>,
    /// Keys after this one (exclusive); not together with `start`.
    pub start_after: Option<String>,
    /// Keys before this one (exclusive).
    pub end: Option<String>,
    /// Only keys with this prefix.
    pub prefix: Option<String>,
    /// Descending key order (the bounds keep their meaning).
    pub reverse: bool,
    /// At most this many entries (must be positive).
    pub limit: Option<usize>,
}

impl ListOptions {
    /// Every entry.
    pub fn new() -> Self {
        ListOptions::default()
    }

    /// From `key` (inclusive).
    pub fn start(mut self, key: impl Into<String>) -> Self {
        self.start = Some(key.into());
        self
    }

    /// After `key` (exclusive).
    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into());
        self
    }

    /// Before `key` (exclusive).
    pub fn end(mut self, key: impl Into<String>) -> Self {
        self.end = Some(key.into());
        self
    }

    /// Keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Descending order.
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }

    /// At most `limit` entries.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// When an alarm should fire: an instant, or a delay from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledTime {
    /// At this instant.
    At(SystemTime),
    /// This long from now.
    In(Duration),
    /// At this many milliseconds since the epoch (what `get_alarm` returns).
    EpochMillis(i64),
}

impl ScheduledTime {
    fn epoch_millis(self) -> Result<i64> {
        let millis = match self {
            ScheduledTime::EpochMillis(ms) => ms,
            ScheduledTime::At(at) => at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            ScheduledTime::In(delay) => (SystemTime::now() + delay)
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        if millis <= 0 {
            return Err(Error::new(
                ErrorKind::Type,
                format!("alarm time must be after the epoch, got {millis} ms"),
            ));
        }
        Ok(millis)
    }
}

impl From<SystemTime> for ScheduledTime {
    fn from(at: SystemTime) -> Self {
        ScheduledTime::At(at)
    }
}

impl From<Duration> for ScheduledTime {
    fn from(delay: Duration) -> Self {
        ScheduledTime::In(delay)
    }
}

impl From<i64> for ScheduledTime {
    fn from(epoch_millis: i64) -> Self {
        ScheduledTime::EpochMillis(epoch_millis)
    }
}

/// What an `alarm` handler is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmInfo {
    /// When the alarm was set to fire.
    pub scheduled_time: SystemTime,
    /// Failed attempts before this one.
    pub retry_count: u32,
    /// Whether this is a retry of a failed attempt.
    pub is_retry: bool,
}

/// The SQL interface of an object's database.
#[derive(Clone)]
pub struct SqlStorage {
    host: Arc<dyn StorageHost>,
}

impl fmt::Debug for SqlStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStorage").finish_non_exhaustive()
    }
}

impl SqlStorage {
    /// Runs `query` (one or more `;`-separated statements; bindings go to the one with `?`
    /// parameters) and returns a cursor over the last statement's rows. `BEGIN`/`SAVEPOINT` are
    /// refused: use [`Storage::transaction_sync`].
    pub fn exec(
        &self,
        query: &str,
        bindings: impl Into<Option<Vec<SqlStorageValue>>>,
    ) -> Result<SqlCursor> {
        self.host.exec(query, &bindings.into().unwrap_or_default())
    }

    /// Bytes the database occupies.
    pub fn database_size(&self) -> Result<u64> {
        self.host.database_size()
    }
}

/// A value bound to, or read from, SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlStorageValue {
    /// `NULL`.
    Null,
    /// A boolean, stored as 0 or 1.
    Boolean(bool),
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Float(f64),
    /// Text.
    String(String),
    /// Bytes.
    Blob(Vec<u8>),
}

macro_rules! sql_value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {
        $(impl From<$t> for SqlStorageValue {
            fn from(value: $t) -> Self {
                SqlStorageValue::$variant(value $(as $cast)?)
            }
        })*
    };
}

sql_value_from!(bool => Boolean, i64 => Integer, i32 => Integer as i64, u32 => Integer as i64, f64 => Float, String => String, Vec<u8> => Blob);

impl From<&str> for SqlStorageValue {
    fn from(value: &str) -> Self {
        SqlStorageValue::String(value.to_owned())
    }
}

impl<T: Into<SqlStorageValue>> From<Option<T>> for SqlStorageValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlStorageValue::Null, Into::into)
    }
}

impl SqlStorageValue {
    fn to_json(&self) -> Value {
        match self {
            SqlStorageValue::Null => Value::Null,
            SqlStorageValue::Boolean(b) => Value::Bool(*b),
            SqlStorageValue::Integer(i) => Value::Number((*i).into()),
            SqlStorageValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            SqlStorageValue::String(s) => Value::String(s.clone()),
            SqlStorageValue::Blob(b) => {
                Value::Array(b.iter().map(|byte| Value::Number((*byte).into())).collect())
            }
        }
    }
}

/// The rows of a query, read as values of any `Deserialize` type (a struct whose fields are the
/// column names, a map, a tuple-like `Vec`…) or raw.
#[derive(Debug, Clone, Default)]
pub struct SqlCursor {
    columns: Vec<String>,
    rows: VecDeque<Vec<SqlStorageValue>>,
    rows_read: u64,
    rows_written: u64,
}

impl SqlCursor {
    /// Builds a cursor; for runtimes.
    #[doc(hidden)]
    pub fn new(
        columns: Vec<String>,
        rows: Vec<Vec<SqlStorageValue>>,
        rows_read: u64,
        rows_written: u64,
    ) -> Self {
        SqlCursor {
            columns,
            rows: rows.into(),
            rows_read,
            rows_written,
        }
    }

    /// The column names.
    pub fn column_names(&self) -> &[String] {
        &self.columns
    }

    /// Rows the query read.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// Rows the query wrote.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// The next row.
    #[allow(
        clippy::should_implement_trait,
        reason = "workers-rs's name; the item type is generic per call"
    )]
    pub fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T>> {
        let row = self.rows.pop_front()?;
        Some(self.decode(row))
    }

    /// Every remaining row.
    pub fn to_array<T: DeserializeOwned>(&mut self) -> Result<Vec<T>> {
        std::mem::take(&mut self.rows)
            .into_iter()
            .map(|row| self.decode(row))
            .collect()
    }

    /// The only row; an error unless there is exactly one.
    pub fn one<T: DeserializeOwned>(&mut self) -> Result<T> {
        match self.rows.len() {
            1 => {
                let row = self.rows.pop_front().expect("one row");
                self.decode(row)
            }
            0 => Err(Error::new(
                ErrorKind::InvalidState,
                "Expected exactly one result from SQL query, but got no results.",
            )),
            _ => Err(Error::new(
                ErrorKind::InvalidState,
                "Expected exactly one result from SQL query, but got multiple results.",
            )),
        }
    }

    /// Every remaining row as values, in column order.
    pub fn raw(&mut self) -> Vec<Vec<SqlStorageValue>> {
        std::mem::take(&mut self.rows).into()
    }

    fn decode<T: DeserializeOwned>(&self, row: Vec<SqlStorageValue>) -> Result<T> {
        let object: Map<String, Value> = self
            .columns
            .iter()
            .cloned()
            .zip(row.iter().map(SqlStorageValue::to_json))
            .collect();
        serde_json::from_value(Value::Object(object)).map_err(|e| {
            Error::new(
                ErrorKind::Serialization,
                format!("cannot deserialize SQL row: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_deserialize_by_column_name() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct User {
            id: i64,
            name: String,
            avatar: Option<Vec<u8>>,
        }
        let mut cursor = SqlCursor::new(
            vec!["id".into(), "name".into(), "avatar".into()],
            vec![
                vec![
                    SqlStorageValue::Integer(1),
                    "ann".into(),
                    SqlStorageValue::Blob(vec![7]),
                ],
                vec![
                    SqlStorageValue::Integer(2),
                    "ben".into(),
                    SqlStorageValue::Null,
                ],
            ],
            2,
            0,
        );
        let first: User = cursor.next().unwrap().unwrap();
        assert_eq!(
            first,
            User {
                id: 1,
                name: "ann".into(),
                avatar: Some(vec![7])
            }
        );
        assert_eq!(cursor.to_array::<User>().unwrap()[0].avatar, None);
        assert!(
            cursor
                .one::<User>()
                .unwrap_err()
                .text()
                .contains("no results")
        );
    }

    #[test]
    fn alarm_times() {
        assert!(ScheduledTime::EpochMillis(0).epoch_millis().is_err());
        let soon = ScheduledTime::from(Duration::from_secs(60))
            .epoch_millis()
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((soon - now - 60_000).abs() < 1_000);
    }
}
