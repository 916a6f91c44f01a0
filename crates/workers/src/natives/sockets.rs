//! The natives behind `WebSocket`: a handle on a socket of the runtime's socket holder, and
//! what JavaScript does with it.

use dormouse_sdk::{ErrorKind, Outgoing, WebSocket, WebSocketId, WebsocketEvent};
use futures_util::StreamExt;
use rquickjs::class::Trace;
use rquickjs::prelude::List;
use rquickjs::{Class, Ctx, Function, JsLifetime, Object, Persistent, Value};

use super::{bytes, errors};
use crate::engine::state::{Continuation, Owner, engine};

/// A socket of the runtime, as JavaScript holds it. Dropping the last handle of a client end
/// that never went out in a response tells the runtime it never will.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeWebSocket")]
pub(crate) struct SocketHandle {
    #[qjs(skip_trace)]
    pub(crate) ws: WebSocket,
}

impl SocketHandle {
    pub(crate) fn new(ws: WebSocket) -> Self {
        SocketHandle { ws }
    }
}

type Handle<'js> = Class<'js, SocketHandle>;

/// Bits of a socket's key in JavaScript: integers up to 2^53 are exact doubles.
const KEY_BITS: u32 = 52;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;
/// Odd, hence invertible modulo 2^52 (the fractional part of the golden ratio).
const KEY_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15 & KEY_MASK;

/// A socket's id as JavaScript keys its wrappers by (in a `Map`). QuickJS hashes a number by
/// xoring the two halves of its float64 bits, in which small integers have only zeros low down:
/// sequential ids would crowd a few buckets and make every lookup a scan. Multiplying by an odd
/// constant modulo 2^52 spreads the bits over the whole mantissa, and keeps distinct ids distinct
/// (it can be undone).
pub(crate) fn js_key(id: WebSocketId) -> f64 {
    (id.0.wrapping_mul(KEY_MULTIPLIER) & KEY_MASK) as f64
}

fn ws(handle: &Handle<'_>) -> WebSocket {
    handle.borrow().ws.clone()
}

/// Registers this module's natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    let f = super::registrar(native);
    f("socketPair", Function::new(ctx.clone(), socket_pair))?;
    f(
        "socketId",
        Function::new(ctx.clone(), |h: Handle<'js>| js_key(h.borrow().ws.id())),
    )?;
    f(
        "socketReadyState",
        Function::new(ctx.clone(), |h: Handle<'js>| {
            h.borrow().ws.ready_state() as u8
        }),
    )?;
    f(
        "socketProtocol",
        Function::new(ctx.clone(), |h: Handle<'js>| {
            h.borrow().ws.protocol().unwrap_or_default()
        }),
    )?;
    f("socketSend", Function::new(ctx.clone(), socket_send))?;
    f("socketClose", Function::new(ctx.clone(), socket_close))?;
    f(
        "socketSetAttachment",
        Function::new(ctx.clone(), socket_set_attachment),
    )?;
    f(
        "socketAttachment",
        Function::new(ctx.clone(), socket_attachment),
    )?;
    f("socketTags", Function::new(ctx.clone(), socket_tags))?;
    f(
        "socketAutoResponseAt",
        Function::new(ctx.clone(), socket_auto_response_at),
    )?;
    f("socketAccept", Function::new(ctx.clone(), socket_accept))?;
    Ok(())
}

/// `new WebSocketPair()`: `[client, server]`, for the object whose code runs.
fn socket_pair<'js>(ctx: Ctx<'js>) -> rquickjs::Result<List<(Handle<'js>, Handle<'js>)>> {
    let host = engine().and_then(|engine| match engine.owner() {
        Owner::Instance(id) => engine.with_instance(id, |i| i.host.clone()),
        Owner::Worker(_) => None,
    });
    let Some(host) = host else {
        return Err(errors::type_error(
            &ctx,
            "Dormouse creates WebSocketPairs inside Durable Objects only: create the pair in the object that accepts it",
        ));
    };
    let (client, server) = host
        .new_websocket_pair()
        .map_err(|e| errors::throw(&ctx, &e))?;
    Ok(List((
        Class::instance(ctx.clone(), SocketHandle::new(client))?,
        Class::instance(ctx.clone(), SocketHandle::new(server))?,
    )))
}

fn socket_send<'js>(ctx: Ctx<'js>, handle: Handle<'js>, data: Value<'js>) -> rquickjs::Result<()> {
    let ws = ws(&handle);
    let sent = if let Some(text) = data.as_string() {
        let text = text.to_string()?;
        ws.host().send(Outgoing::Text(&text))
    } else {
        bytes::with(&data, |raw| ws.host().send(Outgoing::Binary(raw))).ok_or_else(|| {
            errors::type_error(
                &ctx,
                "WebSocket send() expects a string, an ArrayBuffer or an ArrayBufferView",
            )
        })?
    };
    sent.map_err(|e| errors::throw(&ctx, &e))
}

fn socket_close<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    code: Option<f64>,
    reason: Option<String>,
) -> rquickjs::Result<()> {
    let code = match code {
        None => None,
        Some(code) if code.fract() == 0.0 && (0.0..=65535.0).contains(&code) => Some(code as u16),
        Some(code) => {
            return Err(errors::throw(
                &ctx,
                &dormouse_sdk::Error::new(
                    ErrorKind::InvalidAccess,
                    format!("Invalid WebSocket close code: {code}."),
                ),
            ));
        }
    };
    ws(&handle)
        .host()
        .close(code, reason.as_deref())
        .map_err(|e| errors::throw(&ctx, &e))
}

