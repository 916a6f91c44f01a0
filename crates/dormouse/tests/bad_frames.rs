//! Hostile or broken frames: each closes only its own socket, with the right code, reports to
//! `websocket_error`, and the object lives on.

mod common;

use common::wait_for_count;
use dormouse_testing::{TestServer, connect_raw, masked_frame as frame, read_at_least};
use tokio::io::AsyncWriteExt;

/// Sends `bytes` on a fresh socket of `object`; returns the close code the server answered with.
async fn close_code_for(server: &TestServer, object: &str, bytes: &[u8]) -> u16 {
    let (mut stream, _) = connect_raw(server.addr(), &format!("/probe/{object}")).await;
    stream.write_all(bytes).await.unwrap();
    let reply = read_at_least(&mut stream, Vec::new(), 4).await;
    assert_eq!(reply[0], 0x88, "a close frame, got {reply:?}");
    u16::from_be_bytes([reply[2], reply[3]])
}

#[tokio::test]
async fn each_violation_gets_its_close_code_and_reaches_websocket_error() {
    let server = TestServer::start(common::app()).await;
    let mut bystander = server.connect("/probe/bad").await;
    let unmasked = [0x81, 0x02, b'h', b'i'];
    let cases: [(&str, Vec<u8>, u16, &str); 7] = [
        (
            "invalid UTF-8 in a text frame",
            frame(0x81, &[0xC3, 0x28]),
            1007,
            "invalid UTF-8 in text message",
        ),
        (
            "unmasked client frame",
            unmasked.to_vec(),
            1002,
            "client frame must be masked",
        ),
        (
            "reserved bit set",
            frame(0xC1, b"x"),
            1002,
            "reserved bits set in frame header (no extension was negotiated)",
        ),
        (
            "unknown opcode",
            frame(0x83, b"x"),
            1002,
            "unknown opcode 0x3",
        ),
        (
            "fragmented control frame",
            frame(0x09, b"x"),
            1002,
            "fragmented control frame",
        ),
        (
            "continuation without a start",
            frame(0x80, b"x"),
            1002,
            "continuation frame without a message to continue",
        ),
        (
            "new message inside a fragmented one",
            [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
            1002,
            "new data frame while a fragmented message is in progress",
        ),
    ];
    for (i, (what, bytes, code, error)) in cases.iter().enumerate() {
        assert_eq!(close_code_for(&server, "bad", bytes).await, *code, "{what}");
        wait_for_count("bad", "error:", i + 1).await;
        let reported: Vec<String> = common::journal("bad")
            .into_iter()
            .filter(|e| e.starts_with("error:"))
            .collect();
        assert_eq!(
            reported[i],
            format!("error:{error}:listed=false:Closed"),
            "{what}"
        );
        // Only that socket closed; the object and its other sockets carry on.
        bystander.send_text("count").await;
        assert_eq!(bystander.recv_text().await, "1", "{what}");
    }
}

#[tokio::test]
async fn an_oversized_control_frame_is_a_protocol_error() {
    let server = TestServer::start(common::app()).await;
    let oversized = frame(0x89, &[0u8; 126]);
    assert_eq!(
        close_code_for(&server, "bad-control", &oversized).await,
        1002
    );
    assert_eq!(
        common::wait_for("bad-control", "error:").await,
        "error:control frame payload of 126 bytes exceeds 125:listed=false:Closed"
    );
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_gets_400() {
    let server = TestServer::start(common::app()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 definitely not HTTP\r\n\r\n")
        .await
        .unwrap();
    let reply = read_at_least(&mut stream, Vec::new(), 12).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // The server carries on.
    let mut client = server.connect("/probe/after-garbage").await;
    client.send_text("echo fine").await;
    assert_eq!(client.recv_text().await, "fine");
}
