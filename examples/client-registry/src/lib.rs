//! Seed 004 asks how to keep a registry of clients (broadcast to all, forget one when it closes)
//! once the object hibernates and in-memory maps are gone. The answer: keep nothing in memory.
//! Each socket is accepted with the tag `client:<id>`; the runtime keeps the tags across
//! hibernation and drops a socket from `get_websockets()` once its close event is delivered.
//!
//! - `GET /websocket` (WebSocket): registers a client; it gets
//!   `{"type":"welcome","clientId":..,"connections":n}` and the others `{"type":"joined",..}`.
//! - A text message `{"to":"<clientId>","text":..}` goes to that client only; any other message
//!   is broadcast to every client as
//!   `[Durable Object] message: <message>, from: <clientId>, connections: <n>`.
//! - On close, the others get `{"type":"left","clientId":..,"connections":n}`.
//! - `GET /clients`: `{"clients":[..ids..]}`, read from the tags.

use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use serde_json::{Value, json};

/// The binding of the registry class.
pub const BINDING: &str = "CLIENT_REGISTRY";

const TAG_PREFIX: &str = "client:";

/// The registry: stateless in memory.
#[derive(Debug)]
pub struct ClientRegistry {
    state: State,
}

impl DurableObject for ClientRegistry {
    fn new(state: State, _env: Env) -> Self {
        ClientRegistry { state }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        if !req.is_websocket_upgrade() {
            let clients: Vec<String> = self
                .state
                .get_websockets()
                .iter()
                .filter_map(|ws| client_id(&self.state, ws))
                .collect();
            let mut reply =
                response::text(StatusCode::OK, json!({ "clients": clients }).to_string());
            reply.headers_mut().insert(
                "content-type",
                "application/json".parse().expect("static header"),
            );
            return Ok(reply);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[&format!("{TAG_PREFIX}{id}")])?;
        let connections = self.state.get_websocket_count();
        pair.server
            .send(&json!({ "type": "welcome", "clientId": id, "connections": connections }))?;
        let joined =
            json!({ "type": "joined", "clientId": id, "connections": connections }).to_string();
        self.state
            .broadcast(None, joined.as_str(), Some(&pair.server));
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let from = client_id(&self.state, &ws).unwrap_or_default();
        let text = match &message {
            WebSocketIncomingMessage::String(text) => text.as_str(),
            WebSocketIncomingMessage::Binary(_) => "[object ArrayBuffer]",
        };
        if let Ok(direct) = serde_json::from_str::<Value>(text)
            && let Some(to) = direct.get("to").and_then(Value::as_str)
        {
            let message =
                json!({ "type": "direct", "from": from, "text": direct.get("text") }).to_string();
            self.state
                .broadcast(Some(&format!("{TAG_PREFIX}{to}")), message.as_str(), None);
            return Ok(());
        }
        let connections = self.state.get_websocket_count();
        let line =
            format!("[Durable Object] message: {text}, from: {from}, connections: {connections}");
        self.state.broadcast(None, line.as_str(), None);
        Ok(())
    }

    async fn websocket_close(
        &mut self,
        ws: WebSocket,
        _code: u16,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.forget(&ws);
        Ok(())
    }

    async fn websocket_error(&mut self, ws: WebSocket, _error: Error) -> Result<()> {
        self.forget(&ws);
        Ok(())
    }
}

impl ClientRegistry {
    /// The runtime already dropped `ws` from the registry; tell the others.
    fn forget(&self, ws: &WebSocket) {
        let Some(id) = client_id(&self.state, ws) else {
            return;
        };
        let connections = self.state.get_websocket_count();
        let left =
            json!({ "type": "left", "clientId": id, "connections": connections }).to_string();
        self.state.broadcast(None, left.as_str(), None);
    }
}

/// The client id, from the socket's tag.
fn client_id(state: &State, ws: &WebSocket) -> Option<String> {
    state
        .get_tags(ws)
        .ok()?
        .into_iter()
        .find_map(|tag| tag.strip_prefix(TAG_PREFIX).map(str::to_owned))
}

/// The Worker: `/websocket` and `/clients` go to the one registry object.
async fn worker(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    match req.uri().path() {
        "/websocket" if req.is_websocket_upgrade() => {}
        "/websocket" => {
            return Ok(response::text(
                StatusCode::UPGRADE_REQUIRED,
                "Expected Upgrade: websocket",
            ));
        }
        "/clients" => {}
        _ => {
            return Ok(response::text(
                StatusCode::NOT_FOUND,
                "Supported endpoints: /websocket (WebSocket), /clients",
            ));
        }
    }
    env.durable_object(BINDING)?
        .get_by_name("registry")?
        .fetch(req)
        .await
}

/// The application.
pub fn app() -> App {
    App::new()
        .durable_object::<ClientRegistry>(BINDING)
        .worker(|env| Router::new().fallback(worker).with_state(env))
}
