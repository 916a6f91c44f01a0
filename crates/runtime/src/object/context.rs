//! `ObjectContext`: the runtime as one instance sees it (the `ObjectHost` behind `State`).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use dormouse_holder::SocketRecord;
use dormouse_sdk::host::{self, BoxFuture, ObjectHost, Reply};
use dormouse_sdk::{
    Error, ErrorKind, ObjectId, Outgoing, Storage, WebSocket, WebSocketId,
    WebSocketRequestResponsePair,
};
use futures_util::FutureExt;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::gate::{AfterCommit, HeldReply, WriteFailure};
use super::{Envelope, ObjectCell, commit};
use crate::config::MAX_EVENT_TIMEOUT;
use crate::storage::ObjectStorage;

/// The context of one instance. A woken object gets a new one; `wait_until` work started through
/// it is cancelled when the instance is dropped.
pub(crate) struct ObjectContext {
    cell: Arc<ObjectCell>,
    /// Itself, for handing to `wait_until` work as the current object.
    this: Weak<ObjectContext>,
    wait_until_limit: Duration,
    wait_until_tasks: Mutex<Vec<AbortHandle>>,
    /// The object's storage, opened on its first use by this instance.
    storage: Mutex<Option<Arc<ObjectStorage>>>,
    /// A turn is running: storage opened now joins its transaction.
    in_turn: AtomicBool,
    /// Answers given during the running turn; behind the output gate once it ends.
    held_replies: Mutex<Vec<HeldReply>>,
    /// The instance is gone: its requests for turns are ignored.
    retired: AtomicBool,
}

/// The sending end of a caller's request, shared by the [`Reply`] handed to the guest and the
/// runner (which answers with the error when the guest fails before answering).
pub(crate) struct ReplySlot<T>(Arc<Mutex<Option<oneshot::Sender<dormouse_sdk::Result<T>>>>>);

impl<T: Send + 'static> ReplySlot<T> {
    pub(crate) fn new(sender: oneshot::Sender<dormouse_sdk::Result<T>>) -> Self {
        ReplySlot(Arc::new(Mutex::new(Some(sender))))
    }

    /// The guest's side: an answer given during a turn waits for that turn's commit.
    pub(crate) fn reply(&self, context: &Arc<ObjectContext>) -> Reply<T> {
        let slot = self.0.clone();
        let context = context.clone();
        Reply::new(move |answer| {
            let Some(sender) = slot.lock().expect("reply slot lock").take() else {
                return;
            };
            let held: HeldReply = Box::new(move |lost| {
                let _ = sender.send(match lost {
                    None => answer,
                    Some(error) => Err(error),
                });
            });
            if context.in_turn.load(Ordering::Relaxed) {
                context
                    .held_replies
                    .lock()
                    .expect("held replies lock")
                    .push(held);
            } else if let Some(free) = context.cell.gate.hold_reply(held) {
                free(None);
            }
        })
    }

    /// Answers with `error` unless the guest answered already.
    pub(crate) fn fail(&self, error: Error) {
        if let Some(sender) = self.0.lock().expect("reply slot lock").take() {
            let _ = sender.send(Err(error));
        }
    }
}

impl ObjectContext {
    pub(crate) fn new(cell: Arc<ObjectCell>, wait_until_limit: Duration) -> Arc<Self> {
        Arc::new_cyclic(|this| ObjectContext {
            cell,
            this: this.clone(),
            wait_until_limit,
            wait_until_tasks: Mutex::new(Vec::new()),
            storage: Mutex::new(None),
            in_turn: AtomicBool::new(false),
            held_replies: Mutex::new(Vec::new()),
            retired: AtomicBool::new(false),
        })
    }

