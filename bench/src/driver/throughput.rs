//! Scenarios 2, 5 and 6: closed-loop round trips. Echo (seed 002), the `ping`→`pong`
//! auto-response of hibernated objects (seed 001), and turns that write to storage (the counter).
//!
//! Every peer's server runs for the whole scenario and the peers take turns, round after round,
//! so that a slow moment of a shared machine does not land on one peer only. A rate is the
//! median of the rounds; latencies are those of all rounds together.

use anyhow::Result;

use super::generator::Generator;
use super::servers::{Peer, Program, Server};
use super::table::{Better, Cpu, CpuRow, Goal, PEERS, Row, Target, Unit};
use super::{Results, Setup};
use crate::histogram::Histogram;
use crate::load::EchoReport;
use crate::proc::CpuMeter;

/// One closed-loop load.
#[derive(Clone, Copy)]
pub(super) struct Load<'a> {
    pub(super) program: Program,
    pub(super) path: &'a str,
    pub(super) message: &'a str,
    pub(super) expect: Option<&'a str>,
    pub(super) connections: usize,
    /// Force hibernation once connected; count object wakes during the load.
    pub(super) hibernated: bool,
    /// Offer permessage-deflate, and compress what is sent once agreed.
    pub(super) compression: bool,
}

/// What the rounds of one peer measured.
#[derive(Default)]
pub(super) struct Rounds {
    rates: Vec<f64>,
    /// Server CPU time per round trip, in seconds.
    pub(super) costs: Vec<f64>,
    latency: Histogram,
    server: Vec<f64>,
    generator: Vec<f64>,
    wakes: f64,
}

pub(super) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Rounds {
    fn add(&mut self, report: &EchoReport, cpu: Cpu, wakes: f64) {
        let rate = report.round_trips as f64 / report.seconds;
        self.rates.push(rate);
        self.costs.push(cpu.server / rate);
        self.latency.merge(&report.latency);
        self.server.push(cpu.server);
        self.generator.push(cpu.generator);
        self.wakes += wakes;
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            server: median(&self.server),
            generator: median(&self.generator),
        }
    }
}

/// One round of `load` on `server`; returns the report, the CPU used, and the object wakes seen
/// during the load (hibernated loads on Dormouse only).
async fn round(setup: &Setup, server: &Server, load: Load<'_>) -> Result<(EchoReport, Cpu, f64)> {
    let mut args = vec![
        "echo".to_owned(),
        "--addr".into(),
        server.addr.to_string(),
        "--path".into(),
        load.path.into(),
        "--connections".into(),
        load.connections.to_string(),
        "--seconds".into(),
        setup.seconds.to_string(),
        "--warmup".into(),
        if setup.smoke { "0.2" } else { "1" }.into(),
        "--message".into(),
        load.message.into(),
    ];
    if let Some(expect) = load.expect {
        args.extend(["--expect".into(), expect.into()]);
    }
    if load.hibernated {
        args.push("--checkpoints".into());
    }
    if load.compression {
        args.push("--compression".into());
    }
    let wakes = |metrics: Option<dormouse_testing::Metrics>| {
        metrics.map_or(0.0, |m| {
            m.get("dormouse_object_wakes_total", load.program.binding())
        })
    };
    let mut generator = Generator::spawn(setup, &args)?;
    let mut wakes_before = 0.0;
    if load.hibernated {
        generator.reached("connected").await?;
        server.hibernate_all().await?;
        wakes_before = wakes(server.metrics().await);
        generator.go().await?;
    }
    generator.measuring().await?;
    let meter = CpuMeter::start(server.pid)?;
    let mut woken = 0.0;
    if load.hibernated {
        generator.reached("finished").await?;
        woken = wakes(server.metrics().await) - wakes_before;
        generator.go().await?;
    }
    let report: EchoReport = generator.result().await?;
    let cpu = Cpu {
        server: meter.cores()?,
        generator: report.generator_cores,
    };
    Ok((report, cpu, woken))
}

