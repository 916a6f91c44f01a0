//! A cluster of server processes for tests: a PostgreSQL of its own, and nodes that each listen
//! on their own loopback address (127.0.0.2, 127.0.0.3, …) with their own data directory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{FaultProxy, Postgres, ProcessOptions, ServerProcess, TempDir};

/// The secret the test nodes share.
pub const TEST_CLUSTER_SECRET: &str = "test-cluster-secret";

/// The lease of test nodes: short, so that a takeover comes within seconds.
pub const TEST_LEASE_TTL: Duration = Duration::from_secs(2);

/// Nodes of one cluster, each a process of the same binary.
#[derive(Debug)]
pub struct TestCluster {
    /// Declared first: dropped (killed) before the database they use.
    nodes: Vec<Slot>,
    db: Postgres,
    binary: PathBuf,
    extra_args: Vec<String>,
    /// The CPUs the nodes run on (`taskset` list); all when `None`.
    cpus: Option<String>,
    /// Arguments before the flags (`serve PROJECT` for Workers mode).
    leading_args: Vec<String>,
}

/// One node's place: its address and data directory outlive its process, so that it can be
/// restarted where its peers knew it.
#[derive(Debug)]
struct Slot {
    addr: SocketAddr,
    data: PathBuf,
    _dir: TempDir,
    process: Option<ServerProcess>,
    links: Option<Links>,
}

/// The links of a node that can be cut: its connections to the cluster database, and its peers'
/// connections to it (they reach it through this proxy, its `--node-address`).
#[derive(Debug)]
struct Links {
    database: FaultProxy,
    peers: FaultProxy,
}

impl TestCluster {
    /// Starts PostgreSQL and `count` nodes of `binary`, each with `extra_args` after the
    /// cluster's flags (and a lease of [`TEST_LEASE_TTL`] unless they set `--lease-ttl`).
    pub async fn start(binary: &Path, count: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::start_nodes(binary, count, extra_args, false, None).await
    }

    /// [`start`](Self::start) of the `dormouse` binary at `binary` serving the Workers project
    /// at `project` (`dormouse serve PROJECT`).
    pub async fn start_workers(binary: &Path, project: &Path, count: usize) -> TestCluster {
        let mut cluster = TestCluster::empty(binary, &[], None);
        cluster.leading_args = vec!["serve".into(), project.display().to_string()];
        cluster.add_nodes(count, false).await;
        cluster
    }

    /// [`start`](Self::start), every node confined to `cpus` (as `taskset` lists them): for
    /// benchmarks that give the server side one core.
    pub async fn start_on_cpus(
        binary: &Path,
        count: usize,
        extra_args: &[&str],
        cpus: Option<String>,
    ) -> TestCluster {
        TestCluster::start_nodes(binary, count, extra_args, false, cpus).await
    }

    /// [`start`](Self::start), with each node's links to the database and from its peers
    /// through proxies that [`partition`](Self::partition) cuts.
    pub async fn start_with_links(binary: &Path, count: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::start_nodes(binary, count, extra_args, true, None).await
    }

    async fn start_nodes(
        binary: &Path,
        count: usize,
        extra_args: &[&str],
        with_links: bool,
        cpus: Option<String>,
    ) -> TestCluster {
        let mut cluster = TestCluster::empty(binary, extra_args, cpus);
        cluster.add_nodes(count, with_links).await;
        cluster
    }

    /// A database and no node yet.
    fn empty(binary: &Path, extra_args: &[&str], cpus: Option<String>) -> TestCluster {
        TestCluster {
            nodes: Vec::new(),
            db: Postgres::start(),
            binary: binary.to_owned(),
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            cpus,
            leading_args: Vec::new(),
        }
    }

