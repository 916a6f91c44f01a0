//! Scenarios 2, 5 and 6's load: closed-loop round trips on a few connections.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

use super::{EchoReport, checkpoint, connect_many};
use crate::histogram::Histogram;

/// Arguments of `dormouse-load echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Offers permessage-deflate (as browsers do) and compresses what is sent once agreed.
    #[arg(long)]
    pub compression: bool,
    /// Server address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// WebSocket path; `{i}` in it becomes the connection's number (0, 1, …), giving each
    /// connection an object of its own.
    #[arg(long)]
    pub path: String,
    /// Connections, each with one round trip in flight.
    #[arg(long)]
    pub connections: usize,
    /// Length of the measured stretch, in seconds.
    #[arg(long)]
    pub seconds: f64,
    /// Round trips before the measured stretch, in seconds (warms caches and allocators).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// The message sent.
    #[arg(long)]
    pub message: String,
    /// The exact answer expected (any answer when absent).
    #[arg(long)]
    pub expect: Option<String>,
    /// Waits for the driver's go-ahead once connected (phase `connected`), so that it can force
    /// hibernation before the load starts, and again after the load (phase `finished`), before
    /// the connections close, so that it can read the server's metrics.
    #[arg(long)]
    pub checkpoints: bool,
}

#[derive(Default)]
struct Tally {
    latency: Histogram,
    round_trips: u64,
}

/// Runs the round trips; reports those started in the measured stretch.
pub(super) async fn run(args: EchoArgs) -> Result<EchoReport> {
    let connections = connect_many(args.addr, None, args.connections, args.compression, |i| {
        args.path.replace("{i}", &i.to_string())
    })
    .await?;
    if args.checkpoints {
        checkpoint("connected").await?;
    }
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let deadline = measure_from + Duration::from_secs_f64(args.seconds);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let mut loops = tokio::task::JoinSet::new();
    for mut connection in connections {
        let (tally, message, expect) = (tally.clone(), args.message.clone(), args.expect.clone());
        loops.spawn_local(async move {
            loop {
                let started = Instant::now();
                if started >= deadline {
                    return anyhow::Ok(connection);
                }
                connection.send_text(&message).await?;
                let answer = connection.next_message().await?;
                let latency = started.elapsed();
                if let Some(expect) = &expect {
                    let got = connection.payload(answer);
                    anyhow::ensure!(
                        got == expect.as_bytes(),
                        "expected {expect:?}, got {:?}",
                        String::from_utf8_lossy(got)
                    );
                }
                if started >= measure_from {
                    let mut tally = tally.borrow_mut();
                    tally.latency.record(latency);
                    tally.round_trips += 1;
                }
            }
        });
    }
    tokio::time::sleep_until(measure_from).await;
    println!("measuring");
    let cpu_before = crate::proc::own_cpu_time()?;
    tokio::time::sleep_until(deadline).await;
    let generator_cores = (crate::proc::own_cpu_time()? - cpu_before).as_secs_f64() / args.seconds;
    let mut open = Vec::with_capacity(args.connections);
    while let Some(joined) = loops.join_next().await {
        open.push(joined?.context("a connection failed")?);
    }
    if args.checkpoints {
        checkpoint("finished").await?;
    }
    drop(open);
    let tally = Rc::try_unwrap(tally)
        .ok()
        .context("the loops are done")?
        .into_inner();
    Ok(EchoReport {
        round_trips: tally.round_trips,
        seconds: args.seconds,
        latency: tally.latency,
        generator_cores,
    })
}
