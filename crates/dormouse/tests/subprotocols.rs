//! Subprotocols (`Sec-WebSocket-Protocol`) chosen by the object, and the per-address bound on
//! open connections, with a real client library.

mod common;

use common::{PROBE, wait_for};
use dormouse_testing::{TestServer, WsClient};

/// The headers of an upgrade request, offering `protocols`.
fn upgrade_headers(protocols: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-protocol", protocols),
    ]
}

#[tokio::test]
async fn the_object_chooses_among_the_offers_and_the_choice_survives_hibernation() {
    let server = TestServer::start(common::app()).await;
    let url = server.ws_url("/probe/graphql?protocol=first");
    let (mut client, chosen) =
        WsClient::try_connect_offering(&url, &["graphql-transport-ws", "graphql-ws"])
            .await
            .unwrap();
    assert_eq!(chosen.as_deref(), Some("graphql-transport-ws"));
    client.send_text("protocol").await;
    assert_eq!(client.recv_text().await, "graphql-transport-ws");

    server.hibernate(PROBE, "graphql").await;
    client.send_text("protocol").await;
    assert_eq!(client.recv_text().await, "graphql-transport-ws");
    assert_eq!(
        common::count("graphql", "new "),
        2,
        "the answer came from a new instance"
    );
}

#[tokio::test]
async fn without_a_choice_the_socket_has_no_subprotocol() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/no-protocol").await;
    client.send_text("protocol").await;
    assert_eq!(client.recv_text().await, "none");
}

#[tokio::test]
async fn a_choice_the_client_did_not_offer_is_refused_and_the_object_hears_1006() {
    let server = TestServer::start(common::app()).await;
    let reply = server
        .request(
            "GET",
            "/probe/wrong-protocol?protocol=mqtt",
            &upgrade_headers("v12.stomp"),
        )
        .await;
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(
        reply.body,
        "the server chose WebSocket subprotocol \"mqtt\", which the client did not offer (offered: v12.stomp)"
    );
    wait_for("wrong-protocol", "close:1006:").await;

    // A real client library refuses the same answer too, had it reached it.
    let url = server.ws_url("/probe/wrong-protocol-client?protocol=mqtt");
    let error = WsClient::try_connect_offering(&url, &["v12.stomp"])
        .await
        .unwrap_err();
    assert!(error.contains("500"), "{error}");
}

#[tokio::test]
async fn past_the_per_address_bound_upgrades_get_429_and_open_sockets_are_untouched() {
    let server = TestServer::start_with(common::app(), |args| {
        args.max_connections_per_ip = Some(2);
    })
    .await;
    let mut first = server.connect("/probe/per-ip").await;
    let mut second = server.connect("/probe/per-ip").await;
    let refused = server
        .request("GET", "/probe/per-ip", &upgrade_headers("chat"))
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        refused.body,
        "Too Many Requests: 2 WebSocket connections are already open from 127.0.0.1"
    );
    // Plain requests are not connections the bound counts.
    assert_eq!(
        server.request("GET", "/probe/per-ip", &[]).await.status,
        200
    );
    for client in [&mut first, &mut second] {
        client.send_text("echo still open").await;
        assert_eq!(client.recv_text().await, "still open");
    }
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.series("dormouse_websocket_upgrades_refused_total{cause=\"per_ip_limit\"}"),
        1.0
    );
    // The server closes the connection (and frees its place) before the client sees the end.
    assert_eq!(first.close(1000, "bye").await, Some((1000, "bye".into())));
    let mut third = server.connect("/probe/per-ip").await;
    third.send_text("echo third").await;
    assert_eq!(third.recv_text().await, "third");
}
