//! Objects: the cell each object lives in, its mailbox, its task and its context.
//!
//! An [`ObjectCell`] outlives instances: it is the registry entry, holds the mailbox, its group of
//! sockets (with their auto-responses) and the event timeout, and survives hibernation. An instance (the
//! application's `DurableObject` value) exists only while the object's task runs; hibernating
//! means ending the task and dropping the instance, while the cell and its sockets stay.
//!
//! Lock order, to rule out deadlocks: registry shard, then [`ObjectCell::state`], then the
//! group's socket set, then a socket's own lock, then the output gate's state. The gate never
//! holds its state while it takes a socket's. No code takes them in another order.
//!
//! The cell is its sockets' [`SocketOwner`]: the holder hands it their events and knows nothing
//! else of it.
//!
//! - `task`: the runner of turns; `guard`: one handler call, its panics caught and its time
//!   bounded; `context`: `State`'s host; `alarm`: the alarm event; `socket_event`: a socket's
//!   event; `gate`: the output gate; `commit`: flushes and checkpoints; `inspection`: what the
//!   inspector reads and does between turns; `reset`: resets, and sockets told their object
//!   moved; `logged`: the entries of the object's live log.

mod alarm;
mod commit;
mod context;
mod gate;
mod guard;
mod inspection;
mod logged;
mod reset;
mod socket_event;
mod task;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use dormouse_holder::{FrameGate, SocketEvent, SocketGroup, SocketOwner, SocketRecord};
use dormouse_sdk::{ObjectId, Request, Response};
use dormouse_storage::{InspectLimits, StorageError, StorageView};
use tokio::sync::{Notify, oneshot};

pub(crate) use context::ObjectContext;
pub(crate) use gate::{OutputGate, WriteFailure};
pub(crate) use task::SHUTDOWN_REASON;

use crate::config::Limits;
use crate::namespace::Namespace;
use crate::registry::CellKey;

/// Mailbox slots an object keeps once its mailbox empties: the buffer of a burst's backlog (up to
/// the mailbox's capacity, thousands of requests) goes back, while a steady trickle reuses its
/// small one.
const MAILBOX_KEPT_CAPACITY: usize = 64;

/// Whether an object has a task (and so, possibly, an instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No task and no instance. With open sockets, the object is hibernated.
    Dormant,
    /// A task runs the object's turns.
    Running,
    /// Removed from the registry; deliveries must look the object up again.
    Retired,
}

/// Something for the object to do.
pub(crate) enum Envelope {
    /// An HTTP request from a stub; the reply goes back to the caller.
    Fetch {
        request: Request,
        reply: oneshot::Sender<dormouse_sdk::Result<Response>>,
    },
    /// An event of one of the object's hibernatable sockets.
    Socket {
        socket: Arc<SocketRecord>,
        event: SocketEvent,
    },
    /// A call of a guest's method (JavaScript RPC); the reply goes back to the caller.
    Call {
        method: String,
        args: bytes::Bytes,
        reply: oneshot::Sender<dormouse_sdk::Result<bytes::Bytes>>,
    },
    /// The instance asked for a turn of its own (`ObjectHost::schedule_turn`).
    Resume,
    /// The object's alarm is due (or a retry of it).
    Alarm {
        /// The time the alarm was set for, in milliseconds since the epoch.
        scheduled_ms: i64,
        /// Failed attempts so far.
        retry: u32,
    },
    /// An instruction from the runtime, processed in order with events.
    Control(Control),
}

impl Envelope {
    /// Payload bytes held by the envelope, counted against the mailbox byte limit.
    fn weight(&self) -> usize {
        match self {
            Envelope::Socket { event, .. } => event.weight(),
            _ => 0,
        }
    }
}

/// Instructions from the runtime to an object's task.
pub(crate) enum Control {
    /// Hibernate now if nothing prevents it; the reply says why not otherwise.
    Hibernate(oneshot::Sender<Result<(), NotHibernatable>>),
    /// The runtime stops: close every socket with `code`, drop the instance, end the task. The
    /// turn in progress (if any) has finished by the time this is handled.
    Shutdown {
        code: u16,
        done: oneshot::Sender<()>,
    },
    /// The guest's code changed: drop the instance now (as hibernation does, whatever keeps it in
    /// memory) so that the next event constructs one from the new code. Hibernatable sockets stay
    /// open; standard sockets, which belong to the old instance, close with 1012.
    Refresh(oneshot::Sender<()>),
    /// An instruction of the inspector, served between turns; it never constructs an instance,
    /// so a hibernated object stays hibernated.
    Inspector(Inspection),
}

