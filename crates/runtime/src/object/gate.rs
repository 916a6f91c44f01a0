//! The output gate: what an object sends after writing waits until the write is durable.
//!
//! While a turn has uncommitted writes, frames the application sends (messages, broadcasts,
//! closes) are held in each socket, in order, instead of going to the network. When the turn's
//! commit succeeds they are released; if it fails they are dropped with the object. The gate only
//! remembers which sockets hold frames; the frames stay in the sockets so that a socket's output
//! keeps its order without the gate ever taking a socket's lock while holding its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::socket::SocketRecord;

/// The output gate of one object.
#[derive(Default)]
pub(crate) struct OutputGate {
    /// Uncommitted writes exist: application output must be held.
    closed: AtomicBool,
    /// Sockets holding frames behind the gate.
    holding: Mutex<Vec<Arc<SocketRecord>>>,
}

impl OutputGate {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A write happened: hold application output from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// If the gate is closed, remembers that `socket` starts holding frames and returns true.
    /// Checked under the gate's lock, so that a socket never registers after the gate opened
    /// and its frames are never stranded.
    pub(crate) fn hold(&self, socket: &Arc<SocketRecord>) -> bool {
        let mut holding = self.holding.lock().expect("gate lock");
        if !self.closed.load(Ordering::Acquire) {
            return false;
        }
        holding.push(socket.clone());
        true
    }

    /// The writes are durable: send what was held.
    pub(crate) fn open(&self) {
        for socket in self.take() {
            socket.release_held(true);
        }
    }

    /// The writes were lost: drop what was held.
    pub(crate) fn discard(&self) {
        for socket in self.take() {
            socket.release_held(false);
        }
    }

    /// Opens the gate and takes the list of holding sockets, atomically with [`hold`](Self::hold).
    fn take(&self) -> Vec<Arc<SocketRecord>> {
        let mut holding = self.holding.lock().expect("gate lock");
        self.closed.store(false, Ordering::Release);
        std::mem::take(&mut *holding)
    }
}
