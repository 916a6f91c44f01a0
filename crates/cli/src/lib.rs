//! The `dormouse` command: runs a Cloudflare Workers project (its wrangler configuration and its
//! JavaScript or TypeScript modules) on Dormouse, unchanged.
//!
//! ```sh
//! cd my-worker && dormouse dev        # reads ./wrangler.{json,jsonc,toml}, reloads on change
//! dormouse serve path/to/project --listen 0.0.0.0:8080 --data-dir /var/lib/dormouse
//! ```
//!
//! # Layout
//! - [`WorkersArgs`]: the command line of `dev` and `serve` (with every shared server flag).
//! - [`Running`]: a project being served; [`start`] starts one, [`Running::reload`] loads
//!   changed code.
//! - [`watch`] — the files `dormouse dev` watches, and their changes.

pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use dormouse_node::{ClusterFlags, ClusterNode};
use dormouse_runtime::{CloseReply, GuestClass, Runtime, StorageOptions};
use dormouse_server::{DataDir, ServeArgs, Server};
use dormouse_workers::{Engine, EngineOptions, Feature, Project, WorkerService};

/// The command line of `dormouse dev` and `dormouse serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkersArgs {
    /// The project: a directory with a wrangler.json, wrangler.jsonc or wrangler.toml, or the
    /// config file itself (default: the current directory, or `--config`).
    #[arg(value_name = "PROJECT")]
    pub project: Option<PathBuf>,

    /// The `[env.NAME]` section of the configuration to use.
    #[arg(long, value_name = "NAME", env = "DORMOUSE_ENV")]
    pub env: Option<String>,

    /// CPU time one event's JavaScript may use before its object is reset (default: the
    /// config's `limits.cpu_ms`, else 30s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, env = "DORMOUSE_CPU_LIMIT")]
    pub cpu_limit: Option<Duration>,

    /// Memory the JavaScript heap may use, e.g. 128MB or 1GiB; an allocation past it resets the
    /// object that made it.
    #[arg(long, value_name = "SIZE", default_value = "128MB", value_parser = parse_size, env = "DORMOUSE_MEMORY_LIMIT")]
    pub memory_limit: usize,

    /// The flags every Dormouse server takes (`--listen`, `--data-dir`, …).
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl WorkersArgs {
    /// The project's path: `PROJECT`, else `--config`, else the current directory.
    pub fn project_path(&self) -> PathBuf {
        self.project
            .clone()
            .or_else(|| self.serve.config.clone())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// `128MB`, `1GiB`, `65536`: a size in bytes.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 128MB"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KB, MB or GB)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A project being served.
#[derive(Debug)]
pub struct Running {
    server: Server,
    engine: Engine,
    project: Project,
    args: WorkersArgs,
    cluster: Option<ClusterNode>,
    _data_dir: DataDir,
}

/// Reads the project, starts its engine and its runtime, loads its code and serves it. `dev`
/// puts exceptions' details in the Worker's 500 responses.
pub async fn start(args: &WorkersArgs, dev: bool) -> anyhow::Result<Running> {
    let project = Project::open(&args.project_path(), args.env.as_deref())?;
    for warning in &project.config.warnings {
        tracing::warn!("{}: {warning}", project.config.path.display());
    }
    let data_dir = DataDir::open(&args.serve.data_dir)?;
    let engine = Engine::start(EngineOptions {
        cpu_limit: args
            .cpu_limit
            .or(project.config.cpu_limit)
            .unwrap_or(dormouse_workers::DEFAULT_CPU_LIMIT),
        memory_limit: args.memory_limit,
        expose_errors: dev,
    })?;
    let close_reply = if project
        .config
        .compatibility
        .enabled(Feature::AutoReplyToClose)
    {
        CloseReply::Immediate
    } else {
        CloseReply::AfterHandler
    };
    let mut builder = Runtime::builder()
        .config(args.serve.runtime_config())
        .storage(StorageOptions {
            data_dir: args.serve.data_dir.clone(),
            durability: args.serve.durability,
            migrations: project.config.migrations.clone(),
        });
    for binding in &project.config.bindings {
        builder = builder.guest_class(
            GuestClass::new(
                &binding.name,
                &binding.class_name,
                engine.class_factory(&binding.class_name),
            )
            .executor(engine.executor())
            .close_reply(close_reply),
        );
    }
    let serve = &args.serve;
    let cluster = ClusterNode::join_from_flags(ClusterFlags {
        database: serve.cluster_database.as_deref(),
        node_address: serve.node_address.as_deref(),
        listen: serve.listen,
        secret: serve.cluster_secret.as_deref(),
        lease_ttl: serve.lease_ttl,
        unsafe_no_fencing: serve.unsafe_no_fencing,
    })
    .await
    .context("cannot join the cluster")?;
    if let Some(node) = &cluster {
        builder = builder.placement(node.placement());
    }
    let runtime = builder.build().context("cannot start the runtime")?;
    let mut options = serve.server_options();
    if let Some(node) = &cluster {
        node.attach(runtime.clone());
        options
            .collectors
            .push(std::sync::Arc::new(node.collector()));
    }
    engine.load(&project, runtime.env()).await?;
    let server = Server::bind(
        serve.listen,
        Some(serve.admin_listen),
        runtime,
        WorkerService::new(engine.clone()),
        options,
    )
    .await?;
    Ok(Running {
        server,
        engine,
        project,
        args: args.clone(),
        cluster,
        _data_dir: data_dir,
    })
}

impl Running {
    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The project as last loaded.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Loads the project's code again. On success, every object in memory is dropped so that
    /// its next event runs the new code (hibernatable sockets stay open); on failure the code
    /// before keeps serving and the error is returned.
    pub async fn reload(&mut self) -> anyhow::Result<()> {
        let project = Project::open(&self.args.project_path(), self.args.env.as_deref())?;
        if project.config.bindings != self.project.config.bindings {
            tracing::warn!(
                "the Durable Object bindings changed; restart dormouse to apply them (the code reloads with the old bindings)"
            );
        }
        self.engine
            .load(&project, self.server.runtime().env())
            .await?;
        self.server.runtime().refresh_all().await;
        self.project = project;
        Ok(())
    }

    /// Stops: requests in flight are answered, objects finish their turns, WebSockets close
    /// with `code`. A cluster node closes them with 1012 (service restart) instead, so that
    /// clients reconnect to another node, and leaves its cluster, releasing its objects.
    pub async fn shutdown_with(&self, code: u16) {
        match &self.cluster {
            None => self.server.shutdown_with(code).await,
            Some(node) => {
                self.server.shutdown_with(dormouse_node::CLOSE_MOVED).await;
                node.leave().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_have_units() {
        assert_eq!(parse_size("128MB"), Ok(128 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
