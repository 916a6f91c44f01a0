//! Seed 000, "WebSocket Hibernation Example: Chat Room", on Dormouse.
//!
//! - `GET /room/{roomId}?userId=..&username=..` (WebSocket) joins the room's object. Messages are
//!   JSON: `{"type":"chat","text":..}` is broadcast to the room, `{"type":"typing"}` to everyone
//!   else; joins and leaves are announced as `{"type":"system","text":..}`.
//! - `GET /` is a page to chat from a browser (a Dormouse addition).
//! - Any other path answers 400 with the seed's usage line.
//!
//! One deliberate difference from the seed: when a client disconnects without a close frame
//! (code 1006), the seed's `ws.close(1006, ..)` throws before the leave is announced; here the
//! runtime has already closed the socket, so the leave is always announced.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::axum::response::Html;
use dormouse::axum::routing::get;
use dormouse::http::{Method, StatusCode};
use dormouse::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The binding of the room class.
pub const BINDING: &str = "CHAT_ROOM";

/// The page served at `/`.
const PAGE: &str = include_str!("page.html");

/// What each socket carries across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionMetadata {
    user_id: String,
    username: String,
}

/// Messages the room sends, in the seed's JSON shapes (field order included).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Outgoing<'a> {
    System {
        text: String,
        timestamp: u64,
    },
    #[serde(rename_all = "camelCase")]
    Chat {
        user_id: &'a str,
        username: &'a str,
        /// Absent when the client sent no `text`, as `JSON.stringify` drops `undefined`.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<Value>,
        timestamp: u64,
    },
    #[serde(rename_all = "camelCase")]
    Typing {
        user_id: &'a str,
        username: &'a str,
    },
}

/// One chat room.
#[derive(Debug)]
pub struct ChatRoom {
    state: State,
    /// Session of every connected socket; rebuilt from attachments on wake.
    sessions: HashMap<WebSocketId, Option<SessionMetadata>>,
}

impl DurableObject for ChatRoom {
    fn new(state: State, _env: Env) -> Self {
        let sessions: HashMap<_, _> = state
            .get_websockets()
            .iter()
            .map(|ws| (ws.id(), ws.deserialize_attachment().ok().flatten()))
            .collect();
        tracing::info!(
            "ChatRoom constructor: restored {} connections",
            sessions.len()
        );
        ChatRoom { state, sessions }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        if !req.is_websocket_upgrade() {
            return Ok(response::text(
                StatusCode::UPGRADE_REQUIRED,
                "Expected Upgrade: websocket",
            ));
        }
        if req.method() != Method::GET {
            return Ok(response::text(
                StatusCode::BAD_REQUEST,
                "Expected GET method",
            ));
        }
        let user_id = req
            .query_param("userId")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "anonymous".into());
        let username = req
            .query_param("username")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "Anonymous".into());

        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server)?;
        let metadata = SessionMetadata { user_id, username };
        pair.server.serialize_attachment(&metadata)?;
        let joined = format!("{} joined the room", metadata.username);
        self.sessions.insert(pair.server.id(), Some(metadata));

        self.broadcast(
            &Outgoing::System {
                text: joined,
                timestamp: now(),
            },
            Some(&pair.server),
        )?;
        pair.server.send(&Outgoing::System {
            text: format!(
                "Welcome to the chat room! {} user(s) online.",
                self.sessions.len()
            ),
            timestamp: now(),
        })?;
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(Some(session)) = self.sessions.get(&ws.id()) else {
            tracing::error!("WebSocket not found in sessions");
            return Ok(());
        };
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let data: Value = match serde_json::from_str(&text) {
            Ok(data) => data,
            Err(error) => {
                tracing::error!(%error, "Failed to parse message");
                return Ok(());
            }
        };
        let (user_id, username) = (session.user_id.as_str(), session.username.as_str());
        match data.get("type").and_then(Value::as_str) {
            Some("chat") => {
                let chat = Outgoing::Chat {
                    user_id,
                    username,
                    text: data.get("text").cloned(),
                    timestamp: now(),
                };
                self.broadcast(&chat, None)
            }
            Some("typing") => self.broadcast(&Outgoing::Typing { user_id, username }, Some(&ws)),
            _ => Ok(()),
        }
    }

    async fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        _reason: String,
        was_clean: bool,
    ) -> Result<()> {
        let session = self.sessions.remove(&ws.id()).flatten();
        if let Some(session) = &session {
            let text = format!("{} left the room", session.username);
            self.broadcast(
                &Outgoing::System {
                    text,
                    timestamp: now(),
                },
                None,
            )?;
        }
        let name = session.as_ref().map_or("unknown", |s| s.username.as_str());
        tracing::info!("WebSocket closed: {name}, code: {code}, clean: {was_clean}");
        Ok(())
    }

    async fn websocket_error(&mut self, ws: WebSocket, error: Error) -> Result<()> {
        tracing::error!(%error, "WebSocket error");
        if let Some(Some(session)) = self.sessions.remove(&ws.id()) {
            let text = format!("{} disconnected (error)", session.username);
            self.broadcast(
                &Outgoing::System {
                    text,
                    timestamp: now(),
                },
                None,
            )?;
        }
        Ok(())
    }
}

impl ChatRoom {
    /// Sends `message` to every open socket of the room except `except`: encoded once, sent by
    /// the runtime.
    fn broadcast(&self, message: &Outgoing<'_>, except: Option<&WebSocket>) -> Result<()> {
        let json = serde_json::to_string(message)?;
        self.state.broadcast(None, json.as_str(), except);
        Ok(())
    }
}

/// Milliseconds since the epoch, as `Date.now()`.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The Worker: `/room/{roomId}` goes to the room's object, `/` is the page, the rest is usage.
async fn worker(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    let room = req
        .uri()
        .path()
        .strip_prefix("/room/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty());
    let Some(room) = room else {
        return Ok(response::text(
            StatusCode::BAD_REQUEST,
            "Usage: /room/{roomId}?userId={userId}&username={username}",
        ));
    };
    let namespace = env.durable_object(BINDING)?;
    let stub = namespace.get(namespace.id_from_name(room)?)?;
    stub.fetch(req).await
}

/// The application.
pub fn app() -> App {
    App::new()
        .durable_object::<ChatRoom>(BINDING)
        .worker(|env| {
            Router::new()
                .route("/", get(|| async { Html(PAGE) }).fallback(worker))
                .fallback(worker)
                .with_state(env)
        })
}
