//! The seam between the SDK and a runtime that hosts objects.
//!
//! Application code never touches these traits: it uses [`State`](crate::State),
//! [`WebSocket`](crate::WebSocket), [`Env`](crate::Env) and friends, which are thin handles over
//! them. A runtime (Dormouse's own, or a test double of a runtime) implements them. Keeping the
//! SDK free of runtime code keeps applications' compile times and semver surface small.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::storage::{ListOptions, SqlCursor, SqlStorageValue, Storage};
use crate::websocket::{
    EventStream, Outgoing, ReadyState, WebSocket, WebSocketId, WebSocketRequestResponsePair,
};
use crate::{ObjectId, Request, Response, Result};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a guest sends the answer to a request or call it was given.
///
/// A guest may answer after the handler's future has ended: a JavaScript handler that awaits
/// another object lets its object take other events meanwhile, and answers from a later turn.
/// The runtime holds an answer given during a turn until that turn's writes are durable (the
/// output gate). Dropping a `Reply` unanswered fails the request.
pub struct Reply<T> {
    send: Box<dyn FnOnce(Result<T>) + Send>,
}

impl<T> Reply<T> {
    /// A reply that hands the answer to `send`; for runtimes.
    pub fn new(send: impl FnOnce(Result<T>) + Send + 'static) -> Self {
        Reply {
            send: Box::new(send),
        }
    }

    /// Answers the request.
    pub fn send(self, answer: Result<T>) {
        (self.send)(answer)
    }
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}

/// What the runtime offers one live object instance (its `ctx` in Workers terms).
pub trait ObjectHost: Send + Sync + 'static {
    /// The object's id (with its name when it was addressed by name).
    fn id(&self) -> ObjectId;
    /// Creates a connected pair: the server end for this object, the client end for a 101 response.
    fn new_websocket_pair(&self) -> Result<(WebSocket, WebSocket)>;
    /// Hands a server end to the runtime for hibernation, with its tags.
    fn accept_websocket(&self, socket: &WebSocket, tags: &[&str]) -> Result<()>;
    /// Live hibernatable sockets, all or those with `tag`, oldest first.
    fn websockets(&self, tag: Option<&str>) -> Vec<WebSocket>;
    /// How many sockets [`ObjectHost::websockets`] would list, without listing them.
    fn websocket_count(&self, tag: Option<&str>) -> usize;
    /// A number that changes whenever a socket joins or leaves the object's sockets: a guest
    /// that wraps [`ObjectHost::websockets`]`(None)` can keep its list until it changes.
    fn websockets_changes(&self) -> u64;
    /// Replaces the auto-response pairs (an empty list clears them).
    fn set_auto_responses(&self, pairs: Vec<WebSocketRequestResponsePair>) -> Result<()>;
    /// The auto-response pairs in effect.
    fn auto_responses(&self) -> Vec<WebSocketRequestResponsePair>;
    /// When `socket` last received an auto-response.
    fn auto_response_timestamp(&self, socket: &WebSocket) -> Option<SystemTime>;
    /// Sets or clears the deadline of each WebSocket event.
    fn set_event_timeout(&self, timeout: Option<Duration>) -> Result<()>;
    /// The deadline of each WebSocket event, if set.
    fn event_timeout(&self) -> Option<Duration>;
    /// Keeps the object in memory (not hibernated) until `work` completes.
    fn wait_until(&self, work: BoxFuture<'static, ()>);
    /// Sends one message to every open hibernatable socket (with `tag`, if given) except `except`.
    fn broadcast(
        &self,
        tag: Option<&str>,
        message: Outgoing<'_>,
        except: Option<WebSocketId>,
    ) -> usize;
    /// The object's durable storage (opened on first use).
    fn storage(&self) -> Result<Storage>;
    /// Asks for a turn in which the runtime calls [`Guest::resume`](crate::Guest::resume): for a
    /// guest with work of its own to run (a JavaScript timer that fired, a promise that settled),
    /// queued behind the object's other events, with the same commit and output gate as any turn.
    /// Ignored once the instance is gone.
    fn schedule_turn(&self);
}

/// What the runtime offers for one object's durable storage. Values are serialized by the SDK.
pub trait StorageHost: Send + Sync + 'static {
    /// The entries of `keys` that exist, sorted by key.
    fn get(&self, keys: &[&str]) -> Result<Vec<(String, Vec<u8>)>>;
    /// Stores every entry, all or none.
    fn put(&self, entries: &[(&str, &[u8])]) -> Result<()>;
    /// Deletes `keys`; returns how many existed.
    fn delete(&self, keys: &[&str]) -> Result<usize>;
    /// Entries in key order, as `options` select them.
    fn list(&self, options: &ListOptions) -> Result<Vec<(String, Vec<u8>)>>;
    /// Deletes all data and the alarm.
    fn delete_all(&self) -> Result<()>;
    /// Runs application SQL.
    fn exec(&self, sql: &str, bindings: &[SqlStorageValue]) -> Result<SqlCursor>;
    /// Bytes the database occupies.
    fn database_size(&self) -> Result<u64>;
    /// Runs `body` atomically (rolled back if it returns an error).
    fn transaction(&self, body: &mut dyn FnMut() -> Result<()>) -> Result<()>;
    /// The alarm time, in milliseconds since the epoch.
    fn get_alarm(&self) -> Result<Option<i64>>;
    /// Sets (or, with `None`, deletes) the alarm.
    fn set_alarm(&self, at_ms: Option<i64>) -> Result<()>;
    /// Commits what was written so far.
    fn sync(&self) -> Result<()>;
}

