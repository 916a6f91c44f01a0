//! [`NodeMetrics`]: what `/metrics` says of this node in the cluster.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds (seconds) of the commit-latency buckets: a commit to PostgreSQL on the same
/// network takes about a millisecond, a slow disk or a far database tens of them.
const COMMIT_BUCKETS: [f64; 10] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/// Counters of this node's work in the cluster.
pub struct NodeMetrics {
    /// Objects claimed (granted to this node).
    pub(crate) claims: Counter,
    /// Objects whose database was rebuilt from the cluster on a claim.
    pub(crate) restores: Counter,
    /// Requests forwarded to another node (each attempt).
    pub(crate) forwarded: Counter,
    /// Forwarded requests the other node provably did not get.
    pub(crate) undelivered: Counter,
    /// Commits the cluster refused because another node took the object.
    pub(crate) fenced: Counter,
    /// Relayed sockets moved to their object's next owner, the client's connection kept.
    pub(crate) moved_sockets: Counter,
    /// Time to append one commit to the cluster database.
    pub(crate) commit_seconds: Histogram,
    /// Counts the objects this node owns, at scrape time.
    objects_owned: std::sync::OnceLock<Box<dyn Fn() -> usize + Send + Sync>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            claims: Counter::default(),
            restores: Counter::default(),
            forwarded: Counter::default(),
            undelivered: Counter::default(),
            fenced: Counter::default(),
            moved_sockets: Counter::default(),
            commit_seconds: Histogram::new(COMMIT_BUCKETS),
            objects_owned: std::sync::OnceLock::new(),
        }
    }
}

impl NodeMetrics {
    /// Where the count of owned objects comes from.
    pub(crate) fn count_objects_with(&self, count: impl Fn() -> usize + Send + Sync + 'static) {
        let _ = self.objects_owned.set(Box::new(count));
    }
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics")
            .field("claims", &self.claims.get())
            .field("fenced", &self.fenced.get())
            .finish_non_exhaustive()
    }
}

/// Encodes the node's figures; registered next to the runtime's.
#[derive(Debug, Clone)]
pub struct NodeCollector(pub(crate) Arc<NodeMetrics>);

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let metrics = &self.0;
        let owned = Gauge::<i64>::default();
        if let Some(count) = metrics.objects_owned.get() {
            owned.set(count() as i64);
        }
        let rows: [(&str, &str, &dyn EncodeMetric); 8] = [
            (
                "dormouse_cluster_objects_owned",
                "Objects this node owns now.",
                &owned,
            ),
            (
                "dormouse_cluster_claims",
                "Objects claimed by this node.",
                &metrics.claims,
            ),
            (
                "dormouse_cluster_restores",
                "Object databases rebuilt from the cluster database on a claim.",
                &metrics.restores,
            ),
            (
                "dormouse_cluster_forwarded_requests",
                "Requests forwarded to the node that owns their object (each attempt).",
                &metrics.forwarded,
            ),
            (
                "dormouse_cluster_undelivered_forwards",
                "Forwarded requests the other node provably did not get (routed again).",
                &metrics.undelivered,
            ),
            (
                "dormouse_cluster_fenced_commits",
                "Commits refused because another node had taken the object.",
                &metrics.fenced,
            ),
            (
                "dormouse_cluster_moved_sockets",
                "Sockets relayed by this node that moved to their object's next owner, open.",
                &metrics.moved_sockets,
            ),
            (
                "dormouse_cluster_commit_seconds",
                "Time to append one commit to the cluster database.",
                &metrics.commit_seconds,
            ),
        ];
        for (name, help, metric) in rows {
            let family = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(family)?;
        }
        Ok(())
    }
}
