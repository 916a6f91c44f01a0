//! Scenario 4's load: one chat room (seed 000) per connection. A message to a room comes back to
//! its only member, so one round trip measures one event, waking the room first if it hibernates.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::time::Instant;

use super::{WakeReport, chat_message, chat_seq, checkpoint, connect_many};
use crate::histogram::Histogram;
use crate::wire::Connection;

/// Arguments of `dormouse-load wake`.
#[derive(Debug, clap::Args)]
pub struct WakeArgs {
    /// Server address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Objects (rooms), one connection each.
    #[arg(long)]
    pub objects: usize,
}

/// Sends chat message `seq` and waits for it to come back; returns the round-trip time.
async fn round_trip(connection: &mut Connection, seq: u64) -> Result<std::time::Duration> {
    let started = Instant::now();
    connection.send_text(&chat_message(seq)).await?;
    loop {
        let payload = connection.next_message().await?;
        if chat_seq(connection.payload(payload)) == Some(seq) {
            return Ok(started.elapsed());
        }
    }
}

/// Warm round trips, then (after the driver forces hibernation) the first round trip to each
/// hibernated room one at a time, then (hibernated again) one message to every room at once.
pub(super) async fn run(args: WakeArgs) -> Result<WakeReport> {
    let mut connections = connect_many(args.addr, None, args.objects, false, |i| {
        format!("/room/wake{i}?userId=w{i}&username=w{i}")
    })
    .await?;
    let mut warm = Histogram::default();
    for connection in &mut connections {
        // The welcome.
        connection.next_message().await?;
        // The first message after the welcome warms up the path; the second is measured.
        round_trip(connection, 0).await?;
        warm.record(round_trip(connection, 1).await?);
    }
    checkpoint("hibernate").await?;
    let mut cold = Histogram::default();
    for connection in &mut connections {
        cold.record(round_trip(connection, 2).await?);
    }
    checkpoint("hibernate").await?;
    let started = Instant::now();
    let mut all = tokio::task::JoinSet::new();
    for mut connection in connections {
        all.spawn_local(async move { round_trip(&mut connection, 3).await });
    }
    while let Some(joined) = all.join_next().await {
        joined?.context("waking every room at once")?;
    }
    Ok(WakeReport {
        objects: args.objects,
        warm,
        cold,
        all_at_once: started.elapsed(),
    })
}
