//! [`Forwarder`]: requests for objects another node owns, sent to that node over HTTP/1.1 with
//! the cluster's secret, on connections kept open per peer. A WebSocket upgrade the owner
//! accepts comes back with the connection to it, which the server joins to the client's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dormouse_runtime::placement::{
    CLUSTER_SECRET_HEADER, Duplex, FORWARDED_OBJECT_HEADER, ForwardedUpgrade, PlacedObject,
    Undelivered, WRONG_OWNER_HEADER,
};
use dormouse_sdk::{Body, Error, ErrorKind, Request, Response};
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
            response
                .extensions_mut()
                .insert(ForwardedUpgrade::new(Box::pin(async move {
                    let upgraded = upgrade.await.map_err(std::io::Error::other)?;
                    Ok(Box::new(TokioIo::new(upgraded)) as Box<dyn Duplex>)
                })));
            return Ok(Ok(response));
        }
        self.keep(peer, sender);
        Ok(Ok(response.map(Body::new)))
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

/// `{binding}/{id in hex}`.
fn object_header(object: &PlacedObject) -> HeaderValue {
    let mut value = String::with_capacity(object.binding.len() + 65);
    value.push_str(&object.binding);
    value.push('/');
    for byte in object.id {
        value.push_str(&format!("{byte:02x}"));
    }
    HeaderValue::from_str(&value).expect("a binding and hex digits make a header value")
}
