//! What the inspector asks of the runtime: each namespace's counts, one object's sockets and
//! storage, and its actions (reset, delete the alarm). Storage is read by the object's own task
//! between turns, so a look never races a turn, and never makes an instance: a hibernated
//! object stays hibernated.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{ObjectId, WebSocketId};
use dormouse_storage::{InspectLimits, StorageView};
use tokio::sync::oneshot;

use crate::error::{Result, RuntimeError};
use crate::event_log::EventWatch;
use crate::namespace::Namespace;
use crate::object::{Control, Envelope, Inspection, ObjectCell, Refused};
use crate::runtime::{ObjectStatus, Runtime, status_of};

/// One namespace at a glance: its gauges now and its counters since the process started (the
/// values `/metrics` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSummary {
    /// The binding.
    pub binding: String,
    /// Objects with an instance in memory.
    pub active: u64,
    /// Objects without an instance whose sockets are open.
    pub hibernated: u64,
    /// Open sockets.
    pub websockets: u64,
    /// Handler invocations of every kind (requests, calls, socket events, alarms).
    pub events: u64,
    /// Instances constructed for hibernated objects.
    pub wakes: u64,
    /// Instances dropped because they were idle and could hibernate.
    pub hibernations: u64,
    /// Objects reset.
    pub resets: u64,
}

/// One object, looked at closely.
#[derive(Debug, Clone)]
pub struct ObjectDetail {
    /// What [`Runtime::objects`] says of it.
    pub status: ObjectStatus,
    /// Its sockets in the range asked for, oldest first.
    pub sockets: Vec<SocketView>,
    /// Its sockets in all.
    pub socket_count: usize,
    /// Its storage; `None` when it never stored anything or the runtime has no storage.
    pub storage: Option<StorageView>,
}

/// One socket of an object.
#[derive(Debug, Clone)]
pub struct SocketView {
    /// The socket's id, unique in the process (what `WebSocket::id` returns to the object).
    pub id: WebSocketId,
    /// Accepted with `accept_web_socket` (its events go to the object's handlers).
    pub hibernatable: bool,
    /// Its tags (hibernatable sockets only).
    pub tags: Vec<String>,
    /// Its serialized attachment.
    pub attachment: Option<Bytes>,
    /// When an auto-response last answered it, in milliseconds since the epoch.
    pub auto_response_ms: Option<u64>,
    /// Bytes waiting to be sent to it.
    pub waiting_bytes: usize,
    /// `open`, `closing` or `closed`.
    pub ready_state: &'static str,
    /// The subprotocol agreed at its handshake.
    pub protocol: Option<String>,
}

impl Runtime {
    /// Each namespace's counts, in binding order.
    pub fn namespace_summaries(&self) -> Vec<NamespaceSummary> {
        self.shared
            .namespaces
            .iter()
            .zip(self.gauges())
            .map(|(namespace, gauges)| {
                let metrics = &namespace.metrics;
                let events = &metrics.events;
                NamespaceSummary {
                    binding: namespace.binding.clone(),
                    active: gauges.active,
                    hibernated: gauges.hibernated,
                    websockets: gauges.websockets,
                    events: [
                        &events.fetch,
                        &events.call,
                        &events.message,
                        &events.close,
                        &events.error,
                        &metrics.alarms,
                    ]
                    .iter()
                    .map(|counter| counter.load(Relaxed))
                    .sum(),
                    wakes: metrics.wakes.load(Relaxed),
                    hibernations: metrics.hibernations.load(Relaxed),
                    resets: metrics.resets.load(Relaxed),
                }
            })
            .collect()
    }

