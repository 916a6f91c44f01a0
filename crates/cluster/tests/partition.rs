//! A node cut off from PostgreSQL: through a proxy that black-holes the link, its renewals go
//! unanswered, it gives its lease up at its local deadline (before the database would), and once
//! the link heals it comes back as a new incarnation.

use std::time::Duration;

mod common;

use common::{admin, lease_expiry};
use dormouse_cluster::{LeaseSettings, MemberState, Membership};
use dormouse_testing::{DEADLINE, FaultProxy, Postgres};

/// Short leases, as the cluster tests use: renewed every 200 ms, given up 750 ms after the last
/// renewal was sent.
const SETTINGS: LeaseSettings = LeaseSettings {
    ttl: Duration::from_secs(1),
    grace: Duration::from_millis(250),
    margin: Duration::from_millis(250),
};

/// Node `a`, a member through `proxy`.
async fn member_through(proxy: &FaultProxy, settings: LeaseSettings) -> Membership {
    Membership::start(
        &Postgres::url_at(proxy.addr()),
        "a",
        "127.0.0.2:8787",
        settings,
    )
    .await
    .unwrap()
}

async fn until(
    changes: &mut tokio::sync::watch::Receiver<MemberState>,
    wanted: impl Fn(&MemberState) -> bool,
) -> MemberState {
    let state = tokio::time::timeout(DEADLINE, changes.wait_for(|state| wanted(state)))
        .await
        .expect("the membership never got there")
        .expect("the membership's task ended");
    state.clone()
}

#[tokio::test]
async fn a_node_cut_off_from_the_database_gives_up_its_lease_and_returns_as_a_new_incarnation() {
    let db = Postgres::start();
    let proxy = FaultProxy::start(db.addr()).await;
    let membership = member_through(&proxy, SETTINGS).await;
    let MemberState::Member(first) = membership.state() else {
        panic!("registered");
    };
    let mut changes = membership.watch();

    proxy.black_hole();
    let lapsed = until(&mut changes, |s| matches!(s, MemberState::Lapsed { .. })).await;
    let MemberState::Lapsed { incarnation, why } = lapsed else {
        unreachable!()
    };
    assert_eq!(incarnation, first.incarnation());
    assert!(why.contains("took longer than"), "{why}");
    assert_eq!(membership.lease(), None, "a lapsed node owns nothing");

    proxy.heal();
    let back = until(&mut changes, |s| matches!(s, MemberState::Member(_))).await;
    let MemberState::Member(second) = back else {
        unreachable!()
    };
    assert!(
        second.incarnation() > first.incarnation(),
        "never the old one"
    );
}

#[tokio::test]
async fn a_cut_connection_is_opened_again() {
    let db = Postgres::start();
    let proxy = FaultProxy::start(db.addr()).await;
    let membership = member_through(&proxy, LeaseSettings::default()).await;
    let first = membership.lease().unwrap();
    let client = admin(&db).await;
    let expiry = || lease_expiry(&client, "a");
    // The connection is closed under it: renewals fail, and the lease in the database stays.
    proxy.cut();
    membership.renew_now().await;
    let during = expiry().await;
    membership.renew_now().await;
    assert_eq!(expiry().await, during, "nothing renewed through a cut link");
    // Healed, the next renewal opens a new connection and goes through.
    proxy.heal();
    membership.renew_now().await;
    assert!(expiry().await > during, "renewed over a new connection");
    let lease = membership
        .lease()
        .expect("still a member: the lease never lapsed");
    assert_eq!(lease.incarnation(), first.incarnation());
}

#[tokio::test]
async fn a_session_knows_when_its_connection_ended() {
    let db = Postgres::start();
    let proxy = FaultProxy::start(db.addr()).await;
    let mut session = dormouse_cluster::Session::connect(&Postgres::url_at(proxy.addr()))
        .await
        .unwrap();
    let mut lease = session
        .register("a", "127.0.0.2:8787", LeaseSettings::default())
        .await
        .unwrap();
    assert!(!session.is_closed());
    proxy.cut();
    let ended = async {
        while !session.is_closed() {
            let _ = session.renew(&mut lease).await;
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(DEADLINE, ended)
        .await
        .expect("the session never saw its connection end");
}
