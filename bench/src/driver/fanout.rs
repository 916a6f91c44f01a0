//! Scenario 3: one chat room (seed 000) with 1,000 and 10,000 members; one member publishes,
//! everyone receives. Deliveries per second and publish-to-receive latency.

use anyhow::Result;

use super::generator::Generator;
use super::servers::{Peer, Program, Server};
use super::table::{Better, Cpu, CpuRow, Goal, PEERS, Row, Target, Unit, thousands};
use super::{Results, Setup};
use crate::load::FanoutReport;
use crate::proc::CpuMeter;

/// Messages in flight at once: enough to keep the server busy between a message's last delivery
/// and the next publish.
const WINDOW: usize = 8;

/// Longest a room may take to fill. The seed announces every join to everyone already there, so
/// filling a room of N sends N·(N−1)/2 messages; a peer whose smaller room predicts more than
/// this for the larger one is not run at that size.
const JOIN_BUDGET_SECONDS: f64 = 300.0;

/// How the time to fill a room grows with its size, for that prediction: a little faster than
/// the square of the messages, since each delivery costs more as the room outgrows the caches
/// (Workers mode went from 1.8 s for 1,000 members to 44 s for 4,000).
const JOIN_GROWTH_EXPONENT: f64 = 2.5;

/// Filling a room of 10,000 keeps the one generator process busy for tens of seconds, and it can
/// fall further behind on a member than the default 10 s ping timeout: Dormouse would rightly
/// drop that member as unresponsive. The other peers do not ping at all.
const DORMOUSE_FLAGS: [&str; 2] = ["--ping-timeout", "120s"];

pub(super) async fn run(setup: &Setup, results: &mut Results) -> Result<()> {
    let sizes = [setup.size(1_000, 50), setup.size(10_000, 200)];
    let mut joined_in: [Option<(usize, f64)>; PEERS] = [None; PEERS];
    for members in sizes {
        let scenario = format!(
            "3. Chat room fan-out, {} members",
            thousands(members as u64)
        );
        let mut deliveries = Row::new(&scenario, "deliveries", Unit::PerSecond, Better::Higher)
            .with_target(Target::dormouse(Goal::TimesWorkerd(5.0)))
            .with_target(Target::workers(Goal::TimesWorkerd(4.0)));
        let mut p50 = Row::new(
            &scenario,
            "publish→receive p50",
            Unit::Seconds,
            Better::Lower,
        );
        let mut p99 = Row::new(
            &scenario,
            "publish→receive p99",
            Unit::Seconds,
            Better::Lower,
        );
        let mut join = Row::new(
            &scenario,
            "time to join (every join announced to all)",
            Unit::Seconds,
            Better::Lower,
        );
        let mut cpu = CpuRow {
            scenario: scenario.clone(),
            values: [None; PEERS],
        };
        for peer in Peer::ALL.into_iter().filter(|p| setup.runs(*p)) {
            if let Some((smaller, seconds)) = joined_in[peer as usize] {
                let predicted =
                    seconds * (members as f64 / smaller as f64).powf(JOIN_GROWTH_EXPONENT);
                if predicted > JOIN_BUDGET_SECONDS {
                    results.notes.push(format!(
                        "{}: not run with {} members: filling the room would take about {:.0} minutes \
                         ({} members took {:.1} s to join, and joining grows faster than the square of the size).",
                        peer.name(),
                        thousands(members as u64),
                        predicted / 60.0,
                        thousands(smaller as u64),
                        seconds
                    ));
                    continue;
                }
            }
            eprintln!("dormouse-bench:   {} members on {}", members, peer.name());
            let (report, used) = match measure(setup, peer, members).await {
                Ok(measured) => measured,
                // One failed run should not cost the rest of a long benchmark; the smoke run
                // exists to catch it.
                Err(error) if !setup.smoke => {
                    results.notes.push(format!(
                        "{}: the run with {} members failed: {error:#}",
                        peer.name(),
                        thousands(members as u64)
                    ));
                    continue;
                }
                Err(error) => return Err(error),
            };
            deliveries.set(peer, report.deliveries as f64 / report.seconds);
            p50.set(peer, report.latency.quantile(0.50).as_secs_f64());
            p99.set(peer, report.latency.quantile(0.99).as_secs_f64());
            join.set(peer, report.join_seconds);
            joined_in[peer as usize] = Some((members, report.join_seconds));
            cpu.values[peer as usize] = Some(used);
        }
        results.rows.extend([deliveries, p50, p99, join]);
        results.cpu.push(cpu);
    }
    Ok(())
}

/// One room of `members` on `peer`: what the generator saw, and the CPU used meanwhile.
async fn measure(setup: &Setup, peer: Peer, members: usize) -> Result<(FanoutReport, Cpu)> {
    let server = Server::start_with(setup, peer, Program::ChatRoom, &DORMOUSE_FLAGS).await?;
    let mut generator = Generator::spawn(
        setup,
        &[
            "fanout".into(),
            "--addr".into(),
            server.addr.to_string(),
            "--members".into(),
            members.to_string(),
            "--seconds".into(),
            setup.seconds.to_string(),
            "--window".into(),
            WINDOW.to_string(),
        ],
    )?;
    let measured = async {
        generator.measuring().await?;
        let meter = CpuMeter::start(server.pid)?;
        let report: FanoutReport = generator.result().await?;
        anyhow::Ok((report, meter))
    };
    let (report, meter) = match measured.await {
        Ok(measured) => measured,
        Err(error) => {
            let Some(metrics) = server.metrics().await else {
                return Err(error);
            };
            let dropped = |cause: &str| {
                metrics.series(&format!(
                    "dormouse_websockets_dropped_total{{namespace=\"{}\",cause=\"{cause}\"}}",
                    Program::ChatRoom.binding()
                ))
            };
            return Err(error.context(format!(
                "Dormouse dropped {} unresponsive clients and {} slow readers",
                dropped("unresponsive"),
                dropped("slow_reader")
            )));
        }
    };
    let used = Cpu {
        server: meter.cores()?,
        generator: report.generator_cores,
    };
    Ok((report, used))
}
