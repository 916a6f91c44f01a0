//! Resetting an object: its instance dropped and its sockets closed without events, after a
//! panic, a timeout, a failed commit, or an inspector's action. A commit refused because another
//! node took the object over (cluster mode) is no failure of the object: its sockets are told it
//! moved (1012), and a peer relaying one of them hands it to the object's next owner.

use std::sync::atomic::Ordering::Relaxed;

use dormouse_ws::close;

use super::context::reset_error;
use super::task::Runner;
use crate::event_log::EventKind;

/// Reason sent to clients whose socket is closed by a reset. Details go to the log only.
const RESET_REASON: &str = "Durable Object reset";

/// Reason sent to clients whose socket's object moved to another node.
const MOVED_REASON: &str = "Durable Object moved to another node";

impl Runner {
    /// Resets the object if a flush (or the commit's shipping) failed.
    pub(super) async fn reset_if_storage_failed(&mut self) {
        if let Some(failure) = self.cell.gate.take_failure() {
            let moved = failure.is_lost_object();
            self.reset_closing(&failure.to_string(), moved).await;
        }
    }

    /// Resets the object: drops the instance and closes every socket with 1011, without events.
    /// Output of earlier turns goes out first if their flush succeeds; the failed turn's, and
    /// everything after a failed flush, is dropped. Queued requests stay queued and will be
    /// served by a new instance.
    pub(super) async fn reset(&mut self, reason: &str) {
        self.reset_closing(reason, false).await;
    }

    /// [`reset`](Self::reset); the sockets are told the object moved (1012) when `moved`.
    async fn reset_closing(&mut self, reason: &str, moved: bool) {
        if let Some(context) = &self.context {
            context.abort_turn(Some(reason));
        }
        // Earlier turns' writes are committed and flushed, and their output released, unless
        // storage failed; what is left after a failure is dropped.
        self.settle_writes().await;
        self.cell.gate.take_failure();
        if let Some(context) = &self.context {
            context.rollback_batch();
        }
        self.cell.namespace.metrics.resets.fetch_add(1, Relaxed);
        tracing::error!(%reason, "object reset");
        self.cell.log(EventKind::Reset, || reason.to_owned());
        self.cell.gate.discard(&reset_error(Some(reason)));
        self.drop_instance();
        let (code, close_reason) = if moved {
            (close::SERVICE_RESTART, MOVED_REASON)
        } else {
            (close::INTERNAL_ERROR, RESET_REASON)
        };
        self.cell.sockets.terminate_all(code, close_reason);
        self.shared.after_instance_dropped();
    }
}
