//! The socket holder: every WebSocket an object accepts belongs to the runtime.
//!
//! A [`SocketRecord`] is the runtime's side of one WebSocket: its state, outbound queue,
//! attachment and tags. The record is shared by the object's [`SocketSet`], by the socket's I/O
//! task ([`io`]) and by any handle the application holds, so it outlives hibernation: dropping the
//! instance drops only handles.
//!
//! Memory is what limits how many idle sockets a server holds, so an idle record holds no
//! buffer: writes go straight to the kernel when the queue is empty (only the unwritten rest is
//! queued), reads go into a buffer shared by the thread, and the attachment and tags are exact-size
//! allocations.

mod events;
mod io;
mod set;

use std::any::Any;
use std::collections::VecDeque;
use std::io::ErrorKind as IoErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{Error, ErrorKind, EventStream, Outgoing, ReadyState, WebSocket, WebSocketId};
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::encode;
use futures_util::task::AtomicWaker;
use tokio::net::TcpStream;

pub(crate) use set::SocketSet;

use crate::config::Limits;
use crate::object::{ObjectCell, SocketEvent};

/// Source of [`WebSocketId`]s: unique in the process, increasing, so a set ordered by id is in
/// accept order.
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);

/// Cloudflare's error for sending on (or closing) a socket nobody accepted.
const NOT_ACCEPTED: &str = "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.";

/// The reason reported when a connection ends without a close frame (Cloudflare's text).
pub(crate) const DISCONNECTED: &str = "WebSocket disconnected without sending Close frame.";

/// How a socket is accepted.
enum Mode {
    /// Not yet accepted: sends fail, frames are not read.
    Unaccepted,
    /// Accepted with `State::accept_web_socket`: events go to the object's handlers.
    Hibernatable { tags: Box<[Box<str>]> },
    /// Accepted with `WebSocket::accept`: events go to the socket's own stream.
    Standard(Box<events::Channel>),
}

/// Where the socket's network connection is.
enum Link {
    /// The client end has not been returned in a response yet.
    Pending,
    /// The client end is in a 101 response on its way to a connection.
    Coupled,
    /// Connected; the I/O task holds the other reference to the stream.
    Attached(Arc<TcpStream>),
    /// The connection is gone (or never came).
    Detached,
}

struct Inner {
    mode: Mode,
    link: Link,
    /// The application called `close()`: further sends are errors.
    closed_by_app: bool,
    /// A close frame is queued or sent: nothing more may follow it.
    close_sent: bool,
    /// The peer's close frame arrived (or reading stopped for good).
    close_received: bool,
    /// The connection is gone: sends are silently dropped, as Cloudflare does.
    gone: bool,
    /// The object was reset (or the socket evicted): no more events are delivered.
    silenced: bool,
    /// Frames not yet accepted by the kernel; empty (unallocated) for an idle socket.
    outbound: VecDeque<Bytes>,
    outbound_bytes: usize,
    attachment: Option<Bytes>,
    auto_response_at: Option<SystemTime>,
}

/// The runtime's side of one WebSocket.
pub(crate) struct SocketRecord {
    id: WebSocketId,
    /// The object that created the socket; it receives the socket's events.
    pub(crate) cell: Arc<ObjectCell>,
    inner: Mutex<Inner>,
    /// Wakes the socket's I/O task when output was queued or the socket must close.
    io_waker: AtomicWaker,
}

impl SocketRecord {
    pub(crate) fn new(cell: Arc<ObjectCell>) -> Self {
        SocketRecord {
            id: WebSocketId(NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed)),
            cell,
            inner: Mutex::new(Inner {
                mode: Mode::Unaccepted,
                link: Link::Pending,
                closed_by_app: false,
                close_sent: false,
                close_received: false,
                gone: false,
                silenced: false,
                outbound: VecDeque::new(),
                outbound_bytes: 0,
                attachment: None,
                auto_response_at: None,
            }),
            io_waker: AtomicWaker::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("socket lock")
    }

