//! A probe object for behaviour tests, and a journal of what its handlers saw.
//!
//! The probe runs commands sent as text messages (`echo x`, `close 4000 bye`, `panic`, …) and
//! records every constructor and handler call in a journal that tests wait on, so that tests
//! observe handler calls without sleeping.

#![allow(dead_code, unreachable_pub)]

pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use dormouse::WebsocketEvent;
use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use futures_util::StreamExt;
use tokio::sync::Notify;

pub const PROBE: &str = "PROBE";

static JOURNAL: LazyLock<Mutex<HashMap<String, Vec<String>>>> = LazyLock::new(Default::default);
static CHANGED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Records `entry` for object `name`.
pub fn record(name: &str, entry: String) {
    JOURNAL
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .push(entry);
    CHANGED.notify_waiters();
}

static GATES: LazyLock<Mutex<HashMap<String, Arc<Notify>>>> = LazyLock::new(Default::default);

fn gate(name: &str) -> Arc<Notify> {
    GATES
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .clone()
}

/// Waits until the test calls [`release`] with `name` (before or after): a handler that is still
/// running for as long as a test needs.
pub async fn hold(name: &str) {
    gate(name).notified().await;
}

/// Lets a handler held on `name` go on.
pub fn release(name: &str) {
    gate(name).notify_one();
}

/// What object `name` recorded so far.
pub fn journal(name: &str) -> Vec<String> {
    JOURNAL
        .lock()
        .unwrap()
        .get(name)
        .cloned()
        .unwrap_or_default()
}

/// Waits (with a deadline) until object `name` recorded an entry starting with `prefix`, and
/// returns it.
pub async fn wait_for(name: &str, prefix: &str) -> String {
    let wait = async {
        loop {
            let notified = CHANGED.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(entry) = journal(name).into_iter().find(|e| e.starts_with(prefix)) {
                return entry;
            }
            notified.await;
        }
    };
    tokio::time::timeout(dormouse_testing::DEADLINE, wait)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{name}: no journal entry starting with {prefix:?}; journal: {:?}",
                journal(name)
            )
        })
}

/// Waits (with a deadline) until object `name` recorded `n` entries starting with `prefix`.
pub async fn wait_for_count(name: &str, prefix: &str, n: usize) {
    let wait = async {
        loop {
            let notified = CHANGED.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if count(name, prefix) >= n {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(dormouse_testing::DEADLINE, wait)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{name}: fewer than {n} entries starting with {prefix:?}; journal: {:?}",
                journal(name)
            )
        })
}

/// Counts entries of `name` starting with `prefix`.
pub fn count(name: &str, prefix: &str) -> usize {
    journal(name)
        .iter()
        .filter(|e| e.starts_with(prefix))
        .count()
}

