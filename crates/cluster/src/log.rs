//! Each object's commit log in the database. A commit is appended only under the epoch its
//! owner was granted and right after the commit it follows: a node that lost the object (it
//! paused, or was cut off, and another claimed it) cannot append, so nothing it acknowledges
//! afterwards can exist. The turn's output waits for the append: the output gate, across the
//! network.

use crate::error::{ClusterError, Result};
use crate::ownership::{ObjectKey, Ownership};
use crate::session::Session;

/// One commit of an object, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCommit {
    /// Its place in the object's log, from 1.
    pub seq: i64,
    /// The epoch of the owner that wrote it.
    pub epoch: i64,
    /// What the commit changed (the pages of the object's database it wrote).
    pub frames: Vec<u8>,
}

/// Writes commit `seq` of the object, made under `ownership.epoch`, into its log.
async fn insert_commit(
    transaction: &tokio_postgres::Transaction<'_>,
    ownership: &Ownership,
    seq: i64,
    frames: &[u8],
) -> Result<()> {
    let key = &ownership.key;
    transaction
        .execute(
            "INSERT INTO dormouse_object_log (namespace, object_id, seq, epoch, frames)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &key.namespace,
                &&key.id[..],
                &seq,
                &ownership.epoch,
                &frames,
            ],
        )
        .await?;
    Ok(())
}

impl Session {
    /// Appends a commit of `frames` after the owner's last one; on success `ownership.head_seq`
    /// is the new commit's. Fails with [`ClusterError::Fenced`] when the object is no longer
    /// owned under `ownership.epoch` or its log has moved past `ownership.head_seq`: the object
    /// must then be dropped, its waiting output discarded.
    pub async fn append(&mut self, ownership: &mut Ownership, frames: &[u8]) -> Result<i64> {
        let key = &ownership.key;
        let transaction = self.client.transaction().await?;
        let advanced = transaction
            .execute(
                "UPDATE dormouse_objects SET head_seq = head_seq + 1
                 WHERE namespace = $1 AND object_id = $2 AND epoch = $3 AND head_seq = $4",
                &[
                    &key.namespace,
                    &&key.id[..],
                    &ownership.epoch,
                    &ownership.head_seq,
                ],
            )
            .await?;
        if advanced == 0 {
            return Err(ClusterError::Fenced {
                object: key.to_string(),
                epoch: ownership.epoch,
                head: ownership.head_seq,
            });
        }
        let seq = ownership.head_seq + 1;
        insert_commit(&transaction, ownership, seq, frames).await?;
        transaction.commit().await?;
        ownership.head_seq = seq;
        Ok(seq)
    }

    /// [`append`](Self::append) without the checks that fence a node that lost the object: the
    /// commit goes after whatever is the object's last. Only for the test that proves the fault
    /// checker catches the double activations this lets through; it loses acknowledged writes.
    #[doc(hidden)]
    pub async fn append_unfenced(
        &mut self,
        ownership: &mut Ownership,
        frames: &[u8],
    ) -> Result<i64> {
        let key = &ownership.key;
        let transaction = self.client.transaction().await?;
        let row = transaction
            .query_one(
                "UPDATE dormouse_objects SET head_seq = head_seq + 1
                 WHERE namespace = $1 AND object_id = $2 RETURNING head_seq",
                &[&key.namespace, &&key.id[..]],
            )
            .await?;
        let seq: i64 = row.get(0);
        insert_commit(&transaction, ownership, seq, frames).await?;
        transaction.commit().await?;
        ownership.head_seq = seq;
        Ok(seq)
    }

    /// The object's commits after `seq`, in order: what a new owner replays.
    pub async fn commits_after(&mut self, key: &ObjectKey, seq: i64) -> Result<Vec<LoggedCommit>> {
        let rows = self
            .client
            .query(
                "SELECT seq, epoch, frames FROM dormouse_object_log
                 WHERE namespace = $1 AND object_id = $2 AND seq > $3 ORDER BY seq",
                &[&key.namespace, &&key.id[..], &seq],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| LoggedCommit {
                seq: row.get(0),
                epoch: row.get(1),
                frames: row.get(2),
            })
            .collect())
    }
}
