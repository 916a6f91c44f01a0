//! The output gate: what an object sends after writing waits until the write is durable.
//!
//! Turns are numbered. Output (frames to sockets, answers to callers) is tagged with the number
//! of the turn that produced it and may leave once no turn up to and including that one has
//! writes that are not durable yet: the gate publishes that bound as [`OutputGate::limit`], and
//! output tagged below it leaves. A turn's writes join the object's open batch when it ends; the
//! batch is committed once no flush is running, and made durable by a flush
//! ([`super::commit`]), so the object runs its next turn at once while the output of the last
//! ones waits, and output is released in turn order. If a commit or a flush fails, nothing held
//! is ever sent: the object is reset.
//!
//! Held frames stay in their sockets, behind the socket holder's [`FrameGate`], which this gate
//! publishes its limit to; answers to callers wait here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use dormouse_sdk::Error;
use tokio::sync::Notify;

use dormouse_holder::FrameGate;
use dormouse_storage::StorageError;

/// Turns one batch may hold. Past it the object waits for the running flush before its next
/// turn: a disk that stalls must not let held output and the open transaction grow without bound.
/// A flush under load covers tens of turns, far below it.
pub(crate) const MAX_BATCH_TURNS: usize = 1_024;

/// Why writes never became durable; nothing held is sent, and the object must be reset.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteFailure {
    /// Committing the batch failed.
    #[error("storage commit failed: {0}")]
    Commit(Arc<StorageError>),
    /// Flushing the log failed.
    #[error("storage flush failed: {0}")]
    Flush(StorageError),
    /// The configured fault failed the flush, as a disk would (tests).
    #[error("storage flush failed: {0}")]
    Injected(String),
    /// The flush task panicked.
    #[error("storage flush failed: the flush panicked: {0}")]
    Panicked(String),
    /// Shipping the commits to the cluster failed (cluster mode).
    #[error("storage commit to the cluster failed: {0}")]
    Shipped(crate::placement::PlacementError),
}

impl WriteFailure {
    /// Whether the writes failed because another node took the object over (cluster mode).
    pub(crate) fn is_lost_object(&self) -> bool {
        matches!(
            self,
            WriteFailure::Shipped(crate::placement::PlacementError::Lost(_))
        )
    }
}

/// An answer held behind the gate: called with `None` once the writes before it are durable, or
/// with the error to answer instead when they were lost.
pub(crate) type HeldReply = Box<dyn FnOnce(Option<Error>) + Send>;

/// The output gate of one object.
pub(crate) struct OutputGate {
    /// The sockets' side: turn numbers, the published limit, the frames held.
    frames: Arc<FrameGate>,
    pending: Mutex<Pending>,
    /// Signalled when the last flush in flight ends.
    settled: Notify,
}

/// What keeps output from leaving.
#[derive(Default)]
struct Pending {
    /// The running turn has written; its writes are not committed yet.
    dirty: bool,
    /// Turns whose writes wait in the batch, not committed yet, oldest first.
    batched: VecDeque<u64>,
    /// Turns whose writes are committed but not yet durable, oldest first.
    undurable: VecDeque<u64>,
    /// Turns with writes committed since the object was loaded.
    writes: u64,
    /// A flush is running.
    flushing: bool,
    /// A flush failed: nothing leaves until the object is reset.
    failure: Option<WriteFailure>,
    /// Answers held, in the order they were given, with their turn.
    replies: VecDeque<(u64, HeldReply)>,
}

impl Pending {
    /// The first turn whose output must still wait, given the running turn.
    fn limit(&self, turn: u64) -> u64 {
        if self.failure.is_some() {
            return 0;
        }
        let running = if self.dirty { turn } else { turn + 1 };
        let waiting = self.undurable.front().or(self.batched.front());
        waiting.map_or(running, |&first| first.min(running))
    }

    /// A batch may be committed: it holds writes and no flush runs (the next one covers it).
    fn commit_due(&self) -> bool {
        !self.flushing && !self.batched.is_empty() && self.failure.is_none()
    }
}

/// What the commit path must do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterCommit {
    /// Nothing: no writes wait, or a running flush will be followed by another.
    Nothing,
    /// Commit the batch: its turns wait for the flush that just ended to be followed.
    CommitBatch,
    /// Start a flush.
    Flush(FlushTarget),
}

