//! One HTTP request: WebSocket handshake checks before the Worker, completion after it.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use dormouse_runtime::placement::ForwardedUpgrade;
use dormouse_runtime::{AdoptedSocket, ConnectionLease, Negotiated, Runtime};
use dormouse_sdk::response::WebSocketUpgrade;
use dormouse_sdk::{Body, Request, Response, response};
use dormouse_ws::{deflate, handshake};
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::peer::{self, Adopt, ForwardedTo};
use crate::per_address::{AddressLease, AddressLimit};
use crate::splice;

/// Who sent a request, and what its connection may agree to: its address, the bound on
/// connections per address, whether compression is on.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) address: IpAddr,
    pub(crate) limit: Option<Arc<AddressLimit>>,
    pub(crate) compression: bool,
    /// The cluster's secret, which forwarded requests carry (cluster mode).
    pub(crate) peer_secret: Option<Arc<str>>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Arc<[IpAddr]>,
}

impl Client {
    /// The address of the client that sent `headers`: the connection's, or, when the connection
    /// comes from a trusted reverse proxy, the last address its `X-Forwarded-For` names (the one
    /// the proxy added: earlier ones were written by whoever sent the request, and prove nothing).
    fn address_of(&self, headers: &http::HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&self.address) {
            return self.address;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .unwrap_or(self.address)
    }
}

/// An upgrade request that passed the checks, waiting for the Worker's answer.
struct Pending {
    key: String,
    on_upgrade: OnUpgrade,
    /// The subprotocols the client offered, in its order.
    offered: Vec<String>,
    /// The connection's place in its address's count.
    lease: Option<AddressLease>,
    /// permessage-deflate is offered and will be agreed.
    compression: bool,
}

