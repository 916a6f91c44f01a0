//! Alarms in the cluster database: the owner sets them under its epoch; a due alarm whose object
//! has no live owner is found by other nodes, which claim the object to fire it.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{lapse, node, object as key};
use dormouse_cluster::{Claim, OrphanAlarm};
use dormouse_testing::Postgres;

const GRACE: Duration = Duration::from_secs(2);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn an_alarm_whose_owner_died_is_found_by_another_node_and_the_old_owner_cannot_change_it() {
    let db = Postgres::start();
    let (mut a, lease_a) = node(&db, "a").await;
    let (mut b, lease_b) = node(&db, "b").await;
    let Claim::Granted(owned_by_a) = a.claim(&lease_a, &key(1)).await.unwrap() else {
        panic!("a claims");
    };
    let Claim::Granted(later) = a.claim(&lease_a, &key(2)).await.unwrap() else {
        panic!("a claims");
    };
    let due = now_ms() - 1_000;
    a.set_alarm(&owned_by_a, Some(due)).await.unwrap();
    a.set_alarm(&later, Some(now_ms() + 3_600_000))
        .await
        .unwrap();
    // Its owner is alive: it fires its own alarm.
    assert_eq!(b.orphan_alarms(GRACE, 10).await.unwrap(), []);

    lapse(&db, "a", Duration::from_secs(60)).await;
    // Only the due one, to the millisecond it was set for.
    assert_eq!(
        b.orphan_alarms(GRACE, 10).await.unwrap(),
        [OrphanAlarm {
            key: key(1),
            scheduled_ms: due
        }]
    );
    let Claim::Granted(owned_by_b) = b.claim(&lease_b, &key(1)).await.unwrap() else {
        panic!("b claims the orphan");
    };
    assert_eq!(b.orphan_alarms(GRACE, 10).await.unwrap(), [], "now b's own");
    let error = a.set_alarm(&owned_by_a, None).await.unwrap_err();
    assert!(error.is_fenced(), "{error}");

    // Fired and not set again: gone, even once b is gone too.
    b.set_alarm(&owned_by_b, None).await.unwrap();
    lapse(&db, "b", Duration::from_secs(60)).await;
    assert_eq!(b.orphan_alarms(GRACE, 10).await.unwrap(), []);
}
