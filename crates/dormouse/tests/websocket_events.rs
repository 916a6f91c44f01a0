//! Every row of the event table (spec §1.8): what each wire event on a hibernatable socket does.

mod common;

use common::{PROBE, count, journal, wait_for};
use dormouse_testing::{TestServer, connect_raw, read_at_least};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn text_and_binary_frames_reach_websocket_message() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-data").await;
    client.send_text("echo hello").await;
    assert_eq!(client.recv_text().await, "hello");
    client.send_binary(&[1, 2, 3, 255]).await;
    assert_eq!(client.recv_binary().await, vec![1, 2, 3, 255]);
    assert_eq!(wait_for("events-data", "binary:").await, "binary:4");
    assert_eq!(
        wait_for("events-data", "message:").await,
        "message:echo hello"
    );
}

#[tokio::test]
async fn frames_sent_in_one_turn_and_the_next_arrive_in_order() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-burst").await;
    for round in 0..3 {
        client.send_text("burst 50").await;
        for n in 0..50 {
            assert_eq!(client.recv_text().await, n.to_string(), "round {round}");
        }
        assert_eq!(client.recv_text().await, "burst done");
        // A reply of the next turn goes out at once, and never ahead of the frames queued before.
        client.send_text("echo next").await;
        assert_eq!(client.recv_text().await, "next");
    }
}

#[tokio::test]
async fn pings_are_answered_by_the_runtime_without_waking_the_object() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-ping").await;
    client.send_text("echo up").await;
    assert_eq!(client.recv_text().await, "up");
    server.hibernate(PROBE, "events-ping").await;
    let before = server.metrics().await;

    client.send_ping(b"are you there").await;
    assert_eq!(client.recv_pong().await, b"are you there");
    let after = server.metrics().await;
    assert_eq!(
        after.get("dormouse_object_wakes_total", PROBE),
        before.get("dormouse_object_wakes_total", PROBE)
    );
    assert_eq!(after.get("dormouse_objects_active", PROBE), 0.0);
    assert_eq!(
        after.get("dormouse_websocket_pongs_total", PROBE),
        before.get("dormouse_websocket_pongs_total", PROBE) + 1.0
    );
    assert_eq!(
        count("events-ping", "new"),
        1,
        "the object was not constructed again"
    );
}

#[tokio::test]
async fn auto_response_answers_without_a_handler_or_a_wake() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-auto").await;
    client.send_text("auto ping pong").await;
    assert_eq!(client.recv_text().await, "auto set");
    client.send_text("auto-time").await;
    assert_eq!(client.recv_text().await, "none");
    server.hibernate(PROBE, "events-auto").await;

    for _ in 0..3 {
        client.send_text("ping").await;
        assert_eq!(client.recv_text().await, "pong");
    }
    // Only an exact text match is answered: binary "ping" and "ping " reach the handler.
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.get("dormouse_websocket_auto_responses_total", PROBE),
        3.0
    );
    assert_eq!(metrics.get("dormouse_object_wakes_total", PROBE), 0.0);
    assert_eq!(count("events-auto", "message:ping"), 0);

    client.send_binary(b"ping").await;
    assert_eq!(client.recv_binary().await, b"ping");
    client.send_text("auto-time").await;
    assert_eq!(
        client.recv_text().await,
        "some",
        "the auto-response time is kept across hibernation"
    );
    client.send_text("auto-get").await;
    assert_eq!(
        client.recv_text().await,
        "ping->pong",
        "the auto-response survives hibernation"
    );
    let metrics = server.metrics().await;
    assert_eq!(metrics.get("dormouse_object_wakes_total", PROBE), 1.0);
}

#[tokio::test]
async fn binary_auto_responses_and_several_pairs() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-auto-binary").await;
    client.send_text("auto-binary").await;
    assert_eq!(client.recv_text().await, "auto set");
    client.send_binary(&[0xC0]).await;
    assert_eq!(client.recv_binary().await, vec![0xD0]);
    client.send_text("ping").await;
    assert_eq!(client.recv_text().await, "pong");
    // A text frame never matches a binary pair: it reaches the handler.
    client.send_text("\u{c0}").await;
    assert_eq!(client.recv_text().await, "unknown command \u{c0}");
    client.send_text("auto-clear").await;
    assert_eq!(client.recv_text().await, "cleared");
    client.send_text("ping").await;
    assert_eq!(
        client.recv_text().await,
        "unknown command ping",
        "cleared pairs no longer answer"
    );
    assert_eq!(count("events-auto-binary", "message:ping"), 1);
}