    /// The object's storage, opening its database on first use.
    pub(crate) fn open_storage(&self) -> dormouse_sdk::Result<Arc<ObjectStorage>> {
        let mut slot = self.storage.lock().expect("storage slot lock");
        if let Some(storage) = &*slot {
            return Ok(storage.clone());
        }
        let site = self.cell.namespace.storage.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Storage,
                "storage is not available: the runtime has no data directory",
            )
        })?;
        if site.replicated && !crate::routing::is_placed_here(&self.cell) {
            // The object moved (or this node lost its lease) since the event was routed: its
            // local file is no longer the object's, and must not be read.
            return Err(Error::new(
                ErrorKind::Overloaded,
                "the Durable Object is no longer on this node; retry the request",
            ));
        }
        let storage = ObjectStorage::open(
            self.cell.clone(),
            site,
            self.in_turn.load(Ordering::Relaxed),
        )
        .map_err(crate::storage::to_sdk_error)?;
        *slot = Some(storage.clone());
        Ok(storage)
    }

    pub(crate) fn opened_storage(&self) -> Option<Arc<ObjectStorage>> {
        self.storage.lock().expect("storage slot lock").clone()
    }

    /// A turn starts: storage operations join one transaction until [`end_turn`](Self::end_turn).
    pub(crate) fn begin_turn(&self) {
        self.in_turn.store(true, Ordering::Relaxed);
        self.cell.gate.begin_turn();
        self.cell.sockets.begin_turn();
        if let Some(storage) = self.opened_storage() {
            storage.begin_turn();
        }
    }

    /// The turn's handler returned: its writes join the batch and its output goes behind the
    /// output gate, which lets it out once the writes are durable. The batch is committed now if
    /// no flush runs, else once the running one has returned; the flush that makes it durable
    /// runs apart ([`commit::flush`]) and the object goes on with its next turn meanwhile. On
    /// failure the error is returned (the caller resets the object, which drops the output).
    pub(crate) async fn end_turn(&self) -> Result<(), WriteFailure> {
        self.in_turn.store(false, Ordering::Relaxed);
        let Some(storage) = self.opened_storage() else {
            self.hand_replies_to_gate();
            self.cell.gate.turn_ended(false);
            return Ok(());
        };
        let wrote = storage.end_turn().map_err(commit_failure)?;
        self.hand_replies_to_gate();
        let batched = wrote && storage.flushes();
        if wrote && !batched {
            // Relaxed durability: committed is acknowledged, there is no flush to share.
            storage.commit_batch().map_err(commit_failure)?;
        }
        if batched {
            let metrics = &self.cell.namespace.metrics;
            metrics.commits.fetch_add(1, Ordering::Relaxed);
        }
        if self.cell.gate.turn_ended(batched) == AfterCommit::CommitBatch {
            self.commit_batch(&storage)?;
        }
        // A replicated object checkpoints only once every commit was shipped: the log starts
        // again after a checkpoint, and the shipping reads each commit from it.
        if storage.checkpoint_due()
            && !storage.has_open_batch()
            && (!storage.is_replicated() || self.cell.gate.is_settled())
        {
            commit::checkpoint(storage).await;
        }
        Ok(())
    }

    /// Commits the batch if its turns wait for nothing but that (between turns, and when a
    /// flush returned while the object was idle).
    pub(crate) fn commit_if_due(&self) -> Result<(), WriteFailure> {
        match self.opened_storage() {
            Some(storage) if self.cell.gate.commit_due() => self.commit_batch(&storage),
            _ => Ok(()),
        }
    }

    /// Commits the batch and starts the flush that makes it durable. A failed commit lost the
    /// batch's writes: the gate fails, and the object must be reset.
    fn commit_batch(&self, storage: &Arc<ObjectStorage>) -> Result<(), WriteFailure> {
        if let Err(error) = storage.commit_batch() {
            let error = Arc::new(error);
            self.cell.gate.fail(WriteFailure::Commit(error.clone()));
            return Err(WriteFailure::Commit(error));
        }
        if let AfterCommit::Flush(target) = self.cell.gate.batch_committed()
            && storage.flushes()
        {
            commit::flush(self.cell.clone(), storage.flusher(), target);
        }
        Ok(())
    }

    /// Drops writes left in the batch (after a failure, before the instance goes).
    pub(crate) fn rollback_batch(&self) {
        if let Some(storage) = self.opened_storage() {
            storage.rollback_batch();
        }
    }

    /// Answers given during the turn now wait behind the gate (or leave, if nothing is pending).
    fn hand_replies_to_gate(&self) {
        let held = std::mem::take(&mut *self.held_replies.lock().expect("held replies lock"));
        for reply in held {
            if let Some(free) = self.cell.gate.hold_reply(reply) {
                free(None);
            }
        }
    }

    /// The turn is abandoned (its object is being reset, for `reason`): nothing it wrote
    /// survives, and the answers it gave become errors. Output behind the gate is the
    /// resetter's to drop.
    pub(crate) fn abort_turn(&self, reason: Option<&str>) {
        self.in_turn.store(false, Ordering::Relaxed);
        if let Some(storage) = self.opened_storage() {
            storage.rollback_turn();
        }
        let lost = reset_error(reason);
        let held = std::mem::take(&mut *self.held_replies.lock().expect("held replies lock"));
        for reply in held {
            reply(Some(Error::new(lost.kind(), lost.text().to_owned())));
        }
    }

    /// The instance is being dropped: later requests for turns are ignored.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Cancels unfinished `wait_until` work (the instance is going away).
    pub(crate) fn cancel_wait_until(&self) {
        for task in self
            .wait_until_tasks
            .lock()
            .expect("wait_until lock")
            .drain(..)
        {
            task.abort();
        }
    }

    fn limits(&self) -> &crate::config::Limits {
        &self.cell.namespace.config.limits
    }

    /// The record behind a server end of this object, or the error Cloudflare gives.
    fn own_server_end(&self, ws: &WebSocket) -> dormouse_sdk::Result<Arc<SocketRecord>> {
        if ws.is_client_end() {
            return Err(Error::new(
                ErrorKind::Type,
                "the client end of a WebSocketPair cannot be accepted; accept the server end",
            ));
        }
        let record = SocketRecord::arc_from_handle(ws).ok_or_else(|| {
            Error::new(
                ErrorKind::Type,
                "this WebSocket does not belong to this runtime",
            )
        })?;
        if !record.belongs_to(&self.cell.sockets) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "this WebSocket belongs to another Durable Object",
            ));
        }
        Ok(record)
    }
}

