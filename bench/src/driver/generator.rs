//! `dormouse-load` as a child process on the generator's core, followed line by line.

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::Setup;

/// What a generator reports.
#[derive(Debug)]
enum Event {
    Phase(String),
    Measuring,
    Result(String),
}

/// A running generator.
#[derive(Debug)]
pub(crate) struct Generator {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: ChildStdin,
}

impl Generator {
    /// Starts `dormouse-load` with `args` (the scenario first).
    pub(crate) fn spawn(setup: &Setup, args: &[String]) -> Result<Generator> {
        let binary = setup.binary("dormouse-load");
        let mut command = match &setup.generator_cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let mut child = command
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let stdin = child.stdin.take().context("piped stdin")?;
        Ok(Generator {
            child,
            lines: BufReader::new(stdout).lines(),
            stdin,
        })
    }

    async fn next(&mut self) -> Result<Event> {
        let Some(line) = self.lines.next_line().await? else {
            let status = self.child.wait().await?;
            bail!("the load generator stopped ({status}); its error is above");
        };
        Ok(if let Some(phase) = line.strip_prefix("phase ") {
            Event::Phase(phase.to_owned())
        } else if line == "measuring" {
            Event::Measuring
        } else if let Some(json) = line.strip_prefix("result ") {
            Event::Result(json.to_owned())
        } else {
            bail!("unexpected line from the load generator: {line}")
        })
    }

    /// Waits until the generator reaches `phase` (it then waits for [`Generator::go`]).
    pub(crate) async fn reached(&mut self, phase: &str) -> Result<()> {
        match self.next().await? {
            Event::Phase(name) if name == phase => Ok(()),
            other => bail!("expected phase {phase}, got {other:?}"),
        }
    }

    /// Lets the generator go on from a phase.
    pub(crate) async fn go(&mut self) -> Result<()> {
        self.stdin.write_all(b"go\n").await?;
        Ok(self.stdin.flush().await?)
    }

    /// Waits until the measured stretch begins.
    pub(crate) async fn measuring(&mut self) -> Result<()> {
        match self.next().await? {
            Event::Measuring => Ok(()),
            other => bail!("expected the measurement to begin, got {other:?}"),
        }
    }

    /// Waits for the report and for the generator to exit.
    pub(crate) async fn result<T: DeserializeOwned>(mut self) -> Result<T> {
        let json = match self.next().await? {
            Event::Result(json) => json,
            other => bail!("expected a result, got {other:?}"),
        };
        let status = self.child.wait().await?;
        anyhow::ensure!(status.success(), "the load generator failed: {status}");
        serde_json::from_str(&json).context("malformed generator report")
    }
}