    pub(crate) fn id(&self) -> WebSocketId {
        self.id
    }

    fn limits(&self) -> &Limits {
        &self.cell.namespace.config.limits
    }

    /// The record behind a handle, if the handle is one of this runtime's.
    pub(crate) fn from_handle(ws: &WebSocket) -> Option<&SocketRecord> {
        ws.host().as_any().downcast_ref()
    }

    /// The record behind a handle, owned.
    pub(crate) fn arc_from_handle(ws: &WebSocket) -> Option<Arc<SocketRecord>> {
        ws.host().clone().into_any().downcast().ok()
    }

    pub(crate) fn has_tag(&self, tag: &str) -> bool {
        matches!(&self.lock().mode, Mode::Hibernatable { tags } if tags.iter().any(|t| &**t == tag))
    }

    pub(crate) fn auto_response_timestamp(&self) -> Option<SystemTime> {
        self.lock().auto_response_at
    }

    /// `State::accept_web_socket`: checks the socket's state and the object's socket limit.
    pub(crate) fn accept_hibernatable(
        self: &Arc<Self>,
        tags: Box<[Box<str>]>,
        limits: &Limits,
    ) -> dormouse_sdk::Result<()> {
        let mut sockets = self.cell.sockets.lock().expect("socket set lock");
        let mut inner = self.lock();
        if !matches!(inner.mode, Mode::Unaccepted) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`",
            ));
        }
        if !matches!(inner.link, Link::Pending) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "Cannot call `acceptWebSocket()` on this WebSocket because its pair has already been accepted or used in a Response.",
            ));
        }
        if sockets.hibernatable_count() >= limits.max_sockets_per_object {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "only {} websockets can be accepted on a single Durable Object instance",
                    limits.max_sockets_per_object
                ),
            ));
        }
        inner.mode = Mode::Hibernatable { tags };
        sockets.insert(self.clone(), true);
        self.cell
            .namespace
            .metrics
            .sockets_accepted
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Connects the socket to an upgraded connection and starts its I/O task. `leftover` holds
    /// bytes the HTTP layer read past the handshake.
    pub(crate) fn attach(self: &Arc<Self>, stream: TcpStream, leftover: Bytes) {
        let stream = Arc::new(stream);
        {
            let mut inner = self.lock();
            if !matches!(inner.link, Link::Coupled) {
                // Abandoned meanwhile: the connection is dropped.
                return;
            }
            if matches!(inner.mode, Mode::Unaccepted) {
                tracing::warn!(socket = %self.id, "the Durable Object returned a WebSocket it never accepted; closing it");
                let close = CloseFrame {
                    code: close::INTERNAL_ERROR,
                    reason: "the Durable Object did not accept its WebSocket".into(),
                };
                inner
                    .outbound
                    .push_back(encode::close_frame(Some(&close), None));
                inner.close_sent = true;
                inner.close_received = true;
                inner.silenced = true;
            }
            inner.link = Link::Attached(stream.clone());
        }
        tokio::spawn(io::drive(self.clone(), stream, leftover));
    }

    /// Queues `frame` (already encoded) unless the socket can no longer send; true if queued.
    /// Used by broadcast, which must not fail because one recipient is closing.
    pub(crate) fn send_frame(&self, frame: Bytes) -> bool {
        let mut inner = self.lock();
        if inner.gone || inner.close_sent || matches!(inner.mode, Mode::Unaccepted) {
            return false;
        }
        self.enqueue(&mut inner, frame);
        true
    }

    /// Queues a frame the runtime sends itself (pong, auto-response, close reply).
    fn send_control(&self, frame: Bytes) {
        let mut inner = self.lock();
        if !inner.gone && !inner.close_sent {
            self.enqueue(&mut inner, frame);
        }
    }

    /// Writes `frame` now if nothing is queued before it, else queues it behind the rest; order is
    /// preserved between application sends, auto-responses, pongs and close frames.
    fn enqueue(&self, inner: &mut Inner, frame: Bytes) {
        let Link::Attached(stream) = &inner.link else {
            if !matches!(inner.link, Link::Detached) {
                inner.outbound_bytes += frame.len();
                inner.outbound.push_back(frame);
            }
            return;
        };
        let rest = if inner.outbound.is_empty() {
            match stream.try_write(&frame) {
                Ok(written) if written == frame.len() => return,
                Ok(written) => frame.slice(written..),
                Err(e) if e.kind() == IoErrorKind::WouldBlock => frame,
                Err(_) => {
                    self.lose_connection(inner);
                    return;
                }
            }
        } else {
            frame
        };
        inner.outbound_bytes += rest.len();
        inner.outbound.push_back(rest);
        self.io_waker.wake();
    }

    /// The connection failed: drop what is queued, stop sending, let the I/O task finish.
    fn lose_connection(&self, inner: &mut Inner) {
        inner.gone = true;
        inner.outbound.clear();
        inner.outbound_bytes = 0;
        self.io_waker.wake();
    }

    /// Ends the socket without an event: a reset (1011), an eviction or shutdown (1001).
    pub(crate) fn terminate(&self, code: u16, reason: &str) {
        let mut inner = self.lock();
        inner.silenced = true;
        if !inner.gone && !inner.close_sent {
            let close = CloseFrame {
                code,
                reason: reason.to_owned(),
            };
            self.enqueue(&mut inner, encode::close_frame(Some(&close), None));
            inner.close_sent = true;
        }
        inner.close_received = true;
        if matches!(inner.link, Link::Pending) {
            inner.gone = true;
        }
        self.io_waker.wake();
    }

    /// Hands an event to whoever consumes this socket's events.
    async fn dispatch(self: &Arc<Self>, event: SocketEvent) {
        let channel = {
            let inner = self.lock();
            if inner.silenced {
                return;
            }
            match &inner.mode {
                Mode::Hibernatable { .. } => None,
                Mode::Standard(channel) => Some(channel.sender()),
                Mode::Unaccepted => return,
            }
        };
        match channel {
            None => {
                let limits = &self.cell.namespace.config.limits;
                if !self
                    .cell
                    .deliver_socket_event(self.clone(), event, limits)
                    .await
                {
                    tracing::warn!(socket = %self.id, "event for a retired object dropped");
                }
            }
            Some(sender) => {
                self.cell.note_activity();
                // The application dropped the stream: nobody wants the event.
                let _ = sender.send(event).await;
            }
        }
    }

    /// The I/O task ended: the connection is closed. Standard sockets leave the object's set here
    /// (hibernatable ones leave it when their last event reaches the object).
    fn detach(self: &Arc<Self>) {
        let standard = {
            let mut inner = self.lock();
            inner.gone = true;
            inner.link = Link::Detached;
            inner.outbound = VecDeque::new();
            inner.outbound_bytes = 0;
            matches!(inner.mode, Mode::Standard(_))
        };
        if standard {
            self.cell
                .sockets
                .lock()
                .expect("socket set lock")
                .remove(self.id);
            self.cell.note_activity();
        }
    }
}

impl SocketHost for SocketRecord {
    fn id(&self) -> WebSocketId {
        self.id
    }

    fn send(&self, message: Outgoing<'_>) -> dormouse_sdk::Result<()> {
        let frame = encode_outgoing(message);
        let mut inner = self.lock();
        if matches!(inner.mode, Mode::Unaccepted) {
            return Err(Error::new(ErrorKind::Type, NOT_ACCEPTED));
        }
        if inner.closed_by_app {
            return Err(Error::new(
                ErrorKind::Type,
                "Can't call WebSocket send() after close().",
            ));
        }
        // After the peer (or the runtime) closed the connection, sends are dropped silently.
        if !inner.gone && !inner.close_sent {
            self.enqueue(&mut inner, frame);
        }
        Ok(())
    }

    fn close(&self, code: Option<u16>, reason: Option<&str>) -> dormouse_sdk::Result<()> {
        if let Some(code) = code
            && !close::is_valid_application_code(code)
        {
            return Err(Error::new(
                ErrorKind::InvalidAccess,
                format!("Invalid WebSocket close code: {code}."),
            ));
        }
        if reason.is_some_and(|r| r.len() > close::MAX_REASON_BYTES) {
            return Err(Error::new(
                ErrorKind::Syntax,
                "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded.",
            ));
        }
        if reason.is_some() && code.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidAccess,
                "If you specify a WebSocket close reason, you must also specify a code.",
            ));
        }
        let mut inner = self.lock();
        if inner.close_sent || inner.gone {
            return Ok(());
        }
        if matches!(inner.mode, Mode::Unaccepted) {
            return Err(Error::new(ErrorKind::Type, NOT_ACCEPTED));
        }
        let close = code.map(|code| CloseFrame {
            code,
            reason: reason.unwrap_or_default().to_owned(),
        });
        self.enqueue(&mut inner, encode::close_frame(close.as_ref(), None));
        inner.close_sent = true;
        inner.closed_by_app = true;
        self.io_waker.wake();
        Ok(())
    }

    fn ready_state(&self) -> ReadyState {
        let inner = self.lock();
        if inner.gone || (inner.close_sent && inner.close_received) {
            ReadyState::Closed
        } else if inner.close_sent || inner.close_received {
            ReadyState::Closing
        } else {
            ReadyState::Open
        }
    }

    fn set_attachment(&self, serialized: Vec<u8>) -> dormouse_sdk::Result<()> {
        let max = self.limits().max_attachment_bytes;
        if serialized.len() > max {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "A WebSocket 'attachment' cannot be larger than {max} bytes.'attachment' was {} bytes.",
                    serialized.len()
                ),
            ));
        }
        self.lock().attachment = Some(Bytes::from(serialized));
        Ok(())
    }

    fn attachment(&self) -> Option<Bytes> {
        self.lock().attachment.clone()
    }

    fn tags(&self) -> dormouse_sdk::Result<Vec<String>> {
        match &self.lock().mode {
            Mode::Hibernatable { tags } => Ok(tags.iter().map(|t| t.to_string()).collect()),
            Mode::Standard(_) => Err(Error::new(
                ErrorKind::InvalidState,
                "only hibernatable websockets can have tags.",
            )),
            Mode::Unaccepted => Err(Error::new(
                ErrorKind::InvalidState,
                "you must call 'acceptWebSocket()' before attempting to access the tags of a WebSocket.",
            )),
        }
    }

    fn add_tag(&self, tag: &str) -> dormouse_sdk::Result<()> {
        let limits = self.limits();
        check_tag_length(tag, limits)?;
        let mut inner = self.lock();
        let Mode::Hibernatable { tags } = &mut inner.mode else {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "only hibernatable websockets can have tags.",
            ));
        };
        if tags.iter().any(|t| &**t == tag) {
            return Ok(());
        }
        if tags.len() >= limits.max_tags {
            return Err(too_many_tags(limits));
        }
        let mut grown = std::mem::take(tags).into_vec();
        grown.push(tag.into());
        *tags = grown.into_boxed_slice();
        Ok(())
    }

    fn remove_tag(&self, tag: &str) -> dormouse_sdk::Result<bool> {
        let mut inner = self.lock();
        let Mode::Hibernatable { tags } = &mut inner.mode else {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "only hibernatable websockets can have tags.",
            ));
        };
        let before = tags.len();
        let kept: Vec<Box<str>> = std::mem::take(tags)
            .into_vec()
            .into_iter()
            .filter(|t| &**t != tag)
            .collect();
        *tags = kept.into_boxed_slice();
        Ok(tags.len() != before)
    }

    fn accept(self: Arc<Self>) -> dormouse_sdk::Result<()> {
        let mut sockets = self.cell.sockets.lock().expect("socket set lock");
        let mut inner = self.lock();
        match inner.mode {
            Mode::Hibernatable { .. } => Err(Error::new(
                ErrorKind::Type,
                "Can't accept() WebSocket after enabling hibernation.",
            )),
            Mode::Standard(_) => Ok(()),
            Mode::Unaccepted => {
                inner.mode = Mode::Standard(Box::new(events::Channel::new()));
                sockets.insert(self.clone(), false);
                self.cell
                    .namespace
                    .metrics
                    .sockets_accepted
                    .fetch_add(1, Ordering::Relaxed);
                self.io_waker.wake();
                Ok(())
            }
        }
    }

    fn events(&self) -> dormouse_sdk::Result<EventStream> {
        match &self.lock().mode {
            Mode::Standard(channel) => channel.take_stream(),
            Mode::Hibernatable { .. } => Err(Error::new(
                ErrorKind::InvalidState,
                "events() is not available on a hibernatable WebSocket: its events go to the object's handlers",
            )),
            Mode::Unaccepted => Err(Error::new(
                ErrorKind::InvalidState,
                "call accept() before events()",
            )),
        }
    }

    fn couple(&self) -> dormouse_sdk::Result<()> {
        let mut inner = self.lock();
        match inner.link {
            Link::Pending => {
                inner.link = Link::Coupled;
                Ok(())
            }
            _ => Err(Error::new(
                ErrorKind::Type,
                "Can't return WebSocket that was already used in a response.",
            )),
        }
    }

    fn abandon(self: Arc<Self>) {
        let hibernatable = {
            let mut inner = self.lock();
            if !matches!(inner.link, Link::Coupled) {
                return;
            }
            inner.link = Link::Detached;
            inner.gone = true;
            inner.outbound.clear();
            !inner.silenced && matches!(inner.mode, Mode::Hibernatable { .. })
        };
        // Every accepted socket ends with exactly one event, even one that never connected.
        if hibernatable && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let event = SocketEvent::Close {
                code: close::ABNORMAL,
                reason: DISCONNECTED.into(),
                was_clean: false,
            };
            runtime.spawn(async move { self.dispatch(event).await });
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Encodes an application message as a server frame (unmasked).
pub(crate) fn encode_outgoing(message: Outgoing<'_>) -> Bytes {
    match message {
        Outgoing::Text(text) => encode::text_frame(text, None),
        Outgoing::Binary(data) => encode::binary_frame(data, None),
    }
}

/// Validates tags given at accept time, with Cloudflare's rules and messages: duplicates are
/// dropped; once the maximum number of distinct tags is reached, any further tag fails.
pub(crate) fn validate_tags(
    tags: &[&str],
    limits: &Limits,
) -> dormouse_sdk::Result<Box<[Box<str>]>> {
    let mut distinct: Vec<Box<str>> = Vec::with_capacity(tags.len().min(limits.max_tags));
    for tag in tags {
        if distinct.len() >= limits.max_tags {
            return Err(too_many_tags(limits));
        }
        check_tag_length(tag, limits)?;
        if !distinct.iter().any(|t| &**t == *tag) {
            distinct.push((*tag).into());
        }
    }
    Ok(distinct.into_boxed_slice())
}

fn check_tag_length(tag: &str, limits: &Limits) -> dormouse_sdk::Result<()> {
    if tag.len() > limits.max_tag_bytes {
        return Err(Error::new(
            ErrorKind::InvalidState,
            format!(
                "\"{tag}\" is longer than the max tag length ({} characters).",
                limits.max_tag_bytes
            ),
        ));
    }
    Ok(())
}

fn too_many_tags(limits: &Limits) -> Error {
    Error::new(
        ErrorKind::InvalidState,
        format!(
            "a Hibernatable WebSocket cannot have more than {} tags",
            limits.max_tags
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_cloudflare_rules() {
        let limits = Limits::default();
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
}
