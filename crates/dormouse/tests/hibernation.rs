//! Hibernation: what survives it, what the constructor sees, what prevents it.

mod common;

use common::{PROBE, count, wait_for};
use dormouse::runtime::ObjectState;
use dormouse_testing::TestServer;

#[tokio::test]
async fn sockets_keep_ids_tags_and_attachments_across_hibernation() {
    let server = TestServer::start(common::app()).await;
    let mut alice = server
        .connect("/probe/hib-keep?tags=room:1,user:alice&attach=alice")
        .await;
    let mut bob = server.connect("/probe/hib-keep?tags=room:1,user:bob").await;
    alice.send_text("my-id").await;
    let alice_id = alice.recv_text().await;
    bob.send_text("attach bob").await;
    assert_eq!(bob.recv_text().await, "attached");
    bob.send_text("timeout 5000").await;
    assert_eq!(bob.recv_text().await, "timeout Some(5s)");

    server.hibernate(PROBE, "hib-keep").await;
    assert_eq!(object_state(&server, "hib-keep"), ObjectState::Hibernated);

    alice.send_text("my-id").await;
    assert_eq!(
        alice.recv_text().await,
        alice_id,
        "WebSocketId is stable across hibernation"
    );
    // The constructor saw both sockets and their attachments.
    assert_eq!(count("hib-keep", "new"), 2);
    assert_eq!(
        common::journal("hib-keep")
            .iter()
            .filter(|e| e.starts_with("new"))
            .nth(1)
            .unwrap(),
        r#"new sockets=2 attachments={"v":"alice"},{"v":"bob"}"#
    );
    alice.send_text("tags").await;
    assert_eq!(alice.recv_text().await, "room:1,user:alice");
    bob.send_text("count-tag room:1").await;
    assert_eq!(bob.recv_text().await, "2");
    bob.send_text("attachment").await;
    assert_eq!(bob.recv_text().await, r#"{"v":"bob"}"#);
    bob.send_text("timeout 7000").await;
    assert_eq!(bob.recv_text().await, "timeout Some(7s)");
}

#[tokio::test]
async fn the_object_knows_its_id_and_name_after_waking() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/hib-name").await;
    client.send_text("object-id").await;
    let before = client.recv_text().await;
    assert!(before.ends_with(" hib-name"), "{before}");
    server.hibernate(PROBE, "hib-name").await;
    client.send_text("object-id").await;
    assert_eq!(client.recv_text().await, before);
}

#[tokio::test]
async fn hibernated_object_costs_only_its_registry_entry() {
    let server = TestServer::start(common::app()).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = server.connect(&format!("/probe/hib-many-{i}")).await;
        client.send_text("echo up").await;
        assert_eq!(client.recv_text().await, "up");
        clients.push(client);
    }
    let report = server.runtime().hibernate_all().await;
    assert_eq!(report.hibernated, 3);
    let metrics = server.metrics().await;
    assert_eq!(metrics.get("dormouse_objects_active", PROBE), 0.0);
    assert_eq!(metrics.get("dormouse_objects_hibernated", PROBE), 3.0);
    assert_eq!(
        metrics.get("dormouse_object_hibernations_total", PROBE),
        3.0
    );
    assert_eq!(metrics.get("dormouse_websockets_open", PROBE), 3.0);

    // Only the object that gets a message wakes.
    clients[1].send_text("echo wake").await;
    assert_eq!(clients[1].recv_text().await, "wake");
    let metrics = server.metrics().await;
    assert_eq!(metrics.get("dormouse_objects_active", PROBE), 1.0);
    assert_eq!(metrics.get("dormouse_objects_hibernated", PROBE), 2.0);
    assert_eq!(metrics.get("dormouse_object_wakes_total", PROBE), 1.0);
}

