//! A durable counter per name: the simplest use of storage.
//!
//! - `POST /counter/{name}` increments the counter and answers its new value, as plain text.
//! - `GET /counter/{name}` answers its current value.
//! - `GET /counter/{name}` as a WebSocket: every message increments the counter, and the new
//!   value comes back as a text message.
//!
//! A value answered is durable before the answer leaves the server: it survives a crash of the
//! process (and, at the default durability, of the machine).

use dormouse::axum::Router;
use dormouse::axum::extract::{Path, Request as AxumRequest, State as Extract};
use dormouse::axum::routing::{MethodRouter, get};
use dormouse::http::{Method, StatusCode};
use dormouse::prelude::*;

/// The binding of the counter class.
pub const BINDING: &str = "COUNTER";

/// One counter.
#[derive(Debug)]
pub struct Counter {
    state: State,
}

impl DurableObject for Counter {
    fn new(state: State, _env: Env) -> Self {
        Counter { state }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        if req.is_websocket_upgrade() {
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server)?;
            return Response::from_websocket(pair.client);
        }
        let count = if req.method() == Method::POST {
            self.increment()?
        } else {
            self.state.storage()?.get("count")?.unwrap_or(0)
        };
        Ok(response::text(StatusCode::OK, count.to_string()))
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        _message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let count = self.increment()?;
        ws.send_with_str(count.to_string())
    }
}

impl Counter {
    /// Adds one to the stored count; returns the new value.
    fn increment(&self) -> Result<u64> {
        let storage = self.state.storage()?;
        let count = storage.get::<u64>("count")?.unwrap_or(0) + 1;
        storage.put("count", count)?;
        Ok(count)
    }
}

async fn counter(
    Extract(env): Extract<Env>,
    Path(name): Path<String>,
    req: AxumRequest,
) -> Result<Response> {
    env.durable_object(BINDING)?
        .get_by_name(&name)?
        .fetch(req)
        .await
}

/// The application.
pub fn app() -> App {
    let route: MethodRouter<Env> = get(counter).post(counter);
    App::new().durable_object::<Counter>(BINDING).worker(|env| {
        Router::new()
            .route("/counter/{name}", route)
            .with_state(env)
    })
}
