//! [`Runtime`]: the handle the server (and tests) use, over the state everything it runs shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use dormouse_holder::{Negotiated, SocketRecord};
use dormouse_sdk::response::WebSocketUpgrade;
use dormouse_sdk::{Env, ObjectId};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::alarms::AlarmScheduler;
use crate::builder::RuntimeBuilder;
use crate::config::RuntimeConfig;
use crate::error::{Result, RuntimeError};
use crate::metrics::{self, NamespaceGauges};
use crate::namespace::Namespace;
use crate::object::{Control, Envelope, ObjectCell, Phase, Refused};
use crate::placement::Placement;
use crate::registry::{CellKey, Registry};

/// State shared by everything the runtime runs.
pub(crate) struct Shared {
    pub(crate) config: Arc<RuntimeConfig>,
    pub(crate) registry: Registry,
    /// Indexed by [`Namespace::index`].
    pub(crate) namespaces: Vec<Arc<Namespace>>,
    pub(crate) env: Env,
    pub(crate) vars: HashMap<String, String>,
    pub(crate) alarms: Arc<AlarmScheduler>,
    /// Set when an instance was dropped; the memory trimmer returns freed pages to the OS.
    pub(crate) memory_to_return: AtomicBool,
    /// The runtime is shutting down: new requests are refused.
    pub(crate) closing: AtomicBool,
    /// Which node runs each object, in cluster mode; `None`: all run here.
    pub(crate) placement: Option<Arc<dyn Placement>>,
}

impl Shared {
    pub(crate) fn namespace_at(&self, index: u32) -> &Arc<Namespace> {
        &self.namespaces[index as usize]
    }

    pub(crate) fn namespace_by_index(&self, index: u32) -> Option<&Arc<Namespace>> {
        self.namespaces.get(index as usize)
    }

    pub(crate) fn namespace(&self, binding: &str) -> Option<&Arc<Namespace>> {
        self.namespaces.iter().find(|ns| ns.binding == binding)
    }

    /// Called when an instance is dropped (hibernation, eviction, reset).
    pub(crate) fn after_instance_dropped(&self) {
        self.memory_to_return.store(true, Ordering::Relaxed);
    }
}

/// What the runtime knows of one object, for diagnostics.
#[derive(Debug, Clone)]
pub struct ObjectStatus {
    /// The binding of its namespace.
    pub binding: String,
    /// Its id (64 hex digits).
    pub id: String,
    /// Its name, if it was addressed by name.
    pub name: Option<String>,
    /// Whether it has an instance in memory.
    pub state: ObjectState,
    /// Open hibernatable sockets.
    pub hibernatable_sockets: usize,
    /// Open standard sockets (each keeps the object in memory).
    pub standard_sockets: usize,
    /// Events waiting in its mailbox.
    pub queued_events: usize,
    /// What keeps it from hibernating now; empty when nothing does.
    pub hibernation_blockers: Vec<String>,
    /// When it last handled an event, in milliseconds since the epoch (since this process
    /// started).
    pub last_event_ms: Option<u64>,
}

/// The memory state of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    /// An instance is in memory.
    Active,
    /// No instance; its hibernatable sockets are open.
    Hibernated,
    /// No instance and no sockets (about to be forgotten).
    Idle,
}

/// The outcome of [`Runtime::hibernate_all`].
#[derive(Debug, Clone, Default)]
pub struct HibernateReport {
    /// Objects that were in memory and now are not.
    pub hibernated: usize,
    /// Objects that could not hibernate, with why: (binding, id, reasons).
    pub refused: Vec<(String, String, String)>,
}

/// The object host. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("objects", &self.shared.registry.len())
            .finish()
    }
}

