//! The Durable Objects programming model for Rust: what a Dormouse application is written against.
//!
//! Names follow workers-rs (Cloudflare's Rust SDK) wherever it has one, so that habits and code
//! carry over: a [`DurableObject`] gets a [`State`] and an [`Env`]; a Worker (any axum `Router`
//! or `tower::Service`) reaches objects through [`Env::durable_object`], an [`ObjectNamespace`]
//! and a [`Stub`]. Requests and responses are the `http` crate's types.
//!
//! # Layout
//! - [`object`] — the [`DurableObject`] trait, and [`Guest`], its object-safe form that the runtime
//!   drives.
//! - [`state`] — [`State`], the object's view of the runtime: hibernatable sockets, tags,
//!   auto-responses, event timeout, `wait_until`, broadcast.
//! - [`websocket`] — [`WebSocketPair`], [`WebSocket`], messages and the standard event stream.
//! - [`storage`] — [`Storage`]: synchronous KV, SQL, `transaction_sync`, the alarm.
//! - [`env`] — [`Env`], [`ObjectNamespace`], [`Stub`].
//! - [`id`] — [`ObjectId`].
//! - [`request`] — [`RequestExt`] (query parameters).
//! - [`response`] — response helpers and `Response::from_websocket`.
//! - [`host`] — the traits a runtime implements; applications never use them.
//! - [`error`] — [`Error`], [`ErrorKind`], [`Result`].
//!
//! # Example
//! ```
//! use dormouse_sdk::prelude::*;
//!
//! /// Replies to every message with the number of connected sockets.
//! struct Echo {
//!     state: State,
//! }
//!
//! impl DurableObject for Echo {
//!     fn new(state: State, _env: Env) -> Self {
//!         Echo { state }
//!     }
//!
//!     async fn fetch(&mut self, _req: Request) -> Result<Response> {
//!         let pair = WebSocketPair::new()?;
//!         self.state.accept_web_socket(&pair.server)?;
//!         Response::from_websocket(pair.client)
//!     }
//!
//!     async fn websocket_message(&mut self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
//!         let count = self.state.get_websockets().len();
//!         ws.send_with_str(format!("{message:?}, connections: {count}"))
//!     }
//! }
//! ```

pub mod env;
pub mod error;
pub mod host;
pub mod id;
pub mod object;
pub mod request;
pub mod response;
pub mod state;
pub mod storage;
pub mod websocket;

pub use env::{Env, ObjectNamespace, Stub};
pub use error::{Error, ErrorKind, Result};
pub use id::ObjectId;
pub use object::{DurableObject, Guest};
pub use request::RequestExt;
pub use response::ResponseExt;
pub use state::State;
pub use storage::{
    AlarmInfo, ListOptions, ScheduledTime, SqlCursor, SqlStorage, SqlStorageValue, Storage,
};
pub use websocket::{
    CloseEvent, EventStream, MessageEvent, Outgoing, ReadyState, WebSocket, WebSocketId,
    WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair, WebsocketEvent,
};

/// The HTTP body type of requests and responses (axum's).
pub type Body = axum_core::body::Body;
/// An HTTP request.
pub type Request = http::Request<Body>;
/// An HTTP response.
pub type Response = http::Response<Body>;

/// Everything an application usually needs: `use dormouse_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::request::RequestExt;
    pub use crate::response::{self, ResponseExt};
    pub use crate::{
        AlarmInfo, Body, DurableObject, Env, Error, ErrorKind, ListOptions, ObjectId,
        ObjectNamespace, Request, Response, Result, SqlStorageValue, State, Storage, Stub,
        WebSocket, WebSocketId, WebSocketIncomingMessage, WebSocketPair,
        WebSocketRequestResponsePair,
    };
}
