use std::sync::{Arc, Mutex};

use dormouse_ws::encode;
use tokio::io::DuplexStream;

use super::*;

fn fed(reader: Role, chunks: &[&[u8]]) -> (Frames, Vec<u8>, Vec<Relay>) {
    let mut frames = Frames::new(reader);
    let (mut forward, mut messages) = (Vec::new(), Vec::new());
    for chunk in chunks {
        frames.feed(chunk, &mut forward, &mut messages);
    }
    (frames, forward, messages)
}

fn state(attachment: &[u8]) -> Relay {
    Relay::State {
        tags: vec!["room".into()],
        attachment: Some(attachment.to_vec()),
    }
}

#[test]
fn relay_frames_are_taken_out_of_the_owners_stream_in_any_chunks() {
    let text = encode::frame(true, Opcode::Text, b"hello", None);
    let big = encode::frame(true, Opcode::Binary, &[7; 70_000], None);
    let mut stream = state(b"one").frame();
    stream.extend_from_slice(&text);
    stream.extend_from_slice(
        &Relay::State {
            tags: vec![],
            attachment: Some(vec![1; 300]),
        }
        .frame(),
    );
    stream.extend_from_slice(&big);
    stream.extend_from_slice(&Relay::Moved.frame());
    let mut expected = text.to_vec();
    expected.extend_from_slice(&big);
    for split in [1, 2, 3, 7, 300, 4096, stream.len()] {
        let chunks: Vec<&[u8]> = stream.chunks(split).collect();
        let (frames, forward, messages) = fed(Role::Client, &chunks);
        assert_eq!(forward, expected, "chunks of {split}");
        assert_eq!(messages.len(), 3, "chunks of {split}");
        assert_eq!(messages[0], state(b"one"));
        assert_eq!(messages[2], Relay::Moved);
        assert!(frames.at_boundary());
    }
}

#[test]
fn a_frame_cut_short_is_no_boundary_and_a_close_is_seen() {
    let frame = encode::frame(true, Opcode::Text, b"hello", None);
    assert!(!fed(Role::Client, &[&frame[..4]]).0.at_boundary());
    assert!(!fed(Role::Client, &[&frame[..1]]).0.at_boundary());
    let close = encode::close_frame(None, None);
    assert!(fed(Role::Client, &[&close]).0.closed);
}

#[test]
fn a_short_client_frame_is_kept_while_it_passes_and_a_long_one_is_not() {
    let frame = encode::frame(true, Opcode::Text, b"hello", Some([1, 2, 3, 4]));
    let (frames, forward, _) = fed(Role::Server, &[&frame[..8]]);
    assert_eq!(forward, frame[..8]);
    assert_eq!(frames.kept(), &frame[..8]);
    assert!(frames.resumable());
    let (frames, _, _) = fed(Role::Server, &[&frame]);
    assert!(frames.kept().is_empty() && frames.resumable());
    let long = encode::frame(
        true,
        Opcode::Binary,
        &[0; MAX_KEPT_FRAME + 1],
        Some([1, 2, 3, 4]),
    );
    let (frames, _, _) = fed(Role::Server, &[&long[..MAX_KEPT_FRAME + 10]]);
    assert!(!frames.resumable());
}

/// An owner's side for a test: what the splice is given, and the test's end of it.
fn owner_pair() -> (Box<dyn Duplex>, DuplexStream) {
    let (spliced, test_end) = tokio::io::duplex(1 << 20);
    (Box::new(spliced), test_end)
}

async fn read_exactly(stream: &mut DuplexStream, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut bytes))
        .await
        .expect("bytes in time")
        .unwrap();
    bytes
}

#[tokio::test]
async fn the_socket_moves_to_the_next_owner_with_its_state_and_the_client_stays() {
    let (client, mut client_end) = tokio::io::duplex(1 << 20);
    let (first, mut first_end) = owner_pair();
    let (second, mut second_end) = owner_pair();
    let adopted = Arc::new(Mutex::new(None));
    let next = Arc::new(Mutex::new(Some(second)));
    let readopt: Readopt = {
        let adopted = adopted.clone();
        Arc::new(move |socket: AdoptedSocket| {
            *adopted.lock().unwrap() = Some(socket);
            let next = next.lock().unwrap().take();
            Box::pin(async move { next.ok_or_else(|| std::io::Error::other("used twice")) })
        })
    };
    let readoption = Readoption {
        readopt,
        protocol: Some("chat".into()),
    };
    let spliced = tokio::spawn(splice(client, first, Some(readoption)));
    first_end.write_all(&state(b"alice").frame()).await.unwrap();
    let hello = encode::frame(true, Opcode::Text, b"hello", None);
    first_end.write_all(&hello).await.unwrap();
    assert_eq!(read_exactly(&mut client_end, hello.len()).await, hello);
    // The first owner says its object moved: the client hears nothing of it. (What the client
    // sends before the move is seen would go to the first owner: the test waits for the move.)
    first_end.write_all(&Relay::Moved.frame()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while adopted.lock().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the socket is offered to the next owner");
    let message = encode::frame(true, Opcode::Text, b"still here", Some([9, 9, 9, 9]));
    client_end.write_all(&message).await.unwrap();
    assert_eq!(read_exactly(&mut second_end, message.len()).await, message);
    let socket = adopted.lock().unwrap().clone().expect("adopted");
    assert_eq!(socket.tags, ["room"]);
    assert_eq!(socket.attachment.as_deref(), Some(&b"alice"[..]));
    assert_eq!(socket.protocol.as_deref(), Some("chat"));
    let answer = encode::frame(true, Opcode::Text, b"welcome back", None);
    second_end.write_all(&answer).await.unwrap();
    assert_eq!(read_exactly(&mut client_end, answer.len()).await, answer);
    drop(client_end);
    spliced.await.unwrap();
}

#[tokio::test]
async fn without_a_next_owner_the_client_hears_1012() {
    let (client, mut client_end) = tokio::io::duplex(1 << 20);
    let (first, mut first_end) = owner_pair();
    let spliced = tokio::spawn(splice(client, first, None));
    let text = encode::frame(true, Opcode::Text, b"hi", None);
    first_end.write_all(&text).await.unwrap();
    drop(first_end);
    let mut received = Vec::new();
    client_end.read_to_end(&mut received).await.unwrap();
    let mut expected = text.to_vec();
    expected.extend_from_slice(&owner_gone_frame());
    assert_eq!(received, expected);
    drop(client_end);
    spliced.await.unwrap();
}