    /// The object `id` of `binding`: its status, the sockets in `sockets`, and its storage as
    /// `limits` bounds it.
    pub async fn inspect(
        &self,
        binding: &str,
        id: &ObjectId,
        limits: InspectLimits,
        sockets: Range<usize>,
    ) -> Result<ObjectDetail> {
        let namespace = self.namespace_of(binding)?;
        let (cell, storage) = instruct(&self.shared, namespace, id, |reply| Inspection::Read {
            limits,
            reply,
        })
        .await?;
        let storage = storage.unwrap_or(Ok(None))?;
        // Only the page asked for is copied out of the set (which is not held while each socket
        // is read).
        let (socket_count, page): (usize, Vec<_>) = {
            let set = cell.sockets.sockets();
            let count = set.standard_count() + set.hibernatable_count();
            let page = set
                .all()
                .skip(sockets.start)
                .take(sockets.len())
                .cloned()
                .collect();
            (count, page)
        };
        let sockets = page
            .iter()
            .map(|record| SocketView {
                id: record.id(),
                hibernatable: record.is_hibernatable(),
                tags: record.tags().unwrap_or_default(),
                attachment: record.attachment(),
                auto_response_ms: record.auto_response_timestamp().and_then(|at| {
                    at.duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|since| since.as_millis() as u64)
                }),
                waiting_bytes: record.waiting_bytes(),
                ready_state: match record.ready_state() {
                    dormouse_sdk::ReadyState::Connecting => "connecting",
                    dormouse_sdk::ReadyState::Open => "open",
                    dormouse_sdk::ReadyState::Closing => "closing",
                    dormouse_sdk::ReadyState::Closed => "closed",
                },
                protocol: record.protocol(),
            })
            .collect();
        Ok(ObjectDetail {
            status: status_of(&cell),
            sockets,
            socket_count,
            storage,
        })
    }

    /// Resets the object, as a failed turn would: its instance is dropped and its sockets close
    /// with 1011. Its storage stays.
    pub async fn reset_object(&self, binding: &str, id: &ObjectId) -> Result<()> {
        let namespace = self.namespace_of(binding)?;
        instruct(&self.shared, namespace, id, Inspection::Reset).await?;
        Ok(())
    }

    /// Deletes the object's alarm.
    pub async fn delete_alarm(&self, binding: &str, id: &ObjectId) -> Result<()> {
        let namespace = self.namespace_of(binding)?;
        let (_, outcome) = instruct(&self.shared, namespace, id, Inspection::DeleteAlarm).await?;
        outcome.unwrap_or(Ok(()))?;
        Ok(())
    }

    /// Starts watching the object's live log: its events, wakes, hibernations and resets from
    /// now on. Watching neither wakes the object nor keeps it in memory.
    pub fn watch_events(&self, binding: &str, id: &ObjectId) -> Result<EventWatch> {
        Ok(self.namespace_of(binding)?.event_log.watch(id))
    }

    fn namespace_of(&self, binding: &str) -> Result<&Arc<Namespace>> {
        self.shared
            .namespace(binding)
            .ok_or_else(|| RuntimeError::UnknownBinding(binding.to_owned()))
    }
}

/// Hands the object an inspector's instruction made around its reply channel, and waits for
/// the reply (`None` if the object's task ended without one, as a shutdown does).
async fn instruct<T>(
    shared: &crate::runtime::Shared,
    namespace: &Arc<Namespace>,
    id: &ObjectId,
    inspection: impl FnOnce(oneshot::Sender<T>) -> Inspection,
) -> Result<(Arc<ObjectCell>, Option<T>)> {
    if shared.closing.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RuntimeError::ShuttingDown);
    }
    let (reply, outcome) = oneshot::channel();
    let mut envelope = Envelope::Control(Control::Inspector(inspection(reply)));
    loop {
        let cell = shared.registry.get_or_create(namespace, id);
        match cell.try_deliver(envelope, &namespace.config.limits) {
            Ok(()) => return Ok((cell, outcome.await.ok())),
            // Retired between lookup and delivery: look it up again.
            Err(Refused::Retired(back)) => envelope = back,
            Err(Refused::Full(_)) => unreachable!("control envelopes bypass the mailbox limits"),
        }
    }
}
