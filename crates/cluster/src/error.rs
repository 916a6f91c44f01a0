//! [`ClusterError`]: what can go wrong between a node and the cluster database.

/// An error of cluster mode.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the cluster database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    /// A statement failed.
    #[error("cluster database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The database holds a schema written by a newer Dormouse.
    #[error(
        "the cluster database's schema is version {found}, newer than this binary knows ({known}): upgrade this node"
    )]
    SchemaTooNew {
        /// The version found.
        found: i32,
        /// The newest version this binary writes.
        known: i32,
    },
    /// This node's lease lapsed: the cluster may have given its objects to others. It owns
    /// nothing any more and must register again, as a new incarnation.
    #[error("the lease of node {node} (incarnation {incarnation}) has lapsed: it owns nothing")]
    LeaseLapsed {
        /// The node.
        node: String,
        /// Its incarnation whose lease lapsed.
        incarnation: i64,
    },
    /// The database did not answer in time.
    #[error("{operation} took longer than {after:?}")]
    TimedOut {
        /// What was being done.
        operation: &'static str,
        /// How long it was given.
        after: std::time::Duration,
    },
    /// A row of the cluster database does not hold what this binary wrote there.
    #[error("the cluster database holds a malformed {0}")]
    CorruptRow(&'static str),
    /// An object's database could not be read for shipping or rebuilt from its commits.
    #[error("object storage: {0}")]
    Storage(#[source] dormouse_storage::StorageError),
    /// Rebuilding an object's database stopped unexpectedly.
    #[error("restoring an object's database failed: {0}")]
    Restore(String),
    /// A commit was refused: the object is no longer owned under this epoch (another node
    /// claimed it), or the commit does not follow the last one.
    #[error("commit fenced: {object} is no longer owned under epoch {epoch} at commit {head}")]
    Fenced {
        /// The object.
        object: String,
        /// The epoch the commit was made under.
        epoch: i64,
        /// The commit it was meant to follow.
        head: i64,
    },
}

impl ClusterError {
    /// Whether the error means the node lost the object (or all its objects) and must drop it.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            ClusterError::Fenced { .. } | ClusterError::LeaseLapsed { .. }
        )
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, ClusterError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lost_object_or_lease_means_dropping_it() {
        let fenced = ClusterError::Fenced {
            object: "COUNTER/00".into(),
            epoch: 1,
            head: 3,
        };
        let lapsed = ClusterError::LeaseLapsed {
            node: "a".into(),
            incarnation: 1,
        };
        let slow = ClusterError::TimedOut {
            operation: "renewing the lease",
            after: std::time::Duration::from_secs(2),
        };
        let newer = ClusterError::SchemaTooNew { found: 3, known: 2 };
        assert!(fenced.is_fenced() && lapsed.is_fenced());
        assert!(!slow.is_fenced() && !newer.is_fenced());
        assert_eq!(
            fenced.to_string(),
            "commit fenced: COUNTER/00 is no longer owned under epoch 1 at commit 3"
        );
    }
}
