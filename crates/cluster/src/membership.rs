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
        let task = tokio::spawn(keep(url.to_owned(), session, lease, state_tx, requests));
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

    /// The incarnation whose lease the node holds now by its own clock, if any: the check of
    /// every delivery to an object, so it neither allocates nor waits.
    pub fn holding(&self) -> Option<i64> {
        match &*self.state.borrow() {
            MemberState::Member(lease) if lease.holds_at(Instant::now()) => {
                Some(lease.incarnation())
            }
            _ => None,
        }
    }

    /// Ends the membership: stops renewing and deletes the node's row, so that its objects (it
    /// released them first) are not waited for. A node that cannot reach the database just
    /// stops; its lease lapses.
    pub async fn leave(&self, url: &str) {
        self.task.abort();
        let lease = match &*self.state.borrow() {
            MemberState::Member(lease) => Some(lease.clone()),
            MemberState::Lapsed { .. } => None,
        };
        let Some(lease) = lease else {
            return;
        };
        let limit = lease.settings().renew_every();
        let leave = async {
            let mut session = Session::connect(url).await?;
            session.deregister(&lease).await
        };
        match bounded("leaving the cluster", limit, leave).await {
            Ok(()) => tracing::info!(node = lease.node(), "left the cluster"),
            Err(error) => tracing::warn!(%error, "leaving the cluster failed; the lease lapses"),
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

/// Where the renewing task stands.
enum Standing {
    /// It holds this lease and renews it.
    Holding(NodeLease),
    /// It lost this lease and registers again: never renews it, so that the objects announced
    /// lost stay lost.
    Lost(NodeLease),
}

/// The renewing task: a renewal per tick (or per [`Membership::renew_now`]); after a loss, a new
/// registration per tick until one succeeds. Its session is opened again if its connection ended.
async fn keep(
    url: String,
    mut session: Session,
    lease: NodeLease,
    state: watch::Sender<MemberState>,
    mut requests: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let every = lease.settings().renew_every();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut standing = Standing::Holding(lease);
    loop {
        let done = tokio::select! {
            _ = ticks.tick() => None,
            request = requests.recv() => match request {
                Some(done) => Some(done),
                None => return,
            },
        };
        if session.is_closed() {
            match bounded("reconnecting", every, Session::connect(&url)).await {
                Ok(fresh) => session = fresh,
                Err(error) => tracing::warn!(%error, "cluster database unreachable"),
            }
        }
        standing = match standing {
            Standing::Holding(mut lease) => {
                match bounded("renewing the lease", every, session.renew(&mut lease)).await {
                    Ok(()) => {
                        state.send_replace(MemberState::Member(lease.clone()));
                        Standing::Holding(lease)
                    }
                    Err(error) => match after_failure(&error, &lease, Instant::now()) {
                        AfterFailure::Retry => {
                            tracing::warn!(%error, node = lease.node(), "lease renewal failed; retrying");
                            Standing::Holding(lease)
                        }
                        AfterFailure::Lapse => {
                            tracing::error!(%error, node = lease.node(), incarnation = lease.incarnation(), "lease lost: every object must be dropped");
                            state.send_replace(MemberState::Lapsed {
                                incarnation: lease.incarnation(),
                                why: error.to_string(),
                            });
                            Standing::Lost(lease)
                        }
                    },
                }
            }
            lost @ Standing::Lost(_) => lost,
        };
        if let Standing::Lost(old) = &standing {
            let register = session.register(old.node(), old.addr(), *old.settings());
            match bounded("registering", every, register).await {
                Ok(fresh) => {
                    state.send_replace(MemberState::Member(fresh.clone()));
                    standing = Standing::Holding(fresh);
                }
                Err(error) => tracing::warn!(%error, "registering again failed; retrying"),
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// Runs `work`, failing with [`ClusterError::TimedOut`] if it takes longer than `limit`: a
/// database that does not answer within one renewal interval counts as not answering.
async fn bounded<T>(
    operation: &'static str,
    limit: std::time::Duration,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(ClusterError::TimedOut {
            operation,
            after: limit,
        }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A membership whose state is `state`, kept by a task that only holds the state's sender.
    fn membership_in(state: MemberState) -> Membership {
        let (sender, state) = watch::channel(state);
        let (renew_now, _) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            let _sender = sender;
            std::future::pending::<()>().await
        });
        Membership {
            state,
            renew_now,
            task,
        }
    }

    #[tokio::test]
    async fn a_lease_past_its_local_deadline_is_not_offered() {
        let lease = lease_sent_at(Instant::now()).past_its_deadline();
        let stale = membership_in(MemberState::Member(lease));
        assert!(matches!(stale.state(), MemberState::Member(_)));
        assert_eq!(
            stale.lease(),
            None,
            "not renewed in time: the node owns nothing"
        );
        let fresh = membership_in(MemberState::Member(lease_sent_at(Instant::now())));
        assert!(fresh.lease().is_some());
    }

    #[tokio::test]
    async fn dropping_the_membership_stops_its_task() {
        let membership = membership_in(MemberState::Member(lease_sent_at(Instant::now())));
        let mut changes = membership.watch();
        drop(membership);
        let ended = tokio::time::timeout(Duration::from_secs(10), changes.changed()).await;
        assert!(
            matches!(ended, Ok(Err(_))),
            "the task, and the state's sender with it, are gone"
        );
    }

    fn lease_sent_at(sent: Instant) -> NodeLease {
        NodeLease::for_tests("a", 1, sent)
    }

    #[test]
    fn a_failed_renewal_is_retried_until_the_local_deadline() {
        let sent = Instant::now();
        let lease = lease_sent_at(sent);
        let unreachable = ClusterError::TimedOut {
            operation: "renewing the lease",
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
