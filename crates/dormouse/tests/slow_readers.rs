//! A client that stops reading: what waits for it is bounded, its connection is dropped once over
//! the bound, and its object hears a 1008 close while the object's other sockets carry on.

mod common;

use common::wait_for;
use dormouse_testing::{TestServer, handshake_raw, masked_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_its_object_told() {
    let server = TestServer::start_configured(common::app(), |config| {
        config.limits.max_outbound_bytes = 64 << 10;
    })
    .await;
    let mut bystander = server.connect("/probe/stalled").await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr()).await.unwrap();
    let (mut stalled, _) = handshake_raw(stream, "/probe/stalled").await;

    // Ask for far more than the kernel buffers on both ends can absorb (their autotuned sizes reach
    // a few MiB on loopback), and never read any of it.
    for _ in 0..8 {
        stalled
            .write_all(&masked_frame(0x81, b"big 2000000"))
            .await
            .unwrap();
    }
    assert_eq!(
        wait_for("stalled", "close:").await,
        "close:1008:the client is not reading: over 65536 bytes were waiting to be sent:false:Closed:listed=false:tags="
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metrics
            .series(r#"dormouse_websockets_dropped_total{namespace="PROBE",cause="slow_reader"}"#),
        1.0
    );
    bystander.send_text("count").await;
    assert_eq!(bystander.recv_text().await, "1");
}