/// What the inspector asks of an object.
pub(crate) enum Inspection {
    /// Read its storage.
    Read {
        limits: InspectLimits,
        reply: oneshot::Sender<Result<Option<StorageView>, StorageError>>,
    },
    /// Delete its alarm.
    DeleteAlarm(oneshot::Sender<Result<(), StorageError>>),
    /// Reset it, as a failed turn would.
    Reset(oneshot::Sender<()>),
}

/// Why a delivery was not accepted; the envelope is handed back.
pub(crate) enum Refused {
    /// The mailbox is full.
    Full(Envelope),
    /// The cell was retired; look the object up again.
    Retired(Envelope),
}

/// Mutable state of a cell, behind [`ObjectCell::state`].
struct CellState {
    phase: Phase,
    mailbox: VecDeque<Envelope>,
    /// Sum of [`Envelope::weight`] over the mailbox.
    mailbox_bytes: usize,
    /// Unfinished `wait_until` work; while non-zero the object does not hibernate.
    wait_until: usize,
    /// The task ended by hibernating with sockets open: the next instance is a wake.
    hibernated: bool,
    /// When the event that woke a hibernated object arrived, for the wake-latency metric.
    woken_at: Option<Instant>,
}

impl CellState {
    /// The task leaves the object: it is hibernated if the task just dropped an instance with
    /// sockets open (`dropped_with_sockets`), or if it was hibernated before and the task made no
    /// instance (it served the inspector, or the event that woke it was dropped) while its
    /// sockets stay open.
    fn go_dormant(&mut self, dropped_with_sockets: bool, any_socket: bool) {
        self.phase = Phase::Dormant;
        let woken_in_vain = self.woken_at.take().is_some();
        self.hibernated =
            dropped_with_sockets || ((self.hibernated || woken_in_vain) && any_socket);
    }
}

/// One object: its identity, mailbox, sockets and the settings that survive hibernation.
pub(crate) struct ObjectCell {
    pub(crate) namespace: Arc<Namespace>,
    raw: [u8; 32],
    /// Set once the object is addressed by name, so that `state.id().name()` works inside it.
    name: OnceLock<Arc<str>>,
    state: Mutex<CellState>,
    /// Wakes the object's task: an envelope was queued, `wait_until` work ended, or a standard
    /// socket saw traffic (all of which restart the idle clock).
    work: Notify,
    /// Sockets waiting for mailbox space. Each freed slot wakes one; a woken socket that got its
    /// events in passes the turn on while space remains, so a full mailbox never wakes every
    /// waiting socket at once.
    space_waiters: Mutex<VecDeque<Waker>>,
    /// Every accepted socket of the object, hibernatable or standard, and their auto-responses.
    pub(crate) sockets: Arc<SocketGroup>,
    /// Holds application output until the writes made before it are durable.
    pub(crate) gate: OutputGate,
    /// The WebSocket event timeout in milliseconds; 0 when unset.
    event_timeout_ms: AtomicU64,
    /// When the object last handled an event, in milliseconds since the epoch; 0: never.
    last_event_ms: AtomicU64,
}

