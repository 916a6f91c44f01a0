//! The `DurableObject` trait and its type-erased form, the contract the runtime drives.

use std::future::Future;

use crate::error::{Error, Result};
use bytes::Bytes;

use crate::host::{BoxFuture, Reply};
use crate::storage::AlarmInfo;
use crate::websocket::{WebSocket, WebSocketIncomingMessage};
use crate::{Body, Env, Request, Response, State};

/// A Durable Object class.
///
/// The runtime creates an instance with [`DurableObject::new`] when the object first receives an
/// event, and again every time it wakes from hibernation, so `new` should be cheap: rebuild
/// in-memory maps from `state.get_websockets()` and their attachments. Handlers take `&mut self`
/// and run one at a time per object, each to completion (a *turn*): no locks or `RefCell` are
/// needed for the object's state. Different objects run in parallel.
///
/// Every handler has a default that does nothing (or answers 501 for `fetch`), never a panic.
/// A handler that returns `Err` leaves its socket open; one that panics resets the object (its
/// sockets are closed with 1011) and nothing else.
pub trait DurableObject: Send + Sized + 'static {
    /// Creates an instance. Runs on first use and on every wake.
    fn new(state: State, env: Env) -> Self;

    /// Handles an HTTP request sent through a [`Stub`](crate::Stub), including WebSocket upgrades.
    fn fetch(&mut self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        let _ = req;
        async {
            Ok(http::Response::builder()
                .status(http::StatusCode::NOT_IMPLEMENTED)
                .body(Body::from("this Durable Object has no fetch handler"))
                .expect("static response"))
        }
    }

    /// A text or binary message arrived on a hibernatable socket.
    fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (ws, message);
        async { Ok(()) }
    }

    /// A hibernatable socket closed: the peer sent a close frame (`was_clean`; the runtime has
    /// already answered it) or the connection dropped (code 1006, not clean). Last event of `ws`.
    fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (ws, code, reason, was_clean);
        async { Ok(()) }
    }

    /// A hibernatable socket failed with a protocol error; the runtime has closed it. Last event
    /// of `ws`.
    fn websocket_error(
        &mut self,
        ws: WebSocket,
        error: Error,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (ws, error);
        async { Ok(()) }
    }

    /// The alarm set with `storage().set_alarm(..)` fired. It runs at least once: an error or a
    /// panic retries it later (after 2 s, 4 s, 8 s, … up to 6 times). It wakes a hibernated object.
    fn alarm(&mut self, info: AlarmInfo) -> impl Future<Output = Result<()>> + Send {
        let _ = info;
        async { Ok(()) }
    }
}

/// An object instance behind a uniform, object-safe interface: what the runtime drives.
///
/// Every [`DurableObject`] is a `Guest`; another guest (an object written in another language)
/// would implement it directly.
pub trait Guest: Send + 'static {
    /// See [`DurableObject::fetch`].
    fn fetch(&mut self, req: Request) -> BoxFuture<'_, Result<Response>>;
    /// See [`DurableObject::websocket_message`].
    fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> BoxFuture<'_, Result<()>>;
    /// See [`DurableObject::websocket_close`].
    fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> BoxFuture<'_, Result<()>>;
    /// See [`DurableObject::websocket_error`].
    fn websocket_error(&mut self, ws: WebSocket, error: Error) -> BoxFuture<'_, Result<()>>;
    /// See [`DurableObject::alarm`].
    fn alarm(&mut self, info: AlarmInfo) -> BoxFuture<'_, Result<()>>;

    /// Handles an HTTP request, answering through `reply`. The runtime runs the returned future
    /// as the turn; a guest may answer later, from a turn of [`Guest::resume`]. The default
    /// answers with [`Guest::fetch`] within the turn.
    fn serve(&mut self, req: Request, reply: Reply<Response>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let answer = self.fetch(req).await;
            reply.send(answer);
        })
    }

    /// Handles a call of the method `method` with serialized arguments (JavaScript RPC: the
    /// guest defines the encoding), answering through `reply` like [`Guest::serve`]. The default
    /// refuses: Rust objects take requests through `fetch`.
    fn call(&mut self, method: String, args: Bytes, reply: Reply<Bytes>) -> BoxFuture<'_, ()> {
        let _ = args;
        reply.send(Err(Error::new(
            crate::ErrorKind::Type,
            format!("this Durable Object has no RPC method {method:?}: call it with fetch"),
        )));
        Box::pin(async {})
    }

    /// Runs work the guest asked a turn for with
    /// [`ObjectHost::schedule_turn`](crate::host::ObjectHost::schedule_turn).
    fn resume(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Whether the instance broke during the last call (a JavaScript guest's CPU or memory limit,
    /// `ctx.abort()`, a failed `blockConcurrencyWhile`), with why. The runtime asks after every
    /// call and resets a broken object: its instance is dropped and its sockets are closed.
    fn take_fault(&mut self) -> Option<String> {
        None
    }
}

impl<T: DurableObject> Guest for T {
    fn fetch(&mut self, req: Request) -> BoxFuture<'_, Result<Response>> {
        Box::pin(DurableObject::fetch(self, req))
    }

    fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(DurableObject::websocket_message(self, ws, message))
    }

    fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(DurableObject::websocket_close(
            self, ws, code, reason, was_clean,
        ))
    }

    fn websocket_error(&mut self, ws: WebSocket, error: Error) -> BoxFuture<'_, Result<()>> {
        Box::pin(DurableObject::websocket_error(self, ws, error))
    }

    fn alarm(&mut self, info: AlarmInfo) -> BoxFuture<'_, Result<()>> {
        Box::pin(DurableObject::alarm(self, info))
    }
}
