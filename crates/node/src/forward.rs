//! [`Forwarder`]: requests for objects another node owns, sent to that node over HTTP/1.1 with
//! the cluster's secret, on connections kept open per peer. A WebSocket upgrade the owner
//! accepts comes back with the connection to it, which the server joins to the client's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dormouse_runtime::AdoptedSocket;
use dormouse_runtime::placement::{
    ADOPT_SOCKET_HEADER, CLUSTER_SECRET_HEADER, Duplex, FORWARDED_OBJECT_HEADER, ForwardedUpgrade,
    PlacedObject, Undelivered, WRONG_OWNER_HEADER,
};
use dormouse_sdk::{Body, Error, ErrorKind, Request, Response};
use dormouse_ws::relay::Relay;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest request body forwarded: it is held in memory so that a request the owner did not get
/// can be sent again (Cloudflare's limit for a request body on its free plan).
pub const MAX_FORWARDED_BODY: usize = 100 * 1024 * 1024;

/// How long connecting to a peer may take before it counts as unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(1);

/// How long an owner has to answer a forwarded request (its headers).
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// Idle connections kept per peer.
const IDLE_PER_PEER: usize = 64;

/// Open connections to each peer, ready for a request.
type IdleConnections = HashMap<Arc<str>, Vec<SendRequest<Full<Bytes>>>>;

/// Sends requests to the objects' owners.
pub(crate) struct Forwarder {
    secret: HeaderValue,
    idle: Mutex<IdleConnections>,
}

impl Forwarder {
    pub(crate) fn new(secret: &str) -> Result<Forwarder, http::header::InvalidHeaderValue> {
        let mut secret = HeaderValue::from_str(secret)?;
        secret.set_sensitive(true);
        Ok(Forwarder {
            secret,
            idle: Mutex::default(),
        })
    }

