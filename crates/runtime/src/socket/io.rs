//! Reading and writing one connected socket, one driver step at a time.
//!
//! A step flushes queued output, reads what is readable into a buffer shared by every socket on
//! the thread, and decodes it there; only an incomplete frame is copied into a private buffer,
//! freed as soon as the frame completes. Pings, auto-responses and the reply to a close frame are
//! answered here, without the object; every other frame becomes an event. Events are delivered in
//! order; when the object's mailbox is full they wait in the socket (which stops reading) until
//! the object frees space and wakes it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, IoSlice};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use dormouse_sdk::WebSocketIncomingMessage;
use dormouse_ws::close::{self, CloseFrame};

use crate::guest::CloseReply;
use dormouse_ws::frame::Opcode;
use dormouse_ws::{Message, MessageDecoder, ProtocolError, Role, encode};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::progress::OutputProgress;
use super::{DISCONNECTED, Inner, Link, Mode, Outbound, SocketRecord, has_queued};
use crate::object::{ObjectCell, SocketEvent};

/// Size of the per-thread read buffer: one syscall reads many small frames at once.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Bytes one socket may read per driver step before letting other sockets run.
const READ_BUDGET: usize = 256 * 1024;

/// Frames gathered into one vectored write: a storm of small broadcasts (every join announced to a
/// room of thousands) costs a socket one system call per this many frames (the kernel takes up to
/// 1,024).
const WRITE_BATCH: usize = 64;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER_BYTES].into_boxed_slice());
    /// Room for the events of one step, reused so that a message costs no allocation here. Taken
    /// out while in use: a nested step (none is expected) would simply start with a fresh one.
    static EVENTS: Cell<Vec<SocketEvent>> = const { Cell::new(Vec::new()) };
}

/// The network side of an attached socket.
pub(super) struct Connection {
    pub(super) stream: TcpStream,
    decoder: MessageDecoder,
    /// Bytes of an incomplete frame; empty (and unallocated) between frames.
    partial: Vec<u8>,
    /// Events that a full mailbox (or a full standard stream) has not taken yet; nothing more is
    /// read until they are delivered.
    pending: VecDeque<SocketEvent>,
    /// How far the output has got, for pings queued behind it.
    pub(super) progress: OutputProgress,
}

impl Connection {
    pub(super) fn new(stream: TcpStream, leftover: &[u8], max_message_bytes: usize) -> Self {
        Connection {
            stream,
            decoder: MessageDecoder::new(Role::Server, max_message_bytes),
            partial: leftover.to_vec(),
            pending: VecDeque::new(),
            progress: OutputProgress::default(),
        }
    }
}

/// What a read step found.
enum Step {
    /// More may be readable within the budget.
    Again,
    /// The budget is spent; run again later.
    Yield,
    /// Nothing to do until tokio (or the runtime) wakes the socket.
    Wait,
    /// Closed both ways and flushed, or the connection is gone.
    Finished,
}

impl SocketRecord {
    /// One driver step: deliver held events, flush, read and decode, or finish.
    pub(super) fn poll_step(&self, cx: &mut Context<'_>) {
        let mut events = EVENTS.take();
        self.step_with(cx, &mut events);
        events.clear();
        EVENTS.set(events);
    }

    fn step_with(&self, cx: &mut Context<'_>, events: &mut Vec<SocketEvent>) {
        if !self.deliver_pending(cx) {
            self.lock_and_flush(cx);
            return;
        }
        let mut budget = READ_BUDGET;
        loop {
            let step = self.read_step(cx, events, &mut budget);
            if !self.deliver(events, cx) {
                return;
            }
            match step {
                Step::Again => continue,
                Step::Yield => return self.schedule(),
                Step::Wait => return,
                Step::Finished => return self.finish(cx),
            }
        }
    }

