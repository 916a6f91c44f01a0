//! The output gate: nothing a turn sends leaves the process before the turn's writes are durable,
//! and if they cannot be made durable, the output is never sent.
//!
//! The failing commit here is real: a deferred foreign-key violation makes SQLite's COMMIT fail.

mod common;

use common::store::{self, STORE};
use dormouse_testing::TestServer;
use serde_json::{Value, json};

/// Sets up a parent/child schema whose foreign key is checked only at commit.
async fn schema(server: &TestServer, object: &str) {
    let reply = server
        .post(
            &format!("/store/{object}"),
            &json!([
                {"op": "sql", "query": "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"},
                {"op": "put", "key": "value", "value": "before"},
            ])
            .to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Writes a value and a row that breaks the deferred foreign key: the commit will fail.
fn doomed_turn() -> String {
    json!([
        {"op": "put", "key": "value", "value": "after"},
        {"op": "sql", "query": "INSERT INTO child VALUES (42)"},
    ])
    .to_string()
}

#[tokio::test]
async fn a_failed_commit_drops_the_websocket_output_and_resets_the_object() {
    let server = TestServer::start(store::app()).await;
    schema(&server, "gate-ws").await;
    let mut writer = server.connect("/store/gate-ws").await;
    let mut bystander = server.connect("/store/gate-ws").await;

    writer.send_text(&doomed_turn()).await;
    // The reply (sent after the writes) is never delivered: the socket is closed by the reset.
    assert_eq!(
        writer.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    assert_eq!(
        bystander.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );

    // Nothing of the turn was kept.
    let check = server
        .post(
            "/store/gate-ws",
            &json!([{"op": "get", "key": "value"}, {"op": "sql", "query": "SELECT * FROM child"}])
                .to_string(),
        )
        .await;
    let results: Vec<Value> = serde_json::from_str(&check.body).unwrap();
    assert_eq!(results[0]["ok"], "before");
    assert_eq!(results[1]["ok"]["rows"], json!([]));
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_resets_total", STORE),
        1.0
    );
}

#[tokio::test]
async fn a_failed_commit_fails_the_http_response() {
    let server = TestServer::start(store::app()).await;
    schema(&server, "gate-http").await;
    let reply = server.post("/store/gate-http", &doomed_turn()).await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.body.contains("storage commit failed"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("FOREIGN KEY constraint failed"),
        "{}",
        reply.body
    );
    let check = server
        .post(
            "/store/gate-http",
            &json!([{"op": "get", "key": "value"}]).to_string(),
        )
        .await;
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&check.body).unwrap()[0]["ok"],
        "before"
    );
}

#[tokio::test]
async fn sync_makes_earlier_writes_durable_even_if_the_turn_fails_later() {
    let server = TestServer::start(store::app()).await;
    schema(&server, "gate-sync").await;
    let mut client = server.connect("/store/gate-sync").await;
    client
        .send_text(&json!([{"op": "put", "key": "value", "value": "synced"}, {"op": "sync"}, {"op": "sql", "query": "INSERT INTO child VALUES (42)"}]).to_string())
        .await;
    // The turn's own commit fails (the doomed row): the reply is dropped, the object reset...
    assert_eq!(
        client.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    // ...but what sync() committed before stays.
    let check = server
        .post(
            "/store/gate-sync",
            &json!([{"op": "get", "key": "value"}, {"op": "sql", "query": "SELECT * FROM child"}])
                .to_string(),
        )
        .await;
    let results: Vec<Value> = serde_json::from_str(&check.body).unwrap();
    assert_eq!(results[0]["ok"], "synced");
    assert_eq!(results[1]["ok"]["rows"], json!([]));
}

#[tokio::test]
async fn successful_turns_deliver_in_order() {
    let server = TestServer::start(store::app()).await;
    let mut client = server.connect("/store/gate-order").await;
    for i in 0..50 {
        client
            .send_text(
                &json!([{"op": "put", "key": "n", "value": i}, {"op": "get", "key": "n"}])
                    .to_string(),
            )
            .await;
    }
    for i in 0..50 {
        let results: Vec<Value> = serde_json::from_str(&client.recv_text().await).unwrap();
        assert_eq!(results[1]["ok"], i);
    }
}
