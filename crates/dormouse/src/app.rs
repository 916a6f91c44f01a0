//! [`App`]: Durable Object classes plus a Worker, served.

use std::ops::Deref;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use clap::Parser;
use dormouse_node::{ClusterFlags, ClusterNode};
use dormouse_runtime::{Migration, Runtime, RuntimeBuilder, RuntimeConfig, StorageOptions};
use dormouse_sdk::{DurableObject, Env};
use dormouse_server::{ConfigFile, DataDir, ServeArgs, Server};
use tracing_subscriber::EnvFilter;

type WorkerFactory = Box<dyn FnOnce(Env) -> Router + Send>;

/// An application: its Durable Object classes and its Worker (the router in front of them).
pub struct App {
    runtime: RuntimeBuilder,
    worker: WorkerFactory,
    migrations: Vec<Migration>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

/// The command line of every Dormouse binary.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A Dormouse server: Durable Objects with hibernatable WebSockets"
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

impl App {
    /// An application with no classes and a Worker that answers 404.
    pub fn new() -> Self {
        App {
            runtime: Runtime::builder(),
            worker: Box::new(|_| Router::new()),
            migrations: Vec::new(),
        }
    }

    /// Binds the class `T` as `binding` (for example `"CHAT_ROOM"`).
    pub fn durable_object<T: DurableObject>(mut self, binding: &str) -> Self {
        self.runtime = self.runtime.durable_object::<T>(binding);
        self
    }

    /// A plain-text variable, visible as `env.var(name)`.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.runtime = self.runtime.var(name, value);
        self
    }

    /// Adds a class migration (applied once, in order). Migrations may come from the code or from
    /// the `--config` file, not both.
    pub fn migration(mut self, migration: Migration) -> Self {
        self.migrations.push(migration);
        self
    }

    /// The Worker: builds the router in front of the objects from the environment.
    pub fn worker(mut self, build: impl FnOnce(Env) -> Router + Send + 'static) -> Self {
        self.worker = Box::new(build);
        self
    }

    /// Starts serving as `args` say; returns once listening. Use from tests (with port 0).
    pub async fn serve(self, args: &ServeArgs) -> anyhow::Result<Running> {
        let config = args.runtime_config();
        self.serve_with(args, config).await
    }

    /// [`App::serve`] with a runtime configuration of its own (for limits the flags do not set).
    pub async fn serve_with(
        self,
        args: &ServeArgs,
        config: RuntimeConfig,
    ) -> anyhow::Result<Running> {
        let data_dir = DataDir::open(&args.data_dir)?;
        let file = match &args.config {
            Some(path) => ConfigFile::load(path).map_err(anyhow::Error::msg)?,
            None => ConfigFile::default(),
        };
        if !file.migrations.is_empty() && !self.migrations.is_empty() {
            anyhow::bail!(
                "migrations are given both in the code and in the configuration file; keep one list"
            );
        }
        let migrations = if file.migrations.is_empty() {
            self.migrations
        } else {
            file.migrations
        };
        let mut builder = self.runtime.config(config).storage(StorageOptions {
            data_dir: args.data_dir.clone(),
            durability: args.durability,
            migrations,
        });
        for (name, value) in &file.vars {
            builder = builder.var(name, value);
        }
        let cluster = join_cluster(args).await?;
        if let Some(node) = &cluster {
            builder = builder.placement(node.placement());
        }
        let runtime = builder.build().context("cannot start the runtime")?;
        let mut options = args.server_options();
        if let Some(node) = &cluster {
            node.attach(runtime.clone());
            options.collectors.push(Arc::new(node.collector()));
        }
        let router = (self.worker)(runtime.env());
        let server = Server::bind(
            args.listen,
            Some(args.admin_listen),
            runtime,
            router,
            options,
        )
        .await?;
        Ok(Running {
            server,
            data_dir,
            cluster,
        })
    }

    /// Runs the application as a program: parses the shared flags, logs to stderr (`RUST_LOG`
    /// sets the filter, default `info`), serves until SIGINT or SIGTERM.
    pub fn main(self) -> ExitCode {
        let cli = Cli::parse();
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_writer(std::io::stderr)
            .init();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.run(cli.serve)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!("{error:#}");
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn run(self, args: ServeArgs) -> anyhow::Result<()> {
        let running = self.serve(&args).await?;
        tracing::info!(
            listen = %running.addr(),
            admin = ?running.admin_addr(),
            hibernate_after = ?args.hibernate_after,
            data_dir = %args.data_dir.display(),
            "ready"
        );
        let code = dormouse_server::shutdown_signal()
            .await
            .context("cannot listen for shutdown signals")?;
        tracing::info!(close_code = code, "shutting down");
        running.stop(code).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Joins the cluster the flags name, if any.
async fn join_cluster(args: &ServeArgs) -> anyhow::Result<Option<ClusterNode>> {
    ClusterNode::join_from_flags(ClusterFlags {
        database: args.cluster_database.as_deref(),
        node_address: args.node_address.as_deref(),
        listen: args.listen,
        secret: args.cluster_secret.as_deref(),
        lease_ttl: args.lease_ttl,
        unsafe_no_fencing: args.unsafe_no_fencing,
    })
    .await
    .context("cannot join the cluster")
}

/// A running application.
#[derive(Debug)]
pub struct Running {
    server: Server,
    data_dir: DataDir,
    cluster: Option<ClusterNode>,
}

impl Running {
    /// Stops serving, as [`Server::shutdown_with`] does; a cluster node then leaves its cluster,
    /// releasing its objects at once, and its sockets close with 1012 (service restart) whatever
    /// `code` says, so that clients reconnect to another node.
    pub async fn stop(&self, code: u16) {
        match &self.cluster {
            None => self.server.shutdown_with(code).await,
            Some(node) => {
                self.server.shutdown_with(dormouse_node::CLOSE_MOVED).await;
                node.leave().await;
            }
        }
    }

    /// The data directory (locked while the application runs).
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }
}

impl Deref for Running {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}
