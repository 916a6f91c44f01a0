//! One HTTP request: WebSocket handshake checks before the Worker, completion after it.

use std::convert::Infallible;

use dormouse_runtime::Runtime;
use dormouse_sdk::response::WebSocketUpgrade;
use dormouse_sdk::{Body, Request, Response, response};
use dormouse_ws::handshake;
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

/// Serves one request through the Worker.
///
/// A request that asks for a WebSocket upgrade but cannot be one (wrong method, missing key…) is
/// answered 400 with the reason, before the Worker sees it. When the Worker answers 101 with a
/// WebSocket, the handshake is completed here and the connection is handed to the runtime.
pub(crate) async fn handle<W>(
    mut request: http::Request<Incoming>,
    mut worker: W,
    runtime: Runtime,
) -> Result<Response, Infallible>
where
    W: Service<Request, Response = Response, Error = Infallible>,
{
    let upgrade = if handshake::is_upgrade_request(request.headers()) {
        match handshake::validate_request(request.method(), request.version(), request.headers()) {
            Ok(key) => Some((key, hyper::upgrade::on(&mut request))),
            Err(error) => return Ok(response::text(StatusCode::BAD_REQUEST, error.to_string())),
        }
    } else {
        None
    };
    let Ok(mut reply) = worker.call(request.map(Body::new)).await;
    if reply.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(reply);
    }
    let Some(socket) = reply.extensions_mut().remove::<WebSocketUpgrade>() else {
        tracing::error!("the Worker answered 101 without a WebSocket");
        return Ok(response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a 101 response must carry a WebSocket",
        ));
    };
    let Some((key, on_upgrade)) = upgrade else {
        // Dropping `socket` tells its object the connection never came (close 1006).
        return Ok(response::text(
            StatusCode::UPGRADE_REQUIRED,
            "Upgrade Required: this endpoint expects a WebSocket upgrade",
        ));
    };
    let headers = reply.headers_mut();
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
                    if let Err(error) =
                        runtime.attach(&socket, parts.io.into_inner(), parts.read_buf)
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
