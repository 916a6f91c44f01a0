//! A socket's liveness, its output gate, rebinding, its negotiated terms and standard sockets,
//! against a fake owner over real loopback connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dormouse_sdk::Outgoing;
use dormouse_sdk::host::SocketHost;
use dormouse_ws::{Message, encode};

use crate::testing::{
    FakeOwner, MASK, PATIENCE, Peer, connect, group_of, pair, plain_group, settings,
};
use crate::{CloseReply, ConnectionLease, HolderError, Negotiated, SocketLimits};

#[tokio::test]
async fn a_silent_peer_is_pinged_and_then_dropped() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    let (interval, timeout) = (Duration::from_secs(30), Duration::from_secs(10));
    let start = crate::clock_ms();
    group.check_liveness(start + 29_000, interval, timeout);
    group.check_liveness(start + 31_000, interval, timeout);
    assert_eq!(peer.next().await, Some(Message::Ping(b"dormouse".to_vec())));
    // The peer's TCP stack acknowledged the ping, but the peer never answers.
    group.check_liveness(start + 40_000, interval, timeout);
    // Checked on the socket itself: an event would only arrive later, through the driver.
    assert_eq!(
        socket.ready_state(),
        dormouse_sdk::ReadyState::Open,
        "within its time to answer"
    );
    group.check_liveness(start + 41_001, interval, timeout);
    assert_eq!(
        owner.wait_for(1).await,
        ["close 1006 \"WebSocket peer stopped answering pings.\" clean=false"]
    );
    assert_eq!(peer.next().await, None);
    let counters = &group.settings().counters;
    assert_eq!(counters.dropped_unresponsive.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn traffic_from_the_peer_answers_for_its_liveness() {
    let (owner, group) = plain_group();
    let (_socket, mut peer) = connect(&group, &[]).await;
    let (interval, timeout) = (Duration::from_secs(30), Duration::from_secs(10));
    let start = crate::clock_ms();
    group.check_liveness(start + 31_000, interval, timeout);
    assert_eq!(peer.next().await, Some(Message::Ping(b"dormouse".to_vec())));
    peer.text("still here").await;
    owner.wait_for(1).await;
    // Heard from since the ping: it is not outstanding any more, whatever the clock says.
    group.check_liveness(start + 45_000, interval, timeout);
    assert_eq!(owner.describe(), ["text still here"]);
}

#[tokio::test]
async fn a_close_handshake_past_its_deadline_drops_the_connection() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    socket.close(Some(4000), Some("leaving")).unwrap();
    assert_eq!(peer.expect_close().await.map(|f| f.code), Some(4000));
    let start = crate::clock_ms();
    let (interval, timeout) = (Duration::from_secs(30), Duration::from_secs(10));
    group.check_liveness(start + 9_000, interval, timeout);
    assert_eq!(
        socket.ready_state(),
        dormouse_sdk::ReadyState::Closing,
        "the handshake has time left"
    );
    group.check_liveness(start + 10_001, interval, timeout);
    assert_eq!(
        owner.wait_for(1).await,
        ["close 1006 \"WebSocket close handshake was not completed in time.\" clean=false"]
    );
    let counters = &group.settings().counters;
    assert_eq!(counters.dropped_close_timeout.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn output_waits_behind_the_gate_and_held_output_of_lost_writes_never_leaves() {
    let (_owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    let gate = group.gate.clone();
    // Turn 1 writes: its output waits for the owner.
    let turn = gate.begin_turn();
    gate.publish(turn);
    socket.send(Outgoing::Text("durable")).unwrap();
    assert_eq!(
        socket.waiting_bytes(),
        9,
        "the held frame: 2 header bytes and 7"
    );
    gate.publish(turn + 1);
    gate.release();
    assert_eq!(peer.next().await, Some(Message::Text("durable".into())));
    // Turn 2's writes are lost: its output is dropped.
    let turn = gate.begin_turn();
    gate.publish(turn);
    socket.send(Outgoing::Text("lost")).unwrap();
    gate.discard();
    gate.publish(turn + 1);
    gate.release();
    socket.send(Outgoing::Text("after the reset")).unwrap();
    assert_eq!(
        peer.next().await,
        Some(Message::Text("after the reset".into()))
    );
}

#[tokio::test]
async fn frames_of_later_turns_leave_when_their_own_turn_is_durable() {
    let (_owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    let (other, mut other_peer) = connect(&group, &[]).await;
    let gate = group.gate.clone();
    // Turns 1 and 2 write while nothing is durable; both sockets hold frames of each.
    let first = gate.begin_turn();
    gate.publish(first);
    socket.send(Outgoing::Text("turn 1")).unwrap();
    let second = gate.begin_turn();
    gate.publish(first);
    other.send(Outgoing::Text("turn 2, other")).unwrap();
    socket.send(Outgoing::Text("turn 2")).unwrap();
    // Nothing is durable yet: the pong answering this ping is the first thing out.
    peer.send(encode::ping_frame(b"barrier", MASK)).await;
    assert_eq!(peer.next().await, Some(Message::Pong(b"barrier".to_vec())));
    // Turn 1 is durable: its frame leaves, turn 2's stay.
    gate.publish(second);
    gate.release();
    assert_eq!(peer.next().await, Some(Message::Text("turn 1".into())));
    // Turn 2 is durable: the sockets still holding frames are visited again.
    gate.publish(second + 1);
    gate.release();
    assert_eq!(peer.next().await, Some(Message::Text("turn 2".into())));
    assert_eq!(
        other_peer.next().await,
        Some(Message::Text("turn 2, other".into()))
    );
}

#[tokio::test]
async fn rebinding_moves_a_live_socket_to_another_owner() {
    let (first, second) = (FakeOwner::new(), FakeOwner::new());
    let settings = settings(SocketLimits::default(), CloseReply::Immediate);
    let (from, to) = (
        group_of(&first, settings.clone()),
        group_of(&second, settings),
    );
    let (socket, mut peer) = connect(&from, &["room"]).await;
    socket.set_attachment(b"session".to_vec()).unwrap();
    peer.text("before").await;
    assert_eq!(first.wait_for(1).await, ["text before"]);

    socket.rebind(&to).unwrap();
    assert!(from.sockets().is_empty());
    assert_eq!(to.sockets().hibernatable(Some("room")).count(), 1);
    peer.text("after").await;
    assert_eq!(second.wait_for(1).await, ["text after"]);
    assert_eq!(
        first.describe(),
        ["text before"],
        "nothing more for the old owner"
    );
    assert_eq!(socket.tags().unwrap(), ["room"]);
    assert_eq!(socket.attachment().as_deref(), Some(&b"session"[..]));
    assert!(socket.belongs_to(&to));
    // The connection stayed open both ways.
    socket.send(Outgoing::Text("from the new owner")).unwrap();
    assert_eq!(
        peer.next().await,
        Some(Message::Text("from the new owner".into()))
    );
}

#[tokio::test]
async fn only_a_hibernatable_socket_that_has_not_ended_can_be_rebound() {
    let (first, second) = (FakeOwner::new(), FakeOwner::new());
    let settings = settings(SocketLimits::default(), CloseReply::Immediate);
    let (from, to) = (
        group_of(&first, settings.clone()),
        group_of(&second, settings),
    );
    let standard = from.new_socket();
    standard.clone().accept().unwrap();
    assert_eq!(standard.rebind(&to), Err(HolderError::NotHibernatable));

    let (socket, mut peer) = connect(&from, &[]).await;
    peer.send(encode::close_frame(None, MASK)).await;
    first.wait_for(1).await;
    assert_eq!(socket.rebind(&to), Err(HolderError::Ended));
}

#[tokio::test]
async fn a_standard_socket_streams_its_events_and_notes_activity() {
    use futures_util::StreamExt;
    let (owner, group) = plain_group();
    let socket = group.new_socket();
    socket.clone().accept().unwrap();
    let mut events = socket.events().unwrap();
    socket.couple().unwrap();
    let (client, server) = pair().await;
    socket.attach(server, Bytes::new(), Negotiated::default());
    let mut peer = Peer::new(client);
    peer.text("hello").await;
    let first = tokio::time::timeout(PATIENCE, events.next()).await.unwrap();
    assert!(matches!(
        first,
        Some(Ok(dormouse_sdk::WebsocketEvent::Message(_)))
    ));
    assert!(
        owner.describe().is_empty(),
        "a standard socket's events are its own"
    );
    assert!(owner.activity.load(Ordering::SeqCst) >= 1);
    assert_eq!(group.sockets().standard_count(), 1);

    // The stream ends after the close event, and the socket leaves its owner's set.
    peer.send(encode::close_frame(None, MASK)).await;
    let close = tokio::time::timeout(PATIENCE, events.next()).await.unwrap();
    assert!(matches!(
        close,
        Some(Ok(dormouse_sdk::WebsocketEvent::Close(_)))
    ));
    let end = tokio::time::timeout(PATIENCE, events.next()).await.unwrap();
    assert!(end.is_none(), "no event after the close");
    assert_eq!(peer.next().await, Some(Message::Close(None)));
    assert_eq!(peer.next().await, None);
    assert_eq!(group.sockets().standard_count(), 0);
}

#[tokio::test]
async fn a_standard_socket_whose_stream_was_dropped_keeps_reading_and_closes() {
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    socket.clone().accept().unwrap();
    drop(socket.events().unwrap());
    socket.couple().unwrap();
    let (client, server) = pair().await;
    socket.attach(server, Bytes::new(), Negotiated::default());
    let mut peer = Peer::new(client);
    // More than the stream's buffer: nobody consumes them, and they must not stall the socket.
    for n in 0..200 {
        peer.text(&n.to_string()).await;
    }
    peer.send(encode::close_frame(None, MASK)).await;
    assert_eq!(peer.next().await, Some(Message::Close(None)));
    assert_eq!(peer.next().await, None);
}

#[test]
fn turns_are_numbered_and_output_waits_until_the_limit_passes_its_turn() {
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    let gate = &group.gate;
    let first = gate.begin_turn();
    assert_eq!((first, gate.tag()), (1, 1));
    assert_eq!(gate.begin_turn(), 2, "each turn gets the next number");
    gate.publish(2);
    assert!(gate.is_closed(), "the running turn's output waits");
    assert!(gate.hold(&socket, 2), "and a socket sending now holds it");
    gate.publish(3);
    assert!(!gate.is_closed());
    assert!(!gate.hold(&socket, 2), "output below the limit is not held");
}

#[test]
fn idle_record_is_small() {
    // A guard against growth by accident: the record is most of an idle socket's memory in
    // user space. 296 since the subprotocol, the connection's lease and the compression flag.
    let size = std::mem::size_of::<crate::SocketRecord>();
    assert!(size <= 296, "SocketRecord is {size} bytes");
}

#[tokio::test]
async fn the_negotiated_subprotocol_stays_and_the_lease_ends_before_the_peer_sees_the_end() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let (_owner, group) = plain_group();
    let socket = group.new_socket();
    socket.accept_hibernatable(&[]).unwrap();
    socket.couple().unwrap();
    let (client, server) = pair().await;
    let released = Arc::new(AtomicBool::new(false));
    socket.attach(
        server,
        Bytes::new(),
        Negotiated {
            protocol: Some("mqtt".into()),
            compression: false,
            lease: Some(ConnectionLease::new(Flag(released.clone()))),
            relayed: false,
        },
    );
    let mut peer = Peer::new(client);
    assert_eq!(socket.protocol().as_deref(), Some("mqtt"));
    peer.send(encode::close_frame(None, MASK)).await;
    assert_eq!(peer.expect_close().await, None);
    assert_eq!(peer.next().await, None, "the server closed the connection");
    assert!(
        released.load(Ordering::SeqCst),
        "released before the stream closed"
    );
    assert_eq!(socket.protocol().as_deref(), Some("mqtt"));
}

#[tokio::test]
async fn terminating_closes_without_an_event_and_an_eviction_spares_hibernatable_sockets() {
    use futures_util::StreamExt;
    let (owner, group) = plain_group();
    let (_hibernatable, mut kept) = connect(&group, &[]).await;
    let standard = group.new_socket();
    standard.clone().accept().unwrap();
    let mut events = standard.events().unwrap();
    standard.couple().unwrap();
    let (client, server) = pair().await;
    standard.attach(server, Bytes::new(), Negotiated::default());
    let mut evicted = Peer::new(client);

    group.terminate_standard(1001, "evicted");
    let frame = evicted.expect_close().await.expect("a code");
    assert_eq!((frame.code, frame.reason.as_str()), (1001, "evicted"));
    let end = tokio::time::timeout(PATIENCE, events.next()).await.unwrap();
    assert!(end.is_none(), "the stream ends without an event");
    assert_eq!(group.sockets().hibernatable_count(), 1);
    assert_eq!(group.sockets().standard_count(), 0);

    group.terminate_all(1011, "reset");
    let frame = kept.expect_close().await.expect("a code");
    assert_eq!((frame.code, frame.reason.as_str()), (1011, "reset"));
    assert!(group.sockets().is_empty());
    kept.send(encode::close_frame(None, MASK)).await;
    assert_eq!(kept.next().await, None);
    assert!(
        owner.describe().is_empty(),
        "a terminated socket reports nothing"
    );
}

#[tokio::test]
async fn a_reading_client_is_not_dropped_for_a_burst_under_the_bound() {
    let (owner, group) = plain_group();
    let (socket, mut peer) = connect(&group, &[]).await;
    let chunk = vec![9u8; 16 << 10];
    // 3.2 MB at once: more than the kernel takes, less than the 4 MiB bound.
    for _ in 0..200 {
        socket.send(Outgoing::Binary(&chunk)).unwrap();
    }
    for _ in 0..200 {
        assert_eq!(peer.next().await, Some(Message::Binary(chunk.clone())));
    }
    assert_eq!(socket.ready_state(), dormouse_sdk::ReadyState::Open);
    assert!(owner.describe().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinds_in_opposite_directions_at_once_do_not_deadlock() {
    let (first, second) = (FakeOwner::new(), FakeOwner::new());
    let settings = settings(SocketLimits::default(), CloseReply::Immediate);
    let (a, b) = (
        group_of(&first, settings.clone()),
        group_of(&second, settings),
    );
    let (one, _one_peer) = connect(&a, &[]).await;
    let (two, _two_peer) = connect(&b, &[]).await;
    let back_and_forth = |socket: Arc<crate::SocketRecord>, there: Arc<crate::SocketGroup>| {
        let here = socket.group();
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                socket.rebind(&there).unwrap();
                socket.rebind(&here).unwrap();
            }
        })
    };
    let threads = [
        back_and_forth(one, b.clone()),
        back_and_forth(two, a.clone()),
    ];
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        (
            a.sockets().hibernatable_count(),
            b.sockets().hibernatable_count()
        ),
        (1, 1)
    );
}
