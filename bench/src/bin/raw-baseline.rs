//! The raw WebSocket baseline of the benchmarks: seed 002's echo and seed 000's chat room on the
//! Dormouse codec and tokio, without objects.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Minimal WebSocket echo and chat-room server (the benchmarks' raw baseline)")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    dormouse_bench::raw::serve(listener).await?;
    Ok(())
}
