//! Reading and writing one connected socket, one driver step at a time.
//!
//! A step flushes queued output, reads what is readable into a buffer shared by every socket on
//! the thread, and decodes it there ([`read`]); only an incomplete frame is copied into a private
//! buffer, freed as soon as the frame completes. Pings, auto-responses and the reply to a close
//! frame are answered there, without the owner; every other frame becomes an event. Events are
//! delivered in order; when the owner has no room they wait in the socket (which stops reading)
//! until the owner wakes it.

#[cfg(test)]
mod input_tests;
mod read;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, IoSlice};
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use dormouse_ws::{MessageDecoder, Role};
use tokio::net::TcpStream;

use crate::config::{ConnectionLease, Negotiated};
use crate::owner::SocketEvent;
use crate::progress::OutputProgress;
use crate::record::state::{Link, Mode, Reporting};
use crate::record::{Inner, SocketRecord, has_queued};

/// Frames gathered into one vectored write: a storm of small broadcasts (every join announced to a
/// room of thousands) costs a socket one system call per this many frames (the kernel takes up to
/// 1,024).
const WRITE_BATCH: usize = 64;

/// Bytes one socket may read per driver step before letting other sockets run.
const READ_BUDGET: usize = 256 * 1024;

thread_local! {
    /// Room for the events of one step, reused so that a message costs no allocation here. Taken
    /// out while in use: a nested step (none is expected) would simply start with a fresh one.
    static EVENTS: Cell<Vec<SocketEvent>> = const { Cell::new(Vec::new()) };
}

/// The network side of an attached socket.
pub(crate) struct Connection {
    /// Dropped with the connection, before the stream closes (fields drop in order), so that
    /// whoever counts open connections has the count right once the peer sees the end.
    #[allow(dead_code, reason = "held for its drop")]
    lease: Option<Box<ConnectionLease>>,
    pub(crate) stream: TcpStream,
    decoder: MessageDecoder,
    /// Bytes of an incomplete frame; empty (and unallocated) between frames.
    partial: Vec<u8>,
    /// Events that the owner (or a full standard stream) has not taken yet; nothing more is read
    /// until they are delivered. A backlog is rare and short: an idle socket keeps no buffer.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per idle socket instead of 32"
    )]
    pending: Option<Box<VecDeque<SocketEvent>>>,
    /// How far the output has got, for pings queued behind it.
    pub(crate) progress: OutputProgress,
    /// permessage-deflate was agreed: messages worth it go out compressed.
    pub(crate) compression: bool,
    /// The connection is a peer node relaying the socket for its client.
    pub(crate) relayed: bool,
}

impl Connection {
    pub(crate) fn new(
        stream: TcpStream,
        leftover: &[u8],
        max_message_bytes: usize,
        negotiated: Negotiated,
    ) -> Self {
        let decoder = MessageDecoder::new(Role::Server, max_message_bytes);
        Connection {
            lease: negotiated.lease.map(Box::new),
            stream,
            decoder: if negotiated.compression {
                decoder.with_compression()
            } else {
                decoder
            },
            compression: negotiated.compression,
            relayed: negotiated.relayed,
            partial: leftover.to_vec(),
            pending: None,
            progress: OutputProgress::default(),
        }
    }
}

/// What a read step found.
pub(crate) enum Step {
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
    pub(crate) fn poll_step(&self, cx: &mut Context<'_>) {
        let mut events = EVENTS.take();
        self.step_with(cx, &mut events);
        events.clear();
        EVENTS.set(events);
    }

