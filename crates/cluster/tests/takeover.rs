//! An object's storage moving between nodes through PostgreSQL: its owner ships each commit, a
//! node that takes it over rebuilds the same database, and the old owner, back from a pause,
//! cannot ship anything more.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{granted, lapse, node, object};
use dormouse_cluster::{NodeLease, ObjectKey, Ownership, Session};
use dormouse_storage::{Durability, ObjectStore, SqlValue, WalCursor};
use dormouse_testing::{Postgres, TempDir};

/// The object that moves between the nodes.
fn key() -> ObjectKey {
    object(42)
}

async fn claim(session: &mut Session, lease: &NodeLease) -> Ownership {
    granted(session.claim(lease, &key()).await.unwrap())
}

/// One node's copy of the object's database, in a directory of its own.
struct Replica(TempDir);

impl Replica {
    fn new(node: &str) -> Replica {
        Replica(TempDir::new(&format!("node-{node}")))
    }

    fn path(&self) -> PathBuf {
        self.0.path().join("object.sqlite")
    }

    /// Opens the copy for turns, with a cursor at the start of its log.
    fn open(&self) -> (ObjectStore, WalCursor) {
        let store = ObjectStore::open(&self.path(), Durability::Full).unwrap();
        (store, WalCursor::for_database(&self.path()))
    }
}

/// One turn of a counter object: the count in KV and a line in a table, committed together.
fn turn(store: &mut ObjectStore, count: i64, by: &str) {
    store.begin_turn();
    store.kv_put("count", count.to_string().as_bytes()).unwrap();
    store
        .exec(
            "CREATE TABLE IF NOT EXISTS history (count INTEGER, node TEXT)",
            &[],
        )
        .unwrap();
    store
        .exec(
            "INSERT INTO history VALUES (?, ?)",
            &[SqlValue::Integer(count), SqlValue::Text(by.into())],
        )
        .unwrap();
    assert!(store.commit_turn().unwrap());
}

fn history(store: &mut ObjectStore) -> Vec<String> {
    store
        .exec(
            "SELECT count || ':' || node FROM history ORDER BY count",
            &[],
        )
        .unwrap()
        .rows
        .into_iter()
        .map(|row| match &row[0] {
            SqlValue::Text(text) => text.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_new_owner_restores_every_shipped_commit_and_the_old_one_is_fenced() {
    let db = Postgres::start();
    let (mut a, lease_a) = node(&db, "a").await;
    let (mut b, lease_b) = node(&db, "b").await;
    let (copy_a, copy_b, copy_c) = (Replica::new("a"), Replica::new("b"), Replica::new("c"));

    let mut owned_by_a = claim(&mut a, &lease_a).await;
    let (mut store_a, mut cursor_a) = copy_a.open();
    for count in 1..=6 {
        turn(&mut store_a, count, "a");
        assert!(a.ship(&mut owned_by_a, &mut cursor_a).await.unwrap() >= 1);
        if count == 3 {
            // Shipped first: a checkpoint lets the log start again.
            store_a.checkpoint().unwrap();
        }
    }

    // The owner stops renewing (it paused); another node takes the object over.
    lapse(&db, "a", Duration::from_secs(60)).await;
    let mut owned_by_b = claim(&mut b, &lease_b).await;
    assert_eq!(owned_by_b.epoch, 2);
    let restored = b.restore(&key(), &copy_b.path()).await.unwrap();
    assert_eq!(restored, owned_by_b.head_seq, "the copy is current");
    let (mut store_b, mut cursor_b) = copy_b.open();
    assert_eq!(store_b.kv_get("count").unwrap(), Some(b"6".to_vec()));
    assert_eq!(
        history(&mut store_b),
        ["1:a", "2:a", "3:a", "4:a", "5:a", "6:a"]
    );

    // The old owner comes back and writes: nothing of it can reach the cluster.
    turn(&mut store_a, 7, "a");
    let error = a.ship(&mut owned_by_a, &mut cursor_a).await.unwrap_err();
    assert!(error.is_fenced(), "{error}");

    turn(&mut store_b, 7, "b");
    assert!(b.ship(&mut owned_by_b, &mut cursor_b).await.unwrap() >= 1);
    assert!(b.release(&lease_b, &owned_by_b).await.unwrap());

    // A third node sees the new owner's seventh write, not the fenced one.
    let (mut c, lease_c) = node(&db, "c").await;
    claim(&mut c, &lease_c).await;
    c.restore(&key(), &copy_c.path()).await.unwrap();
    let (mut store_c, _) = copy_c.open();
    assert_eq!(store_c.kv_get("count").unwrap(), Some(b"7".to_vec()));
    assert_eq!(
        history(&mut store_c).last().map(String::as_str),
        Some("7:b")
    );
}

#[tokio::test]
async fn a_compacted_log_restores_the_same_database_and_only_the_owner_compacts() {
    let db = Postgres::start();
    let (mut a, lease_a) = node(&db, "a").await;
    let (mut b, lease_b) = node(&db, "b").await;
    let (copy_a, copy_b, copy_c) = (Replica::new("a"), Replica::new("b"), Replica::new("c"));

    let mut owned_by_a = claim(&mut a, &lease_a).await;
    let (mut store_a, mut cursor_a) = copy_a.open();
    for count in 1..=5 {
        turn(&mut store_a, count, "a");
        a.ship(&mut owned_by_a, &mut cursor_a).await.unwrap();
    }
    let through = owned_by_a.head_seq;
    assert_eq!(
        a.compact(&owned_by_a, through).await.unwrap() as i64,
        through
    );
    assert_eq!(
        a.compact(&owned_by_a, through).await.unwrap(),
        0,
        "nothing left to fold"
    );
    assert!(
        a.commits_after(&key(), 0).await.unwrap().is_empty(),
        "the log before it is gone"
    );
    store_a.checkpoint().unwrap();
    for count in 6..=8 {
        turn(&mut store_a, count, "a");
        a.ship(&mut owned_by_a, &mut cursor_a).await.unwrap();
    }

    // A takeover restores the image and the commits after it.
    lapse(&db, "a", Duration::from_secs(60)).await;
    let mut owned_by_b = claim(&mut b, &lease_b).await;
    assert_eq!(
        b.restore(&key(), &copy_b.path()).await.unwrap(),
        owned_by_b.head_seq
    );
    let (mut store_b, mut cursor_b) = copy_b.open();
    assert_eq!(store_b.kv_get("count").unwrap(), Some(b"8".to_vec()));
    assert_eq!(history(&mut store_b).len(), 8);

    // The old owner may not compact; the new one folds everything it has.
    let error = a
        .compact(&owned_by_a, owned_by_a.head_seq)
        .await
        .unwrap_err();
    assert!(error.is_fenced(), "{error}");
    turn(&mut store_b, 9, "b");
    b.ship(&mut owned_by_b, &mut cursor_b).await.unwrap();
    b.compact(&owned_by_b, owned_by_b.head_seq).await.unwrap();
    assert!(b.release(&lease_b, &owned_by_b).await.unwrap());

    let (mut c, lease_c) = node(&db, "c").await;
    let owned_by_c = claim(&mut c, &lease_c).await;
    assert_eq!(
        c.restore(&key(), &copy_c.path()).await.unwrap(),
        owned_by_c.head_seq,
        "the image alone is current"
    );
    let (mut store_c, _) = copy_c.open();
    assert_eq!(store_c.kv_get("count").unwrap(), Some(b"9".to_vec()));
    assert_eq!(
        history(&mut store_c).last().map(String::as_str),
        Some("9:b")
    );
}