/// Serves one request through the Worker.
///
/// A request that asks for a WebSocket upgrade but cannot be one (wrong method, missing key…) is
/// answered 400 with the reason, and one from an address that holds as many connections as it
/// may is answered 429, before the Worker sees it. When the Worker answers 101 with a
/// WebSocket, the handshake is completed here (with the subprotocol the object chose, which must
/// be one the client offered) and the connection is handed to the runtime.
pub(crate) async fn handle<W>(
    mut request: http::Request<Incoming>,
    mut worker: W,
    runtime: Runtime,
    client: Client,
) -> Result<Response, Infallible>
where
    W: Service<Request, Response = Response, Error = Infallible>,
{
    let address = client.address_of(request.headers());
    let forwarded = match peer::forwarded_to(
        request.headers(),
        client.peer_secret.as_deref(),
        client.address,
    ) {
        Ok(forwarded) => forwarded,
        Err(refusal) => return Ok(refusal.response()),
    };
    let upgrade = if handshake::is_upgrade_request(request.headers()) {
        let key = match handshake::validate_request(
            request.method(),
            request.version(),
            request.headers(),
        ) {
            Ok(key) => key,
            Err(error) => return Ok(response::text(error.status(), error.to_string())),
        };
        // A forwarded upgrade was counted against its client's address by the node it came to.
        let limit = client.limit.as_ref().filter(|_| forwarded.is_none());
        let lease = match limit {
            None => None,
            Some(limit) => match limit.acquire(address) {
                Some(lease) => Some(lease),
                None => {
                    tracing::debug!(%address, max = limit.max(), "refusing an upgrade past the per-address limit");
                    return Ok(response::text(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "Too Many Requests: {} WebSocket connections are already open from {}",
                            limit.max(),
                            address
                        ),
                    ));
                }
            },
        };
        Some(Pending {
            key,
            compression: client.compression && deflate::negotiate(request.headers()),
            offered: handshake::offered_subprotocols(request.headers()),
            on_upgrade: hyper::upgrade::on(&mut request),
            lease,
        })
    } else {
        None
    };
    let request = request.map(Body::new);
    let relayed = forwarded.is_some();
    let mut reply = match forwarded {
        Some(ForwardedTo {
            binding,
            id,
            adopt: Some(Adopt { tags, attachment }),
        }) => {
            let socket = AdoptedSocket {
                tags,
                attachment,
                protocol: upgrade.as_ref().and_then(|p| p.offered.first().cloned()),
            };
            runtime.adopt_forwarded(&binding, &id, socket).await
        }
        Some(target) => {
            runtime
                .fetch_forwarded(&target.binding, &target.id, request)
                .await
        }
        None => match worker.call(request).await {
            Ok(reply) => reply,
        },
    };
    if reply.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(reply);
    }
    if let Some(owner) = reply.extensions_mut().remove::<ForwardedUpgrade>() {
        let Some(pending) = upgrade else {
            return Ok(upgrade_required());
        };
        // The owner answered the handshake (accept key, subprotocol, extensions): its 101 goes to
        // the client as it is, and the two connections are joined.
        let protocol = reply
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        splice::join(pending.on_upgrade, owner, protocol, pending.lease);
        return Ok(reply);
    }
    let Some(socket) = reply.extensions_mut().remove::<WebSocketUpgrade>() else {
        tracing::error!("the Worker answered 101 without a WebSocket");
        return Ok(response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a 101 response must carry a WebSocket",
        ));
    };
    let Some(pending) = upgrade else {
        // Dropping `socket` tells its object the connection never came (close 1006).
        return Ok(upgrade_required());
    };
    let protocol = match handshake::chosen_subprotocol(&pending.offered, reply.headers()) {
        Ok(protocol) => protocol,
        Err(error) => {
            // The client would fail the connection; the object hears close 1006 instead.
            tracing::warn!(%error, "refusing a WebSocket answer of the Durable Object");
            return Ok(response::text(error.status(), error.to_string()));
        }
    };
    let Pending {
        key,
        on_upgrade,
        lease,
        compression,
        ..
    } = pending;
    let negotiated = Negotiated {
        protocol,
        compression,
        lease: lease.map(ConnectionLease::new),
        relayed,
    };
    let headers = reply.headers_mut();
    // Extensions are the runtime's to agree, not the object's.
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    if compression {
        headers.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(deflate::RESPONSE),
        );
    }
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&handshake::accept_key(&key))
            .expect("base64 is a valid header value"),
    );
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let stream = parts.io.into_inner();
                    if let Err(error) =
                        runtime.attach_negotiated(&socket, stream, parts.read_buf, negotiated)
                    {
                        tracing::error!(%error, "cannot attach WebSocket");
                    }
                }
                Err(_) => tracing::error!("upgraded connection is not a TCP stream"),
            },
            Err(error) => tracing::debug!(%error, "client went away before the upgrade completed"),
        }
    });
    Ok(reply)
}

fn upgrade_required() -> Response {
    response::text(
        StatusCode::UPGRADE_REQUIRED,
        "Upgrade Required: this endpoint expects a WebSocket upgrade",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(address: [u8; 4], trusted: &[[u8; 4]]) -> Client {
        Client {
            address: address.into(),
            limit: None,
            compression: false,
            peer_secret: None,
            trusted_proxies: trusted.iter().map(|ip| IpAddr::from(*ip)).collect(),
        }
    }

    fn forwarded_for(values: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_trusted_proxy_names_the_client_in_the_last_address_it_added() {
        let proxy = client([10, 0, 0, 1], &[[10, 0, 0, 1]]);
        let headers = forwarded_for(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(proxy.address_of(&headers), IpAddr::from([203, 0, 113, 7]));
        let two_headers = forwarded_for(&["6.6.6.6", "198.51.100.2"]);
        assert_eq!(
            proxy.address_of(&two_headers),
            IpAddr::from([198, 51, 100, 2])
        );
        assert_eq!(
            proxy.address_of(&forwarded_for(&["not an address"])),
            IpAddr::from([10, 0, 0, 1])
        );
    }

    #[test]
    fn anyone_else_is_taken_at_the_connections_address() {
        let direct = client([192, 0, 2, 9], &[[10, 0, 0, 1]]);
        let headers = forwarded_for(&["203.0.113.7"]);
        assert_eq!(direct.address_of(&headers), IpAddr::from([192, 0, 2, 9]));
    }
}
