//! Commits of the objects this node owns, shipped to the cluster: each one appended to the
//! object's log under the epoch of the claim before the turns' output leaves, and the log folded
//! into a page image every so often.

use std::sync::atomic::Ordering;
use std::time::Instant;

use dormouse_cluster::{ClusterError, Ownership};
use dormouse_runtime::placement::{PlacedObject, PlacementError};

use crate::Fencing;
use crate::placement::{ClusterPlacement, RESTORE_LIMIT, Standing, unavailable};

/// Commits appended between two compactions of an object's log: keeps a restore to the page
/// image and at most this many commits after it.
const COMPACT_EVERY: i64 = 64;

impl ClusterPlacement {
    pub(crate) async fn ship_now(&self, object: PlacedObject) -> Result<(), PlacementError> {
        let Some(entry) = self.entry(&object.binding, &object.id) else {
            return Err(PlacementError::Lost("this node never claimed it".into()));
        };
        let mut standing = entry.standing.lock().await;
        let Standing::Owned {
            ownership,
            cursor,
            incarnation,
            compacted,
        } = &mut *standing
        else {
            return Err(PlacementError::Lost("this node does not own it".into()));
        };
        if self.fencing == Fencing::Enforced && self.membership.holding() != Some(*incarnation) {
            entry.held_by.store(0, Ordering::Relaxed);
            *standing = Standing::Unclaimed { local_head: None };
            return Err(PlacementError::Lost("this node's lease lapsed".into()));
        }
        let Some(mut reading) = cursor.take() else {
            return Ok(());
        };
        let read = tokio::task::spawn_blocking(move || {
            let commits = reading.read_commits();
            (reading, commits)
        })
        .await;
        let commits = match read {
            Ok((reading, commits)) => {
                *cursor = Some(reading);
                commits
            }
            Err(panic) => Err(dormouse_storage::StorageError::CorruptCommit(format!(
                "reading the log panicked: {panic}"
            ))),
        };
        let result = match commits {
            Ok(commits) => self.append(ownership, &commits).await,
            Err(error) => Err(ClusterError::Storage(error)),
        };
        // A node whose lease lapsed while it committed (it was paused, or cut off) may have been
        // replaced: what it committed is durable or fenced, but it acknowledges nothing more.
        if result.is_ok()
            && self.fencing == Fencing::Enforced
            && self.membership.holding() != Some(*incarnation)
        {
            entry.held_by.store(0, Ordering::Relaxed);
            *standing = Standing::Unclaimed { local_head: None };
            return Err(PlacementError::Lost(
                "this node's lease lapsed while it committed".into(),
            ));
        }
        match result {
            Ok(()) => {
                if ownership.head_seq - *compacted >= COMPACT_EVERY {
                    *compacted = ownership.head_seq;
                    self.compact(ownership.clone());
                }
                Ok(())
            }
            Err(error) => {
                // The local file is ahead of the cluster (or another node's): the next claim
                // restores it.
                entry.held_by.store(0, Ordering::Relaxed);
                *standing = Standing::Unclaimed { local_head: None };
                if error.is_fenced() {
                    self.metrics.fenced.inc();
                    tracing::warn!(object = %entry.key, %error, "commit fenced: another node owns the object");
                    Err(PlacementError::Lost(error.to_string()))
                } else {
                    Err(unavailable(error))
                }
            }
        }
    }

    async fn append(
        &self,
        ownership: &mut Ownership,
        commits: &[dormouse_storage::CommitPages],
    ) -> Result<(), ClusterError> {
        for commit in commits {
            let frames = commit.encode();
            let started = Instant::now();
            let fencing = self.fencing;
            self.pool
                .run(
                    "committing",
                    self.operation_limit,
                    async |session| match fencing {
                        Fencing::Enforced => session.append(ownership, &frames).await,
                        Fencing::Off => session.append_unfenced(ownership, &frames).await,
                    },
                )
                .await?;
            self.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Folds the object's log into its page image, apart from its commits.
    fn compact(&self, ownership: Ownership) {
        let pool = self.pool.clone();
        let limit = RESTORE_LIMIT;
        tokio::spawn(async move {
            let through = ownership.head_seq;
            let result = pool
                .run("compacting an object's log", limit, async |session| {
                    session.compact(&ownership, through).await
                })
                .await;
            match result {
                Ok(folded) => tracing::debug!(object = %ownership.key, folded, "log compacted"),
                Err(error) => {
                    tracing::warn!(object = %ownership.key, %error, "compaction failed; tried again later")
                }
            }
        });
    }
}