    fn step_with(&self, cx: &mut Context<'_>, events: &mut Vec<SocketEvent>) {
        if !self.deliver_pending(cx) {
            flush(&mut self.lock(), cx);
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

    /// Hands events over in order (leaving `events` empty); keeps the rest in the socket if the
    /// owner has no room. False when something is held back (the socket is woken once there is
    /// room).
    fn deliver(&self, events: &mut Vec<SocketEvent>, cx: &mut Context<'_>) -> bool {
        let mut events = events.drain(..);
        while let Some(event) = events.next() {
            if let Err(event) = self.try_dispatch(event, cx) {
                let mut inner = self.lock();
                if let Link::Attached(connection) = &mut inner.link {
                    let pending = connection.pending.get_or_insert_with(Box::default);
                    pending.push_back(event);
                    pending.extend(events);
                }
                return false;
            }
        }
        true
    }

    /// Delivers events held back for want of room; true when none are left.
    fn deliver_pending(&self, cx: &mut Context<'_>) -> bool {
        let mut delivered = false;
        loop {
            let event = {
                let mut inner = self.lock();
                let Link::Attached(connection) = &mut inner.link else {
                    return true;
                };
                match connection.pending.as_mut().and_then(|p| p.pop_front()) {
                    Some(event) => event,
                    None => {
                        connection.pending = None;
                        break;
                    }
                }
            };
            if let Err(event) = self.try_dispatch(event, cx) {
                if let Link::Attached(connection) = &mut self.lock().link {
                    connection
                        .pending
                        .get_or_insert_with(Box::default)
                        .push_front(event);
                }
                return false;
            }
            delivered = true;
        }
        if delivered && let Some(owner) = self.group().owner() {
            owner.backlog_delivered();
        }
        true
    }

    /// Offers one event to its consumer; gives it back (after registering to be woken) if the
    /// consumer has no room.
    fn try_dispatch(&self, event: SocketEvent, cx: &mut Context<'_>) -> Result<(), SocketEvent> {
        let (channel, owner) = {
            let inner = self.lock();
            if inner.reporting == Reporting::Silenced {
                return Ok(());
            }
            let channel = match &inner.mode {
                Mode::Hibernatable { .. } => None,
                Mode::Standard(channel) => Some(channel.clone()),
                Mode::Unaccepted => return Ok(()),
            };
            (channel, inner.group.owner())
        };
        // An owner that is gone takes no more events.
        let Some(owner) = owner else {
            return Ok(());
        };
        match channel {
            Some(channel) => {
                owner.note_activity();
                channel.try_push(event, cx.waker())
            }
            None => owner.deliver(self.this(), event, cx.waker()),
        }
    }

    /// The socket is done: report a lost connection if nothing else ended it, then close it.
    fn finish(&self, cx: &mut Context<'_>) {
        let lost = {
            let mut inner = self.lock();
            let lost = inner.reporting == Reporting::Open;
            if lost {
                inner.reporting = Reporting::Ended;
                let group = inner.group.clone();
                if let Some(counter) = inner.end.drop_counter(&group.settings.counters) {
                    counter.fetch_add(1, Relaxed);
                }
                Some(inner.end.close(&group.settings.limits))
            } else {
                None
            }
        };
        if let Some((code, reason)) = lost {
            let event = SocketEvent::Close {
                code,
                reason,
                was_clean: false,
            };
            if !self.deliver(&mut vec![event], cx) {
                return;
            }
        }
        let (link, standard, group) = {
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
            (link, standard, inner.group.clone())
        };
        // Dropping the stream closes the connection (after a completed close handshake the server
        // closes first, as RFC 6455 §7.1.1 asks) and clears tokio's hold on this socket's waker.
        drop(link);
        if standard {
            group.sockets().remove(self.id());
            if let Some(owner) = group.owner() {
                owner.note_activity();
            }
        }
    }
}

/// Writes queued frames until the kernel pushes back, then asks to be woken when writable.
pub(crate) fn flush(inner: &mut Inner, cx: &mut Context<'_>) {
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

/// Whether the socket is done: closed both ways with nothing left to write, or lost.
pub(crate) fn is_finished(inner: &Inner) -> bool {
    use crate::record::state::Handshake;
    match inner.handshake {
        Handshake::Lost => true,
        Handshake::Complete { .. } => !has_queued(&inner.outbound),
        _ => false,
    }
}
