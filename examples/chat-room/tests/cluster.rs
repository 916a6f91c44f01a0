//! The chat room across a cluster of three nodes: members connected to different nodes talk in
//! one room (their sockets forwarded to the room's owner), and when the owner's node is killed
//! or drained, the members on the other nodes stay connected: the room is claimed by another
//! node, their sockets are adopted by it with their attachments (who they are), and their next
//! messages are delivered. Only the members connected to the owner's node itself are cut off.

use std::path::Path;
use std::time::{Duration, Instant};

use dormouse_testing::{TEST_LEASE_TTL, TestCluster, WsClient, http_request};
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

/// The sockets node `node` holds for the room, by its admin endpoint.
async fn room_sockets(cluster: &TestCluster, node: usize) -> usize {
    let objects = http_request(cluster.node(node).admin(), "GET", "/objects", &[], "").await;
    let objects: Value = serde_json::from_str(&objects.body).unwrap();
    objects
        .as_array()
        .unwrap()
        .iter()
        .filter(|object| object["binding"] == "CHAT_ROOM")
        .map(|object| object["hibernatable_sockets"].as_u64().unwrap() as usize)
        .sum()
}

async fn join(cluster: &TestCluster, node: usize, user: &str) -> WsClient {
    let url = cluster
        .node(node)
        .ws_url(&format!("/room/lobby?userId={user}&username={user}"));
    WsClient::connect(&url).await
}

/// Members on every node, one message through each, then the owner's node goes (`leave`); the
/// members elsewhere must carry on.
async fn members_outlive_their_rooms_node(leave: impl AsyncFnOnce(&mut TestCluster, usize)) {
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
    leave(&mut cluster, owner).await;
    members.retain(|(node, _, _)| *node != owner);
    // A broadcast reaches the sockets adopted so far: wait until the new owner holds both.
    let deadline = Instant::now() + TEST_LEASE_TTL * 10;
    loop {
        if let Some(new_owner) = cluster.owner_index("CHAT_ROOM").await
            && new_owner != owner
            && room_sockets(&cluster, new_owner).await == members.len()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the sockets were never adopted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The same sockets, still open: each speaks, and everyone hears it under the right name.
    for speaker in 0..members.len() {
        let (_, user, _) = members[speaker];
        let text = format!("{user} is still here");
        members[speaker]
            .2
            .send_text(&json!({"type": "chat", "text": text}).to_string())
            .await;
        for (_, listener, client) in &mut members {
            assert_eq!(
                next_chat(client).await,
                chat(user, &text),
                "{listener} hears {user}"
            );
        }
    }
    let mut moved = 0.0;
    for node in (0..cluster.len()).filter(|node| *node != owner) {
        let metrics = cluster.node(node).metrics().await;
        moved += metrics.series("dormouse_cluster_moved_sockets_total");
    }
    assert_eq!(
        moved,
        members.len() as f64,
        "each survivor's socket moved once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn members_on_other_nodes_outlive_a_killed_owner() {
    members_outlive_their_rooms_node(async |cluster: &mut TestCluster, owner| cluster.kill9(owner))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_on_other_nodes_outlive_a_drained_owner() {
    members_outlive_their_rooms_node(async |cluster: &mut TestCluster, owner| {
        assert!(cluster.drain(owner).await.success());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_on_the_owners_node_are_told_to_reconnect_when_it_drains() {
    let mut cluster = TestCluster::start(Path::new(BINARY), 2, &[]).await;
    let mut local = join(&cluster, 0, "dan").await;
    let _remote = join(&cluster, 1, "eve").await;
    let owner = cluster.owner_index("CHAT_ROOM").await.expect("an owner");
    assert_eq!(owner, 0, "the first member's node claimed the room");
    let drained = tokio::spawn(async move {
        let status = cluster.drain(0).await;
        (cluster, status)
    });
    // Past the welcome and the announcements, the socket is closed with 1012.
    let closed = loop {
        match local.recv_text_or_close().await {
            Ok(_) => continue,
            Err(closed) => break closed,
        }
    };
    assert_eq!(closed.map(|(code, _)| code), Some(1012));
    let (_cluster, status) = drained.await.unwrap();
    assert!(status.success());
}
