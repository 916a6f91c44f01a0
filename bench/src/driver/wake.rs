//! Scenario 4: waking hibernated objects. One chat room (seed 000) per connection; the cost of a
//! wake is the first round trip to a hibernated room minus a round trip to an awake one, and the
//! wake rate is how fast every room wakes when all get a message at once.

use anyhow::Result;

use super::generator::Generator;
use super::servers::{Peer, Program, Server};
use super::table::{Better, Goal, Row, Target, Unit, thousands};
use super::{Results, Setup};
use crate::load::WakeReport;

/// Dormouse's budget for a wake, at the median (the Rust examples' and Workers mode's).
const TARGET_SECONDS: f64 = 100e-6;

pub(super) async fn run(setup: &Setup, results: &mut Results) -> Result<()> {
    let objects = setup.size(1_000, 30);
    let scenario = format!("4. Wake: {} hibernated objects", thousands(objects as u64));
    let row = |metric: &str, unit| Row::new(&scenario, metric, unit, Better::Lower);
    let mut warm = row("round trip, awake p50", Unit::Seconds);
    let mut cold = row("round trip, hibernated p50", Unit::Seconds);
    let mut cost_p50 = row("wake cost p50 (hibernated − awake)", Unit::Seconds)
        .with_target(Target::dormouse(Goal::AtMost(TARGET_SECONDS)))
        .with_target(Target::workers(Goal::AtMost(TARGET_SECONDS)));
    let mut cost_p99 = row("wake cost p99", Unit::Seconds);
    let mut rate = Row::new(
        &scenario,
        "wake rate, all at once",
        Unit::PerSecond,
        Better::Higher,
    );
    let mut inside = row(
        "Dormouse's own wake time, mean (arrival → handler)",
        Unit::Seconds,
    );
    // The raw baseline has no objects, hence nothing to wake.
    for peer in [Peer::Dormouse, Peer::Workerd, Peer::Workers] {
        if !setup.runs(peer) {
            continue;
        }
        let server = Server::start(setup, peer, Program::ChatRoom).await?;
        let mut generator = Generator::spawn(
            setup,
            &[
                "wake".into(),
                "--addr".into(),
                server.addr.to_string(),
                "--objects".into(),
                objects.to_string(),
            ],
        )?;
        for _ in 0..2 {
            generator.reached("hibernate").await?;
            server.hibernate_all().await?;
            generator.go().await?;
        }
        let report: WakeReport = generator.result().await?;
        let quantile = |h: &crate::histogram::Histogram, q| h.quantile(q).as_secs_f64();
        warm.set(peer, quantile(&report.warm, 0.5));
        cold.set(peer, quantile(&report.cold, 0.5));
        cost_p50.set(
            peer,
            (quantile(&report.cold, 0.5) - quantile(&report.warm, 0.5)).max(0.0),
        );
        cost_p99.set(
            peer,
            (quantile(&report.cold, 0.99) - quantile(&report.warm, 0.99)).max(0.0),
        );
        rate.set(
            peer,
            report.objects as f64 / report.all_at_once.as_secs_f64(),
        );
        if let Some(metrics) = server.metrics().await {
            let binding = Program::ChatRoom.binding();
            let wakes = metrics.get("dormouse_object_wakes_total", binding);
            anyhow::ensure!(
                wakes >= 2.0 * objects as f64,
                "{wakes} wakes for {objects} objects hibernated twice"
            );
            let series = |name: &str| metrics.series(&format!("{name}{{namespace=\"{binding}\"}}"));
            inside.set(
                peer,
                series("dormouse_object_wake_seconds_sum")
                    / series("dormouse_object_wake_seconds_count"),
            );
        }
    }
    results
        .rows
        .extend([warm, cold, cost_p50, cost_p99, rate, inside]);
    Ok(())
}
