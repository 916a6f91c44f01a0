//! A Dormouse node in a cluster: any node accepts any request; each object runs on one node at a
//! time, claimed through the cluster database (PostgreSQL) under an epoch that fences its
//! commits; a node restores an object's database from the cluster when it claims it, ships every
//! commit there before the turn's output leaves, and forwards requests for objects another node
//! owns to that node.
//!
//! The runtime knows none of this: it is given a [`Placement`](dormouse_runtime::placement::Placement)
//! ([`ClusterNode::placement`]) when it is built.
//!
//! # Layout
//! - [`ClusterNode`] (here): joins the cluster, follows the node's lease (objects stop when it is
//!   lost), and leaves it on a drain.
//! - `placement`: [`ClusterPlacement`], the runtime's placement: claims, restores, releases,
//!   routes, alarms.
//! - `commits`: the commits of owned objects appended to the cluster under their epoch, and
//!   compaction.
//! - `forward`: requests sent to the node that owns their object, WebSocket upgrades included.
//! - `readopt`: a relayed socket moved to its object's next owner when the owner goes away.
//! - `pool`: [`SessionPool`], the connections to the cluster database for object work.
//! - `metrics`: [`NodeMetrics`] and their [`NodeCollector`] for `/metrics`.
//! - `error`: [`NodeError`].

mod commits;
mod error;
mod forward;
mod metrics;
mod placement;
mod pool;
mod readopt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dormouse_cluster::{LeaseSettings, MemberState, Membership};
use dormouse_runtime::Runtime;

pub use error::NodeError;
pub use forward::MAX_FORWARDED_BODY;
pub use metrics::{NodeCollector, NodeMetrics};
pub use placement::ClusterPlacement;
pub use pool::{MAX_SESSIONS, SessionPool};

/// Close code of the sockets of a node that lost its lease or drains: 1012, service restart, so
/// that clients reconnect (to another node) at once.
pub const CLOSE_MOVED: u16 = 1012;

/// Longest a node waits for its objects to stop when its lease was lost.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Whether a node checks, before each commit and each delivery, that it still owns the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// Always: a node that lost an object (or its lease) neither serves it nor commits to it.
    Enforced,
    /// Never: only for the tests that prove the fault checker sees the double activations this
    /// lets through (`--unsafe-no-fencing`). Loses acknowledged writes.
    Off,
}

/// The cluster flags as given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct ClusterFlags<'a> {
    /// `--cluster-database`.
    pub database: Option<&'a str>,
    /// `--node-address`.
    pub node_address: Option<&'a str>,
    /// `--listen`.
    pub listen: SocketAddr,
    /// `--cluster-secret`.
    pub secret: Option<&'a str>,
    /// `--lease-ttl`.
    pub lease_ttl: Duration,
    /// `--unsafe-no-fencing`.
    pub unsafe_no_fencing: bool,
}

/// How a node joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The cluster database, `postgres://user@host:port/database`.
    pub database: String,
    /// Where the other nodes reach this node's listening port (`host:port`); also its id.
    pub node_address: String,
    /// The secret every forwarded request carries.
    pub secret: String,
    /// How long leases last.
    pub lease: LeaseSettings,
    /// Whether ownership is checked (always, but in one test).
    pub fencing: Fencing,
}

impl ClusterOptions {
    /// The options the command-line flags give; `None` without a cluster database.
    pub fn from_flags(flags: ClusterFlags<'_>) -> Result<Option<ClusterOptions>, NodeError> {
        let Some(database) = flags.database else {
            return Ok(None);
        };
        let secret = flags.secret.ok_or_else(|| {
            NodeError::Options(
                "--cluster-secret (or DORMOUSE_CLUSTER_SECRET) is required with --cluster-database"
                    .into(),
            )
        })?;
        let listen = flags.listen;
        let node_address = match flags.node_address {
            Some(address) => address.to_owned(),
            None if listen.ip().is_unspecified() || listen.port() == 0 => {
                return Err(NodeError::Options(format!(
                    "--node-address is required when listening on {listen}: the other nodes need an address they can reach"
                )));
            }
            None => listen.to_string(),
        };
        if flags.lease_ttl < MIN_LEASE_TTL {
            return Err(NodeError::Options(format!(
                "--lease-ttl must be at least {MIN_LEASE_TTL:?}: a node renews five times per lease"
            )));
        }
        if flags.unsafe_no_fencing {
            tracing::error!(
                "--unsafe-no-fencing: this node may serve objects it no longer owns and lose acknowledged writes; for tests only"
            );
        }
        Ok(Some(ClusterOptions {
            database: database.to_owned(),
            node_address,
            secret: secret.to_owned(),
            lease: LeaseSettings::with_ttl(flags.lease_ttl),
            fencing: if flags.unsafe_no_fencing {
                Fencing::Off
            } else {
                Fencing::Enforced
            },
        }))
    }
}

/// The shortest lease: renewals (a fifth of it apart) must not crowd the database.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(500);

/// This process as a node of a cluster.
#[derive(Debug)]
pub struct ClusterNode {
    placement: Arc<ClusterPlacement>,
    metrics: Arc<NodeMetrics>,
    database: String,
}

