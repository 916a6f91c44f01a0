//! A connection's input at its edges: bytes left over from the handshake, frames split across
//! reads or larger than the shared buffer, a peer that vanishes, and what comes after a close.

use bytes::BytesMut;
use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{Outgoing, ReadyState};
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::encode;

use crate::testing::{FakeOwner, MASK, connect, connect_after, group_of, plain_group, settings};
use crate::{CloseReply, SocketLimits};

/// The text frames of `texts`, masked as a client sends them, back to back.
fn texts(texts: &[&str]) -> BytesMut {
    let mut bytes = BytesMut::new();
    for text in texts {
        bytes.extend_from_slice(&encode::text_frame(text, MASK));
    }
    bytes
}

#[tokio::test]
async fn bytes_read_past_the_handshake_are_decoded_first_and_a_split_frame_completes() {
    let (owner, group) = plain_group();
    let mut bytes = texts(&["one", "two", "three, split"]);
    let rest = bytes.split_off(bytes.len() - 4);
    let (_socket, mut peer) = connect_after(&group, &[], bytes.freeze(), |_| {}).await;
    assert_eq!(owner.wait_for(2).await, ["text one", "text two"]);
    peer.send(rest.freeze()).await;
    peer.text("four").await;
    assert_eq!(
        owner.wait_for(4).await,
        ["text one", "text two", "text three, split", "text four"]
    );
}

#[tokio::test]
async fn a_frame_arriving_in_pieces_is_put_together() {
    let (owner, group) = plain_group();
    let frame = encode::binary_frame(&[9; 1000], MASK);
    let (head, middle, tail) = (frame.slice(..3), frame.slice(3..500), frame.slice(500..));
    let (_socket, mut peer) = connect_after(&group, &[], head, |_| {}).await;
    peer.send(middle).await;
    // A pause, so that the socket reads the middle alone and finds nothing more for a while.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    peer.send(tail).await;
    peer.text("after").await;
    let events = owner.wait_for(2).await;
    assert_eq!(events[0], format!("binary {:?}", vec![9u8; 1000]));
    assert_eq!(events[1], "text after");
}

#[tokio::test]
async fn frames_larger_than_the_shared_read_buffer_arrive_whole() {
    let (owner, group) = plain_group();
    let (_socket, mut peer) = connect(&group, &[]).await;
    let big: Vec<String> = (0..3)
        .map(|i| char::from(b'a' + i).to_string().repeat(100_000))
        .collect();
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    peer.send(texts(&refs).freeze()).await;
    let events = owner.wait_for(3).await;
    for (event, text) in events.iter().zip(&big) {
        assert!(*event == format!("text {text}"), "a frame came apart");
    }
}

#[tokio::test]
async fn a_peer_that_vanishes_ends_the_socket_with_one_1006() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    peer.text("last words").await;
    peer.drop_connection();
    assert_eq!(
        owner.wait_for(2).await,
        [
            "text last words",
            "close 1006 \"WebSocket disconnected without sending Close frame.\" clean=false"
        ]
    );
    // Sending afterwards is no error and reaches nobody.
    socket.send(Outgoing::Text("anyone?")).unwrap();
    assert_eq!(socket.ready_state(), ReadyState::Closed);
    assert_eq!(owner.describe().len(), 2);
}

#[tokio::test]
async fn nothing_after_a_close_frame_is_read() {
    let (owner, group) = plain_group();
    let frame = CloseFrame {
        code: 4001,
        reason: "done".into(),
    };
    let mut bytes = texts(&["before"]);
    bytes.extend_from_slice(&encode::close_frame(Some(&frame), MASK));
    bytes.extend_from_slice(&texts(&["after"]));
    let (_socket, mut peer) = connect_after(&group, &[], bytes.freeze(), |_| {}).await;
    assert_eq!(peer.expect_close().await, Some(frame));
    assert_eq!(peer.next().await, None);
    assert_eq!(
        owner.describe(),
        ["text before", "close 4001 \"done\" clean=true"]
    );
}

#[tokio::test]
async fn an_owner_that_answers_late_still_answers_a_peer_that_stopped_writing() {
    let owner = FakeOwner::new();
    let group = group_of(
        &owner,
        settings(SocketLimits::default(), CloseReply::AfterHandler),
    );
    let frame = CloseFrame {
        code: 4002,
        reason: "my last frame".into(),
    };
    let leftover = encode::close_frame(Some(&frame), MASK);
    // The peer sends its close and shuts down its writing half: an end of file follows the
    // close frame, and must not end the connection before the owner's answer goes out.
    let (socket, mut peer) =
        connect_after(&group, &[], leftover, |peer| peer.shut_down_writing()).await;
    assert_eq!(
        owner.wait_for(1).await,
        ["close 4002 \"my last frame\" clean=true"]
    );
    tokio::task::yield_now().await;
    socket.answer_close(4002, "my last frame");
    assert_eq!(peer.expect_close().await, Some(frame));
}

#[tokio::test]
async fn after_the_runtime_closed_for_a_protocol_error_sends_are_dropped() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    peer.send(encode::text_frame("unmasked", None)).await;
    let frame = peer.expect_close().await.expect("a code");
    assert_eq!(frame.code, close::PROTOCOL_ERROR);
    owner.wait_for(1).await;
    // The connection waits for the peer's close; what the application sends meanwhile goes
    // nowhere, neither sent nor broadcast.
    group.begin_turn();
    socket.send(Outgoing::Text("too late")).unwrap();
    assert_eq!(group.broadcast(None, Outgoing::Text("to all"), None), 0);
    peer.send(encode::close_frame(Some(&frame), MASK)).await;
    assert_eq!(peer.next().await, None, "nothing follows the close frame");
}

#[tokio::test]
async fn frames_already_read_when_the_owner_fills_up_wait_in_order() {
    let owner = FakeOwner::new();
    owner.grant(1);
    let group = group_of(
        &owner,
        settings(SocketLimits::default(), CloseReply::Immediate),
    );
    let (_socket, _peer) =
        connect_after(&group, &[], texts(&["a", "b", "c"]).freeze(), |_| {}).await;
    assert_eq!(owner.wait_for(1).await, ["text a"]);
    owner.grant(usize::MAX);
    assert_eq!(owner.wait_for(3).await, ["text a", "text b", "text c"]);
    assert_eq!(owner.backlogs.load(std::sync::atomic::Ordering::SeqCst), 1);
}
