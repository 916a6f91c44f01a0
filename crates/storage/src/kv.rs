//! The key-value API, stored in a hidden table of the object's database so that KV and SQL share
//! one transaction.

use rusqlite::OptionalExtension;

use crate::error::{Result, StorageError};
use crate::store::{MAX_VALUE_BYTES, ObjectStore};

/// Most keys in one multi-key operation (Cloudflare: 128).
pub const MAX_KEYS_PER_OPERATION: usize = 128;

/// What [`ObjectStore::kv_list`] returns, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// First key (inclusive).
    pub start: Option<String>,
    /// First key is after this one (exclusive); not with `start`.
    pub start_after: Option<String>,
    /// Keys before this one (exclusive).
    pub end: Option<String>,
    /// Only keys with this prefix.
    pub prefix: Option<String>,
    /// Descending order (the bounds keep their meaning).
    pub reverse: bool,
    /// At most this many entries; must be positive.
    pub limit: Option<usize>,
}

/// A key and its stored (serialized) value.
pub type Entry = (String, Vec<u8>);

impl ObjectStore {
    /// The value of `key`.
    pub fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.before(false)?;
        let value = self
            .conn
            .prepare_cached("SELECT value FROM _dormouse_kv WHERE key = ?1")?
            .query_row([key.as_bytes()], |row| row.get(0))
            .optional()?;
        Ok(value)
    }

    /// The values of `keys` that exist, sorted by key.
    pub fn kv_get_many(&mut self, keys: &[&str]) -> Result<Vec<Entry>> {
        check_key_count(keys.len())?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = self.kv_get(key)? {
                out.push(((*key).to_owned(), value));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// Stores `value` under `key`.
    pub fn kv_put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        check_entry(key, value)?;
        self.before(true)?;
        self.conn
            .prepare_cached("INSERT INTO _dormouse_kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
            .execute((key.as_bytes(), value))?;
        Ok(())
    }

    /// Stores every entry, all or none.
    pub fn kv_put_many(&mut self, entries: &[(&str, &[u8])]) -> Result<()> {
        check_key_count(entries.len())?;
        for (key, value) in entries {
            check_entry(key, value)?;
        }
        self.transaction(|store| {
            entries
                .iter()
                .try_for_each(|(key, value)| store.kv_put(key, value))
        })
    }

    /// Deletes `key`; true if it existed.
    pub fn kv_delete(&mut self, key: &str) -> Result<bool> {
        self.before(true)?;
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM _dormouse_kv WHERE key = ?1")?
            .execute([key.as_bytes()])?;
        Ok(deleted > 0)
    }

    /// Deletes `keys`; returns how many existed.
    pub fn kv_delete_many(&mut self, keys: &[&str]) -> Result<usize> {
        check_key_count(keys.len())?;
        self.transaction(|store| {
            let mut deleted = 0;
            for key in keys {
                deleted += usize::from(store.kv_delete(key)?);
            }
            Ok(deleted)
        })
    }

    /// Entries in key order (UTF-8 byte order), as `query` selects them.
    pub fn kv_list(&mut self, query: &ListQuery) -> Result<Vec<Entry>> {
        if query.start.is_some() && query.start_after.is_some() {
            return Err(StorageError::Invalid(
                "list() cannot be called with both start and startAfter values.".into(),
            ));
        }
        if query.limit == Some(0) {
            return Err(StorageError::Invalid("List limit must be positive.".into()));
        }
        self.before(false)?;
        let mut lower: Option<(Vec<u8>, bool)> = None; // (bound, inclusive)
        let mut upper: Option<Vec<u8>> = None; // exclusive
        // A bound replaces a lower one only: `start` and `start_after` never come together, and a
        // prefix equal to `start_after` leaves the exclusive bound in place.
        let mut raise = |bound: Vec<u8>, inclusive: bool| {
            if lower.as_ref().is_none_or(|(current, _)| bound > *current) {
                lower = Some((bound, inclusive));
            }
        };
        if let Some(start) = &query.start {
            raise(start.as_bytes().to_vec(), true);
        }
        if let Some(after) = &query.start_after {
            raise(after.as_bytes().to_vec(), false);
        }
        if let Some(prefix) = &query.prefix {
            raise(prefix.as_bytes().to_vec(), true);
            upper = prefix_end(prefix.as_bytes());
        }
        if let Some(end) = &query.end {
            let end = end.as_bytes().to_vec();
            if upper.as_ref().is_none_or(|u| end < *u) {
                upper = Some(end);
            }
        }
        let mut sql = String::from("SELECT key, value FROM _dormouse_kv WHERE 1");
        let mut params: Vec<Vec<u8>> = Vec::new();
        if let Some((bound, inclusive)) = lower {
            sql.push_str(if inclusive {
                " AND key >= ?"
            } else {
                " AND key > ?"
            });
            params.push(bound);
        }
        if let Some(bound) = upper {
            sql.push_str(" AND key < ?");
            params.push(bound);
        }
        sql.push_str(if query.reverse {
            " ORDER BY key DESC"
        } else {
            " ORDER BY key ASC"
        });
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(params.iter()), |row| {
            let key: Vec<u8> = row.get(0)?;
            Ok((String::from_utf8(key).unwrap_or_default(), row.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn check_key_count(count: usize) -> Result<()> {
    if count > MAX_KEYS_PER_OPERATION {
        return Err(StorageError::Limit(format!(
            "Maximum number of key value pairs is {MAX_KEYS_PER_OPERATION}. {count} pairs were provided."
        )));
    }
    Ok(())
}

fn check_entry(key: &str, value: &[u8]) -> Result<()> {
    let size = key.len() + value.len();
    if size > MAX_VALUE_BYTES {
        return Err(StorageError::Limit(format!(
            "Key and value together cannot be larger than {MAX_VALUE_BYTES} bytes. A key and value of {size} bytes were provided."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;
    use crate::test_support::{TempPath, temp_store};

    fn store() -> (TempPath, ObjectStore) {
        temp_store("kv", Durability::Relaxed)
    }

    fn keys(entries: Vec<Entry>) -> Vec<String> {
        entries.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn get_put_delete() -> Result<()> {
        let (_path, mut store) = store();
        assert_eq!(store.kv_get("a")?, None);
        store.kv_put("a", b"1")?;
        store.kv_put("a", b"2")?;
        assert_eq!(store.kv_get("a")?, Some(b"2".to_vec()));
        assert!(store.kv_delete("a")?);
        assert!(!store.kv_delete("a")?);
        store.kv_put_many(&[("b", b"x"), ("c", b"y")])?;
        assert_eq!(keys(store.kv_get_many(&["c", "missing", "b"])?), ["b", "c"]);
        assert_eq!(store.kv_delete_many(&["b", "c", "d"])?, 2);
        Ok(())
    }

    #[test]
    fn list_combines_start_start_after_prefix_and_end_into_the_tightest_range() -> Result<()> {
        let (_path, mut store) = store();
        for key in ["a", "b", "ba", "bb", "c", "é"] {
            store.kv_put(key, b"")?;
        }
        let query = |start: Option<&str>,
                     after: Option<&str>,
                     prefix: Option<&str>,
                     end: Option<&str>| ListQuery {
            start: start.map(Into::into),
            start_after: after.map(Into::into),
            prefix: prefix.map(Into::into),
            end: end.map(Into::into),
            ..Default::default()
        };
        let cases: [(ListQuery, &[&str]); 9] = [
            (query(Some("ba"), None, Some("b"), None), &["ba", "bb"]),
            (query(Some("b"), None, Some("bb"), None), &["bb"]),
            (query(None, Some("b"), Some("b"), None), &["ba", "bb"]),
            (query(None, Some("ba"), Some("b"), None), &["bb"]),
            (query(None, Some("b"), Some("ba"), None), &["ba"]),
            (query(None, Some("b"), None, Some("bb")), &["ba"]),
            (query(None, None, Some("b"), Some("ba")), &["b"]),
            (query(None, None, Some("b"), Some("z")), &["b", "ba", "bb"]),
            (query(Some("b"), None, None, Some("b")), &[]),
        ];
        for (query, expected) in cases {
            assert_eq!(keys(store.kv_list(&query)?), expected, "{query:?}");
        }
        Ok(())
    }

    #[test]
    fn the_end_of_a_prefix_skips_trailing_ff_bytes() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[0x61, 0xFF]), Some(vec![0x62]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn at_most_128_keys_per_operation() -> Result<()> {
        let (_path, mut store) = store();
        let names: Vec<String> = (0..=MAX_KEYS_PER_OPERATION)
            .map(|i| format!("k{i}"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (allowed, one_more) = (&refs[..MAX_KEYS_PER_OPERATION], &refs[..]);
        assert!(store.kv_get_many(allowed).is_ok());
        let error = store.kv_get_many(one_more).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Maximum number of key value pairs is 128. 129 pairs were provided."
        );
        Ok(())
    }

    #[test]
    fn list_bounds_prefix_reverse_limit() -> Result<()> {
        let (_path, mut store) = store();
        for key in ["a", "b", "ba", "bb", "c", "é"] {
            store.kv_put(key, b"")?;
        }
        let list = |store: &mut ObjectStore, query: ListQuery| store.kv_list(&query).map(keys);
        assert_eq!(
            list(&mut store, ListQuery::default())?,
            ["a", "b", "ba", "bb", "c", "é"]
        );
        assert_eq!(
            list(
                &mut store,
                ListQuery {
                    prefix: Some("b".into()),
                    ..Default::default()
                }
            )?,
            ["b", "ba", "bb"]
        );
        assert_eq!(
            list(
                &mut store,
                ListQuery {
                    start: Some("b".into()),
                    end: Some("c".into()),
                    ..Default::default()
                }
            )?,
            ["b", "ba", "bb"]
        );
        assert_eq!(
            list(
                &mut store,
                ListQuery {
                    start_after: Some("b".into()),
                    limit: Some(2),
                    ..Default::default()
                }
            )?,
            ["ba", "bb"]
        );
        assert_eq!(
            list(
                &mut store,
                ListQuery {
                    prefix: Some("b".into()),
                    reverse: true,
                    limit: Some(2),
                    ..Default::default()
                }
            )?,
            ["bb", "ba"]
        );
        assert_eq!(
            list(
                &mut store,
                ListQuery {
                    start: Some("c".into()),
                    ..Default::default()
                }
            )?,
            ["c", "é"]
        );
        let error = store
            .kv_list(&ListQuery {
                limit: Some(0),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(error.to_string(), "List limit must be positive.");
        let both = ListQuery {
            start: Some("a".into()),
            start_after: Some("a".into()),
            ..Default::default()
        };
        assert!(store.kv_list(&both).is_err());
        Ok(())
    }

    #[test]
    fn limits() {
        let (_path, mut store) = store();
        let keys: Vec<String> = (0..129).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let error = store.kv_get_many(&refs).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Maximum number of key value pairs is 128. 129 pairs were provided."
        );
        let big = vec![0u8; MAX_VALUE_BYTES];
        let error = store.kv_put("k", &big).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("Key and value together cannot be larger than 2000000 bytes.")
        );
        store.kv_put("k", &big[1..]).unwrap();
    }

    #[test]
    fn put_many_is_atomic() -> Result<()> {
        let (_path, mut store) = store();
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        assert!(store.kv_put_many(&[("ok", b"1"), ("big", &big)]).is_err());
        assert_eq!(store.kv_get("ok")?, None);
        Ok(())
    }
}
