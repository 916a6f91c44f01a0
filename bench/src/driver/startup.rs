//! Scenario 7: from starting the process to its first answered request, for seed 002: the Rust
//! `echo` example, Workers mode loading the seed's JavaScript, and workerd.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dormouse_testing::{TempDir, WORKERD_SOCKETS, Workerd, free_port, try_http_request};

use super::servers::Peer;
use super::table::{Better, Row, Unit};
use super::{Results, Setup};

/// Starts measured per peer; the median is reported.
const STARTS: usize = 3;

/// Longest a start may take before the run is a failure.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A started process, killed when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) async fn run(setup: &Setup, results: &mut Results) -> Result<()> {
    let scenario = "7. Start: process start to the first answered request (seed 002)";
    let mut row = Row::new(
        scenario,
        "time to first answer, median",
        Unit::Seconds,
        Better::Lower,
    );
    for peer in [Peer::Dormouse, Peer::Workerd, Peer::Workers] {
        if !setup.runs(peer) {
            continue;
        }
        let mut times = Vec::new();
        for _ in 0..STARTS {
            times.push(time_to_first_answer(setup, peer).await?);
        }
        times.sort_by(f64::total_cmp);
        row.set(peer, times[times.len() / 2]);
    }
    results.rows.push(row);
    Ok(())
}

/// Starts `peer`'s seed 002 server and times the first HTTP answer.
async fn time_to_first_answer(setup: &Setup, peer: Peer) -> Result<f64> {
    let data = TempDir::new("bench-start");
    let addr = free_port();
    let (program, args): (std::path::PathBuf, Vec<String>) = match peer {
        Peer::Dormouse | Peer::Workers => {
            let mut args = Vec::new();
            let program = if peer == Peer::Workers {
                args.push("serve".to_owned());
                args.push(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../seeds/workers/seed002-echo-js")
                        .display()
                        .to_string(),
                );
                setup.binary("dormouse")
            } else {
                setup.binary("echo")
            };
            args.extend([
                "--listen".into(),
                addr.to_string(),
                "--admin-listen".into(),
                free_port().to_string(),
                "--data-dir".into(),
                data.path().display().to_string(),
            ]);
            (program, args)
        }
        Peer::Workerd => {
            let config = &setup.workerd_config;
            let mut args = vec![
                "serve".to_owned(),
                config.display().to_string(),
                "--directory-path".into(),
                format!("storage={}", data.path().display()),
            ];
            for socket in WORKERD_SOCKETS {
                let bound = if socket == "h002" { addr } else { free_port() };
                args.extend(["--socket-addr".into(), format!("{socket}={bound}")]);
            }
            (Workerd::binary(), args)
        }
        Peer::Raw => unreachable!("the raw baseline has no program to load"),
    };
    let mut command = match &setup.server_cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus).arg(&program);
            command
        }
        None => Command::new(&program),
    };
    if peer == Peer::Workerd {
        command.current_dir(setup.workerd_config.parent().context("config directory")?);
    }
    let began = Instant::now();
    let _child = Started(
        command
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?,
    );
    loop {
        if try_http_request(addr, "GET", "/websocket", "")
            .await
            .is_ok()
        {
            return Ok(began.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            began.elapsed() < START_DEADLINE,
            "{} did not answer within {START_DEADLINE:?}",
            peer.name()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
