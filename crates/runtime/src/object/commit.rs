//! The commit path after a turn: flushes that make commits durable, and checkpoints.
//!
//! A turn's writes join the object's batch when the turn ends. The batch is committed (one
//! transaction, each changed page written to the log once) when no flush is running, and a flush
//! of the log, which runs here apart from the object's task, makes it durable. While the disk
//! works on one flush the object's next turns run and join the next batch, committed and flushed
//! together once the flush returns (group commit): with many writers the object commits as many
//! turns per flush as arrive during one. The output gate releases each turn's output once its
//! flush returns.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use dormouse_storage::LogFlusher;

use super::ObjectCell;
use super::gate::{AfterCommit, FlushTarget, WriteFailure};
use crate::config::FlushAttempt;
use crate::storage::ObjectStorage;

/// Runs flushes of `cell`'s log, the first one to `target`, until nothing committed is left to
/// flush. A flush syncs the log to disk (`flusher`; none with relaxed durability), then, in
/// cluster mode, ships the commits to the cluster. A failed flush leaves the gate failed and wakes
/// the object's task, which resets the object.
pub(crate) fn flush(cell: Arc<ObjectCell>, flusher: Option<LogFlusher>, mut target: FlushTarget) {
    tokio::spawn(async move {
        loop {
            let fault = cell.namespace.config.flush_fault.clone();
            let log = flusher.clone();
            let mut result = tokio::task::spawn_blocking(move || {
                if let Some(fault) = fault {
                    fault
                        .check(&FlushAttempt {
                            writes: target.writes,
                        })
                        .map_err(WriteFailure::Injected)?;
                }
                match log {
                    Some(log) => log.flush().map_err(WriteFailure::Flush),
                    None => Ok(()),
                }
            })
            .await
            .unwrap_or_else(|panic| Err(WriteFailure::Panicked(panic.to_string())));
            if result.is_ok() {
                result = ship(&cell).await;
            }
            let metrics = &cell.namespace.metrics;
            metrics.flushes.fetch_add(1, Relaxed);
            if let Err(error) = &result {
                tracing::error!(%error, "flushing committed writes failed");
            }
            let failed = result.is_err();
            match cell.gate.flushed(target.through, result) {
                AfterCommit::Flush(next) => target = next,
                // Turns ended during the flush wait for the object's task to commit them.
                AfterCommit::CommitBatch => return cell.wake_task(),
                AfterCommit::Nothing => {
                    if failed {
                        cell.wake_task();
                    }
                    return;
                }
            }
        }
    });
}

/// Ships the object's new commits to the cluster, in cluster mode; nothing to do otherwise.
async fn ship(cell: &ObjectCell) -> Result<(), WriteFailure> {
    let Some(placement) = cell
        .namespace
        .shared
        .upgrade()
        .and_then(|shared| shared.placement.clone())
    else {
        return Ok(());
    };
    let object = cell.namespace.placed(&cell.key().raw);
    placement.ship(object).await.map_err(WriteFailure::Shipped)
}

/// Checkpoints the object's database, off the async threads; the object waits (rarely: once per
/// [`dormouse_storage::CHECKPOINT_PAGES`] pages written). A failed checkpoint loses nothing (the
/// log keeps the commits) and is retried after the next commit.
pub(crate) async fn checkpoint(storage: Arc<ObjectStorage>) {
    let result = tokio::task::spawn_blocking(move || storage.checkpoint()).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "checkpoint failed; retried later"),
        Err(panic) => tracing::error!(%panic, "checkpoint panicked"),
    }
}
