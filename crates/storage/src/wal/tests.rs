use super::*;
use crate::Durability;
use crate::test_support::{TempPath, temp_store};

/// One turn, committed: a counter in KV and a row in a table, as an object would write them.
fn write_turn(store: &mut crate::ObjectStore, n: u32) {
    store.begin_turn();
    store.kv_put("count", n.to_string().as_bytes()).unwrap();
    store
        .exec(
            "CREATE TABLE IF NOT EXISTS lines (n INTEGER, text TEXT)",
            &[],
        )
        .unwrap();
    store
        .exec(
            "INSERT INTO lines VALUES (?, ?)",
            &[
                crate::SqlValue::Integer(i64::from(n)),
                crate::SqlValue::Text("x".repeat(300 * n as usize)),
            ],
        )
        .unwrap();
    assert!(store.commit_turn().unwrap());
}

/// What an object's storage holds, to compare a restored copy with.
fn contents(store: &mut crate::ObjectStore) -> (Option<Vec<u8>>, i64) {
    let count = store.kv_get("count").unwrap();
    let rows = store
        .exec("SELECT count(*) FROM lines", &[])
        .map(
            |result| match result.rows.first().and_then(|row| row.first()) {
                Some(crate::SqlValue::Integer(n)) => *n,
                other => panic!("{other:?}"),
            },
        )
        .unwrap_or(0);
    (count, rows)
}

#[test]
fn each_commit_is_read_once_and_any_prefix_restores_the_database_as_it_was() {
    let (path, mut store) = temp_store("wal-ship", Durability::Full);
    let mut cursor = WalCursor::for_database(&path.0);
    let mut shipped: Vec<CommitPages> = Vec::new();
    let mut states = Vec::new();
    for n in 1..=12 {
        write_turn(&mut store, n);
        let commits = cursor.read_commits().unwrap();
        assert!(!commits.is_empty(), "turn {n} committed something");
        assert!(cursor.read_commits().unwrap().is_empty(), "read once");
        // Through the wire format, as the cluster database keeps them.
        shipped.extend(
            commits
                .iter()
                .map(|c| CommitPages::decode(&c.encode()).unwrap()),
        );
        states.push((shipped.len(), contents(&mut store)));
        if n % 4 == 0 {
            // A checkpoint restarts the log with new salts at the next write.
            store.checkpoint().unwrap();
        }
    }
    for (prefix, expected) in states {
        let copy = TempPath::new("wal-restore");
        std::fs::create_dir_all(copy.0.parent().unwrap()).unwrap();
        restore(&copy.0, &shipped[..prefix]).unwrap();
        let check: String = rusqlite::Connection::open(&copy.0)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok", "after {prefix} commits");
        let mut restored = copy.open(Durability::Full);
        assert_eq!(contents(&mut restored), expected, "after {prefix} commits");
    }
}

#[test]
fn a_torn_frame_ends_what_is_read() {
    let (path, mut store) = temp_store("wal-torn", Durability::Full);
    let mut cursor = WalCursor::for_database(&path.0);
    write_turn(&mut store, 1);
    assert!(!cursor.read_commits().unwrap().is_empty());
    write_turn(&mut store, 2);
    // Damage the last frame's page while the store is open (closing it would checkpoint and
    // remove the log): its checksum no longer chains, so the commit it ends is not one, as
    // SQLite's own recovery would decide.
    let wal = crate::log::wal_path(&path.0);
    let mut bytes = std::fs::read(&wal).unwrap();
    assert!(bytes.len() > HEADER_BYTES, "the second turn is in the log");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    assert!(cursor.read_commits().unwrap().is_empty());
    // Mended, the commit is read.
    bytes[last] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    assert_eq!(cursor.read_commits().unwrap().len(), 1);
    drop(store);
}

#[test]
fn a_corrupt_shipped_commit_is_refused() {
    let commit = CommitPages {
        page_size: 512,
        database_pages: 2,
        pages: vec![(2, vec![7; 512])],
    };
    assert_eq!(CommitPages::decode(&commit.encode()).unwrap(), commit);
    // Whatever `encode` writes reads back, down to a commit of no pages (its header alone).
    let header_only = CommitPages {
        pages: vec![],
        ..commit.clone()
    };
    assert_eq!(
        CommitPages::decode(&header_only.encode()).unwrap(),
        header_only
    );
    let bytes = commit.encode();
    for broken in [&bytes[..bytes.len() - 1], &bytes[..8]] {
        assert!(matches!(
            CommitPages::decode(broken),
            Err(StorageError::CorruptCommit(_))
        ));
    }
    let beyond = CommitPages {
        pages: vec![(3, vec![0; 512])],
        ..commit.clone()
    };
    assert!(
        CommitPages::decode(&beyond.encode()).is_err(),
        "page past the end"
    );
    let odd = CommitPages {
        page_size: 1000,
        pages: vec![],
        ..commit
    };
    assert!(CommitPages::decode(&odd.encode()).is_err(), "page size");
}

