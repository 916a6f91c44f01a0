//! Scenario 1: 15,000 idle connections to one hibernated object (seed 002): server memory and
//! open files per connection.

use anyhow::Result;

use super::generator::Generator;
use super::servers::{Peer, Program, Server};
use super::table::{Better, Goal, Row, Target, Unit, thousands};
use super::{Results, Setup};
use crate::load::HoldReport;
use crate::proc;

/// workerd holds two files per connection; past 9,999 connections it would reach the 20,000
/// open-files limit, where it aborts. It is measured at this many instead.
const WORKERD_CONNECTIONS: usize = 8_000;

/// Connections per generator process: well under the per-process open-files limit, and each
/// process connects from its own source address.
const PER_GENERATOR: usize = 7_500;

/// A chat message as realtime applications send them: verbose JSON, compressible.
pub(super) const CHAT: &str = r#"{"type":"chat","room":"lobby","user":{"id":"u-1234","name":"alice"},"text":"hello everyone, how is the weather over there today?","sentAt":"2026-12-02T10:00:00.000Z","reactions":[],"mentions":[]}"#;

/// Dormouse's budget per idle connection.
const TARGET_BYTES: f64 = 2_000.0;

/// Workers mode's budget per idle connection (its object is hibernated: no JavaScript is held).
const WORKERS_TARGET_BYTES: f64 = 1_000.0;

pub(super) async fn run(setup: &Setup, results: &mut Results) -> Result<()> {
    let connections = setup.size(15_000, 300);
    let scenario = format!(
        "1. Idle: {} connections, one hibernated object",
        thousands(connections as u64)
    );
    let mut memory = Row::new(
        &scenario,
        "server RSS per connection",
        Unit::Bytes,
        Better::Lower,
    )
    .with_target(Target::dormouse(Goal::AtMost(TARGET_BYTES)))
    .with_target(Target::workers(Goal::AtMost(WORKERS_TARGET_BYTES)));
    let mut files = Row::new(
        &scenario,
        "open files per connection",
        Unit::Ratio,
        Better::Lower,
    )
    .with_target(Target::dormouse(Goal::About(1.0)))
    .with_target(Target::workers(Goal::About(1.0)));
    for peer in Peer::ALL.into_iter().filter(|p| setup.runs(*p)) {
        let held = hold_capped(setup, peer, connections, false, &mut memory).await?;
        memory.set(peer, held.rss_per_connection);
        files.set(peer, held.files_per_connection);
    }
    results.rows.extend([memory, files]);
    Ok(())
}

/// [`hold`] at `connections`, or at workerd's cap, which then goes into `memory`'s label.
pub(super) async fn hold_capped(
    setup: &Setup,
    peer: Peer,
    connections: usize,
    compression: bool,
    memory: &mut Row,
) -> Result<Held> {
    let count = if peer == Peer::Workerd {
        connections.min(WORKERD_CONNECTIONS)
    } else {
        connections
    };
    if count < connections {
        memory.metric = format!(
            "server RSS per connection (workerd: at {} connections)",
            thousands(count as u64)
        );
    }
    hold(setup, peer, count, compression).await
}

/// What `count` idle connections cost a server.
pub(super) struct Held {
    pub(super) rss_per_connection: f64,
    pub(super) files_per_connection: f64,
}

/// Opens `count` connections to `peer`'s echo server (offering permessage-deflate when
/// `compression`), hibernates its object, and measures what they hold.
pub(super) async fn hold(
    setup: &Setup,
    peer: Peer,
    count: usize,
    compression: bool,
) -> Result<Held> {
    let server = Server::start(setup, peer, Program::Echo).await?;
    let (rss_before, files_before) = (proc::rss(server.pid)?, proc::open_files(server.pid)?);
    // Two processes at least, so that spreading the load is always exercised.
    let processes = count.div_ceil(PER_GENERATOR).max(2);
    let mut generators = Vec::new();
    for index in 0..processes {
        let share = count / processes + usize::from(index < count % processes);
        let mut args = vec![
            "hold".into(),
            "--addr".into(),
            server.addr.to_string(),
            "--path".into(),
            "/websocket".into(),
            "--connections".into(),
            share.to_string(),
            "--source-ip".into(),
            format!("127.0.0.{}", 11 + index),
        ];
        if compression {
            // A message long enough to go out compressed both ways, so that whatever a
            // connection keeps for compression is in use.
            args.extend(["--compression".into(), "--message".into(), CHAT.into()]);
        }
        generators.push(Generator::spawn(setup, &args)?);
    }
    for generator in &mut generators {
        generator.reached("holding").await?;
    }
    server.hibernate_all().await?;
    if let Some(metrics) = server.metrics().await {
        let binding = Program::Echo.binding();
        anyhow::ensure!(
            metrics.get("dormouse_objects_hibernated", binding) == 1.0
                && metrics.get("dormouse_websockets_open", binding) == count as f64,
            "expected one hibernated object holding {count} sockets"
        );
    }
    let rss = proc::rss(server.pid)?.saturating_sub(rss_before);
    let open = proc::open_files(server.pid)?.saturating_sub(files_before);
    let mut held = 0;
    let mut agreed = 0;
    for mut generator in generators {
        generator.go().await?;
        let report = generator.result::<HoldReport>().await?;
        held += report.connections;
        agreed += report.compressed;
    }
    anyhow::ensure!(held == count, "{held} of {count} connections were held");
    anyhow::ensure!(
        !compression || agreed == count,
        "{} agreed to permessage-deflate on {agreed} of {count} connections",
        peer.name()
    );
    Ok(Held {
        rss_per_connection: rss as f64 / count as f64,
        files_per_connection: open as f64 / count as f64,
    })
}