impl ObjectCell {
    pub(crate) fn new(namespace: Arc<Namespace>, raw: [u8; 32]) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<ObjectCell>| {
            let frames = Arc::new(FrameGate::default());
            let owner: Weak<dyn SocketOwner> = this.clone();
            ObjectCell {
                sockets: SocketGroup::new(owner, namespace.sockets.clone(), frames.clone()),
                gate: OutputGate::new(frames),
                namespace,
                raw,
                name: OnceLock::new(),
                state: Mutex::new(CellState {
                    phase: Phase::Dormant,
                    mailbox: VecDeque::new(),
                    mailbox_bytes: 0,
                    wait_until: 0,
                    hibernated: false,
                    woken_at: None,
                }),
                work: Notify::new(),
                last_event_ms: AtomicU64::new(0),
                space_waiters: Mutex::new(VecDeque::new()),
                event_timeout_ms: AtomicU64::new(0),
            }
        })
    }

    fn state(&self) -> MutexGuard<'_, CellState> {
        self.state.lock().expect("cell state lock")
    }

    pub(crate) fn key(&self) -> CellKey {
        CellKey {
            namespace: self.namespace.index,
            raw: self.raw,
        }
    }

    pub(crate) fn id(&self) -> ObjectId {
        ObjectId::from_raw(self.raw, self.name.get().cloned())
    }

    pub(crate) fn learn_name(&self, name: &str) {
        if self.name.get().is_none() {
            let _ = self.name.set(name.into());
        }
    }

    /// Wakes the object's task to look at its gate (a flush failed: it must reset the object).
    pub(crate) fn wake_task(&self) {
        self.work.notify_one();
    }

    /// An event was handled at `at` (an instant the task read anyway): stored as wall-clock
    /// milliseconds without reading the wall clock per event.
    fn note_event(&self, at: Instant) {
        static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();
        let (origin, origin_ms) = *ORIGIN.get_or_init(|| {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64);
            (Instant::now(), wall)
        });
        let ms = origin_ms + at.saturating_duration_since(origin).as_millis() as u64;
        self.last_event_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// When the object last handled an event, in milliseconds since the epoch.
    pub(crate) fn last_event_ms(&self) -> Option<u64> {
        Some(self.last_event_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0)
    }

    pub(crate) fn phase(&self) -> Phase {
        self.state().phase
    }

    /// Queues `envelope`, starting the object's task if it has none (waking it if hibernated).
    ///
    /// Refuses when the mailbox is over its count or byte limit; a single message larger than the
    /// byte limit is still accepted into an empty mailbox, since it fits the message size limit.
    #[allow(
        clippy::result_large_err,
        reason = "a refused envelope is handed back to its sender"
    )]
    pub(crate) fn try_deliver(
        self: &Arc<Self>,
        envelope: Envelope,
        limits: &Limits,
    ) -> Result<(), Refused> {
        let start_task = {
            let mut state = self.state();
            if state.phase == Phase::Retired {
                return Err(Refused::Retired(envelope));
            }
            let weight = envelope.weight();
            // Runtime instructions, alarms and a guest's own turns are few and must not be lost to
            // a busy object.
            let is_control = matches!(
                envelope,
                Envelope::Control(_) | Envelope::Alarm { .. } | Envelope::Resume
            );
            let over_count = state.mailbox.len() >= limits.mailbox_capacity;
            let over_bytes =
                !state.mailbox.is_empty() && state.mailbox_bytes + weight > limits.mailbox_bytes;
            if !is_control && (over_count || over_bytes) {
                return Err(Refused::Full(envelope));
            }
            // Only an event makes an instance: the runtime's instructions and the guest's own
            // turns leave a hibernated object hibernated. A task may already run without an
            // instance (serving the inspector) when the event comes; it is a wake all the same.
            let wakes = matches!(
                envelope,
                Envelope::Fetch { .. }
                    | Envelope::Socket { .. }
                    | Envelope::Call { .. }
                    | Envelope::Alarm { .. }
            );
            if wakes && std::mem::take(&mut state.hibernated) {
                state.woken_at = Some(Instant::now());
            }
            state.mailbox.push_back(envelope);
            state.mailbox_bytes += weight;
            let start_task = state.phase == Phase::Dormant;
            state.phase = Phase::Running;
            start_task
        };
        if start_task {
            let run = task::run(self.clone());
            match &self.namespace.executor {
                Some(executor) => drop(executor.spawn(run)),
                None => drop(tokio::spawn(run)),
            }
        } else {
            self.work.notify_one();
        }
        Ok(())
    }

    fn wake_one_space_waiter(&self) {
        let waiter = self
            .space_waiters
            .lock()
            .expect("space waiters lock")
            .pop_front();
        if let Some(waker) = waiter {
            waker.wake();
        }
    }

    /// Takes the next envelope, for the object's task.
    fn pop(&self) -> Option<Envelope> {
        let envelope = {
            let mut state = self.state();
            let envelope = state.mailbox.pop_front()?;
            state.mailbox_bytes -= envelope.weight();
            if state.mailbox.is_empty() && state.mailbox.capacity() > MAILBOX_KEPT_CAPACITY {
                state.mailbox.shrink_to(MAILBOX_KEPT_CAPACITY);
            }
            envelope
        };
        self.wake_one_space_waiter();
        Some(envelope)
    }

    /// Marks the cell retired if it is dormant, idle and has no sockets; called by the registry
    /// under its shard lock.
    pub(crate) fn retire_if_empty(&self) -> bool {
        let mut state = self.state();
        if state.phase != Phase::Dormant || !state.mailbox.is_empty() {
            return false;
        }
        if !self.sockets.sockets().is_empty() {
            return false;
        }
        state.phase = Phase::Retired;
        true
    }

    pub(crate) fn event_timeout(&self) -> Option<Duration> {
        match self.event_timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    pub(crate) fn set_event_timeout(&self, timeout: Option<Duration>) {
        let ms = timeout.map_or(0, |t| t.as_millis().clamp(1, u128::from(u64::MAX)) as u64);
        self.event_timeout_ms.store(ms, Ordering::Relaxed);
    }

    fn begin_wait_until(&self) {
        self.state().wait_until += 1;
    }

    fn end_wait_until(&self) {
        self.state().wait_until -= 1;
        self.work.notify_one();
    }

    /// What keeps this object from hibernating now, in words; empty if nothing does.
    pub(crate) fn hibernation_blockers(&self) -> Vec<String> {
        self.blockers(&self.state()).words()
    }

    /// What keeps the object in memory, read under its state lock: the one place that decides
    /// whether it may leave.
    fn blockers(&self, state: &CellState) -> Blockers {
        let sockets = self.sockets.sockets();
        Blockers {
            queued: state.mailbox.len(),
            wait_until: state.wait_until,
            standard_sockets: sockets.standard_count(),
            any_socket: !sockets.is_empty(),
        }
    }

    /// Closes every socket of a dormant object (shutdown); false if the object is running (its
    /// task must do it, after its turn).
    pub(crate) fn close_if_dormant(&self, code: u16, reason: &str) -> bool {
        let state = self.state();
        if state.phase == Phase::Running {
            return false;
        }
        drop(state);
        self.sockets.terminate_all(code, reason);
        true
    }

    /// Counts for diagnostics: (queued events, hibernatable sockets, standard sockets).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let queued = self.state().mailbox.len();
        let sockets = self.sockets.sockets();
        (
            queued,
            sockets.hibernatable_count(),
            sockets.standard_count(),
        )
    }
}

