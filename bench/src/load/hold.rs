//! Scenario 1's load: many idle connections.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};

use super::{HoldReport, checkpoint, connect_many};

/// Arguments of `dormouse-load hold`.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// Offers permessage-deflate (as browsers do) and compresses what is sent once agreed.
    #[arg(long)]
    pub compression: bool,
    /// Server address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// WebSocket path.
    #[arg(long)]
    pub path: String,
    /// Connections to open.
    #[arg(long)]
    pub connections: usize,
    /// Local address to connect from (any of 127.0.0.0/8 on loopback): each source address has
    /// its own range of ephemeral ports.
    #[arg(long)]
    pub source_ip: Option<IpAddr>,
    /// Message sent once on each connection, whose answer is awaited.
    #[arg(long, default_value = "hello")]
    pub message: String,
}

/// Opens the connections, exchanges one message on each, then holds them (answering pings) until
/// the driver has measured the server.
pub(super) async fn run(args: HoldArgs) -> Result<HoldReport> {
    let connections = connect_many(
        args.addr,
        args.source_ip,
        args.connections,
        args.compression,
        |_| args.path.clone(),
    )
    .await?;
    let mut holders = tokio::task::JoinSet::new();
    for mut connection in connections {
        let message = args.message.clone();
        holders.spawn_local(async move {
            connection.send_text(&message).await?;
            connection.next_message().await?;
            anyhow::Ok(connection)
        });
    }
    let mut held = Vec::with_capacity(args.connections);
    while let Some(joined) = holders.join_next().await {
        held.push(joined?.context("the first message")?);
    }
    let compressed = held.iter().filter(|c| c.is_compressed()).count();
    let mut idle = tokio::task::JoinSet::new();
    for mut connection in held {
        // Runs until the connection fails, and returns why.
        idle.spawn_local(async move {
            loop {
                if let Err(error) = connection.next_message().await {
                    return error;
                }
            }
        });
    }
    checkpoint("holding").await?;
    // A connection that failed while held would have shrunk the count the driver measured.
    if let Some(Ok(error)) = idle.try_join_next() {
        return Err(anyhow::Error::new(error).context("a held connection failed"));
    }
    idle.abort_all();
    Ok(HoldReport {
        connections: args.connections,
        compressed,
    })
}