impl Runtime {
    /// Starts registering classes.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The environment handed to the Worker and to objects.
    pub fn env(&self) -> Env {
        self.shared.env.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// Connects the client end carried by a 101 response to the upgraded TCP connection.
    /// `leftover` holds bytes read past the handshake.
    pub fn attach(
        &self,
        upgrade: &WebSocketUpgrade,
        stream: TcpStream,
        leftover: Bytes,
    ) -> Result<()> {
        self.attach_negotiated(upgrade, stream, leftover, Negotiated::default())
    }

    /// [`attach`](Self::attach), with what the handshake settled: the chosen subprotocol, and a
    /// lease held while the connection is open.
    pub fn attach_negotiated(
        &self,
        upgrade: &WebSocketUpgrade,
        stream: TcpStream,
        leftover: Bytes,
        negotiated: Negotiated,
    ) -> Result<()> {
        let record =
            SocketRecord::arc_from_handle(upgrade.client()).ok_or(RuntimeError::ForeignSocket)?;
        record.attach(stream, leftover, negotiated);
        Ok(())
    }

    /// Hibernates the object now if nothing prevents it, as if its idle timeout had passed:
    /// for tests and operators. Succeeds at once for an object that is not in memory.
    pub async fn hibernate_now(&self, binding: &str, id: &ObjectId) -> Result<()> {
        let key = self.key_of(binding, *id.as_bytes())?;
        match self.shared.registry.get(&key) {
            None => Ok(()),
            Some(cell) => hibernate_cell(&cell).await,
        }
    }

    /// Hibernates every object that can hibernate now.
    pub async fn hibernate_all(&self) -> HibernateReport {
        let mut report = HibernateReport::default();
        for cell in self.shared.registry.cells() {
            if cell.phase() != Phase::Running {
                continue;
            }
            match hibernate_cell(&cell).await {
                Ok(()) => report.hibernated += 1,
                Err(error) => report.refused.push((
                    cell.namespace.binding.clone(),
                    cell.id().to_string(),
                    error.to_string(),
                )),
            }
        }
        report
    }

    /// Every object the runtime knows.
    pub fn objects(&self) -> Vec<ObjectStatus> {
        self.shared
            .registry
            .cells()
            .into_iter()
            .map(|cell| status_of(&cell))
            .collect()
    }

    /// The metrics of every namespace, in the OpenMetrics text format (which Prometheus reads).
    pub fn metrics(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(self.metrics_collector()));
        let mut text = String::with_capacity(8192);
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The runtime's metrics as a collector, to register in a `prometheus-client` registry next
    /// to the embedder's own; each scrape reads them anew.
    pub fn metrics_collector(&self) -> RuntimeMetrics {
        RuntimeMetrics(self.clone())
    }

    /// The gauges of every namespace, in binding order, counted from the registry now.
    pub(crate) fn gauges(&self) -> Vec<NamespaceGauges> {
        let mut gauges = vec![NamespaceGauges::default(); self.shared.namespaces.len()];
        for cell in self.shared.registry.cells() {
            let gauge = &mut gauges[cell.namespace.index as usize];
            let (_, hibernatable, standard) = cell.counts();
            gauge.websockets += (hibernatable + standard) as u64;
            match cell.phase() {
                Phase::Running => gauge.active += 1,
                Phase::Dormant if hibernatable + standard > 0 => gauge.hibernated += 1,
                _ => {}
            }
        }
        gauges
    }

    /// Stops every object: refuses new requests, lets each running turn finish (and commit),
    /// closes every WebSocket with `code` (1001 going away, or 1012 for a restart), and drops
    /// every instance. Returns once all objects stopped, or after `deadline` with the number of
    /// objects that did not stop in time.
    pub async fn shutdown(&self, code: u16, deadline: std::time::Duration) -> usize {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.stop_objects(code, deadline).await
    }

    /// Stops every object as [`shutdown`](Self::shutdown) does, but the runtime goes on serving:
    /// each object's next event starts it again (in cluster mode, wherever it is then placed).
    /// For a node that lost its lease: nothing it held is its own any more.
    pub async fn stop_objects(&self, code: u16, deadline: std::time::Duration) -> usize {
        let mut waiting = Vec::new();
        for cell in self.shared.registry.cells() {
            if cell.close_if_dormant(code, crate::object::SHUTDOWN_REASON) {
                self.shared.registry.retire_if_empty(&cell);
                continue;
            }
            let (done, stopped) = oneshot::channel();
            let control = Envelope::Control(Control::Shutdown { code, done });
            if cell
                .try_deliver(control, &cell.namespace.config.limits)
                .is_ok()
            {
                waiting.push(stopped);
            }
        }
        let total = waiting.len();
        let all = futures_util::future::join_all(waiting);
        match tokio::time::timeout(deadline, all).await {
            Ok(_) => 0,
            Err(_) => {
                tracing::warn!(
                    objects = total,
                    ?deadline,
                    "some objects did not stop before the deadline"
                );
                total
            }
        }
    }

    /// Drops the instance of every object in memory, as hibernation does but whatever keeps it in
    /// memory: the next event of each constructs a new instance. For a guest whose code was
    /// reloaded. Hibernatable sockets stay open (the new instances see them in
    /// `get_websockets()`); standard sockets close with 1012. Returns once every object did.
    pub async fn refresh_all(&self) {
        let mut waiting = Vec::new();
        for cell in self.shared.registry.cells() {
            if cell.phase() != Phase::Running {
                continue;
            }
            let (done, refreshed) = oneshot::channel();
            if cell
                .try_deliver(
                    Envelope::Control(Control::Refresh(done)),
                    &cell.namespace.config.limits,
                )
                .is_ok()
            {
                waiting.push(refreshed);
            }
        }
        futures_util::future::join_all(waiting).await;
    }

    /// Fires the alarm set for `scheduled_ms` of the object `id` of `binding`, claiming the
    /// object first in cluster mode (an alarm the cluster database keeps for an object no live
    /// node owns). The object's database decides whether it is still due.
    pub fn fire_alarm(&self, binding: &str, id: [u8; 32], scheduled_ms: i64) -> Result<()> {
        let key = self.key_of(binding, id)?;
        crate::alarms::fire(&self.shared, key, scheduled_ms);
        Ok(())
    }

    /// The registry key of the object `id` of `binding`.
    fn key_of(&self, binding: &str, id: [u8; 32]) -> Result<CellKey> {
        let namespace = self
            .shared
            .namespace(binding)
            .ok_or_else(|| RuntimeError::UnknownBinding(binding.to_owned()))?;
        Ok(CellKey {
            namespace: namespace.index,
            raw: id,
        })
    }

    /// This node's name in its cluster (`None` on a single node): the owner of every object it
    /// holds.
    pub fn node(&self) -> Option<&str> {
        self.shared.placement.as_deref().map(Placement::node)
    }

    /// Whether the runtime is shutting down.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }

    /// Whether an instance was dropped since the last call (and resets the flag).
    pub fn take_memory_to_return(&self) -> bool {
        self.shared.memory_to_return.swap(false, Ordering::Relaxed)
    }
}

/// What [`Runtime::objects`] says of one object.
pub(crate) fn status_of(cell: &ObjectCell) -> ObjectStatus {
    let (queued, hibernatable, standard) = cell.counts();
    let state = match cell.phase() {
        Phase::Running => ObjectState::Active,
        _ if hibernatable + standard > 0 => ObjectState::Hibernated,
        _ => ObjectState::Idle,
    };
    let id = cell.id();
    ObjectStatus {
        binding: cell.namespace.binding.clone(),
        id: id.to_string(),
        name: id.name().map(str::to_owned),
        state,
        hibernatable_sockets: hibernatable,
        standard_sockets: standard,
        queued_events: queued,
        hibernation_blockers: cell.hibernation_blockers(),
        last_event_ms: cell.last_event_ms(),
    }
}

async fn hibernate_cell(cell: &Arc<ObjectCell>) -> Result<()> {
    let (reply, outcome) = oneshot::channel();
    match cell.try_deliver(
        Envelope::Control(Control::Hibernate(reply)),
        &cell.namespace.config.limits,
    ) {
        Ok(()) => {}
        // A retired object is not in memory.
        Err(Refused::Retired(_)) => return Ok(()),
        Err(Refused::Full(_)) => unreachable!("control envelopes bypass the mailbox limits"),
    }
    match outcome.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(blockers)) => Err(RuntimeError::NotHibernatable(blockers.to_string())),
        // The task ended (or was reset) without answering: it is not in memory.
        Err(_) => Ok(()),
    }
}

/// The runtime's metrics, registered in a `prometheus-client` registry
/// ([`Runtime::metrics_collector`]).
#[derive(Debug)]
pub struct RuntimeMetrics(Runtime);

impl prometheus_client::collector::Collector for RuntimeMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        let rows: Vec<_> = self
            .0
            .shared
            .namespaces
            .iter()
            .zip(self.0.gauges())
            .map(|(ns, g)| (ns.binding.as_str(), &ns.metrics, &ns.sockets.counters, g))
            .collect();
        metrics::encode(&mut encoder, &rows)
    }
}
