//! A Workers project (wrangler config + JavaScript/TypeScript) served on loopback for one test,
//! in process, the way `dormouse serve` serves it.

use std::path::{Path, PathBuf};

use dormouse::runtime::Runtime;
use dormouse_cli::{Running, WorkersArgs};

use crate::server::{TempDir, test_args};
use crate::{HttpReply, Metrics, WsClient, http_request};

/// The seed projects (verbatim copies of the ones the project started from), by folder name.
pub fn seed_project(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../seeds/workers")
        .join(name)
}

/// Flags for serving `project` in a test: [`test_args`] with a fresh data directory.
pub fn workers_args(project: &Path, data_dir: &Path) -> WorkersArgs {
    WorkersArgs {
        project: Some(project.to_owned()),
        env: None,
        cpu_limit: None,
        memory_limit: dormouse_workers::DEFAULT_MEMORY_LIMIT,
        serve: test_args(data_dir),
    }
}

/// A served Workers project plus helpers to talk to it.
#[derive(Debug)]
pub struct WorkersServer {
    running: Running,
    _data: Option<TempDir>,
}

impl WorkersServer {
    /// Serves `project` (its directory or config file).
    pub async fn start(project: &Path) -> WorkersServer {
        WorkersServer::start_with(project, |_| {}).await
    }

    /// Serves `project` with the flags adjusted by `configure`.
    pub async fn start_with(
        project: &Path,
        configure: impl FnOnce(&mut WorkersArgs),
    ) -> WorkersServer {
        WorkersServer::try_start_with(project, configure)
            .await
            .unwrap_or_else(|error| panic!("cannot serve {}: {error}", project.display()))
    }

    /// [`WorkersServer::start_with`], returning the error (in words) instead of panicking.
    pub async fn try_start_with(
        project: &Path,
        configure: impl FnOnce(&mut WorkersArgs),
    ) -> Result<WorkersServer, String> {
        let dir = TempDir::new("workers");
        let mut args = workers_args(project, dir.path());
        configure(&mut args);
        let running = dormouse_cli::start(&args, true)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(WorkersServer {
            running,
            _data: Some(dir),
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        self.running.server().runtime()
    }

    /// The HTTP address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.server().addr()
    }

    /// The admin address.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.running
            .server()
            .admin_addr()
            .expect("test servers have an admin endpoint")
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr())
    }

    /// Opens a WebSocket to `path`; panics if the upgrade fails.
    pub async fn connect(&self, path: &str) -> WsClient {
        WsClient::connect(&self.ws_url(path)).await
    }

    /// An HTTP request to the Worker.
    pub async fn request(&self, method: &str, path: &str) -> HttpReply {
        http_request(self.addr(), method, path, &[], "").await
    }

    /// A request with headers and a body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpReply {
        http_request(self.addr(), method, path, headers, body).await
    }

    /// An HTTP request to the admin endpoint.
    pub async fn admin(&self, method: &str, path: &str) -> HttpReply {
        let admin = self
            .running
            .server()
            .admin_addr()
            .expect("test servers have an admin endpoint");
        http_request(admin, method, path, &[], "").await
    }

    /// The metrics.
    pub async fn metrics(&self) -> Metrics {
        let reply = self.admin("GET", "/metrics").await;
        assert_eq!(reply.status, 200, "metrics endpoint: {}", reply.body);
        Metrics::parse(&reply.body)
    }

    /// Forces the object `name` of `binding` to hibernate; panics if something prevents it.
    pub async fn hibernate(&self, binding: &str, name: &str) {
        let id = self
            .runtime()
            .env()
            .durable_object(binding)
            .expect("binding")
            .id_from_name(name)
            .expect("id");
        self.runtime()
            .hibernate_now(binding, &id)
            .await
            .unwrap_or_else(|e| panic!("{binding}/{name} does not hibernate: {e}"));
    }

    /// Loads the project's code again (as `dormouse dev` does when a file changes).
    pub async fn reload(&mut self) -> Result<(), String> {
        self.running.reload().await.map_err(|e| format!("{e:#}"))
    }

    /// Stops gracefully.
    pub async fn stop(self) {
        self.running.shutdown_with(1001).await;
    }
}
