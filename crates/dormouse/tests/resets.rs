//! Errors and panics in application code: what they do to the socket, the object and the server.

mod common;

use common::{PROBE, count, wait_for};
use dormouse_testing::TestServer;

#[tokio::test]
async fn a_handler_error_leaves_the_socket_open() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/reset-error").await;
    client.send_text("fail").await;
    client.send_text("echo still here").await;
    assert_eq!(client.recv_text().await, "still here");
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_resets_total", PROBE),
        0.0
    );
}

#[tokio::test]
async fn a_panicking_handler_resets_only_its_object() {
    let server = TestServer::start(common::app()).await;
    let mut victim_a = server.connect("/probe/reset-panic").await;
    let mut victim_b = server.connect("/probe/reset-panic?tags=x").await;
    let mut bystander = server.connect("/probe/reset-bystander").await;

    victim_a.send_text("panic").await;
    // Every socket of the reset object is closed with 1011, without close events.
    assert_eq!(
        victim_a.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    assert_eq!(
        victim_b.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    wait_for("reset-panic", "dropped").await;
    assert_eq!(count("reset-panic", "close:"), 0);

    // Other objects, and the server, carry on.
    bystander.send_text("echo fine").await;
    assert_eq!(bystander.recv_text().await, "fine");
    let metrics = server.metrics().await;
    assert_eq!(metrics.get("dormouse_object_resets_total", PROBE), 1.0);
    assert_eq!(metrics.get("dormouse_websockets_open", PROBE), 1.0);

    // The reset object starts afresh on its next request.
    let mut again = server.connect("/probe/reset-panic").await;
    again.send_text("count").await;
    assert_eq!(again.recv_text().await, "1");
    assert_eq!(count("reset-panic", "new"), 2);
}

#[tokio::test]
async fn a_panicking_fetch_fails_the_call_and_resets_the_object() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/reset-fetch").await;
    let reply = server.request("GET", "/probe/reset-fetch/panic", &[]).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.body,
        "Reset: Durable Object was reset: its fetch handler panicked"
    );
    assert_eq!(
        client.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    let reply = server.request("GET", "/probe/reset-fetch", &[]).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_failing_fetch_is_an_error_for_the_caller_only() {
    let server = TestServer::start(common::app()).await;
    let reply = server
        .request("GET", "/probe/reset-fetch-error/fail", &[])
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (500, "User: fetch fails")
    );
    assert_eq!(
        server
            .request("GET", "/probe/reset-fetch-error", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        count("reset-fetch-error", "new"),
        1,
        "an error is not a reset"
    );
}

#[tokio::test]
async fn a_panicking_constructor_fails_requests_but_not_the_server() {
    let server = TestServer::start(common::app()).await;
    let reply = server.request("GET", "/probe/ctor-panic-1", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (500, "Reset: Durable Object's constructor panicked")
    );
    // The next request tries again (and fails again); other objects are unaffected.
    assert_eq!(
        server
            .request("GET", "/probe/ctor-panic-1", &[])
            .await
            .status,
        500
    );
    assert_eq!(server.request("GET", "/probe/fine", &[]).await.status, 200);
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_resets_total", PROBE),
        2.0
    );
}

#[tokio::test]
async fn a_panic_after_hibernation_closes_hibernated_sockets_too() {
    let server = TestServer::start(common::app()).await;
    let mut sleeper = server.connect("/probe/reset-hibernated").await;
    let mut trigger = server.connect("/probe/reset-hibernated").await;
    server.hibernate(PROBE, "reset-hibernated").await;
    trigger.send_text("panic").await;
    assert_eq!(
        trigger.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
    assert_eq!(
        sleeper.expect_close().await,
        Some((1011, "Durable Object reset".into()))
    );
}
