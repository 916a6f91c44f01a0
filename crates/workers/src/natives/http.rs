//! Requests, responses and bodies between Rust and JavaScript, and the outbound `fetch`.
//!
//! A body that comes from Rust stays a Rust body (behind a [`BodyHandle`]) until JavaScript
//! reads it, so a request forwarded to an object, or a response passed back through the Worker,
//! never goes through the engine. A 101 response keeps its WebSocket upgrade the same way
//! ([`UpgradeHandle`]).

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use dormouse_runtime::placement::ForwardedUpgrade;
use dormouse_sdk::response::WebSocketUpgrade;
use dormouse_sdk::{Body, Request, Response, ResponseExt};
use http_body_util::BodyExt;
use rquickjs::class::Trace;
use rquickjs::{Array, Class, Ctx, Function, JsLifetime, Object, Value};
use tokio::sync::mpsc;

use super::ops;
use super::sockets::SocketHandle;
use super::{bytes as js_bytes, errors};
use crate::engine::state::engine;

/// Redirects an outbound `fetch` follows before giving up (as browsers do).
const MAX_REDIRECTS: usize = 20;

/// Chunks a streamed body may have waiting between JavaScript and the connection.
const STREAM_CHUNKS: usize = 8;

/// Where a Rust body is in being read.
enum BodyState {
    Unread(Body),
    /// A read is in progress (the body is in the reading task).
    Reading,
    Done,
}

/// A body still in Rust.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeBody")]
pub(crate) struct BodyHandle {
    #[qjs(skip_trace)]
    state: Rc<RefCell<BodyState>>,
}

impl BodyHandle {
    fn new(body: Body) -> Self {
        BodyHandle {
            state: Rc::new(RefCell::new(BodyState::Unread(body))),
        }
    }

    /// The body, for passing on unread.
    fn take(&self) -> Option<Body> {
        match self.state.replace(BodyState::Done) {
            BodyState::Unread(body) => Some(body),
            other => {
                self.state.replace(other);
                None
            }
        }
    }
}

/// A 101 response's upgrade (the client end of its socket, on its way to the connection).
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeUpgrade")]
pub(crate) struct UpgradeHandle {
    #[qjs(skip_trace)]
    upgrade: RefCell<Option<Upgrade>>,
}

/// What a 101 response carries to the connection that asked for the upgrade.
enum Upgrade {
    /// The client end of a socket of this node's objects.
    Local(WebSocketUpgrade),
    /// The connection to the node that owns the object and accepted the socket (cluster mode).
    Forwarded(ForwardedUpgrade),
}

/// Where JavaScript writes a streamed body.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeSink")]
pub(crate) struct SinkHandle {
    #[qjs(skip_trace)]
    sender: RefCell<Option<mpsc::Sender<Result<Bytes, std::io::Error>>>>,
}

/// Registers this module's natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    let f = super::registrar(native);
    f("bodyRead", Function::new(ctx.clone(), body_read))?;
    f("bodyChunk", Function::new(ctx.clone(), body_chunk))?;
    f("sinkWrite", Function::new(ctx.clone(), sink_write))?;
    f("sinkClose", Function::new(ctx.clone(), sink_close))?;
    f("fetch", Function::new(ctx.clone(), fetch))?;
    Ok(())
}

fn headers_to_js<'js>(ctx: &Ctx<'js>, headers: &http::HeaderMap) -> rquickjs::Result<Array<'js>> {
    let list = Array::new(ctx.clone())?;
    for (index, (name, value)) in headers.iter().enumerate() {
        let pair = Array::new(ctx.clone())?;
        pair.set(0, name.as_str())?;
        pair.set(1, String::from_utf8_lossy(value.as_bytes()).into_owned())?;
        list.set(index, pair)?;
    }
    Ok(list)
}

fn headers_from_js<'js>(ctx: &Ctx<'js>, list: &Array<'js>) -> rquickjs::Result<http::HeaderMap> {
    let mut headers = http::HeaderMap::with_capacity(list.len());
    for pair in list.iter::<Array<'js>>() {
        let pair = pair?;
        let name: String = pair.get(0)?;
        let value: String = pair.get(1)?;
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| errors::type_error(ctx, format!("Invalid header name: {name:?}")))?;
        let value = http::HeaderValue::from_str(&value)
            .map_err(|_| errors::type_error(ctx, format!("Invalid header value for {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn body_or_null<'js>(ctx: &Ctx<'js>, body: Body) -> rquickjs::Result<Value<'js>> {
    if http_body::Body::is_end_stream(&body) {
        return Ok(Value::new_null(ctx.clone()));
    }
    Ok(Class::instance(ctx.clone(), BodyHandle::new(body))?.into_value())
}

/// A request as the prelude takes it: `[method, url, headers, body handle or null]`. A request
/// from the server has no scheme or host in its URI: they come from its `Host` header.
pub(crate) fn request_to_js<'js>(ctx: &Ctx<'js>, request: Request) -> rquickjs::Result<Array<'js>> {
    let (parts, body) = request.into_parts();
    let url = if parts.uri.scheme().is_some() {
        parts.uri.to_string()
    } else {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{host}{path}")
    };
    let list = Array::new(ctx.clone())?;
    list.set(0, parts.method.as_str())?;
    list.set(1, url)?;
    list.set(2, headers_to_js(ctx, &parts.headers)?)?;
    list.set(3, body_or_null(ctx, body)?)?;
    Ok(list)
}

