//! Seed 002, "Build a WebSocket server with WebSocket Hibernation", on Dormouse.
//!
//! `GET /websocket` (with `Upgrade: websocket`) connects to the one object named `foo`, which
//! answers every message with `[Durable Object] message: <message>, connections: <n>`. Any other
//! URL answers 400, as the seed does.

use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::http::StatusCode;
use dormouse::prelude::*;

/// The binding of the object class.
pub const BINDING: &str = "WEBSOCKET_HIBERNATION_SERVER";

/// The seed's Durable Object: no state of its own, everything comes from the runtime.
#[derive(Debug)]
pub struct WebSocketHibernationServer {
    state: State,
}

impl DurableObject for WebSocketHibernationServer {
    fn new(state: State, _env: Env) -> Self {
        WebSocketHibernationServer { state }
    }

    async fn fetch(&mut self, _req: Request) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server)?;
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let connections = self.state.get_websocket_count();
        ws.send_with_str(format!(
            "[Durable Object] message: {}, connections: {connections}",
            js_text(&message)
        ))
    }

    async fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        // The seed replies to the close here. Dormouse has already replied, so this is a no-op; the
        // codes a peer cannot be sent (1005 "no status", 1006 "dropped") are skipped rather than
        // turned into a logged error.
        if code != 1005 && code != 1006 {
            ws.close(Some(code), Some("Durable Object is closing WebSocket"))?;
        }
        Ok(())
    }
}

/// How JavaScript's template literal renders a message: binary data is an `ArrayBuffer`.
pub fn js_text(message: &WebSocketIncomingMessage) -> &str {
    match message {
        WebSocketIncomingMessage::String(text) => text,
        WebSocketIncomingMessage::Binary(_) => "[object ArrayBuffer]",
    }
}

/// The seed's Worker: only URLs ending in `/websocket` reach the object.
async fn worker(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    let target = req.uri().path_and_query().map_or("", |pq| pq.as_str());
    if !target.ends_with("/websocket") {
        let mut reply = response::empty(StatusCode::BAD_REQUEST);
        reply
            .headers_mut()
            .insert("content-type", "text/plain".parse().expect("static header"));
        return Ok(reply);
    }
    if !req.is_websocket_upgrade() {
        return Ok(response::text(
            StatusCode::UPGRADE_REQUIRED,
            "Durable Object expected Upgrade: websocket",
        ));
    }
    let namespace = env.durable_object(BINDING)?;
    let stub = namespace.get(namespace.id_from_name("foo")?)?;
    stub.fetch(req).await
}

/// The application: the object class and the Worker in front of it.
pub fn app() -> App {
    App::new()
        .durable_object::<WebSocketHibernationServer>(BINDING)
        .worker(|env| Router::new().fallback(worker).with_state(env))
}
