//! The Dormouse server: serves a Worker (any `tower::Service`, usually an axum `Router`) over
//! HTTP/1.1, completes WebSocket upgrades that objects answer with 101, hands the connections to
//! the runtime, and serves the admin endpoint.
//!
//! # Layout
//! - [`Server`]: binds, runs, and shuts down the HTTP and admin listeners.
//! - [`ServeArgs`]: the command-line flags shared by every binary.
//! - `listener`: the accept loop (survives running out of file descriptors) and connections.
//! - `upgrade`: the WebSocket handshake around the Worker.
//! - `admin`: `/metrics`, `/objects`, forced hibernation.
//! - [`DataDir`]: the locked data directory.
//! - `memory`: returns freed memory to the OS after hibernation.
//! - [`error`] — [`ServerError`].

mod admin;
mod args;
mod data_dir;
pub mod error;
mod listener;
mod memory;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;

use dormouse_runtime::Runtime;
use dormouse_sdk::{Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

pub use args::ServeArgs;
pub use data_dir::DataDir;
pub use error::{Result, ServerError};

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    runtime: Runtime,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Server {
    /// Starts serving `worker` on `listener` (and the admin routes on `admin`, if given).
    pub fn start<W>(
        listener: TcpListener,
        admin: Option<TcpListener>,
        runtime: Runtime,
        worker: W,
    ) -> Result<Server>
    where
        W: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        W::Future: Send + 'static,
    {
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: ([0, 0, 0, 0], 0).into(),
            source,
        })?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tokio::spawn(listener::accept_loop(
            listener,
            runtime.clone(),
            worker,
            shutdown.clone(),
            tracker.clone(),
        ));
        tokio::spawn(memory::trim_loop(runtime.clone(), shutdown.clone()));
        let admin_addr = match admin {
            None => None,
            Some(admin) => {
                let admin_addr = admin.local_addr().ok();
                let router = admin::router(runtime.clone());
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    let serve = axum::serve(admin, router)
                        .with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(error) = serve.await {
                        tracing::error!(%error, "admin endpoint failed");
                    }
                });
                admin_addr
            }
        };
        tracing::info!(%addr, admin = ?admin_addr, "serving");
        Ok(Server {
            addr,
            admin_addr,
            runtime,
            shutdown,
            tracker,
        })
    }

    /// Binds `addr` (and `admin_addr`) and starts serving.
    pub async fn bind<W>(
        addr: SocketAddr,
        admin_addr: Option<SocketAddr>,
        runtime: Runtime,
        worker: W,
    ) -> Result<Server>
    where
        W: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        W::Future: Send + 'static,
    {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let admin = match admin_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        Server::start(listener, admin, runtime, worker)
    }

    /// The address HTTP and WebSockets are served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The runtime behind the server.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Stops accepting, lets HTTP requests in progress finish, and returns when they have.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
