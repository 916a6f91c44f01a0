//! The seed examples (and the counter) against the same programs on workerd: the same frames in, the same frames out,
//! before and after hibernation.
//!
//! Each scenario runs once against Dormouse (hibernation forced) and once against workerd
//! (hibernation by its own 10 s timer, which cannot be driven from outside), and the normalised
//! transcripts must be equal. Known, deliberate difference: when a client closes, Dormouse answers
//! the close frame itself with the client's own code and reason (Cloudflare's behaviour since the
//! 2026-04-07 compatibility date); this workerd configuration uses an older date, where the seed's
//! handler answers with its own reason. Only close codes are compared.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use dormouse_oracle::Transcript;
use dormouse_testing::{TestServer, Workerd, WsClient};

/// Where a scenario connects.
struct Target {
    addr: SocketAddr,
}

impl Target {
    async fn connect(&self, path: &str) -> WsClient {
        WsClient::connect(&format!("ws://{}{path}", self.addr)).await
    }
}

/// Seed 002: one reply per message with the connection count.
async fn seed002<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = Transcript::default();
    t.http(target.addr, "GET", "/").await;
    t.http(target.addr, "GET", "/websocket").await;
    let mut a = target.connect("/websocket").await;
    a.send_text("hello").await;
    t.recv("A", &mut a, 1).await;
    a.send_binary(&[1, 2, 3]).await;
    t.recv("A", &mut a, 1).await;
    let mut b = target.connect("/websocket").await;
    b.send_text("from b").await;
    t.recv("B", &mut b, 1).await;
    hibernate().await;
    a.send_text("after hibernation").await;
    t.recv("A", &mut a, 1).await;
    t.close("B", &mut b, 4000, "bye").await;
    a.send_text("last").await;
    t.recv("A", &mut a, 1).await;
    t.close("A", &mut a, 1000, "done").await;
    t.lines().to_vec()
}

/// Seed 001: sessions from attachments, a ping/pong auto-response, three sends per message.
async fn seed001<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = Transcript::default();
    t.http(target.addr, "GET", "/").await;
    t.http(target.addr, "GET", "/websocket").await;
    let mut a = target.connect("/websocket").await;
    let mut b = target.connect("/websocket").await;
    a.send_text("hello").await;
    t.recv("A", &mut a, 2).await;
    t.recv("B", &mut b, 2).await;
    a.send_text("ping").await;
    t.recv("A", &mut a, 1).await;
    hibernate().await;
    a.send_text("ping").await;
    t.recv("A", &mut a, 1).await;
    b.send_text("after hibernation").await;
    t.recv("B", &mut b, 2).await;
    t.recv("A", &mut a, 2).await;
    t.close("B", &mut b, 1001, "gone").await;
    a.send_text("alone").await;
    t.recv("A", &mut a, 2).await;
    t.close("A", &mut a, 1000, "done").await;
    t.lines().to_vec()
}

