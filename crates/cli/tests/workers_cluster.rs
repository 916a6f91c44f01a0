//! Workers mode in a cluster: the seed chat room (TypeScript, unchanged) on two `dormouse serve`
//! nodes around one PostgreSQL. Members on both nodes share a room; when the room's node is
//! killed, the member connected to the other node stays connected, its socket adopted by the
//! room's new owner with its attachment, and talks on.

use std::path::Path;
use std::time::{Duration, Instant};

use dormouse_testing::{TEST_LEASE_TTL, TestCluster, WsClient, seed_project};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_dormouse");

/// The text of the next chat message, with who sent it.
async fn next_chat(client: &mut WsClient) -> (String, String) {
    loop {
        let message: Value = serde_json::from_str(&client.recv_text().await).unwrap();
        if message["type"] == "chat" {
            let name = message["username"].as_str().unwrap().to_owned();
            return (name, message["text"].as_str().unwrap().to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_chat_room_spans_nodes_and_outlives_its_node() {
    let project = seed_project("seed000-chat-room");
    let mut cluster = TestCluster::start_workers(Path::new(BINARY), &project, 2).await;
    let url = |node: usize, user: &str| {
        cluster
            .node(node)
            .ws_url(&format!("/room/js?userId={user}&username={user}"))
    };
    let mut ann = WsClient::connect(&url(0, "ann")).await;
    let mut bob = WsClient::connect(&url(1, "bob")).await;
    bob.send_text(r#"{"type":"chat","text":"hi ann"}"#).await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(next_chat(client).await, ("bob".into(), "hi ann".into()));
    }
    let owner = cluster.owner_index("CHAT_ROOM").await.expect("an owner");
    assert_eq!(owner, 0, "the first member's node claimed the room");
    cluster.kill9(0);
    // Bob's socket moves to node 1 once node 0's lease lapsed; the room's new instance finds it
    // with its attachment, so bob still speaks as bob.
    let deadline = Instant::now() + TEST_LEASE_TTL * 10;
    while cluster.owner_index("CHAT_ROOM").await != Some(1) {
        assert!(Instant::now() < deadline, "the room never moved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = loop {
        let metrics = cluster.node(1).metrics().await;
        let moved = metrics.series("dormouse_cluster_moved_sockets_total");
        if moved >= 1.0 {
            break moved;
        }
        assert!(Instant::now() < deadline, "bob's socket never moved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(moved, 1.0);
    bob.send_text(r#"{"type":"chat","text":"still here"}"#)
        .await;
    assert_eq!(
        next_chat(&mut bob).await,
        ("bob".into(), "still here".into())
    );
}
