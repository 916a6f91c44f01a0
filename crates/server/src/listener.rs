//! The accept loop and the HTTP/1.1 connections it serves.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use dormouse_runtime::Runtime;
use dormouse_sdk::{Request, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::ServerOptions;
use crate::per_address::AddressLimit;
use crate::upgrade::{self, Client};

/// Longest a client may take to send its request headers: a slow client cannot hold a
/// connection (and a file descriptor) without saying what it wants.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause before retrying `accept` when the process is out of file descriptors: existing sockets
/// keep being served and new connections wait in the kernel's backlog until descriptors free up.
const EXHAUSTED_RETRY: Duration = Duration::from_millis(50);

/// Accepts connections until `shutdown` is cancelled, serving each with `worker`.
pub(crate) async fn accept_loop<W>(
    listener: TcpListener,
    runtime: Runtime,
    worker: W,
    options: ServerOptions,
    address_limit: Option<Arc<AddressLimit>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) where
    W: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    W::Future: Send + 'static,
{
    let mut exhausted_since: Option<tokio::time::Instant> = None;
    let trusted_proxies: Arc<[std::net::IpAddr]> = options.trusted_proxies.clone().into();
    let peer_secret = options.cluster_secret.as_deref().map(Arc::<str>::from);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Some(since) = exhausted_since.take() {
                    tracing::info!(waited = ?since.elapsed(), "file descriptors available again; accepting connections");
                }
                let _ = stream.set_nodelay(true);
                if let Some(size) = options.socket_send_buffer {
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(size);
                }
                let client = Client {
                    address: peer.ip(),
                    limit: address_limit.clone(),
                    compression: options.compression,
                    peer_secret: peer_secret.clone(),
                    trusted_proxies: trusted_proxies.clone(),
                };
                tracker.spawn(serve_connection(
                    stream,
                    client,
                    runtime.clone(),
                    worker.clone(),
                    shutdown.clone(),
                ));
            }
            Err(error) if is_descriptor_exhaustion(&error) => {
                if exhausted_since.is_none() {
                    tracing::warn!(%error, "out of file descriptors: new connections wait until some close");
                    exhausted_since = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(EXHAUSTED_RETRY).await;
            }
            // A connection reset before it was accepted, and the like: nothing to do.
            Err(error) => tracing::debug!(%error, "accept failed"),
        }
    }
}

fn is_descriptor_exhaustion(error: &io::Error) -> bool {
    // EMFILE (per process) and ENFILE (system-wide); ENOBUFS/ENOMEM are the same kind of pressure.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
}

async fn serve_connection<W>(
    stream: TcpStream,
    client: Client,
    runtime: Runtime,
    worker: W,
    shutdown: CancellationToken,
) where
    W: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    W::Future: Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        upgrade::handle(request, worker.clone(), runtime.clone(), client.clone())
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}
