//! A socket's write path: frames go straight to the kernel when nothing is queued before them;
//! only the unwritten rest waits, in order, for the driver.

use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, IoSlice};
use std::time::Duration;

use bytes::Bytes;
use dormouse_ws::encode;
use dormouse_ws::frame::{self, Opcode};

use super::Inner;
use super::state::{EndCause, Handshake, Link, Tick};
use crate::kernel;

/// Frames up to this size are copied into one buffer on the stack and sent with a plain write,
/// which costs the kernel less than a vectored write; past it, copying costs more than it saves.
const SMALL_FRAME_BYTES: usize = 512;

/// Output waiting for the socket to become writable.
#[derive(Default)]
pub(crate) struct Outbound {
    pub(crate) frames: VecDeque<Bytes>,
    pub(crate) bytes: usize,
}

impl Outbound {
    /// Drops `written` bytes from the front of the queue.
    pub(crate) fn consume(&mut self, mut written: usize) {
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

/// What [`Inner::write_now`] did.
pub(crate) enum WriteNow {
    /// The frame is written.
    Done,
    /// Output is queued or the connection failed: the driver must run.
    NeedsDriver,
    /// Nothing was written: the caller sends the frame the usual way.
    NotStarted,
}

/// Whether output waits in the queue (an emptied queue is kept until the liveness sweep).
pub(crate) fn has_queued(outbound: &Option<Box<Outbound>>) -> bool {
    outbound
        .as_ref()
        .is_some_and(|outbound| !outbound.frames.is_empty())
}

impl Inner {
    /// Writes `frame` now if nothing is queued before it, else queues it behind the rest, so that
    /// application sends, auto-responses, pongs and close frames keep their order. Returns true
    /// when the driver must run: output is left queued, or the connection just failed. When more
    /// than `max_queued` bytes were already waiting before this frame, the peer is taken as not
    /// reading and the connection is dropped (a single large frame is always allowed).
    pub(crate) fn enqueue(&mut self, frame: Bytes, max_queued: usize) -> bool {
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
    pub(crate) fn defer(&mut self, frame: Bytes, max_queued: usize) -> bool {
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
    pub(crate) fn write_now(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        max_queued: usize,
    ) -> WriteNow {
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
    pub(crate) fn note_ping_position(&mut self) {
        let queued = self.outbound.as_ref().map_or(0, |outbound| outbound.bytes);
        if let Link::Attached(connection) = &mut self.link {
            let unacknowledged = kernel::unacknowledged_bytes(&connection.stream);
            connection.progress.ping_queued(queued, unacknowledged);
        }
    }

    /// Whether the outstanding ping is held up by output ahead of it that the peer is still
    /// taking in, or that we have not written yet (see [`crate::progress`]).
    pub(crate) fn ping_held_up_by_backlog(&mut self) -> bool {
        let Link::Attached(connection) = &mut self.link else {
            return false;
        };
        let stream = &connection.stream;
        connection
            .progress
            .ping_held_up(|| kernel::unacknowledged_bytes(stream))
    }

    /// Queues a close frame (unless output has ended): nothing may follow it, and the handshake
    /// has `timeout` to end.
    pub(crate) fn send_close(
        &mut self,
        frame: Bytes,
        max_queued: usize,
        timeout: Duration,
    ) -> bool {
        if self.handshake.output_ended() {
            return false;
        }
        let needs_driver = self.enqueue(frame, max_queued);
        self.handshake = self.handshake.sent(deadline_after(timeout));
        needs_driver
    }

    /// Nothing more is read; a handshake under way keeps its deadline.
    pub(crate) fn stop_reading(&mut self, timeout: Duration) {
        self.handshake = self.handshake.received(deadline_after(timeout));
    }

    /// The connection failed: drop what is queued and stop sending.
    pub(crate) fn lose_connection(&mut self) {
        self.handshake = Handshake::Lost;
        self.outbound = None;
    }
}

/// The deadline of a handshake that starts now.
pub(crate) fn deadline_after(timeout: Duration) -> Tick {
    Tick::at(crate::clock_ms() + timeout.as_millis() as u64)
}
