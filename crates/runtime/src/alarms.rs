//! The alarm scheduler: fires each object's alarm at its time, waking the object if needed.
//!
//! An object's own database holds the truth about its alarm; this scheduler only knows when to
//! look, from what objects set (and, after a restart, from the catalog's index). When an entry is
//! due, the scheduler delivers an alarm event to the object, which checks its database and runs
//! its `alarm` handler. Failed attempts are retried with Cloudflare's back-off.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dormouse_storage::Catalog;
use tokio::sync::Notify;

use crate::namespace::Namespace;
use crate::object::{Envelope, ObjectCell, Refused};
use crate::placement::Route;
use crate::registry::CellKey;
use crate::runtime::Shared;

/// A pending firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    /// When to deliver it (the alarm's time, or later for a retry).
    fire_at: i64,
    /// The alarm's own time, reported to the handler.
    scheduled: i64,
    /// Failed attempts so far.
    retry: u32,
}

#[derive(Default)]
struct Queue {
    by_time: BTreeSet<(i64, CellKey)>,
    by_object: HashMap<CellKey, Pending>,
}

impl Queue {
    fn insert(&mut self, key: CellKey, pending: Pending) {
        self.remove(key);
        self.by_time.insert((pending.fire_at, key));
        self.by_object.insert(key, pending);
    }

    fn remove(&mut self, key: CellKey) {
        if let Some(old) = self.by_object.remove(&key) {
            self.by_time.remove(&(old.fire_at, key));
        }
    }
}

/// The scheduler of one runtime.
pub(crate) struct AlarmScheduler {
    queue: Mutex<Queue>,
    /// Wakes the scheduler task when an earlier alarm is added.
    changed: Notify,
    /// Where pending alarms are indexed for restarts; `None` without a data directory.
    catalog: Option<Arc<Catalog>>,
    shared: OnceLock<Weak<Shared>>,
    started: AtomicBool,
}

impl AlarmScheduler {
    pub(crate) fn new(catalog: Option<Arc<Catalog>>) -> Self {
        AlarmScheduler {
            queue: Mutex::new(Queue::default()),
            changed: Notify::new(),
            catalog,
            shared: OnceLock::new(),
            started: AtomicBool::new(false),
        }
    }

    pub(crate) fn attach(&self, shared: Weak<Shared>) {
        let _ = self.shared.set(shared);
    }

    /// Records that `cell`'s alarm is now `at_ms` (or none), in memory and in the index.
    pub(crate) fn set(&self, cell: &ObjectCell, at_ms: Option<i64>) {
        let key = cell.key();
        {
            let mut queue = self.queue.lock().expect("alarm queue lock");
            match at_ms {
                Some(at) => queue.insert(
                    key,
                    Pending {
                        fire_at: at,
                        scheduled: at,
                        retry: 0,
                    },
                ),
                None => queue.remove(key),
            }
        }
        if let Some(catalog) = &self.catalog
            && let Err(error) = catalog.index_alarm(&cell.namespace.id_key, &key.raw, at_ms)
        {
            tracing::error!(%error, "cannot index alarm; it will not survive a restart");
        }
        self.changed.notify_one();
    }

    /// Schedules attempt number `retry + 1` of the alarm set for `scheduled`, after `delay`.
    pub(crate) fn retry(&self, key: CellKey, scheduled: i64, retry: u32, delay: Duration) {
        let fire_at = now_ms() + delay.as_millis() as i64;
        self.queue.lock().expect("alarm queue lock").insert(
            key,
            Pending {
                fire_at,
                scheduled,
                retry,
            },
        );
        self.changed.notify_one();
    }

    /// Makes the scheduler look at its queue again (after [`load`](Self::load) while it runs).
    pub(crate) fn wake(&self) {
        self.changed.notify_one();
    }

    /// Loads alarms indexed before a restart (late ones fire at once).
    pub(crate) fn load(&self, entries: impl IntoIterator<Item = (CellKey, i64)>) {
        let mut queue = self.queue.lock().expect("alarm queue lock");
        for (key, at) in entries {
            queue.insert(
                key,
                Pending {
                    fire_at: at,
                    scheduled: at,
                    retry: 0,
                },
            );
        }
    }

    /// Starts the scheduler task (once); must run inside the async runtime.
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().run());
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = now_ms();
            let (due, next) = {
                let mut queue = self.queue.lock().expect("alarm queue lock");
                let mut due = Vec::new();
                while let Some(&(fire_at, key)) = queue.by_time.first() {
                    if fire_at > now {
                        break;
                    }
                    queue.by_time.pop_first();
                    if let Some(pending) = queue.by_object.remove(&key) {
                        due.push((key, pending));
                    }
                }
                (due, queue.by_time.first().map(|(at, _)| *at))
            };
            let Some(shared) = self.shared.get().and_then(Weak::upgrade) else {
                return;
            };
            for (key, pending) in due {
                deliver(&shared, key, pending);
            }
            drop(shared);
            match next {
                Some(at) => {
                    let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// How long a due alarm waits before it is tried again when the cluster could not say which
/// node runs its object.
const PLACEMENT_RETRY: Duration = Duration::from_secs(1);

/// Fires the alarm of the object `key` set for `scheduled_ms` now (its first attempt).
pub(crate) fn fire(shared: &Arc<Shared>, key: CellKey, scheduled_ms: i64) {
    let pending = Pending {
        fire_at: scheduled_ms,
        scheduled: scheduled_ms,
        retry: 0,
    };
    deliver(shared, key, pending);
}

/// Hands a due alarm to its object, creating (or waking) the object. In cluster mode an object
/// that is not this node's is claimed first; if another node owns it, that node fires it.
fn deliver(shared: &Arc<Shared>, key: CellKey, pending: Pending) {
    let Some(namespace) = shared.namespace_by_index(key.namespace) else {
        return;
    };
    if let Some(placement) = &shared.placement
        && !placement.is_here(&namespace.binding, &key.raw)
    {
        let (placement, namespace, shared) = (placement.clone(), namespace.clone(), shared.clone());
        tokio::spawn(async move {
            match placement.route(namespace.placed(&key.raw)).await {
                Ok(Route::Here | Route::Claimed { .. }) => {
                    deliver_here(&shared, &namespace, key, pending);
                }
                Ok(Route::Peer(peer)) => {
                    tracing::debug!(%peer, "alarm of an object another node owns: it fires there");
                }
                Err(error) => {
                    tracing::warn!(%error, "alarm postponed: the cluster cannot place its object");
                    shared
                        .alarms
                        .retry(key, pending.scheduled, pending.retry, PLACEMENT_RETRY);
                }
            }
        });
        return;
    }
    deliver_here(shared, namespace, key, pending);
}

/// Hands a due alarm to its object on this node.
fn deliver_here(shared: &Shared, namespace: &Arc<Namespace>, key: CellKey, pending: Pending) {
    let id = dormouse_sdk::ObjectId::from_raw(key.raw, None);
    let mut envelope = Envelope::Alarm {
        scheduled_ms: pending.scheduled,
        retry: pending.retry,
    };
    loop {
        let cell = shared.registry.get_or_create(namespace, &id);
        match cell.try_deliver(envelope, &namespace.config.limits) {
            Ok(()) => return,
            Err(Refused::Retired(back)) => envelope = back,
            Err(Refused::Full(_)) => unreachable!("alarm envelopes bypass the mailbox limits"),
        }
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