/// What a flush makes durable: the commits of turns up to `through`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) struct FlushTarget {
    pub(crate) through: u64,
    /// Turns with writes committed since the object was loaded, all covered by this flush.
    pub(crate) writes: u64,
}

impl Pending {
    /// A flush of everything committed, if anything is undurable and no failure stops it.
    fn next_flush(&self) -> Option<FlushTarget> {
        let &through = self.undurable.back()?;
        self.failure.is_none().then_some(FlushTarget {
            through,
            writes: self.writes,
        })
    }
}

impl Default for OutputGate {
    fn default() -> Self {
        OutputGate::new(Arc::new(FrameGate::default()))
    }
}

impl OutputGate {
    /// A gate that publishes its limit to the sockets' `frames`.
    pub(crate) fn new(frames: Arc<FrameGate>) -> Self {
        OutputGate {
            frames,
            pending: Mutex::new(Pending::default()),
            settled: Notify::new(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().expect("gate lock")
    }

    /// Publishes the limit under `pending`'s lock, so that a later, lower limit is never
    /// published over a higher one.
    fn publish(&self, pending: &Pending) {
        self.frames.publish(pending.limit(self.frames.tag()));
    }

    /// The tag of output produced now.
    fn tag(&self) -> u64 {
        self.frames.tag()
    }

    /// Output tagged below this may leave.
    fn limit(&self) -> u64 {
        self.frames.limit()
    }

    /// Whether output produced now must be held.
    #[cfg(test)]
    fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }

    /// A turn starts.
    pub(crate) fn begin_turn(&self) {
        let pending = self.pending();
        self.frames.begin_turn();
        self.publish(&pending);
    }

    /// The running turn wrote: its output from now on waits for its commit.
    pub(crate) fn wrote(&self) {
        let mut pending = self.pending();
        if !pending.dirty {
            pending.dirty = true;
            self.publish(&pending);
        }
    }

    /// Holds `reply` if output produced now must wait; hands it back otherwise.
    pub(crate) fn hold_reply(&self, reply: HeldReply) -> Option<HeldReply> {
        let mut pending = self.pending();
        let tag = self.tag();
        if tag < self.limit() {
            return Some(reply);
        }
        pending.replies.push_back((tag, reply));
        None
    }

    /// The running turn ended; `batched`: its writes wait in the batch for a commit and a flush.
    /// Releases what may leave now; says whether the batch must be committed now.
    pub(crate) fn turn_ended(&self, batched: bool) -> AfterCommit {
        let after = {
            let mut pending = self.pending();
            pending.dirty = false;
            if batched {
                let turn = self.tag();
                pending.batched.push_back(turn);
                pending.writes += 1;
            }
            if pending.commit_due() {
                AfterCommit::CommitBatch
            } else {
                AfterCommit::Nothing
            }
        };
        self.release();
        after
    }

    /// Whether the batch should be committed now (see [`turn_ended`](Self::turn_ended)).
    pub(crate) fn commit_due(&self) -> bool {
        self.pending().commit_due()
    }

    /// Whether turns' writes wait in the batch, not committed yet.
    pub(crate) fn has_batched(&self) -> bool {
        !self.pending().batched.is_empty()
    }

    /// Whether the batch holds as many turns as one may: the next turn waits for the flush.
    pub(crate) fn batch_is_full(&self) -> bool {
        self.pending().batched.len() >= MAX_BATCH_TURNS
    }

    /// The batch was committed: its turns wait for a flush. Says whether one must start.
    pub(crate) fn batch_committed(&self) -> AfterCommit {
        let mut pending = self.pending();
        let batched = std::mem::take(&mut pending.batched);
        pending.undurable.extend(batched);
        match pending.next_flush() {
            Some(target) if !pending.flushing => {
                pending.flushing = true;
                AfterCommit::Flush(target)
            }
            _ => AfterCommit::Nothing,
        }
    }

    /// A flush that covered turns up to `through` ended. Releases what is now durable (or, on
    /// failure, keeps everything for the reset to drop); says what must happen next.
    pub(crate) fn flushed(&self, through: u64, result: Result<(), WriteFailure>) -> AfterCommit {
        let after = {
            let mut pending = self.pending();
            match result {
                Ok(()) => {
                    while pending
                        .undurable
                        .front()
                        .is_some_and(|&turn| turn <= through)
                    {
                        pending.undurable.pop_front();
                    }
                }
                Err(error) => {
                    pending.undurable.clear();
                    pending.batched.clear();
                    pending.failure.get_or_insert(error);
                }
            }
            match pending.next_flush() {
                Some(target) => AfterCommit::Flush(target),
                None => {
                    pending.flushing = false;
                    if pending.commit_due() {
                        AfterCommit::CommitBatch
                    } else {
                        AfterCommit::Nothing
                    }
                }
            }
        };
        self.release();
        if !matches!(after, AfterCommit::Flush(_)) {
            self.settled.notify_waiters();
        }
        after
    }

    /// Everything the turns wrote so far was committed and made durable by the caller
    /// (`storage.sync()`), the running turn's writes with it.
    pub(crate) fn synced(&self) {
        {
            let mut pending = self.pending();
            pending.dirty = false;
            pending.batched.clear();
            pending.undurable.clear();
        }
        self.release();
    }

    /// A commit, or a flush outside the commit path (`storage.sync()`), failed: nothing leaves
    /// until the object is reset.
    pub(crate) fn fail(&self, error: WriteFailure) {
        let mut pending = self.pending();
        pending.batched.clear();
        pending.failure.get_or_insert(error);
        self.publish(&pending);
    }

    /// Whether a failure waits for the object's reset.
    pub(crate) fn has_failed(&self) -> bool {
        self.pending().failure.is_some()
    }

    /// Waits until no flush is running, so that what was committed is durable (or failed).
    pub(crate) async fn settle(&self) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.pending().flushing {
                return;
            }
            notified.await;
        }
    }

    /// Whether no write waits for a commit or a flush.
    pub(crate) fn is_settled(&self) -> bool {
        let pending = self.pending();
        !pending.flushing && pending.undurable.is_empty() && pending.batched.is_empty()
    }

    /// The failure of a flush, once: the object must be reset.
    pub(crate) fn take_failure(&self) -> Option<WriteFailure> {
        self.pending().failure.take()
    }

    /// The object is reset: drops everything held (answers get `lost`) and forgets the running
    /// turn's writes. Call once no flush runs ([`settle`](Self::settle)).
    pub(crate) fn discard(&self, lost: &Error) {
        let replies = {
            let mut pending = self.pending();
            pending.dirty = false;
            pending.batched.clear();
            pending.undurable.clear();
            pending.failure = None;
            self.publish(&pending);
            std::mem::take(&mut pending.replies)
        };
        self.frames.discard();
        for (_, reply) in replies {
            reply(Some(Error::new(lost.kind(), lost.text().to_owned())));
        }
    }

    /// Publishes the limit and lets out what is below it.
    fn release(&self) {
        let replies = {
            let mut pending = self.pending();
            self.publish(&pending);
            let limit = self.limit();
            let mut replies = Vec::new();
            while pending.replies.front().is_some_and(|(tag, _)| *tag < limit) {
                replies.extend(pending.replies.pop_front().map(|(_, reply)| reply));
            }
            replies
        };
        for reply in replies {
            reply(None);
        }
        self.frames.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush(through: u64, writes: u64) -> AfterCommit {
        AfterCommit::Flush(FlushTarget { through, writes })
    }

    fn recorder() -> (
        Arc<Mutex<Vec<&'static str>>>,
        impl Fn(&'static str) -> HeldReply,
    ) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        (log, move |name| {
            let sink = sink.clone();
            Box::new(move |lost: Option<Error>| {
                sink.lock()
                    .unwrap()
                    .push(if lost.is_some() { "lost" } else { name });
            }) as HeldReply
        })
    }

    /// A turn that writes and answers `name`.
    fn writing_turn(gate: &OutputGate, reply: HeldReply) -> AfterCommit {
        gate.begin_turn();
        gate.wrote();
        assert!(gate.is_closed());
        assert!(gate.hold_reply(reply).is_none());
        gate.turn_ended(true)
    }

    #[test]
    fn output_of_a_turn_without_writes_leaves_at_once() {
        let gate = OutputGate::default();
        gate.begin_turn();
        assert!(!gate.is_closed());
        assert!(gate.hold_reply(Box::new(|_| {})).is_some());
        assert_eq!(gate.turn_ended(false), AfterCommit::Nothing);
        assert!(gate.is_settled());
    }

    #[test]
    fn answers_wait_for_the_flush_of_every_earlier_write_and_leave_in_turn_order() {
        let gate = OutputGate::default();
        let (log, reply) = recorder();
        assert_eq!(
            writing_turn(&gate, reply("first")),
            AfterCommit::CommitBatch
        );
        assert_eq!(gate.batch_committed(), flush(1, 1));
        // The next turn runs while the flush is in flight; it reads only, but its answer must
        // not overtake the first turn's.
        gate.begin_turn();
        assert!(gate.is_closed(), "an earlier write is not durable yet");
        assert!(gate.hold_reply(reply("second")).is_none());
        assert_eq!(gate.turn_ended(false), AfterCommit::Nothing);
        // Two turns write during the flush: they wait in the batch for it to return.
        for name in ["third", "fourth"] {
            assert_eq!(writing_turn(&gate, reply(name)), AfterCommit::Nothing);
        }
        assert!(!gate.commit_due(), "one flush at a time");
        assert!(log.lock().unwrap().is_empty());

        assert_eq!(gate.flushed(1, Ok(())), AfterCommit::CommitBatch);
        assert_eq!(*log.lock().unwrap(), ["first", "second"]);
        assert!(gate.commit_due());
        assert_eq!(gate.batch_committed(), flush(4, 3), "one flush for both");
        assert_eq!(gate.flushed(4, Ok(())), AfterCommit::Nothing);
        assert_eq!(*log.lock().unwrap(), ["first", "second", "third", "fourth"]);
        assert!(gate.is_settled());
        assert!(!gate.is_closed());
    }

    #[test]
    fn a_failed_flush_keeps_everything_until_the_reset_drops_it() {
        let gate = OutputGate::default();
        let (log, reply) = recorder();
        writing_turn(&gate, reply("written"));
        assert_eq!(gate.batch_committed(), flush(1, 1));
        gate.begin_turn();
        assert!(gate.hold_reply(reply("after")).is_none());
        gate.turn_ended(false);
        writing_turn(&gate, reply("batched"));

        assert_eq!(
            gate.flushed(1, Err(WriteFailure::Injected("disk".into()))),
            AfterCommit::Nothing
        );
        assert!(
            log.lock().unwrap().is_empty(),
            "nothing leaves after a failure"
        );
        assert!(!gate.commit_due(), "the batch is never committed");
        gate.begin_turn();
        assert!(gate.is_closed(), "not even output of a turn without writes");
        assert_eq!(
            gate.take_failure().map(|f| f.to_string()).as_deref(),
            Some("storage flush failed: disk")
        );
        gate.discard(&Error::new(dormouse_sdk::ErrorKind::Reset, "reset"));
        assert_eq!(*log.lock().unwrap(), ["lost", "lost", "lost"]);
        gate.begin_turn();
        assert!(!gate.is_closed(), "a reset object starts with an open gate");
    }

    #[test]
    fn a_failed_commit_holds_the_batch_until_the_reset() {
        let gate = OutputGate::default();
        let (log, reply) = recorder();
        writing_turn(&gate, reply("batched"));
        gate.fail(WriteFailure::Injected("full disk".into()));
        assert!(gate.has_failed());
        assert!(!gate.commit_due());
        gate.discard(&Error::new(dormouse_sdk::ErrorKind::Reset, "reset"));
        assert_eq!(*log.lock().unwrap(), ["lost"]);
    }

    #[test]
    fn a_batch_is_full_at_its_bound_and_empties_with_the_next_commit() {
        let gate = OutputGate::default();
        writing_turn(&gate, Box::new(|_| {}));
        assert_eq!(gate.batch_committed(), flush(1, 1));
        for _ in 0..MAX_BATCH_TURNS {
            assert!(!gate.batch_is_full());
            writing_turn(&gate, Box::new(|_| {}));
        }
        assert!(gate.batch_is_full(), "the next turn waits for the flush");
        assert_eq!(gate.flushed(1, Ok(())), AfterCommit::CommitBatch);
        gate.batch_committed();
        assert!(!gate.batch_is_full());
    }

    #[test]
    fn sync_makes_everything_committed_durable() {
        let gate = OutputGate::default();
        let (log, reply) = recorder();
        gate.begin_turn();
        gate.wrote();
        assert!(gate.hold_reply(reply("before sync")).is_none());
        gate.synced();
        assert_eq!(*log.lock().unwrap(), ["before sync"]);
        assert!(!gate.is_closed());
    }
}
