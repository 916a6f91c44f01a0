//! The servers under test: Dormouse's examples, the raw baseline, workerd with the seeds. Each
//! starts fresh for a scenario, confined to the server core.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use dormouse_testing::{
    Metrics, ProcessOptions, ServerProcess, TempDir, WORKERD_EVICTION, Workerd, free_port,
    http_request, process_data_dir, wait_until_listening,
};

use super::Setup;

/// A server implementation, one per column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Dormouse, running the example that ports the seed.
    Dormouse,
    /// The raw baseline: the seed's protocol on the same codec, without objects.
    Raw,
    /// workerd running the seed program itself.
    Workerd,
    /// Dormouse's Workers mode (`dormouse serve`) running the same seed program as workerd.
    Workers,
}

impl Peer {
    /// All peers, in table order.
    pub const ALL: [Peer; 4] = [Peer::Dormouse, Peer::Raw, Peer::Workerd, Peer::Workers];

    /// The column heading.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Dormouse => "Dormouse",
            Peer::Raw => "raw baseline",
            Peer::Workerd => "workerd",
            Peer::Workers => "Dormouse JS",
        }
    }
}

/// A program the scenarios run, as each peer serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    /// Seed 002, `/websocket`.
    Echo,
    /// Seed 000, `/room/{id}`.
    ChatRoom,
    /// Seed 001, `/websocket`, with the `ping`→`pong` auto-response.
    Sessions,
    /// The counter, `/counter/{name}`, writing on every message.
    Counter,
}

impl Program {
    pub(crate) fn dormouse_binary(self) -> &'static str {
        match self {
            Program::Echo => "echo",
            Program::ChatRoom => "chat-room",
            Program::Sessions => "hibernation-server",
            Program::Counter => "counter",
        }
    }

    /// The Workers project Workers mode serves: the seed program as its author wrote it (the
    /// counter: its TypeScript example).
    fn workers_project(self) -> std::path::PathBuf {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        match self {
            Program::Echo => root.join("seeds/workers/seed002-echo-js"),
            Program::ChatRoom => root.join("seeds/workers/seed000-chat-room"),
            Program::Sessions => root.join("seeds/workers/seed001-hibernation-server"),
            Program::Counter => root.join("examples/workers/counter"),
        }
    }

    fn workerd_socket(self) -> &'static str {
        match self {
            Program::Echo => "h002",
            Program::ChatRoom => "h000",
            Program::Sessions => "h001",
            Program::Counter => "hcounter",
        }
    }

    /// The Dormouse binding, for metrics.
    pub(crate) fn binding(self) -> &'static str {
        match self {
            Program::Echo | Program::Sessions => "WEBSOCKET_HIBERNATION_SERVER",
            Program::ChatRoom => "CHAT_ROOM",
            Program::Counter => "COUNTER",
        }
    }
}

/// The raw baseline as a child process; killed when dropped.
#[derive(Debug)]
struct RawProcess(Child);

impl Drop for RawProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The running server, held for as long as it must run (each stops when dropped).
#[derive(Debug)]
enum Process {
    Dormouse {
        process: ServerProcess,
        _data: TempDir,
    },
    Raw {
        _process: RawProcess,
    },
    Workerd {
        _process: Workerd,
    },
}

/// A server running one program.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    process: Process,
}

impl Server {
    /// Starts `peer` serving `program`.
    pub(crate) async fn start(setup: &Setup, peer: Peer, program: Program) -> Result<Server> {
        Server::start_with(setup, peer, program, &[]).await
    }

    /// Starts `peer` serving `program`; Dormouse gets `dormouse_flags` too.
    pub(crate) async fn start_with(
        setup: &Setup,
        peer: Peer,
        program: Program,
        dormouse_flags: &[&str],
    ) -> Result<Server> {
        let server = match peer {
            Peer::Dormouse | Peer::Workers => {
                let (dir, data) = process_data_dir("bench");
                let (binary, leading_args) = if peer == Peer::Workers {
                    let project = program.workers_project().display().to_string();
                    (setup.binary("dormouse"), vec!["serve".to_owned(), project])
                } else {
                    (setup.binary(program.dormouse_binary()), Vec::new())
                };
                let options = ProcessOptions {
                    cpus: setup.server_cpus.clone(),
                    leading_args,
                    args: dormouse_flags.iter().map(|flag| flag.to_string()).collect(),
                    ..Default::default()
                };
                let process = ServerProcess::start(&binary, &data, &options).await;
                Server {
                    pid: process.pid(),
                    addr: process.addr(),
                    process: Process::Dormouse {
                        process,
                        _data: dir,
                    },
                }
            }
            Peer::Raw => {
                let addr = free_port();
                let binary = setup.binary("raw-baseline");
                let mut command = match &setup.server_cpus {
                    Some(cpus) => {
                        let mut command = Command::new("taskset");
                        command.arg("-c").arg(cpus).arg(&binary);
                        command
                    }
                    None => Command::new(&binary),
                };
                let child = command
                    .arg("--listen")
                    .arg(addr.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .with_context(|| format!("starting {}", binary.display()))?;
                let process = RawProcess(child);
                anyhow::ensure!(
                    wait_until_listening(addr, Duration::from_secs(10)).await,
                    "the raw baseline did not listen on {addr}"
                );
                Server {
                    pid: process.0.id(),
                    addr,
                    process: Process::Raw { _process: process },
                }
            }
            Peer::Workerd => {
                let workerd =
                    Workerd::start_on_cpus(&setup.workerd_config, setup.server_cpus.as_deref())
                        .await;
                Server {
                    pid: workerd.pid(),
                    addr: workerd.addr(program.workerd_socket()),
                    process: Process::Workerd { _process: workerd },
                }
            }
        };
        // Let the process finish starting before anything is measured.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(server)
    }

    /// Sends every object of the server into hibernation: forced on Dormouse; on workerd, by
    /// waiting out its fixed eviction timer; nothing to do on the raw baseline.
    pub(crate) async fn hibernate_all(&self) -> Result<()> {
        match &self.process {
            Process::Dormouse { process, .. } => {
                let reply =
                    http_request(process.admin(), "POST", "/objects/hibernate", &[], "").await;
                anyhow::ensure!(reply.status == 200, "hibernation refused: {}", reply.body);
                // The memory of dropped instances goes back to the system on the next trim.
                tokio::time::sleep(Duration::from_millis(1200)).await;
                Ok(())
            }
            Process::Workerd { .. } => {
                tokio::time::sleep(WORKERD_EVICTION + Duration::from_secs(2)).await;
                Ok(())
            }
            Process::Raw { .. } => Ok(()),
        }
    }

    /// Dormouse's metrics (`None` for the other peers).
    pub(crate) async fn metrics(&self) -> Option<Metrics> {
        match &self.process {
            Process::Dormouse { process, .. } => Some(process.metrics().await),
            _ => None,
        }
    }
}