/// Runs each load on every peer (the load `for_peer` gives it; `None`: the peer cannot run
/// it), in interleaved rounds; one `Rounds` per load and peer.
pub(super) async fn measure<'a>(
    setup: &Setup,
    loads: usize,
    for_peer: impl Fn(Peer, usize) -> Option<Load<'a>>,
) -> Result<Vec<[Rounds; PEERS]>> {
    let mut servers = Vec::new();
    for peer in Peer::ALL.into_iter().filter(|p| setup.runs(*p)) {
        if let Some(load) = for_peer(peer, 0) {
            servers.push((peer, Server::start(setup, peer, load.program).await?));
        }
    }
    let mut results: Vec<[Rounds; PEERS]> = (0..loads).map(|_| Default::default()).collect();
    for (index, slot) in results.iter_mut().enumerate() {
        for _ in 0..setup.rounds {
            for (peer, server) in &servers {
                let Some(load) = for_peer(*peer, index) else {
                    continue;
                };
                let (report, cpu, wakes) = round(setup, server, load).await?;
                slot[*peer as usize].add(&report, cpu, wakes);
            }
        }
    }
    Ok(results)
}

/// The rows of one load: rate, median and tail latency, CPU per round trip, and who was busy.
pub(super) fn rows(
    scenario: &str,
    rate: &str,
    rate_targets: Vec<Target>,
    cost_targets: Vec<Target>,
    rounds: &[Rounds; PEERS],
) -> (Vec<Row>, CpuRow) {
    let mut throughput = Row::new(scenario, rate, Unit::PerSecond, Better::Higher);
    throughput.targets = rate_targets;
    let mut p50 = Row::new(scenario, "latency p50", Unit::Seconds, Better::Lower);
    let mut p99 = Row::new(scenario, "latency p99", Unit::Seconds, Better::Lower);
    let mut cost = Row::new(
        scenario,
        "server CPU time per round trip",
        Unit::Seconds,
        Better::Lower,
    );
    cost.targets = cost_targets;
    let mut cpu = CpuRow {
        scenario: scenario.to_owned(),
        values: [None; PEERS],
    };
    for peer in Peer::ALL {
        let measured = &rounds[peer as usize];
        if measured.rates.is_empty() {
            continue;
        }
        throughput.set(peer, median(&measured.rates));
        p50.set(peer, measured.latency.quantile(0.50).as_secs_f64());
        p99.set(peer, measured.latency.quantile(0.99).as_secs_f64());
        cost.set(peer, median(&measured.costs));
        cpu.values[peer as usize] = Some(measured.cpu());
    }
    (vec![throughput, p50, p99, cost], cpu)
}

/// Scenario 2: echo round trips on 1 and 50 connections.
pub(super) async fn echo(setup: &Setup, results: &mut Results) -> Result<()> {
    let counts = [1, setup.size(50, 5)];
    let measured = measure(setup, counts.len(), |_, index| {
        Some(Load {
            program: Program::Echo,
            path: "/websocket",
            message: "hello",
            expect: None,
            connections: counts[index],
            hibernated: false,
            compression: false,
        })
    })
    .await?;
    for (connections, rounds) in counts.iter().zip(&measured) {
        let scenario = format!("2. Echo, {connections} connection{}", plural(*connections));
        // Workers mode's target is on the many-connection load (seed 002, 50 connections).
        let js = if *connections > 1 {
            vec![Target::workers(Goal::TimesWorkerd(0.25))]
        } else {
            Vec::new()
        };
        let (rows, cpu) = rows(
            &scenario,
            "round trips",
            vec![Target::dormouse(Goal::TimesRaw(0.9))],
            js,
            rounds,
        );
        results.rows.extend(rows);
        results.cpu.push(cpu);
    }
    Ok(())
}

