//! Dormouse binaries as real processes: started, killed with SIGKILL, stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::net::{free_port_at, wait_until_listening};
use crate::{DEADLINE, Metrics};

/// A server binary running as a child process. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

/// How to start a [`ServerProcess`].
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// Arguments before the standard flags (a subcommand: `serve PROJECT`).
    pub leading_args: Vec<String>,
    /// Extra flags.
    pub args: Vec<String>,
    /// Largest file the process may write, in bytes (`RLIMIT_FSIZE`); writes past it fail with
    /// EFBIG (the signal SIGXFSZ is ignored). For provoking real storage failures.
    pub max_file_size: Option<u64>,
    /// Most files the process may have open (`RLIMIT_NOFILE`).
    pub max_open_files: Option<u64>,
    /// Where the process's stderr (its log) goes; inherited when `None`.
    pub log: Option<PathBuf>,
    /// The log filter (`RUST_LOG`); `warn` when `None` (or the test's own `RUST_LOG`).
    pub log_filter: Option<String>,
    /// The CPUs the process may run on, as `taskset` lists them (`0`, `0-1`); all when `None`.
    pub cpus: Option<String>,
    /// The loopback address to listen on (127.0.0.1 when `None`): cluster nodes each get one.
    pub host: Option<std::net::IpAddr>,
    /// The listen address, when it must be a given one (a node restarted where its peers knew it).
    pub listen: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts `binary` on free loopback ports with `data_dir`, and waits until it listens.
    pub async fn start(binary: &Path, data_dir: &Path, options: &ProcessOptions) -> ServerProcess {
        let host = options.host.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        let addr = options.listen.unwrap_or_else(|| free_port_at(host));
        let admin = free_port_at(host);
        let mut args: Vec<String> = options.leading_args.clone();
        args.extend([
            "--listen".into(),
            addr.to_string(),
            "--admin-listen".into(),
            admin.to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ]);
        args.extend(options.args.iter().cloned());
        let mut limits = Vec::new();
        if let Some(size) = options.max_file_size {
            limits.push(format!("--fsize={size}"));
        }
        if let Some(files) = options.max_open_files {
            limits.push(format!("--nofile={files}"));
        }
        let mut command = if let Some(cpus) = &options.cpus {
            // taskset execs the binary: the child's pid is the server's.
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus);
            if !limits.is_empty() {
                command.arg("prlimit").args(&limits).arg("--");
            }
            command.arg(binary).args(&args);
            command
        } else if limits.is_empty() {
            let mut command = Command::new(binary);
            command.args(&args);
            command
        } else {
            // An ignored signal stays ignored across exec: writes past a size limit then fail
            // with EFBIG instead of killing the process.
            let mut command = Command::new("bash");
            command
                .arg("-c")
                .arg("trap '' XFSZ; exec prlimit \"$@\"")
                .arg("prlimit")
                .args(&limits)
                .arg("--")
                .arg(binary)
                .args(&args);
            command
        };
        let stderr = match &options.log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::inherit(),
        };
        let child = command
            .env(
                "RUST_LOG",
                options
                    .log_filter
                    .clone()
                    .or_else(|| std::env::var("RUST_LOG").ok())
                    .unwrap_or_else(|| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let process = ServerProcess { child, addr, admin };
        assert!(
            wait_until_listening(addr, DEADLINE * 3).await,
            "server did not listen on {addr}"
        );
        process
    }

    /// The HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// `ws://` URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process, in bytes (`VmRSS` from `/proc`).
    pub fn rss(&self) -> u64 {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("a VmRSS line");
        kib * 1024
    }

    /// The process's metrics, from its admin endpoint.
    pub async fn metrics(&self) -> Metrics {
        let reply = crate::http_request(self.admin, "GET", "/metrics", &[], "").await;
        assert_eq!(reply.status, 200, "metrics endpoint: {}", reply.body);
        Metrics::parse(&reply.body)
    }

    /// Kills the process with SIGKILL: no chance to clean up, as in a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`"STOP"`, `"CONT"`, …) and returns.
    pub fn send_signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} failed");
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, …) and waits for the process to exit.
    pub async fn signal_and_wait(mut self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} failed");
        let wait = async {
            loop {
                if let Some(status) = self.child.try_wait().expect("waiting for the process") {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(DEADLINE * 3, wait)
            .await
            .expect("the process exits after the signal")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory path for a process test, removed when dropped.
pub fn process_data_dir(label: &str) -> (crate::TempDir, PathBuf) {
    let dir = crate::TempDir::new(label);
    let path = dir.path().join("data");
    (dir, path)
}

/// Waits until the wall clock passes `epoch_ms` (milliseconds since the epoch): for tests that
/// need a time to be in the past, such as an alarm that must be late when a server restarts.
pub async fn wait_until_wall_clock(epoch_ms: i64) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if now > epoch_ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis((epoch_ms - now + 1) as u64)).await;
    }
}
