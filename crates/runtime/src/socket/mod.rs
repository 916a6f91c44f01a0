//! The socket holder: every WebSocket an object accepts belongs to the runtime.
//!
//! A [`SocketRecord`] is the runtime's side of one WebSocket: its connection, state, outbound
//! queue, attachment and tags. The record is shared by the object's [`SocketSet`] and by any
//! handle the application holds, so it outlives hibernation: dropping an instance drops only
//! handles.
//!
//! Memory is what limits how many idle sockets a server holds, so an idle socket has no task and
//! holds no buffer: a [`driver`] polls it when tokio reports readiness; writes go straight to the
//! kernel when nothing is queued (only the unwritten rest is queued); reads go into a buffer shared
//! by the thread; the attachment and tags are exact-size allocations.
//!
//! Lock order: the object's socket set before a socket's own lock; a socket's lock is never held
//! while taking the object's state lock (events are delivered after it is released).

mod driver;
mod events;
mod io;
mod kernel;
mod progress;
mod set;

use std::any::Any;
use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Wake;
use std::time::SystemTime;

use bytes::Bytes;
use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{Error, ErrorKind, EventStream, Outgoing, ReadyState, WebSocket, WebSocketId};
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::encode;
use dormouse_ws::frame::{self, Opcode};
use tokio::net::TcpStream;

pub(crate) use driver::Drivers;
pub(crate) use set::SocketSet;

use crate::config::Limits;
use crate::metrics::DropCounters;
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
    Standard(Arc<events::Channel>),
}

/// Where the socket's network connection is.
enum Link {
    /// The client end has not been returned in a response yet.
    Pending,
    /// The client end is in a 101 response on its way to a connection.
    Coupled,
    /// Connected.
    Attached(io::Connection),
    /// The connection is closed (or never came).
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
    /// The socket's last event (close or error) was produced; nothing more is read.
    ended: bool,
    /// Frames the kernel has not taken yet; `None` (no allocation) for an idle socket.
    outbound: Option<Box<Outbound>>,
    /// The serialized attachment.
    attachment: Option<Arc<[u8]>>,
    /// When the last auto-response was sent, in milliseconds since the epoch; 0 for never.
    auto_response_at_ms: u64,
    /// Application frames held by the object's output gate until its writes are durable.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per idle socket instead of 32"
    )]
    held: Option<Box<VecDeque<(u64, Bytes)>>>,
    /// Why the connection ends, if the runtime ended it (for the object's close event).
    end: EndCause,
    /// When the peer was last heard from ([`clock_ms`]).
    last_heard_ms: u64,
    /// When the runtime pinged the silent peer; 0 when no ping is outstanding.
    ping_sent_ms: u64,
    /// When a started close handshake is given up; 0 when none is under way.
    close_deadline_ms: u64,
}

/// Why the runtime dropped a connection, reported in the object's `websocket_close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum EndCause {
    /// The connection ended without a close frame (or could not be written to).
    #[default]
    Lost,
    /// The client stopped reading while output piled up.
    Overflow,
    /// The peer stopped answering pings.
    Silent,
    /// The close handshake did not complete in time.
    CloseTimeout,
}

impl EndCause {
    /// The counter of connections dropped for this cause; none when the peer went away itself.
    fn drop_counter(self, dropped: &DropCounters) -> Option<&AtomicU64> {
        match self {
            EndCause::Lost => None,
            EndCause::Overflow => Some(&dropped.slow_reader),
            EndCause::Silent => Some(&dropped.unresponsive),
            EndCause::CloseTimeout => Some(&dropped.close_timeout),
        }
    }

    /// The close code and reason the object is told.
    fn close(self, limits: &Limits) -> (u16, String) {
        match self {
            EndCause::Lost => (close::ABNORMAL, DISCONNECTED.to_owned()),
            EndCause::Overflow => (
                close::POLICY_VIOLATION,
                format!(
                    "the client is not reading: over {} bytes were waiting to be sent",
                    limits.max_outbound_bytes
                ),
            ),
            EndCause::Silent => (
                close::ABNORMAL,
                "WebSocket peer stopped answering pings.".to_owned(),
            ),
            EndCause::CloseTimeout => (
                close::ABNORMAL,
                "WebSocket close handshake was not completed in time.".to_owned(),
            ),
        }
    }
}

/// Milliseconds on a monotonic clock shared by every socket of the process.
pub(crate) fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}

