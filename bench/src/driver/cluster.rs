//! Scenario 9: cluster mode, a single node against a cluster of three nodes and one PostgreSQL
//! on this machine. The nodes share the server core; PostgreSQL runs where the system puts it.
//!
//! - Storage turns: every message increments a counter, so each turn waits for its commit to
//!   PostgreSQL (the cluster) or for the flush of the local log (the single node).
//! - Forwarded echo: the connections reach a node that does not own the object; every frame
//!   crosses to the owner and back.
//! - Wake on another node: hibernated chat rooms owned by another node than the one the
//!   connections came to.
//! - Failover: from the owner's `kill -9` to the next acknowledged increment through another
//!   node, with the default lease and with a 2-second one.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dormouse_testing::{TestCluster, WsClient, http_request, try_http_request};

use super::generator::Generator;
use super::servers::{Peer, Program, Server};
use super::table::{Better, Row, Unit};
use super::throughput::median;
use super::{Results, Setup};
use crate::histogram::Histogram;
use crate::load::{EchoReport, WakeReport};

/// Nodes of the measured cluster.
const NODES: usize = 3;

/// The leases the failover is measured at: the nodes' default, and the tests'.
const DEFAULT_LEASE: &str = "6s";
const SHORT_LEASE: &str = "2s";

/// Flags of every measured node: objects stay in memory (and owned) between the loads.
const NODE_FLAGS: &[&str] = &["--hibernate-after", "1h"];

pub(super) async fn run(setup: &Setup, results: &mut Results) -> Result<()> {
    if !setup.runs(Peer::Dormouse) {
        results
            .notes
            .push("9. Cluster: skipped (it measures Dormouse only)".into());
        return Ok(());
    }
    if dormouse_testing::Postgres::binaries().is_none() {
        results
            .notes
            .push("9. Cluster: skipped (PostgreSQL is not installed)".into());
        return Ok(());
    }
    storage(setup, results).await?;
    forwarded_echo(setup, results).await?;
    wake(setup, results).await?;
    failover(setup, results).await
}

/// Rows comparing a single node's figure with the cluster's, and their ratio.
fn compare(
    results: &mut Results,
    scenario: &str,
    metric: &str,
    unit: Unit,
    better: Better,
    single: f64,
    cluster: f64,
) {
    let mut alone = Row::new(scenario, &format!("{metric}, single node"), unit, better);
    alone.set(Peer::Dormouse, single);
    let mut three = Row::new(scenario, &format!("{metric}, cluster of 3"), unit, better);
    three.set(Peer::Dormouse, cluster);
    let mut ratio = Row::new(
        scenario,
        &format!("{metric}, cluster / single"),
        Unit::Ratio,
        better,
    );
    ratio.set(Peer::Dormouse, cluster / single);
    results.rows.extend([alone, three, ratio]);
}

/// Closed-loop echo load on `addr` (`message` on each of `connections` at `path`).
async fn echo_load(
    setup: &Setup,
    addr: SocketAddr,
    path: &str,
    message: &str,
    connections: usize,
) -> Result<EchoReport> {
    let args = [
        "echo".to_owned(),
        "--addr".into(),
        addr.to_string(),
        "--path".into(),
        path.into(),
        "--connections".into(),
        connections.to_string(),
        "--seconds".into(),
        setup.seconds.to_string(),
        "--warmup".into(),
        if setup.smoke { "0.2" } else { "1" }.into(),
        "--message".into(),
        message.into(),
    ];
    let mut generator = Generator::spawn(setup, &args)?;
    generator.measuring().await?;
    generator.result().await
}

/// The median rate of `rounds` loads, and their latencies together.
async fn rounds(
    setup: &Setup,
    addr: SocketAddr,
    path: &str,
    message: &str,
    connections: usize,
) -> Result<(f64, Histogram)> {
    let mut rates = Vec::new();
    let mut latency = Histogram::default();
    for _ in 0..setup.rounds {
        let report = echo_load(setup, addr, path, message, connections).await?;
        rates.push(report.round_trips as f64 / report.seconds);
        latency.merge(&report.latency);
    }
    Ok((median(&rates), latency))
}

async fn cluster_of(setup: &Setup, program: Program, flags: &[&str]) -> TestCluster {
    let binary = setup.binary(program.dormouse_binary());
    TestCluster::start_on_cpus(&binary, NODES, flags, setup.server_cpus.clone()).await
}

/// Storage turns: one object, 1 and 50 writers, through its owner.
async fn storage(setup: &Setup, results: &mut Results) -> Result<()> {
    let writers = [1, setup.size(50, 5)];
    let single = Server::start(setup, Peer::Dormouse, Program::Counter).await?;
    let cluster = cluster_of(setup, Program::Counter, NODE_FLAGS).await;
    for connections in writers {
        let scenario = format!(
            "9. Cluster: a write per message, one object, {connections} connection{}",
            if connections == 1 { "" } else { "s" }
        );
        let path = format!("/counter/cluster-{connections}");
        let (alone, alone_latency) = rounds(setup, single.addr, &path, "+1", connections).await?;
        let (three, three_latency) =
            rounds(setup, cluster.addr(0), &path, "+1", connections).await?;
        compare(
            results,
            &scenario,
            "turns",
            Unit::PerSecond,
            Better::Higher,
            alone,
            three,
        );
        compare(
            results,
            &scenario,
            "latency p50",
            Unit::Seconds,
            Better::Lower,
            alone_latency.quantile(0.5).as_secs_f64(),
            three_latency.quantile(0.5).as_secs_f64(),
        );
    }
    Ok(())
}

