//! A socket's write path under pressure: a burst larger than the kernel takes, the bound on
//! queued output, and pings that wait behind a backlog.

use std::time::Duration;

use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{Outgoing, ReadyState};
use dormouse_ws::Message;

use crate::testing::{FakeOwner, Peer, connect, group_of, pair, plain_group, settings};
use crate::{CloseReply, Negotiated, SocketLimits};

/// The `index`-th message of a burst: its length and bytes tell it from every other.
fn burst_message(index: usize) -> Vec<u8> {
    let len = if index.is_multiple_of(3) {
        40
    } else {
        20_000 + index
    };
    vec![(index % 251) as u8; len]
}

/// Sends `count` burst messages in turns of ten (the first sends of a turn go straight out,
/// the rest through the driver).
fn send_burst(socket: &crate::SocketRecord, count: usize) {
    let group = socket.group();
    for index in 0..count {
        if index.is_multiple_of(10) {
            group.begin_turn();
        }
        socket
            .send(Outgoing::Binary(&burst_message(index)))
            .unwrap();
    }
}

#[tokio::test]
async fn a_burst_larger_than_the_kernel_takes_arrives_whole_and_in_order() {
    let (_owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    // About 2 MB while the peer does not read: the kernel takes part, the socket queues the rest,
    // and writes stop part-way through frames.
    let count = 150;
    send_burst(&socket, count);
    for index in 0..count {
        match peer.next().await {
            Some(Message::Binary(data)) => {
                assert!(
                    data == burst_message(index),
                    "message {index} is not what was sent"
                )
            }
            other => panic!("message {index}: {other:?}"),
        }
    }
    assert_eq!(socket.ready_state(), ReadyState::Open);
}

#[tokio::test]
async fn output_may_pile_up_to_the_bound_and_no_further() {
    // Each frame below is 10 bytes (a 2-byte header and 8 bytes); before the connection is
    // attached, every frame waits in the socket's queue.
    let limits = SocketLimits {
        max_outbound_bytes: 10,
        ..SocketLimits::default()
    };
    for (frames, dropped) in [(2, false), (3, true)] {
        let owner = FakeOwner::new();
        let group = group_of(&owner, settings(limits.clone(), CloseReply::Immediate));
        let socket = group.new_socket();
        socket.accept_hibernatable(&[]).unwrap();
        socket.couple().unwrap();
        group.begin_turn();
        for _ in 0..frames {
            socket.send(Outgoing::Text("12345678")).unwrap();
        }
        let waiting = if dropped { 0 } else { 10 * frames };
        assert_eq!(socket.waiting_bytes(), waiting, "{frames} frames");
        let (client, server) = pair().await;
        socket.attach(server, bytes::Bytes::new(), Negotiated::default());
        let mut peer = Peer::new(client);
        if dropped {
            assert_eq!(
                owner.wait_for(1).await,
                [
                    "close 1008 \"the client is not reading: over 10 bytes were waiting to be sent\" clean=false"
                ]
            );
            assert_eq!(peer.next().await, None);
        } else {
            for _ in 0..frames {
                assert_eq!(peer.next().await, Some(Message::Text("12345678".into())));
            }
            assert_eq!(socket.ready_state(), ReadyState::Open);
        }
    }
}

/// Messages in the backlog: about 2.7 MB, more than loopback's kernel buffers take and less
/// than the socket's default bound on queued output.
const BACKLOG: usize = 200;

/// A socket with a backlog its peer has not read, pinged at `start + 31 s`.
async fn pinged_behind_a_backlog() -> (std::sync::Arc<crate::SocketRecord>, Peer, u64) {
    let (_owner, group) = plain_group();
    let (socket, peer) = connect(&group, &[]).await;
    let start = crate::clock_ms();
    send_burst(&socket, BACKLOG);
    // Let the driver write what the kernel takes before the ping is queued behind the rest.
    tokio::time::sleep(Duration::from_millis(20)).await;
    group.check_liveness(start + 31_000, INTERVAL, TIMEOUT);
    (socket, peer, start)
}

const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_peer_taking_in_a_backlog_keeps_its_connection_while_its_ping_waits() {
    let (socket, mut peer, start) = pinged_behind_a_backlog().await;
    let mut read = 0;
    let mut next_message = async || {
        let message = peer.next().await;
        assert_eq!(
            message,
            Some(Message::Binary(burst_message(read))),
            "message {read}"
        );
        read += 1;
    };
    for _ in 0..20 {
        next_message().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    socket
        .group()
        .check_liveness(start + 42_000, INTERVAL, TIMEOUT);
    assert_eq!(
        socket.ready_state(),
        ReadyState::Open,
        "the peer is reading"
    );
    // Nothing queued was lost to the sweeps, and the ping comes after the backlog.
    for _ in 20..BACKLOG {
        next_message().await;
    }
    assert_eq!(peer.next().await, Some(Message::Ping(b"dormouse".to_vec())));
}

#[tokio::test]
async fn a_peer_that_stopped_reading_runs_out_of_time_behind_its_backlog() {
    let (socket, _peer, start) = pinged_behind_a_backlog().await;
    socket
        .group()
        .check_liveness(start + 40_000, INTERVAL, TIMEOUT);
    assert_eq!(
        socket.ready_state(),
        ReadyState::Open,
        "within its time to answer"
    );
    socket
        .group()
        .check_liveness(start + 42_000, INTERVAL, TIMEOUT);
    assert_eq!(socket.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn a_socket_not_connected_yet_is_not_pinged() {
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    socket.accept_hibernatable(&[]).unwrap();
    socket.couple().unwrap();
    group.check_liveness(crate::clock_ms() + 31_000, INTERVAL, TIMEOUT);
    let (client, server) = pair().await;
    socket.attach(server, bytes::Bytes::new(), Negotiated::default());
    let mut peer = Peer::new(client);
    group.begin_turn();
    socket.send(Outgoing::Text("first")).unwrap();
    assert_eq!(peer.next().await, Some(Message::Text("first".into())));
}

#[tokio::test]
async fn a_peer_that_resets_while_output_waits_ends_the_socket() {
    let (owner, group) = plain_group();
    let (socket, peer) = connect(&group, &[]).await;
    send_burst(&socket, BACKLOG);
    // Closing with unread data makes the peer's kernel answer with a reset: the next write fails.
    peer.drop_connection();
    assert_eq!(
        owner.wait_for(1).await,
        ["close 1006 \"WebSocket disconnected without sending Close frame.\" clean=false"]
    );
    assert_eq!(socket.ready_state(), ReadyState::Closed);
}
