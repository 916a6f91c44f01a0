//! The I/O task of one connected socket.
//!
//! The task waits for readiness only; it owns no read buffer between frames. Readable bytes go
//! into a buffer shared by every socket on the thread and are decoded there; only an incomplete
//! frame is copied into a private buffer, which is freed as soon as the frame completes. Pings,
//! auto-responses and the reply to a close frame are answered right here, without the object;
//! every other frame becomes an event, delivered in order before the next read.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{ErrorKind as IoErrorKind, IoSlice};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use dormouse_sdk::WebSocketIncomingMessage;
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::frame::Opcode;
use dormouse_ws::{Message, MessageDecoder, ProtocolError, Role, encode};
use tokio::net::TcpStream;

use super::{DISCONNECTED, Inner, Mode, SocketRecord};
use crate::object::SocketEvent;

/// Size of the per-thread read buffer: one syscall reads many small frames at once.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Bytes one socket may read per wake-up before letting other sockets run.
const READ_BUDGET: usize = 256 * 1024;

/// Frames gathered into one vectored write.
const WRITE_BATCH: usize = 16;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER_BYTES].into_boxed_slice());
}

/// What the task waits for.
enum Ready {
    /// Bytes (or EOF, or an error) can be read.
    Readable,
    /// The socket is done: closed both ways and flushed, or the connection is gone.
    Finished,
}

pub(super) async fn drive(record: Arc<SocketRecord>, stream: Arc<TcpStream>, leftover: Bytes) {
    let mut reader = Reader {
        decoder: MessageDecoder::new(Role::Server, record.limits().max_message_bytes),
        partial: leftover.to_vec(),
    };
    let mut terminal_sent = false;
    // Bytes that arrived with the handshake may hold whole frames; decode them before waiting.
    let mut pending = Vec::new();
    if !reader.partial.is_empty() && record.reading() {
        reader.decode_partial(&record, &mut pending);
    }
    loop {
        for event in pending.drain(..) {
            terminal_sent |= event.is_terminal();
            Box::pin(record.dispatch_flushing(event, &stream)).await;
        }
        match poll_fn(|cx| record.poll_io(cx, &stream)).await {
            Ready::Finished => break,
            Ready::Readable => reader.read(&record, &stream, &mut pending),
        }
    }
    if !terminal_sent {
        let event = SocketEvent::Close {
            code: close::ABNORMAL,
            reason: DISCONNECTED.into(),
            was_clean: false,
        };
        record.dispatch(event).await;
    }
    // Dropping the last reference to the stream closes the connection: after a completed close
    // handshake the server closes first, as RFC 6455 §7.1.1 asks.
    record.detach();
}

/// Decoding state of one socket.
struct Reader {
    decoder: MessageDecoder,
    /// Bytes of an incomplete frame; empty (and unallocated) between frames.
    partial: Vec<u8>,
}

enum ReadOutcome {
    Read(usize),
    Blocked,
    Ended,
}

impl Reader {
    /// Reads what is available (up to the budget) and decodes it into `events`.
    fn read(&mut self, record: &SocketRecord, stream: &TcpStream, events: &mut Vec<SocketEvent>) {
        let mut budget = READ_BUDGET;
        loop {
            let outcome = if self.partial.is_empty() {
                self.read_shared(record, stream, events)
            } else {
                self.read_partial(record, stream, events)
            };
            match outcome {
                ReadOutcome::Read(n) => {
                    budget = budget.saturating_sub(n);
                    if budget == 0 || !record.reading() {
                        return;
                    }
                }
                ReadOutcome::Blocked => return,
                ReadOutcome::Ended => {
                    record.on_disconnect(events);
                    return;
                }
            }
        }
    }

