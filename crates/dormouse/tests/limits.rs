//! Every limit of the API, with Cloudflare's defaults and error texts.

mod common;

use common::{PROBE, wait_for};
use dormouse::runtime::Limits;
use dormouse_testing::{TestServer, connect_raw, read_at_least};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn defaults_are_cloudflares() {
    let limits = Limits::default();
    assert_eq!(limits.max_tags, 10);
    assert_eq!(limits.max_tag_bytes, 256);
    assert_eq!(limits.max_sockets_per_object, 32_768);
    assert_eq!(limits.max_auto_response_bytes, 2_048);
    assert_eq!(limits.max_attachment_bytes, 16_384);
    assert_eq!(limits.max_message_bytes, 32 << 20);
}

#[tokio::test]
async fn tags_at_accept_and_after() {
    let server = TestServer::start(common::app()).await;
    let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let mut client = server
        .connect(&format!("/probe/limit-tags?tags={}", ten.join(",")))
        .await;
    client.send_text("tags").await;
    assert_eq!(client.recv_text().await, ten.join(","));
    client.send_text("add-tag t10").await;
    assert_eq!(
        client.recv_text().await,
        "error: a Hibernatable WebSocket cannot have more than 10 tags"
    );
    client.send_text("remove-tag t0").await;
    assert_eq!(client.recv_text().await, "removed=true");
    client.send_text("add-tag t10").await;
    assert_eq!(client.recv_text().await, "added");
    client.send_text("count-tag t10").await;
    assert_eq!(client.recv_text().await, "1");
    client.send_text("count-tag t0").await;
    assert_eq!(client.recv_text().await, "0");

    let long = "x".repeat(257);
    client.send_text(&format!("add-tag {long}")).await;
    assert_eq!(
        client.recv_text().await,
        format!("error: \"{long}\" is longer than the max tag length (256 characters).")
    );

    // At accept time the object's fetch reports the error (the probe answers 400 with it).
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    let reply = server
        .request(
            "GET",
            &format!("/probe/limit-tags?tags={}", eleven.join(",")),
            &upgrade_headers(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            "a Hibernatable WebSocket cannot have more than 10 tags"
        )
    );
}

#[tokio::test]
async fn sockets_per_object_is_enforced_with_the_spec_message() {
    // The limit is configurable; with connected clients, refused at the upgrade.
    let server = TestServer::start_configured(common::app(), |config| {
        config.limits.max_sockets_per_object = 3
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.connect("/probe/limit-sockets").await);
    }
    let reply = server
        .request("GET", "/probe/limit-sockets", &upgrade_headers())
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            "only 3 websockets can be accepted on a single Durable Object instance"
        )
    );
    // Closing one makes room again.
    clients.pop().unwrap().close(1000, "").await;
    wait_for("limit-sockets", "close:").await;
    clients.push(server.connect("/probe/limit-sockets").await);
}

