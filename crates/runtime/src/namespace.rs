//! One Durable Object class bound in the environment: ids, the factory, routing of requests.

use std::fmt;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use dormouse_holder::{CloseReply, Drivers, SocketCounters, SocketLimits, SocketSettings};
use dormouse_sdk::host::{BoxFuture, NamespaceHost};
use dormouse_sdk::{Error, ErrorKind, ObjectId, Request, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::alarms::AlarmScheduler;
use crate::config::{Limits, RuntimeConfig};
use crate::event_log::EventLog;
use crate::guest::Factory;
use crate::metrics::NamespaceMetrics;
use crate::object::{Envelope, Refused};
use crate::placement::PlacedObject;
use crate::routing::{self, Placed};
use crate::runtime::Shared;

/// Cloudflare's message for a full mailbox.
const OVERLOADED: &str = "Durable Object is overloaded. Too many requests queued.";

/// A class to bind, as registered with the runtime builder.
pub(crate) struct ClassSpec {
    pub(crate) binding: String,
    pub(crate) class: String,
    /// Derives the namespace's id key: ids stay valid while it stays the same.
    pub(crate) unique_key: String,
    pub(crate) factory: Factory,
    /// Where its objects' tasks run; the ambient runtime when `None`.
    pub(crate) executor: Option<tokio::runtime::Handle>,
    pub(crate) close_reply: CloseReply,
    /// Where its objects keep their data, once the runtime resolved it.
    pub(crate) storage: Option<NamespaceStorage>,
}

/// Where a namespace's objects keep their data.
pub(crate) struct NamespaceStorage {
    /// The class's directory; each object has `<id>.sqlite` in it.
    pub(crate) dir: std::path::PathBuf,
    pub(crate) durability: dormouse_storage::Durability,
    pub(crate) alarms: Arc<AlarmScheduler>,
    /// Commits are shipped to the cluster before their output leaves (cluster mode).
    pub(crate) replicated: bool,
}

impl NamespaceStorage {
    /// Where the database of object `id` is.
    pub(crate) fn database_path(&self, id: &ObjectId) -> std::path::PathBuf {
        self.dir.join(format!("{id}.sqlite"))
    }
}

/// A bound class.
pub(crate) struct Namespace {
    /// Position in the runtime's namespace list; part of every registry key.
    pub(crate) index: u32,
    /// The binding name (`CHAT_ROOM`), used in metrics and logs.
    pub(crate) binding: String,
    /// The class name (`ChatRoom`).
    pub(crate) class: String,
    /// The key its ids derive from (the class name, kept across renames).
    pub(crate) id_key: String,
    /// SHA-256 of `id_key`: the HMAC key of its ids, so that ids of one namespace are rejected by
    /// another.
    key: [u8; 32],
    /// Where its objects' databases live; `None` when the runtime has no data directory.
    pub(crate) storage: Option<NamespaceStorage>,
    pub(crate) factory: Factory,
    /// Where its objects' tasks run (a guest engine's thread); the ambient runtime when `None`.
    pub(crate) executor: Option<tokio::runtime::Handle>,
    /// What its objects' sockets are given: limits, timeouts, counters, the drivers.
    pub(crate) sockets: Arc<SocketSettings>,
    /// The runtime's configuration (immutable), reachable from every cell and socket.
    pub(crate) config: Arc<RuntimeConfig>,
    pub(crate) metrics: NamespaceMetrics,
    /// The live logs of its watched objects.
    pub(crate) event_log: Arc<EventLog>,
    /// The runtime; weak because the runtime owns its namespaces.
    pub(crate) shared: Weak<Shared>,
}

impl Namespace {
    pub(crate) fn new(
        index: u32,
        spec: ClassSpec,
        config: Arc<RuntimeConfig>,
        drivers: Arc<Drivers>,
        shared: Weak<Shared>,
    ) -> Self {
        let key = Sha256::digest(spec.unique_key.as_bytes()).into();
        Namespace {
            index,
            binding: spec.binding,
            class: spec.class,
            id_key: spec.unique_key,
            key,
            storage: spec.storage,
            factory: spec.factory,
            executor: spec.executor,
            sockets: Arc::new(SocketSettings {
                limits: socket_limits(&config.limits),
                close_timeout: config.ping_timeout,
                close_reply: spec.close_reply,
                counters: SocketCounters::default(),
                drivers,
            }),
            config,
            metrics: NamespaceMetrics::default(),
            event_log: Arc::default(),
            shared,
        }
    }

    /// workerd's scheme: the first 16 bytes identify the object (derived from the name, or
    /// random); the last 16 are a MAC of the first, so any id can be checked against its namespace.
    fn id_with_prefix(&self, prefix: [u8; 16], name: Option<Arc<str>>) -> ObjectId {
        let mut raw = [0u8; 32];
        raw[..16].copy_from_slice(&prefix);
        raw[16..].copy_from_slice(&self.mac(&prefix)[..16]);
        ObjectId::from_raw(raw, name)
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// The part of the runtime's limits that applies to each socket.
fn socket_limits(limits: &Limits) -> SocketLimits {
    SocketLimits {
        max_tags: limits.max_tags,
        max_tag_bytes: limits.max_tag_bytes,
        max_sockets_per_owner: limits.max_sockets_per_object,
        max_attachment_bytes: limits.max_attachment_bytes,
        max_message_bytes: limits.max_message_bytes,
        max_outbound_bytes: limits.max_outbound_bytes,
    }
}

impl NamespaceHost for Namespace {
    fn binding(&self) -> &str {
        &self.binding
    }

    fn id_from_name(&self, name: &str) -> ObjectId {
        let prefix = self.mac(name.as_bytes())[..16]
            .try_into()
            .expect("16 bytes");
        self.id_with_prefix(prefix, Some(name.into()))
    }

    fn unique_id(&self) -> ObjectId {
        let mut prefix = [0u8; 16];
        getrandom::fill(&mut prefix).expect("the operating system's random source is available");
        self.id_with_prefix(prefix, None)
    }

    fn id_from_string(&self, hex: &str) -> dormouse_sdk::Result<ObjectId> {
        let raw = parse_hex_id(hex).ok_or_else(|| {
            Error::new(
                ErrorKind::Type,
                "Invalid Durable Object ID: must be 64 hex digits",
            )
        })?;
        if raw[16..] != self.mac(&raw[..16])[..16] {
            return Err(Error::new(
                ErrorKind::Type,
                "Durable Object ID is not valid for this namespace.",
            ));
        }
        Ok(ObjectId::from_raw(raw, None))
    }

    fn fetch(
        &self,
        id: ObjectId,
        request: Request,
    ) -> BoxFuture<'static, dormouse_sdk::Result<Response>> {
        let shared = self.shared.upgrade();
        let index = self.index;
        Box::pin(async move {
            let shared = shared.ok_or_else(shutting_down)?;
            let namespace = shared.namespace_at(index).clone();
            routing::fetch(shared, namespace, id, request).await
        })
    }

    fn call(
        &self,
        id: ObjectId,
        method: String,
        args: Bytes,
    ) -> BoxFuture<'static, dormouse_sdk::Result<Bytes>> {
        let shared = self.shared.upgrade();
        let index = self.index;
        Box::pin(async move {
            let shared = shared.ok_or_else(shutting_down)?;
            let namespace = shared.namespace_at(index).clone();
            if let Placed::Peer(peer, _) = routing::place(&shared, &namespace, &id).await? {
                return Err(routing::call_elsewhere(&peer));
            }
            let (reply, answer) = oneshot::channel();
            let envelope = Envelope::Call {
                method,
                args,
                reply,
            };
            deliver(&shared, &namespace, &id, envelope)?;
            drop(shared);
            answer.await.unwrap_or_else(|_| Err(reset_while_handling()))
        })
    }
}

impl Namespace {
    /// The object `id` of this namespace, as placement names it.
    pub(crate) fn placed(&self, id: &[u8; 32]) -> PlacedObject {
        PlacedObject {
            binding: self.binding.as_str().into(),
            id: *id,
            database: self
                .storage
                .as_ref()
                .map(|site| site.database_path(&ObjectId::from_raw(*id, None))),
        }
    }
}

/// Queues `envelope` for the object `id` of `namespace` on this node (creating or waking it);
/// fails when the runtime is shutting down or the object's mailbox is full.
pub(crate) fn deliver(
    shared: &Shared,
    namespace: &Arc<Namespace>,
    id: &ObjectId,
    mut envelope: Envelope,
) -> dormouse_sdk::Result<()> {
    if shared.closing.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(shutting_down());
    }
    loop {
        let cell = shared.registry.get_or_create(namespace, id);
        match cell.try_deliver(envelope, &namespace.config.limits) {
            Ok(()) => return Ok(()),
            // The object was retired between lookup and delivery: look it up again.
            Err(Refused::Retired(back)) => envelope = back,
            Err(Refused::Full(_)) => {
                namespace
                    .metrics
                    .overloaded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(Error::new(ErrorKind::Overloaded, OVERLOADED));
            }
        }
    }
}

