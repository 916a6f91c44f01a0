//! [`SocketRecord`]: the holder's side of one WebSocket: its connection, state, outbound queue,
//! attachment and tags.
//!
//! The record is shared by its group's set and by any handle the application holds, so it
//! outlives hibernation: dropping an instance drops only handles. Memory is what limits how many
//! idle sockets a server holds, so an idle socket has no task and holds no buffer: a driver
//! polls it when tokio reports readiness; writes go straight to the kernel when nothing is
//! queued; reads go into a buffer shared by the thread; the attachment and tags are exact-size
//! allocations.
//!
//! - `state`: the states it moves through; `output`: the write path; `host`: the SDK's
//!   `SocketHost`; `liveness`: pings and handshake deadlines; `relay`: what a relaying peer node
//!   is told (cluster mode).

mod host;
pub(crate) mod liveness;
mod output;
#[cfg(test)]
mod output_tests;
mod relay;
pub(crate) mod state;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Wake;
use std::time::SystemTime;

use bytes::Bytes;
use dormouse_sdk::{Error, ErrorKind, WebSocket, WebSocketId};
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::encode;
use tokio::net::TcpStream;

pub(crate) use host::BroadcastFrames;
pub(crate) use host::validate_tags;
pub(crate) use output::{Outbound, has_queued};
use state::{EndCause, Handshake, Link, Mode, Reporting, Tick};

use crate::config::Negotiated;
use crate::driver::Driver;
use crate::error::HolderError;
use crate::group::SocketGroup;
use crate::io::Connection;

/// Source of [`WebSocketId`]s: unique in the process, increasing, so a set ordered by id is in
/// accept order.
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Inner {
    /// The group the socket belongs to: its owner, gate and settings.
    pub(crate) group: Arc<SocketGroup>,
    pub(crate) mode: Mode,
    pub(crate) link: Link,
    pub(crate) handshake: Handshake,
    pub(crate) reporting: Reporting,
    /// The application called `close()`: further sends are errors.
    pub(crate) closed_by_app: bool,
    /// Frames the kernel has not taken yet; `None` (no allocation) for an idle socket.
    pub(crate) outbound: Option<Box<Outbound>>,
    /// The serialized attachment.
    pub(crate) attachment: Option<Arc<[u8]>>,
    /// The subprotocol agreed at the handshake; boxed, since few sockets have one.
    #[allow(clippy::box_collection, reason = "8 bytes per socket instead of 24")]
    pub(crate) protocol: Option<Box<String>>,
    /// When the last auto-response was sent, in milliseconds since the epoch.
    pub(crate) auto_response_at_ms: Option<NonZeroU64>,
    /// Application frames held by the owner's output gate until its writes are durable.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per idle socket instead of 32"
    )]
    pub(crate) held: Option<Box<VecDeque<(u64, Bytes)>>>,
    /// Why the connection ends, if the runtime ended it (for the owner's close event).
    pub(crate) end: EndCause,
    /// When the peer was last heard from.
    pub(crate) last_heard: Tick,
    /// When the runtime pinged the silent peer, while no answer came.
    pub(crate) ping_sent: Option<Tick>,
}

impl Inner {
    pub(crate) fn max_outbound(&self) -> usize {
        self.group.settings.limits.max_outbound_bytes
    }

    /// Counts `frame` if it goes out compressed (RSV1 set).
    pub(crate) fn count_if_compressed(&self, frame: &[u8]) {
        if frame.first().is_some_and(|b0| b0 & 0x40 != 0) {
            let counters = &self.group.settings.counters;
            counters.compressed_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the connection agreed to permessage-deflate (known once attached; frames queued
    /// before go out uncompressed, which is always allowed).
    pub(crate) fn compresses(&self) -> bool {
        matches!(&self.link, Link::Attached(connection) if connection.compression)
    }
}

/// The holder's side of one WebSocket.
pub struct SocketRecord {
    id: WebSocketId,
    /// Itself, so that methods called through `&self` can queue it on its driver.
    this: Weak<SocketRecord>,
    /// The driver that polls it.
    driver: Arc<Driver>,
    inner: Mutex<Inner>,
    /// True while the socket waits in its driver's queue, so that many wake-ups queue it once.
    scheduled: AtomicBool,
}

impl std::fmt::Debug for SocketRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRecord")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
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
    pub(crate) fn new(group: Arc<SocketGroup>) -> Arc<Self> {
        let id = WebSocketId(NEXT_SOCKET_ID.fetch_add(1, Ordering::Relaxed));
        let driver = group.settings.drivers.for_socket(id.0).clone();
        Arc::new_cyclic(|this| SocketRecord {
            id,
            this: this.clone(),
            driver,
            inner: Mutex::new(Inner {
                group,
                mode: Mode::Unaccepted,
                link: Link::Pending,
                handshake: Handshake::Open,
                reporting: Reporting::Open,
                closed_by_app: false,
                outbound: None,
                attachment: None,
                protocol: None,
                auto_response_at_ms: None,
                held: None,
                end: EndCause::Lost,
                last_heard: Tick::at(crate::clock_ms()),
                ping_sent: None,
            }),
            scheduled: AtomicBool::new(false),
        })
    }

    /// Asks the driver to poll this socket (to flush output, finish, or retry a delivery).
    pub(crate) fn schedule(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel)
            && let Some(this) = self.this.upgrade()
        {
            self.driver.push(this);
        }
    }

    /// The driver is about to poll the socket: later wake-ups must queue it again.
    pub(crate) fn unschedule(&self) {
        self.scheduled.store(false, Ordering::Release);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("socket lock")
    }

    pub(crate) fn this(&self) -> Arc<SocketRecord> {
        self.this.upgrade().expect("a socket in use is alive")
    }

    /// The socket's id.
    pub fn id(&self) -> WebSocketId {
        self.id
    }

    /// The group the socket belongs to now.
    pub fn group(&self) -> Arc<SocketGroup> {
        self.lock().group.clone()
    }

    /// Whether the socket belongs to `group`.
    pub fn belongs_to(&self, group: &Arc<SocketGroup>) -> bool {
        Arc::ptr_eq(&self.lock().group, group)
    }

    /// The record behind a handle, if the handle is one of this holder's.
    pub fn from_handle(ws: &WebSocket) -> Option<&SocketRecord> {
        ws.host().as_any().downcast_ref()
    }

    /// The record behind a handle, owned.
    pub fn arc_from_handle(ws: &WebSocket) -> Option<Arc<SocketRecord>> {
        ws.host().clone().into_any().downcast().ok()
    }

    /// Whether the socket is hibernatable and carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        matches!(&self.lock().mode, Mode::Hibernatable { tags } if tags.iter().any(|t| &**t == tag))
    }