#[tokio::test]
async fn the_default_socket_limit_refuses_the_32769th() {
    // Sockets accepted but not yet connected count too, so the full default needs no files.
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/bulk-limit").await;
    client.send_text("accept-until-refused").await;
    assert_eq!(
        client.recv_text().await,
        "accepted 32767: error: only 32768 websockets can be accepted on a single Durable Object instance"
    );
    // Their client ends were dropped with the handler that made them: they can never connect, so
    // they end (with a 1006 close each) and leave the object.
    let drained = tokio::time::timeout(dormouse_testing::DEADLINE * 3, async {
        loop {
            client.send_text("count").await;
            if client.recv_text().await == "1" {
                return;
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the unconnected sockets ended");
    assert_eq!(common::count("bulk-limit", "close:1006:"), 32_767);
}

#[tokio::test]
async fn auto_response_size() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-auto").await;
    client.send_text("auto-size 2048 2048").await;
    assert_eq!(client.recv_text().await, "auto set");
    client.send_text("auto-size 2049 1").await;
    assert_eq!(
        client.recv_text().await,
        "error: Request cannot be larger than 2048 bytes. A request of size 2049 was provided."
    );
    client.send_text("auto-size 1 2049").await;
    assert_eq!(
        client.recv_text().await,
        "error: Response cannot be larger than 2048 bytes. A response of size 2049 was provided."
    );
}

#[tokio::test]
async fn attachment_size_and_the_old_one_is_kept() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-attach").await;
    client.send_text("attach first").await;
    assert_eq!(client.recv_text().await, "attached");
    client.send_text("attach-size 16384").await;
    assert_eq!(client.recv_text().await, "attached");
    client.send_text("attach first").await;
    assert_eq!(client.recv_text().await, "attached");
    client.send_text("attach-size 16385").await;
    assert_eq!(
        client.recv_text().await,
        "error: A WebSocket 'attachment' cannot be larger than 16384 bytes.'attachment' was 16385 bytes."
    );
    client.send_text("attachment").await;
    assert_eq!(client.recv_text().await, r#"{"v":"first"}"#);
}

#[tokio::test]
async fn message_size_default_is_32_mib() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-message").await;
    let exactly = vec![7u8; 32 << 20];
    client.send_binary(&exactly).await;
    assert_eq!(client.recv_binary().await.len(), 32 << 20);

    // One byte more: closed with 1009 as soon as the header announces it.
    let (mut stream, _) = connect_raw(server.addr(), "/probe/limit-message").await;
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&((32u64 << 20) + 1).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).await.unwrap();
    let reply = read_at_least(&mut stream, Vec::new(), 4).await;
    assert_eq!(
        &reply[..4],
        &[0x88, reply[1], 0x03, 0xF1],
        "close frame with 1009"
    );
    let error = wait_for("limit-message", "error:").await;
    assert_eq!(
        error,
        "error:message of 33554433 bytes exceeds the maximum of 33554432 bytes:listed=false:Closed"
    );
}

#[tokio::test]
async fn message_size_is_configurable() {
    let server = TestServer::start_with(common::app(), |args| args.max_message_size = 1024).await;
    let mut client = server.connect("/probe/limit-message-small").await;
    client
        .send_text(&format!("echo {}", "a".repeat(1000)))
        .await;
    assert_eq!(client.recv_text().await.len(), 1000);
    client.send_text(&"a".repeat(1025)).await;
    assert_eq!(
        client.expect_close().await.map(|(code, _)| code),
        Some(1009)
    );
}

#[tokio::test]
async fn close_codes_and_reasons_are_validated() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-close").await;
    for code in ["999", "1004", "1005", "1006", "1015", "5000"] {
        client.send_text(&format!("close {code}")).await;
        assert_eq!(
            client.recv_text().await,
            format!("error: Invalid WebSocket close code: {code}.")
        );
    }
    let long = "r".repeat(124);
    client.send_text(&format!("close 4000 {long}")).await;
    assert_eq!(
        client.recv_text().await,
        "error: WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded."
    );
    client.send_text("close").await;
    // No code: an empty close frame; the client answers with one too, reported as 1005.
    assert_eq!(client.expect_close().await, None);
    assert_eq!(
        wait_for("limit-close", "close:").await,
        "close:1005::true:Closed:listed=false:tags="
    );
}

#[tokio::test]
async fn sending_rules() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-send").await;
    client.send_text("send-unaccepted").await;
    assert_eq!(
        client.recv_text().await,
        "error: You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages."
    );
    client.send_text("send-after-close").await;
    // The close frame goes out first; the reply to the command is dropped behind it.
    assert_eq!(client.expect_close().await, Some((4000, "done".into())));
    assert_eq!(
        wait_for("limit-send", "close:").await,
        "close:4000:done:true:Closed:listed=false:tags="
    );
}

#[tokio::test]
async fn accept_rules() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-accept").await;
    client.send_text("accept-twice").await;
    assert_eq!(
        client.recv_text().await,
        "error: Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`"
    );
    client.send_text("accept-client").await;
    assert_eq!(
        client.recv_text().await,
        "error: the client end of a WebSocketPair cannot be accepted; accept the server end"
    );
    client.send_text("standard-then-hibernate").await;
    assert_eq!(
        client.recv_text().await,
        "error: Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`"
    );
    client.send_text("hibernate-then-standard").await;
    assert_eq!(
        client.recv_text().await,
        "error: Can't accept() WebSocket after enabling hibernation."
    );
    client.send_text("pair-outside").await;
    assert_eq!(
        client.recv_text().await,
        "error: WebSocketPair::new() must be called inside a Durable Object handler"
    );
}

#[tokio::test]
async fn event_timeout_bound_and_expiry() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/limit-timeout").await;
    client.send_text("timeout 604800001").await;
    assert_eq!(
        client.recv_text().await,
        "error: Event timeout should not exceed 604800000 ms."
    );
    client.send_text("timeout 604800000").await;
    assert_eq!(client.recv_text().await, "timeout Some(604800s)");
    client.send_text("timeout 50").await;
    assert_eq!(client.recv_text().await, "timeout Some(50ms)");
    // A handler that runs past the timeout resets the object: its sockets close with 1011.
    client.send_text("sleep 5000").await;
    assert_eq!(
        client.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    let metrics = server.metrics().await;
    assert_eq!(metrics.get("dormouse_object_resets_total", PROBE), 1.0);
}

fn upgrade_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ]
}