/// A failed commit, as the gate and the runner see it.
fn commit_failure(error: dormouse_storage::StorageError) -> WriteFailure {
    WriteFailure::Commit(Arc::new(error))
}

/// What callers whose answers were dropped by a reset (for `reason`) get instead.
pub(crate) fn reset_error(reason: Option<&str>) -> Error {
    let message = match reason {
        Some(reason) => format!("Durable Object was reset: {reason}"),
        None => "Durable Object was reset".to_owned(),
    };
    Error::new(ErrorKind::Reset, message)
}

impl ObjectHost for ObjectContext {
    fn id(&self) -> ObjectId {
        self.cell.id()
    }

    fn new_websocket_pair(&self) -> dormouse_sdk::Result<(WebSocket, WebSocket)> {
        let record: Arc<dyn dormouse_sdk::host::SocketHost> = self.cell.sockets.new_socket();
        Ok((
            WebSocket::client_from_host(record.clone()),
            WebSocket::from_host(record),
        ))
    }

    fn accept_websocket(&self, ws: &WebSocket, tags: &[&str]) -> dormouse_sdk::Result<()> {
        self.own_server_end(ws)?.accept_hibernatable(tags)
    }

    fn websockets(&self, tag: Option<&str>) -> Vec<WebSocket> {
        let sockets = self.cell.sockets.sockets();
        let mut list = Vec::with_capacity(if tag.is_none() {
            sockets.hibernatable_count()
        } else {
            0
        });
        list.extend(
            sockets
                .hibernatable(tag)
                .map(|record| WebSocket::from_host(record.clone())),
        );
        list
    }

