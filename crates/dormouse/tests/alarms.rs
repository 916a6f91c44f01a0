//! Alarms: one per object, at least once, retried with Cloudflare's schedule, waking hibernated
//! objects. (Surviving a process restart is tested with the game example's real processes.)

mod common;

use std::time::Duration;

use common::store::{self, STORE};
use common::{count, journal, wait_for};
use dormouse_testing::TestServer;
use serde_json::{Value, json};

async fn run(server: &TestServer, object: &str, ops: Value) -> Vec<Value> {
    let reply = server
        .post(&format!("/store/{object}"), &ops.to_string())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

/// A server whose failed alarms are retried after 10 ms, 20 ms, 40 ms… instead of 2 s, 4 s, 8 s…
async fn fast_retries() -> TestServer {
    TestServer::start_configured(store::app(), |config| {
        config.alarm_retry_delay = Duration::from_millis(10)
    })
    .await
}

#[tokio::test]
async fn an_alarm_fires_once_and_is_then_unset() {
    let server = TestServer::start(store::app()).await;
    let r = run(
        &server,
        "alarm-once",
        json!([{"op": "set_alarm", "in_ms": 50}, {"op": "get_alarm"}]),
    )
    .await;
    let at = r[1]["ok"].as_i64().unwrap();
    assert!(at > 1_700_000_000_000);
    // get_alarm answers null while the handler runs.
    assert_eq!(wait_for("alarm-once", "alarm:").await, "alarm:0:false:None");
    let r = run(
        &server,
        "alarm-once",
        json!([{"op": "get_alarm"}, {"op": "get", "key": "alarm_runs"}]),
    )
    .await;
    assert_eq!(r[0]["ok"], Value::Null, "a successful alarm is deleted");
    assert_eq!(r[1]["ok"], 1);
    assert_eq!(
        server.metrics().await.get("dormouse_alarms_total", STORE),
        1.0
    );
}

#[tokio::test]
async fn an_alarm_wakes_a_hibernated_object() {
    let server = TestServer::start(store::app()).await;
    let _socket = server.connect("/store/alarm-wake").await;
    run(
        &server,
        "alarm-wake",
        json!([{"op": "set_alarm", "in_ms": 100}]),
    )
    .await;
    server.hibernate(STORE, "alarm-wake").await;
    wait_for("alarm-wake", "alarm:").await;
    assert_eq!(
        count("alarm-wake", "new"),
        2,
        "the constructor ran again before the handler"
    );
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_wakes_total", STORE),
        1.0
    );
}

#[tokio::test]
async fn a_time_in_the_past_fires_at_once_and_set_overwrites() {
    let server = TestServer::start(store::app()).await;
    // Set far away, then moved to the past: only the second time counts.
    run(
        &server,
        "alarm-past",
        json!([{"op": "set_alarm", "in_ms": 3_600_000}, {"op": "set_alarm", "at_ms": 1}]),
    )
    .await;
    assert_eq!(wait_for("alarm-past", "alarm:").await, "alarm:0:false:None");
}

#[tokio::test]
async fn a_deleted_alarm_does_not_fire() {
    let server = TestServer::start(store::app()).await;
    run(
        &server,
        "alarm-deleted",
        json!([{"op": "set_alarm", "in_ms": 30}, {"op": "delete_alarm"}]),
    )
    .await;
    run(
        &server,
        "alarm-deleted",
        json!([{"op": "set_alarm", "in_ms": 120}]),
    )
    .await;
    wait_for("alarm-deleted", "alarm:").await;
    // The deleted one (due first) never ran: exactly one run, the second alarm's.
    let r = run(
        &server,
        "alarm-deleted",
        json!([{"op": "get", "key": "alarm_runs"}]),
    )
    .await;
    assert_eq!(r[0]["ok"], 1);
}

#[tokio::test]
async fn failures_are_retried_with_doubling_delays() {
    let server = fast_retries().await;
    run(&server, "alarm-retry", json!([{"op": "put", "key": "alarm_mode", "value": "fail_times:3"}, {"op": "set_alarm", "in_ms": 10}])).await;
    wait_for("alarm-retry", "alarm:3:").await;
    let runs: Vec<String> = journal("alarm-retry")
        .into_iter()
        .filter(|e| e.starts_with("alarm:"))
        .collect();
    assert_eq!(
        runs,
        [
            "alarm:0:false:None",
            "alarm:1:true:None",
            "alarm:2:true:None",
            "alarm:3:true:None"
        ]
    );
    let r = run(&server, "alarm-retry", json!([{"op": "get_alarm"}])).await;
    assert_eq!(r[0]["ok"], Value::Null, "deleted once it succeeded");
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_alarm_retries_total", STORE),
        3.0
    );
}

#[tokio::test]
async fn an_alarm_that_keeps_failing_is_given_up_after_six_retries() {
    let server = fast_retries().await;
    run(&server, "alarm-give-up", json!([{"op": "put", "key": "alarm_mode", "value": "fail"}, {"op": "set_alarm", "in_ms": 10}])).await;
    wait_for("alarm-give-up", "alarm:6:true").await;
    // One more delivery deletes it; the handler does not run again.
    let deadline = tokio::time::Instant::now() + dormouse_testing::DEADLINE;
    loop {
        let r = run(&server, "alarm-give-up", json!([{"op": "get_alarm"}])).await;
        if r[0]["ok"] == Value::Null {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failing alarm was never given up"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        count("alarm-give-up", "alarm:"),
        7,
        "the first attempt and six retries"
    );
}

#[tokio::test]
async fn a_panicking_alarm_resets_the_object_and_is_retried() {
    let server = fast_retries().await;
    let mut socket = server.connect("/store/alarm-panic").await;
    run(&server, "alarm-panic", json!([{"op": "put", "key": "alarm_mode", "value": "panic"}, {"op": "set_alarm", "in_ms": 10}])).await;
    assert_eq!(
        socket.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    wait_for("alarm-panic", "alarm:1:true").await;
    // The panicking attempts' writes were rolled back with the resets. (One turn, so that the next
    // retry cannot run, and succeed, in between.)
    let r = run(
        &server,
        "alarm-panic",
        json!([{"op": "put", "key": "alarm_mode", "value": "ok"}, {"op": "get", "key": "alarm_runs"}]),
    )
    .await;
    assert_eq!(r[1]["ok"], Value::Null);
}

#[tokio::test]
async fn a_handler_may_set_the_next_alarm() {
    let server = TestServer::start(store::app()).await;
    run(&server, "alarm-again", json!([{"op": "put", "key": "alarm_mode", "value": "again_in:30"}, {"op": "set_alarm", "in_ms": 10}])).await;
    common::wait_for_count("alarm-again", "alarm:", 2).await;
}
