//! What the holder's tests share: a fake owner and a client on a real loopback connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use dormouse_sdk::WebSocketIncomingMessage;
use dormouse_sdk::host::SocketHost;
use dormouse_ws::close::CloseFrame;
use dormouse_ws::{Message, MessageDecoder, Role, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::{
    CloseReply, Drivers, FrameGate, Negotiated, SocketCounters, SocketEvent, SocketGroup,
    SocketLimits, SocketOwner, SocketRecord, SocketSettings,
};

pub(crate) const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

/// Long enough for loopback, short enough to fail fast when something is wrong.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// An owner that records what it is handed, with a bound on how many events it takes.
#[derive(Default)]
pub(crate) struct FakeOwner {
    pub(crate) events: Mutex<Vec<SocketEvent>>,
    pub(crate) arrived: Notify,
    /// Events it still has room for; `usize::MAX` by default.
    pub(crate) room: AtomicUsize,
    pub(crate) waiting: Mutex<Vec<Waker>>,
    pub(crate) backlogs: AtomicUsize,
    pub(crate) activity: AtomicUsize,
}

impl SocketOwner for FakeOwner {
    fn deliver(
        self: Arc<Self>,
        _socket: Arc<SocketRecord>,
        event: SocketEvent,
        waker: &Waker,
    ) -> Result<(), SocketEvent> {
        let taken = self
            .room
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |room| {
                room.checked_sub(1)
            });
        if taken.is_err() {
            self.waiting.lock().unwrap().push(waker.clone());
            return Err(event);
        }
        self.events.lock().unwrap().push(event);
        self.arrived.notify_waiters();
        Ok(())
    }

    fn backlog_delivered(&self) {
        self.backlogs.fetch_add(1, Ordering::SeqCst);
    }

    fn note_activity(&self) {
        self.activity.fetch_add(1, Ordering::SeqCst);
    }
}

impl FakeOwner {
    pub(crate) fn new() -> Arc<Self> {
        let owner = Arc::new(FakeOwner::default());
        owner.room.store(usize::MAX, Ordering::SeqCst);
        owner
    }

    /// Waits until `count` events arrived; returns them all.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<String> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.arrived.notified();
                if self.events.lock().unwrap().len() >= count {
                    return self.describe();
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {count} events, got {:?}", self.describe()))
    }

    pub(crate) fn describe(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().map(describe).collect()
    }

    pub(crate) fn grant(&self, room: usize) {
        self.room.store(room, Ordering::SeqCst);
        for waker in self.waiting.lock().unwrap().drain(..) {
            waker.wake();
        }
    }
}

pub(crate) fn describe(event: &SocketEvent) -> String {
    match event {
        SocketEvent::Message(WebSocketIncomingMessage::String(text)) => format!("text {text}"),
        SocketEvent::Message(WebSocketIncomingMessage::Binary(data)) => format!("binary {data:?}"),
        SocketEvent::Close {
            code,
            reason,
            was_clean,
        } => format!("close {code} {reason:?} clean={was_clean}"),
        SocketEvent::Error(error) => format!("error {error}"),
    }
}

pub(crate) fn settings(limits: SocketLimits, close_reply: CloseReply) -> Arc<SocketSettings> {
    Arc::new(SocketSettings {
        limits,
        close_timeout: Duration::from_secs(10),
        close_reply,
        counters: SocketCounters::default(),
        drivers: Arc::new(Drivers::new()),
    })
}

pub(crate) fn group_of(owner: &Arc<FakeOwner>, settings: Arc<SocketSettings>) -> Arc<SocketGroup> {
    let weak: std::sync::Weak<dyn SocketOwner> = Arc::downgrade(owner) as _;
    SocketGroup::new(weak, settings, Arc::new(FrameGate::default()))
}

/// A fake owner and its group, with the default limits and immediate close replies.
pub(crate) fn plain_group() -> (Arc<FakeOwner>, Arc<SocketGroup>) {
    let owner = FakeOwner::new();
    let group = group_of(
        &owner,
        settings(SocketLimits::default(), CloseReply::Immediate),
    );
    (owner, group)
}

/// A client connected to a socket of `group`, accepted as hibernatable with `tags`.
pub(crate) struct Peer {
    stream: TcpStream,
    decoder: MessageDecoder,
    buffer: Vec<u8>,
}

pub(crate) async fn connect(group: &Arc<SocketGroup>, tags: &[&str]) -> (Arc<SocketRecord>, Peer) {
    connect_after(group, tags, Bytes::new(), |_| {}).await
}

/// [`connect`], with `leftover` as the bytes read past the handshake, and `before` run on the
/// client before the socket is attached (to shut down its writing half, say).
pub(crate) async fn connect_after(
    group: &Arc<SocketGroup>,
    tags: &[&str],
    leftover: Bytes,
    before: impl FnOnce(&mut Peer),
) -> (Arc<SocketRecord>, Peer) {
    let socket = group.new_socket();
    socket.accept_hibernatable(tags).unwrap();
    socket.couple().unwrap();
    let (client, server) = pair().await;
    let mut peer = Peer::new(client);
    before(&mut peer);
    socket.attach(server, leftover, Negotiated::default());
    (socket, peer)
}

pub(crate) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

impl Peer {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Peer {
            stream,
            decoder: MessageDecoder::new(Role::Client, 64 << 20),
            buffer: Vec::new(),
        }
    }

    /// A client that agreed to permessage-deflate: it inflates what the server compressed.
    pub(crate) fn with_compression(mut self) -> Self {
        self.decoder = MessageDecoder::new(Role::Client, 64 << 20).with_compression();
        self
    }

    /// The next single-frame message and whether it came compressed (RSV1).
    pub(crate) async fn next_raw_compressed(&mut self) -> (bool, Message) {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let header =
                    dormouse_ws::frame::parse_header_with(&self.buffer, Role::Client, true)
                        .unwrap();
                if let Some(header) = header
                    && header
                        .frame_len()
                        .is_some_and(|len| self.buffer.len() >= len)
                {
                    let step = self.decoder.decode(&mut self.buffer).unwrap();
                    self.buffer.drain(..step.consumed);
                    let message = step.message.expect("a single-frame message");
                    return (header.compressed, message);
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the server closed the connection");
                self.buffer.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("the server sent nothing in time")
    }

    /// Ends the client's writing half (the server reads end of file); it still reads.
    pub(crate) fn shut_down_writing(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is the stream's own, open for as long as `self` lives.
        #[allow(unsafe_code)]
        let result = unsafe { libc::shutdown(self.stream.as_raw_fd(), libc::SHUT_WR) };
        assert_eq!(result, 0, "shutdown: {}", std::io::Error::last_os_error());
    }

    /// Drops the connection without a close frame.
    pub(crate) fn drop_connection(self) {
        drop(self.stream);
    }

    pub(crate) async fn send(&mut self, frame: Bytes) {
        self.stream.write_all(&frame).await.unwrap();
    }

    pub(crate) async fn text(&mut self, text: &str) {
        self.send(encode::text_frame(text, MASK)).await;
    }

    /// The next message from the server; `None` once it closed the connection.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if !self.buffer.is_empty() {
                    let step = self.decoder.decode(&mut self.buffer).unwrap();
                    self.buffer.drain(..step.consumed);
                    if let Some(message) = step.message {
                        return Some(message);
                    }
                    if step.consumed > 0 {
                        continue;
                    }
                }
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("the server sent nothing in time")
    }

    pub(crate) async fn expect_close(&mut self) -> Option<CloseFrame> {
        match self.next().await {
            Some(Message::Close(frame)) => frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