/// What [`Inner::write_now`] did.
enum WriteNow {
    /// The frame is written.
    Done,
    /// Output is queued or the connection failed: the driver must run.
    NeedsDriver,
    /// Nothing was written: the caller sends the frame the usual way.
    NotStarted,
}

/// Output waiting for the socket to become writable.
#[derive(Default)]
struct Outbound {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl Inner {
    /// Writes `frame` now if nothing is queued before it, else queues it behind the rest, so that
    /// application sends, auto-responses, pongs and close frames keep their order. Returns true
    /// when the driver must run: output is left queued, or the connection just failed. When more
    /// than `max_queued` bytes were already waiting before this frame, the peer is taken as not
    /// reading and the connection is dropped (a single large frame is always allowed).
    fn enqueue(&mut self, frame: Bytes, max_queued: usize) -> bool {
        let rest = match &mut self.link {
            Link::Detached => return false,
            Link::Pending | Link::Coupled => frame,
            Link::Attached(_) if has_queued(&self.outbound) => frame,
            Link::Attached(connection) => match connection.stream.try_write(&frame) {
                Ok(written) if written == frame.len() => {
                    connection.progress.wrote(written);
                    return false;
                }
                Ok(written) => {
                    connection.progress.wrote(written);
                    frame.slice(written..)
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => frame,
                Err(_) => {
                    self.lose_connection();
                    return true;
                }
            },
        };
        self.queue(rest, max_queued)
    }

    /// Queues `frame` behind the rest without trying to write it: the driver then writes the whole
    /// queue in vectored writes, so that a burst of broadcasts costs a socket one system call (and
    /// its reader one wake-up), not one per message. Same bound and result as [`Inner::enqueue`].
    fn defer(&mut self, frame: Bytes, max_queued: usize) -> bool {
        if matches!(self.link, Link::Detached) {
            return false;
        }
        self.queue(frame, max_queued)
    }

    fn queue(&mut self, rest: Bytes, max_queued: usize) -> bool {
        let outbound = self.outbound.get_or_insert_with(Box::default);
        if outbound.bytes > max_queued {
            self.lose_connection();
            self.end = EndCause::Overflow;
            return true;
        }
        outbound.bytes += rest.len();
        outbound.frames.push_back(rest);
        true
    }

    /// Writes a whole frame straight from `payload` when nothing is queued before it, so that a
    /// message that fits the kernel's buffer costs no allocation: a small one is assembled on the
    /// stack and sent, a larger one goes out in a vectored write without being copied.
    fn write_now(&mut self, opcode: Opcode, payload: &[u8], max_queued: usize) -> WriteNow {
        let Link::Attached(connection) = &mut self.link else {
            return WriteNow::NotStarted;
        };
        if has_queued(&self.outbound) {
            return WriteNow::NotStarted;
        }
        let (header, header_len) = frame::header_bytes(true, opcode, payload.len(), None);
        let result = if header_len + payload.len() <= SMALL_FRAME_BYTES {
            let mut whole = [0u8; SMALL_FRAME_BYTES];
            whole[..header_len].copy_from_slice(&header[..header_len]);
            whole[header_len..header_len + payload.len()].copy_from_slice(payload);
            connection
                .stream
                .try_write(&whole[..header_len + payload.len()])
        } else {
            let slices = [IoSlice::new(&header[..header_len]), IoSlice::new(payload)];
            connection.stream.try_write_vectored(&slices)
        };
        if let Ok(written) = result {
            connection.progress.wrote(written);
        }
        match result {
            Ok(written) if written == header_len + payload.len() => WriteNow::Done,
            Ok(written) => {
                let rest = encode::frame(true, opcode, payload, None).slice(written..);
                if self.enqueue(rest, max_queued) {
                    WriteNow::NeedsDriver
                } else {
                    WriteNow::Done
                }
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => WriteNow::NotStarted,
            Err(_) => {
                self.lose_connection();
                WriteNow::NeedsDriver
            }
        }
    }

    /// Notes where the ping just queued ends in the output, and what the peer has acknowledged.
    fn note_ping_position(&mut self) {
        let queued = self.outbound.as_ref().map_or(0, |outbound| outbound.bytes);
        if let Link::Attached(connection) = &mut self.link {
            let unacknowledged = kernel::unacknowledged_bytes(&connection.stream);
            connection.progress.ping_queued(queued, unacknowledged);
        }
    }

    /// Whether the outstanding ping is held up by output ahead of it that the peer is still
    /// taking in, or that we have not written yet (see [`progress`]).
    fn ping_held_up_by_backlog(&mut self) -> bool {
        let Link::Attached(connection) = &mut self.link else {
            return false;
        };
        let stream = &connection.stream;
        connection
            .progress
            .ping_held_up(|| kernel::unacknowledged_bytes(stream))
    }

    /// A close frame is queued: nothing may follow it, and the handshake has `timeout` to end.
    fn start_closing(&mut self, timeout: std::time::Duration) {
        self.close_sent = true;
        if self.close_deadline_ms == 0 {
            self.close_deadline_ms = clock_ms() + timeout.as_millis() as u64;
        }
    }

    /// The connection failed: drop what is queued and stop sending.
    fn lose_connection(&mut self) {
        self.gone = true;
        self.outbound = None;
    }
}

/// Whether output waits in the queue (an emptied queue is kept until the liveness sweep).
fn has_queued(outbound: &Option<Box<Outbound>>) -> bool {
    outbound
        .as_ref()
        .is_some_and(|outbound| !outbound.frames.is_empty())
}

/// Frames up to this size are copied into one buffer on the stack and sent with a plain write,
/// which costs the kernel less than a vectored write; past it, copying costs more than it saves.
const SMALL_FRAME_BYTES: usize = 512;

/// The runtime's side of one WebSocket.
pub(crate) struct SocketRecord {
    id: WebSocketId,
    /// The object that created the socket; it receives the socket's events.
    pub(crate) cell: Arc<ObjectCell>,
    /// Itself, so that methods called through `&self` can queue it on its driver.
    this: Weak<SocketRecord>,
    inner: Mutex<Inner>,
    /// True while the socket waits in its driver's queue, so that many wake-ups queue it once.
    scheduled: AtomicBool,
}

/// Waking a socket queues it on its driver (once until the driver polls it).
impl Wake for SocketRecord {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule();
    }
}

impl SocketRecord {
    pub(crate) fn new(cell: Arc<ObjectCell>) -> Arc<Self> {
        Arc::new_cyclic(|this| SocketRecord {
            id: WebSocketId(NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed)),
            cell,
            this: this.clone(),
            inner: Mutex::new(Inner {
                mode: Mode::Unaccepted,
                link: Link::Pending,
                closed_by_app: false,
                close_sent: false,
                close_received: false,
                gone: false,
                silenced: false,
                ended: false,
                outbound: None,
                attachment: None,
                auto_response_at_ms: 0,
                held: None,
                end: EndCause::Lost,
                last_heard_ms: clock_ms(),
                ping_sent_ms: 0,
                close_deadline_ms: 0,
            }),
            scheduled: AtomicBool::new(false),
        })
    }