    /// Reads and decodes under the socket's lock; events are delivered after it is released.
    fn read_step(
        &self,
        cx: &mut Context<'_>,
        events: &mut Vec<SocketEvent>,
        budget: &mut usize,
    ) -> Step {
        let mut guard = self.lock();
        let inner = &mut *guard;
        flush(inner, cx);
        let Link::Attached(connection) = &mut inner.link else {
            return Step::Wait;
        };
        if inner.gone || (inner.close_sent && inner.close_received && !has_queued(&inner.outbound))
        {
            return Step::Finished;
        }
        if inner.close_received || matches!(inner.mode, Mode::Unaccepted) {
            return Step::Wait;
        }
        // Bytes already buffered (from the handshake, or a frame completed earlier) come first.
        if !connection.partial.is_empty() && !inner.ended {
            let mut decoder = take_decoder(connection);
            let mut partial = std::mem::take(&mut connection.partial);
            let consumed = decode(&mut decoder, &self.cell, inner, &mut partial, events);
            keep_tail(inner, decoder, partial, consumed);
            if !events.is_empty() || inner.ended {
                flush(inner, cx);
                return Step::Again;
            }
        }
        let Link::Attached(connection) = &mut inner.link else {
            return Step::Wait;
        };
        let read = if connection.partial.is_empty() {
            read_shared(&self.cell, inner, events, cx)
        } else if connection.stream.poll_read_ready(cx).is_pending() {
            return Step::Wait;
        } else {
            read_partial(&self.cell, inner, events)
        };
        if matches!(read, Read::Bytes(_)) {
            // Any traffic proves the peer is alive.
            inner.last_heard_ms = super::clock_ms();
            inner.ping_sent_ms = 0;
        }
        let step = match read {
            Read::Waiting => Step::Wait,
            Read::Bytes(n) if n >= *budget => Step::Yield,
            Read::Bytes(n) => {
                *budget -= n;
                Step::Again
            }
            Read::Blocked => Step::Again,
            Read::Ended => {
                on_disconnect(inner, events);
                Step::Again
            }
        };
        flush(inner, cx);
        step
    }

    /// Hands events over in order (leaving `events` empty); keeps the rest in the socket if a
    /// mailbox is full. False when something is held back (the socket is woken once there is
    /// room).
    fn deliver(&self, events: &mut Vec<SocketEvent>, cx: &mut Context<'_>) -> bool {
        let mut events = events.drain(..);
        while let Some(event) = events.next() {
            if let Err(event) = self.try_dispatch(event, cx) {
                let mut inner = self.lock();
                if let Link::Attached(connection) = &mut inner.link {
                    connection.pending.push_back(event);
                    connection.pending.extend(events);
                }
                return false;
            }
        }
        true
    }

    /// Delivers events held back by a full mailbox; true when none are left.
    fn deliver_pending(&self, cx: &mut Context<'_>) -> bool {
        let mut delivered = false;
        loop {
            let event = {
                let mut inner = self.lock();
                let Link::Attached(connection) = &mut inner.link else {
                    return true;
                };
                match connection.pending.pop_front() {
                    Some(event) => event,
                    None => {
                        // A backlog is rare and short: an idle socket keeps no buffer for it.
                        connection.pending = VecDeque::new();
                        break;
                    }
                }
            };
            if let Err(event) = self.try_dispatch(event, cx) {
                if let Link::Attached(connection) = &mut self.lock().link {
                    connection.pending.push_front(event);
                }
                return false;
            }
            delivered = true;
        }
        if delivered {
            self.cell.pass_on_space(self.limits());
        }
        true
    }

    /// Offers one event to its consumer; gives it back (after registering to be woken) if the
    /// consumer has no room.
    fn try_dispatch(&self, event: SocketEvent, cx: &mut Context<'_>) -> Result<(), SocketEvent> {
        let channel = {
            let inner = self.lock();
            if inner.silenced {
                return Ok(());
            }
            match &inner.mode {
                Mode::Hibernatable { .. } => None,
                Mode::Standard(channel) => Some(channel.clone()),
                Mode::Unaccepted => return Ok(()),
            }
        };
        match channel {
            Some(channel) => {
                self.cell.note_activity();
                channel.try_push(event, cx.waker())
            }
            None => {
                let this = self.this.upgrade().expect("a polled socket is alive");
                self.cell
                    .try_deliver_socket(this, event, self.limits(), cx.waker())
            }
        }
    }

