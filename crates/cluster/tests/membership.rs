//! A node's membership against a real PostgreSQL server: renewals move its lease forward, and a
//! lease lost in the database makes the node a new incarnation that owns nothing of the old one.

mod common;

use common::{admin, lease_expiry, object};
use dormouse_cluster::{Claim, LeaseSettings, MemberState, Membership, Session};
use dormouse_testing::Postgres;

#[tokio::test]
async fn renewals_keep_the_lease_and_a_lost_one_makes_a_new_incarnation() {
    let db = Postgres::start();
    let membership = Membership::start(&db.url(), "a", "127.0.0.2:8787", LeaseSettings::default())
        .await
        .unwrap();
    let MemberState::Member(first) = membership.state() else {
        panic!("registered: {:?}", membership.state());
    };
    assert_eq!(membership.lease().as_ref(), Some(&first));
    let client = admin(&db).await;

    let before = lease_expiry(&client, "a").await;
    membership.renew_now().await;
    assert!(
        lease_expiry(&client, "a").await > before,
        "the renewal moved the lease"
    );
    assert_eq!(
        membership.lease().unwrap().incarnation(),
        first.incarnation()
    );

    // The node owns an object; then the database declares its lease over.
    let mut session = Session::connect(&db.url()).await.unwrap();
    let key = object(9);
    assert!(matches!(
        session.claim(&first, &key).await.unwrap(),
        Claim::Granted(_)
    ));
    let mut changes = membership.watch();
    changes.mark_unchanged();
    client
        .execute(
            "UPDATE dormouse_nodes SET lease_expires = clock_timestamp() - interval '1 minute'",
            &[],
        )
        .await
        .unwrap();
    membership.renew_now().await;
    assert!(changes.has_changed().unwrap(), "observers hear of it");
    let second = membership.lease().expect("registered again");
    assert!(second.incarnation() > first.incarnation());
    // The old incarnation's objects are not the new one's: claiming goes through the epoch again.
    let Claim::Granted(again) = session.claim(&second, &key).await.unwrap() else {
        panic!("the object is free once its owner's incarnation is gone");
    };
    assert_eq!(again.epoch, 2);
    assert!(
        matches!(
            session.claim(&first, &key).await.unwrap(),
            Claim::OwnedElsewhere(owner) if owner.epoch == 2
        ),
        "the old incarnation is not its new one"
    );
}