/// Echo round trips through a node that does not own the object.
async fn forwarded_echo(setup: &Setup, results: &mut Results) -> Result<()> {
    let connections = setup.size(50, 5);
    let single = Server::start(setup, Peer::Dormouse, Program::Echo).await?;
    let cluster = cluster_of(setup, Program::Echo, NODE_FLAGS).await;
    // The object is claimed by node 0, through a connection kept open meanwhile.
    let _claim = WsClient::connect(&cluster.node(0).ws_url("/websocket")).await;
    let owner = cluster.owner_index(Program::Echo.binding()).await;
    anyhow::ensure!(owner == Some(0), "the echo object went to node {owner:?}");
    let scenario = format!("9. Cluster: echo, {connections} connections, forwarded to the owner");
    let (alone, alone_latency) =
        rounds(setup, single.addr, "/websocket", "hello", connections).await?;
    let (three, three_latency) =
        rounds(setup, cluster.addr(1), "/websocket", "hello", connections).await?;
    compare(
        results,
        &scenario,
        "round trips",
        Unit::PerSecond,
        Better::Higher,
        alone,
        three,
    );
    for (metric, q) in [("latency p50", 0.5), ("latency p99", 0.99)] {
        compare(
            results,
            &scenario,
            metric,
            Unit::Seconds,
            Better::Lower,
            alone_latency.quantile(q).as_secs_f64(),
            three_latency.quantile(q).as_secs_f64(),
        );
    }
    Ok(())
}

/// The first message to a hibernated room, the room owned by another node than the one the
/// connection came to.
async fn wake(setup: &Setup, results: &mut Results) -> Result<()> {
    let objects = setup.size(300, 10);
    let single = Server::start(setup, Peer::Dormouse, Program::ChatRoom).await?;
    let cluster = cluster_of(setup, Program::ChatRoom, NODE_FLAGS).await;
    // Each room is claimed by node 0 (a plain request reaches the room, which refuses it).
    for room in 0..objects {
        let reply = http_request(
            cluster.addr(0),
            "GET",
            &format!("/room/wake{room}"),
            &[],
            "",
        )
        .await;
        anyhow::ensure!(
            reply.status == 426,
            "claiming room {room}: {}",
            reply.status
        );
    }
    let scenario = format!("9. Cluster: wake of {objects} hibernated rooms on another node");
    let single_report = wake_load(setup, single.addr, objects, async || {
        single.hibernate_all().await
    })
    .await?;
    let admin = cluster.node(0).admin();
    let cluster_report = wake_load(setup, cluster.addr(1), objects, async || {
        let reply = http_request(admin, "POST", "/objects/hibernate", &[], "").await;
        anyhow::ensure!(reply.status == 200, "hibernating: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    })
    .await?;
    let cost = |report: &WakeReport| {
        (report.cold.quantile(0.5).as_secs_f64() - report.warm.quantile(0.5).as_secs_f64()).max(0.0)
    };
    compare(
        results,
        &scenario,
        "round trip, hibernated p50",
        Unit::Seconds,
        Better::Lower,
        single_report.cold.quantile(0.5).as_secs_f64(),
        cluster_report.cold.quantile(0.5).as_secs_f64(),
    );
    compare(
        results,
        &scenario,
        "wake cost p50 (hibernated − awake)",
        Unit::Seconds,
        Better::Lower,
        cost(&single_report),
        cost(&cluster_report),
    );
    Ok(())
}

/// The wake load on `addr`, with `hibernate` at the generator's two checkpoints.
async fn wake_load(
    setup: &Setup,
    addr: SocketAddr,
    objects: usize,
    hibernate: impl AsyncFn() -> Result<()>,
) -> Result<WakeReport> {
    let mut generator = Generator::spawn(
        setup,
        &[
            "wake".into(),
            "--addr".into(),
            addr.to_string(),
            "--objects".into(),
            objects.to_string(),
        ],
    )?;
    for _ in 0..2 {
        generator.reached("hibernate").await?;
        hibernate().await?;
        generator.go().await?;
    }
    generator.result().await
}

/// From the owner's `kill -9` to the next increment acknowledged through another node.
async fn failover(setup: &Setup, results: &mut Results) -> Result<()> {
    let scenario = "9. Cluster: failover after the owner's kill -9";
    for (label, lease) in [
        ("default lease (6 s)", DEFAULT_LEASE),
        ("2 s lease", SHORT_LEASE),
    ] {
        let mut flags = NODE_FLAGS.to_vec();
        flags.extend(["--lease-ttl", lease]);
        let mut cluster = cluster_of(setup, Program::Counter, &flags).await;
        let increment = |addr| async move {
            try_http_request(addr, "POST", "/counter/failover", "")
                .await
                .is_ok_and(|reply| reply.status == 200)
        };
        anyhow::ensure!(
            increment(cluster.addr(0)).await,
            "the first increment failed"
        );
        let owner = cluster
            .owner_index(Program::Counter.binding())
            .await
            .context("an owner")?;
        let survivor = cluster.addr((owner + 1) % NODES);
        let killed = Instant::now();
        cluster.kill9(owner);
        while !increment(survivor).await {
            anyhow::ensure!(
                killed.elapsed() < Duration::from_secs(60),
                "no increment after the kill"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut row = Row::new(
            scenario,
            &format!("first acknowledged write after the kill, {label}"),
            Unit::Seconds,
            Better::Lower,
        );
        row.set(Peer::Dormouse, killed.elapsed().as_secs_f64());
        results.rows.push(row);
    }
    Ok(())
}