#[tokio::test]
async fn close_frame_is_answered_then_reported_clean() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-close?tags=room").await;
    let mut other = server.connect("/probe/events-close").await;
    client.send_text("echo ready").await;
    assert_eq!(client.recv_text().await, "ready");

    // The runtime answers with the same code and reason.
    assert_eq!(
        client.close(4001, "going").await,
        Some((4001, "going".into()))
    );
    let entry = wait_for("events-close", "close:").await;
    assert_eq!(entry, "close:4001:going:true:Closed:listed=false:tags=room");
    other.send_text("count").await;
    assert_eq!(
        other.recv_text().await,
        "1",
        "a closed socket leaves get_websockets"
    );
}

#[tokio::test]
async fn empty_close_frame_reports_1005() {
    let server = TestServer::start(common::app()).await;
    let (mut stream, _) = connect_raw(server.addr(), "/probe/events-1005").await;
    // A masked close frame with no payload.
    stream.write_all(&[0x88, 0x80, 1, 2, 3, 4]).await.unwrap();
    let reply = read_at_least(&mut stream, Vec::new(), 2).await;
    assert_eq!(
        reply,
        vec![0x88, 0x00],
        "an empty close is answered with an empty close"
    );
    assert_eq!(
        wait_for("events-1005", "close:").await,
        "close:1005::true:Closed:listed=false:tags="
    );
}

#[tokio::test]
async fn dropped_connection_reports_1006_not_clean() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-1006").await;
    client.send_text("echo hi").await;
    assert_eq!(client.recv_text().await, "hi");
    server.hibernate(PROBE, "events-1006").await;
    client.drop_connection().await;
    // The object wakes to hear about it.
    let entry = wait_for("events-1006", "close:").await;
    assert_eq!(
        entry,
        "close:1006:WebSocket disconnected without sending Close frame.:false:Closed:listed=false:tags="
    );
    assert_eq!(count("events-1006", "new"), 2);
}

#[tokio::test]
async fn protocol_error_reaches_websocket_error_and_closes_with_1002() {
    let server = TestServer::start(common::app()).await;
    let (mut stream, _) = connect_raw(server.addr(), "/probe/events-error").await;
    // An unmasked text frame from a client breaks RFC 6455.
    stream.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    let reply = read_at_least(&mut stream, Vec::new(), 4).await;
    assert_eq!(
        &reply[..4],
        &[0x88, reply[1], 0x03, 0xEA],
        "close frame with code 1002"
    );
    let entry = wait_for("events-error", "error:").await;
    assert_eq!(
        entry,
        "error:client frame must be masked:listed=false:Closed"
    );
    // websocket_error is the last event: no close event follows, and the object lives on.
    let mut client = server.connect("/probe/events-error").await;
    client.send_text("count").await;
    assert_eq!(client.recv_text().await, "1");
    assert_eq!(count("events-error", "close:"), 0);
}

#[tokio::test]
async fn server_initiated_close_completes_when_the_client_answers() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-server-close").await;
    client.send_text("close 4002 server says bye").await;
    // tungstenite answers the close frame by itself.
    assert_eq!(
        client.expect_close().await,
        Some((4002, "server says bye".into()))
    );
    assert_eq!(
        wait_for("events-server-close", "close:").await,
        "close:4002:server says bye:true:Closed:listed=false:tags="
    );
}

#[tokio::test]
async fn events_of_one_socket_arrive_in_order() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/events-order").await;
    for i in 0..200 {
        client.send_text(&format!("echo {i}")).await;
    }
    for i in 0..200 {
        assert_eq!(client.recv_text().await, i.to_string());
    }
    let messages: Vec<String> = journal("events-order")
        .into_iter()
        .filter(|e| e.starts_with("message:"))
        .collect();
    let expected: Vec<String> = (0..200).map(|i| format!("message:echo {i}")).collect();
    assert_eq!(messages, expected);
}

#[tokio::test]
async fn fragmented_messages_are_reassembled() {
    let server = TestServer::start(common::app()).await;
    let (mut stream, _) = connect_raw(server.addr(), "/probe/events-fragments").await;
    let mask = [9, 8, 7, 6];
    let mut frames = Vec::new();
    frames.extend_from_slice(&dormouse_ws_frame(false, 0x1, b"echo frag", mask));
    frames.extend_from_slice(&dormouse_ws_frame(true, 0x9, b"p", mask));
    frames.extend_from_slice(&dormouse_ws_frame(true, 0x0, b"mented", mask));
    stream.write_all(&frames).await.unwrap();
    // The pong comes first (answered at once), then the reply to the whole message.
    let reply = read_at_least(&mut stream, Vec::new(), 3 + 2 + 10).await;
    assert_eq!(&reply[..3], &[0x8A, 0x01, b'p']);
    assert_eq!(
        &reply[3..],
        &[&[0x81u8, 10][..], b"fragmented"].concat()[..]
    );
}

/// A masked client frame, built by hand.
fn dormouse_ws_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![
        if fin { 0x80 } else { 0 } | opcode,
        0x80 | payload.len() as u8,
    ];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
