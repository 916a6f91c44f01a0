//! Leases, claims and fenced commits against a real PostgreSQL server. Expiry is forced by moving
//! a lease's end into the past in the database, never by waiting for it.

use std::time::Duration;

mod common;

use common::{admin, elsewhere, granted, lapse, node, object};
use dormouse_cluster::{
    Claim, ClusterError, LeaseSettings, Owner, Ownership, SCHEMA_VERSION, Session,
};
use dormouse_testing::{DEADLINE, Postgres};

#[tokio::test]
async fn the_schema_is_made_once_and_a_newer_one_is_refused() {
    let db = Postgres::start();
    // Nodes starting together migrate one after the other.
    let url = db.url();
    let (first, second) = tokio::join!(Session::connect(&url), Session::connect(&url));
    first.unwrap();
    second.unwrap();
    let admin = admin(&db).await;
    let versions: Vec<i32> = admin
        .query("SELECT version FROM dormouse_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());

    admin
        .execute(
            "INSERT INTO dormouse_schema (version) VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let error = Session::connect(&db.url()).await.unwrap_err();
    assert!(
        matches!(error, ClusterError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade this node"), "{error}");
}

#[tokio::test]
async fn an_object_has_one_owner_until_its_lease_lapses_and_the_old_owner_is_fenced() {
    let db = Postgres::start();
    let (mut a, mut lease_a) = node(&db, "a").await;
    let (mut b, lease_b) = node(&db, "bb").await;

    let mut owned_by_a = granted(a.claim(&lease_a, &object(1)).await.unwrap());
    assert_eq!((owned_by_a.epoch, owned_by_a.head_seq), (1, 0));
    assert_eq!(a.append(&mut owned_by_a, b"first").await.unwrap(), 1);
    // Claiming again what it owns changes nothing.
    assert_eq!(
        granted(a.claim(&lease_a, &object(1)).await.unwrap()),
        owned_by_a
    );
    let owner = elsewhere(b.claim(&lease_b, &object(1)).await.unwrap());
    assert_eq!(
        owner,
        Owner {
            node: "a".into(),
            addr: lease_a.addr().into(),
            epoch: 1
        }
    );
    assert_eq!(
        b.owner(&object(1), lease_b.settings().grace).await.unwrap(),
        Some(owner)
    );

    // Within the grace period after its lease lapsed, the owner keeps its objects.
    lapse(&db, "a", Duration::from_millis(500)).await;
    elsewhere(b.claim(&lease_b, &object(1)).await.unwrap());
    // Past it, another node takes the object over, under the next epoch, after the last commit.
    lapse(&db, "a", Duration::from_secs(3)).await;
    assert_eq!(
        b.owner(&object(1), lease_b.settings().grace).await.unwrap(),
        None
    );
    let mut owned_by_b = granted(b.claim(&lease_b, &object(1)).await.unwrap());
    assert_eq!((owned_by_b.epoch, owned_by_b.head_seq), (2, 1));

    // The old owner, back from a pause, can neither commit nor renew.
    let error = a.append(&mut owned_by_a, b"zombie").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClusterError::Fenced {
                epoch: 1,
                head: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "commit fenced: COUNTER/{} is no longer owned under epoch 1 at commit 1",
            "01".repeat(32)
        )
    );
    assert_eq!(owned_by_a.head_seq, 1, "a fenced commit moves nothing");
    let error = a.renew(&mut lease_a).await.unwrap_err();
    assert!(matches!(error, ClusterError::LeaseLapsed { .. }), "{error}");
    assert!(!a.release(&lease_a, &owned_by_a).await.unwrap());
    // Nor can it claim anything while its lease has lapsed.
    let error = a.claim(&lease_a, &object(2)).await.unwrap_err();
    assert!(matches!(error, ClusterError::LeaseLapsed { .. }), "{error}");

    assert_eq!(b.append(&mut owned_by_b, b"second").await.unwrap(), 2);
    let log = b.commits_after(&object(1), 0).await.unwrap();
    let entries: Vec<_> = log
        .iter()
        .map(|c| (c.seq, c.epoch, c.frames.as_slice()))
        .collect();
    assert_eq!(entries, [(1, 1, &b"first"[..]), (2, 2, &b"second"[..])]);

    // Registered again, the node is a new incarnation that owns nothing of the old one's.
    let lease_a = a
        .register("a", "127.0.0.2:8787", LeaseSettings::default())
        .await
        .unwrap();
    assert!(lease_a.incarnation() > 1);
    assert_eq!(
        elsewhere(a.claim(&lease_a, &object(1)).await.unwrap()).node,
        "bb"
    );
}

#[tokio::test]
async fn a_lease_keeps_the_settings_it_was_registered_with() {
    let db = Postgres::start();
    let mut session = Session::connect(&db.url()).await.unwrap();
    let settings = LeaseSettings {
        ttl: Duration::from_secs(30),
        grace: Duration::from_secs(5),
        margin: Duration::from_secs(3),
    };
    let lease = session
        .register("a", "127.0.0.2:8787", settings)
        .await
        .unwrap();
    assert_eq!(lease.settings(), &settings);
    assert_eq!(lease.settings().renew_every(), Duration::from_secs(6));
    assert_eq!((lease.node(), lease.addr()), ("a", "127.0.0.2:8787"));
}

#[tokio::test]
async fn a_commit_must_follow_the_last_one() {
    let db = Postgres::start();
    let (mut a, lease) = node(&db, "a").await;
    let mut ownership = granted(a.claim(&lease, &object(3)).await.unwrap());
    let mut stale = ownership.clone();
    a.append(&mut ownership, b"one").await.unwrap();
    let error = a.append(&mut stale, b"also one").await.unwrap_err();
    assert!(
        matches!(error, ClusterError::Fenced { head: 0, .. }),
        "{error}"
    );
    assert_eq!(a.commits_after(&object(3), 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_released_object_is_claimed_at_once_and_a_drained_node_owns_nothing() {
    let db = Postgres::start();
    let (mut a, lease_a) = node(&db, "a").await;
    let (mut b, lease_b) = node(&db, "bb").await;
    let owned = granted(a.claim(&lease_a, &object(4)).await.unwrap());
    granted(a.claim(&lease_a, &object(5)).await.unwrap());
    assert!(a.release(&lease_a, &owned).await.unwrap());
    assert_eq!(
        granted(b.claim(&lease_b, &object(4)).await.unwrap()).epoch,
        2
    );
    // A node that leaves without releasing frees its objects with its lease.
    a.deregister(&lease_a).await.unwrap();
    assert_eq!(
        granted(b.claim(&lease_b, &object(5)).await.unwrap()).epoch,
        2
    );
}

#[tokio::test]
async fn claimers_racing_for_one_object_get_one_owner() {
    let db = Postgres::start();
    let mut claimers = Vec::new();
    for name in ["n1", "n2", "n3", "n4", "n5", "n6"] {
        claimers.push(node(&db, name).await);
    }
    let key = object(6);
    let claims = futures_util::future::join_all(
        claimers
            .iter_mut()
            .map(|(session, lease)| session.claim(lease, &key)),
    )
    .await;
    let winners: Vec<Ownership> = claims
        .iter()
        .filter_map(|claim| match claim.as_ref().unwrap() {
            Claim::Granted(ownership) => Some(ownership.clone()),
            Claim::OwnedElsewhere(_) => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    assert_eq!(winners[0].epoch, 1);
    let owners: std::collections::HashSet<String> = claims
        .into_iter()
        .filter_map(|claim| match claim.unwrap() {
            Claim::OwnedElsewhere(owner) => Some(owner.node),
            Claim::Granted(_) => None,
        })
        .collect();
    assert_eq!(owners.len(), 1, "every loser names the same owner");
}

#[tokio::test]
async fn a_claim_waits_for_a_renewal_in_flight_and_sees_the_owner_alive() {
    let db = Postgres::start();
    let (mut a, lease_a) = node(&db, "a").await;
    let (mut b, lease_b) = node(&db, "bb").await;
    granted(a.claim(&lease_a, &object(7)).await.unwrap());
    // The owner's lease has lapsed, as far as committed data says; its renewal is under way.
    lapse(&db, "a", Duration::from_secs(60)).await;
    let mut renewal = admin(&db).await;
    let renewing = renewal.transaction().await.unwrap();
    renewing
        .execute(
            "UPDATE dormouse_nodes SET lease_expires = clock_timestamp() + interval '10 seconds'
             WHERE node_id = 'a'",
            &[],
        )
        .await
        .unwrap();

    let claim = tokio::spawn(async move { b.claim(&lease_b, &object(7)).await });
    // The claim waits on the owner's row lock (it must not read the old version and proceed).
    let watcher = admin(&db).await;
    let waiting = async {
        loop {
            let blocked: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if blocked == 1 {
                return;
            }
            assert!(
                !claim.is_finished(),
                "the claim did not wait for the renewal"
            );
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the claim never waited on the lock");
    renewing.commit().await.unwrap();
    let owner = elsewhere(claim.await.unwrap().unwrap());
    assert_eq!(owner.node, "a");
}

#[tokio::test]
async fn objects_are_placed_on_live_nodes_that_are_not_draining() {
    let db = Postgres::start();
    let (mut a, lease_a) = node(&db, "a").await;
    let (_b, _) = node(&db, "bb").await;
    let (_c, _) = node(&db, "ccc").await;
    let grace = LeaseSettings::default().grace;
    let names = |peers: Vec<dormouse_cluster::Peer>| -> Vec<String> {
        peers.into_iter().map(|peer| peer.node).collect()
    };
    assert_eq!(
        names(a.live_nodes(grace).await.unwrap()),
        ["a", "bb", "ccc"]
    );
    lapse(&db, "bb", Duration::from_secs(60)).await;
    a.drain(&lease_a).await.unwrap();
    let live = a.live_nodes(grace).await.unwrap();
    assert_eq!(
        live,
        [dormouse_cluster::Peer {
            node: "ccc".into(),
            addr: "127.0.0.4:8787".into()
        }]
    );
    assert_eq!(dormouse_cluster::preferred(&object(1), &live), live.first());
}
