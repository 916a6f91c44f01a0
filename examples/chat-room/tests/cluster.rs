//! The chat room across a cluster of three nodes: members connected to different nodes talk in
//! one room (their sockets forwarded to the room's owner), and when the owner is killed the
//! members on the other nodes are told to reconnect (1012), and go on talking after they did.

use std::path::Path;
use std::time::{Duration, Instant};

use dormouse_testing::{TEST_LEASE_TTL, TestCluster, WsClient};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-room");

/// The next message that is not a system announcement, without its timestamp.
async fn next_chat(client: &mut WsClient) -> Value {
    loop {
        let mut message: Value = serde_json::from_str(&client.recv_text().await).unwrap();
        if message["type"] == "system" {
            continue;
        }
        message.as_object_mut().unwrap().remove("timestamp");
        return message;
    }
}

fn chat(user: &str, text: &str) -> Value {
    json!({"type": "chat", "userId": user, "username": user, "text": text})
}

async fn join(cluster: &TestCluster, node: usize, user: &str) -> WsClient {
    let url = cluster
        .node(node)
        .ws_url(&format!("/room/lobby?userId={user}&username={user}"));
    WsClient::connect(&url).await
}

#[tokio::test(flavor = "multi_thread")]
async fn members_on_different_nodes_share_a_room_and_survive_its_owner() {
    let mut cluster = TestCluster::start(Path::new(BINARY), 3, &[]).await;
    let mut members = Vec::new();
    for (node, user) in ["ann", "bob", "cat"].into_iter().enumerate() {
        members.push((node, user, join(&cluster, node, user).await));
    }
    members[1]
        .2
        .send_text(r#"{"type":"chat","text":"hello from node 1"}"#)
        .await;
    for (_, _, client) in &mut members {
        assert_eq!(next_chat(client).await, chat("bob", "hello from node 1"));
    }

    let owner = cluster.owner_index("CHAT_ROOM").await.expect("an owner");
    cluster.kill9(owner);
    members.retain(|(node, _, _)| *node != owner);
    for (_, user, client) in &mut members {
        let closed = client.expect_close().await;
        assert_eq!(
            closed.map(|(code, _)| code),
            Some(1012),
            "{user} is told to reconnect"
        );
    }
    // Each reconnects to the node it was on; the room is claimed anew once the dead owner's
    // lease lapsed (the first attempts may be refused meanwhile).
    let deadline = Instant::now() + TEST_LEASE_TTL * 5;
    for (node, user, client) in &mut members {
        let url = cluster
            .node(*node)
            .ws_url(&format!("/room/lobby?userId={user}&username={user}"));
        *client = loop {
            match WsClient::try_connect(&url, Duration::from_secs(5)).await {
                Ok(client) => break client,
                Err(why) => {
                    assert!(Instant::now() < deadline, "{user} cannot rejoin: {why}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
    }
    let (_, speaker, _) = members[0];
    members[0]
        .2
        .send_text(r#"{"type":"chat","text":"still here"}"#)
        .await;
    for (_, _, client) in &mut members {
        assert_eq!(next_chat(client).await, chat(speaker, "still here"));
    }
}
