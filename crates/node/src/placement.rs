//! [`ClusterPlacement`]: the runtime's placement, kept in the cluster database.
//!
//! Each object this node has dealt with has an entry. An entry is *held* while this node owns the
//! object under its current lease: deliveries go straight to the object. Otherwise the first
//! delivery claims it (one transaction: the object's row locked, its owner's lease checked) and,
//! when granted, restores its database file from the cluster before anything reads it; when a
//! live node owns it, requests are forwarded there. Each commit is appended to the object's log
//! under the epoch of the claim; an append the log refuses (fenced) means another node took the
//! object, and nothing committed since is acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dormouse_cluster::{
    Claim, ClusterError, LeaseSettings, Membership, NodeLease, ObjectKey, Ownership,
};
use dormouse_runtime::placement::{
    ForwardedUpgrade, PlacedObject, Placement, PlacementError, Route, Undelivered,
};
use dormouse_sdk::{Request, Response};
use dormouse_storage::WalCursor;
use futures_util::future::BoxFuture;

use crate::Fencing;
use crate::forward::Forwarder;
use crate::metrics::NodeMetrics;
use crate::pool::SessionPool;

/// How long a node trusts what it learnt of another node's ownership before asking again; a
/// forward that fails asks at once.
const ROUTE_CACHE: Duration = Duration::from_secs(1);

/// Longest a restore (or a compaction) may take: the whole database is read from the cluster.
pub(crate) const RESTORE_LIMIT: Duration = Duration::from_secs(60);

/// Alarms one poll hands to the runtime at most; the rest wait for the next poll.
const ORPHAN_ALARMS_PER_POLL: i64 = 64;

/// Where one object stands for this node.
pub(crate) enum Standing {
    /// Not this node's. `local_head` is the commit the local file holds when this node gave the
    /// object up cleanly: a claim at that head needs no restore.
    Unclaimed { local_head: Option<i64> },
    /// A live node owns it (as of `seen`).
    Elsewhere { peer: Arc<str>, seen: Instant },
    /// This node owns it under `incarnation`'s lease.
    Owned {
        ownership: Ownership,
        /// Where shipping got to in the object's write-ahead log.
        cursor: Option<WalCursor>,
        incarnation: i64,
        /// The last commit folded into the page image (or asked to be).
        compacted: i64,
    },
}

/// One object, as this node knows it.
pub(crate) struct Entry {
    pub(crate) key: ObjectKey,
    /// The incarnation under which this node holds the object, 0 when it does not: what every
    /// delivery checks.
    pub(crate) held_by: AtomicI64,
    /// Claims, commits and releases of the object, one at a time.
    pub(crate) standing: tokio::sync::Mutex<Standing>,
}

/// Every object this node has dealt with, by binding and id.
type Entries = HashMap<Arc<str>, HashMap<[u8; 32], Arc<Entry>>>;

/// The placement of a node in a cluster.
pub struct ClusterPlacement {
    pub(crate) membership: Membership,
    settings: LeaseSettings,
    pub(crate) pool: Arc<SessionPool>,
    pub(crate) forwarder: Forwarder,
    entries: Mutex<Entries>,
    pub(crate) metrics: Arc<NodeMetrics>,
    /// Bounds every database operation of object work.
    pub(crate) operation_limit: Duration,
    pub(crate) fencing: Fencing,
    /// This node's name in the cluster (its address).
    node: String,
}

impl std::fmt::Debug for ClusterPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPlacement")
            .field("incarnation", &self.membership.holding())
            .finish()
    }
}

impl ClusterPlacement {
    pub(crate) fn new(
        membership: Membership,
        settings: LeaseSettings,
        pool: Arc<SessionPool>,
        forwarder: Forwarder,
        metrics: Arc<NodeMetrics>,
        fencing: Fencing,
        node: String,
    ) -> ClusterPlacement {
        ClusterPlacement {
            membership,
            settings,
            pool,
            forwarder,
            entries: Mutex::default(),
            metrics,
            operation_limit: settings.ttl / 2,
            fencing,
            node,
        }
    }

    /// How long a request (or a socket) whose owner cannot be reached waits for another: long
    /// enough for a dead owner's lease to lapse and its grace to pass.
    pub(crate) fn patience(&self) -> Duration {
        self.settings.ttl + self.settings.grace * 2
    }

    /// Whether ownership is checked.
    pub(crate) fn fencing(&self) -> Fencing {
        self.fencing
    }

    /// This node's name in the cluster.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// The node's lease settings.
    pub(crate) fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// The node's membership.
    pub(crate) fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The lease, if it holds by this node's clock.
    fn lease(&self) -> Result<NodeLease, PlacementError> {
        self.membership.lease().ok_or_else(|| {
            PlacementError::Unavailable("this node holds no lease in the cluster now".into())
        })
    }

    pub(crate) fn entry(&self, binding: &str, id: &[u8; 32]) -> Option<Arc<Entry>> {
        let entries = self.entries.lock().expect("placement entries lock");
        entries.get(binding)?.get(id).cloned()
    }

