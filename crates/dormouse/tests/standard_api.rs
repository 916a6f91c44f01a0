//! The standard (non-hibernatable) WebSocket API: `accept()` and an event stream.

mod common;

use common::wait_for;
use dormouse_testing::TestServer;

#[tokio::test]
async fn accepted_sockets_deliver_events_to_the_stream() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/std-events?mode=standard").await;
    client.send_text("one").await;
    assert_eq!(client.recv_text().await, "standard echo: one");
    client.send_text("two").await;
    assert_eq!(client.recv_text().await, "standard echo: two");
    assert_eq!(client.close(4100, "bye").await, Some((4100, "bye".into())));
    assert_eq!(
        wait_for("std-events", "standard-close:").await,
        "standard-close:4100:bye:true"
    );
    wait_for("std-events", "standard-end").await;
    // Standard socket events never reach the hibernation handlers.
    assert_eq!(common::count("std-events", "message:"), 0);
    assert_eq!(common::count("std-events", "close:"), 0);
}

#[tokio::test]
async fn a_dropped_standard_socket_ends_its_stream() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/std-drop?mode=standard").await;
    client.send_text("hi").await;
    assert_eq!(client.recv_text().await, "standard echo: hi");
    client.drop_connection().await;
    assert_eq!(
        wait_for("std-drop", "standard-close:").await,
        "standard-close:1006:WebSocket disconnected without sending Close frame.:false"
    );
}

#[tokio::test]
async fn idle_objects_with_standard_sockets_are_evicted_later() {
    // The probe consumes the socket's events in `wait_until` work, which keeps an idle object for
    // up to the wait_until limit; both are shortened here.
    let server = TestServer::start_configured(common::app(), |config| {
        config.evict_after = std::time::Duration::from_millis(100);
        config.wait_until_limit = std::time::Duration::from_millis(100);
    })
    .await;
    let mut client = server.connect("/probe/std-evict?mode=standard").await;
    client.send_text("hi").await;
    assert_eq!(client.recv_text().await, "standard echo: hi");
    // The socket pins the object until the eviction timeout; then it is closed with 1001.
    assert_eq!(
        client.expect_close().await,
        Some((1001, "Durable Object evicted after inactivity".into()))
    );
    wait_for("std-evict", "dropped").await;
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_evictions_total", common::PROBE),
        1.0
    );
}
