//! The sockets' side of an owner's output gate: frames wait in their sockets until the owner
//! says the writes before them are durable.
//!
//! Turns are numbered. A frame is tagged with the running turn and may leave once the owner's
//! published limit is above its tag. The owner decides the limit (its commits and flushes); this
//! gate only remembers which sockets hold frames, so that a rise of the limit visits them, and
//! never takes a socket's lock while holding its own. A socket also releases its frames below
//! the limit whenever it sends again, so a frame is never stranded behind a limit that has
//! already moved past it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::SocketRecord;

/// Holds frames behind the owner's limit.
#[derive(Debug)]
pub struct FrameGate {
    /// The running (or last) turn; output produced now is tagged with it.
    turn: AtomicU64,
    /// Output tagged below this may leave. Written under `holding`'s lock only.
    limit: AtomicU64,
    holding: Mutex<Holding>,
    /// Serializes releases, so that every holding socket is visited after each rise.
    releasing: Mutex<()>,
}

#[derive(Debug, Default)]
struct Holding {
    /// Sockets holding frames.
    sockets: Vec<Arc<SocketRecord>>,
    /// The limit when the holding sockets were last visited: no socket holds a frame tagged
    /// below it, so a release that does not raise the limit above it has nothing to visit.
    visited: u64,
}

impl Default for FrameGate {
    fn default() -> Self {
        FrameGate {
            turn: AtomicU64::new(0),
            limit: AtomicU64::new(1),
            holding: Mutex::new(Holding::default()),
            releasing: Mutex::new(()),
        }
    }
}

impl FrameGate {
    fn holding(&self) -> MutexGuard<'_, Holding> {
        self.holding.lock().expect("frame gate lock")
    }

    /// A turn starts; returns its number.
    pub fn begin_turn(&self) -> u64 {
        self.turn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The tag of output produced now.
    pub fn tag(&self) -> u64 {
        self.turn.load(Ordering::Relaxed)
    }

    /// Output tagged below this may leave.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Whether output produced now must be held.
    pub fn is_closed(&self) -> bool {
        self.tag() >= self.limit()
    }

    /// Sets the limit. Frames held from now on may be tagged as low as it: a later rise above
    /// it visits the sockets again. Call [`release`](Self::release) after a rise.
    pub fn publish(&self, limit: u64) {
        let mut holding = self.holding();
        holding.visited = holding.visited.min(limit);
        self.limit.store(limit, Ordering::Release);
    }

    /// If output tagged `tag` must wait, remembers that `socket` starts holding frames and
    /// returns true. Called under the socket's lock for its first held frame; checked under the
    /// gate's lock, so that a socket never registers after a release that would have let its
    /// frame out.
    pub(crate) fn hold(&self, socket: &Arc<SocketRecord>, tag: u64) -> bool {
        let mut holding = self.holding();
        if tag < self.limit() {
            return false;
        }
        holding.sockets.push(socket.clone());
        true
    }

    /// Lets out every held frame below the limit.
    pub fn release(&self) {
        let _releasing = self.releasing.lock().expect("frame gate release lock");
        let sockets = {
            let mut holding = self.holding();
            let limit = self.limit();
            if holding.sockets.is_empty() || limit <= holding.visited {
                return;
            }
            holding.visited = limit;
            std::mem::take(&mut holding.sockets)
        };
        let still: Vec<_> = sockets
            .into_iter()
            .filter(|socket| socket.release_held())
            .collect();
        if !still.is_empty() {
            self.holding().sockets.extend(still);
        }
    }

    /// The writes before the held frames were lost: drops every held frame.
    pub fn discard(&self) {
        let _releasing = self.releasing.lock().expect("frame gate release lock");
        let sockets = std::mem::take(&mut self.holding().sockets);
        for socket in sockets {
            socket.discard_held();
        }
    }
}
