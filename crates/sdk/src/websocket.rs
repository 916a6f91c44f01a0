//! WebSockets: the pair, the handle, messages, auto-responses and the standard event stream.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};
use crate::host::{self, SocketHost};

/// The stable identity of a socket: equal across hibernation, unique in the process.
///
/// Handles returned by [`State::get_websockets`](crate::State::get_websockets) after a wake are
/// new values, but they compare equal to the ones seen before, and their id is the same, so it
/// can key a map of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebSocketId(pub u64);

impl fmt::Display for WebSocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// `WebSocket.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// Not yet connected (a client end not yet returned in a response).
    Connecting = 0,
    /// Open: messages flow both ways.
    Open = 1,
    /// A close frame was sent or received; the handshake is not complete.
    Closing = 2,
    /// Closed in both directions.
    Closed = 3,
}

/// A message received on a socket, as `websocket_message` gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebSocketIncomingMessage {
    /// A text frame.
    String(String),
    /// A binary frame.
    Binary(Vec<u8>),
}

/// A message to send, borrowed: the runtime encodes it into a frame without an extra copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame.
    Binary(&'a [u8]),
}

impl<'a> From<&'a str> for Outgoing<'a> {
    fn from(text: &'a str) -> Self {
        Outgoing::Text(text)
    }
}

impl<'a> From<&'a String> for Outgoing<'a> {
    fn from(text: &'a String) -> Self {
        Outgoing::Text(text)
    }
}

impl<'a> From<&'a [u8]> for Outgoing<'a> {
    fn from(data: &'a [u8]) -> Self {
        Outgoing::Binary(data)
    }
}

/// Which end of a [`WebSocketPair`] a handle is.
#[derive(Clone)]
enum End {
    /// Stays in the object: accept it, send on it.
    Server,
    /// Goes to the network: return it in a 101 response. The guard is shared by the handles of
    /// that end, and held only for its drop.
    Client { _guard: Arc<ClientEnd> },
}

/// The client end of a pair. Once its last handle is gone, a socket whose client end never went
/// out in a response can never connect: the runtime is told so and ends the socket (an accepted
/// one hears a 1006 close, as when the connection is lost), so it does not sit in
/// `get_websockets()` and count against the object's limit forever.
struct ClientEnd(Arc<dyn SocketHost>);

impl Drop for ClientEnd {
    fn drop(&mut self) {
        // The runtime ignores this once the end is in a response or connected.
        self.0.clone().abandon();
    }
}

/// A WebSocket handle, cheap to clone.
///
/// Hibernatable sockets belong to the runtime: the handle can be dropped (or the whole object
/// hibernated) while the connection stays open; `State::get_websockets` gives handles back.
/// Equality and hashing follow [`WebSocket::id`] (and which end of the pair it is).
#[derive(Clone)]
pub struct WebSocket {
    host: Arc<dyn SocketHost>,
    end: End,
}

impl WebSocket {
    /// The server end of a socket hosted by `host`; for runtimes.
    #[doc(hidden)]
    pub fn from_host(host: Arc<dyn SocketHost>) -> Self {
        WebSocket {
            host,
            end: End::Server,
        }
    }

    /// The client end of a socket hosted by `host`; for runtimes.
    #[doc(hidden)]
    pub fn client_from_host(host: Arc<dyn SocketHost>) -> Self {
        WebSocket {
            end: End::Client {
                _guard: Arc::new(ClientEnd(host.clone())),
            },
            host,
        }
    }

    /// The runtime's side of this socket; for runtimes.
    #[doc(hidden)]
    pub fn host(&self) -> &Arc<dyn SocketHost> {
        &self.host
    }

    /// True for the end of a pair that goes into a 101 response.
    pub fn is_client_end(&self) -> bool {
        matches!(self.end, End::Client { .. })
    }

    /// The socket's stable identity.
    pub fn id(&self) -> WebSocketId {
        self.host.id()
    }

    /// Sends `data` as JSON in a text frame.
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<()> {
        let json = serde_json::to_string(data)
            .map_err(|e| Error::new(ErrorKind::Serialization, e.to_string()))?;
        self.send_with_str(json)
    }

