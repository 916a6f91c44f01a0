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
        let count = if peer == Peer::Workerd {
            connections.min(WORKERD_CONNECTIONS)
        } else {
            connections
        };
        let server = Server::start(setup, peer, Program::Echo).await?;
        let (rss_before, files_before) = (proc::rss(server.pid)?, proc::open_files(server.pid)?);
        // Two processes at least, so that spreading the load is always exercised.
        let processes = count.div_ceil(PER_GENERATOR).max(2);
        let mut generators = Vec::new();
        for index in 0..processes {
            let share = count / processes + usize::from(index < count % processes);
            generators.push(Generator::spawn(
                setup,
                &[
                    "hold".into(),
                    "--addr".into(),
                    server.addr.to_string(),
                    "--path".into(),
                    "/websocket".into(),
                    "--connections".into(),
                    share.to_string(),
                    "--source-ip".into(),
                    format!("127.0.0.{}", 11 + index),
                ],
            )?);
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
        for mut generator in generators {
            generator.go().await?;
            held += generator.result::<HoldReport>().await?.connections;
        }
        anyhow::ensure!(held == count, "{held} of {count} connections were held");
        memory.set(peer, rss as f64 / count as f64);
        files.set(peer, open as f64 / count as f64);
        if peer == Peer::Workerd && count < connections {
            memory.metric = format!(
                "server RSS per connection (workerd: at {} connections)",
                thousands(count as u64)
            );
        }
    }
    results.rows.extend([memory, files]);
    Ok(())
}
