//! The echo example against a real server on loopback.

use dormouse_testing::TestServer;

#[tokio::test]
async fn replies_with_the_connection_count_across_hibernation() {
    let server = TestServer::start(echo::app()).await;
    let mut first = server.connect("/websocket").await;
    first.send_text("hello").await;
    assert_eq!(
        first.recv_text().await,
        "[Durable Object] message: hello, connections: 1"
    );

    let mut second = server.connect("/websocket").await;
    second.send_binary(&[1, 2, 3]).await;
    assert_eq!(
        second.recv_text().await,
        "[Durable Object] message: [object ArrayBuffer], connections: 2"
    );

    server.hibernate(echo::BINDING, "foo").await;
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.get("dormouse_objects_hibernated", echo::BINDING),
        1.0
    );
    assert_eq!(metrics.get("dormouse_objects_active", echo::BINDING), 0.0);
    assert_eq!(metrics.get("dormouse_websockets_open", echo::BINDING), 2.0);

    first.send_text("after").await;
    assert_eq!(
        first.recv_text().await,
        "[Durable Object] message: after, connections: 2"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.get("dormouse_object_wakes_total", echo::BINDING),
        1.0
    );

    assert_eq!(second.close(4000, "bye").await, Some((4000, "bye".into())));
    first.send_text("again").await;
    assert_eq!(
        first.recv_text().await,
        "[Durable Object] message: again, connections: 1"
    );
}

#[tokio::test]
async fn other_urls_get_the_seed_answers() {
    let server = TestServer::start(echo::app()).await;
    let reply = server.request("GET", "/", &[]).await;
    assert_eq!((reply.status, reply.body.as_str()), (400, ""));
    let reply = server.request("GET", "/websocket", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (426, "Durable Object expected Upgrade: websocket")
    );
}
