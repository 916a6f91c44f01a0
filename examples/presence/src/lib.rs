//! The presence pattern of seed 003 on Dormouse.
//!
//! `GET /presence/{room}?userId=..` (WebSocket) joins a room. The newcomer gets
//! `{"type":"presence_list","users":[{"userId","status"},..]}`; the others get
//! `{"type":"user_joined","userId"}`. `{"type":"status_update","status":..}` changes the sender's
//! status (kept in its attachment, so it survives hibernation) and is announced to everyone as
//! `{"type":"presence_update","userId","status"}`. When a user's last connection closes, the room
//! announces `{"type":"user_left","userId"}`. The object keeps no memory of its own: everything
//! is in the sockets' tags and attachments.

use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The binding of the room class.
pub const BINDING: &str = "PRESENCE_ROOM";

/// What each socket carries across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Presence {
    user_id: String,
    status: String,
}

/// A presence room.
#[derive(Debug)]
pub struct PresenceRoom {
    state: State,
}

impl DurableObject for PresenceRoom {
    fn new(state: State, _env: Env) -> Self {
        PresenceRoom { state }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        let Some(user_id) = req.query_param("userId").filter(|id| !id.is_empty()) else {
            return Ok(response::text(
                StatusCode::BAD_REQUEST,
                "userId is required",
            ));
        };
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[&format!("user:{user_id}")])?;
        pair.server.serialize_attachment(Presence {
            user_id: user_id.clone(),
            status: "online".into(),
        })?;

        pair.server
            .send(&json!({ "type": "presence_list", "users": self.presence_list() }))?;
        self.broadcast(
            &json!({ "type": "user_joined", "userId": user_id }),
            Some(&pair.server),
        );
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let data: Value = serde_json::from_str(&text)?;
        if data.get("type").and_then(Value::as_str) != Some("status_update") {
            return Ok(());
        }
        let Some(mut presence) = ws.deserialize_attachment::<Presence>()? else {
            return Ok(());
        };
        presence.status = match data.get("status") {
            Some(Value::String(status)) => status.clone(),
            Some(other) => other.to_string(),
            None => return Ok(()),
        };
        ws.serialize_attachment(&presence)?;
        self.broadcast(&json!({ "type": "presence_update", "userId": presence.user_id, "status": presence.status }), None);
        Ok(())
    }

    async fn websocket_close(
        &mut self,
        ws: WebSocket,
        _code: u16,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.left(&ws)
    }

    async fn websocket_error(&mut self, ws: WebSocket, _error: Error) -> Result<()> {
        self.left(&ws)
    }
}

impl PresenceRoom {
    /// Everyone connected, from the sockets' attachments.
    fn presence_list(&self) -> Vec<Presence> {
        self.state
            .get_websockets()
            .iter()
            .filter_map(|ws| ws.deserialize_attachment().ok().flatten())
            .collect()
    }

    /// Announces a user's departure once their last connection is gone (a user may have several).
    fn left(&self, ws: &WebSocket) -> Result<()> {
        let Some(presence) = ws.deserialize_attachment::<Presence>()? else {
            return Ok(());
        };
        let tag = format!("user:{}", presence.user_id);
        if self.state.get_websockets_with_tag(&tag).is_empty() {
            self.broadcast(
                &json!({ "type": "user_left", "userId": presence.user_id }),
                None,
            );
        }
        Ok(())
    }

    fn broadcast(&self, message: &Value, except: Option<&WebSocket>) {
        self.state
            .broadcast(None, message.to_string().as_str(), except);
    }
}

/// The Worker: `/presence/{room}` goes to the room's object.
async fn worker(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    let room = req
        .uri()
        .path()
        .strip_prefix("/presence/")
        .and_then(|rest| rest.split('/').next())
        .filter(|r| !r.is_empty());
    let Some(room) = room else {
        return Ok(response::text(
            StatusCode::BAD_REQUEST,
            "Usage: /presence/{room}?userId={userId}",
        ));
    };
    if !req.is_websocket_upgrade() {
        return Ok(response::text(
            StatusCode::UPGRADE_REQUIRED,
            "Expected WebSocket upgrade",
        ));
    }
    env.durable_object(BINDING)?
        .get_by_name(room)?
        .fetch(req)
        .await
}

/// The application.
pub fn app() -> App {
    App::new()
        .durable_object::<PresenceRoom>(BINDING)
        .worker(|env| Router::new().fallback(worker).with_state(env))
}
