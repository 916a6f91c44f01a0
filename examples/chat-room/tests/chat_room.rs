//! The chat room against a real server: joins, chat, typing, leaves, across hibernation.

use dormouse_testing::{TestServer, WsClient};
use serde_json::{Value, json};

/// Parses a message and drops its timestamp (the only field that varies between runs).
async fn recv(client: &mut WsClient) -> Value {
    let mut message: Value = serde_json::from_str(&client.recv_text().await).unwrap();
    if let Some(object) = message.as_object_mut() {
        let timestamp = object.remove("timestamp");
        if let Some(timestamp) = timestamp {
            assert!(
                timestamp.as_u64().unwrap() > 1_700_000_000_000,
                "timestamp in milliseconds"
            );
        }
    }
    message
}

#[tokio::test]
async fn a_conversation_across_hibernation() {
    let server = TestServer::start(chat_room::app()).await;
    let mut alice = server.connect("/room/lobby?userId=a1&username=alice").await;
    assert_eq!(
        recv(&mut alice).await,
        json!({"type": "system", "text": "Welcome to the chat room! 1 user(s) online."})
    );
    let mut bob = server.connect("/room/lobby?userId=b2&username=bob").await;
    assert_eq!(
        recv(&mut bob).await,
        json!({"type": "system", "text": "Welcome to the chat room! 2 user(s) online."})
    );
    assert_eq!(
        recv(&mut alice).await,
        json!({"type": "system", "text": "bob joined the room"})
    );

    server.hibernate(chat_room::BINDING, "lobby").await;

    alice.send_text(r#"{"type":"chat","text":"hi bob"}"#).await;
    let chat = json!({"type": "chat", "userId": "a1", "username": "alice", "text": "hi bob"});
    assert_eq!(recv(&mut alice).await, chat);
    assert_eq!(recv(&mut bob).await, chat);

    bob.send_text(r#"{"type":"typing"}"#).await;
    assert_eq!(
        recv(&mut alice).await,
        json!({"type": "typing", "userId": "b2", "username": "bob"})
    );
    bob.expect_nothing().await;

    // Bad input is logged and ignored; the room carries on. The chat message after it is the
    // next thing either member receives: the bad frames, handled before it, produced nothing.
    bob.send_text("not json").await;
    bob.send_binary(b"{}").await;
    bob.send_text(r#"{"type":"unknown"}"#).await;
    bob.send_text(r#"{"type":"chat","text":"still here"}"#)
        .await;
    let chat = json!({"type": "chat", "userId": "b2", "username": "bob", "text": "still here"});
    assert_eq!(recv(&mut bob).await, chat);
    assert_eq!(recv(&mut alice).await, chat);

    server.hibernate(chat_room::BINDING, "lobby").await;
    assert_eq!(bob.close(1000, "bye").await, Some((1000, "bye".into())));
    assert_eq!(
        recv(&mut alice).await,
        json!({"type": "system", "text": "bob left the room"})
    );
    // The room's sessions were rebuilt from attachments after each wake.
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.get("dormouse_object_wakes_total", chat_room::BINDING),
        2.0
    );
}

#[tokio::test]
async fn defaults_shapes_and_rooms() {
    let server = TestServer::start(chat_room::app()).await;
    let mut anon = server.connect("/room/r1").await;
    assert_eq!(
        recv(&mut anon).await["text"],
        "Welcome to the chat room! 1 user(s) online."
    );
    anon.send_text(r#"{"type":"chat"}"#).await;
    // No text given: the field is absent, as JSON.stringify drops undefined.
    assert_eq!(
        recv(&mut anon).await,
        json!({"type": "chat", "userId": "anonymous", "username": "Anonymous"})
    );
    anon.send_text(r#"{"type":"chat","text":{"nested":[1,2]}}"#)
        .await;
    assert_eq!(recv(&mut anon).await["text"], json!({"nested": [1, 2]}));

    // Another room is another object.
    let mut other = server.connect("/room/r2?username=eve").await;
    assert_eq!(
        recv(&mut other).await["text"],
        "Welcome to the chat room! 1 user(s) online."
    );
    anon.expect_nothing().await;

    // A dropped connection is announced too.
    let mut carol = server.connect("/room/r1?username=carol").await;
    recv(&mut carol).await;
    assert_eq!(recv(&mut anon).await["text"], "carol joined the room");
    carol.drop_connection().await;
    assert_eq!(recv(&mut anon).await["text"], "carol left the room");
}

#[tokio::test]
async fn the_worker_keeps_the_seed_answers_and_serves_the_page() {
    let server = TestServer::start(chat_room::app()).await;
    let usage = "Usage: /room/{roomId}?userId={userId}&username={username}";
    for path in ["/rooms", "/room/", "/x/room/a"] {
        let reply = server.request("GET", path, &[]).await;
        assert_eq!((reply.status, reply.body.as_str()), (400, usage), "{path}");
    }
    let reply = server.request("POST", "/", &[]).await;
    assert_eq!((reply.status, reply.body.as_str()), (400, usage));
    let reply = server.request("GET", "/room/a", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (426, "Expected Upgrade: websocket")
    );
    let page = server.request("GET", "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Dormouse chat</title>"));
}
