//! What the cluster tests share: nodes registered against a test server, a connection for the
//! tests' own statements, and leases ended by moving them into the past (never by waiting).

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use dormouse_cluster::{Claim, LeaseSettings, NodeLease, ObjectKey, Owner, Ownership, Session};
use dormouse_testing::Postgres;

/// An object of the `COUNTER` namespace whose id is `byte` 32 times.
pub fn object(byte: u8) -> ObjectKey {
    ObjectKey {
        namespace: "COUNTER".into(),
        id: [byte; 32],
    }
}

/// A session with node `name` registered on it, reachable at `127.0.0.<length of name + 1>`.
pub async fn node(db: &Postgres, name: &str) -> (Session, NodeLease) {
    let mut session = Session::connect(&db.url()).await.unwrap();
    let addr = format!("127.0.0.{}:8787", name.len() + 1);
    let lease = session
        .register(name, &addr, LeaseSettings::default())
        .await
        .unwrap();
    (session, lease)
}

/// Another connection, for the test's own statements.
pub async fn admin(db: &Postgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Ends `node`'s lease `ago` in the past, as if it had stopped renewing then.
pub async fn lapse(db: &Postgres, node: &str, ago: Duration) {
    let moved = admin(db)
        .await
        .execute(
            "UPDATE dormouse_nodes SET lease_expires = clock_timestamp() - make_interval(secs => $2)
             WHERE node_id = $1",
            &[&node, &ago.as_secs_f64()],
        )
        .await
        .unwrap();
    assert_eq!(moved, 1);
}

/// The ownership a claim was expected to grant.
pub fn granted(claim: Claim) -> Ownership {
    match claim {
        Claim::Granted(ownership) => ownership,
        Claim::OwnedElsewhere(owner) => panic!("owned by {owner:?}"),
    }
}

/// The owner a claim was expected to find.
pub fn elsewhere(claim: Claim) -> Owner {
    match claim {
        Claim::OwnedElsewhere(owner) => owner,
        Claim::Granted(ownership) => panic!("granted {ownership:?}"),
    }
}

/// When `node`'s lease ends, by the database, in seconds since the epoch.
pub async fn lease_expiry(client: &tokio_postgres::Client, node: &str) -> f64 {
    client
        .query_one(
            "SELECT extract(epoch FROM lease_expires)::float8 FROM dormouse_nodes WHERE node_id = $1",
            &[&node],
        )
        .await
        .unwrap()
        .get(0)
}