    /// The socket is done: report a lost connection if nothing else ended it, then close it.
    fn finish(&self, cx: &mut Context<'_>) {
        let lost = {
            let mut inner = self.lock();
            let lost = !std::mem::replace(&mut inner.ended, true) && !inner.silenced;
            lost.then_some(inner.end)
        };
        if let Some(cause) = lost {
            if let Some(counter) = cause.drop_counter(&self.cell.namespace.metrics.dropped) {
                counter.fetch_add(1, Relaxed);
            }
            let (code, reason) = cause.close(self.limits());
            let event = SocketEvent::Close {
                code,
                reason,
                was_clean: false,
            };
            if !self.deliver(&mut vec![event], cx) {
                return;
            }
        }
        let (link, standard) = {
            let mut inner = self.lock();
            inner.lose_connection();
            let link = std::mem::replace(&mut inner.link, Link::Detached);
            let standard = match &inner.mode {
                Mode::Standard(channel) => {
                    channel.close();
                    true
                }
                _ => false,
            };
            (link, standard)
        };
        // Dropping the stream closes the connection (after a completed close handshake the server
        // closes first, as RFC 6455 §7.1.1 asks) and clears tokio's hold on this socket's waker.
        drop(link);
        if standard {
            self.cell
                .sockets
                .lock()
                .expect("socket set lock")
                .remove(self.id);
            self.cell.note_activity();
        }
    }

    fn lock_and_flush(&self, cx: &mut Context<'_>) {
        flush(&mut self.lock(), cx);
    }
}

/// Writes queued frames until the kernel pushes back, then asks to be woken when writable.
fn flush(inner: &mut Inner, cx: &mut Context<'_>) {
    let Link::Attached(connection) = &mut inner.link else {
        return;
    };
    let Some(outbound) = &mut inner.outbound else {
        return;
    };
    let failed = loop {
        if outbound.frames.is_empty() {
            break false;
        }
        let written = if outbound.frames.len() == 1 {
            // A plain send: cheaper in the kernel than a vectored write of one buffer.
            connection.stream.try_write(&outbound.frames[0])
        } else {
            let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
            let count = outbound.frames.len().min(WRITE_BATCH);
            for (slot, frame) in slices.iter_mut().zip(outbound.frames.iter()) {
                *slot = IoSlice::new(frame);
            }
            connection.stream.try_write_vectored(&slices[..count])
        };
        match written {
            Ok(written) => {
                connection.progress.wrote(written);
                outbound.consume(written);
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => {
                match connection.stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => break true,
                    Poll::Pending => return,
                }
            }
            Err(_) => break true,
        }
    };
    // An emptied queue stays for the next burst (a busy socket would otherwise allocate it
    // again for every message); the liveness sweep returns it once the socket is idle.
    if failed {
        inner.lose_connection();
    }
}

enum Read {
    Bytes(usize),
    /// Nothing was readable; try again.
    Blocked,
    /// Nothing is readable, and tokio will wake the socket when something is.
    Waiting,
    Ended,
}

/// Reads into the thread's buffer and decodes in place; an incomplete tail is kept privately.
///
/// Reads through tokio's `poll_read`, which takes a read that did not fill the buffer as proof
/// that the socket is drained: the next step waits for readiness instead of spending a system
/// call to hear "would block".
fn read_shared(
    cell: &ObjectCell,
    inner: &mut Inner,
    events: &mut Vec<SocketEvent>,
    cx: &mut Context<'_>,
) -> Read {
    READ_BUFFER.with_borrow_mut(|buffer| {
        let Link::Attached(connection) = &mut inner.link else {
            return Read::Blocked;
        };
        let mut filled = ReadBuf::new(&mut buffer[..]);
        let n = match Pin::new(&mut connection.stream).poll_read(cx, &mut filled) {
            Poll::Ready(Ok(())) if filled.filled().is_empty() => return Read::Ended,
            Poll::Ready(Ok(())) => filled.filled().len(),
            Poll::Ready(Err(_)) => return Read::Ended,
            Poll::Pending => return Read::Waiting,
        };
        let mut decoder = take_decoder(connection);
        let bytes = &mut buffer[..n];
        let consumed = decode(&mut decoder, cell, inner, bytes, events);
        let tail = if consumed < n && !inner.ended {
            bytes[consumed..].to_vec()
        } else {
            Vec::new()
        };
        keep_tail(inner, decoder, tail, 0);
        Read::Bytes(n)
    })
}

