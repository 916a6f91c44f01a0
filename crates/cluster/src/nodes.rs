//! Node leases: a node registers as a new incarnation and renews its lease; every time is read
//! from the database's clock, never from a node's. A node also keeps a local deadline on its own
//! monotonic clock, counted from when its last successful renewal was *sent*: past it, the node
//! stops serving its objects even if the database cannot be reached, and it does so before the
//! database could think the lease lapsed.

use std::time::{Duration, Instant};

use crate::error::{ClusterError, Result};
use crate::session::Session;

/// How long leases last and how much slack each side allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// How long a renewal keeps a node alive in the database.
    pub ttl: Duration,
    /// How long past its expiry a node's objects stay its own before another may claim them:
    /// covers a renewal that was delayed, not lost.
    pub grace: Duration,
    /// How much earlier than the database the node gives up on its own lease: covers the drift
    /// between the two clocks and the time a renewal takes to arrive.
    pub margin: Duration,
}

impl Default for LeaseSettings {
    /// A lease of 10 s renewed every 2 s: an owner that dies is replaced about 12 s later.
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::from_secs(10),
            grace: Duration::from_secs(2),
            margin: Duration::from_secs(2),
        }
    }
}

impl LeaseSettings {
    /// A lease of `ttl`, with a grace and a margin of a fifth of it each: an owner that dies is
    /// replaced at most 1.2 × `ttl` later (7.2 s at the nodes' default of 6 s).
    pub fn with_ttl(ttl: Duration) -> Self {
        LeaseSettings {
            ttl,
            grace: ttl / 5,
            margin: ttl / 5,
        }
    }

    /// How often a node renews: five times per lease, so that one or two lost renewals do not
    /// cost it its objects.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 5
    }
}

/// A node's registration: who it is, and until when it may act on its own lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLease {
    node: String,
    incarnation: i64,
    addr: String,
    settings: LeaseSettings,
    holds_until: Instant,
}

impl NodeLease {
    /// The node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// This registration's incarnation; a restarted node is a new one, owning nothing.
    pub fn incarnation(&self) -> i64 {
        self.incarnation
    }

    /// Where peers reach the node.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Its settings.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// Whether the node may still act as the owner of its objects at `now`, by its own clock.
    pub fn holds_at(&self, now: Instant) -> bool {
        now < self.holds_until
    }

    fn held_from(&mut self, sent: Instant) {
        self.holds_until = sent + self.settings.ttl.saturating_sub(self.settings.margin);
    }

    /// A lease of node `node` renewed at `sent`, with the default settings.
    #[cfg(test)]
    pub(crate) fn for_tests(node: &str, incarnation: i64, sent: Instant) -> NodeLease {
        let mut lease = NodeLease {
            node: node.to_owned(),
            incarnation,
            addr: "127.0.0.2:8787".to_owned(),
            settings: LeaseSettings::default(),
            holds_until: sent,
        };
        lease.held_from(sent);
        lease
    }

    /// The same lease, its local deadline reached now.
    #[cfg(test)]
    pub(crate) fn past_its_deadline(mut self) -> NodeLease {
        self.holds_until = Instant::now();
        self
    }

    pub(crate) fn lapsed(&self) -> ClusterError {
        ClusterError::LeaseLapsed {
            node: self.node.clone(),
            incarnation: self.incarnation,
        }
    }
}

impl Session {
    /// Registers `node`, reachable at `addr`, as a new incarnation with a fresh lease. Whatever an
    /// earlier incarnation of the node owned is no longer its own.
    pub async fn register(
        &mut self,
        node: &str,
        addr: &str,
        settings: LeaseSettings,
    ) -> Result<NodeLease> {
        let sent = Instant::now();
        let row = self
            .client
            .query_one(
                "INSERT INTO dormouse_nodes (node_id, incarnation, addr, lease_expires)
                 VALUES ($1, nextval('dormouse_incarnations'), $2,
                         clock_timestamp() + make_interval(secs => $3))
                 ON CONFLICT (node_id) DO UPDATE SET
                     incarnation = EXCLUDED.incarnation, addr = EXCLUDED.addr,
                     lease_expires = EXCLUDED.lease_expires, draining = false
                 RETURNING incarnation",
                &[&node, &addr, &settings.ttl.as_secs_f64()],
            )
            .await?;
        let mut lease = NodeLease {
            node: node.to_owned(),
            incarnation: row.get(0),
            addr: addr.to_owned(),
            settings,
            holds_until: sent,
        };
        lease.held_from(sent);
        tracing::info!(node, incarnation = lease.incarnation, "node registered");
        Ok(lease)
    }

    /// Renews the lease. Fails with [`ClusterError::LeaseLapsed`] if it had lapsed meanwhile (the
    /// node must drop every object and register again) or was replaced by a newer incarnation.
    pub async fn renew(&mut self, lease: &mut NodeLease) -> Result<()> {
        let sent = Instant::now();
        let renewed = self
            .client
            .execute(
                "UPDATE dormouse_nodes SET lease_expires = clock_timestamp() + make_interval(secs => $3)
                 WHERE node_id = $1 AND incarnation = $2 AND lease_expires > clock_timestamp()",
                &[&lease.node, &lease.incarnation, &lease.settings.ttl.as_secs_f64()],
            )
            .await?;
        if renewed == 0 {
            return Err(lease.lapsed());
        }
        lease.held_from(sent);
        Ok(())
    }

    /// Ends the lease at once (a drained node leaving): its objects, already released, are free,
    /// and any it still held may be claimed without waiting for the lease to lapse.
    pub async fn deregister(&mut self, lease: &NodeLease) -> Result<()> {
        self.client
            .execute(
                "DELETE FROM dormouse_nodes WHERE node_id = $1 AND incarnation = $2",
                &[&lease.node, &lease.incarnation],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_deadline_comes_a_margin_before_the_lease_ends() {
        let sent = Instant::now();
        let lease = NodeLease::for_tests("a", 1, sent);
        assert!(lease.holds_at(sent + Duration::from_millis(7_999)));
        assert!(!lease.holds_at(sent + Duration::from_secs(8)));
        assert_eq!(
            LeaseSettings::default().renew_every(),
            Duration::from_secs(2)
        );
    }
}
