//! Responses: plain helpers, and the 101 response that carries a WebSocket to its client.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

use crate::error::{Error, ErrorKind, Result};
use crate::websocket::WebSocket;
use crate::{Body, Response};

/// A plain-text response with `status`.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Body::from(body.into()))
        .expect("valid static parts")
}

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response {
    http::Response::builder()
        .status(status)
        .body(Body::empty())
        .expect("valid static parts")
}

/// Constructors on [`Response`] that mirror workers-rs: `Response::from_websocket(client)`.
pub trait ResponseExt: Sized {
    /// A `101 Switching Protocols` response that hands the client end of a
    /// [`WebSocketPair`](crate::WebSocketPair) to the connection that asked for the upgrade.
    fn from_websocket(client: WebSocket) -> Result<Self>;
}

impl ResponseExt for Response {
    fn from_websocket(client: WebSocket) -> Result<Self> {
        if !client.is_client_end() {
            return Err(Error::new(
                ErrorKind::Type,
                "Can't return the server end of a WebSocketPair in a Response; return the client end",
            ));
        }
        client.host().couple()?;
        let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
        response
            .extensions_mut()
            .insert(WebSocketUpgrade(Arc::new(Coupled(client))));
        Ok(response)
    }
}

/// The response extension that carries a client end to the server, which completes the upgrade.
///
/// If the response is dropped before reaching a connection (a Worker that discards it, a client
/// that went away), the socket is ended with a 1006 close so that the object hears about it.
#[derive(Clone)]
pub struct WebSocketUpgrade(Arc<Coupled>);

impl WebSocketUpgrade {
    /// The client end being delivered.
    pub fn client(&self) -> &WebSocket {
        &self.0.0
    }
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebSocketUpgrade").field(&self.0.0).finish()
    }
}

struct Coupled(WebSocket);

impl Drop for Coupled {
    fn drop(&mut self) {
        // The runtime ignores this once the socket is attached to a connection.
        self.0.host().clone().abandon();
    }
}