/// The probe object.
pub struct Probe {
    state: State,
    name: String,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

impl DurableObject for Probe {
    fn new(state: State, _env: Env) -> Self {
        let name = state.id().name().unwrap_or("unnamed").to_owned();
        if name.starts_with("ctor-panic") {
            panic!("constructor of {name} panics");
        }
        let sockets = state.get_websockets();
        let attachments: Vec<String> = sockets
            .iter()
            .map(|ws| {
                ws.deserialize_attachment::<serde_json::Value>()
                    .ok()
                    .flatten()
                    .map_or("-".into(), |v| v.to_string())
            })
            .collect();
        record(
            &name,
            format!(
                "new sockets={} attachments={}",
                sockets.len(),
                attachments.join(",")
            ),
        );
        Probe { state, name }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        record(&self.name, format!("fetch {}", req.uri()));
        if req.headers().get("upgrade").is_none() {
            if req.uri().path().ends_with("/panic") {
                panic!("fetch panics");
            }
            if req.uri().path().ends_with("/fail") {
                return Err(Error::message("fetch fails"));
            }
            if let Some(gate) = req.query_param("hold") {
                hold(&gate).await;
            }
            return Ok(response::text(
                StatusCode::OK,
                format!("id={} name={}", self.state.id(), self.name),
            ));
        }
        let pair = WebSocketPair::new()?;
        let tags_param = req.query_param("tags").unwrap_or_default();
        let tags: Vec<&str> = tags_param.split(',').filter(|t| !t.is_empty()).collect();
        match req.query_param("mode").as_deref().unwrap_or("hibernate") {
            "hibernate" => {
                if let Err(error) = self.state.accept_websocket_with_tags(&pair.server, &tags) {
                    return Ok(response::text(StatusCode::BAD_REQUEST, error.to_string()));
                }
            }
            "standard" => {
                pair.server.accept()?;
                let mut events = pair.server.events()?;
                let (ws, name) = (pair.server.clone(), self.name.clone());
                self.state.wait_until(async move {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(WebsocketEvent::Message(message)) => {
                                let text = message.text().unwrap_or_default();
                                record(&name, format!("standard-message:{text}"));
                                let _ = ws.send_with_str(format!("standard echo: {text}"));
                            }
                            Ok(WebsocketEvent::Close(close)) => {
                                record(
                                    &name,
                                    format!(
                                        "standard-close:{}:{}:{}",
                                        close.code(),
                                        close.reason(),
                                        close.was_clean()
                                    ),
                                );
                            }
                            Err(error) => record(&name, format!("standard-error:{error}")),
                        }
                    }
                    record(&name, "standard-end".into());
                });
            }
            _ => {}
        }
        if let Some(attachment) = req.query_param("attach") {
            pair.server
                .serialize_attachment(serde_json::json!({ "v": attachment }))?;
        }
        if let Some(greeting) = req.query_param("greet") {
            pair.server.send_with_str(greeting)?;
        }
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut response = Response::from_websocket(pair.client)?;
        // `protocol=first` takes the client's first offer; any other value is sent as it is.
        let chosen = match req.query_param("protocol").as_deref() {
            None => None,
            Some("first") => offered.and_then(|o| o.split(',').next().map(|p| p.trim().to_owned())),
            Some(name) => Some(name.to_owned()),
        };
        if let Some(chosen) = chosen {
            response.headers_mut().insert(
                "sec-websocket-protocol",
                dormouse::http::HeaderValue::from_str(&chosen).unwrap(),
            );
        }
        Ok(response)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(bytes) => {
                record(&self.name, format!("binary:{}", bytes.len()));
                return ws.send_with_bytes(&bytes);
            }
        };
        record(&self.name, format!("message:{text}"));
        let (command, rest) = text.split_once(' ').unwrap_or((&text, ""));
        let reply = match command {
            "echo" => rest.to_owned(),
            // Many frames in one turn: the first go out at once, the rest through the driver.
            "burst" => {
                let frames: usize = rest.parse().unwrap();
                for n in 0..frames {
                    ws.send_with_str(format!("{n}"))?;
                }
                "burst done".into()
            }
            "close" => {
                let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                let code = (!code.is_empty()).then(|| code.parse().unwrap());
                let reason = (!reason.is_empty()).then_some(reason);
                match ws.close(code, reason) {
                    Ok(()) => return Ok(()),
                    Err(error) => format!("error: {error}"),
                }
            }
            "send-after-close" => {
                ws.close(Some(4000), Some("done"))?;
                match ws.send_with_str("late") {
                    Ok(()) => "sent".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "attach" => match ws.serialize_attachment(serde_json::json!({ "v": rest })) {
                Ok(()) => "attached".into(),
                Err(error) => format!("error: {error}"),
            },
            "attach-size" => {
                let size: usize = rest.parse().unwrap();
                // JSON adds two quote characters around the string.
                match ws.serialize_attachment("x".repeat(size - 2)) {
                    Ok(()) => "attached".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "attachment" => ws
                .deserialize_attachment::<serde_json::Value>()?
                .map_or("none".into(), |v| v.to_string()),
            "tags" => self.state.get_tags(&ws)?.join(","),
            "put" => {
                let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
                self.state.storage()?.put(key, value)?;
                "stored".into()
            }
            "add-tag" => match ws.add_tag(rest) {
                Ok(()) => "added".into(),
                Err(error) => format!("error: {error}"),
            },
            "remove-tag" => format!("removed={}", ws.remove_tag(rest)?),
            // The listed and the counted numbers must agree.
            "count" => agreed(
                self.state.get_websockets().len(),
                self.state.get_websocket_count(),
            ),
            "count-tag" => agreed(
                self.state.get_websockets_with_tag(rest).len(),
                self.state.get_websocket_count_with_tag(rest),
            ),
            "ids" => self
                .state
                .get_websockets()
                .iter()
                .map(|w| w.id().to_string())
                .collect::<Vec<_>>()
                .join(","),
            "my-id" => ws.id().to_string(),
            "object-id" => format!(
                "{} {}",
                self.state.id(),
                self.state.id().name().unwrap_or("-")
            ),
            "ready" => format!("{:?}", ws.ready_state()),
            "protocol" => ws.protocol().unwrap_or_else(|| "none".into()),
            "panic" => panic!("handler panics on request"),
            "fail" => return Err(Error::message("handler fails on request")),
            "sleep" => {
                tokio::time::sleep(Duration::from_millis(rest.parse().unwrap())).await;
                "slept".into()
            }
            "hold" => {
                hold(rest).await;
                "released".into()
            }
            "auto" => {
                let (request, response) = rest.split_once(' ').unwrap_or((rest, ""));
                let pair = WebSocketRequestResponsePair::new(request, response);
                match self.state.set_websocket_auto_response(&pair) {
                    Ok(()) => "auto set".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "auto-binary" => {
                self.state.set_websocket_auto_responses(&[
                    WebSocketRequestResponsePair::new("ping", "pong"),
                    WebSocketRequestResponsePair::binary([0xC0u8], [0xD0u8]),
                ])?;
                "auto set".into()
            }
            "auto-size" => {
                let (request, response) = rest.split_once(' ').unwrap();
                let pair = WebSocketRequestResponsePair::new(
                    "r".repeat(request.parse().unwrap()),
                    "s".repeat(response.parse().unwrap()),
                );
                match self.state.set_websocket_auto_response(&pair) {
                    Ok(()) => "auto set".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "auto-get" => self
                .state
                .get_websocket_auto_response()
                .map_or("none".into(), |p| {
                    format!("{}->{}", p.request(), p.response())
                }),
            "auto-clear" => {
                self.state.clear_websocket_auto_response()?;
                "cleared".into()
            }
            "auto-time" => self
                .state
                .get_websocket_auto_response_timestamp(&ws)
                .map_or("none".into(), |_| "some".into()),
            "timeout" => {
                let ms: u64 = rest.parse().unwrap();
                match self
                    .state
                    .set_hibernatable_websocket_event_timeout(Some(Duration::from_millis(ms)))
                {
                    Ok(()) => format!(
                        "timeout {:?}",
                        self.state.get_hibernatable_websocket_event_timeout()
                    ),
                    Err(error) => format!("error: {error}"),
                }
            }
            "broadcast" => {
                let (tag, text) = rest.split_once(' ').unwrap();
                let tag = (tag != "*").then_some(tag);
                format!("sent to {}", self.state.broadcast(tag, text, Some(&ws)))
            }
            "wait-until" => {
                let name = self.name.clone();
                let ms: u64 = rest.parse().unwrap();
                self.state.wait_until(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    record(&name, "wait-until done".into());
                });
                "waiting".into()
            }
            "big" => "x".repeat(rest.parse().unwrap()),
            "pair-outside" => match tokio::spawn(async { WebSocketPair::new().map(|_| ()) })
                .await
                .unwrap()
            {
                Ok(()) => "created".into(),
                Err(error) => format!("error: {error}"),
            },
            "accept-twice" => {
                let pair = WebSocketPair::new()?;
                self.state.accept_web_socket(&pair.server)?;
                match self.state.accept_web_socket(&pair.server) {
                    Ok(()) => "accepted twice".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "accept-until-refused" => {
                // Pending sockets (their client ends never returned): no connections needed.
                let mut pairs = Vec::new();
                loop {
                    let pair = WebSocketPair::new()?;
                    if let Err(error) = self.state.accept_web_socket(&pair.server) {
                        break format!("accepted {}: error: {error}", pairs.len());
                    }
                    pairs.push(pair);
                }
            }
            "accept-client" => match self.state.accept_web_socket(&WebSocketPair::new()?.client) {
                Ok(()) => "accepted".into(),
                Err(error) => format!("error: {error}"),
            },
            "standard-then-hibernate" => {
                let pair = WebSocketPair::new()?;
                pair.server.accept()?;
                match self.state.accept_web_socket(&pair.server) {
                    Ok(()) => "accepted".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "hibernate-then-standard" => {
                let pair = WebSocketPair::new()?;
                self.state.accept_web_socket(&pair.server)?;
                match pair.server.accept() {
                    Ok(()) => "accepted".into(),
                    Err(error) => format!("error: {error}"),
                }
            }
            "send-unaccepted" => match WebSocketPair::new()?.server.send_with_str("x") {
                Ok(()) => "sent".into(),
                Err(error) => format!("error: {error}"),
            },
            _ => format!("unknown command {command}"),
        };
        ws.send_with_str(reply)
    }

    async fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> Result<()> {
        let state = ws.ready_state();
        // Objects named `bulk-*` end tens of thousands of sockets in a row: looking each one up
        // in the full list would make that quadratic.
        let listed =
            !self.name.starts_with("bulk-") && self.state.get_websockets().iter().any(|w| w == &ws);
        let tags = self.state.get_tags(&ws).unwrap_or_default().join(",");
        record(
            &self.name,
            format!("close:{code}:{reason}:{was_clean}:{state:?}:listed={listed}:tags={tags}"),
        );
        // Closing again is ignored (the runtime already answered the close frame).
        if code != 1005 && code != 1006 {
            ws.close(Some(code), Some("ignored"))?;
        }
        Ok(())
    }

    async fn websocket_error(&mut self, ws: WebSocket, error: Error) -> Result<()> {
        let listed = self.state.get_websockets().iter().any(|w| w == &ws);
        record(
            &self.name,
            format!("error:{error}:listed={listed}:{:?}", ws.ready_state()),
        );
        let _ = ws.send_with_str("after error");
        Ok(())
    }
}

fn agreed(listed: usize, counted: usize) -> String {
    if listed == counted {
        listed.to_string()
    } else {
        format!("{listed} listed but {counted} counted")
    }
}

/// Recording the drop shows when an instance leaves memory (hibernation, eviction, reset).
impl Drop for Probe {
    fn drop(&mut self) {
        record(&self.name, "dropped".into());
    }
}

/// The probe application: `/probe/{name}` reaches the probe object called `name`.
pub fn app() -> App {
    App::new()
        .durable_object::<Probe>(PROBE)
        .worker(|env| Router::new().fallback(route).with_state(env))
}

async fn route(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    let Some(rest) = req.uri().path().strip_prefix("/probe/") else {
        return Ok(response::text(StatusCode::NOT_FOUND, "no such route"));
    };
    let name = rest.split('/').next().unwrap_or_default().to_owned();
    let reply = env
        .durable_object(PROBE)?
        .get_by_name(&name)?
        .fetch(req)
        .await;
    match reply {
        Ok(reply) => Ok(reply),
        Err(error) if error.is_overloaded() => Ok(response::text(
            StatusCode::SERVICE_UNAVAILABLE,
            error.to_string(),
        )),
        Err(error) => Ok(response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{:?}: {error}", error.kind()),
        )),
    }
}
