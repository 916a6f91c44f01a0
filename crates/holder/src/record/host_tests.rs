//! What `WebSocket` methods do on a record: Cloudflare's checks and errors, tags, attachments,
//! abandoned sockets and the compression threshold, against a fake owner.

use dormouse_sdk::WebSocket;

use crate::testing::{FakeOwner, connect, group_of, plain_group, settings};
use crate::{CloseReply, Negotiated};

use super::*;

#[test]
fn tags_follow_cloudflare_rules() {
    let limits = SocketLimits::default();
    let tags = validate_tags(&["a", "b", "a"], &limits).unwrap();
    assert_eq!(&*tags, &["a".into(), "b".into()] as &[Box<str>]);

    let ten: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let mut refs: Vec<&str> = ten.iter().map(String::as_str).collect();
    assert_eq!(validate_tags(&refs, &limits).unwrap().len(), 10);
    // Once ten distinct tags are seen, even a duplicate fails.
    refs.push("0");
    let error = validate_tags(&refs, &limits).unwrap_err();
    assert_eq!(
        error.text(),
        "a Hibernatable WebSocket cannot have more than 10 tags"
    );

    let long = "x".repeat(257);
    let error = validate_tags(&[&long], &limits).unwrap_err();
    assert_eq!(
        error.text(),
        format!("\"{long}\" is longer than the max tag length (256 characters).")
    );
    assert!(validate_tags(&[&"x".repeat(256)], &limits).is_ok());
}

#[tokio::test]
async fn a_close_reason_may_take_123_bytes_and_not_one_more() {
    let (_owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    let error = socket
        .close(Some(4000), Some(&"x".repeat(124)))
        .unwrap_err();
    assert_eq!(
        error.text(),
        "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded."
    );
    assert_eq!(
        socket.ready_state(),
        ReadyState::Open,
        "a refused close does nothing"
    );
    socket.close(Some(4000), Some(&"x".repeat(123))).unwrap();
    let frame = peer.expect_close().await.unwrap();
    assert_eq!((frame.code, frame.reason.len()), (4000, 123));
}

#[tokio::test]
async fn an_attachment_may_take_the_limit_and_not_one_byte_more() {
    let limits = SocketLimits {
        max_attachment_bytes: 16,
        ..SocketLimits::default()
    };
    let owner = FakeOwner::new();
    let group = group_of(&owner, settings(limits, CloseReply::Immediate));
    let socket = group.new_socket();
    socket.accept_hibernatable(&[]).unwrap();
    socket.set_attachment(vec![7; 16]).unwrap();
    let error = socket.set_attachment(vec![8; 17]).unwrap_err();
    assert_eq!(
        error.text(),
        "A WebSocket 'attachment' cannot be larger than 16 bytes.'attachment' was 17 bytes."
    );
    assert_eq!(
        socket.attachment().as_deref(),
        Some(&[7u8; 16][..]),
        "kept the last good one"
    );
}

#[tokio::test]
async fn tags_are_added_once_up_to_the_limit_and_removed() {
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    socket.accept_hibernatable(&["a"]).unwrap();
    socket.add_tag("b").unwrap();
    socket.add_tag("a").unwrap();
    assert_eq!(
        socket.tags().unwrap(),
        ["a", "b"],
        "a tag it has is not added again"
    );
    assert!(socket.has_tag("b") && !socket.has_tag("c"));
    for tag in 2..10 {
        socket.add_tag(&tag.to_string()).unwrap();
    }
    assert_eq!(socket.tags().unwrap().len(), 10);
    socket.add_tag("a").unwrap();
    let error = socket.add_tag("one too many").unwrap_err();
    assert_eq!(
        error.text(),
        "a Hibernatable WebSocket cannot have more than 10 tags"
    );
    assert!(socket.remove_tag("b").unwrap(), "it had the tag");
    assert!(!socket.remove_tag("b").unwrap(), "not any more");
    assert!(!socket.has_tag("b"));
    assert_eq!(socket.tags().unwrap().len(), 9);
    assert_eq!(group.sockets().hibernatable(Some("b")).count(), 0);
    assert_eq!(group.sockets().hibernatable(Some("a")).count(), 1);
}

#[tokio::test]
async fn only_hibernatable_sockets_have_tags() {
    let (_owner, group) = plain_group();
    let standard = group.new_socket();
    standard.clone().accept().unwrap();
    for error in [
        standard.add_tag("a").unwrap_err(),
        standard.remove_tag("a").map(|_| ()).unwrap_err(),
        standard.tags().map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(error.text(), "only hibernatable websockets can have tags.");
    }
    assert!(!standard.has_tag("a"));
}

#[tokio::test]
async fn an_abandoned_hibernatable_socket_ends_with_one_close_event() {
    let (owner, group) = plain_group();
    let standard = group.new_socket();
    standard.clone().accept().unwrap();
    let hibernatable = group.new_socket();
    hibernatable.accept_hibernatable(&[]).unwrap();
    hibernatable.couple().unwrap();
    standard.clone().abandon();
    hibernatable.clone().abandon();
    hibernatable.clone().abandon();
    // Each abandon spawns its delivery; on this single-threaded runtime they all ran, in order,
    // before the first one wakes the wait.
    assert_eq!(
        owner.wait_for(1).await,
        ["close 1006 \"WebSocket disconnected without sending Close frame.\" clean=false"]
    );
    tokio::task::yield_now().await;
    assert_eq!(
        owner.describe().len(),
        1,
        "the standard socket reports to its own stream"
    );
    assert_eq!(hibernatable.ready_state(), ReadyState::Closed);
    // A socket already connected is not abandoned.
    let (attached, _peer) = connect(&group, &[]).await;
    attached.clone().abandon();
    assert_eq!(attached.ready_state(), ReadyState::Open);
}

#[tokio::test]
async fn handles_lead_back_to_their_records() {
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    let handle = WebSocket::from_host(socket.clone());
    assert!(std::ptr::eq(
        SocketRecord::from_handle(&handle).unwrap(),
        &*socket
    ));
    assert!(Arc::ptr_eq(
        &SocketRecord::arc_from_handle(&handle).unwrap(),
        &socket
    ));
    assert!(socket.belongs_to(&group));
    let (_other_owner, other) = plain_group();
    assert!(!socket.belongs_to(&other));
}

#[tokio::test]
async fn a_message_of_64_bytes_is_compressed_and_one_of_63_is_not() {
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    socket.accept_hibernatable(&[]).unwrap();
    socket.couple().unwrap();
    let (client, server) = crate::testing::pair().await;
    let negotiated = Negotiated {
        compression: true,
        ..Negotiated::default()
    };
    socket.attach(server, Bytes::new(), negotiated);
    let mut peer = crate::testing::Peer::new(client).with_compression();
    assert_eq!(deflate::MIN_COMPRESSED_BYTES, 64);
    for len in [64, 63] {
        group.begin_turn();
        socket.send(Outgoing::Text(&"a".repeat(len))).unwrap();
        let (compressed, message) = peer.next_raw_compressed().await;
        assert_eq!(message, dormouse_ws::Message::Text("a".repeat(len)));
        assert_eq!(compressed, len == 64, "a message of {len} bytes");
    }
}
