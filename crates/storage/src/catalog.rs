//! The catalog: what the data directory holds (classes, applied migrations, pending alarms).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::{Result, StorageError};
use crate::store::Durability;
use dormouse_config::Migration;

/// A class as stored: its name, the key its ids derive from, where its objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInfo {
    /// The class name.
    pub name: String,
    /// The key object ids derive from; a renamed class keeps its key, so its ids stay valid.
    pub id_key: String,
    /// The directory of its objects' databases.
    pub dir: PathBuf,
}

/// The catalog database, `dormouse.sqlite` at the top of the data directory.
#[derive(Debug)]
pub struct Catalog {
    conn: Mutex<Connection>,
    root: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS migrations (position INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE, applied_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
    name TEXT PRIMARY KEY,
    id_key TEXT NOT NULL,
    dir TEXT NOT NULL,
    -- 'live', 'deleted' (by a migration), or 'renamed' (the old name of a renamed class)
    state TEXT NOT NULL,
    -- the migration that created, deleted or renamed it; NULL when created implicitly
    tag TEXT,
    renamed_to TEXT
);
CREATE TABLE IF NOT EXISTS alarms (id_key TEXT NOT NULL, object BLOB NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (id_key, object)) WITHOUT ROWID;
";

impl Catalog {
    /// Opens the catalog of `data_dir`.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Catalog> {
        std::fs::create_dir_all(data_dir.join("objects"))
            .map_err(|e| StorageError::io(format!("create {}", data_dir.display()), e))?;
        let conn = Connection::open(data_dir.join("dormouse.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if durability == Durability::Full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        conn.execute_batch(SCHEMA)?;
        Ok(Catalog {
            conn: Mutex::new(conn),
            root: data_dir.to_owned(),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().expect("catalog lock")
    }

    /// Applies the migrations not applied yet, in order, and returns their tags. The migrations
    /// applied before must still be listed first, in the same order.
    pub fn apply(&self, migrations: &[Migration]) -> Result<Vec<String>> {
        let mut seen = std::collections::HashSet::new();
        for migration in migrations {
            if !seen.insert(&migration.tag) {
                return Err(StorageError::Migration(format!(
                    "tag {:?} appears twice",
                    migration.tag
                )));
            }
            if !migration.transferred_classes.is_empty() {
                return Err(StorageError::Migration(format!(
                    "{}: transferred_classes is not supported (a data directory holds one application)",
                    migration.tag
                )));
            }
        }
        let mut conn = self.conn();
        let applied: Vec<String> = {
            let mut statement = conn.prepare("SELECT tag FROM migrations ORDER BY position")?;
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (position, tag) in applied.iter().enumerate() {
            match migrations.get(position) {
                Some(migration) if &migration.tag == tag => {}
                Some(migration) => {
                    return Err(StorageError::Migration(format!(
                        "migration {tag:?} was applied as step {} but the configuration has {:?} there; applied migrations must stay, in order",
                        position + 1,
                        migration.tag
                    )));
                }
                None => {
                    return Err(StorageError::Migration(format!(
                        "migration {tag:?} was applied but is missing from the configuration; applied migrations must stay, in order"
                    )));
                }
            }
        }
        let mut newly = Vec::new();
        let mut doomed_dirs = Vec::new();
        let txn = conn.transaction()?;
        for (position, migration) in migrations.iter().enumerate().skip(applied.len()) {
            apply_one(&txn, migration, &mut doomed_dirs)?;
            txn.execute(
                "INSERT INTO migrations (position, tag, applied_at_ms) VALUES (?1, ?2, ?3)",
                (position as i64, &migration.tag, now_ms()),
            )?;
            newly.push(migration.tag.clone());
        }
        txn.commit()?;
        // Data of deleted classes goes once the deletion is recorded (a crash before this point
        // leaves files that nothing refers to, never a class without its data).
        for dir in doomed_dirs {
            let path = self.root.join("objects").join(&dir);
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .map_err(|e| StorageError::io(format!("remove {}", path.display()), e))?;
            }
        }
        Ok(newly)
    }

    /// The class `name` as bound by the application. A class no migration created is created now
    /// (as wrangler's `new_classes` would); a class a migration deleted or renamed is an error.
    pub fn bind(&self, name: &str) -> Result<ClassInfo> {
        let conn = self.conn();
        let row: Option<ClassRow> = conn
            .query_row(
                "SELECT id_key, dir, state, tag, renamed_to FROM classes WHERE name = ?1",
                [name],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()?;
        let (id_key, dir) = match row {
            Some((id_key, dir, state, _, _)) if state == "live" => (id_key, dir),
            Some((_, _, state, tag, renamed_to)) if state == "renamed" => {
                return Err(StorageError::Migration(format!(
                    "class {name:?} was renamed to {:?} by migration {:?}; bind the new name",
                    renamed_to.unwrap_or_default(),
                    tag.unwrap_or_default()
                )));
            }
            Some((_, _, _, tag, _)) => {
                return Err(StorageError::Migration(format!(
                    "class {name:?} was deleted by migration {:?}; remove its binding",
                    tag.unwrap_or_default()
                )));
            }
            None => {
                let dir = free_dir(&conn, name)?;
                conn.execute(
                    "INSERT INTO classes (name, id_key, dir, state, tag) VALUES (?1, ?1, ?2, 'live', NULL)",
                    (name, &dir),
                )?;
                tracing::info!(class = name, "new class");
                (name.to_owned(), dir)
            }
        };
        Ok(ClassInfo {
            name: name.to_owned(),
            id_key,
            dir: self.root.join("objects").join(dir),
        })
    }

    /// Live classes that hold data but are not in `bound`: kept, never dropped silently.
    pub fn unbound(&self, bound: &[&str]) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT name FROM classes WHERE state = 'live' ORDER BY name")?;
        let names: Vec<String> = statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names
            .into_iter()
            .filter(|name| !bound.contains(&name.as_str()))
            .collect())
    }

    /// Records when an object's alarm should fire (or that it has none). The object's own
    /// database is the truth; this index only says which objects to look at after a restart.
    pub fn index_alarm(&self, id_key: &str, object: &[u8; 32], at_ms: Option<i64>) -> Result<()> {
        let conn = self.conn();
        match at_ms {
            Some(at) => conn.execute(
                "INSERT INTO alarms (id_key, object, at_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET at_ms = excluded.at_ms",
                (id_key, object.as_slice(), at),
            )?,
            None => conn.execute("DELETE FROM alarms WHERE id_key = ?1 AND object = ?2", (id_key, object.as_slice()))?,
        };
        Ok(())
    }

    /// Every indexed alarm: (id key, object id, when).
    pub fn alarms(&self) -> Result<Vec<(String, [u8; 32], i64)>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT id_key, object, at_ms FROM alarms ORDER BY at_ms")?;
        let rows = statement.query_map([], |row| {
            let object: Vec<u8> = row.get(1)?;
            Ok((row.get(0)?, object, row.get(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, object, at) = row?;
            if let Ok(object) = <[u8; 32]>::try_from(object.as_slice()) {
                out.push((key, object, at));
            }
        }
        Ok(out)
    }
}

/// A row of `classes`: id key, directory, state, migration tag, new name.
type ClassRow = (String, String, String, Option<String>, Option<String>);

fn apply_one(
    txn: &Transaction<'_>,
    migration: &Migration,
    doomed_dirs: &mut Vec<String>,
) -> Result<()> {
    let tag = &migration.tag;
    let state = |name: &str| -> Result<Option<String>> {
        Ok(txn
            .query_row("SELECT state FROM classes WHERE name = ?1", [name], |row| {
                row.get(0)
            })
            .optional()?)
    };
    for name in migration.created() {
        match state(name)?.as_deref() {
            Some("live") => {
                // Created implicitly before this migration existed: adopt it.
                txn.execute(
                    "UPDATE classes SET tag = ?2 WHERE name = ?1 AND tag IS NULL",
                    (name, tag),
                )?;
            }
            _ => {
                txn.execute("DELETE FROM classes WHERE name = ?1", [name])?;
                let dir = free_dir(txn, name)?;
                txn.execute(
                    "INSERT INTO classes (name, id_key, dir, state, tag) VALUES (?1, ?1, ?2, 'live', ?3)",
                    (name, &dir, tag),
                )?;
            }
        }
    }
    for rename in &migration.renamed_classes {
        if state(&rename.from)?.as_deref() != Some("live") {
            return Err(StorageError::Migration(format!(
                "{tag}: cannot rename {:?}: no such class",
                rename.from
            )));
        }
        if state(&rename.to)?.as_deref() == Some("live") {
            return Err(StorageError::Migration(format!(
                "{tag}: cannot rename {:?} to {:?}: that class exists",
                rename.from, rename.to
            )));
        }
        txn.execute("DELETE FROM classes WHERE name = ?1", [&rename.to])?;
        txn.execute(
            "UPDATE classes SET name = ?2, tag = ?3 WHERE name = ?1",
            (&rename.from, &rename.to, tag),
        )?;
        // A tombstone, so that binding the old name again is an error rather than a new, empty class.
        txn.execute(
            "INSERT INTO classes (name, id_key, dir, state, tag, renamed_to) VALUES (?1, '', '', 'renamed', ?2, ?3)",
            (&rename.from, tag, &rename.to),
        )?;
    }
    for name in &migration.deleted_classes {
        let row: Option<(String, String)> = txn
            .query_row(
                "SELECT id_key, dir FROM classes WHERE name = ?1 AND state = 'live'",
                [name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((id_key, dir)) = row else {
            return Err(StorageError::Migration(format!(
                "{tag}: cannot delete {name:?}: no such class"
            )));
        };
        txn.execute("DELETE FROM alarms WHERE id_key = ?1", [&id_key])?;
        txn.execute(
            "UPDATE classes SET state = 'deleted', tag = ?2, dir = '' WHERE name = ?1",
            (name, tag),
        )?;
        doomed_dirs.push(dir);
    }
    Ok(())
}

/// A directory name for a new class: its name if that is safe and unused, else a variant.
fn free_dir(conn: &Connection, name: &str) -> Result<String> {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = if base.is_empty() {
        "class".to_owned()
    } else {
        base
    };
    for n in 1.. {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let taken: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM classes WHERE dir = ?1)",
            [&candidate],
            |row| row.get(0),
        )?;
        if !taken {
            return Ok(candidate);
        }
    }
    unreachable!("some directory name is free")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempPath;

    fn catalog() -> (TempPath, Catalog) {
        let dir = TempPath::new("catalog");
        std::fs::create_dir_all(&dir.0).unwrap();
        let catalog = Catalog::open(&dir.0, Durability::Relaxed).unwrap();
        (dir, catalog)
    }

    #[test]
    fn classes_are_created_renamed_and_deleted_once() -> Result<()> {
        let (dir, catalog) = catalog();
        let v1 = Migration::new("v1").new_classes(["Room", "Old"]);
        assert_eq!(catalog.apply(std::slice::from_ref(&v1))?, ["v1"]);
        let room = catalog.bind("Room")?;
        std::fs::create_dir_all(&room.dir).unwrap();
        let old = catalog.bind("Old")?;
        std::fs::create_dir_all(&old.dir).unwrap();

        let v2 = Migration::new("v2")
            .rename("Room", "ChatRoom")
            .delete_classes(["Old"]);
        // Applying again applies only what is new.
        assert_eq!(catalog.apply(&[v1.clone(), v2.clone()])?, ["v2"]);
        assert_eq!(
            catalog.apply(&[v1.clone(), v2.clone()])?,
            Vec::<String>::new()
        );

        let chat = catalog.bind("ChatRoom")?;
        assert_eq!(
            (chat.id_key.as_str(), &chat.dir),
            ("Room", &room.dir),
            "the renamed class keeps its ids and data"
        );
        assert!(!old.dir.exists(), "a deleted class's data is removed");
        assert!(
            catalog
                .bind("Room")
                .unwrap_err()
                .to_string()
                .contains("renamed to \"ChatRoom\"")
        );
        assert!(
            catalog
                .bind("Old")
                .unwrap_err()
                .to_string()
                .contains("deleted by migration \"v2\"")
        );
        drop(dir);
        Ok(())
    }

    #[test]
    fn applied_migrations_must_stay_in_order() -> Result<()> {
        let (_dir, catalog) = catalog();
        catalog.apply(&[Migration::new("v1").new_classes(["A"])])?;
        assert!(
            catalog
                .apply(&[])
                .unwrap_err()
                .to_string()
                .contains("missing from the configuration")
        );
        assert!(
            catalog
                .apply(&[Migration::new("v0")])
                .unwrap_err()
                .to_string()
                .contains("has \"v0\" there")
        );
        let twice = [Migration::new("v1"), Migration::new("v1")];
        assert!(
            catalog
                .apply(&twice)
                .unwrap_err()
                .to_string()
                .contains("appears twice")
        );
        Ok(())
    }

    #[test]
    fn implicit_classes_are_adopted_by_a_later_migration() -> Result<()> {
        let (_dir, catalog) = catalog();
        let implicit = catalog.bind("Counter")?;
        catalog.apply(&[Migration::new("v1").new_classes(["Counter"])])?;
        assert_eq!(catalog.bind("Counter")?, implicit);
        assert_eq!(catalog.unbound(&[])?, ["Counter"]);
        assert!(catalog.unbound(&["Counter"])?.is_empty());
        Ok(())
    }

    #[test]
    fn a_class_listed_again_after_a_rename_keeps_its_objects() -> Result<()> {
        let (_dir, catalog) = catalog();
        let v1 = Migration::new("v1").new_classes(["Room"]);
        let v2 = Migration::new("v2").rename("Room", "Lobby");
        catalog.apply(&[v1.clone(), v2.clone()])?;
        let renamed = catalog.bind("Lobby")?;
        assert_eq!(renamed.id_key, "Room", "ids stay those of the old name");
        // A later migration that lists the live class again adopts it: same ids, same files.
        catalog.apply(&[v1, v2, Migration::new("v3").new_classes(["Lobby"])])?;
        assert_eq!(catalog.bind("Lobby")?, renamed);
        Ok(())
    }

    #[test]
    fn class_directories_are_safe_names_made_unique() -> Result<()> {
        let (dir, catalog) = catalog();
        let objects = dir.0.join("objects");
        assert_eq!(catalog.bind("my-class_1")?.dir, objects.join("my-class_1"));
        assert_eq!(catalog.bind("a/b c")?.dir, objects.join("a_b_c"));
        assert_eq!(catalog.bind("a_b_c")?.dir, objects.join("a_b_c-2"));
        assert_eq!(catalog.bind("a.b.c")?.dir, objects.join("a_b_c-3"));
        assert_eq!(catalog.bind("")?.dir, objects.join("class"));
        Ok(())
    }

    #[test]
    fn migrations_record_when_they_were_applied() -> Result<()> {
        let (_dir, catalog) = catalog();
        let before = now_ms_for_test();
        catalog.apply(&[Migration::new("v1").new_classes(["Counter"])])?;
        let after = now_ms_for_test();
        let at: i64 = catalog.conn().query_row(
            "SELECT applied_at_ms FROM migrations WHERE tag = 'v1'",
            [],
            |row| row.get(0),
        )?;
        assert!(
            (before..=after).contains(&at),
            "{before} <= {at} <= {after}"
        );
        Ok(())
    }

    fn now_ms_for_test() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    #[test]
    fn the_catalog_flushes_every_commit_at_full_durability() -> Result<()> {
        for (durability, synchronous) in [(Durability::Full, 2), (Durability::Relaxed, 1)] {
            let dir = TempPath::new("catalog-sync");
            let catalog = Catalog::open(&dir.0, durability)?;
            let level: i64 = catalog
                .conn()
                .query_row("PRAGMA synchronous", [], |row| row.get(0))?;
            assert_eq!(level, synchronous, "{durability:?}");
        }
        Ok(())
    }

    #[test]
    fn alarm_index() -> Result<()> {
        let (_dir, catalog) = catalog();
        catalog.index_alarm("Room", &[1; 32], Some(5))?;
        catalog.index_alarm("Room", &[1; 32], Some(7))?;
        catalog.index_alarm("Room", &[2; 32], Some(3))?;
        assert_eq!(
            catalog.alarms()?,
            vec![("Room".into(), [2; 32], 3), ("Room".into(), [1; 32], 7)]
        );
        catalog.index_alarm("Room", &[2; 32], None)?;
        assert_eq!(catalog.alarms()?.len(), 1);
        Ok(())
    }
}