/// Reads the rest of an incomplete frame straight into the private buffer, then decodes it.
fn read_partial(cell: &ObjectCell, inner: &mut Inner, events: &mut Vec<SocketEvent>) -> Read {
    let Link::Attached(connection) = &mut inner.link else {
        return Read::Blocked;
    };
    if connection.partial.capacity() == connection.partial.len() {
        connection.partial.reserve(READ_BUFFER_BYTES);
    }
    let n = match connection.stream.try_read_buf(&mut connection.partial) {
        Ok(0) => return Read::Ended,
        Ok(n) => n,
        Err(e) if e.kind() == IoErrorKind::WouldBlock => return Read::Blocked,
        Err(_) => return Read::Ended,
    };
    let mut decoder = take_decoder(connection);
    let mut partial = std::mem::take(&mut connection.partial);
    let consumed = decode(&mut decoder, cell, inner, &mut partial, events);
    keep_tail(inner, decoder, partial, consumed);
    Read::Bytes(n)
}

/// Moves the decoder out of the connection so that decoding can act on the rest of the socket.
fn take_decoder(connection: &mut Connection) -> MessageDecoder {
    std::mem::replace(
        &mut connection.decoder,
        MessageDecoder::new(Role::Server, 0),
    )
}

/// Puts the decoder back and keeps the undecoded bytes of `buffer` (from `consumed` on), sized
/// for the frame they start, or frees the buffer when nothing is left.
fn keep_tail(inner: &mut Inner, decoder: MessageDecoder, mut buffer: Vec<u8>, consumed: usize) {
    let Link::Attached(connection) = &mut inner.link else {
        return;
    };
    if consumed >= buffer.len() || inner.ended {
        buffer = Vec::new();
    } else if consumed > 0 {
        buffer.drain(..consumed);
    }
    connection.decoder = decoder;
    connection.partial = buffer;
}

/// Decodes whole frames from `bytes`; returns how many bytes were consumed. Stops at the end of
/// the socket's input (a close frame or a protocol error).
fn decode(
    decoder: &mut MessageDecoder,
    cell: &ObjectCell,
    inner: &mut Inner,
    bytes: &mut [u8],
    events: &mut Vec<SocketEvent>,
) -> usize {
    let mut at = 0;
    while at < bytes.len() && !inner.ended {
        match decoder.decode(&mut bytes[at..]) {
            Ok(step) if step.consumed == 0 => break,
            Ok(step) => {
                at += step.consumed;
                if let Some(message) = step.message {
                    on_message(cell, inner, message, events);
                }
            }
            Err(error) => {
                on_protocol_error(cell, inner, &error, events);
                break;
            }
        }
    }
    at
}

