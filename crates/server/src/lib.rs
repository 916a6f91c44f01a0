//! The Dormouse server: serves a Worker (any `tower::Service`, usually an axum `Router`) over
//! HTTP/1.1, completes WebSocket upgrades that objects answer with 101, hands the connections to
//! the runtime, and serves the admin endpoint.
//!
//! # Layout
//! - [`Server`]: binds, runs, and shuts down the HTTP and admin listeners.
//! - [`ServeArgs`]: the command-line flags shared by every binary.
//! - `listener`: the accept loop (survives running out of file descriptors) and connections.
//! - `upgrade`: the WebSocket handshake around the Worker (subprotocol checks included).
//! - `peer`: requests between the nodes of a cluster, and the secret forwarded ones carry.
//! - `splice`: a forwarded WebSocket joined to its client's connection (1012 to the client when
//!   the owner goes away).
//! - `per_address`: `--max-connections-per-ip`, WebSocket connections per client address.
//! - `admin`: the inspector page and its JSON, `/metrics`, `/objects`, actions, who may use them.
//! - [`DataDir`]: the locked data directory.
//! - `memory`: returns freed memory to the OS after hibernation.
//! - [`signals`] — [`shutdown_signal`]: SIGINT, SIGTERM and SIGHUP, with their close codes.
//! - [`error`] — [`ServerError`].

mod admin;
mod args;
mod data_dir;
pub mod error;
mod listener;
mod memory;
mod peer;
mod per_address;
pub mod signals;
mod splice;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use dormouse_runtime::Runtime;
use dormouse_sdk::{Request, Response};
use prometheus_client::collector::Collector;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::per_address::AddressLimit;
use tower_service::Service;

pub use args::ServeArgs;
pub use data_dir::DataDir;
pub use dormouse_config::ConfigFile;
pub use error::{Result, ServerError};
pub use signals::shutdown_signal;

/// Longest a graceful shutdown waits for requests in flight, and then again for the turns of
/// objects in progress.
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// How connections are set up.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Kernel send buffer per connection (SO_SNDBUF); the kernel's autotuning when `None`.
    pub socket_send_buffer: Option<usize>,
    /// WebSocket connections one client address may hold open; unbounded when `None`.
    pub max_connections_per_ip: Option<usize>,
    /// Whether permessage-deflate is agreed with clients that offer it.
    pub compression: bool,
    /// The token admin requests must carry; without one the admin address must be on loopback.
    pub admin_token: Option<String>,
    /// The secret peers' forwarded requests carry (cluster mode); without it, this node serves
    /// no forwarded request.
    pub cluster_secret: Option<String>,
    /// More figures for `/metrics`, next to the runtime's (a cluster node's).
    pub collectors: Vec<Arc<dyn Collector>>,
    /// Reverse proxies whose `X-Forwarded-For` header names the client (for the per-address
    /// limit and the logs).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            socket_send_buffer: None,
            max_connections_per_ip: None,
            compression: true,
            admin_token: None,
            cluster_secret: None,
            collectors: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

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
        options: ServerOptions,
    ) -> Result<Server>
    where
        W: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        W::Future: Send + 'static,
    {
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: ([0, 0, 0, 0], 0).into(),
            source,
        })?;
        let admin_access = match &admin {
            Some(admin) => Some(admin::Access::for_listener(
                admin,
                options.admin_token.as_deref(),
            )?),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let address_limit = options.max_connections_per_ip.map(AddressLimit::new);
        let collectors = options.collectors.clone();
        tokio::spawn(listener::accept_loop(
            listener,
            runtime.clone(),
            worker,
            options,
            address_limit.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        tokio::spawn(memory::trim_loop(runtime.clone(), shutdown.clone()));
        let admin_addr = match admin.zip(admin_access) {
            None => None,
            Some((admin, access)) => {
                let admin_addr = admin.local_addr().ok();
                let router = admin::router(
                    runtime.clone(),
                    address_limit,
                    access,
                    collectors,
                    shutdown.clone(),
                );
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
        options: ServerOptions,
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
        Server::start(listener, admin, runtime, worker, options)
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

    /// Stops gracefully: stops accepting, lets HTTP requests in progress finish, lets every
    /// object finish its turn (committing its writes), closes every WebSocket with 1001 ("going
    /// away"), and returns when all is done or after twice [`SHUTDOWN_DEADLINE`].
    pub async fn shutdown(&self) {
        self.shutdown_with(dormouse_ws::close::GOING_AWAY).await;
    }

    /// [`Server::shutdown`], closing WebSockets with `code` (1012 tells clients the server
    /// restarts and they may reconnect).
    pub async fn shutdown_with(&self, code: u16) {
        self.shutdown.cancel();
        self.tracker.close();
        // Requests in flight get the deadline to be answered; the objects then get it again to
        // finish their turns (committing what they wrote) and close their sockets with `code`.
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = self.tracker.len(),
                "requests still unanswered at the shutdown deadline"
            );
        }
        let late = self.runtime.shutdown(code, SHUTDOWN_DEADLINE).await;
        if late > 0 {
            tracing::warn!(objects = late, "stopped before every object finished");
        }
    }
}