/// Seed 000: the chat room's JSON protocol.
async fn seed000<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = Transcript::default();
    t.http(target.addr, "GET", "/nope").await;
    t.http(target.addr, "GET", "/room/oracle").await;
    let mut alice = target
        .connect("/room/oracle?userId=a1&username=alice")
        .await;
    t.recv("alice", &mut alice, 1).await;
    let mut bob = target
        .connect("/room/oracle?userId=b2&username=Bob+B")
        .await;
    t.recv("bob", &mut bob, 1).await;
    t.recv("alice", &mut alice, 1).await;
    alice.send_text(r#"{"type":"chat","text":"hi bob"}"#).await;
    t.recv("alice", &mut alice, 1).await;
    t.recv("bob", &mut bob, 1).await;
    bob.send_text(r#"{"type":"typing"}"#).await;
    t.recv("alice", &mut alice, 1).await;
    bob.expect_nothing().await;
    hibernate().await;
    bob.send_text(r#"{"type":"chat","text":"after hibernation"}"#)
        .await;
    t.recv("alice", &mut alice, 1).await;
    t.recv("bob", &mut bob, 1).await;
    alice.send_text(r#"{"type":"chat","text":42}"#).await;
    t.recv("alice", &mut alice, 1).await;
    t.recv("bob", &mut bob, 1).await;
    alice.send_text(r#"{"type":"chat"}"#).await;
    t.recv("alice", &mut alice, 1).await;
    t.recv("bob", &mut bob, 1).await;
    bob.send_text("not json").await;
    bob.expect_nothing().await;
    alice.expect_nothing().await;
    t.close("bob", &mut bob, 1000, "bye").await;
    t.recv("alice", &mut alice, 1).await;
    t.close("alice", &mut alice, 1000, "bye").await;
    t.lines().to_vec()
}

/// The counter example (on workerd, its JavaScript port, with SQLite files on disk).
async fn counter<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = Transcript::default();
    t.http(target.addr, "GET", "/counter/oracle").await;
    t.http(target.addr, "POST", "/counter/oracle").await;
    let mut ws = target.connect("/counter/oracle").await;
    ws.send_text("+1").await;
    t.recv("ws", &mut ws, 1).await;
    hibernate().await;
    ws.send_text("+1").await;
    t.recv("ws", &mut ws, 1).await;
    t.http(target.addr, "POST", "/counter/oracle").await;
    t.http(target.addr, "GET", "/counter/oracle").await;
    t.close("ws", &mut ws, 1000, "done").await;
    t.lines().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_answer_like_the_seeds_on_workerd() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("workerd/config.capnp");
    let workerd = Workerd::start(&config).await;
    let echo = TestServer::start(echo::app()).await;
    let sessions = TestServer::start(hibernation_server::app()).await;
    let chat = TestServer::start(chat_room::app()).await;
    let counters = TestServer::start(counter::app()).await;

    // workerd: the scenarios at once, so that its eviction timer is waited out once.
    let (oracle_002, oracle_001, oracle_000, oracle_counter) = tokio::join!(
        seed002(
            Target {
                addr: workerd.addr("h002")
            },
            Workerd::wait_for_eviction
        ),
        seed001(
            Target {
                addr: workerd.addr("h001")
            },
            Workerd::wait_for_eviction
        ),
        seed000(
            Target {
                addr: workerd.addr("h000")
            },
            Workerd::wait_for_eviction
        ),
        counter(
            Target {
                addr: workerd.addr("hcounter")
            },
            Workerd::wait_for_eviction
        ),
    );
    // workerd did hibernate the chat room: its constructor ran again with both sockets.
    assert!(
        workerd
            .stdout()
            .iter()
            .any(|line| line == "ChatRoom constructor: restored 2 connections"),
        "workerd never re-created the chat room: {:?}",
        workerd.stdout()
    );

    let ours_002 = seed002(Target { addr: echo.addr() }, || {
        echo.hibernate(echo::BINDING, "foo")
    })
    .await;
    let ours_001 = seed001(
        Target {
            addr: sessions.addr(),
        },
        || sessions.hibernate(hibernation_server::BINDING, "foo"),
    )
    .await;
    let ours_000 = seed000(Target { addr: chat.addr() }, || {
        chat.hibernate(chat_room::BINDING, "oracle")
    })
    .await;

    let ours_counter = counter(
        Target {
            addr: counters.addr(),
        },
        || counters.hibernate(counter::BINDING, "oracle"),
    )
    .await;

    assert_eq!(ours_002, oracle_002, "seed 002 (echo)");
    assert_eq!(ours_001, oracle_001, "seed 001 (hibernation server)");
    assert_eq!(ours_000, oracle_000, "seed 000 (chat room)");
    assert_eq!(ours_counter, oracle_counter, "counter");
    // Dormouse really hibernated and woke each object.
    for (server, binding) in [
        (&echo, echo::BINDING),
        (&sessions, hibernation_server::BINDING),
        (&chat, chat_room::BINDING),
    ] {
        let metrics = server.metrics().await;
        assert_eq!(
            metrics.get("dormouse_object_wakes_total", binding),
            1.0,
            "{binding}"
        );
    }
    eprintln!(
        "transcripts match: {} + {} + {} + {} lines",
        ours_002.len(),
        ours_001.len(),
        ours_000.len(),
        ours_counter.len()
    );
}