pub(crate) fn reset_while_handling() -> Error {
    Error::new(
        ErrorKind::Reset,
        "Durable Object was reset while handling the request",
    )
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("binding", &self.binding)
            .field("class", &self.class)
            .finish()
    }
}

fn shutting_down() -> Error {
    Error::new(ErrorKind::Internal, "the server is shutting down")
}

/// Parses exactly 64 hex digits (either case).
fn parse_hex_id(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut raw = [0u8; 32];
    for (out, pair) in raw.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |b: u8| (b as char).to_digit(16);
        *out = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(key: &str) -> Namespace {
        Namespace::new(
            0,
            ClassSpec {
                binding: "B".into(),
                class: "C".into(),
                unique_key: key.into(),
                factory: Arc::new(|_, _| unreachable!("not constructed")),
                executor: None,
                close_reply: CloseReply::Immediate,
                storage: None,
            },
            Arc::default(),
            Arc::default(),
            Weak::new(),
        )
    }

    #[test]
    fn named_ids_are_deterministic_and_carry_their_name() {
        let ns = namespace("rooms");
        let a = ns.id_from_name("lobby");
        assert_eq!(a, ns.id_from_name("lobby"));
        assert_ne!(a, ns.id_from_name("other"));
        assert_eq!(a.name(), Some("lobby"));
        assert_eq!(a.to_string().len(), 64);
    }

    #[test]
    fn ids_round_trip_through_strings_only_in_their_namespace() {
        let ns = namespace("rooms");
        let other = namespace("games");
        for id in [ns.id_from_name("lobby"), ns.unique_id()] {
            let text = id.to_string();
            assert_eq!(ns.id_from_string(&text).unwrap(), id);
            assert_eq!(ns.id_from_string(&text.to_uppercase()).unwrap(), id);
            let error = other.id_from_string(&text).unwrap_err();
            assert_eq!(
                error.text(),
                "Durable Object ID is not valid for this namespace."
            );
        }
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63)] {
            assert_eq!(
                ns.id_from_string(bad).unwrap_err().text(),
                "Invalid Durable Object ID: must be 64 hex digits"
            );
        }
    }

    #[test]
    fn unique_ids_do_not_repeat() {
        let ns = namespace("rooms");
        assert_ne!(ns.unique_id(), ns.unique_id());
    }
}