/// A body from JavaScript: `kind` 0 none, 1 bytes, 2 a Rust body, 3 a stream (pumped by the
/// prelude into a channel as the connection takes it).
fn body_from_js<'js>(ctx: &Ctx<'js>, kind: u8, body: Value<'js>) -> rquickjs::Result<Body> {
    match kind {
        0 => Ok(Body::empty()),
        1 => {
            let data = js_bytes::copy(&body)
                .ok_or_else(|| errors::type_error(ctx, "expected body bytes"))?;
            Ok(Body::from(data))
        }
        2 => {
            let handle: Class<'js, BodyHandle> = Class::from_value(&body)?;
            handle.borrow().take().ok_or_else(|| {
                errors::type_error(ctx, "Body has already been used. It can only be used once.")
            })
        }
        _ => {
            let (sender, receiver) = mpsc::channel(STREAM_CHUNKS);
            let sink = Class::instance(
                ctx.clone(),
                SinkHandle {
                    sender: RefCell::new(Some(sender)),
                },
            )?;
            let owner = engine().map(|e| e.owner());
            let internal = engine()
                .and_then(|e| owner.and_then(|o| e.generation_of(o)))
                .map(|g| g.internal.clone());
            if let Some(internal) = internal {
                let internal: Object<'js> = internal.restore(ctx)?;
                let pump: Function<'js> = internal.get("pumpStream")?;
                pump.call::<_, Value<'js>>((body, sink))?;
            }
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|item| (item, receiver))
            });
            Ok(Body::from_stream(stream))
        }
    }
}

/// A Response from the prelude (`internal.responseToNative`): `[status, statusText, headers,
/// bodyKind, body, webSocket handle, upgrade handle]`.
pub(crate) fn response_from_js<'js>(
    ctx: &Ctx<'js>,
    parts: Value<'js>,
) -> rquickjs::Result<Response> {
    let parts: Array<'js> = parts
        .into_array()
        .ok_or_else(|| errors::type_error(ctx, "expected a Response"))?;
    let status: u16 = parts.get(0)?;
    let status_text: String = parts.get(1)?;
    let headers: Array<'js> = parts.get(2)?;
    let kind: u8 = parts.get(3)?;
    let body: Value<'js> = parts.get(4)?;
    let socket: Value<'js> = parts.get(5)?;
    let upgrade: Value<'js> = parts.get(6)?;
    let headers = headers_from_js(ctx, &headers)?;
    let mut response = if let Ok(upgrade) = Class::<UpgradeHandle>::from_value(&upgrade) {
        let upgrade = upgrade.borrow().upgrade.borrow_mut().take();
        let upgrade = upgrade.ok_or_else(|| {
            errors::type_error(
                ctx,
                "Can't return WebSocket that was already used in a response.",
            )
        })?;
        let mut response = dormouse_sdk::response::empty(http::StatusCode::SWITCHING_PROTOCOLS);
        match upgrade {
            Upgrade::Local(upgrade) => {
                response.extensions_mut().insert(upgrade);
            }
            Upgrade::Forwarded(upgrade) => {
                response.extensions_mut().insert(upgrade);
            }
        }
        response
    } else if let Ok(socket) = Class::<SocketHandle>::from_value(&socket) {
        let ws = socket.borrow().ws.clone();
        Response::from_websocket(ws).map_err(|e| errors::throw(ctx, &e))?
    } else {
        let status = http::StatusCode::from_u16(status)
            .map_err(|_| errors::type_error(ctx, format!("invalid status {status}")))?;
        let mut response = http::Response::new(body_from_js(ctx, kind, body)?);
        *response.status_mut() = status;
        response
    };
    *response.headers_mut() = headers;
    if !status_text.is_empty()
        && response.status().canonical_reason() != Some(status_text.as_str())
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(status_text.into_bytes())
    {
        response.extensions_mut().insert(reason);
    }
    Ok(response)
}

