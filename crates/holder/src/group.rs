//! [`SocketGroup`]: the sockets of one owner and what they share.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use dormouse_sdk::{Outgoing, WebSocketId, WebSocketRequestResponsePair};

use crate::config::SocketSettings;
use crate::gate::FrameGate;
use crate::owner::SocketOwner;
use crate::record::{BroadcastFrames, SocketRecord};
use crate::set::SocketSet;

/// Frames one turn writes straight to their sockets. A reply or two goes out at once, with no
/// hop through a driver; a turn that sends to a whole room queues the rest for the drivers,
/// which write each socket's frames together instead of making a system call per frame.
const DIRECT_SENDS_PER_TURN: u32 = 4;

/// Every socket of one owner, its output gate and auto-responses.
///
/// Lock order: a group's set before a socket's own lock; a socket's lock is never held while an
/// owner is called (events are delivered after it is released).
pub struct SocketGroup {
    /// Weak: the owner holds its group.
    owner: Weak<dyn SocketOwner>,
    pub(crate) settings: Arc<SocketSettings>,
    set: Mutex<SocketSet>,
    /// Holds frames until the owner's writes before them are durable.
    pub(crate) gate: Arc<FrameGate>,
    /// Auto-response pairs, read by socket readers for every text or binary frame.
    auto_responses: RwLock<Arc<[WebSocketRequestResponsePair]>>,
    /// Frames the running turn wrote straight to their sockets (see [`DIRECT_SENDS_PER_TURN`]).
    direct_sends: AtomicU32,
}

impl std::fmt::Debug for SocketGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketGroup").finish_non_exhaustive()
    }
}

impl SocketGroup {
    /// A group reporting to `owner`, with the output gate `gate` (the owner publishes its limit).
    pub fn new(
        owner: Weak<dyn SocketOwner>,
        settings: Arc<SocketSettings>,
        gate: Arc<FrameGate>,
    ) -> Arc<Self> {
        Arc::new(SocketGroup {
            owner,
            settings,
            set: Mutex::new(SocketSet::default()),
            gate,
            auto_responses: RwLock::new(Arc::from(Vec::new())),
            direct_sends: AtomicU32::new(0),
        })
    }

    /// The owner, unless it is gone (its events are then dropped).
    pub(crate) fn owner(&self) -> Option<Arc<dyn SocketOwner>> {
        self.owner.upgrade()
    }

    /// The sockets, locked.
    pub fn sockets(&self) -> MutexGuard<'_, SocketSet> {
        self.set.lock().expect("socket set lock")
    }

    /// The settings the group was built with.
    pub fn settings(&self) -> &SocketSettings {
        &self.settings
    }

    /// A new socket of this group, not accepted yet.
    pub fn new_socket(self: &Arc<Self>) -> Arc<SocketRecord> {
        SocketRecord::new(self.clone())
    }

    /// A turn begins: its first sends go straight out again.
    pub fn begin_turn(&self) {
        self.direct_sends.store(0, Ordering::Relaxed);
    }

    /// Whether the running turn may write one more frame straight to its socket.
    pub(crate) fn take_direct_send(&self) -> bool {
        self.direct_sends.fetch_add(1, Ordering::Relaxed) < DIRECT_SENDS_PER_TURN
    }

    /// Replaces the auto-response pairs.
    pub fn set_auto_responses(&self, pairs: Vec<WebSocketRequestResponsePair>) {
        *self.auto_responses.write().expect("auto-response lock") = Arc::from(pairs);
    }

    /// The auto-response pairs.
    pub fn auto_responses(&self) -> Arc<[WebSocketRequestResponsePair]> {
        self.auto_responses
            .read()
            .expect("auto-response lock")
            .clone()
    }

    /// The frame answering `payload`, if a pair matches it.
    pub(crate) fn auto_response(&self, payload: &[u8], binary: bool) -> Option<Bytes> {
        let pairs = self.auto_responses.read().expect("auto-response lock");
        let pair = pairs
            .iter()
            .find(|p| p.is_binary() == binary && p.request_bytes() == payload)?;
        let opcode = if binary {
            dormouse_ws::frame::Opcode::Binary
        } else {
            dormouse_ws::frame::Opcode::Text
        };
        Some(dormouse_ws::encode::frame(
            true,
            opcode,
            pair.response_bytes(),
            None,
        ))
    }

    /// Sends `message` to the hibernatable sockets (all, or those with `tag`) except `except`;
    /// returns how many took it. It is encoded once, and compressed once for all the sockets
    /// that agreed to compression. A socket that is closing is skipped, not an error.
    pub fn broadcast(
        &self,
        tag: Option<&str>,
        message: Outgoing<'_>,
        except: Option<WebSocketId>,
    ) -> usize {
        let frames = BroadcastFrames::new(message);
        // Sending under the set's lock follows the lock order (set, then socket), and spares a
        // room of thousands a list of them per message.
        self.sockets()
            .hibernatable(tag)
            .filter(|record| Some(record.id()) != except && record.send_broadcast(&frames))
            .count()
    }

    /// Ends every socket without an event (a reset, a shutdown), with `code` and `reason`.
    pub fn terminate_all(&self, code: u16, reason: &str) {
        let sockets = self.sockets().take_all();
        for socket in sockets {
            socket.terminate(code, reason);
        }
    }

    /// Ends the standard sockets without an event (an eviction, a reload).
    pub fn terminate_standard(&self, code: u16, reason: &str) {
        let sockets = self.sockets().take_standard();
        for socket in sockets {
            socket.terminate(code, reason);
        }
    }

    /// Pings sockets silent for `interval` (zero: never); drops those that did not answer within
    /// `timeout` or whose close handshake ran past its deadline. `now` is [`crate::clock_ms`].
    pub fn check_liveness(&self, now: u64, interval: Duration, timeout: Duration) {
        let sockets: Vec<_> = self.sockets().all().cloned().collect();
        for socket in sockets {
            socket.check_liveness(now, interval, timeout);
        }
    }
}