    /// Sends `request` to the object on `peer`. `Err`: the peer provably did not get it.
    pub(crate) async fn send(
        &self,
        peer: &Arc<str>,
        object: &PlacedObject,
        request: Request,
    ) -> Result<dormouse_sdk::Result<Response>, Undelivered> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_FORWARDED_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                return Ok(Err(Error::new(
                    ErrorKind::Type,
                    format!(
                        "the request's body cannot be forwarded to the Durable Object's node: {error}"
                    ),
                )));
            }
        };
        let undelivered = |why: String| Undelivered {
            request: Request::from_parts(parts.clone(), Body::from(body.clone())),
            why,
        };
        let mut outbound = http::Request::from_parts(parts.clone(), Full::new(body.clone()));
        *outbound.uri_mut() = parts.uri.path_and_query().map_or_else(
            || "/".parse().expect("a path"),
            |path| path.as_str().parse().expect("a path is a URI"),
        );
        let headers = outbound.headers_mut();
        headers.insert(FORWARDED_OBJECT_HEADER, object_header(object));
        headers.insert(CLUSTER_SECRET_HEADER, self.secret.clone());
        if !headers.contains_key(http::header::HOST) {
            headers.insert(
                http::header::HOST,
                HeaderValue::from_str(peer).unwrap_or(HeaderValue::from_static("dormouse")),
            );
        }
        let mut sender = match self.connection(peer).await {
            Ok(sender) => sender,
            Err(why) => return Err(undelivered(why)),
        };
        let answer = tokio::time::timeout(ANSWER_LIMIT, sender.send_request(outbound)).await;
        let mut response = match answer {
            Err(_) => {
                return Ok(Err(Error::new(
                    ErrorKind::Overloaded,
                    format!(
                        "the Durable Object's node {peer} did not answer within {ANSWER_LIMIT:?}"
                    ),
                )));
            }
            // Not sent at all: the connection was gone before the request went out.
            Ok(Err(error)) if error.is_canceled() => {
                return Err(undelivered(format!("connection to {peer} closed: {error}")));
            }
            Ok(Err(error)) => {
                return Ok(Err(Error::new(
                    ErrorKind::Overloaded,
                    format!(
                        "the connection to the Durable Object's node {peer} ended before it answered (the request may have been served): {error}"
                    ),
                )));
            }
            Ok(Ok(response)) => response,
        };
        if response.status() == StatusCode::MISDIRECTED_REQUEST
            && response.headers().contains_key(WRONG_OWNER_HEADER)
        {
            self.keep(peer, sender);
            return Err(undelivered(format!("{peer} does not own the object")));
        }
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upgrade = hyper::upgrade::on(&mut response);
            let (parts, _) = response.into_parts();
            let mut response = Response::from_parts(parts, Body::empty());
            response.extensions_mut().insert(ForwardedUpgrade::new(
                Box::pin(async move {
                    let upgraded = upgrade.await.map_err(std::io::Error::other)?;
                    Ok(Box::new(TokioIo::new(upgraded)) as Box<dyn Duplex>)
                }),
                None,
            ));
            return Ok(Ok(response));
        }
        self.keep(peer, sender);
        Ok(Ok(response.map(Body::new)))
    }

    /// Asks `peer` to adopt a socket relayed for the object (its previous owner went away): a
    /// WebSocket upgrade that carries the socket's state, with the subprotocol it had and the
    /// client's offer of extensions, so that the peer agrees to what the client has. The
    /// connection once it switched protocols; `Err` with the owner the peer named when it does
    /// not own the object, or with nothing when it could not be asked.
    pub(crate) async fn adopt(
        &self,
        peer: &Arc<str>,
        object: &PlacedObject,
        socket: &AdoptedSocket,
        extensions: Option<&HeaderValue>,
    ) -> Result<Box<dyn Duplex>, NotAdopted> {
        use base64::Engine as _;
        let state = Relay::State {
            tags: socket.tags.clone(),
            attachment: socket.attachment.clone(),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(state.encode());
        let mut request = http::Request::get("/")
            .header(http::header::HOST, &**peer)
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::SEC_WEBSOCKET_VERSION, "13")
            .header(http::header::SEC_WEBSOCKET_KEY, ADOPTION_KEY)
            .header(FORWARDED_OBJECT_HEADER, object_header(object))
            .header(CLUSTER_SECRET_HEADER, self.secret.clone())
            .header(ADOPT_SOCKET_HEADER, encoded)
            .body(Full::new(Bytes::new()))
            .map_err(|error| NotAdopted::Refused(error.to_string()))?;
        let headers = request.headers_mut();
        if let Some(protocol) = socket
            .protocol
            .as_deref()
            .and_then(|p| HeaderValue::from_str(p).ok())
        {
            headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        if let Some(extensions) = extensions {
            headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, extensions.clone());
        }
        let mut sender = self
            .connection(peer)
            .await
            .map_err(NotAdopted::Unreachable)?;
        let answer = tokio::time::timeout(ANSWER_LIMIT, sender.send_request(request)).await;
        let mut response = match answer {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(NotAdopted::Unreachable(error.to_string())),
            Err(_) => return Err(NotAdopted::Unreachable(format!("{peer} did not answer"))),
        };
        match response.status() {
            StatusCode::SWITCHING_PROTOCOLS => {
                let upgraded = hyper::upgrade::on(&mut response)
                    .await
                    .map_err(|error| NotAdopted::Unreachable(error.to_string()))?;
                Ok(Box::new(TokioIo::new(upgraded)))
            }
            StatusCode::MISDIRECTED_REQUEST => {
                let owner = response
                    .headers()
                    .get(WRONG_OWNER_HEADER)
                    .and_then(|value| value.to_str().ok())
                    .map(Arc::from);
                self.keep(peer, sender);
                Err(NotAdopted::OwnedBy(owner))
            }
            status => Err(NotAdopted::Refused(format!("{peer} answered {status}"))),
        }
    }

    /// A connection to `peer` ready for a request: an idle one, or a new one.
    async fn connection(&self, peer: &Arc<str>) -> Result<SendRequest<Full<Bytes>>, String> {
        {
            let mut idle = self.idle.lock().expect("forwarder lock");
            if let Some(senders) = idle.get_mut(peer) {
                senders.retain(|sender| !sender.is_closed());
                if let Some(at) = senders.iter().position(SendRequest::is_ready) {
                    return Ok(senders.swap_remove(at));
                }
            }
        }
        let stream = match tokio::time::timeout(CONNECT_LIMIT, TcpStream::connect(&**peer)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(format!("cannot connect to {peer}: {error}")),
            Err(_) => return Err(format!("connecting to {peer} took over {CONNECT_LIMIT:?}")),
        };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("cannot talk HTTP to {peer}: {error}"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "connection to a peer ended");
            }
        });
        Ok(sender)
    }

    /// Keeps a connection for the next request to `peer` (usable once its response's body was
    /// read).
    fn keep(&self, peer: &Arc<str>, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().expect("forwarder lock");
        let senders = idle.entry(peer.clone()).or_default();
        if senders.len() < IDLE_PER_PEER {
            senders.push(sender);
        }
    }
}

/// The `Sec-WebSocket-Key` of an adoption request: any valid one does, since the answer's
/// accept key goes nowhere (this is RFC 6455's example nonce).
const ADOPTION_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Why a socket was not adopted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotAdopted {
    /// The peer could not be asked (it is down, or the connection failed).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The peer does not own the object; it named the node that does, if it knows one.
    #[error("not the owner (the owner is {0:?})")]
    OwnedBy(Option<Arc<str>>),
    /// The peer refused for another reason: asking again would not help.
    #[error("refused: {0}")]
    Refused(String),
}

/// `{binding}/{id in hex}`.
fn object_header(object: &PlacedObject) -> HeaderValue {
    let id = dormouse_sdk::ObjectId::from_raw(object.id, None);
    HeaderValue::from_str(&format!("{}/{id}", object.binding))
        .expect("a binding and hex digits make a header value")
}