    /// Reads into the thread's buffer and decodes in place.
    fn read_shared(
        &mut self,
        record: &SocketRecord,
        stream: &TcpStream,
        events: &mut Vec<SocketEvent>,
    ) -> ReadOutcome {
        READ_BUFFER.with_borrow_mut(|buffer| match stream.try_read(buffer) {
            Ok(0) => ReadOutcome::Ended,
            Ok(n) => {
                self.decode_slice(record, &mut buffer[..n], events);
                ReadOutcome::Read(n)
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => ReadOutcome::Blocked,
            Err(_) => ReadOutcome::Ended,
        })
    }

    /// Reads the rest of an incomplete frame straight into the private buffer.
    fn read_partial(
        &mut self,
        record: &SocketRecord,
        stream: &TcpStream,
        events: &mut Vec<SocketEvent>,
    ) -> ReadOutcome {
        if self.partial.capacity() == self.partial.len() {
            self.partial.reserve(READ_BUFFER_BYTES);
        }
        match stream.try_read_buf(&mut self.partial) {
            Ok(0) => ReadOutcome::Ended,
            Ok(n) => {
                self.decode_partial(record, events);
                ReadOutcome::Read(n)
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => ReadOutcome::Blocked,
            Err(_) => ReadOutcome::Ended,
        }
    }

    /// Decodes frames from `bytes`; keeps an incomplete tail in the private buffer.
    fn decode_slice(
        &mut self,
        record: &SocketRecord,
        bytes: &mut [u8],
        events: &mut Vec<SocketEvent>,
    ) {
        let mut at = 0;
        while at < bytes.len() {
            match self.decoder.decode(&mut bytes[at..]) {
                Ok(step) if step.consumed == 0 => {
                    let tail = &bytes[at..];
                    self.partial = Vec::with_capacity(step.needed.unwrap_or(0).max(tail.len()));
                    self.partial.extend_from_slice(tail);
                    return;
                }
                Ok(step) => {
                    at += step.consumed;
                    if let Some(message) = step.message
                        && !record.on_message(message, events)
                    {
                        return;
                    }
                }
                Err(error) => {
                    record.on_protocol_error(&error, events);
                    return;
                }
            }
        }
    }

    /// Decodes frames from the private buffer, then drops what was consumed.
    fn decode_partial(&mut self, record: &SocketRecord, events: &mut Vec<SocketEvent>) {
        let mut at = 0;
        loop {
            match self.decoder.decode(&mut self.partial[at..]) {
                Ok(step) if step.consumed == 0 => {
                    if let Some(needed) = step.needed {
                        self.partial
                            .reserve(needed.saturating_sub(self.partial.len() - at));
                    }
                    break;
                }
                Ok(step) => {
                    at += step.consumed;
                    if let Some(message) = step.message
                        && !record.on_message(message, events)
                    {
                        break;
                    }
                    if at == self.partial.len() {
                        break;
                    }
                }
                Err(error) => {
                    record.on_protocol_error(&error, events);
                    break;
                }
            }
        }
        if at == self.partial.len() || !record.reading() {
            // Free the buffer: an idle socket keeps none.
            self.partial = Vec::new();
        } else {
            self.partial.drain(..at);
        }
    }
}

impl SocketRecord {
    /// Whether frames should be read: the socket is accepted and the peer has not closed.
    fn reading(&self) -> bool {
        let inner = self.lock();
        !inner.close_received && !inner.gone && !matches!(inner.mode, Mode::Unaccepted)
    }

    /// Flushes queued output, then waits for the socket to be readable or finished.
    fn poll_io(&self, cx: &mut Context<'_>, stream: &TcpStream) -> Poll<Ready> {
        self.io_waker.register(cx.waker());
        let reading = {
            let mut inner = self.lock();
            self.flush(&mut inner, stream, cx);
            if inner.gone || (inner.close_sent && inner.close_received && inner.outbound.is_empty())
            {
                return Poll::Ready(Ready::Finished);
            }
            !inner.close_received && !matches!(inner.mode, Mode::Unaccepted)
        };
        if reading && stream.poll_read_ready(cx).is_ready() {
            return Poll::Ready(Ready::Readable);
        }
        Poll::Pending
    }

    /// Writes queued frames until the kernel pushes back, then asks to be woken when writable.
    fn flush(&self, inner: &mut Inner, stream: &TcpStream, cx: &mut Context<'_>) {
        while !inner.outbound.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
                let count = inner.outbound.len().min(WRITE_BATCH);
                for (slot, frame) in slices.iter_mut().zip(inner.outbound.iter()) {
                    *slot = IoSlice::new(frame);
                }
                stream.try_write_vectored(&slices[..count])
            };
            match written {
                Ok(written) => consume(inner, written),
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {
                    match stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(_)) => return self.lose_connection(inner),
                        Poll::Pending => return,
                    }
                }
                Err(_) => return self.lose_connection(inner),
            }
        }
        if inner.outbound.capacity() > 0 {
            // Return the queue's memory: idle sockets hold no buffers.
            inner.outbound = Default::default();
        }
    }

    /// Delivers an event while continuing to flush output, so that a full mailbox does not stall
    /// this socket's outgoing messages.
    async fn dispatch_flushing(self: &Arc<Self>, event: SocketEvent, stream: &TcpStream) {
        let dispatch = self.dispatch(event);
        tokio::pin!(dispatch);
        poll_fn(|cx| {
            if dispatch.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.io_waker.register(cx.waker());
            let mut inner = self.lock();
            self.flush(&mut inner, stream, cx);
            Poll::Pending
        })
        .await
    }

    /// Handles one decoded message; false when reading must stop.
    fn on_message(&self, message: Message, events: &mut Vec<SocketEvent>) -> bool {
        match message {
            Message::Text(text) => {
                if !self.auto_respond(text.as_bytes(), false) {
                    events.push(SocketEvent::Message(WebSocketIncomingMessage::String(text)));
                }
            }
            Message::Binary(data) => {
                if !self.auto_respond(&data, true) {
                    events.push(SocketEvent::Message(WebSocketIncomingMessage::Binary(data)));
                }
            }
            Message::Ping(payload) => {
                self.send_control(encode::pong_frame(&payload, None));
                self.cell.namespace.metrics.pongs.fetch_add(1, Relaxed);
            }
            Message::Pong(_) => {}
            Message::Close(frame) => {
                let (code, reason) = frame
                    .as_ref()
                    .map_or((close::NO_STATUS, String::new()), |f| {
                        (f.code, f.reason.clone())
                    });
                let mut inner = self.lock();
                inner.close_received = true;
                if !inner.close_sent && !inner.gone {
                    // Answer with the same code and reason before the object hears of it, so a
                    // client never waits on an application that forgot to reply.
                    self.enqueue(&mut inner, encode::close_frame(frame.as_ref(), None));
                    inner.close_sent = true;
                }
                drop(inner);
                events.push(SocketEvent::Close {
                    code,
                    reason,
                    was_clean: true,
                });
                return false;
            }
        }
        true
    }

    /// Answers a matching auto-response pair; true if the message was consumed.
    fn auto_respond(&self, payload: &[u8], binary: bool) -> bool {
        let frame = {
            let pairs = self.cell.auto_responses.read().expect("auto-response lock");
            if pairs.is_empty() {
                return false;
            }
            let Some(pair) = pairs
                .iter()
                .find(|p| p.is_binary() == binary && p.request_bytes() == payload)
            else {
                return false;
            };
            let opcode = if binary { Opcode::Binary } else { Opcode::Text };
            encode::frame(true, opcode, pair.response_bytes(), None)
        };
        let mut inner = self.lock();
        if !matches!(inner.mode, Mode::Hibernatable { .. }) {
            return false;
        }
        inner.auto_response_at = Some(SystemTime::now());
        if !inner.gone && !inner.close_sent {
            self.enqueue(&mut inner, frame);
        }
        drop(inner);
        self.cell
            .namespace
            .metrics
            .auto_responses
            .fetch_add(1, Relaxed);
        true
    }

    /// The peer broke the protocol: close with the matching code, report the error, stop reading.
    fn on_protocol_error(&self, error: &ProtocolError, events: &mut Vec<SocketEvent>) {
        let reason = error.to_string();
        let mut inner = self.lock();
        if !inner.close_sent && !inner.gone {
            let close = CloseFrame {
                code: error.close_code(),
                reason: close::truncate_reason(&reason).to_owned(),
            };
            self.enqueue(&mut inner, encode::close_frame(Some(&close), None));
            inner.close_sent = true;
        }
        inner.close_received = true;
        drop(inner);
        tracing::debug!(socket = %self.id, %error, "protocol error");
        events.push(SocketEvent::Error(reason));
    }

    /// The connection ended (EOF or a read error).
    fn on_disconnect(&self, events: &mut Vec<SocketEvent>) {
        let mut inner = self.lock();
        let already_closed = inner.close_received;
        inner.close_received = true;
        inner.gone = true;
        drop(inner);
        if !already_closed {
            events.push(SocketEvent::Close {
                code: close::ABNORMAL,
                reason: DISCONNECTED.into(),
                was_clean: false,
            });
        }
    }
}

/// Drops `written` bytes from the front of the queue.
fn consume(inner: &mut Inner, mut written: usize) {
    inner.outbound_bytes -= written;
    while written > 0 {
        let front = inner
            .outbound
            .front_mut()
            .expect("written bytes were queued");
        if written >= front.len() {
            written -= front.len();
            inner.outbound.pop_front();
        } else {
            *front = front.slice(written..);
            written = 0;
        }
    }
}
