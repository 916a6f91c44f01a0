//! The owner of a group of sockets, as the holder sees it: something that takes their events.
//!
//! The holder hands events over through [`SocketOwner`] alone, so an owner may be an object in
//! this process (the runtime's cell), a remote one later, or a test's fake.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};

use dormouse_sdk::WebSocketIncomingMessage;
use dormouse_ws::ProtocolError;

use crate::record::SocketRecord;

/// An event of a socket, in arrival order.
#[derive(Debug)]
pub enum SocketEvent {
    /// A text or binary message.
    Message(WebSocketIncomingMessage),
    /// The socket closed; its last event.
    Close {
        /// The close code received (1005 for an empty close frame, 1006 for a lost connection).
        code: u16,
        /// The close reason.
        reason: String,
        /// Whether the peer sent a close frame.
        was_clean: bool,
    },
    /// The peer broke the protocol; the socket's last event.
    Error(ProtocolError),
}

impl SocketEvent {
    /// Whether no event follows this one.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, SocketEvent::Message(_))
    }

    /// Payload bytes the event holds, for an owner's byte bound.
    pub fn weight(&self) -> usize {
        match self {
            SocketEvent::Message(WebSocketIncomingMessage::String(s)) => s.len(),
            SocketEvent::Message(WebSocketIncomingMessage::Binary(b)) => b.len(),
            _ => 0,
        }
    }
}

/// What the sockets of a group report to.
pub trait SocketOwner: Send + Sync {
    /// Takes `event` of `socket` (of a hibernatable socket: standard sockets have their own
    /// stream), or hands it back after registering `waker` to be woken once there is room. The
    /// socket then stops reading until it is woken, so TCP pushes back on the client.
    fn deliver(
        self: Arc<Self>,
        socket: Arc<SocketRecord>,
        event: SocketEvent,
        waker: &Waker,
    ) -> Result<(), SocketEvent>;

    /// A socket that waited for room got its events in: if room remains, wake the next waiter.
    fn backlog_delivered(&self);

    /// A standard socket saw traffic or closed: an owner kept in memory by it restarts its idle
    /// clock (and looks again at whether it may leave memory).
    fn note_activity(&self);
}

/// Delivers `event`, waiting for room: for the rare event produced outside a driver step.
pub(crate) async fn deliver_waiting(
    owner: Arc<dyn SocketOwner>,
    socket: Arc<SocketRecord>,
    event: SocketEvent,
) {
    let mut event = Some(event);
    poll_fn(|cx| {
        let pending = event.take().expect("polled after completion");
        match owner.clone().deliver(socket.clone(), pending, cx.waker()) {
            Ok(()) => Poll::Ready(()),
            Err(back) => {
                event = Some(back);
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_weighs_its_payload_and_only_close_and_error_are_last() {
        let text = SocketEvent::Message(WebSocketIncomingMessage::String("héllo".into()));
        let binary = SocketEvent::Message(WebSocketIncomingMessage::Binary(vec![1, 2, 3]));
        let close = SocketEvent::Close {
            code: 1000,
            reason: "a long reason that weighs nothing".into(),
            was_clean: true,
        };
        let error = SocketEvent::Error(ProtocolError::ReservedBits);
        assert_eq!(
            [&text, &binary, &close, &error].map(SocketEvent::weight),
            [6, 3, 0, 0]
        );
        assert_eq!(
            [&text, &binary, &close, &error].map(SocketEvent::is_terminal),
            [false, false, true, true]
        );
    }
}
