//! Running a hibernatable socket's event: the handler's turn, and the close reply after it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use dormouse_holder::{CloseReply, SocketEvent, SocketRecord};
use dormouse_sdk::{Error, ErrorKind, WebSocket};

use super::guard::{Outcome, guard};
use super::task::Runner;

impl Runner {
    /// Hands `event` of `socket` to the instance's handler, constructing the instance first if
    /// the object was hibernated.
    pub(super) async fn handle_socket_event(
        &mut self,
        socket: Arc<SocketRecord>,
        event: SocketEvent,
    ) {
        // Events of sockets that are gone (closed by a reset) are dropped.
        if !self.cell.sockets.sockets().contains(socket.id()) {
            return;
        }
        // The constructor runs before the terminal event removes the socket, so that a woken
        // object rebuilds the session of the socket that is closing.
        if self.start_turn().await.is_err() {
            return;
        }
        if event.is_terminal() {
            self.cell.sockets.sockets().remove(socket.id());
        }
        let metrics = &self.cell.namespace.metrics.events;
        // With replies after the handler, the runtime answers the client's close once the
        // handler ran, unless the handler answered itself.
        let answer_close = match &event {
            SocketEvent::Close {
                code,
                reason,
                was_clean: true,
            } if self.cell.namespace.sockets.close_reply == CloseReply::AfterHandler => {
                Some((socket.clone(), *code, reason.clone()))
            }
            _ => None,
        };
        let ws = WebSocket::from_host(socket);
        let context = self.context_host();
        let timeout = self.cell.event_timeout();
        let instance = self.instance.as_mut().expect("a turn has an instance");
        let (kind, handler) = match event {
            SocketEvent::Message(message) => {
                metrics.message.fetch_add(1, Relaxed);
                ("websocket_message", instance.websocket_message(ws, message))
            }
            SocketEvent::Close {
                code,
                reason,
                was_clean,
            } => {
                metrics.close.fetch_add(1, Relaxed);
                (
                    "websocket_close",
                    instance.websocket_close(ws, code, reason, was_clean),
                )
            }
            SocketEvent::Error(error) => {
                metrics.error.fetch_add(1, Relaxed);
                (
                    "websocket_error",
                    instance.websocket_error(
                        ws,
                        Error::new(ErrorKind::InvalidState, error.to_string()),
                    ),
                )
            }
        };
        match guard(context, handler, timeout).await {
            Outcome::Done(Ok(())) => {}
            Outcome::Done(Err(error)) => {
                tracing::warn!(handler = kind, %error, "handler returned an error")
            }
            Outcome::Panicked(message) => {
                return self
                    .reset(&format!("{kind} handler panicked: {message}"))
                    .await;
            }
            Outcome::TimedOut => {
                let timeout = timeout.unwrap_or_default();
                return self
                    .reset(&format!("{kind} exceeded the event timeout of {timeout:?}"))
                    .await;
            }
        }
        if self.reset_if_broken().await {
            return;
        }
        let _ = self.finish_turn().await;
        if let Some((socket, code, reason)) = answer_close {
            // The reply to a close follows the turn's output, which waits for its flush.
            self.settle().await;
            socket.answer_close(code, &reason);
        }
    }
}
