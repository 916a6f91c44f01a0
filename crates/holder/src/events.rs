//! The event stream of a socket accepted with the standard API (`WebSocket::accept`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use dormouse_sdk::{CloseEvent, Error, ErrorKind, EventStream, MessageEvent, WebsocketEvent};
use futures_util::Stream;

use crate::owner::SocketEvent;

/// Events buffered per standard socket before the socket stops reading until the application
/// consumes them (then TCP flow control pushes back on the client).
const STANDARD_EVENT_BUFFER: usize = 64;

/// A bounded queue between a standard socket (producer) and its [`EventStream`] (consumer).
pub(crate) struct Channel {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    events: VecDeque<SocketEvent>,
    /// The stream, waiting for an event.
    consumer: Option<Waker>,
    /// The socket, waiting for room.
    producer: Option<Waker>,
    /// The stream was handed out by `events()`.
    taken: bool,
    /// The stream was dropped: events are discarded.
    abandoned: bool,
    /// No more events will come (the socket is closed or was reset).
    closed: bool,
}

impl Channel {
    pub(crate) fn new() -> Self {
        Channel {
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("event channel lock")
    }

    /// Queues `event`, or gives it back after registering `waker` to be woken when there is room.
    pub(crate) fn try_push(&self, event: SocketEvent, waker: &Waker) -> Result<(), SocketEvent> {
        let mut state = self.state();
        if state.abandoned {
            return Ok(());
        }
        if state.events.len() >= STANDARD_EVENT_BUFFER {
            state.producer = Some(waker.clone());
            return Err(event);
        }
        state.events.push_back(event);
        if let Some(consumer) = state.consumer.take() {
            consumer.wake();
        }
        Ok(())
    }

    /// No more events will come: the stream ends once it has drained what is queued.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        if let Some(consumer) = state.consumer.take() {
            consumer.wake();
        }
    }

    pub(crate) fn take_stream(self: &Arc<Self>) -> dormouse_sdk::Result<EventStream> {
        if std::mem::replace(&mut self.state().taken, true) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "events() can only be called once per WebSocket",
            ));
        }
        Ok(EventStream::new(Events {
            channel: self.clone(),
            finished: false,
        }))
    }
}

/// Maps socket events to the SDK's event type; ends after the close or error event.
struct Events {
    channel: Arc<Channel>,
    finished: bool,
}

impl Stream for Events {
    type Item = dormouse_sdk::Result<WebsocketEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let event = {
            let mut state = self.channel.state();
            match state.events.pop_front() {
                Some(event) => {
                    if let Some(producer) = state.producer.take() {
                        producer.wake();
                    }
                    event
                }
                None if state.closed => return Poll::Ready(None),
                None => {
                    state.consumer = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
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
                Err(Error::new(ErrorKind::InvalidState, error.to_string()))
            }
        };
        Poll::Ready(Some(item))
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let mut state = self.channel.state();
        state.abandoned = true;
        state.events.clear();
        if let Some(producer) = state.producer.take() {
            producer.wake();
        }
    }
}