    fn entry_or_new(&self, object: &PlacedObject) -> Arc<Entry> {
        let mut entries = self.entries.lock().expect("placement entries lock");
        entries
            .entry(object.binding.clone())
            .or_default()
            .entry(object.id)
            .or_insert_with(|| {
                Arc::new(Entry {
                    key: ObjectKey {
                        namespace: object.binding.to_string(),
                        id: object.id,
                    },
                    held_by: AtomicI64::new(0),
                    standing: tokio::sync::Mutex::new(Standing::Unclaimed { local_head: None }),
                })
            })
            .clone()
    }

    /// How many objects this node holds now.
    pub(crate) fn held(&self) -> usize {
        let Some(incarnation) = self.membership.holding() else {
            return 0;
        };
        let entries = self.entries.lock().expect("placement entries lock");
        entries
            .values()
            .flat_map(|objects| objects.values())
            .filter(|entry| entry.held_by.load(Ordering::Relaxed) == incarnation)
            .count()
    }

    /// Gives every object this node holds back to the cluster, for a drain: the runtime stopped
    /// them first, so that nothing is left to ship.
    pub(crate) async fn release_all(&self) {
        let all: Vec<Arc<Entry>> = {
            let entries = self.entries.lock().expect("placement entries lock");
            entries
                .values()
                .flat_map(|objects| objects.values().cloned())
                .collect()
        };
        for entry in all {
            entry.held_by.store(0, Ordering::Relaxed);
            let mut standing = entry.standing.lock().await;
            self.give_up(&entry, &mut standing).await;
        }
    }

    async fn route_now(&self, object: PlacedObject) -> Result<Route, PlacementError> {
        let entry = self.entry_or_new(&object);
        let mut standing = entry.standing.lock().await;
        let lease = self.lease()?;
        match &*standing {
            Standing::Owned { incarnation, .. }
                if *incarnation == lease.incarnation() || self.fencing == Fencing::Off =>
            {
                // Held all along (a release was asked for and has not run): take it back.
                entry.held_by.store(*incarnation, Ordering::Relaxed);
                return Ok(Route::Here);
            }
            Standing::Elsewhere { peer, seen } if seen.elapsed() < ROUTE_CACHE => {
                return Ok(Route::Peer(peer.clone()));
            }
            _ => {}
        }
        let local_head = match &*standing {
            Standing::Unclaimed { local_head } => *local_head,
            _ => None,
        };
        let key = &entry.key;
        let claim = self
            .pool
            .run(
                "claiming an object",
                self.operation_limit,
                async |session| session.claim(&lease, key).await,
            )
            .await
            .map_err(unavailable)?;
        let ownership = match claim {
            Claim::OwnedElsewhere(owner) => {
                let peer: Arc<str> = owner.addr.into();
                *standing = Standing::Elsewhere {
                    peer: peer.clone(),
                    seen: Instant::now(),
                };
                return Ok(Route::Peer(peer));
            }
            Claim::Granted(ownership) => ownership,
        };
        self.metrics.claims.inc();
        if let Some(database) = &object.database
            && local_head != Some(ownership.head_seq)
        {
            self.restore(key, database, ownership.head_seq).await?;
        }
        let alarm_ms = self
            .pool
            .run("reading an alarm", self.operation_limit, async |session| {
                session.alarm(key).await
            })
            .await
            .map_err(unavailable)?;
        tracing::debug!(object = %key, epoch = ownership.epoch, head = ownership.head_seq, "object claimed");
        *standing = Standing::Owned {
            compacted: ownership.head_seq,
            cursor: object.database.as_deref().map(WalCursor::for_database),
            ownership,
            incarnation: lease.incarnation(),
        };
        entry.held_by.store(lease.incarnation(), Ordering::Relaxed);
        Ok(Route::Claimed { alarm_ms })
    }

    /// Rebuilds the object's file from the cluster, which must give commit `head`.
    async fn restore(
        &self,
        key: &ObjectKey,
        database: &std::path::Path,
        head: i64,
    ) -> Result<(), PlacementError> {
        let restored = self
            .pool
            .run("restoring an object", RESTORE_LIMIT, async |session| {
                session.restore(key, database).await
            })
            .await
            .map_err(unavailable)?;
        self.metrics.restores.inc();
        if restored != head {
            return Err(PlacementError::Unavailable(format!(
                "restoring {key} read up to commit {restored}, but its head is commit {head}"
            )));
        }
        Ok(())
    }

    /// Releases the object in the cluster if this node holds it; it stands unclaimed after.
    async fn give_up(&self, entry: &Entry, standing: &mut Standing) {
        let Standing::Owned {
            ownership,
            incarnation,
            ..
        } = &*standing
        else {
            return;
        };
        let head = ownership.head_seq;
        let local_head = match self.membership.lease() {
            Some(lease) if lease.incarnation() == *incarnation => {
                let released = self
                    .pool
                    .run(
                        "releasing an object",
                        self.operation_limit,
                        async |session| session.release(&lease, ownership).await,
                    )
                    .await;
                match released {
                    Ok(_) => Some(head),
                    Err(error) => {
                        tracing::warn!(object = %entry.key, %error, "release failed; the object is free once the lease lapses");
                        None
                    }
                }
            }
            _ => None,
        };
        *standing = Standing::Unclaimed { local_head };
    }
}