    /// Starts `count` nodes, each on the next loopback address.
    async fn add_nodes(&mut self, count: usize, with_links: bool) {
        for _ in 0..count {
            let index = self.nodes.len();
            let host = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index as u8));
            let addr = crate::free_port_at(host);
            let dir = TempDir::new(&format!("cluster-node-{index}"));
            let data = dir.path().join("data");
            let links = if with_links {
                Some(Links {
                    database: FaultProxy::start(self.db.addr()).await,
                    peers: FaultProxy::start(addr).await,
                })
            } else {
                None
            };
            self.nodes.push(Slot {
                addr,
                data,
                _dir: dir,
                process: None,
                links,
            });
            self.restart(index).await;
        }
    }

    /// The cluster database.
    pub fn database(&self) -> &Postgres {
        &self.db
    }

    /// How many nodes the cluster has (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `index`'s address (also its id in the cluster).
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.nodes[index].addr
    }

    /// Node `index`'s process; panics if it is not running.
    pub fn node(&self, index: usize) -> &ServerProcess {
        self.nodes[index]
            .process
            .as_ref()
            .unwrap_or_else(|| panic!("node {index} is not running"))
    }

    /// Whether node `index` runs.
    pub fn is_running(&self, index: usize) -> bool {
        self.nodes[index].process.is_some()
    }

    /// The index of the node at `addr`.
    pub fn index_of(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|slot| {
            slot.addr.to_string() == addr
                || slot
                    .links
                    .as_ref()
                    .is_some_and(|links| links.peers.addr().to_string() == addr)
        })
    }

    /// Starts node `index` (again), at its address with its data directory.
    pub async fn restart(&mut self, index: usize) {
        let slot = &self.nodes[index];
        let database = match &slot.links {
            Some(links) => Postgres::url_at(links.database.addr()),
            None => self.db.url(),
        };
        let mut args = vec![
            "--cluster-database".to_owned(),
            database,
            "--cluster-secret".to_owned(),
            TEST_CLUSTER_SECRET.to_owned(),
        ];
        // The tests' short lease, unless the extra flags set one.
        if !self.extra_args.iter().any(|arg| arg == "--lease-ttl") {
            args.extend([
                "--lease-ttl".to_owned(),
                format!("{}ms", TEST_LEASE_TTL.as_millis()),
            ]);
        }
        if let Some(links) = &slot.links {
            args.extend(["--node-address".to_owned(), links.peers.addr().to_string()]);
        }
        args.extend(self.extra_args.iter().cloned());
        let options = ProcessOptions {
            leading_args: self.leading_args.clone(),
            args,
            host: Some(slot.addr.ip()),
            listen: Some(slot.addr),
            cpus: self.cpus.clone(),
            ..Default::default()
        };
        let process = ServerProcess::start(&self.binary, &slot.data, &options).await;
        self.nodes[index].process = Some(process);
    }

    /// Kills node `index` with SIGKILL, as a crash would.
    pub fn kill9(&mut self, index: usize) {
        if let Some(process) = self.nodes[index].process.take() {
            process.kill9();
        }
    }

    /// Stops node `index` with SIGTERM (a drain) and returns its exit status.
    pub async fn drain(&mut self, index: usize) -> std::process::ExitStatus {
        let process = self.nodes[index]
            .process
            .take()
            .unwrap_or_else(|| panic!("node {index} is not running"));
        process.signal_and_wait("TERM").await
    }

    /// Freezes node `index` (SIGSTOP), as a long pause would; [`resume`](Self::resume) thaws it.
    pub fn pause(&self, index: usize) {
        self.node(index).send_signal("STOP");
    }

    /// Thaws node `index` (SIGCONT).
    pub fn resume(&self, index: usize) {
        self.node(index).send_signal("CONT");
    }

    /// Cuts node `index` off from the cluster database and from its peers (clients still reach
    /// it); [`heal`](Self::heal) joins it again. Needs [`start_with_links`](Self::start_with_links).
    pub fn partition(&self, index: usize) {
        let links = self.links(index);
        links.database.cut();
        links.peers.cut();
    }

    /// Holds every byte between node `index` and the cluster database (connections stay open,
    /// nothing answers), as a stalled network would; [`heal`](Self::heal) lets them flow on.
    pub fn stall_database(&self, index: usize) {
        self.links(index).database.black_hole();
    }

    /// Ends node `index`'s partition.
    pub fn heal(&self, index: usize) {
        let links = self.links(index);
        links.database.heal();
        links.peers.heal();
    }

    fn links(&self, index: usize) -> &Links {
        self.nodes[index]
            .links
            .as_ref()
            .expect("a cluster started with links")
    }

    /// The node that owns an object of `namespace` by the cluster database (the first such
    /// object), as its index; `None` if none is owned.
    pub async fn owner_index(&self, namespace: &str) -> Option<usize> {
        let (client, connection) = tokio_postgres::connect(&self.db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the cluster database");
        tokio::spawn(connection);
        let row = client
            .query_opt(
                "SELECT owner_node FROM dormouse_objects
                 WHERE namespace = $1 AND owner_node IS NOT NULL LIMIT 1",
                &[&namespace],
            )
            .await
            .expect("read the owner");
        let owner: String = row?.get(0);
        self.index_of(&owner)
    }
}
