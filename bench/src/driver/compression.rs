//! Scenario 8: permessage-deflate negotiated, as browsers offer it on every connection. Idle
//! memory per connection with it, and the echo of a chat message (verbose JSON) on 50
//! connections with and without it: what compressing costs each server per round trip.

use anyhow::Result;

use super::idle::{self, CHAT};
use super::servers::{Peer, Program};
use super::table::{Better, Goal, Row, Target, Unit, thousands};
use super::throughput::{Load, measure, median, rows};
use super::{Results, Setup};

/// An idle socket with compression agreed holds no compressor and no window: it stays within a
/// kilobyte, as without.
const IDLE_TARGET_BYTES: f64 = 1_024.0;

pub(super) async fn run(setup: &Setup, results: &mut Results) -> Result<()> {
    idle_memory(setup, results).await?;
    echo(setup, results).await
}

async fn idle_memory(setup: &Setup, results: &mut Results) -> Result<()> {
    let connections = setup.size(15_000, 300);
    let scenario = format!(
        "8. Compression: {} idle connections, permessage-deflate negotiated",
        thousands(connections as u64)
    );
    let mut memory = Row::new(
        &scenario,
        "server RSS per connection",
        Unit::Bytes,
        Better::Lower,
    )
    .with_target(Target::dormouse(Goal::AtMost(IDLE_TARGET_BYTES)));
    // The raw baseline declines the extension: it has nothing to show here.
    for peer in [Peer::Dormouse, Peer::Workerd, Peer::Workers] {
        if !setup.runs(peer) {
            continue;
        }
        let held = idle::hold_capped(setup, peer, connections, true, &mut memory).await?;
        memory.set(peer, held.rss_per_connection);
    }
    results.rows.push(memory);
    Ok(())
}

async fn echo(setup: &Setup, results: &mut Results) -> Result<()> {
    let connections = setup.size(50, 5);
    let variants = ["plain", "compressed"];
    let measured = measure(setup, variants.len(), |peer, index| {
        (index == 0 || peer != Peer::Raw).then_some(Load {
            program: Program::Echo,
            path: "/websocket",
            message: CHAT,
            expect: None,
            connections,
            hibernated: false,
            compression: index == 1,
        })
    })
    .await?;
    let mut costs = Vec::new();
    for (variant, rounds) in variants.iter().zip(&measured) {
        let scenario = format!(
            "8. Compression: echo of a {}-byte chat message, {connections} connections, {variant}",
            CHAT.len()
        );
        let (rows, cpu) = rows(&scenario, "round trips", Vec::new(), Vec::new(), rounds);
        costs.push(Peer::ALL.map(|peer| {
            let costs = &rounds[peer as usize].costs;
            (!costs.is_empty()).then(|| median(costs))
        }));
        results.rows.extend(rows);
        results.cpu.push(cpu);
    }
    let mut ratio = Row::new(
        &format!("8. Compression: echo, {connections} connections"),
        "server CPU per round trip, compressed ÷ plain",
        Unit::Ratio,
        Better::Lower,
    );
    for peer in Peer::ALL {
        if let (Some(plain), Some(compressed)) = (costs[0][peer as usize], costs[1][peer as usize])
        {
            ratio.set(peer, compressed / plain);
        }
    }
    results.rows.push(ratio);
    Ok(())
}