#[tokio::test]
async fn an_object_without_sockets_is_forgotten_when_idle() {
    let server = TestServer::start(common::app()).await;
    let reply = server.request("GET", "/probe/hib-fetch-only", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(object_state(&server, "hib-fetch-only"), ObjectState::Active);
    server.hibernate(PROBE, "hib-fetch-only").await;
    assert!(
        server
            .runtime()
            .objects()
            .iter()
            .all(|o| o.name.as_deref() != Some("hib-fetch-only"))
    );
}

#[tokio::test]
async fn pending_wait_until_prevents_hibernation_and_says_so() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/hib-wait").await;
    client.send_text("wait-until 300").await;
    assert_eq!(client.recv_text().await, "waiting");
    let id = server
        .runtime()
        .env()
        .durable_object(PROBE)
        .unwrap()
        .id_from_name("hib-wait")
        .unwrap();
    let error = server
        .runtime()
        .hibernate_now(PROBE, &id)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("1 wait_until task(s) pending"),
        "{error}"
    );
    let status = server
        .runtime()
        .objects()
        .into_iter()
        .find(|o| o.name.as_deref() == Some("hib-wait"))
        .unwrap();
    assert_eq!(
        status.hibernation_blockers,
        vec!["1 wait_until task(s) pending".to_owned()]
    );

    wait_for("hib-wait", "wait-until done").await;
    // Completion is observed by the object's task; hibernating now succeeds.
    let deadline = tokio::time::Instant::now() + dormouse_testing::DEADLINE;
    while server.runtime().hibernate_now(PROBE, &id).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the object never became hibernatable"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn standard_sockets_prevent_hibernation() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/hib-standard?mode=standard").await;
    client.send_text("hello").await;
    assert_eq!(client.recv_text().await, "standard echo: hello");
    let id = server
        .runtime()
        .env()
        .durable_object(PROBE)
        .unwrap()
        .id_from_name("hib-standard")
        .unwrap();
    let error = server
        .runtime()
        .hibernate_now(PROBE, &id)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("1 standard (non-hibernatable) WebSocket(s) open"),
        "{text}"
    );
}

#[tokio::test]
async fn admin_endpoint_lists_objects_and_hibernates_them() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/hib-admin").await;
    client.send_text("echo up").await;
    assert_eq!(client.recv_text().await, "up");
    let listing = server.admin("GET", "/objects").await;
    let objects: serde_json::Value = serde_json::from_str(&listing.body).unwrap();
    let object = objects
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "hib-admin")
        .unwrap();
    assert_eq!(object["state"], "active");
    assert_eq!(object["hibernatable_sockets"], 1);

    let reply = server
        .admin(
            "POST",
            &format!("/objects/{PROBE}/name:hib-admin/hibernate"),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(object_state(&server, "hib-admin"), ObjectState::Hibernated);
    assert_eq!(
        server
            .admin("POST", "/objects/NOPE/name:x/hibernate")
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .admin("POST", &format!("/objects/{PROBE}/abc/hibernate"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn idle_objects_hibernate_on_their_own() {
    // A real idle timer, set short; the test waits for the transition with a deadline.
    let server = TestServer::start_with(common::app(), |args| {
        args.hibernate_after = std::time::Duration::from_millis(50)
    })
    .await;
    let mut client = server.connect("/probe/hib-timer").await;
    client.send_text("echo up").await;
    assert_eq!(client.recv_text().await, "up");
    // The instance's Drop runs when the idle timer hibernates it.
    wait_for("hib-timer", "dropped").await;
    assert_eq!(object_state(&server, "hib-timer"), ObjectState::Hibernated);
    client.send_text("echo again").await;
    assert_eq!(client.recv_text().await, "again");
    assert_eq!(count("hib-timer", "new"), 2);
}

fn object_state(server: &TestServer, name: &str) -> ObjectState {
    server
        .runtime()
        .objects()
        .into_iter()
        .find(|o| o.name.as_deref() == Some(name))
        .map(|o| o.state)
        .unwrap_or_else(|| panic!("object {name} is unknown"))
}