impl ClusterNode {
    /// Connects to the cluster database (creating or migrating its schema) and registers this
    /// node with a fresh lease.
    pub async fn join(options: ClusterOptions) -> Result<ClusterNode, NodeError> {
        if options.secret.is_empty() {
            return Err(NodeError::Options(
                "the cluster secret must not be empty".into(),
            ));
        }
        let forwarder =
            forward::Forwarder::new(&options.secret).map_err(|_| NodeError::SecretNotAHeader)?;
        let membership = Membership::start(
            &options.database,
            &options.node_address,
            &options.node_address,
            options.lease,
        )
        .await?;
        let metrics = Arc::new(NodeMetrics::default());
        let placement = Arc::new(ClusterPlacement::new(
            membership,
            options.lease,
            Arc::new(SessionPool::new(&options.database)),
            forwarder,
            metrics.clone(),
            options.fencing,
            options.node_address.clone(),
        ));
        let counted = Arc::downgrade(&placement);
        metrics
            .count_objects_with(move || counted.upgrade().map_or(0, |placement| placement.held()));
        tracing::info!(node = %options.node_address, ttl = ?options.lease.ttl, "joined the cluster");
        Ok(ClusterNode {
            placement,
            metrics,
            database: options.database,
        })
    }

    /// Joins the cluster the command-line flags name (see [`ClusterOptions::from_flags`]);
    /// `None` without a cluster database.
    pub async fn join_from_flags(
        flags: ClusterFlags<'_>,
    ) -> Result<Option<ClusterNode>, NodeError> {
        match ClusterOptions::from_flags(flags)? {
            None => Ok(None),
            Some(options) => Ok(Some(ClusterNode::join(options).await?)),
        }
    }

    /// The placement to build the runtime with.
    pub fn placement(&self) -> Arc<dyn dormouse_runtime::placement::Placement> {
        Arc::new(placement::Handle(self.placement.clone()))
    }

    /// The node's figures, to register next to the runtime's in `/metrics`.
    pub fn collector(&self) -> NodeCollector {
        NodeCollector(self.metrics.clone())
    }

    /// Starts the node's work beside serving `runtime` (built with [`placement`](Self::placement)):
    /// following its lease, and firing the alarms of objects no live node owns.
    pub fn attach(&self, runtime: Runtime) {
        self.follow_lease(runtime.clone());
        self.fire_orphan_alarms(runtime);
    }

    /// Stops every object of `runtime` whenever this node's lease is lost: another node may own
    /// them already. Their sockets close with [`CLOSE_MOVED`]; the next request of each object
    /// finds it wherever it is then.
    fn follow_lease(&self, runtime: Runtime) {
        if self.placement.fencing() == Fencing::Off {
            // Without fencing a node keeps serving what it no longer owns: that is the point.
            return;
        }
        let mut changes = self.placement.membership().watch();
        tokio::spawn(async move {
            let mut holding = match &*changes.borrow() {
                MemberState::Member(lease) => Some(lease.incarnation()),
                MemberState::Lapsed { .. } => None,
            };
            while changes.changed().await.is_ok() {
                let now = match &*changes.borrow_and_update() {
                    MemberState::Member(lease) => Some(lease.incarnation()),
                    MemberState::Lapsed { .. } => None,
                };
                let lost = holding.is_some() && now != holding;
                holding = now;
                if lost {
                    tracing::error!("this node's lease was lost: stopping every object");
                    runtime.stop_objects(CLOSE_MOVED, STOP_DEADLINE).await;
                }
            }
        });
    }

    /// Fires the alarms of objects that no live node owns, polling the cluster database as often
    /// as the node renews its lease, for as long as `runtime` runs.
    fn fire_orphan_alarms(&self, runtime: Runtime) {
        let placement = self.placement.clone();
        let every = placement.settings().renew_every();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !runtime.is_closing() {
                ticks.tick().await;
                placement.fire_orphan_alarms(&runtime).await;
            }
        });
    }

    /// Leaves the cluster after `runtime` stopped: releases every object still held, so that
    /// other nodes need not wait for this node's lease to lapse, and deletes the node's row.
    pub async fn leave(&self) {
        self.placement.release_all().await;
        self.placement.membership().leave(&self.database).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTEN: &str = "127.0.0.2:8787";

    fn flags(
        database: Option<&str>,
        node: Option<&str>,
        listen: &str,
        secret: Option<&str>,
    ) -> Result<Option<ClusterOptions>, NodeError> {
        ClusterOptions::from_flags(ClusterFlags {
            database,
            node_address: node,
            listen: listen.parse().unwrap(),
            secret,
            lease_ttl: Duration::from_secs(6),
            unsafe_no_fencing: false,
        })
    }

    #[test]
    fn without_a_database_there_is_no_cluster() {
        assert!(flags(None, None, LISTEN, None).unwrap().is_none());
    }

    #[test]
    fn the_node_address_defaults_to_the_listen_address() {
        let options = flags(Some("postgres://db"), None, LISTEN, Some("s"))
            .unwrap()
            .unwrap();
        assert_eq!(options.node_address, LISTEN);
        assert_eq!(options.lease.grace, Duration::from_millis(1200));
    }

    #[test]
    fn a_cluster_needs_a_secret_and_a_reachable_address() {
        let missing_secret = flags(Some("postgres://db"), None, LISTEN, None).unwrap_err();
        assert!(missing_secret.to_string().contains("--cluster-secret"));
        let unspecified =
            flags(Some("postgres://db"), None, "0.0.0.0:8787", Some("s")).unwrap_err();
        assert!(unspecified.to_string().contains("--node-address"));
        let given = flags(
            Some("postgres://db"),
            Some("10.0.0.5:8787"),
            "0.0.0.0:8787",
            Some("s"),
        );
        assert_eq!(given.unwrap().unwrap().node_address, "10.0.0.5:8787");
    }
}
