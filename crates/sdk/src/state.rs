//! `State`: what an object instance can ask of the runtime (`ctx` in Workers).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ObjectId;
use crate::error::Result;
use crate::host::ObjectHost;
use crate::storage::Storage;
use crate::websocket::{Outgoing, WebSocket, WebSocketRequestResponsePair};

/// The runtime, as seen by one object instance. Cheap to clone; valid for the instance's lifetime
/// (a woken object gets a new one in `new`).
#[derive(Clone)]
pub struct State {
    host: Arc<dyn ObjectHost>,
}

impl State {
    /// Wraps a runtime's object context; for runtimes.
    #[doc(hidden)]
    pub fn from_host(host: Arc<dyn ObjectHost>) -> Self {
        State { host }
    }

    /// The runtime's side of this state; for guests written in another language.
    #[doc(hidden)]
    pub fn host(&self) -> &Arc<dyn ObjectHost> {
        &self.host
    }

    /// The object's durable storage: KV, SQL, transactions, the alarm. Opened on first use, so an
    /// object that never calls it costs no disk access when it wakes.
    pub fn storage(&self) -> Result<Storage> {
        self.host.storage()
    }

    /// The object's id; [`ObjectId::name`] is set when the object was addressed by name.
    pub fn id(&self) -> ObjectId {
        self.host.id()
    }

    /// Hands the server end of a pair to the runtime so that the object can hibernate while the
    /// socket stays open. Its events then arrive at `websocket_message`, `websocket_close` and
    /// `websocket_error`.
    pub fn accept_web_socket(&self, ws: &WebSocket) -> Result<()> {
        self.host.accept_websocket(ws, &[])
    }

    /// [`State::accept_web_socket`] with tags (at most 10 distinct, 256 bytes each, by default).
    pub fn accept_websocket_with_tags(&self, ws: &WebSocket, tags: &[&str]) -> Result<()> {
        self.host.accept_websocket(ws, tags)
    }

    /// Every open hibernatable socket of this object, oldest first. Sockets whose close or error
    /// event was delivered are gone; a socket this object is closing is still listed.
    pub fn get_websockets(&self) -> Vec<WebSocket> {
        self.host.websockets(None)
    }

    /// The hibernatable sockets that carry `tag`, oldest first.
    pub fn get_websockets_with_tag(&self, tag: &str) -> Vec<WebSocket> {
        self.host.websockets(Some(tag))
    }

    /// `get_websockets().len()` without building the list (a Dormouse addition): constant time,
    /// however many sockets the object holds.
    pub fn get_websocket_count(&self) -> usize {
        self.host.websocket_count(None)
    }

    /// `get_websockets_with_tag(tag).len()` without building the list (a Dormouse addition).
    pub fn get_websocket_count_with_tag(&self, tag: &str) -> usize {
        self.host.websocket_count(Some(tag))
    }

    /// The tags of a hibernatable socket.
    pub fn get_tags(&self, ws: &WebSocket) -> Result<Vec<String>> {
        ws.host().tags()
    }

    /// Answers `pair.request()` with `pair.response()` on every hibernatable socket of this
    /// object, in the runtime, without waking the object. Replaces any previous pairs.
    pub fn set_websocket_auto_response(&self, pair: &WebSocketRequestResponsePair) -> Result<()> {
        self.host.set_auto_responses(vec![pair.clone()])
    }

    /// Sets several auto-response pairs at once (a Dormouse addition).
    pub fn set_websocket_auto_responses(
        &self,
        pairs: &[WebSocketRequestResponsePair],
    ) -> Result<()> {
        self.host.set_auto_responses(pairs.to_vec())
    }

    /// Removes every auto-response pair.
    pub fn clear_websocket_auto_response(&self) -> Result<()> {
        self.host.set_auto_responses(Vec::new())
    }

    /// The first auto-response pair, if any.
    pub fn get_websocket_auto_response(&self) -> Option<WebSocketRequestResponsePair> {
        self.host.auto_responses().into_iter().next()
    }

    /// Every auto-response pair.
    pub fn get_websocket_auto_responses(&self) -> Vec<WebSocketRequestResponsePair> {
        self.host.auto_responses()
    }

    /// When `ws` last got an auto-response (kept across hibernation), or `None`.
    pub fn get_websocket_auto_response_timestamp(&self, ws: &WebSocket) -> Option<SystemTime> {
        self.host.auto_response_timestamp(ws)
    }

    /// Limits how long each WebSocket event handler may run; past it the object is reset.
    /// `None` or zero unsets it; at most 7 days.
    pub fn set_hibernatable_websocket_event_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> Result<()> {
        self.host
            .set_event_timeout(timeout.filter(|t| !t.is_zero()))
    }

    /// The WebSocket event timeout, if set.
    pub fn get_hibernatable_websocket_event_timeout(&self) -> Option<Duration> {
        self.host.event_timeout()
    }

    /// Runs `work` in the background and keeps the object in memory (not hibernated) until it
    /// completes, for at most 15 minutes.
    pub fn wait_until<F: Future<Output = ()> + Send + 'static>(&self, work: F) {
        self.host.wait_until(Box::pin(work))
    }

    /// Sends `message` to every open hibernatable socket (those with `tag`, if given) except
    /// `except`, and returns how many it was queued to. The frame is encoded once and sent by the
    /// runtime: no socket handle is created, nothing is deserialized.
    pub fn broadcast<'a>(
        &self,
        tag: Option<&str>,
        message: impl Into<Outgoing<'a>>,
        except: Option<&WebSocket>,
    ) -> usize {
        self.host
            .broadcast(tag, message.into(), except.map(WebSocket::id))
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("id", &self.host.id())
            .finish()
    }
}
