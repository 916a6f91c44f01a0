//! A look at an object's storage for the inspector: its size, alarm, first KV entries and the
//! first rows of each table. It reads only, outside any turn or transaction of the object, so
//! it neither sees nor disturbs work in progress.

use rusqlite::params;

use crate::error::Result;
use crate::guard::RESERVED_PREFIX;
use crate::kv::Entry;
use crate::sql::{SqlValue, from_sqlite};
use crate::store::ObjectStore;

/// How much of the storage one look returns: enough for a page, bounded for a huge object.
#[derive(Debug, Clone)]
pub struct InspectLimits {
    /// KV entries returned, in key order.
    pub kv_entries: usize,
    /// Only keys after this one (for paging through the KV data).
    pub kv_start_after: Option<String>,
    /// Tables described.
    pub tables: usize,
    /// Rows returned per table.
    pub rows_per_table: usize,
}

impl Default for InspectLimits {
    fn default() -> Self {
        InspectLimits {
            kv_entries: 100,
            kv_start_after: None,
            tables: 50,
            rows_per_table: 20,
        }
    }
}

/// What [`ObjectStore::inspect`] saw.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageView {
    /// Bytes the database occupies.
    pub size_bytes: u64,
    /// The alarm, in milliseconds since the epoch.
    pub alarm_ms: Option<i64>,
    /// KV entries in all.
    pub kv_count: u64,
    /// The first KV entries (after [`InspectLimits::kv_start_after`]), in key order.
    pub kv: Vec<Entry>,
    /// The application's tables, by name.
    pub tables: Vec<TableView>,
}

/// One application table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    /// The table's name, as created.
    pub name: String,
    /// Its column names, in order.
    pub columns: Vec<String>,
    /// Rows in all.
    pub row_count: u64,
    /// The first rows, in the table's own order.
    pub rows: Vec<Vec<SqlValue>>,
}

impl ObjectStore {
    /// Reads what the inspector shows. Call it between turns: inside one it would see writes
    /// that may still be rolled back.
    pub fn inspect(&self, limits: &InspectLimits) -> Result<StorageView> {
        let conn = &self.conn;
        let alarm_ms = conn
            .query_row(
                "SELECT at_ms FROM _dormouse_alarm WHERE id = 0",
                [],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?;
        let kv_count: i64 =
            conn.query_row("SELECT count(*) FROM _dormouse_kv", [], |row| row.get(0))?;
        let after = limits.kv_start_after.as_deref().unwrap_or("").as_bytes();
        let mut statement = conn
            .prepare("SELECT key, value FROM _dormouse_kv WHERE key > ?1 ORDER BY key LIMIT ?2")?;
        let kv = statement
            .query_map(params![after, limits.kv_entries as i64], |row| {
                let key: Vec<u8> = row.get(0)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), row.get(1)?))
            })?
            .collect::<rusqlite::Result<Vec<Entry>>>()?;
        let mut statement = conn.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND substr(name, 1, ?1) <> ?2 ORDER BY name LIMIT ?3",
        )?;
        let names = statement
            .query_map(
                params![
                    RESERVED_PREFIX.len() as i64,
                    RESERVED_PREFIX,
                    limits.tables as i64
                ],
                |row| row.get::<_, String>(0),
            )?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let tables = names
            .into_iter()
            .map(|name| self.table_view(name, limits.rows_per_table))
            .collect::<Result<Vec<_>>>()?;
        Ok(StorageView {
            size_bytes: self.database_size()?,
            alarm_ms,
            kv_count: kv_count as u64,
            kv,
            tables,
        })
    }

    fn table_view(&self, name: String, rows: usize) -> Result<TableView> {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let row_count: i64 =
            self.conn
                .query_row(&format!("SELECT count(*) FROM {quoted}"), [], |row| {
                    row.get(0)
                })?;
        let mut statement = self
            .conn
            .prepare(&format!("SELECT * FROM {quoted} LIMIT ?1"))?;
        let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let rows = statement
            .query_map([rows as i64], |row| {
                (0..width)
                    .map(|i| row.get_ref(i).map(from_sqlite))
                    .collect::<rusqlite::Result<Vec<SqlValue>>>()
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(TableView {
            name,
            columns,
            row_count: row_count as u64,
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;
    use crate::test_support::temp_store;

    #[test]
    fn a_look_shows_kv_entries_tables_and_the_alarm_but_no_hidden_table() {
        let (_path, mut store) = temp_store("inspect", Durability::Relaxed);
        for key in ["b", "a", "c"] {
            store.kv_put(key, key.as_bytes()).unwrap();
        }
        store.set_alarm(Some(1_900_000_000_000)).unwrap();
        store
            .exec(
                "CREATE TABLE \"odd \"\"name\" (id INTEGER, label TEXT)",
                &[],
            )
            .unwrap();
        for i in 0..30 {
            store
                .exec(
                    "INSERT INTO \"odd \"\"name\" VALUES (?, ?)",
                    &[SqlValue::Integer(i), SqlValue::Text(format!("row {i}"))],
                )
                .unwrap();
        }
        let limits = InspectLimits {
            kv_entries: 2,
            ..InspectLimits::default()
        };
        let view = store.inspect(&limits).unwrap();
        assert_eq!(view.alarm_ms, Some(1_900_000_000_000));
        assert_eq!(view.kv_count, 3);
        assert_eq!(
            view.kv,
            [("a".into(), b"a".to_vec()), ("b".into(), b"b".to_vec())]
        );
        assert_eq!(view.tables.len(), 1, "{:?}", view.tables);
        let table = &view.tables[0];
        assert_eq!(table.name, "odd \"name");
        assert_eq!(table.columns, ["id", "label"]);
        assert_eq!(table.row_count, 30);
        assert_eq!(table.rows.len(), 20);
        assert_eq!(
            table.rows[3],
            [SqlValue::Integer(3), SqlValue::Text("row 3".into())]
        );
        assert_eq!(view.size_bytes, store.database_size().unwrap());
        let next = InspectLimits {
            kv_start_after: Some("b".into()),
            ..limits
        };
        assert_eq!(
            store.inspect(&next).unwrap().kv,
            [("c".into(), b"c".to_vec())]
        );
    }

    #[test]
    fn an_empty_store_has_nothing_to_show() {
        let (_path, store) = temp_store("inspect-empty", Durability::Relaxed);
        let view = store.inspect(&InspectLimits::default()).unwrap();
        assert_eq!((view.alarm_ms, view.kv_count), (None, 0));
        assert!(view.kv.is_empty() && view.tables.is_empty());
    }
}
