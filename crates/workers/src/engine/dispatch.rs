//! Events into JavaScript: constructing an instance, handing it a request, a call, a socket
//! event or its alarm, and serving the Worker's requests. Each call goes through the prelude's
//! entry points (`internal.dispatch*`), which settle a token with the outcome.

use std::sync::Arc;

use bytes::Bytes;
use dormouse_sdk::host::{ObjectHost, Reply};
use dormouse_sdk::{Body, Request, Response, WebSocket, WebSocketIncomingMessage};
use rquickjs::{Class, Ctx, Function, IntoJs, Object, Persistent, Value};
use tokio::sync::oneshot;

use super::settle::Settlement;
use super::state::{Owner, engine};
use crate::guest::JsGuest;
use crate::natives::sockets::{SocketHandle, js_key};
use crate::natives::{self, errors, http, state::StateHandle};

/// Calls `internal[name](args…)` in the current context.
fn call_internal<'js>(
    ctx: &Ctx<'js>,
    internal: &Persistent<Object<'static>>,
    name: &str,
    args: impl rquickjs::function::IntoArgs<'js>,
) -> rquickjs::Result<Value<'js>> {
    let internal = internal.clone().restore(ctx)?;
    let function: Function<'js> = internal.get(name)?;
    function.call(args)
}

/// Constructs an instance of `class` for the object `host` stands for (on the engine's thread,
/// in the object's turn). A constructor that throws fails with its message and stack.
pub(crate) fn construct(class: &str, host: Arc<dyn ObjectHost>) -> Result<JsGuest, String> {
    let engine = engine().ok_or("the JavaScript engine does not run on this thread")?;
    let generation = engine.current().ok_or("the Worker's code is not loaded")?;
    let backend = match generation.backends.get(class) {
        Some(crate::config::StorageBackend::KeyValue) => "kv",
        _ => "sqlite",
    };
    let id = engine.add_instance(generation.clone(), host);
    let owner = Owner::Instance(id);
    let built = engine.enter(owner, &generation, |ctx| {
        let state =
            Class::instance(ctx.clone(), StateHandle::new(id)).map_err(|_| errors::caught(ctx))?;
        match call_internal(
            ctx,
            &generation.internal,
            "construct",
            (class, state, backend),
        ) {
            Ok(ctl) => match ctl.into_object() {
                Some(ctl) => Ok(Persistent::save(ctx, ctl)),
                None => Err("the constructor did not make an object".to_owned()),
            },
            Err(_) => Err(errors::caught(ctx)),
        }
    });
    let fault = engine
        .with_instance(id, |instance| instance.fault.take())
        .flatten();
    match (built, fault) {
        (Ok(ctl), None) => {
            engine.with_instance(id, |instance| instance.ctl = Some(ctl));
            Ok(JsGuest::new(id))
        }
        (Err(message), _) | (Ok(_), Some(message)) => {
            engine.remove_instance(id);
            Err(message)
        }
    }
}

/// An event for an instance.
pub(crate) enum Event {
    Fetch(Request, Reply<Response>),
    Call(String, Bytes, Reply<Bytes>),
    Message(WebSocket, WebSocketIncomingMessage),
    Close(WebSocket, u16, String, bool),
    Error(WebSocket, String),
    Alarm(u32),
}

/// What of an event goes into JavaScript (the reply stays with the settlement).
enum Delivery {
    Fetch(Request),
    Call(String, Bytes),
    Message(WebSocket, WebSocketIncomingMessage),
    Close(WebSocket, u16, String, bool),
    Error(WebSocket, String),
    Alarm(u32),
}

impl Event {
    /// The settlement that waits for the handler, and what the handler gets.
    fn split(self, owner: Owner) -> (Settlement, Delivery) {
        let handler = |handler| Settlement::Handler {
            owner,
            handler,
            lingering: false,
        };
        match self {
            Event::Fetch(request, reply) => (
                Settlement::Fetch {
                    owner,
                    reply,
                    lingering: false,
                },
                Delivery::Fetch(request),
            ),
            Event::Call(method, args, reply) => (
                Settlement::Call {
                    owner,
                    reply,
                    lingering: false,
                },
                Delivery::Call(method, args),
            ),
            Event::Message(ws, message) => {
                (handler("webSocketMessage"), Delivery::Message(ws, message))
            }
            Event::Close(ws, code, reason, clean) => (
                handler("webSocketClose"),
                Delivery::Close(ws, code, reason, clean),
            ),
            Event::Error(ws, error) => (handler("webSocketError"), Delivery::Error(ws, error)),
            Event::Alarm(retry) => (Settlement::Alarm { owner }, Delivery::Alarm(retry)),
        }
    }
}

