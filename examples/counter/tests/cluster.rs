//! The counter as a cluster of three nodes around one PostgreSQL: any node serves any counter,
//! WebSockets reach the owner through any node, a killed owner loses nothing acknowledged, and a
//! drained node hands its objects over at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use dormouse_testing::{
    TEST_CLUSTER_SECRET, TEST_LEASE_TTL, TestCluster, WsClient, http_request, try_http_request,
};

const BINARY: &str = env!("CARGO_BIN_EXE_counter");

async fn cluster(nodes: usize) -> TestCluster {
    TestCluster::start(Path::new(BINARY), nodes, &[]).await
}

/// The value an increment through `addr` acknowledged, or why it did not.
async fn increment(addr: SocketAddr, name: &str) -> Result<u64, String> {
    let reply = try_http_request(addr, "POST", &format!("/counter/{name}"), "").await?;
    if reply.status != 200 {
        return Err(format!("{}: {}", reply.status, reply.body));
    }
    reply.body.parse().map_err(|_| reply.body)
}

async fn read(addr: SocketAddr, name: &str) -> String {
    http_request(addr, "GET", &format!("/counter/{name}"), &[], "")
        .await
        .body
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_serves_every_counter_and_they_agree() {
    let cluster = cluster(3).await;
    for (turn, node) in [0, 1, 2, 1, 0, 2].into_iter().enumerate() {
        let value = increment(cluster.addr(node), "shared").await.unwrap();
        assert_eq!(value, turn as u64 + 1, "through node {node}");
    }
    for node in 0..3 {
        assert_eq!(read(cluster.addr(node), "shared").await, "6");
    }
    let owner = cluster.owner_index("COUNTER").await.expect("an owner");
    let mut forwarded = 0.0;
    for node in (0..3).filter(|node| *node != owner) {
        let metrics = cluster.node(node).metrics().await;
        forwarded += metrics.series("dormouse_cluster_forwarded_requests_total");
    }
    assert!(
        forwarded >= 4.0,
        "requests to other nodes were forwarded ({forwarded})"
    );
    let owned = cluster.node(owner).metrics().await;
    assert_eq!(owned.series("dormouse_cluster_objects_owned"), 1.0);
    let objects = http_request(cluster.node(owner).admin(), "GET", "/objects", &[], "").await;
    let owner_field = format!("\"owner\":\"{}\"", cluster.addr(owner));
    assert!(objects.body.contains(&owner_field), "{}", objects.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_owner_loses_no_acknowledged_increment() {
    let mut cluster = cluster(3).await;
    let mut acknowledged = 0;
    for node in [0, 1, 2, 0] {
        acknowledged = increment(cluster.addr(node), "durable").await.unwrap();
    }
    let owner = cluster.owner_index("COUNTER").await.expect("an owner");
    let survivor = (owner + 1) % 3;
    let killed = Instant::now();
    cluster.kill9(owner);
    // The survivor forwards to the dead owner, finds it unreachable, and routes again until the
    // owner's lease has lapsed and it may claim the counter itself.
    let value = loop {
        match increment(cluster.addr(survivor), "durable").await {
            Ok(value) => break value,
            Err(why) => {
                assert!(
                    killed.elapsed() < TEST_LEASE_TTL * 5,
                    "no increment acknowledged {:?} after the kill: {why}",
                    killed.elapsed()
                );
            }
        }
    };
    let failover = killed.elapsed();
    eprintln!("first acknowledged increment {failover:?} after the owner's kill -9");
    assert_eq!(
        value,
        acknowledged + 1,
        "every acknowledged increment survived"
    );
    for node in (0..3).filter(|node| *node != owner) {
        assert_eq!(read(cluster.addr(node), "durable").await, value.to_string());
    }
    cluster.restart(owner).await;
    assert_eq!(
        read(cluster.addr(owner), "durable").await,
        value.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_through_another_node_talks_to_the_owner() {
    let cluster = cluster(2).await;
    assert_eq!(increment(cluster.addr(0), "socket").await.unwrap(), 1);
    let owner = cluster.owner_index("COUNTER").await.expect("an owner");
    let other = 1 - owner;
    let mut client = WsClient::connect(&cluster.node(other).ws_url("/counter/socket")).await;
    for expected in 2..=4 {
        client.send_text("+1").await;
        assert_eq!(client.recv_text().await, expected.to_string());
    }
    assert_eq!(read(cluster.addr(owner), "socket").await, "4");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_request_needs_the_cluster_secret() {
    let cluster = cluster(1).await;
    let addr = cluster.addr(0);
    let object = "COUNTER/00";
    let refused = http_request(
        addr,
        "POST",
        "/counter/x",
        &[("x-dormouse-object", object)],
        "",
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused.body.contains("x-dormouse-cluster-secret"),
        "{}",
        refused.body
    );
    let wrong = http_request(
        addr,
        "POST",
        "/counter/x",
        &[
            ("x-dormouse-object", object),
            ("x-dormouse-cluster-secret", "guess"),
        ],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let malformed_id = http_request(
        addr,
        "POST",
        "/counter/x",
        &[
            ("x-dormouse-object", object),
            ("x-dormouse-cluster-secret", TEST_CLUSTER_SECRET),
        ],
        "",
    )
    .await;
    assert_eq!(malformed_id.status, 500, "{}", malformed_id.body);
    assert!(
        malformed_id.body.contains("64 hex digits"),
        "{}",
        malformed_id.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_node_hands_its_objects_over_at_once() {
    let mut cluster = cluster(2).await;
    assert_eq!(increment(cluster.addr(0), "drained").await.unwrap(), 1);
    let owner = cluster.owner_index("COUNTER").await.expect("an owner");
    let other = 1 - owner;
    let status = cluster.drain(owner).await;
    assert!(status.success(), "a drained node exits 0: {status:?}");
    let started = Instant::now();
    assert_eq!(increment(cluster.addr(other), "drained").await.unwrap(), 2);
    assert!(
        started.elapsed() < TEST_LEASE_TTL,
        "the next owner did not wait for the drained node's lease ({:?})",
        started.elapsed()
    );
    assert_eq!(cluster.owner_index("COUNTER").await, Some(other));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_loses_no_acknowledged_increment() {
    let mut cluster = cluster(3).await;
    let mut acknowledged = Vec::new();
    for round in 0..cluster.len() {
        // Every node serves a few increments, then one node after the other drains and comes
        // back; the increments go through a node that stays up meanwhile.
        for node in 0..cluster.len() {
            acknowledged.push(increment(cluster.addr(node), "rolling").await.unwrap());
        }
        let status = cluster.drain(round).await;
        assert!(status.success(), "node {round} drains: {status:?}");
        let other = (round + 1) % cluster.len();
        acknowledged.push(increment(cluster.addr(other), "rolling").await.unwrap());
        cluster.restart(round).await;
    }
    let expected: Vec<u64> = (1..=acknowledged.len() as u64).collect();
    assert_eq!(
        acknowledged, expected,
        "each increment saw every one before it"
    );
    for node in 0..cluster.len() {
        assert_eq!(
            read(cluster.addr(node), "rolling").await,
            acknowledged.len().to_string()
        );
    }
}