/// A response for the prelude (`internal.responseFromNative`): `[status, statusText, headers,
/// body handle or null, webSocket handle or null, upgrade handle or null]`.
pub(crate) fn response_to_js<'js>(
    ctx: &Ctx<'js>,
    response: Response,
) -> rquickjs::Result<Array<'js>> {
    let (mut parts, body) = response.into_parts();
    let upgrade = match parts.extensions.remove::<WebSocketUpgrade>() {
        Some(upgrade) => Some(Upgrade::Local(upgrade)),
        None => parts
            .extensions
            .remove::<ForwardedUpgrade>()
            .map(Upgrade::Forwarded),
    };
    let status_text = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| parts.status.canonical_reason().unwrap_or("").to_owned());
    let list = Array::new(ctx.clone())?;
    list.set(0, parts.status.as_u16())?;
    list.set(1, status_text)?;
    list.set(2, headers_to_js(ctx, &parts.headers)?)?;
    list.set(3, body_or_null(ctx, body)?)?;
    match upgrade {
        Some(upgrade) => {
            // A socket forwarded from another node has no end here: only its upgrade travels.
            let socket = match &upgrade {
                Upgrade::Local(local) => {
                    let socket = SocketHandle::new(local.client().clone());
                    Class::instance(ctx.clone(), socket)?.into_value()
                }
                Upgrade::Forwarded(_) => Value::new_null(ctx.clone()),
            };
            list.set(4, socket)?;
            let handle = UpgradeHandle {
                upgrade: RefCell::new(Some(upgrade)),
            };
            list.set(5, Class::instance(ctx.clone(), handle)?)?;
        }
        None => {
            list.set(4, Value::new_null(ctx.clone()))?;
            list.set(5, Value::new_null(ctx.clone()))?;
        }
    }
    Ok(list)
}

/// A request from the prelude (`internal.requestToNative`): `[method, url, headers, bodyKind,
/// body]`.
pub(crate) fn request_from_parts<'js>(
    ctx: &Ctx<'js>,
    parts: &Array<'js>,
) -> rquickjs::Result<Request> {
    let method: String = parts.get(0)?;
    let url: String = parts.get(1)?;
    let headers: Array<'js> = parts.get(2)?;
    let kind: u8 = parts.get(3)?;
    let body: Value<'js> = parts.get(4)?;
    request_from_js(ctx, &method, &url, &headers, kind, body)
}

/// A request from JavaScript: `method, url, headers, bodyKind, body`.
pub(crate) fn request_from_js<'js>(
    ctx: &Ctx<'js>,
    method: &str,
    url: &str,
    headers: &Array<'js>,
    kind: u8,
    body: Value<'js>,
) -> rquickjs::Result<Request> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| errors::type_error(ctx, format!("Invalid HTTP method: {method}")))?;
    let uri: http::Uri = url
        .parse()
        .map_err(|_| errors::type_error(ctx, format!("Invalid URL: {url}")))?;
    let mut request = http::Request::new(body_from_js(ctx, kind, body)?);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers_from_js(ctx, headers)?;
    Ok(request)
}

fn body_read<'js>(
    ctx: Ctx<'js>,
    handle: Class<'js, BodyHandle>,
) -> rquickjs::Result<rquickjs::Promise<'js>> {
    let body = handle.borrow().take().ok_or_else(|| {
        errors::type_error(
            &ctx,
            "Body has already been used. It can only be used once.",
        )
    })?;
    ops::spawn(&ctx, async move {
        let collected = body.collect().await.map(|c| c.to_bytes());
        ops::settle(move |ctx| match collected {
            Ok(data) => js_bytes::array_buffer(ctx, &data),
            Err(error) => Err(errors::type_error(
                ctx,
                format!("reading the body failed: {error}"),
            )),
        })
    })
}

/// The next chunk of a body (an `ArrayBuffer`), or `null` at its end.
fn body_chunk<'js>(
    ctx: Ctx<'js>,
    handle: Class<'js, BodyHandle>,
) -> rquickjs::Result<rquickjs::Promise<'js>> {
    let state = handle.borrow().state.clone();
    let current = state.replace(BodyState::Reading);
    let body = match current {
        BodyState::Unread(body) => Some(body),
        BodyState::Done => None,
        BodyState::Reading => {
            return Err(errors::type_error(
                &ctx,
                "a read of this body is already in progress",
            ));
        }
    };
    ops::spawn(&ctx, async move {
        let chunk = match body {
            None => Ok(None),
            Some(mut body) => loop {
                match body.frame().await {
                    None => break Ok(None),
                    Some(Err(error)) => break Err(error.to_string()),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            state.replace(BodyState::Unread(body));
                            break Ok(Some(data));
                        }
                    }
                }
            },
        };
        if !matches!(&*state.borrow(), BodyState::Unread(_)) {
            state.replace(BodyState::Done);
        }
        ops::settle(move |ctx| match chunk {
            Ok(Some(data)) => js_bytes::array_buffer(ctx, &data),
            Ok(None) => Ok(Value::new_null(ctx.clone())),
            Err(error) => Err(errors::type_error(
                ctx,
                format!("reading the body failed: {error}"),
            )),
        })
    })
}

