//! workerd, Cloudflare's runtime, serving the seeds: the behavioural oracle.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::DEADLINE;
use crate::net::{free_port, wait_until_listening};

/// workerd evicts an idle Durable Object after a fixed 10 s (`server.c++`, "Actor freed due to
/// inactivity"); the timer cannot be driven from outside, so waiting it out is the only way to see
/// workerd's behaviour after hibernation. Dormouse's side of every comparison is forced instead.
pub const WORKERD_EVICTION: Duration = Duration::from_secs(10);

/// The sockets of `oracle/workerd/config.capnp`: seeds 000, 001, 002 and the counter.
pub const WORKERD_SOCKETS: [&str; 4] = ["h000", "h001", "h002", "hcounter"];

/// The disk service of `oracle/workerd/config.capnp` that holds the counter's objects.
const STORAGE_SERVICE: &str = "storage";

/// A workerd process serving the seeds on free loopback ports; killed when dropped.
#[derive(Debug)]
pub struct Workerd {
    child: Child,
    addrs: Vec<(String, SocketAddr)>,
    stdout: Arc<Mutex<Vec<String>>>,
    _storage: crate::TempDir,
}

impl Workerd {
    /// The workerd binary: `$WORKERD`, else where `scripts/install-workerd` puts it.
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("WORKERD") {
            return PathBuf::from(path);
        }
        let home = std::env::var_os("WORKERD_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
                    });
                cache.join("workerd-anchor")
            });
        home.join("node_modules/.bin/workerd")
    }

    /// Starts workerd with `config` (`oracle/workerd/config.capnp`), binding each of
    /// [`WORKERD_SOCKETS`] to a free loopback port, with the counter's storage in a fresh
    /// directory, and waits until they accept connections.
    pub async fn start(config: &Path) -> Workerd {
        Workerd::start_on_cpus(config, None).await
    }

    /// [`Workerd::start`], confined to the CPUs `cpus` (a `taskset` list such as `0` or `0-1`).
    pub async fn start_on_cpus(config: &Path, cpus: Option<&str>) -> Workerd {
        Workerd::start_serving(config, &WORKERD_SOCKETS, cpus).await
    }

    /// Starts workerd with `config`, binding each of its `sockets` to a free loopback port (and
    /// its `storage` disk service, if it has one, to a fresh directory), confined to `cpus`.
    pub async fn start_serving(config: &Path, sockets: &[&str], cpus: Option<&str>) -> Workerd {
        let binary = Workerd::binary();
        assert!(
            binary.exists(),
            "workerd is not installed at {}: run scripts/install-workerd (or set WORKERD)",
            binary.display()
        );
        let addrs: Vec<(String, SocketAddr)> = sockets
            .iter()
            .map(|name| ((*name).to_owned(), free_port()))
            .collect();
        let storage = crate::TempDir::new("workerd-storage");
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .arg("serve")
            .arg(config.file_name().expect("config file name"))
            .arg("--directory-path")
            .arg(format!("{STORAGE_SERVICE}={}", storage.path().display()));
        for (name, addr) in &addrs {
            command.arg("--socket-addr").arg(format!("{name}={addr}"));
        }
        let mut child = command
            .current_dir(config.parent().expect("config directory"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().expect("stdout lock").push(line);
            }
        });
        let workerd = Workerd {
            child,
            addrs,
            stdout,
            _storage: storage,
        };
        for (_, addr) in &workerd.addrs {
            assert!(
                wait_until_listening(*addr, DEADLINE * 2).await,
                "workerd did not listen on {addr}"
            );
        }
        workerd
    }

    /// Where socket `name` listens.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .expect("socket of the config")
    }

    /// Lines workerd printed on stdout (the seeds' `console.log`).
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// The process id, for measuring it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits out workerd's eviction timer (see [`WORKERD_EVICTION`]), with a margin.
    pub async fn wait_for_eviction() {
        tokio::time::sleep(WORKERD_EVICTION + Duration::from_secs(2)).await;
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
