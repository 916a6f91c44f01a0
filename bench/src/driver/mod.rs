//! The driver: runs every scenario against every peer, one at a time, and prints the tables.
//!
//! The server runs on one core and the generator on the other (`taskset`), so that each has a
//! core of its own on a two-core machine, and the CPU each used is reported with the figures:
//! a generator near a full core would mean the figure measures the generator, not the server.

mod cluster;
mod compression;
mod fanout;
mod generator;
mod idle;
mod servers;
mod startup;
mod table;
mod throughput;
mod wake;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
pub use servers::Peer;
use table::{CpuRow, Row};

/// What to run.
#[derive(Debug, clap::Parser)]
#[command(about = "Dormouse against workerd and a raw WebSocket server, side by side")]
pub struct Options {
    /// Tiny sizes and one-second runs: checks that every scenario still works, in about a minute
    /// (plus workerd's eviction waits).
    #[arg(long)]
    pub smoke: bool,
    /// Scenarios to run (all by default): idle, echo, fanout, wake, auto-response, storage,
    /// startup, compression, cluster.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,
    /// Peers to run (all by default): dormouse, raw, workerd, workers (Dormouse's Workers mode).
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<PeerName>,
    /// Seconds of each measured stretch (default 5, or 1 with --smoke).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Rounds of each closed-loop load per peer, the peers taking turns (default 3, or 1 with
    /// --smoke).
    #[arg(long)]
    pub rounds: Option<usize>,
}

/// A scenario of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// 1. Idle memory and open files per connection.
    Idle,
    /// 2. Echo round trips.
    Echo,
    /// 3. Chat-room fan-out.
    Fanout,
    /// 4. Waking hibernated objects.
    Wake,
    /// 5. Auto-response without waking.
    AutoResponse,
    /// 6. Turns that write to storage.
    Storage,
    /// 7. Process start to the first answered request.
    Startup,
    /// 8. permessage-deflate negotiated: idle memory, and the cost of compressing.
    Compression,
    /// 9. Cluster mode: a single node against three nodes and PostgreSQL (storage turns,
    ///    forwarded echo, wake on another node, failover).
    Cluster,
}

/// A peer, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerName {
    /// Dormouse.
    Dormouse,
    /// The raw baseline.
    Raw,
    /// workerd.
    Workerd,
    /// Dormouse's Workers mode, running the seeds' JavaScript.
    Workers,
}

/// Where things are and how the run is set up.
#[derive(Debug)]
pub(crate) struct Setup {
    bin_dir: PathBuf,
    workerd_config: PathBuf,
    server_cpus: Option<String>,
    generator_cpus: Option<String>,
    smoke: bool,
    seconds: f64,
    rounds: usize,
    peers: Vec<Peer>,
}

impl Setup {
    fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    fn runs(&self, peer: Peer) -> bool {
        self.peers.contains(&peer)
    }

    /// `full` normally, `smoke` with `--smoke`.
    fn size(&self, full: usize, smoke: usize) -> usize {
        if self.smoke { smoke } else { full }
    }
}

/// Everything measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    rows: Vec<Row>,
    cpu: Vec<CpuRow>,
    /// What was left out, and why.
    notes: Vec<String>,
}

