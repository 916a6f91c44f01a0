//! A Dormouse application served on loopback for one test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dormouse::runtime::Runtime;
use dormouse::{App, Running, ServeArgs};

use crate::{HttpReply, Metrics, WsClient, http_request};

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system's temporary directory.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "dormouse-test-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Flags for a test server: loopback port 0, a fresh data directory, and an idle timeout long
/// enough never to fire during a test (tests hibernate objects explicitly).
pub fn test_args(data_dir: &Path) -> ServeArgs {
    ServeArgs {
        listen: "127.0.0.1:0".parse().expect("address"),
        admin_listen: "127.0.0.1:0".parse().expect("address"),
        admin_token: None,
        hibernate_after: Duration::from_secs(3600),
        evict_after: Duration::from_secs(3600),
        data_dir: data_dir.to_owned(),
        durability: dormouse::Durability::Full,
        config: None,
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(10),
        max_outbound_bytes: dormouse::runtime::Limits::default().max_outbound_bytes,
        socket_send_buffer: None,
        max_connections_per_ip: None,
        trusted_proxy: Vec::new(),
        compression: true,
        max_message_size: dormouse::runtime::Limits::default().max_message_bytes,
        cluster_database: None,
        node_address: None,
        cluster_secret: None,
        lease_ttl: Duration::from_secs(6),
        unsafe_no_fencing: false,
    }
}

/// WebSocket close code 1001: what a stopped test server closes its sockets with.
const GOING_AWAY: u16 = 1001;

/// A running application plus helpers to talk to it.
#[derive(Debug)]
pub struct TestServer {
    running: Running,
    data_dir: PathBuf,
    /// The data directory, when this server owns it (removed with the server).
    _owned: Option<TempDir>,
}

impl TestServer {
    /// Serves `app` with [`test_args`].
    pub async fn start(app: App) -> TestServer {
        TestServer::start_with(app, |_| {}).await
    }

    /// Serves `app` with [`test_args`] adjusted by `configure`.
    pub async fn start_with(app: App, configure: impl FnOnce(&mut ServeArgs)) -> TestServer {
        let dir = TempDir::new("server");
        let mut args = test_args(dir.path());
        configure(&mut args);
        let running = app.serve(&args).await.expect("start test server");
        TestServer {
            running,
            data_dir: dir.path().to_owned(),
            _owned: Some(dir),
        }
    }

    /// Serves `app` with [`test_args`] and the runtime configuration adjusted by `configure`.
    pub async fn start_configured(
        app: App,
        configure: impl FnOnce(&mut dormouse::runtime::RuntimeConfig),
    ) -> TestServer {
        let dir = TempDir::new("server");
        let args = test_args(dir.path());
        let mut config = args.runtime_config();
        configure(&mut config);
        let running = app
            .serve_with(&args, config)
            .await
            .expect("start test server");
        TestServer {
            running,
            data_dir: dir.path().to_owned(),
            _owned: Some(dir),
        }
    }

    /// Serves `app` with its data in `dir` (which outlives the server: a later server can use it).
    pub async fn start_in(
        app: App,
        dir: &Path,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> TestServer {
        let mut args = test_args(dir);
        configure(&mut args);
        let running = app.serve(&args).await.expect("start test server");
        TestServer {
            running,
            data_dir: dir.to_owned(),
            _owned: None,
        }
    }

    /// [`TestServer::start_in`], returning the error (in words) instead of panicking.
    pub async fn try_start_in(
        app: App,
        dir: &Path,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> Result<TestServer, String> {
        let mut args = test_args(dir);
        configure(&mut args);
        let running = app.serve(&args).await.map_err(|e| format!("{e:#}"))?;
        Ok(TestServer {
            running,
            data_dir: dir.to_owned(),
            _owned: None,
        })
    }

    /// Stops the server gracefully (closing sockets, committing, releasing the data directory).
    pub async fn stop(self) {
        self.running.stop(GOING_AWAY).await;
    }

    /// The runtime, for forcing hibernation and reading state directly.
    pub fn runtime(&self) -> &Runtime {
        self.running.runtime()
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.running.addr())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The HTTP address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.addr()
    }

    /// Opens a WebSocket to `path`; panics if the upgrade fails.
    pub async fn connect(&self, path: &str) -> WsClient {
        WsClient::connect(&self.ws_url(path)).await
    }

    /// An HTTP request to the application.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        http_request(self.running.addr(), method, path, headers, "").await
    }

    /// A `POST` with a body to the application.
    pub async fn post(&self, path: &str, body: &str) -> HttpReply {
        http_request(self.running.addr(), "POST", path, &[], body).await
    }

    /// The admin endpoint's address.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.running
            .admin_addr()
            .expect("test servers have an admin endpoint")
    }

    /// An HTTP request to the admin endpoint.
    pub async fn admin(&self, method: &str, path: &str) -> HttpReply {
        let admin = self
            .running
            .admin_addr()
            .expect("test servers have an admin endpoint");
        http_request(admin, method, path, &[], "").await
    }

    /// The metrics, scraped from the admin endpoint.
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
            .expect("object hibernates");
    }
}
