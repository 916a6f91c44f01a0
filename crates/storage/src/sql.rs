//! The SQL API: application statements, under the guard.

use fallible_iterator::FallibleIterator;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Batch, StatementStatus};

use crate::error::{Result, StorageError};
use crate::store::{MAX_BINDINGS, MAX_STATEMENT_BYTES, ObjectStore};

use rusqlite::fallible_iterator;

/// A value in or out of SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// The result of [`ObjectStore::exec`]: the last statement's rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlResult {
    /// Column names of the last statement.
    pub columns: Vec<String>,
    /// Its rows.
    pub rows: Vec<Vec<SqlValue>>,
    /// Rows the statements visited (returned, plus rows scanned by full table scans and sorts).
    pub rows_read: u64,
    /// Rows the statements inserted, updated or deleted.
    pub rows_written: u64,
}

impl ObjectStore {
    /// Runs application SQL: one or more `;`-separated statements; `params` bind to the
    /// statement that has parameters (at most one may). Returns the last statement's rows.
    pub fn exec(&mut self, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
        if sql.len() > MAX_STATEMENT_BYTES {
            return Err(StorageError::Limit(format!(
                "SQL statement too long: {} bytes (the limit is {MAX_STATEMENT_BYTES})",
                sql.len()
            )));
        }
        if params.len() > MAX_BINDINGS {
            return Err(StorageError::Limit(format!(
                "too many SQL bindings: {} (the limit is {MAX_BINDINGS})",
                params.len()
            )));
        }
        self.before(false)?;
        self.guard.set_active(true);
        let result = self.run_batch(sql, params);
        self.guard.set_active(false);
        // The guard's reason, when it refused something: SQLite reports a refused statement as
        // an authorization error and a refused function as a plain error naming it, so the
        // guard's record, not the error code, says whether the failure was a refusal.
        match (result, self.guard.take_refusal()) {
            (Err(StorageError::Sql(_)), Some(reason)) => Err(StorageError::Forbidden(reason)),
            (other, _) => other,
        }
    }

    fn run_batch(&mut self, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
        let changes_before = self.conn.total_changes();
        let mut result = SqlResult::default();
        let mut bound = false;
        let mut rows_read = 0u64;
        let mut writes = false;
        let mut batch = Batch::new(&self.conn, sql);
        while let Some(mut statement) = batch.next()? {
            let count = statement.parameter_count();
            if count > 0 {
                if bound {
                    return Err(StorageError::Invalid(
                        "only one statement of a batch may take bindings".into(),
                    ));
                }
                if count != params.len() {
                    return Err(StorageError::Invalid(format!(
                        "wrong number of SQL bindings: the statement takes {count}, {} were given",
                        params.len()
                    )));
                }
                for (index, value) in params.iter().enumerate() {
                    statement.raw_bind_parameter(index + 1, to_sqlite(value))?;
                }
                bound = true;
            }
            writes |= !statement.readonly();
            let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
            let width = columns.len();
            let mut rows = Vec::new();
            {
                let mut cursor = statement.raw_query();
                while let Some(row) = cursor.next()? {
                    rows.push(
                        (0..width)
                            .map(|i| row.get_ref(i).map(from_sqlite))
                            .collect::<rusqlite::Result<Vec<_>>>()?,
                    );
                }
            }
            rows_read += rows.len() as u64
                + statement.get_status(StatementStatus::FullscanStep) as u64
                + statement.get_status(StatementStatus::Sort) as u64;
            result.columns = columns;
            result.rows = rows;
        }
        if !bound && !params.is_empty() {
            return Err(StorageError::Invalid(format!(
                "wrong number of SQL bindings: the statement takes none, {} were given",
                params.len()
            )));
        }
        if writes {
            self.before(true)?;
        }
        result.rows_read = rows_read;
        result.rows_written = self.conn.total_changes() - changes_before;
        Ok(result)
    }
}