/// Hands `event` to instance `id`'s handler; returns the token its outcome settles, or `None`
/// if the instance is gone (the event's reply is then dropped, failing its caller).
pub(crate) fn dispatch(id: u64, event: Event) -> Option<u64> {
    let engine = engine()?;
    let (generation, ctl) = engine.with_instance(id, |instance| {
        instance.alarm_outcome = None;
        (instance.generation.clone(), instance.ctl.clone())
    })?;
    let ctl = ctl?;
    let owner = Owner::Instance(id);
    let token = engine.next_id();
    let (settlement, delivery) = event.split(owner);
    engine.settlements.borrow_mut().insert(token, settlement);
    engine.enter(owner, &generation, |ctx| {
        let Ok(ctl) = ctl.restore(ctx) else {
            return;
        };
        if deliver(ctx, &generation.internal, ctl, token, delivery).is_err() {
            // The prelude settles every outcome itself; an error here is the engine's own.
            let message = errors::caught(ctx);
            tracing::error!(%message, "cannot deliver an event to JavaScript");
            natives::dispatch::fail(ctx, token, &message);
        }
    });
    Some(token)
}

fn deliver<'js>(
    ctx: &Ctx<'js>,
    internal: &Persistent<Object<'static>>,
    ctl: Object<'js>,
    token: u64,
    delivery: Delivery,
) -> rquickjs::Result<Value<'js>> {
    match delivery {
        Delivery::Fetch(request) => {
            let parts = http::request_to_js(ctx, request)?;
            call_internal(ctx, internal, "dispatchFetch", (ctl, token, parts))
        }
        Delivery::Call(method, args) => {
            let args = natives::bytes::array_buffer(ctx, &args)?;
            call_internal(ctx, internal, "dispatchCall", (ctl, token, method, args))
        }
        Delivery::Message(ws, message) => {
            let data = match message {
                WebSocketIncomingMessage::String(text) => text.into_js(ctx)?,
                WebSocketIncomingMessage::Binary(data) => natives::bytes::array_buffer(ctx, &data)?,
            };
            let id = js_key(ws.id());
            let handle = Class::instance(ctx.clone(), SocketHandle::new(ws))?;
            call_internal(
                ctx,
                internal,
                "dispatchSocket",
                (ctl, token, "message", id, handle, data),
            )
        }
        Delivery::Close(ws, code, reason, clean) => {
            let id = js_key(ws.id());
            let handle = Class::instance(ctx.clone(), SocketHandle::new(ws))?;
            let detail = rquickjs::prelude::List((code, reason, clean));
            call_internal(
                ctx,
                internal,
                "dispatchSocket",
                (ctl, token, "close", id, handle, detail),
            )
        }
        Delivery::Error(ws, error) => {
            let id = js_key(ws.id());
            let handle = Class::instance(ctx.clone(), SocketHandle::new(ws))?;
            call_internal(
                ctx,
                internal,
                "dispatchSocket",
                (ctl, token, "error", id, handle, error),
            )
        }
        Delivery::Alarm(retry) => {
            call_internal(ctx, internal, "dispatchAlarm", (ctl, token, retry))
        }
    }
}

/// The event's turn ends: a handler still pending keeps its object in memory until it settles.
pub(crate) fn after_turn(token: u64) {
    let Some(engine) = engine() else {
        return;
    };
    let lingering = {
        let mut settlements = engine.settlements.borrow_mut();
        settlements
            .get_mut(&token)
            .and_then(|settlement| settlement.linger().then(|| settlement.owner()))
    };
    if let Some(Owner::Instance(id)) = lingering {
        engine.keep_awake(id, 1);
    }
}

/// Serves a Worker request: the main module's default export's `fetch`.
pub(crate) fn worker_fetch(request: Request, reply: oneshot::Sender<Response>) {
    let Some(engine) = engine() else {
        let _ = reply.send(plain_response(503, "the JavaScript engine is not running"));
        return;
    };
    let Some(generation) = engine.current() else {
        let _ = reply.send(plain_response(503, "the Worker's code is not loaded"));
        return;
    };
    let token = engine.next_id();
    engine
        .settlements
        .borrow_mut()
        .insert(token, Settlement::Worker { reply });
    engine.enter(Owner::Worker(generation.id), &generation, |ctx| {
        let called = http::request_to_js(ctx, request).and_then(|parts| {
            call_internal(ctx, &generation.internal, "dispatchWorker", (token, parts))
        });
        if called.is_err() {
            let message = errors::caught(ctx);
            natives::dispatch::fail(ctx, token, &message);
        }
    });
}

/// A plain-text response with `status`.
pub(crate) fn plain_response(status: u16, text: &str) -> Response {
    ::http::Response::builder()
        .status(status)
        .header(::http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Body::from(text.to_owned()))
        .expect("a valid static response")
}
