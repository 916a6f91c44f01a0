//! Seed 001, "Build a WebSocket server with WebSocket Hibernation" (the full version), on Dormouse.
//!
//! `GET /websocket` connects to the object named `foo`. Each connection gets a random session id,
//! kept in its attachment so that the session map is rebuilt when the object wakes. `ping` is
//! answered `pong` by the runtime without waking the object. Any other message gets three kinds of
//! replies: one to the sender, one to everyone, one to everyone but the sender.

use std::collections::HashMap;

use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use serde::{Deserialize, Serialize};

/// The binding of the object class.
pub const BINDING: &str = "WEBSOCKET_HIBERNATION_SERVER";

/// What each socket carries across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    id: String,
}

/// The seed's Durable Object.
#[derive(Debug)]
pub struct WebSocketHibernationServer {
    state: State,
    sessions: HashMap<WebSocketId, Session>,
}

impl DurableObject for WebSocketHibernationServer {
    fn new(state: State, _env: Env) -> Self {
        // Wake any hibernated sockets back into the session map.
        let sessions = state
            .get_websockets()
            .iter()
            .filter_map(|ws| Some((ws.id(), ws.deserialize_attachment::<Session>().ok()??)))
            .collect();
        // Answered by the runtime; does not wake the object.
        let _ =
            state.set_websocket_auto_response(&WebSocketRequestResponsePair::new("ping", "pong"));
        WebSocketHibernationServer { state, sessions }
    }

    async fn fetch(&mut self, _req: Request) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server)?;
        let session = Session {
            id: uuid::Uuid::new_v4().to_string(),
        };
        pair.server.serialize_attachment(&session)?;
        self.sessions.insert(pair.server.id(), session);
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(session) = self.sessions.get(&ws.id()) else {
            return Err(Error::message("message from a socket without a session"));
        };
        let message = match &message {
            WebSocketIncomingMessage::String(text) => text.as_str(),
            WebSocketIncomingMessage::Binary(_) => "[object ArrayBuffer]",
        };
        let (from, total) = (&session.id, self.sessions.len());
        ws.send_with_str(format!(
            "[Durable Object] message: {message}, from: {from}, to: the initiating client. Total connections: {total}"
        ))?;
        let to_all = format!(
            "[Durable Object] message: {message}, from: {from}, to: all clients. Total connections: {total}"
        );
        self.state.broadcast(None, to_all.as_str(), None);
        let to_others = format!(
            "[Durable Object] message: {message}, from: {from}, to: all clients except the initiating client. Total connections: {total}"
        );
        self.state.broadcast(None, to_others.as_str(), Some(&ws));
        Ok(())
    }

    async fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.sessions.remove(&ws.id());
        // The runtime has already replied to the close; the seed's reply is a no-op here.
        if code != 1005 && code != 1006 {
            ws.close(Some(code), Some("Durable Object is closing WebSocket"))?;
        }
        Ok(())
    }
}

/// The seed's Worker.
async fn worker(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    let target = req.uri().path_and_query().map_or("", |pq| pq.as_str());
    if !target.ends_with("/websocket") {
        let mut reply = response::text(
            StatusCode::OK,
            "Supported endpoints:\n/websocket: Expects a WebSocket upgrade request",
        );
        reply
            .headers_mut()
            .insert("content-type", "text/plain".parse().expect("static header"));
        return Ok(reply);
    }
    if !req.is_websocket_upgrade() {
        return Ok(response::text(
            StatusCode::UPGRADE_REQUIRED,
            "Worker expected Upgrade: websocket",
        ));
    }
    if req.method() != dormouse::http::Method::GET {
        return Ok(response::text(
            StatusCode::BAD_REQUEST,
            "Worker expected GET method",
        ));
    }
    env.durable_object(BINDING)?
        .get_by_name("foo")?
        .fetch(req)
        .await
}

/// The application.
pub fn app() -> App {
    App::new()
        .durable_object::<WebSocketHibernationServer>(BINDING)
        .worker(|env| Router::new().fallback(worker).with_state(env))
}