fn socket_set_attachment<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    serialized: Value<'js>,
) -> rquickjs::Result<()> {
    let serialized =
        bytes::copy(&serialized).ok_or_else(|| errors::type_error(&ctx, "expected bytes"))?;
    ws(&handle)
        .host()
        .set_attachment(serialized)
        .map_err(|e| errors::throw(&ctx, &e))
}

fn socket_attachment<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<Value<'js>> {
    match ws(&handle).host().attachment() {
        Some(data) => bytes::uint8_array(&ctx, &data),
        None => Ok(Value::new_null(ctx)),
    }
}

fn socket_tags<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<Vec<String>> {
    ws(&handle)
        .host()
        .tags()
        .map_err(|e| errors::throw(&ctx, &e))
}

fn socket_auto_response_at<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> Option<f64> {
    let _ = ctx;
    let engine = engine()?;
    let Owner::Instance(id) = engine.owner() else {
        return None;
    };
    let host = engine.with_instance(id, |i| i.host.clone())?;
    let at = host.auto_response_timestamp(&ws(&handle))?;
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as f64)
}

/// `ws.accept()`: the standard API. The socket's events go to `wrapper`'s listeners, each in a
/// turn of the object that accepted it (which stays in memory while the socket is open).
fn socket_accept<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    wrapper: Object<'js>,
    _allow_half_open: bool,
) -> rquickjs::Result<()> {
    let ws = ws(&handle);
    if ws.is_client_end() {
        return Err(errors::type_error(
            &ctx,
            "Can't accept() the client end of a WebSocketPair; accept the server end",
        ));
    }
    ws.accept().map_err(|e| errors::throw(&ctx, &e))?;
    let mut events = ws.events().map_err(|e| errors::throw(&ctx, &e))?;
    let Some(current) = engine() else {
        return Ok(());
    };
    let owner = current.owner();
    let Some(generation) = current.generation_of(owner) else {
        return Ok(());
    };
    let wrapper = Persistent::save(&ctx, wrapper);
    current.spawn_local(async move {
        while let Some(event) = events.next().await {
            let Some(engine) = engine() else {
                return;
            };
            let last = !matches!(event, Ok(WebsocketEvent::Message(_)));
            let wrapper = wrapper.clone();
            let generation = generation.clone();
            let work: Continuation = Box::new(move |ctx| {
                let delivered = (|| -> rquickjs::Result<()> {
                    let wrapper = wrapper.restore(ctx)?;
                    let internal: Object<'_> = generation.internal.clone().restore(ctx)?;
                    let dispatch: Function<'_> = internal.get("socketEvent")?;
                    match event {
                        Ok(WebsocketEvent::Message(message)) => {
                            let data: Value<'_> = match message.into_data() {
                                dormouse_sdk::WebSocketIncomingMessage::String(text) => {
                                    rquickjs::String::from_str(ctx.clone(), &text)?.into_value()
                                }
                                dormouse_sdk::WebSocketIncomingMessage::Binary(data) => {
                                    bytes::array_buffer(ctx, &data)?
                                }
                            };
                            dispatch.call::<_, ()>((wrapper, "message", data))
                        }
                        Ok(WebsocketEvent::Close(close)) => dispatch.call::<_, ()>((
                            wrapper,
                            "close",
                            close.code(),
                            close.reason().to_owned(),
                            close.was_clean(),
                        )),
                        Err(error) => {
                            dispatch.call::<_, ()>((wrapper, "error", error.text().to_owned()))
                        }
                    }
                })();
                if delivered.is_err() {
                    let message = errors::caught(ctx);
                    super::platform::log_uncaught(&message);
                }
            });
            engine.deliver(owner, work);
            if last {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse of odd `a` modulo 2^52, by Newton's iteration (each step doubles the correct
    /// bits).
    fn inverse(a: u64) -> u64 {
        let mut x = a;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x & KEY_MASK
    }

    fn id_of_key(key: f64) -> WebSocketId {
        WebSocketId((key as u64).wrapping_mul(inverse(KEY_MULTIPLIER)) & KEY_MASK)
    }

    #[test]
    fn socket_keys_are_distinct_exact_integers() {
        assert_eq!(KEY_MULTIPLIER % 2, 1);
        for id in (0..10_000).chain([1 << 40, KEY_MASK]) {
            let key = js_key(WebSocketId(id));
            assert!(key.fract() == 0.0 && key < (1u64 << 53) as f64);
            assert_eq!(id_of_key(key), WebSocketId(id));
        }
    }

    #[test]
    fn sequential_ids_spread_over_quickjs_map_buckets() {
        // QuickJS's bucket for a number: the xor of its float64 halves, times 3163, masked.
        let bucket = |key: f64| {
            let bits = key.to_bits();
            (((bits as u32) ^ ((bits >> 32) as u32)).wrapping_mul(3163)) & 16_383
        };
        let buckets: std::collections::HashSet<u32> = (1..=16_384)
            .map(|id| bucket(js_key(WebSocketId(id))))
            .collect();
        assert!(buckets.len() > 8_000, "{} buckets used", buckets.len());
        let plain: std::collections::HashSet<u32> =
            (1..=16_384).map(|id| bucket(id as f64)).collect();
        // Plain ids: 128 of the 16,384 buckets, chains of 128.
        assert!(plain.len() <= 128, "plain ids use {} buckets", plain.len());
    }
}