    /// Whether the socket was accepted as hibernatable (its events go to the owner).
    pub fn is_hibernatable(&self) -> bool {
        matches!(self.lock().mode, Mode::Hibernatable { .. })
    }

    /// Bytes waiting in the socket to be sent: queued for the kernel, or held by the output gate.
    pub fn waiting_bytes(&self) -> usize {
        let inner = self.lock();
        let queued = inner.outbound.as_ref().map_or(0, |outbound| outbound.bytes);
        let held = inner
            .held
            .as_ref()
            .map_or(0, |held| held.iter().map(|(_, frame)| frame.len()).sum());
        queued + held
    }

    /// When the last auto-response was sent.
    pub fn auto_response_timestamp(&self) -> Option<SystemTime> {
        self.lock()
            .auto_response_at_ms
            .map(|ms| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms.get()))
    }

    /// `State::accept_web_socket`: accepts the socket as hibernatable, with `tags`, checking its
    /// state and the group's socket limit.
    pub fn accept_hibernatable(self: &Arc<Self>, tags: &[&str]) -> dormouse_sdk::Result<()> {
        let group = self.group();
        let limits = &group.settings.limits;
        let tags = validate_tags(tags, limits)?;
        let mut sockets = group.sockets();
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
        if sockets.hibernatable_count() >= limits.max_sockets_per_owner {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "only {} websockets can be accepted on a single Durable Object instance",
                    limits.max_sockets_per_owner
                ),
            ));
        }
        inner.mode = Mode::Hibernatable { tags };
        sockets.insert(self.clone(), true);
        group
            .settings
            .counters
            .accepted
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Connects the socket to an upgraded connection, with what its handshake settled.
    /// `leftover` holds bytes the HTTP layer read past the handshake (copied here: the `Bytes`
    /// may share the HTTP layer's whole buffer).
    pub fn attach(&self, stream: TcpStream, leftover: Bytes, negotiated: Negotiated) {
        {
            let mut inner = self.lock();
            if !matches!(inner.link, Link::Coupled) {
                // Abandoned meanwhile: the connection is dropped.
                return;
            }
            let settings = inner.group.settings.clone();
            if matches!(inner.mode, Mode::Unaccepted) {
                tracing::warn!(socket = %self.id, "the Durable Object returned a WebSocket it never accepted; closing it");
                let close = CloseFrame {
                    code: close::INTERNAL_ERROR,
                    reason: "the Durable Object did not accept its WebSocket".into(),
                };
                inner.send_close(
                    encode::close_frame(Some(&close), None),
                    usize::MAX,
                    settings.close_timeout,
                );
                inner.stop_reading(settings.close_timeout);
                inner.reporting = Reporting::Silenced;
            }
            let max_message_bytes = settings.limits.max_message_bytes;
            inner.protocol = negotiated.protocol.clone().map(Box::new);
            inner.link = Link::Attached(Connection::new(
                stream,
                &leftover,
                max_message_bytes,
                negotiated,
            ));
            self.report_state(&mut inner);
        }
        self.driver.ensure_started();
        self.schedule();
    }

    /// Moves a live hibernatable socket to `to`: its later events go to that group's owner, and
    /// its frames pass that group's gate. The connection, tags and attachment stay; frames held
    /// by the old owner's gate are dropped, since the writes before them never became durable.
    pub fn rebind(self: &Arc<Self>, to: &Arc<SocketGroup>) -> Result<(), HolderError> {
        let from = self.group();
        if Arc::ptr_eq(&from, to) {
            return Ok(());
        }
        // Two rebinds in opposite directions take the sets in the same order.
        let from_first = Arc::as_ptr(&from) < Arc::as_ptr(to);
        let (mut first, mut second) = if from_first {
            (from.sockets(), to.sockets())
        } else {
            (to.sockets(), from.sockets())
        };
        let (old_set, new_set) = if from_first {
            (&mut first, &mut second)
        } else {
            (&mut second, &mut first)
        };
        let mut inner = self.lock();
        if !Arc::ptr_eq(&inner.group, &from) {
            // Rebound meanwhile by someone else: try again from where it is now.
            drop((inner, first, second));
            return self.rebind(to);
        }
        if !matches!(inner.mode, Mode::Hibernatable { .. }) {
            return Err(HolderError::NotHibernatable);
        }
        if inner.reporting != Reporting::Open {
            return Err(HolderError::Ended);
        }
        let max = to.settings.limits.max_sockets_per_owner;
        if new_set.hibernatable_count() >= max {
            return Err(HolderError::OwnerFull(max));
        }
        old_set.remove(self.id);
        new_set.insert(self.clone(), true);
        inner.held = None;
        inner.group = to.clone();
        drop(inner);
        // Events the old owner had no room for now go to the new one.
        self.schedule();
        Ok(())
    }

    /// Queues a broadcast message, in the encoding this connection takes, unless the socket
    /// can no longer send; true if queued. A broadcast must not fail because one recipient is
    /// closing.
    pub(crate) fn send_broadcast(&self, message: &BroadcastFrames<'_>) -> bool {
        let mut inner = self.lock();
        if inner.handshake.output_ended() || matches!(inner.mode, Mode::Unaccepted) {
            return false;
        }
        let frame = message.frame(inner.compresses());
        inner.count_if_compressed(&frame);
        self.send_app(&mut inner, frame, true);
        true
    }

    /// Sends a frame the application produced: held behind the output gate while writes before
    /// it are not durable (or while earlier frames of this socket are held), sent otherwise,
    /// at once or (`defer`, for broadcasts) by the driver with whatever else queues up meanwhile.
    pub(crate) fn send_app(&self, inner: &mut Inner, frame: Bytes, defer: bool) {
        // Read through the group, not a clone of the gate: this runs per frame and per recipient.
        let tag = inner.group.gate.tag();
        if let Some(held) = &mut inner.held {
            held.push_back((tag, frame));
            let limit = inner.group.gate.limit();
            self.release_below(inner, limit);
            return;
        }
        if inner.group.gate.is_closed() && inner.group.gate.hold(&self.this(), tag) {
            inner.held = Some(Box::new(VecDeque::from([(tag, frame)])));
            return;
        }
        if !defer {
            self.enqueue(inner, frame);
        } else if inner.defer(frame, inner.max_outbound()) {
            self.schedule();
        }
    }

    /// The output gate's limit rose: sends the held frames below it (as it stands now: a turn
    /// that wrote since lowers it again). Returns whether frames are still held.
    pub(crate) fn release_held(&self) -> bool {
        let mut inner = self.lock();
        let limit = inner.group.gate.limit();
        self.release_below(&mut inner, limit);
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
    pub(crate) fn enqueue(&self, inner: &mut Inner, frame: Bytes) {
        if inner.enqueue(frame, inner.max_outbound()) {
            self.schedule();
        }
    }

    /// Answers the client's close frame (`code` and `reason` as received; 1005 for an empty
    /// one) unless a close frame was sent already: for owners whose close replies come after
    /// the handler ([`CloseReply::AfterHandler`](crate::CloseReply::AfterHandler)).
    pub fn answer_close(&self, code: u16, reason: &str) {
        let mut inner = self.lock();
        if inner.handshake.output_ended() {
            return;
        }
        let frame = (code != close::NO_STATUS).then(|| CloseFrame {
            code,
            reason: reason.to_owned(),
        });
        let timeout = inner.group.settings.close_timeout;
        inner.send_close(
            encode::close_frame(frame.as_ref(), None),
            usize::MAX,
            timeout,
        );
        drop(inner);
        self.schedule();
    }

    /// Ends the socket without an event: a reset (1011), an eviction or shutdown (1001).
    pub fn terminate(&self, code: u16, reason: &str) {
        let mut inner = self.lock();
        inner.reporting = Reporting::Silenced;
        let close = CloseFrame {
            code,
            reason: reason.to_owned(),
        };
        let (limit, timeout) = (inner.max_outbound(), inner.group.settings.close_timeout);
        let frame = Self::ending_frame(&inner, code, encode::close_frame(Some(&close), None));
        inner.send_close(frame, limit, timeout);
        inner.stop_reading(timeout);
        if matches!(inner.link, Link::Pending) {
            inner.handshake = Handshake::Lost;
        }
        if let Mode::Standard(channel) = &inner.mode {
            channel.close();
        }
        self.schedule();
    }
}