fn to_sqlite(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

pub(crate) fn from_sqlite(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;
    use crate::test_support::{TempPath, temp_store};

    fn store() -> (TempPath, ObjectStore) {
        temp_store("sql", Durability::Relaxed)
    }

    #[test]
    fn statements_bindings_and_counters() -> Result<()> {
        let (_path, mut store) = store();
        let created = store.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB); INSERT INTO t (name) VALUES ('a')", &[])?;
        assert_eq!(created.rows_written, 1);
        let inserted = store.exec(
            "INSERT INTO t (name, data) VALUES (?, ?) RETURNING id",
            &[SqlValue::Text("b".into()), SqlValue::Blob(vec![1, 2])],
        )?;
        assert_eq!(inserted.rows, vec![vec![SqlValue::Integer(2)]]);
        let selected = store.exec("SELECT name, data FROM t ORDER BY id", &[])?;
        assert_eq!(selected.columns, ["name", "data"]);
        assert_eq!(
            selected.rows[1],
            vec![SqlValue::Text("b".into()), SqlValue::Blob(vec![1, 2])]
        );
        assert!(selected.rows_read >= 2);
        assert_eq!(selected.rows_written, 0);
        Ok(())
    }

    #[test]
    fn transactions_and_internal_tables_are_refused() {
        let (_path, mut store) = store();
        for sql in ["BEGIN", "SAVEPOINT x", "COMMIT"] {
            let error = store.exec(sql, &[]).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("To execute a transaction, please use"),
                "{sql}: {error}"
            );
        }
        let error = store.exec("SELECT * FROM _dormouse_kv", &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "access to _dormouse_kv is prohibited: names starting with _dormouse_ are reserved"
        );
        let error = store.exec("ATTACH 'x.db' AS x", &[]).unwrap_err();
        assert!(
            matches!(error, StorageError::Forbidden(_)) || error.to_string().contains("ATTACH"),
            "{error}"
        );
        let error = store.exec("PRAGMA synchronous = OFF", &[]).unwrap_err();
        assert_eq!(error.to_string(), "PRAGMA synchronous is not allowed");
        store.exec("PRAGMA table_list", &[]).unwrap();
        // The runtime's own statements are not affected.
        store.kv_put("k", b"v").unwrap();
    }

    #[test]
    fn a_statement_and_bindings_at_the_limits_are_accepted() -> Result<()> {
        let (_path, mut store) = store();
        let mut statement = String::from("SELECT 1 -- ");
        statement.push_str(&"x".repeat(MAX_STATEMENT_BYTES - statement.len()));
        assert_eq!(statement.len(), MAX_STATEMENT_BYTES);
        store.exec(&statement, &[])?;
        let marks = vec!["?"; MAX_BINDINGS].join(", ");
        let params = vec![SqlValue::Integer(7); MAX_BINDINGS];
        let selected = store.exec(&format!("SELECT {marks}"), &params)?;
        assert_eq!(selected.rows[0].len(), MAX_BINDINGS);
        Ok(())
    }

    #[test]
    fn a_mistake_in_sql_is_an_sql_error_not_a_refusal() {
        let (_path, mut store) = store();
        let error = store.exec("SELEC 1", &[]).unwrap_err();
        assert!(matches!(error, StorageError::Sql(_)), "{error:?}");
        let error = store.exec("SELECT * FROM missing", &[]).unwrap_err();
        assert!(matches!(error, StorageError::Sql(_)), "{error:?}");
    }

    #[test]
    fn rows_read_counts_what_a_statement_scanned() -> Result<()> {
        let (_path, mut store) = store();
        store.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", &[])?;
        for i in 0..10 {
            store.exec(
                "INSERT INTO t (name) VALUES (?)",
                &[SqlValue::Text(format!("n{}", 9 - i))],
            )?;
        }
        let lookup = store.exec("SELECT name FROM t WHERE id = 5", &[])?;
        assert_eq!(lookup.rows_read, 1, "a lookup by key reads its row only");
        let scan = store.exec("SELECT name FROM t", &[])?;
        // Each row returned, and each step the full scan took past the first.
        assert_eq!(scan.rows_read, 10 + 9, "a scan of 10 rows");
        let sorted = store.exec("SELECT name FROM t ORDER BY name", &[])?;
        assert_eq!(sorted.rows_read, scan.rows_read + 1, "and one sort");
        Ok(())
    }

    #[test]
    fn the_guard_keeps_indexes_triggers_and_views_off_reserved_names() {
        let (_path, mut store) = store();
        store.exec("CREATE TABLE t (a INTEGER)", &[]).unwrap();
        for sql in [
            "CREATE INDEX _dormouse_i ON t (a)",
            "CREATE INDEX i ON _dormouse_kv (value)",
            "CREATE TRIGGER tr AFTER INSERT ON _dormouse_kv BEGIN SELECT 1; END",
            "CREATE TRIGGER _dormouse_tr AFTER INSERT ON t BEGIN SELECT 1; END",
            "CREATE VIEW _dormouse_v AS SELECT 1",
        ] {
            let error = store.exec(sql, &[]).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("names starting with _dormouse_ are reserved"),
                "{sql}: {error}"
            );
        }
        store.exec("CREATE INDEX i ON t (a)", &[]).unwrap();
        store
            .exec(
                "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
                &[],
            )
            .unwrap();
        store.exec("CREATE VIEW v AS SELECT a FROM t", &[]).unwrap();
    }

    #[test]
    fn the_guard_refuses_the_extension_loader_and_page_size_changes_only() {
        let (_path, mut store) = store();
        let error = store.exec("SELECT load_extension('x')", &[]).unwrap_err();
        assert_eq!(error.to_string(), "load_extension() is not allowed");
        let error = store
            .exec("SELECT LOAD_EXTENSION('x', 'y')", &[])
            .unwrap_err();
        assert_eq!(error.to_string(), "load_extension() is not allowed");
        assert_eq!(
            store.exec("SELECT abs(-3)", &[]).unwrap().rows,
            vec![vec![SqlValue::Integer(3)]],
            "other functions run"
        );
        let error = store.exec("PRAGMA page_size = 8192", &[]).unwrap_err();
        assert_eq!(error.to_string(), "PRAGMA page_size cannot be changed");
        store.exec("PRAGMA page_size", &[]).unwrap();
        store.exec("PRAGMA defer_foreign_keys = ON", &[]).unwrap();
    }

    #[test]
    fn limits() {
        let (_path, mut store) = store();
        let long = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
        assert!(
            store
                .exec(&long, &[])
                .unwrap_err()
                .to_string()
                .starts_with("SQL statement too long")
        );
        let params = vec![SqlValue::Null; 101];
        assert_eq!(
            store.exec("SELECT 1", &params).unwrap_err().to_string(),
            "too many SQL bindings: 101 (the limit is 100)"
        );
        let columns: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        assert!(
            store
                .exec(&format!("CREATE TABLE wide ({})", columns.join(", ")), &[])
                .is_err()
        );
        let too_big = SqlValue::Blob(vec![0; crate::store::MAX_VALUE_BYTES + 100]);
        assert!(store.exec("SELECT ?", &[too_big]).is_err());
    }
}
