//! The live log of an object's events, for the inspector's object page.
//!
//! Nothing is kept for objects nobody watches: a namespace without watchers pays one atomic load
//! per event. A watcher subscribes to one object by id, so the log follows the object through
//! hibernation and across the cells that hold it; it sees what happens from then on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dormouse_sdk::ObjectId;
use tokio::sync::broadcast;

/// Entries a watcher may fall behind by before it is told it skipped some: a page reading over a
/// slow link must not hold back the object, and one second of a busy object's events is plenty
/// to read.
const WATCHER_BACKLOG: usize = 256;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An HTTP request.
    Fetch,
    /// A call of one of the guest's methods.
    Call,
    /// A message on one of its sockets.
    Message,
    /// One of its sockets closed.
    Close,
    /// One of its sockets broke the protocol.
    Error,
    /// Its alarm ran.
    Alarm,
    /// An instance was constructed.
    Started,
    /// An instance was constructed for the object while it was hibernated.
    Woken,
    /// Its instance left memory while its sockets stayed open.
    Hibernated,
    /// Its instance left memory; it had nothing to keep it open.
    Unloaded,
    /// Its instance was evicted though something kept it from hibernating.
    Evicted,
    /// It was reset: its instance was dropped and its sockets closed.
    Reset,
}

impl EventKind {
    /// The kind's name on the wire and on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fetch => "fetch",
            EventKind::Call => "call",
            EventKind::Message => "websocket_message",
            EventKind::Close => "websocket_close",
            EventKind::Error => "websocket_error",
            EventKind::Alarm => "alarm",
            EventKind::Started => "started",
            EventKind::Woken => "woken",
            EventKind::Hibernated => "hibernated",
            EventKind::Unloaded => "unloaded",
            EventKind::Evicted => "evicted",
            EventKind::Reset => "reset",
        }
    }
}

/// One entry of an object's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// When it happened, in milliseconds since the epoch.
    pub at_ms: u64,
    /// What happened.
    pub kind: EventKind,
    /// Which socket, request, method or reason, in words.
    pub detail: String,
    /// How long its handler ran, for events that ran one.
    pub took: Option<Duration>,
}

impl LoggedEvent {
    /// An entry for something happening now.
    pub(crate) fn now(kind: EventKind, detail: String) -> Self {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        LoggedEvent {
            at_ms,
            kind,
            detail,
            took: None,
        }
    }
}

/// The watched objects of one namespace.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    /// Objects with at least one watcher; read first on every event, so that nobody pays for
    /// the map while nobody watches.
    watched: AtomicUsize,
    taps: Mutex<HashMap<[u8; 32], broadcast::Sender<LoggedEvent>>>,
}

impl EventLog {
    /// Whether anybody watches an object of the namespace: when false, an event need not be
    /// described at all.
    pub(crate) fn is_watched(&self) -> bool {
        self.watched.load(Relaxed) > 0
    }

    /// Whether anybody watches the object whose id is `raw`: only then is an event described.
    pub(crate) fn watches(&self, raw: &[u8; 32]) -> bool {
        self.is_watched() && self.taps().contains_key(raw)
    }

    /// Hands the entry `make` builds to the watchers of the object whose id is `raw`, if it has
    /// any.
    pub(crate) fn record(&self, raw: &[u8; 32], make: impl FnOnce() -> LoggedEvent) {
        if !self.is_watched() {
            return;
        }
        if let Some(tap) = self.taps().get(raw) {
            // Fails only when every watcher has just gone; its drop removes the tap.
            let _ = tap.send(make());
        }
    }

    /// Starts watching `id`: entries recorded from now on reach the returned watch.
    pub(crate) fn watch(self: &Arc<Self>, id: &ObjectId) -> EventWatch {
        let mut taps = self.taps();
        let receiver = match taps.get(id.as_bytes()) {
            Some(tap) => tap.subscribe(),
            None => {
                let (tap, receiver) = broadcast::channel(WATCHER_BACKLOG);
                taps.insert(*id.as_bytes(), tap);
                self.watched.fetch_add(1, Relaxed);
                receiver
            }
        };
        EventWatch {
            log: self.clone(),
            id: *id.as_bytes(),
            receiver,
        }
    }

    fn taps(&self) -> MutexGuard<'_, HashMap<[u8; 32], broadcast::Sender<LoggedEvent>>> {
        self.taps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a watcher reads next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// The next entry.
    Event(LoggedEvent),
    /// The watcher fell this many entries behind; they are gone.
    Skipped(u64),
}

/// A subscription to one object's log; dropping it ends it.
#[derive(Debug)]
pub struct EventWatch {
    log: Arc<EventLog>,
    id: [u8; 32],
    receiver: broadcast::Receiver<LoggedEvent>,
}

impl EventWatch {
    /// Waits for the object's next entry.
    pub async fn next(&mut self) -> Watched {
        match self.receiver.recv().await {
            Ok(event) => Watched::Event(event),
            Err(broadcast::error::RecvError::Lagged(skipped)) => Watched::Skipped(skipped),
            // The tap lives as long as a watch of it does: this watch holds it open.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        let mut taps = self.log.taps();
        // Watches are made and dropped under the map's lock, so the count is exact here; this
        // watch's receiver is still alive and counted.
        if taps
            .get(&self.id)
            .is_some_and(|tap| tap.receiver_count() <= 1)
        {
            taps.remove(&self.id);
            self.log.watched.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> ObjectId {
        ObjectId::from_raw([byte; 32], None)
    }

    #[tokio::test]
    async fn a_watcher_sees_its_object_only_and_costs_nothing_once_gone() {
        let log = Arc::new(EventLog::default());
        log.record(&[1; 32], || {
            unreachable!("nobody watches: nothing is described")
        });
        let mut first = log.watch(&id(1));
        let mut second = log.watch(&id(1));
        assert!(log.is_watched());
        assert!(log.watches(&[1; 32]) && !log.watches(&[2; 32]));
        log.record(&[2; 32], || unreachable!("object 2 is not watched"));
        log.record(&[1; 32], || {
            LoggedEvent::now(EventKind::Fetch, "GET /".to_owned())
        });
        for watch in [&mut first, &mut second] {
            let Watched::Event(event) = watch.next().await else {
                panic!("an entry was recorded");
            };
            assert_eq!(
                (event.kind, event.detail.as_str()),
                (EventKind::Fetch, "GET /")
            );
        }
        drop(first);
        assert!(log.is_watched(), "one watcher is left");
        drop(second);
        assert!(!log.is_watched() && !log.watches(&[1; 32]));
        assert!(log.taps().is_empty());
    }

    #[tokio::test]
    async fn a_slow_watcher_is_told_how_much_it_missed() {
        let log = Arc::new(EventLog::default());
        let mut watch = log.watch(&id(1));
        for n in 0..WATCHER_BACKLOG + 10 {
            log.record(&[1; 32], || {
                LoggedEvent::now(EventKind::Message, n.to_string())
            });
        }
        assert_eq!(watch.next().await, Watched::Skipped(10));
        let Watched::Event(event) = watch.next().await else {
            panic!("the newest entries are kept");
        };
        assert_eq!(event.detail, "10");
    }
}