    fn websockets_changes(&self) -> u64 {
        self.cell.sockets.sockets().changes()
    }

    fn websocket_count(&self, tag: Option<&str>) -> usize {
        let sockets = self.cell.sockets.sockets();
        match tag {
            None => sockets.hibernatable_count(),
            Some(_) => sockets.hibernatable(tag).count(),
        }
    }

    fn set_auto_responses(
        &self,
        pairs: Vec<WebSocketRequestResponsePair>,
    ) -> dormouse_sdk::Result<()> {
        let limits = self.limits();
        if pairs.len() > limits.max_auto_response_pairs {
            return Err(Error::new(
                ErrorKind::Range,
                format!(
                    "at most {} auto-response pairs can be set",
                    limits.max_auto_response_pairs
                ),
            ));
        }
        let max = limits.max_auto_response_bytes;
        for pair in &pairs {
            for (what, article, size) in [
                ("Request", "request", pair.request_bytes().len()),
                ("Response", "response", pair.response_bytes().len()),
            ] {
                if size > max {
                    return Err(Error::new(
                        ErrorKind::Range,
                        format!(
                            "{what} cannot be larger than {max} bytes. A {article} of size {size} was provided."
                        ),
                    ));
                }
            }
        }
        self.cell.sockets.set_auto_responses(pairs);
        Ok(())
    }

    fn auto_responses(&self) -> Vec<WebSocketRequestResponsePair> {
        self.cell.sockets.auto_responses().to_vec()
    }

    fn auto_response_timestamp(&self, ws: &WebSocket) -> Option<SystemTime> {
        SocketRecord::from_handle(ws).and_then(SocketRecord::auto_response_timestamp)
    }

    fn set_event_timeout(&self, timeout: Option<Duration>) -> dormouse_sdk::Result<()> {
        if timeout.is_some_and(|t| t > MAX_EVENT_TIMEOUT) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "Event timeout should not exceed 604800000 ms.",
            ));
        }
        self.cell.set_event_timeout(timeout);
        Ok(())
    }

    fn event_timeout(&self) -> Option<Duration> {
        self.cell.event_timeout()
    }

    fn wait_until(&self, work: BoxFuture<'static, ()>) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        self.cell.begin_wait_until();
        let guard = WaitUntilGuard(self.cell.clone());
        let limit = self.wait_until_limit;
        let host: Arc<dyn ObjectHost> = this;
        let task = tokio::spawn(host::scope_object(host, async move {
            let _guard = guard;
            match tokio::time::timeout(limit, AssertUnwindSafe(work).catch_unwind()).await {
                Ok(Ok(())) => {}
                Ok(Err(panic)) => {
                    tracing::error!(panic = %super::guard::panic_message(&*panic), "wait_until work panicked")
                }
                Err(_) => tracing::warn!(?limit, "wait_until work cancelled after its time limit"),
            }
        }));
        let mut tasks = self.wait_until_tasks.lock().expect("wait_until lock");
        tasks.retain(|task| !task.is_finished());
        tasks.push(task.abort_handle());
    }

    fn storage(&self) -> dormouse_sdk::Result<Storage> {
        Ok(Storage::from_host(self.open_storage()?))
    }

    fn schedule_turn(&self) {
        if self.retired.load(Ordering::Relaxed) {
            return;
        }
        // A turn request is never refused for room; a retired cell has no instance to resume.
        let _ = self
            .cell
            .try_deliver(Envelope::Resume, &self.cell.namespace.config.limits);
    }

    fn broadcast(
        &self,
        tag: Option<&str>,
        message: Outgoing<'_>,
        except: Option<WebSocketId>,
    ) -> usize {
        self.cell.sockets.broadcast(tag, message, except)
    }
}

/// Ends a `wait_until` registration when its work completes, fails or is cancelled.
struct WaitUntilGuard(Arc<ObjectCell>);

impl Drop for WaitUntilGuard {
    fn drop(&mut self) {
        self.0.end_wait_until();
    }
}