#[test]
fn the_log_checksum_follows_sqlite() {
    // Two words, little-endian: s0 = 1 + 0, s1 = 2 + 1.
    assert_eq!(checksum([0, 0], &[1, 0, 0, 0, 2, 0, 0, 0], false), [1, 3]);
    assert_eq!(checksum([0, 0], &[0, 0, 0, 1, 0, 0, 0, 2], true), [1, 3]);
    // Seeds carry on: s0 = 10 + 1 + 20, s1 = 20 + 2 + 31.
    assert_eq!(
        checksum([10, 20], &[0, 0, 0, 1, 0, 0, 0, 2], true),
        [31, 53]
    );
}

/// A log written by hand, as SQLite writes it with `magic`: a header, then one frame per page,
/// the last one ending a commit.
fn synthetic_log(magic: u32, page_size: u32, pages: &[(u32, u8)]) -> Vec<u8> {
    let big_endian = magic == MAGIC_BIG_ENDIAN;
    let salts = [0x1111_2222u32, 0x3333_4444];
    let mut log = Vec::new();
    for word in [magic, 3_007_000, page_size, 0, salts[0], salts[1]] {
        log.extend_from_slice(&word.to_be_bytes());
    }
    let mut running = checksum([0, 0], &log, big_endian);
    log.extend_from_slice(&running[0].to_be_bytes());
    log.extend_from_slice(&running[1].to_be_bytes());
    for (index, (page, fill)) in pages.iter().enumerate() {
        let commit = if index + 1 == pages.len() {
            pages.len() as u32
        } else {
            0
        };
        let mut header = Vec::new();
        for word in [*page, commit, salts[0], salts[1]] {
            header.extend_from_slice(&word.to_be_bytes());
        }
        let data = vec![*fill; page_size as usize];
        running = checksum(running, &header[..8], big_endian);
        running = checksum(running, &data, big_endian);
        log.extend_from_slice(&header);
        log.extend_from_slice(&running[0].to_be_bytes());
        log.extend_from_slice(&running[1].to_be_bytes());
        log.extend_from_slice(&data);
    }
    log
}

#[test]
fn logs_of_either_byte_order_are_read_and_a_bad_page_size_is_not() {
    for magic in [MAGIC_LITTLE_ENDIAN, MAGIC_BIG_ENDIAN] {
        let path = TempPath::new("wal-synthetic");
        std::fs::create_dir_all(path.0.parent().unwrap()).unwrap();
        let wal = crate::log::wal_path(&path.0);
        std::fs::write(&wal, synthetic_log(magic, 512, &[(1, 7), (2, 9)])).unwrap();
        let commits = WalCursor::for_database(&path.0).read_commits().unwrap();
        assert_eq!(commits.len(), 1, "{magic:#x}");
        assert_eq!(commits[0].database_pages, 2);
        let pages: Vec<(u32, u8)> = commits[0].pages.iter().map(|(p, d)| (*p, d[0])).collect();
        assert_eq!(pages, [(1, 7), (2, 9)]);

        // A header whose checksum holds but whose page size SQLite never writes is no log.
        std::fs::write(&wal, synthetic_log(magic, 100, &[(1, 7)])).unwrap();
        assert!(
            WalCursor::for_database(&path.0)
                .read_commits()
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn a_missing_log_is_empty_and_an_unreadable_one_is_an_error() {
    let path = TempPath::new("wal-missing");
    std::fs::create_dir_all(path.0.parent().unwrap()).unwrap();
    assert!(
        WalCursor::for_database(&path.0)
            .read_commits()
            .unwrap()
            .is_empty()
    );
    // A database "inside" a regular file: its log cannot be opened, for another reason than
    // not existing.
    let blocker = path.0.parent().unwrap().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let inside = blocker.join("db.sqlite");
    assert!(matches!(
        WalCursor::for_database(&inside).read_commits(),
        Err(StorageError::Io { .. })
    ));
    // A log that cannot be removed stops a restore rather than being left beside its database.
    let wal = crate::log::wal_path(&path.0);
    std::fs::create_dir_all(std::path::Path::new(&wal).join("occupied")).unwrap();
    assert!(matches!(
        restore(&path.0, &[]),
        Err(StorageError::Io { .. })
    ));
}
