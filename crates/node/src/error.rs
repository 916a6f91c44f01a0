//! [`NodeError`]: why a node could not join its cluster.

/// Failures of joining a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The cluster database could not be reached, or refused the node.
    #[error(transparent)]
    Cluster(#[from] dormouse_cluster::ClusterError),
    /// The cluster secret cannot be sent in an HTTP header.
    #[error("the cluster secret must be printable ASCII (it travels in an HTTP header)")]
    SecretNotAHeader,
    /// A flag is missing or makes no sense with the others.
    #[error("{0}")]
    Options(String),
}