    /// Sends a text frame.
    pub fn send_with_str<S: AsRef<str>>(&self, data: S) -> Result<()> {
        self.server_end("send")?;
        self.host.send(Outgoing::Text(data.as_ref()))
    }

    /// Sends a binary frame.
    pub fn send_with_bytes<D: AsRef<[u8]>>(&self, bytes: D) -> Result<()> {
        self.server_end("send")?;
        self.host.send(Outgoing::Binary(bytes.as_ref()))
    }

    /// Starts the close handshake. The code must be 1000–4999 except 1004, 1005, 1006 and 1015;
    /// the reason needs a code and at most 123 bytes. Without a code the frame is empty (the peer
    /// sees 1005). Closing twice is ignored.
    pub fn close<S: AsRef<str>>(&self, code: Option<u16>, reason: Option<S>) -> Result<()> {
        self.server_end("close")?;
        self.host.close(code, reason.as_ref().map(AsRef::as_ref))
    }

    /// Stores a copy of `value` with the socket; it survives hibernation for the socket's
    /// lifetime. Over the size limit (16 KiB serialized by default) this fails and the previous
    /// attachment stays.
    pub fn serialize_attachment<T: Serialize>(&self, value: T) -> Result<()> {
        self.server_end("serialize_attachment")?;
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| Error::new(ErrorKind::Serialization, e.to_string()))?;
        self.host.set_attachment(bytes)
    }

    /// A fresh copy of the attachment, or `None` if none was stored.
    pub fn deserialize_attachment<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.server_end("deserialize_attachment")?;
        match self.host.attachment() {
            None => Ok(None),
            Some(bytes) => decode_attachment(&bytes).map(Some),
        }
    }

    /// The connection state.
    pub fn ready_state(&self) -> ReadyState {
        self.host.ready_state()
    }

    /// The subprotocol the object chose among the client's offers (the `Sec-WebSocket-Protocol`
    /// header of its 101 response), once the socket is connected; kept across hibernation.
    pub fn protocol(&self) -> Option<String> {
        self.host.protocol()
    }

    /// Adds a tag to an accepted hibernatable socket (Cloudflare fixes tags at accept time).
    pub fn add_tag(&self, tag: &str) -> Result<()> {
        self.server_end("add_tag")?;
        self.host.add_tag(tag)
    }

    /// Removes a tag; `Ok(false)` if the socket did not have it.
    pub fn remove_tag(&self, tag: &str) -> Result<bool> {
        self.server_end("remove_tag")?;
        self.host.remove_tag(tag)
    }

    /// Accepts the socket with the standard API: events arrive on [`WebSocket::events`] instead of
    /// the object's handlers, and the object stays in memory while the socket is open.
    pub fn accept(&self) -> Result<()> {
        self.server_end("accept")?;
        self.host.clone().accept()
    }

    /// The events of a socket accepted with [`WebSocket::accept`]; call it once.
    pub fn events(&self) -> Result<EventStream> {
        self.server_end("events")?;
        self.host.events()
    }

    fn server_end(&self, operation: &str) -> Result<()> {
        if self.is_client_end() {
            return Err(Error::new(
                ErrorKind::Type,
                format!(
                    "{operation}() is not available on the client end of a WebSocketPair; return it in a 101 response"
                ),
            ));
        }
        Ok(())
    }
}

impl PartialEq for WebSocket {
    fn eq(&self, other: &Self) -> bool {
        self.is_client_end() == other.is_client_end() && self.host.id() == other.host.id()
    }
}

impl Eq for WebSocket {}

impl Hash for WebSocket {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.host.id().hash(state);
        self.is_client_end().hash(state);
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("id", &self.host.id())
            .field("client_end", &self.is_client_end())
            .field("ready_state", &self.host.ready_state())
            .finish()
    }
}

/// Decodes a stored attachment (what [`WebSocket::deserialize_attachment`] does with its bytes).
pub fn decode_attachment<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            format!("cannot deserialize attachment: {e}"),
        )
    })
}

/// Two connected ends: `server` stays in the object, `client` goes into the 101 response.
#[derive(Debug, Clone)]
pub struct WebSocketPair {
    /// The end returned to the connecting client.
    pub client: WebSocket,
    /// The end the object accepts and talks through.
    pub server: WebSocket,
}

