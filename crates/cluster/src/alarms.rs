//! Alarms across the cluster. The owner of an object keeps its alarm in the cluster database
//! (fenced by its epoch, like a commit) and fires it itself. An alarm whose object no live node
//! owns is found by any node that looks for due alarms, which then claims the object: the claim
//! decides which node fires it, so it fires once, wherever.

use std::time::Duration;

use crate::error::{ClusterError, Result};
use crate::ownership::{ObjectKey, Ownership};
use crate::session::Session;

/// A due alarm of an object that no live node owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanAlarm {
    /// The object.
    pub key: ObjectKey,
    /// When it was set for, in milliseconds since the epoch.
    pub scheduled_ms: i64,
}

impl Session {
    /// Sets the object's alarm to `at_ms` (milliseconds since the epoch), or deletes it with
    /// `None`. Fails with [`ClusterError::Fenced`] if the object is not owned under
    /// `ownership.epoch`.
    pub async fn set_alarm(&mut self, ownership: &Ownership, at_ms: Option<i64>) -> Result<()> {
        let key = &ownership.key;
        let transaction = self.client.transaction().await?;
        let owned = transaction
            .query_opt(
                "SELECT 1 FROM dormouse_objects
                 WHERE namespace = $1 AND object_id = $2 AND epoch = $3 FOR SHARE",
                &[&key.namespace, &&key.id[..], &ownership.epoch],
            )
            .await?;
        if owned.is_none() {
            return Err(ClusterError::Fenced {
                object: key.to_string(),
                epoch: ownership.epoch,
                head: ownership.head_seq,
            });
        }
        match at_ms {
            Some(at_ms) => {
                transaction
                    .execute(
                        "INSERT INTO dormouse_alarms (namespace, object_id, fire_at)
                         VALUES ($1, $2, to_timestamp($3::float8 / 1000))
                         ON CONFLICT (namespace, object_id) DO UPDATE SET fire_at = EXCLUDED.fire_at",
                        &[&key.namespace, &&key.id[..], &(at_ms as f64)],
                    )
                    .await?;
            }
            None => {
                transaction
                    .execute(
                        "DELETE FROM dormouse_alarms WHERE namespace = $1 AND object_id = $2",
                        &[&key.namespace, &&key.id[..]],
                    )
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The alarm the cluster keeps for `key`, in milliseconds since the epoch.
    pub async fn alarm(&mut self, key: &ObjectKey) -> Result<Option<i64>> {
        let row = self
            .client
            .query_opt(
                "SELECT (extract(epoch FROM fire_at) * 1000)::bigint FROM dormouse_alarms
                 WHERE namespace = $1 AND object_id = $2",
                &[&key.namespace, &&key.id[..]],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Up to `limit` alarms due by the database's clock whose objects have no live owner (an
    /// owner whose lease lapsed more than `grace` ago is none), oldest first. Nodes looking at
    /// once skip each other's rows rather than wait; whichever then claims the object fires it.
    pub async fn orphan_alarms(&mut self, grace: Duration, limit: i64) -> Result<Vec<OrphanAlarm>> {
        let rows = self
            .client
            .query(
                "SELECT a.namespace, a.object_id,
                        (extract(epoch FROM a.fire_at) * 1000)::bigint
                 FROM dormouse_alarms a
                 LEFT JOIN dormouse_objects o
                   ON o.namespace = a.namespace AND o.object_id = a.object_id
                 LEFT JOIN dormouse_nodes n
                   ON n.node_id = o.owner_node AND n.incarnation = o.owner_incarnation
                  AND n.lease_expires + make_interval(secs => $1) > clock_timestamp()
                 WHERE a.fire_at <= clock_timestamp() AND n.node_id IS NULL
                 ORDER BY a.fire_at LIMIT $2
                 FOR UPDATE OF a SKIP LOCKED",
                &[&grace.as_secs_f64(), &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let id: Vec<u8> = row.get(1);
                Ok(OrphanAlarm {
                    key: ObjectKey {
                        namespace: row.get(0),
                        id: id
                            .try_into()
                            .map_err(|_| ClusterError::CorruptRow("object id"))?,
                    },
                    scheduled_ms: row.get(2),
                })
            })
            .collect()
    }
}
