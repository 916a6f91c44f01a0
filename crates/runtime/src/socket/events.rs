//! The event stream of a socket accepted with the standard API (`WebSocket::accept`).

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use dormouse_sdk::{CloseEvent, Error, ErrorKind, EventStream, MessageEvent, WebsocketEvent};
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::object::SocketEvent;

/// Events buffered per standard socket before its reader waits for the application to consume
/// them (then TCP flow control pushes back on the client).
const STANDARD_EVENT_BUFFER: usize = 64;

/// The channel between a standard socket's I/O task and the application's [`EventStream`].
pub(super) struct Channel {
    sender: mpsc::Sender<SocketEvent>,
    /// Taken by the first `events()` call.
    receiver: Mutex<Option<mpsc::Receiver<SocketEvent>>>,
}

impl Channel {
    pub(super) fn new() -> Self {
        let (sender, receiver) = mpsc::channel(STANDARD_EVENT_BUFFER);
        Channel {
            sender,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    pub(super) fn sender(&self) -> mpsc::Sender<SocketEvent> {
        self.sender.clone()
    }

    pub(super) fn take_stream(&self) -> dormouse_sdk::Result<EventStream> {
        let receiver = self
            .receiver
            .lock()
            .expect("event channel lock")
            .take()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidState,
                    "events() can only be called once per WebSocket",
                )
            })?;
        Ok(EventStream::new(Events {
            receiver,
            finished: false,
        }))
    }
}

/// Maps socket events to the SDK's event type; ends after the close or error event.
struct Events {
    receiver: mpsc::Receiver<SocketEvent>,
    finished: bool,
}

impl Stream for Events {
    type Item = dormouse_sdk::Result<WebsocketEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let Some(event) = std::task::ready!(self.receiver.poll_recv(cx)) else {
            return Poll::Ready(None);
        };
        let item = match event {
            SocketEvent::Message(message) => {
                Ok(WebsocketEvent::Message(MessageEvent::new(message)))
            }
            SocketEvent::Close {
                code,
                reason,
                was_clean,
            } => {
                self.finished = true;
                Ok(WebsocketEvent::Close(CloseEvent::new(
                    code, reason, was_clean,
                )))
            }
            SocketEvent::Error(error) => {
                self.finished = true;
                Err(Error::new(ErrorKind::InvalidState, error))
            }
        };
        Poll::Ready(Some(item))
    }
}
