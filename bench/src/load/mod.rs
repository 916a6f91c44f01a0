//! The load generator's scenarios. Each runs on one thread (a current-thread runtime and a
//! `LocalSet`), talks to the driver through stdout and stdin, and ends with one `result` line:
//!
//! - `phase <name>`: the generator reached a point where the driver acts (forces hibernation,
//!   measures the server); it goes on when the driver writes a line to its stdin.
//! - `measuring`: the measured stretch begins (the driver starts its CPU meter of the server).
//! - `result <json>`: the report, one of the `*Report` types below.

mod echo;
mod fanout;
mod hold;
mod wake;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Semaphore;

use crate::histogram::Histogram;
use crate::wire::Connection;

pub use echo::EchoArgs;
pub use fanout::FanoutArgs;
pub use hold::HoldArgs;
pub use wake::WakeArgs;

/// Handshakes in flight at once while connecting: enough to hide the round trips, few enough
/// not to overflow the server's accept backlog.
const CONNECT_CONCURRENCY: usize = 64;

/// What the generator is asked to do.
#[derive(Debug, clap::Subcommand)]
pub enum Scenario {
    /// Opens connections, sends one message on each, and holds them until told to stop.
    Hold(HoldArgs),
    /// Closed-loop round trips: each connection sends a message and waits for the answer.
    Echo(EchoArgs),
    /// A chat room (seed 000): members join, one of them publishes, everyone receives.
    Fanout(FanoutArgs),
    /// One chat room per connection: latency of the first message after hibernation.
    Wake(WakeArgs),
}

/// Runs `scenario` on the current thread and prints its result line.
pub fn run(scenario: Scenario) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        match scenario {
            Scenario::Hold(args) => emit(hold::run(args).await?),
            Scenario::Echo(args) => emit(echo::run(args).await?),
            Scenario::Fanout(args) => emit(fanout::run(args).await?),
            Scenario::Wake(args) => emit(wake::run(args).await?),
        }
    })
}

fn emit<T: Serialize>(report: T) -> Result<()> {
    println!("result {}", serde_json::to_string(&report)?);
    Ok(())
}

/// Tells the driver that `phase` is reached and waits for its go-ahead.
async fn checkpoint(phase: &str) -> Result<()> {
    println!("phase {phase}");
    let mut line = String::new();
    let read = tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .context("reading the driver's go-ahead")?;
    anyhow::ensure!(read > 0, "the driver went away during phase {phase}");
    Ok(())
}

/// Opens `count` connections, the `i`th at `path(i)`, a few at a time; in index order.
async fn connect_many(
    addr: SocketAddr,
    source: Option<IpAddr>,
    count: usize,
    compression: bool,
    path: impl Fn(usize) -> String,
) -> Result<Vec<Connection>> {
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut pending = tokio::task::JoinSet::new();
    for index in 0..count {
        let path = path(index);
        let permit = permits.clone().acquire_owned().await?;
        pending.spawn_local(async move {
            let connection = Connection::open(addr, source, &path, compression).await;
            drop(permit);
            (
                index,
                connection.with_context(|| format!("connecting to {path}")),
            )
        });
    }
    let mut connections: Vec<Option<Connection>> = (0..count).map(|_| None).collect();
    while let Some(joined) = pending.join_next().await {
        let (index, connection) = joined?;
        connections[index] = Some(connection?);
    }
    Ok(connections.into_iter().flatten().collect())
}

/// The chat message the publisher sends, marked with its sequence number.
fn chat_message(seq: u64) -> String {
    format!(r##"{{"type":"chat","text":"#{seq}"}}"##)
}

/// The sequence number of a chat message sent by [`chat_message`], as the room relays it;
/// `None` for any other message (joins, welcomes, departures).
fn chat_seq(payload: &[u8]) -> Option<u64> {
    const MARK: &[u8] = br##""text":"#"##;
    let at = crate::wire::find(payload, MARK)? + MARK.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut seq = 0u64;
    let mut any = false;
    for digit in digits {
        seq = seq * 10 + u64::from(digit - b'0');
        any = true;
    }
    any.then_some(seq)
}

/// Held connections (scenario 1).
#[derive(Debug, Serialize, Deserialize)]
pub struct HoldReport {
    /// Connections opened and held.
    pub connections: usize,
    /// Of them, those on which the server agreed to permessage-deflate.
    #[serde(default)]
    pub compressed: usize,
}

/// Closed-loop round trips (scenarios 2, 5 and 6).
#[derive(Debug, Serialize, Deserialize)]
pub struct EchoReport {
    /// Round trips completed in the measured stretch.
    pub round_trips: u64,
    /// Length of the measured stretch.
    pub seconds: f64,
    /// Latency of each round trip.
    pub latency: Histogram,
    /// CPU the generator used over the stretch, in cores.
    pub generator_cores: f64,
}

/// Chat-room fan-out (scenario 3).
#[derive(Debug, Serialize, Deserialize)]
pub struct FanoutReport {
    /// Members of the room, the publisher included.
    pub members: usize,
    /// Time to connect every member and drain the join announcements.
    pub join_seconds: f64,
    /// Messages published and received by every member.
    pub publishes: u64,
    /// Messages received, all members together.
    pub deliveries: u64,
    /// Length of the measured stretch.
    pub seconds: f64,
    /// Publish-to-receive latency of each delivery.
    pub latency: Histogram,
    /// CPU the generator used over the stretch, in cores.
    pub generator_cores: f64,
}

/// Wakes of hibernated objects (scenario 4).
#[derive(Debug, Serialize, Deserialize)]
pub struct WakeReport {
    /// Objects (one connection each).
    pub objects: usize,
    /// Round trips to awake objects.
    pub warm: Histogram,
    /// First round trips to hibernated objects, one at a time.
    pub cold: Histogram,
    /// Time to wake every object at once (one message to each, all replies back).
    pub all_at_once: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_sequence_numbers_are_found_in_any_key_order() {
        let seed = br##"{"type":"chat","userId":"m1","username":"m1","text":"#42","timestamp":1}"##;
        assert_eq!(chat_seq(seed), Some(42));
        let sorted = br##"{"text":"#7","timestamp":1,"type":"chat","userId":"m1"}"##;
        assert_eq!(chat_seq(sorted), Some(7));
        let join = br#"{"type":"system","text":"m1 joined the room","timestamp":1}"#;
        assert_eq!(chat_seq(join), None);
        assert!(chat_message(9).contains("#9"));
    }
}