/// Runs the benchmark and prints the tables; in smoke mode, fails if a scenario produced no
/// figures.
pub async fn run(options: Options) -> Result<()> {
    let setup = setup(&options)?;
    let scenarios = if options.scenarios.is_empty() {
        vec![
            Scenario::Idle,
            Scenario::Echo,
            Scenario::Fanout,
            Scenario::Wake,
            Scenario::AutoResponse,
            Scenario::Storage,
            Scenario::Startup,
            Scenario::Compression,
            Scenario::Cluster,
        ]
    } else {
        options.scenarios.clone()
    };
    println!("{}", machine_description(&setup));
    let mut results = Results::default();
    for scenario in scenarios {
        eprintln!("dormouse-bench: {scenario:?}");
        match scenario {
            Scenario::Idle => idle::run(&setup, &mut results).await?,
            Scenario::Echo => throughput::echo(&setup, &mut results).await?,
            Scenario::Fanout => fanout::run(&setup, &mut results).await?,
            Scenario::Wake => wake::run(&setup, &mut results).await?,
            Scenario::AutoResponse => throughput::auto_response(&setup, &mut results).await?,
            Scenario::Storage => throughput::storage(&setup, &mut results).await?,
            Scenario::Startup => startup::run(&setup, &mut results).await?,
            Scenario::Compression => compression::run(&setup, &mut results).await?,
            Scenario::Cluster => cluster::run(&setup, &mut results).await?,
        }
    }
    println!("{}", table::render(&results.rows));
    println!(
        "\"Dormouse vs X\": how many times better Dormouse's figure is (above 1: better; for \
         memory and latency, lower is better); \"JS vs workerd\": the same for Workers mode, the \
         same JavaScript on both. Targets: ✓ met, ✗ missed (\"JS\": Workers mode's).\n"
    );
    for note in &results.notes {
        println!("- {note}");
    }
    if !results.notes.is_empty() {
        println!();
    }
    println!("CPU used during each measured stretch, in cores (1.00 = one core busy):\n");
    println!("{}", table::render_cpu(&results.cpu));
    if setup.smoke {
        for row in &results.rows {
            for peer in Peer::ALL {
                if let Some(value) = row.get(peer) {
                    anyhow::ensure!(
                        value.is_finite() && value >= 0.0,
                        "{} / {}: {value} for {}",
                        row.scenario,
                        row.metric,
                        peer.name()
                    );
                }
            }
            anyhow::ensure!(
                !setup.runs(Peer::Dormouse) || row.get(Peer::Dormouse).is_some(),
                "{} / {}: no figure for Dormouse",
                row.scenario,
                row.metric
            );
        }
    }
    Ok(())
}

fn setup(options: &Options) -> Result<Setup> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the driver's directory")?
        .to_owned();
    let peers: Vec<Peer> = if options.peers.is_empty() {
        Peer::ALL.to_vec()
    } else {
        options
            .peers
            .iter()
            .map(|p| match p {
                PeerName::Dormouse => Peer::Dormouse,
                PeerName::Raw => Peer::Raw,
                PeerName::Workerd => Peer::Workerd,
                PeerName::Workers => Peer::Workers,
            })
            .collect()
    };
    let needed = [
        "dormouse-load",
        "raw-baseline",
        "echo",
        "chat-room",
        "hibernation-server",
        "counter",
        "dormouse",
    ];
    for name in needed {
        let path = bin_dir.join(name);
        anyhow::ensure!(
            path.exists(),
            "{} is missing: build the benchmark with scripts/bench",
            path.display()
        );
    }
    if peers.contains(&Peer::Workerd) {
        let workerd = dormouse_testing::Workerd::binary();
        anyhow::ensure!(
            workerd.exists(),
            "workerd is missing at {}: run scripts/install-workerd, or leave it out with --peers dormouse,raw",
            workerd.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_cpus, generator_cpus) = if cores >= 2 {
        (Some("0".to_owned()), Some("1".to_owned()))
    } else {
        (None, None)
    };
    Ok(Setup {
        bin_dir,
        workerd_config: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../oracle/workerd/config.capnp"),
        server_cpus,
        generator_cpus,
        smoke: options.smoke,
        seconds: options
            .seconds
            .unwrap_or(if options.smoke { 1.0 } else { 5.0 }),
        rounds: options
            .rounds
            .unwrap_or(if options.smoke { 1 } else { 3 })
            .max(1),
        peers,
    })
}

/// The machine and the versions, for the record.
fn machine_description(setup: &Setup) -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| "?".to_owned(), |kib| format!("{} GiB", kib >> 20));
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let output = |program: &Path, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let workerd = if setup.runs(Peer::Workerd) {
        output(&dormouse_testing::Workerd::binary(), "--version")
    } else {
        "not run".to_owned()
    };
    let date = output(Path::new("date"), "-u");
    let pinning = match (&setup.server_cpus, &setup.generator_cpus) {
        (Some(server), Some(generator)) => {
            format!("server on CPU {server}, load generator on CPU {generator}")
        }
        _ => "one CPU: server and load generator share it".to_owned(),
    };
    format!(
        "Machine: {model}, {cores} cores, {memory}, Linux {kernel}; {pinning}.\n\
         workerd: {workerd}. Date: {date}. Mode: {}, {} s per measured stretch, {} round{} per closed-loop load.\n",
        if setup.smoke { "smoke" } else { "full" },
        setup.seconds,
        setup.rounds,
        if setup.rounds == 1 { "" } else { "s" }
    )
}