    /// Asks the driver to poll this socket (to flush output, finish, or retry a delivery).
    fn schedule(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel)
            && let Some(this) = self.this.upgrade()
        {
            self.cell.namespace.drivers.for_socket(self.id.0).push(this);
        }
    }

    /// The driver is about to poll the socket: later wake-ups must queue it again.
    fn unschedule(&self) {
        self.scheduled.store(false, Ordering::Release);
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
        match self.lock().auto_response_at_ms {
            0 => None,
            ms => Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        }
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

    /// Connects the socket to an upgraded connection. `leftover` holds bytes the HTTP layer read
    /// past the handshake (copied here: the `Bytes` may share the HTTP layer's whole buffer).
    pub(crate) fn attach(&self, stream: TcpStream, leftover: Bytes) {
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
                inner.enqueue(encode::close_frame(Some(&close), None), usize::MAX);
                inner.start_closing(self.cell.namespace.config.ping_timeout);
                inner.close_received = true;
                inner.silenced = true;
            }
            let max_message_bytes = self.limits().max_message_bytes;
            inner.link = Link::Attached(io::Connection::new(stream, &leftover, max_message_bytes));
        }
        self.cell
            .namespace
            .drivers
            .for_socket(self.id.0)
            .ensure_started();
        self.schedule();
    }

    /// Queues `frame` (already encoded) unless the socket can no longer send; true if queued.
    /// Used by broadcast, which must not fail because one recipient is closing.
    pub(crate) fn send_frame(&self, frame: Bytes) -> bool {
        let mut inner = self.lock();
        if inner.gone || inner.close_sent || matches!(inner.mode, Mode::Unaccepted) {
            return false;
        }
        self.send_app(&mut inner, frame, true);
        true
    }

    /// Sends a frame the application produced: held behind the output gate while writes before
    /// it are not durable (or while earlier frames of this socket are held), sent otherwise,
    /// at once or (`defer`, for broadcasts) by the driver with whatever else queues up meanwhile.
    fn send_app(&self, inner: &mut Inner, frame: Bytes, defer: bool) {
        let gate = &self.cell.gate;
        let tag = gate.tag();
        if let Some(held) = &mut inner.held {
            held.push_back((tag, frame));
            self.release_below(inner, gate.limit());
            return;
        }
        if gate.is_closed()
            && let Some(this) = self.this.upgrade()
            && gate.hold(&this, tag)
        {
            inner.held = Some(Box::new(VecDeque::from([(tag, frame)])));
            return;
        }
        if !defer {
            self.enqueue(inner, frame);
        } else if inner.defer(frame, self.limits().max_outbound_bytes) {
            self.schedule();
        }
    }

    /// The output gate's limit rose: sends the held frames below it (as it stands now: a turn
    /// that wrote since lowers it again). Returns whether frames are still held.
    pub(crate) fn release_held(&self) -> bool {
        let mut inner = self.lock();
        self.release_below(&mut inner, self.cell.gate.limit());
        inner.held.is_some()
    }

    fn release_below(&self, inner: &mut Inner, limit: u64) {
        let Some(held) = &mut inner.held else {
            return;
        };
        let mut frames = Vec::new();
        while held.front().is_some_and(|(tag, _)| *tag < limit) {
            frames.extend(held.pop_front().map(|(_, frame)| frame));
        }
        if held.is_empty() {
            inner.held = None;
        }
        for frame in frames {
            self.enqueue(inner, frame);
        }
    }

    /// The writes before the held frames were lost: drops them.
    pub(crate) fn discard_held(&self) {
        self.lock().held = None;
    }

    /// Sends or queues `frame`; schedules the driver when output is left queued.
    fn enqueue(&self, inner: &mut Inner, frame: Bytes) {
        if inner.enqueue(frame, self.limits().max_outbound_bytes) {
            self.schedule();
        }
    }

    /// Called by the liveness sweep: pings a socket that has been silent for `interval` (zero:
    /// never), and drops the connection of one that did not answer within `timeout`, or whose
    /// close handshake ran past its deadline.
    pub(crate) fn check_liveness(
        &self,
        now: u64,
        interval: std::time::Duration,
        timeout: std::time::Duration,
    ) {
        let mut inner = self.lock();
        if inner.gone || !matches!(inner.link, Link::Attached(_)) {
            return;
        }
        if !has_queued(&inner.outbound) {
            // Idle sockets hold no buffers; a busy one keeps its queue between bursts.
            inner.outbound = None;
        }
        let dead = if inner.close_deadline_ms != 0 && now >= inner.close_deadline_ms {
            Some(EndCause::CloseTimeout)
        } else if inner.close_sent || interval.is_zero() {
            None
        } else if inner.ping_sent_ms != 0 {
            if inner.ping_held_up_by_backlog() {
                inner.ping_sent_ms = now;
            }
            (now.saturating_sub(inner.ping_sent_ms) >= timeout.as_millis() as u64)
                .then_some(EndCause::Silent)
        } else {
            if now.saturating_sub(inner.last_heard_ms) >= interval.as_millis() as u64 {
                inner.ping_sent_ms = now;
                self.enqueue(&mut inner, encode::ping_frame(b"dormouse", None));
                inner.note_ping_position();
            }
            None
        };
        if let Some(cause) = dead {
            if let Link::Attached(connection) = &inner.link {
                let (written, acknowledged, ping_end) = connection.progress.positions();
                tracing::debug!(
                    socket = %self.id,
                    ?cause,
                    written,
                    acknowledged,
                    ping_end,
                    queued = inner.outbound.as_ref().map_or(0, |outbound| outbound.bytes),
                    "dropping an unresponsive connection"
                );
            }
            inner.lose_connection();
            inner.end = cause;
            drop(inner);
            self.schedule();
        }
    }

    /// Answers the client's close frame (`code` and `reason` as received; 1005 for an empty
    /// one) unless a close frame was sent already: for objects whose close replies come after
    /// the handler ([`CloseReply::AfterHandler`](crate::CloseReply::AfterHandler)).
    pub(crate) fn answer_close(&self, code: u16, reason: &str) {
        let mut inner = self.lock();
        if inner.gone || inner.close_sent {
            return;
        }
        let frame = (code != close::NO_STATUS).then(|| CloseFrame {
            code,
            reason: reason.to_owned(),
        });
        inner.enqueue(encode::close_frame(frame.as_ref(), None), usize::MAX);
        inner.start_closing(self.cell.namespace.config.ping_timeout);
        drop(inner);
        self.schedule();
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
            inner.enqueue(
                encode::close_frame(Some(&close), None),
                self.limits().max_outbound_bytes,
            );
            inner.start_closing(self.cell.namespace.config.ping_timeout);
        }
        inner.close_received = true;
        if matches!(inner.link, Link::Pending) {
            inner.gone = true;
        }
        if let Mode::Standard(channel) = &inner.mode {
            channel.close();
        }
        drop(inner);
        self.schedule();
    }
}

