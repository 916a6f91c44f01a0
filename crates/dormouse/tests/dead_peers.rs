//! Peers that stop answering: found by the runtime's pings, reported as a 1006 close (waking the
//! object if needed), without any frame from the client.

mod common;

use std::time::Duration;

use common::{PROBE, wait_for};
use dormouse_testing::{
    DEADLINE, TestServer, connect_raw, handshake_raw, masked_frame, read_at_least,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// Pings after 100 ms of silence; 200 ms to answer (or to finish a close handshake).
async fn server() -> TestServer {
    TestServer::start_configured(common::app(), |config| {
        config.ping_interval = Duration::from_millis(100);
        config.ping_timeout = Duration::from_millis(200);
    })
    .await
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_dropped_and_the_object_told() {
    let server = server().await;
    let (mut stream, _) = connect_raw(server.addr(), "/probe/dead").await;
    server.hibernate(PROBE, "dead").await;

    // The runtime pings the silent peer; answering keeps the connection.
    let ping = read_at_least(&mut stream, Vec::new(), 10).await;
    assert_eq!(&ping[..10], b"\x89\x08dormouse");
    stream
        .write_all(&masked_frame(0x8A, b"dormouse"))
        .await
        .unwrap();
    // Pinged again after the next silence; this time the peer says nothing.
    let ping = read_at_least(&mut stream, Vec::new(), 10).await;
    assert_eq!(&ping[..2], b"\x89\x08");
    let close = wait_for("dead", "close:").await;
    assert_eq!(
        close,
        "close:1006:WebSocket peer stopped answering pings.:false:Closed:listed=false:tags="
    );
    assert_eq!(
        common::count("dead", "new"),
        2,
        "the hibernated object woke to hear of it"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metrics
            .series(r#"dormouse_websockets_dropped_total{namespace="PROBE",cause="unresponsive"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_close_handshake_the_peer_never_finishes_is_given_up() {
    let server = server().await;
    let (mut stream, _) = connect_raw(server.addr(), "/probe/half-closed").await;
    // Ask the object to close, then never answer its close frame (and never read).
    let frame = masked_frame(0x81, b"close 4000 bye");
    stream.write_all(&frame).await.unwrap();
    let close = wait_for("half-closed", "close:").await;
    assert_eq!(
        close,
        "close:1006:WebSocket close handshake was not completed in time.:false:Closed:listed=false:tags="
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.series(
            r#"dormouse_websockets_dropped_total{namespace="PROBE",cause="close_timeout"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_peer_reading_a_long_backlog_is_not_taken_for_dead() {
    let server = server().await;
    // A small receive buffer, so that the reply waits on the server's side while it is read.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr()).await.unwrap();
    let (mut stream, _) = handshake_raw(stream, "/probe/backlog").await;
    stream
        .write_all(&masked_frame(0x81, b"big 2000000"))
        .await
        .unwrap();

    // Reading it takes several ping timeouts; the ping queued behind it arrives that late.
    let started = Instant::now();
    let reply = 10 + 2_000_000;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while received.len() < reply + 10 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("read within deadline")
            .expect("the connection stays open");
        assert!(n > 0, "the server dropped a client that was reading");
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(
        started.elapsed() > Duration::from_millis(600),
        "the backlog outlasted the ping timeout"
    );
    assert_eq!(&received[..2], b"\x81\x7f");
    assert_eq!(&received[reply..reply + 10], b"\x89\x08dormouse");

    // Answered late, the ping keeps the connection.
    stream
        .write_all(&masked_frame(0x8A, b"dormouse"))
        .await
        .unwrap();
    stream
        .write_all(&masked_frame(0x81, b"echo alive"))
        .await
        .unwrap();
    assert_eq!(
        read_at_least(&mut stream, Vec::new(), 7).await,
        b"\x81\x05alive"
    );
    assert_eq!(common::count("backlog", "close:"), 0);
    let metrics = server.metrics().await;
    assert_eq!(
        metrics
            .series(r#"dormouse_websockets_dropped_total{namespace="PROBE",cause="unresponsive"}"#),
        0.0
    );
}
