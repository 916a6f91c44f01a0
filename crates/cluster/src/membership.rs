//! [`Membership`]: a node's place in the cluster, kept up by a task of its own on a session of
//! its own (so that renewals never queue behind object work): it registers, renews every
//! [`LeaseSettings::renew_every`], and says when the node must stop acting as an owner.
//!
//! A lease is lost in two ways: the database says so (a renewal updates nothing), or the node
//! cannot reach it before its local deadline. Either way the node is [`MemberState::Lapsed`]: it
//! must drop every object it owns at once. It then registers again as a new incarnation, which
//! owns nothing, so old ownership is never resurrected.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{ClusterError, Result};
use crate::nodes::{LeaseSettings, NodeLease};
use crate::session::Session;

/// Where a node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// It holds this lease: it may own objects under it.
    Member(NodeLease),
    /// Its lease is lost: it owns nothing and is registering again.
    Lapsed {
        /// The incarnation whose lease was lost.
        incarnation: i64,
        /// Why, in words, for the log and the inspector.
        why: String,
    },
}

/// What to do after a renewal that did not succeed.
#[derive(Debug, PartialEq, Eq)]
enum AfterFailure {
    /// The lease may still hold: try again at the next tick.
    Retry,
    /// The lease is gone: drop everything, register again.
    Lapse,
}

fn after_failure(error: &ClusterError, lease: &NodeLease, now: Instant) -> AfterFailure {
    match error {
        ClusterError::LeaseLapsed { .. } => AfterFailure::Lapse,
        _ if !lease.holds_at(now) => AfterFailure::Lapse,
        _ => AfterFailure::Retry,
    }
}

/// A node's membership, renewed by its own task until dropped.
#[derive(Debug)]
pub struct Membership {
    state: watch::Receiver<MemberState>,
    renew_now: mpsc::Sender<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Membership {
    /// Connects, registers `node` (reachable at `addr`) and starts renewing.
    pub async fn start(
        url: &str,
        node: &str,
        addr: &str,
        settings: LeaseSettings,
    ) -> Result<Membership> {
        let mut session = Session::connect(url).await?;
        let lease = session.register(node, addr, settings).await?;
        let (state_tx, state) = watch::channel(MemberState::Member(lease.clone()));
        let (renew_now, requests) = mpsc::channel(4);
        let task = tokio::spawn(keep(session, lease, state_tx, requests));
        Ok(Membership {
            state,
            renew_now,
            task,
        })
    }

    /// Where the node stands now.
    pub fn state(&self) -> MemberState {
        self.state.borrow().clone()
    }

    /// Changes of where the node stands, for the object host to drop its objects on a lapse. A
    /// lapse shows as [`MemberState::Lapsed`] or, when the node registered again before the
    /// observer looked, as a member of a new incarnation: either way, whatever was owned under
    /// the old incarnation is gone.
    pub fn watch(&self) -> watch::Receiver<MemberState> {
        self.state.clone()
    }

    /// The lease, if the node holds one and it still holds by the node's own clock.
    pub fn lease(&self) -> Option<NodeLease> {
        match &*self.state.borrow() {
            MemberState::Member(lease) if lease.holds_at(Instant::now()) => Some(lease.clone()),
            _ => None,
        }
    }

    /// Renews at once, rather than at the next tick, and returns when that renewal (and the
    /// registration after a lapse) is done.
    pub async fn renew_now(&self) {
        let (done, finished) = oneshot::channel();
        if self.renew_now.send(done).await.is_ok() {
            let _ = finished.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The renewing task.
async fn keep(
    mut session: Session,
    mut lease: NodeLease,
    state: watch::Sender<MemberState>,
    mut requests: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let every = lease.settings().renew_every();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let done = tokio::select! {
            _ = ticks.tick() => None,
            request = requests.recv() => match request {
                Some(done) => Some(done),
                None => return,
            },
        };
        // A renewal that takes longer than the interval is as good as failed.
        let renewed = match tokio::time::timeout(every, session.renew(&mut lease)).await {
            Ok(result) => result,
            Err(_) => Err(ClusterError::RenewalTimedOut { after: every }),
        };
        match renewed {
            Ok(()) => {
                state.send_replace(MemberState::Member(lease.clone()));
            }
            Err(error) => match after_failure(&error, &lease, Instant::now()) {
                AfterFailure::Retry => {
                    tracing::warn!(%error, node = lease.node(), "lease renewal failed; retrying");
                }
                AfterFailure::Lapse => {
                    tracing::error!(%error, node = lease.node(), incarnation = lease.incarnation(), "lease lost: dropping every object");
                    state.send_replace(MemberState::Lapsed {
                        incarnation: lease.incarnation(),
                        why: error.to_string(),
                    });
                    match session
                        .register(lease.node(), lease.addr(), *lease.settings())
                        .await
                    {
                        Ok(fresh) => {
                            lease = fresh;
                            state.send_replace(MemberState::Member(lease.clone()));
                        }
                        Err(error) => {
                            tracing::warn!(%error, "registering again failed; retrying");
                        }
                    }
                }
            },
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn lease_sent_at(sent: Instant) -> NodeLease {
        NodeLease::for_tests("a", 1, sent)
    }

    #[test]
    fn a_failed_renewal_is_retried_until_the_local_deadline() {
        let sent = Instant::now();
        let lease = lease_sent_at(sent);
        let unreachable = ClusterError::RenewalTimedOut {
            after: Duration::from_secs(2),
        };
        assert_eq!(
            after_failure(&unreachable, &lease, sent + Duration::from_secs(1)),
            AfterFailure::Retry
        );
        assert_eq!(
            after_failure(&unreachable, &lease, sent + Duration::from_secs(8)),
            AfterFailure::Lapse
        );
        let lapsed = lease.lapsed();
        assert_eq!(after_failure(&lapsed, &lease, sent), AfterFailure::Lapse);
    }
}