/// The runtime's handle on the placement.
#[derive(Debug, Clone)]
pub(crate) struct Handle(pub(crate) Arc<ClusterPlacement>);

impl Placement for Handle {
    fn node(&self) -> &str {
        &self.0.node
    }

    fn is_here(&self, binding: &str, id: &[u8; 32]) -> bool {
        let Some(entry) = self.0.entry(binding, id) else {
            return false;
        };
        let held_by = entry.held_by.load(Ordering::Relaxed);
        held_by != 0
            && (self.0.fencing == Fencing::Off || self.0.membership.holding() == Some(held_by))
    }

    fn route(&self, object: PlacedObject) -> BoxFuture<'static, Result<Route, PlacementError>> {
        let this = self.0.clone();
        Box::pin(async move { this.route_now(object).await })
    }

    fn forward(
        &self,
        peer: Arc<str>,
        object: PlacedObject,
        request: Request,
    ) -> BoxFuture<'static, Result<dormouse_sdk::Result<Response>, Undelivered>> {
        let this = self.0.clone();
        Box::pin(async move {
            this.metrics.forwarded.inc();
            let extensions = request
                .headers()
                .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
                .cloned();
            let mut result = this.forwarder.send(&peer, &object, request).await;
            match &mut result {
                Err(_) => {
                    this.metrics.undelivered.inc();
                    this.forget_route(&object).await;
                }
                Ok(Ok(response)) => {
                    // A WebSocket the owner accepted moves with its object.
                    let upgrade = response.extensions_mut().remove::<ForwardedUpgrade>();
                    if let Some(connection) = upgrade.and_then(|upgrade| upgrade.take()) {
                        let readopt = this.readopter(object.clone(), extensions);
                        response
                            .extensions_mut()
                            .insert(ForwardedUpgrade::new(connection, Some(readopt)));
                    }
                }
                Ok(Err(_)) => {}
            }
            result
        })
    }

    fn forward_patience(&self) -> Duration {
        self.0.patience()
    }

    fn ship(&self, object: PlacedObject) -> BoxFuture<'static, Result<(), PlacementError>> {
        let this = self.0.clone();
        Box::pin(async move { this.ship_now(object).await })
    }

    fn alarm_changed(&self, object: PlacedObject, at_ms: Option<i64>) {
        let Some(entry) = self.0.entry(&object.binding, &object.id) else {
            return;
        };
        let this = self.0.clone();
        tokio::spawn(async move {
            let standing = entry.standing.lock().await;
            let Standing::Owned { ownership, .. } = &*standing else {
                return;
            };
            let result = this
                .pool
                .run("keeping an alarm", this.operation_limit, async |session| {
                    session.set_alarm(ownership, at_ms).await
                })
                .await;
            if let Err(error) = result {
                // The object's own database keeps the alarm; only its firing elsewhere, should
                // this node die, depends on the row.
                tracing::warn!(object = %entry.key, %error, "the cluster did not record an alarm");
            }
        });
    }

    fn release(&self, object: PlacedObject) {
        let Some(entry) = self.0.entry(&object.binding, &object.id) else {
            return;
        };
        entry.held_by.store(0, Ordering::Relaxed);
        let this = self.0.clone();
        tokio::spawn(async move {
            let mut standing = entry.standing.lock().await;
            // A delivery that came meanwhile took the object back.
            if entry.held_by.load(Ordering::Relaxed) != 0 {
                return;
            }
            this.give_up(&entry, &mut standing).await;
        });
    }
}

impl ClusterPlacement {
    /// Fires, through `runtime`, the due alarms of objects no live node owns (their owner died
    /// or released them): the object is claimed here, unless another node claims it first.
    pub(crate) async fn fire_orphan_alarms(&self, runtime: &dormouse_runtime::Runtime) {
        let grace = self.settings.grace;
        let due = self
            .pool
            .run(
                "reading due alarms",
                self.operation_limit,
                async |session| session.orphan_alarms(grace, ORPHAN_ALARMS_PER_POLL).await,
            )
            .await;
        match due {
            Ok(due) => {
                for alarm in due {
                    tracing::debug!(object = %alarm.key, "firing the alarm of an object no node owns");
                    if let Err(error) =
                        runtime.fire_alarm(&alarm.key.namespace, alarm.key.id, alarm.scheduled_ms)
                    {
                        tracing::warn!(object = %alarm.key, %error, "cannot fire an alarm");
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "cannot read due alarms now"),
        }
    }

    /// Forgets which node owns the object, so that the next route asks the cluster.
    async fn forget_route(&self, object: &PlacedObject) {
        if let Some(entry) = self.entry(&object.binding, &object.id) {
            let mut standing = entry.standing.lock().await;
            if let Standing::Elsewhere { .. } = &*standing {
                *standing = Standing::Unclaimed { local_head: None };
            }
        }
    }
}

pub(crate) fn unavailable(error: ClusterError) -> PlacementError {
    PlacementError::Unavailable(error.to_string())
}
