//! Which node owns each object, under which epoch. A claim gives an object to the claiming node
//! only if no live node owns it, and bumps its epoch: the epoch is the owner's fencing token,
//! which every commit must carry.
//!
//! Whether the recorded owner is alive is read with its node row *locked* (`FOR SHARE`, which a
//! renewal's `UPDATE` conflicts with) and the expiry tested in the select list. A filter in the
//! `WHERE` clause would be evaluated on the row version from before a renewal in flight, so a
//! claimer could see a live owner as dead; locking first makes the claim wait for the renewal and
//! read its result. Isolation levels do not help: a comparison with `clock_timestamp()` is not a
//! read of data, so serializable transactions see no conflict.

use std::fmt;

use crate::error::Result;
use crate::nodes::NodeLease;
use crate::session::Session;

/// An object, as the cluster names it: its namespace (the binding) and its 32-byte id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    /// The binding of its class.
    pub namespace: String,
    /// Its id.
    pub id: [u8; 32],
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.namespace)?;
        self.id.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// This node's ownership of an object: the token its commits carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// The object.
    pub key: ObjectKey,
    /// The epoch it was granted under; a later claim by anyone makes it stale.
    pub epoch: i64,
    /// The sequence number of its last commit.
    pub head_seq: i64,
}

/// Another node that owns an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owner's id.
    pub node: String,
    /// Where to forward the object's requests.
    pub addr: String,
    /// The epoch it owns the object under.
    pub epoch: i64,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The object is this node's (newly, or it already was).
    Granted(Ownership),
    /// A live node owns it.
    OwnedElsewhere(Owner),
}

impl Session {
    /// Claims `key` for the node of `lease`, unless a live node owns it. Fails with
    /// [`ClusterError::LeaseLapsed`](crate::ClusterError::LeaseLapsed) if the claimer's own lease
    /// has lapsed: a dead node claims nothing.
    pub async fn claim(&mut self, lease: &NodeLease, key: &ObjectKey) -> Result<Claim> {
        let grace = lease.settings().grace.as_secs_f64();
        let transaction = self.client.transaction().await?;
        // The row must exist to be locked; competing claimers queue on its lock.
        transaction
            .execute(
                "INSERT INTO dormouse_objects (namespace, object_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&key.namespace, &&key.id[..]],
            )
            .await?;
        let object = transaction
            .query_one(
                "SELECT owner_node, owner_incarnation, epoch, head_seq FROM dormouse_objects
                 WHERE namespace = $1 AND object_id = $2 FOR UPDATE",
                &[&key.namespace, &&key.id[..]],
            )
            .await?;
        let owner: Option<String> = object.get(0);
        let owner_incarnation: Option<i64> = object.get(1);
        let (epoch, head_seq): (i64, i64) = (object.get(2), object.get(3));
        if let (Some(owner), Some(incarnation)) = (owner, owner_incarnation) {
            if owner == lease.node() && incarnation == lease.incarnation() {
                transaction.commit().await?;
                return Ok(Claim::Granted(Ownership {
                    key: key.clone(),
                    epoch,
                    head_seq,
                }));
            }
            let alive = transaction
                .query_opt(
                    "SELECT lease_expires + make_interval(secs => $3) > clock_timestamp(), addr
                     FROM dormouse_nodes WHERE node_id = $1 AND incarnation = $2 FOR SHARE",
                    &[&owner, &incarnation, &grace],
                )
                .await?;
            if let Some(row) = alive
                && row.get::<_, bool>(0)
            {
                transaction.commit().await?;
                return Ok(Claim::OwnedElsewhere(Owner {
                    node: owner,
                    addr: row.get(1),
                    epoch,
                }));
            }
        }
        let claimer_alive = transaction
            .query_opt(
                "SELECT lease_expires > clock_timestamp() FROM dormouse_nodes
                 WHERE node_id = $1 AND incarnation = $2 FOR SHARE",
                &[&lease.node(), &lease.incarnation()],
            )
            .await?
            .is_some_and(|row| row.get::<_, bool>(0));
        if !claimer_alive {
            return Err(lease.lapsed());
        }
        let granted = transaction
            .query_one(
                "UPDATE dormouse_objects
                 SET owner_node = $3, owner_incarnation = $4, epoch = epoch + 1
                 WHERE namespace = $1 AND object_id = $2 RETURNING epoch",
                &[
                    &key.namespace,
                    &&key.id[..],
                    &lease.node(),
                    &lease.incarnation(),
                ],
            )
            .await?;
        transaction.commit().await?;
        let epoch = granted.get(0);
        tracing::debug!(object = %key, epoch, "object claimed");
        Ok(Claim::Granted(Ownership {
            key: key.clone(),
            epoch,
            head_seq,
        }))
    }

    /// Gives the object up (it went idle, or the node drains): the next claimer need not wait
    /// for this node's lease to lapse. False if it was no longer this node's under that epoch.
    pub async fn release(&mut self, lease: &NodeLease, ownership: &Ownership) -> Result<bool> {
        let released = self
            .client
            .execute(
                "UPDATE dormouse_objects SET owner_node = NULL, owner_incarnation = NULL
                 WHERE namespace = $1 AND object_id = $2 AND epoch = $3
                   AND owner_node = $4 AND owner_incarnation = $5",
                &[
                    &ownership.key.namespace,
                    &&ownership.key.id[..],
                    &ownership.epoch,
                    &lease.node(),
                    &lease.incarnation(),
                ],
            )
            .await?;
        Ok(released == 1)
    }

    /// The live owner of `key`, if it has one, as a node routing a request sees it: an owner whose
    /// lease lapsed more than `grace` ago is no owner.
    pub async fn owner(
        &mut self,
        key: &ObjectKey,
        grace: std::time::Duration,
    ) -> Result<Option<Owner>> {
        let row = self
            .client
            .query_opt(
                "SELECT o.owner_node, n.addr, o.epoch FROM dormouse_objects o
                 JOIN dormouse_nodes n
                   ON n.node_id = o.owner_node AND n.incarnation = o.owner_incarnation
                 WHERE o.namespace = $1 AND o.object_id = $2
                   AND n.lease_expires + make_interval(secs => $3) > clock_timestamp()",
                &[&key.namespace, &&key.id[..], &grace.as_secs_f64()],
            )
            .await?;
        Ok(row.map(|row| Owner {
            node: row.get(0),
            addr: row.get(1),
            epoch: row.get(2),
        }))
    }
}