impl SocketHost for SocketRecord {
    fn id(&self) -> WebSocketId {
        self.id
    }

    fn send(&self, message: Outgoing<'_>) -> dormouse_sdk::Result<()> {
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
        if inner.gone || inner.close_sent {
            return Ok(());
        }
        let direct = self.cell.take_direct_send();
        if direct && inner.held.is_none() && !self.cell.gate.is_closed() {
            let (opcode, payload) = match message {
                Outgoing::Text(text) => (Opcode::Text, text.as_bytes()),
                Outgoing::Binary(data) => (Opcode::Binary, data),
            };
            match inner.write_now(opcode, payload, self.limits().max_outbound_bytes) {
                WriteNow::Done => return Ok(()),
                WriteNow::NeedsDriver => {
                    drop(inner);
                    self.schedule();
                    return Ok(());
                }
                WriteNow::NotStarted => {}
            }
        }
        self.send_app(&mut inner, encode_outgoing(message), !direct);
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
        self.send_app(&mut inner, encode::close_frame(close.as_ref(), None), false);
        inner.start_closing(self.cell.namespace.config.ping_timeout);
        inner.closed_by_app = true;
        drop(inner);
        // The driver finishes the socket once the peer answers (or flushes a pending close).
        self.schedule();
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
        self.lock().attachment = Some(Arc::from(serialized));
        Ok(())
    }