/// Scenario 5: `ping`→`pong` answered by the runtime for hibernated objects, against the raw
/// baseline's plain echo; Dormouse's metrics must show no wake during the load.
pub(super) async fn auto_response(setup: &Setup, results: &mut Results) -> Result<()> {
    let connections = setup.size(50, 5);
    let measured = measure(setup, 1, |peer, _| {
        Some(if peer == Peer::Raw {
            Load {
                program: Program::Echo,
                path: "/websocket",
                message: "ping",
                expect: None,
                connections,
                hibernated: false,
                compression: false,
            }
        } else {
            Load {
                program: Program::Sessions,
                path: "/websocket",
                message: "ping",
                expect: Some("pong"),
                connections,
                hibernated: true,
                compression: false,
            }
        })
    })
    .await?;
    let scenario = format!("5. Auto-response ping→pong, {connections} connections, hibernated");
    let (rows, cpu) = rows(
        &scenario,
        "round trips (raw: echo)",
        vec![Target::dormouse(Goal::TimesRaw(0.9))],
        Vec::new(),
        &measured[0],
    );
    results.rows.extend(rows);
    let mut wakes = Row::new(
        &scenario,
        "object wakes during the load",
        Unit::Count,
        Better::Lower,
    )
    .with_target(Target::dormouse(Goal::AtMost(0.0)))
    .with_target(Target::workers(Goal::AtMost(0.0)));
    for peer in [Peer::Dormouse, Peer::Workers] {
        if setup.runs(peer) {
            wakes.set(peer, measured[0][peer as usize].wakes);
        }
    }
    results.rows.push(wakes);
    results.cpu.push(cpu);
    Ok(())
}

/// Scenario 6: every message increments the counter in storage, at the default durability: one
/// object with 1 and with 50 writers (their turns share flushes), then many objects with one
/// writer each.
pub(super) async fn storage(setup: &Setup, results: &mut Results) -> Result<()> {
    let shared = setup.size(50, 5);
    let objects = setup.size(1_000, 10);
    let loads = [
        (1, "/counter/bench", "one object, 1 connection".to_owned()),
        (
            shared,
            "/counter/bench",
            format!("one object, {shared} connections"),
        ),
        (
            objects,
            "/counter/bench-{i}",
            format!("{objects} objects, a connection each"),
        ),
    ];
    let measured = measure(setup, loads.len(), |peer, index| {
        (peer != Peer::Raw).then_some(Load {
            program: Program::Counter,
            path: loads[index].1,
            message: "+1",
            expect: None,
            connections: loads[index].0,
            hibernated: false,
            compression: false,
        })
    })
    .await?;
    let mut by_load = Vec::new();
    for (index, ((_, _, label), rounds)) in loads.iter().zip(&measured).enumerate() {
        let scenario = format!("6. Storage: a write per message, {label}");
        // Writers of one object share its flushes: ten times the turns of workerd, which
        // flushes each turn on its own.
        let targets = if index == 1 {
            vec![Target::dormouse(Goal::TimesWorkerd(10.0))]
        } else {
            Vec::new()
        };
        let (rows, cpu) = rows(&scenario, "turns", targets, Vec::new(), rounds);
        by_load.push(rows.clone());
        results.rows.extend(rows);
        results.cpu.push(cpu);
    }
    results
        .rows
        .extend(sharing_rows(&by_load[0], &by_load[1], shared));
    Ok(())
}

/// What sharing flushes gives one object: its writers' turns per second against one writer's
/// (at least ten times), and their p99 latency against one writer's, which waits for one flush
/// per turn (at most three times).
fn sharing_rows(one: &[Row], many: &[Row], writers: usize) -> Vec<Row> {
    let scenario = format!("6. Storage: {writers} writers of one object against 1");
    let mut turns = Row::new(&scenario, "turns, ratio", Unit::Ratio, Better::Higher)
        .with_target(Target::dormouse(Goal::AtLeast(10.0)));
    let mut p99 = Row::new(&scenario, "latency p99, ratio", Unit::Ratio, Better::Lower)
        .with_target(Target::dormouse(Goal::AtMost(3.0)));
    for peer in Peer::ALL {
        for (row, metric) in [(&mut turns, 0), (&mut p99, 2)] {
            if let (Some(single), Some(shared)) = (one[metric].get(peer), many[metric].get(peer)) {
                row.set(peer, shared / single);
            }
        }
    }
    vec![turns, p99]
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