/// Handles one decoded message.
fn on_message(
    cell: &ObjectCell,
    inner: &mut Inner,
    message: Message,
    events: &mut Vec<SocketEvent>,
) {
    match message {
        Message::Text(text) => {
            if !auto_respond(cell, inner, text.as_bytes(), false) {
                events.push(SocketEvent::Message(WebSocketIncomingMessage::String(text)));
            }
        }
        Message::Binary(data) => {
            if !auto_respond(cell, inner, &data, true) {
                events.push(SocketEvent::Message(WebSocketIncomingMessage::Binary(data)));
            }
        }
        Message::Ping(payload) => {
            if !inner.gone && !inner.close_sent {
                let limit = cell.namespace.config.limits.max_outbound_bytes;
                inner.enqueue(encode::pong_frame(&payload, None), limit);
            }
            cell.namespace.metrics.pongs.fetch_add(1, Relaxed);
        }
        Message::Pong(_) => {}
        Message::Close(frame) => {
            let (code, reason) = frame
                .as_ref()
                .map_or((close::NO_STATUS, String::new()), |f| {
                    (f.code, f.reason.clone())
                });
            inner.close_received = true;
            if !inner.close_sent && !inner.gone {
                let timeout = cell.namespace.config.ping_timeout;
                match cell.namespace.close_reply {
                    // Answer with the same code and reason before the object hears of it, so
                    // that a client never waits on an application that forgot to reply.
                    CloseReply::Immediate => {
                        inner.enqueue(encode::close_frame(frame.as_ref(), None), usize::MAX);
                        inner.start_closing(timeout);
                    }
                    // The object's handler answers (or the runtime, after it); the handshake
                    // still has its deadline if the object never gets to it.
                    CloseReply::AfterHandler => {
                        inner.close_deadline_ms = super::clock_ms() + timeout.as_millis() as u64;
                    }
                }
            }
            inner.ended = true;
            events.push(SocketEvent::Close {
                code,
                reason,
                was_clean: true,
            });
        }
    }
}

/// Answers a matching auto-response pair of a hibernatable socket; true if it consumed the message.
fn auto_respond(cell: &ObjectCell, inner: &mut Inner, payload: &[u8], binary: bool) -> bool {
    if !matches!(inner.mode, Mode::Hibernatable { .. }) {
        return false;
    }
    let frame = {
        let pairs = cell.auto_responses.read().expect("auto-response lock");
        let Some(pair) = pairs
            .iter()
            .find(|p| p.is_binary() == binary && p.request_bytes() == payload)
        else {
            return false;
        };
        let opcode = if binary { Opcode::Binary } else { Opcode::Text };
        encode::frame(true, opcode, pair.response_bytes(), None)
    };
    inner.auto_response_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis().max(1) as u64);
    if !inner.gone && !inner.close_sent {
        inner.enqueue(frame, cell.namespace.config.limits.max_outbound_bytes);
    }
    cell.namespace.metrics.auto_responses.fetch_add(1, Relaxed);
    true
}

/// The peer broke the protocol: close with the matching code, report the error, stop reading.
fn on_protocol_error(
    cell: &ObjectCell,
    inner: &mut Inner,
    error: &ProtocolError,
    events: &mut Vec<SocketEvent>,
) {
    let reason = error.to_string();
    if !inner.close_sent && !inner.gone {
        let close = CloseFrame {
            code: error.close_code(),
            reason: close::truncate_reason(&reason).to_owned(),
        };
        inner.enqueue(encode::close_frame(Some(&close), None), usize::MAX);
        inner.start_closing(cell.namespace.config.ping_timeout);
    }
    inner.close_received = true;
    inner.ended = true;
    tracing::debug!(%error, "protocol error");
    events.push(SocketEvent::Error(reason));
}

/// The connection ended (EOF or a read error) without a close frame.
fn on_disconnect(inner: &mut Inner, events: &mut Vec<SocketEvent>) {
    inner.close_received = true;
    inner.gone = true;
    if !std::mem::replace(&mut inner.ended, true) {
        events.push(SocketEvent::Close {
            code: close::ABNORMAL,
            reason: DISCONNECTED.into(),
            was_clean: false,
        });
    }
}

impl Outbound {
    /// Drops `written` bytes from the front of the queue.
    fn consume(&mut self, mut written: usize) {
        self.bytes -= written;
        while written > 0 {
            let front = self.frames.front_mut().expect("written bytes were queued");
            if written >= front.len() {
                written -= front.len();
                self.frames.pop_front();
            } else {
                *front = front.slice(written..);
                written = 0;
            }
        }
    }
}
