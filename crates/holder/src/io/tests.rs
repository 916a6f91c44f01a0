//! A connected socket against a fake owner, over real loopback connections: decoding, pings,
//! auto-responses, close replies, protocol errors and back-pressure.

use std::sync::atomic::Ordering;

use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{Outgoing, ReadyState, WebSocketRequestResponsePair};
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::{Message, ProtocolError, encode};

use crate::testing::{FakeOwner, MASK, PATIENCE, connect, group_of, plain_group, settings};
use crate::{CloseReply, SocketLimits};

#[tokio::test]
async fn messages_reach_the_owner_in_order_and_pings_do_not() {
    let (owner, group) = plain_group();
    let (_socket, mut peer) = connect(&group, &[]).await;
    peer.text("first").await;
    peer.send(encode::ping_frame(b"are you there", MASK)).await;
    peer.send(encode::binary_frame(&[1, 2], MASK)).await;
    assert_eq!(
        peer.next().await,
        Some(Message::Pong(b"are you there".to_vec()))
    );
    assert_eq!(owner.wait_for(2).await, ["text first", "binary [1, 2]"]);
    assert_eq!(group.settings().counters.pongs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_auto_response_answers_without_the_owner() {
    let (owner, group) = plain_group();
    group.set_auto_responses(vec![WebSocketRequestResponsePair::new("ping", "pong")]);
    let (socket, mut peer) = connect(&group, &[]).await;
    assert!(socket.auto_response_timestamp().is_none());
    peer.text("ping").await;
    assert_eq!(peer.next().await, Some(Message::Text("pong".into())));
    peer.text("something else").await;
    assert_eq!(owner.wait_for(1).await, ["text something else"]);
    let answered = socket.auto_response_timestamp().expect("a timestamp");
    let age = std::time::SystemTime::now()
        .duration_since(answered)
        .unwrap();
    assert!(age < PATIENCE, "answered {age:?} ago");
    let counters = &group.settings().counters;
    assert_eq!(counters.auto_responses.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_close_is_answered_at_once_with_the_clients_code_and_reason() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    let frame = CloseFrame {
        code: 4000,
        reason: "bye".into(),
    };
    peer.send(encode::close_frame(Some(&frame), MASK)).await;
    assert_eq!(peer.expect_close().await, Some(frame));
    assert_eq!(owner.wait_for(1).await, ["close 4000 \"bye\" clean=true"]);
    assert_eq!(peer.next().await, None, "the server closes the connection");
    assert_eq!(socket.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn with_replies_after_the_handler_the_owner_answers_the_close() {
    let owner = FakeOwner::new();
    let group = group_of(
        &owner,
        settings(SocketLimits::default(), CloseReply::AfterHandler),
    );
    let (socket, mut peer) = connect(&group, &[]).await;
    peer.send(encode::close_frame(None, MASK)).await;
    assert_eq!(owner.wait_for(1).await, ["close 1005 \"\" clean=true"]);
    assert_eq!(socket.ready_state(), ReadyState::Closing);
    // The handler's own close is the answer.
    socket.close(Some(4001), Some("handled")).unwrap();
    let answer = peer.expect_close().await.expect("a code");
    assert_eq!((answer.code, answer.reason.as_str()), (4001, "handled"));
    // The runtime's reply after the handler is not sent twice.
    socket.answer_close(close::NO_STATUS, "");
    assert_eq!(peer.next().await, None);
}

#[tokio::test]
async fn without_an_answer_from_the_handler_the_runtime_echoes_the_close() {
    let owner = FakeOwner::new();
    let group = group_of(
        &owner,
        settings(SocketLimits::default(), CloseReply::AfterHandler),
    );
    let (socket, mut peer) = connect(&group, &[]).await;
    let frame = CloseFrame {
        code: 4002,
        reason: "done".into(),
    };
    peer.send(encode::close_frame(Some(&frame), MASK)).await;
    owner.wait_for(1).await;
    socket.answer_close(4002, "done");
    assert_eq!(peer.expect_close().await, Some(frame));
    assert_eq!(peer.next().await, None);
}

#[tokio::test]
async fn a_protocol_error_closes_with_its_code_and_is_reported_once() {
    let (owner, group) = plain_group();
    let (_socket, mut peer) = connect(&group, &[]).await;
    peer.send(encode::text_frame("unmasked", None)).await;
    peer.text("after the error").await;
    let frame = peer.expect_close().await.expect("a code");
    assert_eq!(frame.code, close::PROTOCOL_ERROR);
    let events = owner.wait_for(1).await;
    assert_eq!(
        events,
        [format!("error {}", ProtocolError::UnmaskedFrame("client"))]
    );
}

#[tokio::test]
async fn a_message_of_the_limit_passes_and_one_byte_more_closes_with_1009() {
    let owner = FakeOwner::new();
    let limits = SocketLimits {
        max_message_bytes: 16,
        ..SocketLimits::default()
    };
    let group = group_of(&owner, settings(limits, CloseReply::Immediate));
    let (_socket, mut peer) = connect(&group, &[]).await;
    peer.text(&"x".repeat(16)).await;
    peer.text(&"y".repeat(17)).await;
    let frame = peer.expect_close().await.expect("a code");
    assert_eq!(frame.code, close::MESSAGE_TOO_BIG);
    let events = owner.wait_for(2).await;
    assert_eq!(events[0], format!("text {}", "x".repeat(16)));
    assert!(events[1].starts_with("error "), "{events:?}");
}

#[tokio::test]
async fn a_full_owner_holds_events_in_the_socket_until_it_has_room() {
    let owner = FakeOwner::new();
    owner.grant(1);
    let group = group_of(
        &owner,
        settings(SocketLimits::default(), CloseReply::Immediate),
    );
    let (_socket, mut peer) = connect(&group, &[]).await;
    for text in ["one", "two", "three"] {
        peer.text(text).await;
    }
    assert_eq!(owner.wait_for(1).await, ["text one"]);
    // The socket waits for room: it registered to be woken, and hands over nothing more.
    tokio::time::timeout(PATIENCE, async {
        while owner.waiting.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the socket waits for room");
    assert_eq!(owner.describe(), ["text one"]);
    owner.grant(usize::MAX);
    assert_eq!(
        owner.wait_for(3).await,
        ["text one", "text two", "text three"]
    );
    assert_eq!(owner.backlogs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_with_1008() {
    let owner = FakeOwner::new();
    let limits = SocketLimits {
        max_outbound_bytes: 64 << 10,
        ..SocketLimits::default()
    };
    let group = group_of(&owner, settings(limits, CloseReply::Immediate));
    let (socket, _peer) = connect(&group, &[]).await;
    let chunk = vec![7u8; 16 << 10];
    // The kernel's buffers fill first; then the socket's own queue passes its bound.
    let mut sent = 0;
    while socket.ready_state() == ReadyState::Open {
        socket.send(Outgoing::Binary(&chunk)).unwrap();
        sent += 1;
        assert!(sent < 100_000, "the connection was never dropped");
        if sent % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let events = owner.wait_for(1).await;
    assert_eq!(
        events,
        [
            "close 1008 \"the client is not reading: over 65536 bytes were waiting to be sent\" clean=false"
        ]
    );
    let counters = &group.settings().counters;
    assert_eq!(counters.dropped_slow_reader.load(Ordering::SeqCst), 1);
}

/// A client that agreed to permessage-deflate.
async fn connect_compressed(
    group: &std::sync::Arc<crate::SocketGroup>,
) -> (std::sync::Arc<crate::SocketRecord>, crate::testing::Peer) {
    let socket = group.new_socket();
    socket.accept_hibernatable(&[]).unwrap();
    socket.couple().unwrap();
    let (client, server) = crate::testing::pair().await;
    socket.attach(
        server,
        bytes::Bytes::new(),
        crate::Negotiated {
            compression: true,
            ..crate::Negotiated::default()
        },
    );
    (socket, crate::testing::Peer::new(client).with_compression())
}

#[tokio::test]
async fn with_compression_agreed_messages_inflate_and_long_ones_go_out_compressed() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect_compressed(&group).await;
    let long = r#"{"type":"chat","text":"hello hello hello hello hello hello hello hello"}"#;
    let deflated = dormouse_ws::deflate::compress(long.as_bytes()).unwrap();
    peer.send(encode::compressed_frame(
        dormouse_ws::Opcode::Text,
        &deflated,
        MASK,
    ))
    .await;
    peer.text("plain").await;
    assert_eq!(
        owner.wait_for(2).await,
        [format!("text {long}"), "text plain".into()]
    );

    socket.send(Outgoing::Text(long)).unwrap();
    socket.send(Outgoing::Text("short")).unwrap();
    assert_eq!(
        peer.next_raw_compressed().await,
        (true, Message::Text(long.into()))
    );
    assert_eq!(
        peer.next_raw_compressed().await,
        (false, Message::Text("short".into()))
    );
    let counters = &group.settings().counters;
    assert_eq!(counters.compressed_sent.load(Ordering::SeqCst), 1);
    assert_eq!(counters.compressed_received.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_broadcast_is_compressed_for_those_who_agreed_and_plain_for_the_others() {
    let (_owner, group) = plain_group();
    let (_compressed, mut deflating) = connect_compressed(&group).await;
    let (_plain, mut plain) = connect(&group, &[]).await;
    let news = "the same news for everyone, the same news for everyone, the same news";
    assert_eq!(group.broadcast(None, Outgoing::Text(news), None), 2);
    assert_eq!(
        deflating.next_raw_compressed().await,
        (true, Message::Text(news.into()))
    );
    assert_eq!(plain.next().await, Some(Message::Text(news.into())));
    let counters = &group.settings().counters;
    assert_eq!(
        counters.compressed_sent.load(Ordering::SeqCst),
        1,
        "the plain copy is not counted"
    );
}

#[tokio::test]
async fn a_decompression_bomb_closes_with_1009_before_it_is_inflated() {
    let owner = FakeOwner::new();
    let limits = SocketLimits {
        max_message_bytes: 64 << 10,
        ..SocketLimits::default()
    };
    let group = group_of(&owner, settings(limits, CloseReply::Immediate));
    let (_socket, mut peer) = connect_compressed(&group).await;
    let bomb = dormouse_ws::deflate::compress(&vec![0u8; 4 << 20]).unwrap();
    assert!(bomb.len() < 64 << 10, "the bomb itself is under the limit");
    peer.send(encode::compressed_frame(
        dormouse_ws::Opcode::Binary,
        &bomb,
        MASK,
    ))
    .await;
    let frame = peer.expect_close().await.expect("a code");
    assert_eq!(frame.code, close::MESSAGE_TOO_BIG);
    let events = owner.wait_for(1).await;
    assert!(events[0].starts_with("error message of "), "{events:?}");
}