/// What keeps an object in memory, and whether it has sockets to hibernate with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blockers {
    /// Envelopes in the mailbox (the object has work, not an idle instance).
    pub(crate) queued: usize,
    /// Unfinished `wait_until` work.
    pub(crate) wait_until: usize,
    /// Standard sockets, which belong to the instance.
    pub(crate) standard_sockets: usize,
    /// Any socket at all: leaving memory with one is hibernating.
    pub(crate) any_socket: bool,
}

impl Blockers {
    /// Whether the instance must stay: it has work, or holds what dies with it.
    pub(crate) fn pin_instance(&self) -> bool {
        self.wait_until > 0 || self.standard_sockets > 0
    }

    /// Whether nothing keeps the object from leaving memory now.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0 && !self.pin_instance()
    }

    /// Each blocker in words, for operators.
    pub(crate) fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if self.queued > 0 {
            words.push(format!("{} event(s) queued", self.queued));
        }
        if self.wait_until > 0 {
            words.push(format!("{} wait_until task(s) pending", self.wait_until));
        }
        if self.standard_sockets > 0 {
            words.push(format!(
                "{} standard (non-hibernatable) WebSocket(s) open",
                self.standard_sockets
            ));
        }
        words
    }
}

/// Why an object asked to hibernate did not.
#[derive(Debug)]
pub(crate) struct NotHibernatable(pub(crate) Blockers);

impl std::fmt::Display for NotHibernatable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.words().join("; "))
    }
}

/// The holder hands the cell its sockets' events, and tells it of traffic and room.
impl SocketOwner for ObjectCell {
    fn deliver(
        self: Arc<Self>,
        socket: Arc<SocketRecord>,
        event: SocketEvent,
        waker: &Waker,
    ) -> Result<(), SocketEvent> {
        let limits = &self.namespace.config.limits;
        let envelope = match self.try_deliver(Envelope::Socket { socket, event }, limits) {
            // A retired cell has no sockets: the event is dropped.
            Ok(()) | Err(Refused::Retired(_)) => return Ok(()),
            Err(Refused::Full(envelope)) => envelope,
        };
        self.space_waiters
            .lock()
            .expect("space waiters lock")
            .push_back(waker.clone());
        // Space may have been freed between the attempt and the registration: try once more.
        match self.try_deliver(envelope, limits) {
            Ok(()) | Err(Refused::Retired(_)) => Ok(()),
            Err(Refused::Full(Envelope::Socket { event, .. })) => Err(event),
            Err(Refused::Full(_)) => unreachable!("a socket envelope comes back as one"),
        }
    }

    fn backlog_delivered(&self) {
        let limits = &self.namespace.config.limits;
        let room = {
            let state = self.state();
            state.mailbox.len() < limits.mailbox_capacity
                && state.mailbox_bytes < limits.mailbox_bytes
        };
        if room {
            self.wake_one_space_waiter();
        }
    }

    /// Restarts the idle clock of a running object (standard-socket traffic counts as activity).
    fn note_activity(&self) {
        self.work.notify_one();
    }
}

impl std::fmt::Debug for ObjectCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCell")
            .field("namespace", &self.namespace.binding)
            .field("id", &self.id())
            .finish()
    }
}