/// What the runtime offers for one socket. `end` tells which end of its pair a handle is.
pub trait SocketHost: Send + Sync + 'static {
    /// The stable identity of the socket.
    fn id(&self) -> WebSocketId;
    /// Queues a message to the peer.
    fn send(&self, message: Outgoing<'_>) -> Result<()>;
    /// Starts the close handshake.
    fn close(&self, code: Option<u16>, reason: Option<&str>) -> Result<()>;
    /// The connection state.
    fn ready_state(&self) -> ReadyState;
    /// The subprotocol agreed with the client (`Sec-WebSocket-Protocol`), once connected.
    fn protocol(&self) -> Option<String>;
    /// Replaces the serialized attachment, after checking its size.
    fn set_attachment(&self, serialized: Vec<u8>) -> Result<()>;
    /// The serialized attachment, if any.
    fn attachment(&self) -> Option<Bytes>;
    /// The socket's tags, if it is hibernatable.
    fn tags(&self) -> Result<Vec<String>>;
    /// Adds a tag to an accepted hibernatable socket.
    fn add_tag(&self, tag: &str) -> Result<()>;
    /// Removes a tag; `Ok(false)` if the socket did not have it.
    fn remove_tag(&self, tag: &str) -> Result<bool>;
    /// Accepts the socket with the standard (non-hibernatable) API.
    fn accept(self: Arc<Self>) -> Result<()>;
    /// The event stream of a socket accepted with [`SocketHost::accept`].
    fn events(&self) -> Result<EventStream>;
    /// Marks the client end as returned in a 101 response.
    fn couple(&self) -> Result<()>;
    /// The client end will never reach a connection: the 101 response carrying it, or its last
    /// handle before it was put in one, was dropped. Ignored once the socket is connected.
    fn abandon(self: Arc<Self>);
    /// For the runtime to recover its concrete type.
    fn as_any(&self) -> &dyn Any;
    /// For the runtime to recover its concrete type, owned.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// What the runtime offers for one Durable Object namespace (one binding).
pub trait NamespaceHost: Send + Sync + 'static {
    /// The binding name, e.g. `CHAT_ROOM`.
    fn binding(&self) -> &str;
    /// The deterministic id for `name`.
    fn id_from_name(&self, name: &str) -> ObjectId;
    /// A fresh random id.
    fn unique_id(&self) -> ObjectId;
    /// Parses and validates a 64-hex-digit id of this namespace.
    fn id_from_string(&self, hex: &str) -> Result<ObjectId>;
    /// Delivers an HTTP request to the object `id`, creating or waking it as needed.
    fn fetch(&self, id: ObjectId, request: Request) -> BoxFuture<'static, Result<Response>>;
    /// Calls the method `method` of the object `id` with serialized arguments (see
    /// [`Guest::call`](crate::Guest::call)); the answer is the serialized result.
    fn call(&self, id: ObjectId, method: String, args: Bytes) -> BoxFuture<'static, Result<Bytes>>;
}

/// What the runtime offers to a Worker and to objects through [`Env`](crate::Env).
pub trait EnvHost: Send + Sync + 'static {
    /// The namespace bound as `binding`, if any.
    fn namespace(&self, binding: &str) -> Option<Arc<dyn NamespaceHost>>;
    /// A plain-text variable from the configuration.
    fn var(&self, name: &str) -> Option<String>;
}

tokio::task_local! {
    /// The object whose handler is running on this task, so that `WebSocketPair::new()` can work
    /// without arguments as it does in workers-rs.
    static CURRENT_OBJECT: Arc<dyn ObjectHost>;
}

/// Runs `future` with `host` as the current object; the runtime wraps every handler with it.
pub fn scope_object<F: Future>(
    host: Arc<dyn ObjectHost>,
    future: F,
) -> impl Future<Output = F::Output> {
    CURRENT_OBJECT.scope(host, future)
}

/// Runs `f` with `host` as the current object; the runtime wraps constructors with it.
pub fn sync_scope_object<R>(host: Arc<dyn ObjectHost>, f: impl FnOnce() -> R) -> R {
    CURRENT_OBJECT.sync_scope(host, f)
}

/// The object whose handler is running on this task, if any.
pub(crate) fn current_object() -> Option<Arc<dyn ObjectHost>> {
    CURRENT_OBJECT.try_with(Arc::clone).ok()
}

impl fmt::Debug for dyn ObjectHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectHost")
            .field("id", &self.id())
            .finish()
    }
}
