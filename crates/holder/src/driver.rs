//! Drivers: a few tasks that poll every connected socket, so that no socket needs a task.
//!
//! A socket's record is its own [`Waker`](std::task::Waker): when tokio sees the connection
//! readable or writable (or the runtime queues output for it), waking the record puts it on its
//! driver's queue, once. The driver then polls it in place. An idle socket thus costs its record
//! and tokio's registration, nothing more.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;

use crate::record::SocketRecord;

/// Sockets a driver polls before yielding to other tasks on its thread.
const POLLS_PER_YIELD: usize = 64;

/// Drivers per runtime thread: more than one lets tokio spread busy sockets across threads.
const DRIVERS_PER_THREAD: usize = 2;

/// One driver: a queue of sockets that need polling, and the task that polls them.
#[derive(Default)]
pub(crate) struct Driver {
    queue: Mutex<VecDeque<Arc<SocketRecord>>>,
    /// The driver task, parked while the queue is empty.
    waker: AtomicWaker,
    started: AtomicBool,
}

/// The drivers of one runtime; a socket always goes to the same one.
#[derive(Debug)]
pub struct Drivers(Box<[Arc<Driver>]>);

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Drivers {
    /// Drivers for the machine's threads (started on first use).
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Drivers(
            (0..threads * DRIVERS_PER_THREAD)
                .map(|_| Arc::new(Driver::default()))
                .collect(),
        )
    }

    pub(crate) fn for_socket(&self, id: u64) -> &Arc<Driver> {
        &self.0[id as usize % self.0.len()]
    }
}

impl Default for Drivers {
    fn default() -> Self {
        Drivers::new()
    }
}

impl Driver {
    /// Starts the driver task if it is not running; called from inside the async runtime.
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().run());
        }
    }

    /// Queues `record` for polling.
    pub(crate) fn push(&self, record: Arc<SocketRecord>) {
        self.queue
            .lock()
            .expect("driver queue lock")
            .push_back(record);
        self.waker.wake();
    }

    fn pop(&self) -> Option<Arc<SocketRecord>> {
        self.queue.lock().expect("driver queue lock").pop_front()
    }

    async fn run(self: Arc<Self>) {
        loop {
            poll_fn(|cx| {
                self.waker.register(cx.waker());
                if self.queue.lock().expect("driver queue lock").is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let mut polled = 0;
            while let Some(record) = self.pop() {
                record.unschedule();
                let waker = Waker::from(record.clone());
                record.poll_step(&mut Context::from_waker(&waker));
                polled += 1;
                if polled % POLLS_PER_YIELD == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}