fn sink_write<'js>(
    ctx: Ctx<'js>,
    sink: Class<'js, SinkHandle>,
    chunk: Value<'js>,
) -> rquickjs::Result<rquickjs::Promise<'js>> {
    let data = js_bytes::copy(&chunk).ok_or_else(|| errors::type_error(&ctx, "expected bytes"))?;
    let sender = sink.borrow().sender.borrow().clone();
    ops::spawn(&ctx, async move {
        let sent = match sender {
            Some(sender) => sender.send(Ok(Bytes::from(data))).await.is_ok(),
            None => false,
        };
        ops::settle(move |ctx| {
            if sent {
                Ok(Value::new_undefined(ctx.clone()))
            } else {
                Err(errors::type_error(ctx, "the body's reader went away"))
            }
        })
    })
}

fn sink_close<'js>(sink: Class<'js, SinkHandle>, error: Option<String>) {
    let sender = sink.borrow().sender.borrow_mut().take();
    if let (Some(sender), Some(error)) = (sender, error) {
        let _ = sender.try_send(Err(std::io::Error::other(error)));
    }
}

thread_local! {
    /// The engine's HTTP client (plain HTTP/1.1 over TCP), made on first use.
    static CLIENT: RefCell<Option<hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body>>> =
        const { RefCell::new(None) };
}

fn client()
-> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body> {
    CLIENT.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| {
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http()
            })
            .clone()
    })
}

/// `fetch(…)` to the network: `request` is `[method, url, headers, bodyKind, body]`.
fn fetch<'js>(
    ctx: Ctx<'js>,
    request: Array<'js>,
    redirect: String,
) -> rquickjs::Result<rquickjs::Promise<'js>> {
    let url: String = request.get(1)?;
    let kind: u8 = request.get(3)?;
    let body: Value<'js> = request.get(4)?;
    let parsed = url::Url::parse(&url)
        .map_err(|_| errors::type_error(&ctx, format!("Invalid URL: {url}")))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(errors::type_error(
                &ctx,
                format!(
                    "fetch() of {url}: this build of Dormouse fetches http:// URLs only; put a TLS proxy in front of https services"
                ),
            ));
        }
        scheme => {
            return Err(errors::type_error(
                &ctx,
                format!("Fetch API cannot load {url}: the {scheme}: scheme is not supported"),
            ));
        }
    }
    // A body in memory can be sent again after a redirect; a stream cannot.
    let replayable = match kind {
        1 => js_bytes::copy(&body),
        _ => None,
    };
    let request = request_from_parts(&ctx, &request)?;
    ops::spawn(&ctx, async move {
        let outcome = send(request, replayable, &redirect).await;
        ops::settle(move |ctx| match outcome {
            Ok(response) => response_to_js(ctx, response).map(Array::into_value),
            Err(message) => Err(errors::type_error(ctx, message)),
        })
    })
}

async fn send(
    mut request: Request,
    replayable: Option<Vec<u8>>,
    redirect: &str,
) -> Result<Response, String> {
    let client = client();
    for _ in 0..=MAX_REDIRECTS {
        let uri = request.uri().clone();
        let method = request.method().clone();
        let headers = request.headers().clone();
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("fetch of {uri} failed: {e}"))?
            .map(Body::new);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        if !is_redirect || redirect == "manual" {
            return Ok(response);
        }
        if redirect == "error" {
            return Err(format!(
                "fetch of {uri} was redirected, and redirect is \"error\""
            ));
        }
        let Some(location) = location else {
            return Ok(response);
        };
        let next = url::Url::parse(&uri.to_string())
            .and_then(|base| base.join(&location))
            .map_err(|e| format!("bad redirect location {location:?}: {e}"))?;
        let (method, body) = if status == 303
            || ((status == 301 || status == 302) && method == http::Method::POST)
        {
            (http::Method::GET, Body::empty())
        } else {
            match &replayable {
                Some(data) => (method, Body::from(data.clone())),
                None if method == http::Method::GET || method == http::Method::HEAD => {
                    (method, Body::empty())
                }
                None => return Ok(response),
            }
        };
        let mut next_request = http::Request::new(body);
        *next_request.method_mut() = method;
        *next_request.uri_mut() = next
            .as_str()
            .parse()
            .map_err(|e| format!("bad redirect location {next}: {e}"))?;
        *next_request.headers_mut() = headers;
        next_request.headers_mut().remove(http::header::HOST);
        request = next_request;
    }
    Err(format!("too many redirects (more than {MAX_REDIRECTS})"))
}
