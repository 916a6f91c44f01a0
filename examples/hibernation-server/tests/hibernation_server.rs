//! Seed 001 against a real server.

use dormouse_testing::TestServer;

fn session_of(reply: &str) -> &str {
    reply
        .split("from: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
}

#[tokio::test]
async fn three_sends_per_message_and_sessions_survive_hibernation() {
    let server = TestServer::start(hibernation_server::app()).await;
    let mut a = server.connect("/websocket").await;
    let mut b = server.connect("/websocket").await;

    a.send_text("hello").await;
    let first = a.recv_text().await;
    let id_a = session_of(&first).to_owned();
    assert_eq!(
        first,
        format!(
            "[Durable Object] message: hello, from: {id_a}, to: the initiating client. Total connections: 2"
        )
    );
    assert_eq!(
        a.recv_text().await,
        format!(
            "[Durable Object] message: hello, from: {id_a}, to: all clients. Total connections: 2"
        )
    );
    assert_eq!(
        b.recv_text().await,
        format!(
            "[Durable Object] message: hello, from: {id_a}, to: all clients. Total connections: 2"
        )
    );
    assert_eq!(
        b.recv_text().await,
        format!(
            "[Durable Object] message: hello, from: {id_a}, to: all clients except the initiating client. Total connections: 2"
        )
    );
    a.expect_nothing().await;

    server.hibernate(hibernation_server::BINDING, "foo").await;
    // The auto-response answers without waking the object.
    a.send_text("ping").await;
    assert_eq!(a.recv_text().await, "pong");
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.get("dormouse_object_wakes_total", hibernation_server::BINDING),
        0.0
    );

    // The session id comes back from the attachment after the wake.
    a.send_text("again").await;
    assert_eq!(session_of(&a.recv_text().await), id_a);
    assert!(a.recv_text().await.contains("to: all clients."));
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_wakes_total", hibernation_server::BINDING),
        1.0
    );

    assert_eq!(b.close(1000, "done").await, Some((1000, "done".into())));
    a.send_text("last").await;
    assert!(
        a.recv_text()
            .await
            .ends_with("to: the initiating client. Total connections: 1")
    );
}

#[tokio::test]
async fn the_worker_answers_like_the_seed() {
    let server = TestServer::start(hibernation_server::app()).await;
    let reply = server.request("GET", "/", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            200,
            "Supported endpoints:\n/websocket: Expects a WebSocket upgrade request"
        )
    );
    let reply = server.request("GET", "/websocket", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (426, "Worker expected Upgrade: websocket")
    );
}
