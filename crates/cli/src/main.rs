//! `dormouse`: run a Cloudflare Workers project on Dormouse.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dormouse_cli::watch::Snapshot;
use dormouse_cli::{Running, WorkersArgs};
use tracing_subscriber::EnvFilter;

/// How often `dormouse dev` looks for changed files.
const WATCH_INTERVAL: Duration = Duration::from_millis(300);

/// Runs Cloudflare Workers projects (wrangler config, JavaScript and TypeScript Durable Objects
/// with hibernatable WebSockets) on Dormouse, unchanged: one binary, no Node.js needed.
#[derive(Debug, Parser)]
#[command(name = "dormouse", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a project for development: reload its code when its files change, keeping its
    /// hibernatable WebSockets open, and show exceptions in 500 responses.
    Dev(WorkersArgs),
    /// Serve a project in production: no file watching, no error details in responses.
    Serve(WorkersArgs),
}

fn main() -> ExitCode {
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
    let (args, dev) = match cli.command {
        Command::Dev(args) => (args, true),
        Command::Serve(args) => (args, false),
    };
    match runtime.block_on(run(args, dev)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: WorkersArgs, dev: bool) -> anyhow::Result<()> {
    let mut running = dormouse_cli::start(&args, dev).await?;
    tracing::info!(
        listen = %running.server().addr(),
        admin = ?running.server().admin_addr(),
        project = %running.project().root().display(),
        "ready"
    );
    let code = if dev {
        tokio::select! {
            code = dormouse_server::shutdown_signal() => code?,
            () = watch(&mut running) => unreachable!("watching never ends"),
        }
    } else {
        dormouse_server::shutdown_signal().await?
    };
    tracing::info!(close_code = code, "shutting down");
    running.shutdown_with(code).await;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads the project's code whenever its files change.
async fn watch(running: &mut Running) {
    let root = running.project().root().to_path_buf();
    let mut known = Snapshot::take(&root);
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let now = Snapshot::take(&root);
        let changed = now.changes_since(&known);
        if changed.is_empty() {
            continue;
        }
        known = now;
        tracing::info!(files = ?changed, "reloading");
        match running.reload().await {
            Ok(()) => tracing::info!("reloaded: new events run the new code"),
            Err(error) => tracing::error!("{error:#}\n(the previous code keeps serving)"),
        }
    }
}