impl WebSocketPair {
    /// Creates a pair. Only possible while a Durable Object handler (or constructor) runs.
    pub fn new() -> Result<Self> {
        let object = host::current_object().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidState,
                "WebSocketPair::new() must be called inside a Durable Object handler",
            )
        })?;
        let (client, server) = object.new_websocket_pair()?;
        Ok(WebSocketPair { client, server })
    }
}

/// A request/response pair the runtime answers by itself, without waking the object.
///
/// A received text frame equal to the request text (or a binary frame equal to the request bytes,
/// a Dormouse addition) is answered with the response, of the same kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketRequestResponsePair {
    request: Arc<[u8]>,
    response: Arc<[u8]>,
    binary: bool,
}

impl WebSocketRequestResponsePair {
    /// A text pair, as in Workers: `new("ping", "pong")`.
    pub fn new(request: impl Into<String>, response: impl Into<String>) -> Self {
        let (request, response) = (request.into(), response.into());
        WebSocketRequestResponsePair {
            request: request.as_bytes().into(),
            response: response.as_bytes().into(),
            binary: false,
        }
    }

    /// A binary pair: a binary frame equal to `request` is answered with a binary `response`.
    pub fn binary(request: impl AsRef<[u8]>, response: impl AsRef<[u8]>) -> Self {
        WebSocketRequestResponsePair {
            request: request.as_ref().into(),
            response: response.as_ref().into(),
            binary: true,
        }
    }

    /// True for a binary pair.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The request text (lossy for a binary pair).
    pub fn request(&self) -> String {
        String::from_utf8_lossy(&self.request).into_owned()
    }

    /// The response text (lossy for a binary pair).
    pub fn response(&self) -> String {
        String::from_utf8_lossy(&self.response).into_owned()
    }

    /// The request bytes.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// The response bytes.
    pub fn response_bytes(&self) -> &[u8] {
        &self.response
    }
}

/// An event of a socket accepted with the standard API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebsocketEvent {
    /// A message arrived.
    Message(MessageEvent),
    /// The socket closed; this is the last event.
    Close(CloseEvent),
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    data: WebSocketIncomingMessage,
}

impl MessageEvent {
    /// Wraps a received message.
    pub fn new(data: WebSocketIncomingMessage) -> Self {
        MessageEvent { data }
    }

    /// The text, if it was a text frame.
    pub fn text(&self) -> Option<String> {
        match &self.data {
            WebSocketIncomingMessage::String(text) => Some(text.clone()),
            WebSocketIncomingMessage::Binary(_) => None,
        }
    }

    /// The bytes, if it was a binary frame.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        match &self.data {
            WebSocketIncomingMessage::Binary(bytes) => Some(bytes.clone()),
            WebSocketIncomingMessage::String(_) => None,
        }
    }

    /// The text frame parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        match &self.data {
            WebSocketIncomingMessage::String(text) => serde_json::from_str(text)
                .map_err(|e| Error::new(ErrorKind::Serialization, e.to_string())),
            WebSocketIncomingMessage::Binary(_) => Err(Error::new(
                ErrorKind::Type,
                "binary message is not JSON text",
            )),
        }
    }

    /// The message itself.
    pub fn into_data(self) -> WebSocketIncomingMessage {
        self.data
    }
}

/// How a socket closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseEvent {
    code: u16,
    reason: String,
    was_clean: bool,
}

impl CloseEvent {
    /// A close event.
    pub fn new(code: u16, reason: String, was_clean: bool) -> Self {
        CloseEvent {
            code,
            reason,
            was_clean,
        }
    }

    /// The close code (1005 for an empty close frame, 1006 for a dropped connection).
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The close reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the close handshake completed.
    pub fn was_clean(&self) -> bool {
        self.was_clean
    }
}

/// The events of a socket accepted with [`WebSocket::accept`]. Ends after the close event, or
/// after an `Err` for a protocol error.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Result<WebsocketEvent>> + Send>>,
}

impl EventStream {
    /// Wraps a runtime's event stream.
    pub fn new(inner: impl Stream<Item = Result<WebsocketEvent>> + Send + 'static) -> Self {
        EventStream {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for EventStream {
    type Item = Result<WebsocketEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}