    fn attachment(&self) -> Option<Bytes> {
        self.lock().attachment.clone().map(Bytes::from_owner)
    }

    fn tags(&self) -> dormouse_sdk::Result<Vec<String>> {
        match &self.lock().mode {
            Mode::Hibernatable { tags } => Ok(tags.iter().map(|t| t.to_string()).collect()),
            Mode::Standard(_) => Err(not_hibernatable()),
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
            return Err(not_hibernatable());
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
            return Err(not_hibernatable());
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
                inner.mode = Mode::Standard(Arc::new(events::Channel::new()));
                sockets.insert(self.clone(), false);
                self.cell
                    .namespace
                    .metrics
                    .sockets_accepted
                    .fetch_add(1, Ordering::Relaxed);
                drop(inner);
                drop(sockets);
                // Frames may already be waiting: start reading them.
                self.schedule();
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
            if !matches!(inner.link, Link::Pending | Link::Coupled) {
                return;
            }
            inner.link = Link::Detached;
            inner.lose_connection();
            !inner.silenced && matches!(inner.mode, Mode::Hibernatable { .. })
        };
        // Every accepted socket ends with exactly one event, even one that never connected.
        if hibernatable && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let event = SocketEvent::Close {
                code: close::ABNORMAL,
                reason: DISCONNECTED.into(),
                was_clean: false,
            };
            let cell = self.cell.clone();
            runtime.spawn(async move { cell.deliver_socket_event(self, event).await });
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

fn not_hibernatable() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "only hibernatable websockets can have tags.",
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

    #[test]
    fn idle_record_is_small() {
        // A guard against growth by accident: the record is most of an idle socket's memory in
        // user space (the budget is 2 KB per connection, kernel included).
        let size = std::mem::size_of::<SocketRecord>();
        assert!(size <= 288, "SocketRecord is {size} bytes");
    }
}
