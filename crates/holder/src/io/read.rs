//! The read half of a driver step: reads, decodes, and answers what needs no owner (pings,
//! auto-responses, the reply to a close frame, protocol errors).

use std::cell::RefCell;
use std::io::ErrorKind as IoErrorKind;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use dormouse_sdk::WebSocketIncomingMessage;
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::{Message, MessageDecoder, ProtocolError, Role, encode};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Connection, Step, flush, is_finished};
use crate::config::CloseReply;
use crate::owner::SocketEvent;
use crate::record::state::{DISCONNECTED, Handshake, Link, Mode, Reporting, Tick};
use crate::record::{Inner, SocketRecord};

/// Size of the per-thread read buffer: one syscall reads many small frames at once.
const READ_BUFFER_BYTES: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER_BYTES].into_boxed_slice());
}

impl SocketRecord {
    /// Reads and decodes under the socket's lock; events are delivered after it is released.
    pub(super) fn read_step(
        &self,
        cx: &mut Context<'_>,
        events: &mut Vec<SocketEvent>,
        budget: &mut usize,
    ) -> Step {
        let mut guard = self.lock();
        let inner = &mut *guard;
        flush(inner, cx);
        if !matches!(inner.link, Link::Attached(_)) {
            return Step::Wait;
        }
        if is_finished(inner) {
            return Step::Finished;
        }
        if inner.handshake.input_ended() || matches!(inner.mode, Mode::Unaccepted) {
            return Step::Wait;
        }
        let Link::Attached(connection) = &mut inner.link else {
            return Step::Wait;
        };
        // Bytes already buffered (from the handshake, or a frame completed earlier) come first.
        if !connection.partial.is_empty() && inner.reporting == Reporting::Open {
            let mut decoder = take_decoder(connection);
            let mut partial = std::mem::take(&mut connection.partial);
            let consumed = decode(&mut decoder, inner, &mut partial, events);
            keep_tail(inner, decoder, partial, consumed);
            if !events.is_empty() || inner.reporting != Reporting::Open {
                flush(inner, cx);
                return Step::Again;
            }
        }
        let Link::Attached(connection) = &mut inner.link else {
            return Step::Wait;
        };
        let read = if connection.partial.is_empty() {
            read_shared(inner, events, cx)
        } else if connection.stream.poll_read_ready(cx).is_pending() {
            return Step::Wait;
        } else {
            read_partial(inner, events)
        };
        if matches!(read, Read::Bytes(_)) {
            // Any traffic proves the peer is alive.
            inner.last_heard = Tick::at(crate::clock_ms());
            inner.ping_sent = None;
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
fn read_shared(inner: &mut Inner, events: &mut Vec<SocketEvent>, cx: &mut Context<'_>) -> Read {
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
        let consumed = decode(&mut decoder, inner, bytes, events);
        let tail = if consumed < n && inner.reporting == Reporting::Open {
            bytes[consumed..].to_vec()
        } else {
            Vec::new()
        };
        keep_tail(inner, decoder, tail, 0);
        Read::Bytes(n)
    })
}

/// Reads the rest of an incomplete frame straight into the private buffer, then decodes it.
fn read_partial(inner: &mut Inner, events: &mut Vec<SocketEvent>) -> Read {
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
    let consumed = decode(&mut decoder, inner, &mut partial, events);
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

/// Puts the decoder back and keeps the undecoded bytes of `buffer` (from `consumed` on), or
/// frees the buffer when nothing is left.
fn keep_tail(inner: &mut Inner, decoder: MessageDecoder, mut buffer: Vec<u8>, consumed: usize) {
    let ended = inner.reporting != Reporting::Open;
    let Link::Attached(connection) = &mut inner.link else {
        return;
    };
    if consumed >= buffer.len() || ended {
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
    inner: &mut Inner,
    bytes: &mut [u8],
    events: &mut Vec<SocketEvent>,
) -> usize {
    let mut at = 0;
    while at < bytes.len() && inner.reporting == Reporting::Open {
        match decoder.decode(&mut bytes[at..]) {
            Ok(step) if step.consumed == 0 => break,
            Ok(step) => {
                at += step.consumed;
                if step.inflated {
                    let counters = &inner.group.settings.counters;
                    counters.compressed_received.fetch_add(1, Relaxed);
                }
                if let Some(message) = step.message {
                    on_message(inner, message, events);
                }
            }
            Err(error) => {
                on_protocol_error(inner, error, events);
                break;
            }
        }
    }
    at
}

/// Handles one decoded message.
fn on_message(inner: &mut Inner, message: Message, events: &mut Vec<SocketEvent>) {
    match message {
        Message::Text(text) => {
            if !auto_respond(inner, text.as_bytes(), false) {
                events.push(SocketEvent::Message(WebSocketIncomingMessage::String(text)));
            }
        }
        Message::Binary(data) => {
            if !auto_respond(inner, &data, true) {
                events.push(SocketEvent::Message(WebSocketIncomingMessage::Binary(data)));
            }
        }
        Message::Ping(payload) => {
            if !inner.handshake.output_ended() {
                let limit = inner.max_outbound();
                inner.enqueue(encode::pong_frame(&payload, None), limit);
            }
            inner.group.settings.counters.pongs.fetch_add(1, Relaxed);
        }
        Message::Pong(_) => {}
        Message::Close(frame) => {
            let (code, reason) = frame
                .as_ref()
                .map_or((close::NO_STATUS, String::new()), |f| {
                    (f.code, f.reason.clone())
                });
            let settings = inner.group.settings.clone();
            let timeout = settings.close_timeout;
            if inner.handshake == Handshake::Open && settings.close_reply == CloseReply::Immediate {
                // Answer with the same code and reason before the owner hears of it, so that a
                // client never waits on an application that forgot to reply.
                inner.send_close(
                    encode::close_frame(frame.as_ref(), None),
                    usize::MAX,
                    timeout,
                );
            }
            // Otherwise the owner's handler answers (or the runtime, after it); the handshake
            // still has its deadline if the owner never gets to it.
            inner.stop_reading(timeout);
            inner.reporting = Reporting::Ended;
            events.push(SocketEvent::Close {
                code,
                reason,
                was_clean: true,
            });
        }
    }
}

/// Answers a matching auto-response pair of a hibernatable socket; true if it consumed the message.
fn auto_respond(inner: &mut Inner, payload: &[u8], binary: bool) -> bool {
    if !matches!(inner.mode, Mode::Hibernatable { .. }) {
        return false;
    }
    let Some(frame) = inner.group.auto_response(payload, binary) else {
        return false;
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64);
    inner.auto_response_at_ms = NonZeroU64::new(now_ms.max(1));
    if !inner.handshake.output_ended() {
        let limit = inner.max_outbound();
        inner.enqueue(frame, limit);
    }
    inner
        .group
        .settings
        .counters
        .auto_responses
        .fetch_add(1, Relaxed);
    true
}

/// The peer broke the protocol: close with the matching code, report the error, stop reading.
fn on_protocol_error(inner: &mut Inner, error: ProtocolError, events: &mut Vec<SocketEvent>) {
    let reason = error.to_string();
    let close = CloseFrame {
        code: error.close_code(),
        reason: close::truncate_reason(&reason).to_owned(),
    };
    let timeout = inner.group.settings.close_timeout;
    inner.send_close(encode::close_frame(Some(&close), None), usize::MAX, timeout);
    inner.stop_reading(timeout);
    inner.reporting = Reporting::Ended;
    tracing::debug!(%error, "protocol error");
    events.push(SocketEvent::Error(error));
}

/// The connection ended (EOF or a read error) without a close frame.
fn on_disconnect(inner: &mut Inner, events: &mut Vec<SocketEvent>) {
    inner.handshake = Handshake::Lost;
    if inner.reporting == Reporting::Open {
        inner.reporting = Reporting::Ended;
        events.push(SocketEvent::Close {
            code: close::ABNORMAL,
            reason: DISCONNECTED.into(),
            was_clean: false,
        });
    }
}
