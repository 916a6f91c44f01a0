//! The scenarios run against Dormouse and against workerd: the same frames in, the transcript
//! of what came back out.

use std::future::Future;
use std::net::SocketAddr;

use dormouse_testing::WsClient;

use crate::Transcript;

/// Where a scenario connects.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The server's HTTP address.
    pub addr: SocketAddr,
    /// Compare close reasons too (both sides answer close frames the same way), not only codes.
    pub exact_close: bool,
}

impl Target {
    /// A target comparing close codes only.
    pub fn new(addr: SocketAddr) -> Self {
        Target {
            addr,
            exact_close: false,
        }
    }

    /// A target comparing close codes and reasons.
    pub fn exact(addr: SocketAddr) -> Self {
        Target {
            addr,
            exact_close: true,
        }
    }

    async fn connect(&self, path: &str) -> WsClient {
        WsClient::connect(&format!("ws://{}{path}", self.addr)).await
    }

    fn transcript(&self) -> Transcript {
        Transcript::new(self.exact_close)
    }
}

/// Seed 002: one reply per message with the connection count.
pub async fn seed002<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = target.transcript();
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
pub async fn seed001<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = target.transcript();
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
pub async fn seed000<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = target.transcript();
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
    // The chat after the bad frame is the next thing either hears: the bad frame, handled
    // before it, produced nothing.
    bob.send_text("not json").await;
    bob.send_text(r#"{"type":"chat","text":"still here"}"#)
        .await;
    t.recv("alice", &mut alice, 1).await;
    t.recv("bob", &mut bob, 1).await;
    t.close("bob", &mut bob, 1000, "bye").await;
    t.recv("alice", &mut alice, 1).await;
    t.close("alice", &mut alice, 1000, "bye").await;
    t.lines().to_vec()
}

/// The counter example (on workerd, its JavaScript port, with SQLite files on disk).
pub async fn counter<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = target.transcript();
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

/// Seed 004: the client registry as asked, with its in-memory map of clients (lost when the
/// object hibernates, as on Cloudflare: broadcasts then reach nobody).
pub async fn seed004<H: Future<Output = ()>>(
    target: Target,
    hibernate: impl FnOnce() -> H,
) -> Vec<String> {
    let mut t = target.transcript();
    t.http(target.addr, "GET", "/").await;
    let mut a = target.connect("/").await;
    a.send_text("hello").await;
    t.recv("A", &mut a, 1).await;
    let mut b = target.connect("/").await;
    b.send_text("from b").await;
    t.recv("A", &mut a, 1).await;
    t.recv("B", &mut b, 1).await;
    hibernate().await;
    b.send_text("after hibernation").await;
    // The object handles a third connection's upgrade after the message: once it answered,
    // whatever the message sent is on its way ahead of the barriers.
    let mut c = target.connect("/").await;
    a.expect_nothing().await;
    b.expect_nothing().await;
    t.close("C", &mut c, 1000, "bye").await;
    t.close("B", &mut b, 1000, "bye").await;
    t.close("A", &mut a, 1000, "done").await;
    t.lines().to_vec()
}
