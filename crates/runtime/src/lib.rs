//! The Dormouse object host: it keeps Durable Objects addressed by id, runs their events one turn
//! at a time, drops idle instances from memory (hibernation) and owns their WebSockets so that
//! connections stay open while objects sleep. The sockets themselves are held by
//! `dormouse-holder`, a layer below: each object cell is the owner of a group of them.
//!
//! # Layout
//! - [`runtime`] — [`Runtime`], the handle the server and tests use.
//! - `builder`: [`RuntimeBuilder`], which registers classes and builds a runtime.
//! - [`config`] — [`RuntimeConfig`] and [`Limits`], every timeout and limit with its default.
//! - `guest`: [`GuestClass`], a class hosted for another guest (a JavaScript engine): its
//!   factory, the executor its objects run on, its [`CloseReply`].
//! - `namespace`: one bound class: id derivation (workerd's HMAC scheme) and request routing.
//! - `registry`: every known object, in 64 shards.
//! - `object`: the cell of an object (mailbox, sockets, settings that survive hibernation),
//!   the task that runs its turns and hibernates it, its context (`State`'s host), the output
//!   gate, and the commit path (batches of turns, flushes apart from the object's task).
//! - `storage`: an object's storage as the SDK sees it, over `dormouse-storage`.
//! - `alarms`: the alarm scheduler.
//! - `liveness`: the sweep that pings silent sockets.
//! - `metrics`: counters per namespace, encoded for Prometheus by `prometheus-client`
//!   ([`RuntimeMetrics`]).
//! - `inspector`: what the admin inspector reads and does: [`NamespaceSummary`],
//!   [`ObjectDetail`], resets and alarm deletion.
//! - `forwarded`: what a node serves for its peers in a cluster: forwarded requests, and
//!   relayed sockets adopted by an object that moved here.
//! - `placement`: [`placement::Placement`], the seam cluster mode fills: where each object runs,
//!   the commits handed to the cluster, and sockets moving between nodes ([`AdoptedSocket`]);
//!   `routing`: placement applied to each delivery.
//! - `event_log`: the live log of a watched object's events ([`EventWatch`]), kept only while
//!   somebody watches.
//! - [`error`] — [`RuntimeError`].
//!
//! # Where to look
//! | Question | Place |
//! |---|---|
//! | When does an object hibernate? | `object::task` (`idle_deadline`, `sleep_if_idle`) |
//! | What survives hibernation? | `object::ObjectCell` (kept) vs. the instance (dropped) |
//! | How does a frame reach a handler? | `dormouse-holder` (`io`) → `SocketOwner for ObjectCell` → `object::task` |
//! | What does a reset do? | `object::task::Runner::reset` |
//! | When does a turn's output leave? | `object::gate` (limits by turn), `object::commit` (flushes) |
//!
//! # Example
//! ```
//! use dormouse_runtime::{Runtime, RuntimeConfig};
//! use dormouse_sdk::prelude::*;
//!
//! struct Counter(u64);
//! impl DurableObject for Counter {
//!     fn new(_state: State, _env: Env) -> Self {
//!         Counter(0)
//!     }
//!     async fn fetch(&mut self, _req: Request) -> Result<Response> {
//!         self.0 += 1;
//!         Ok(response::text(http::StatusCode::OK, self.0.to_string()))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let runtime = Runtime::builder().config(RuntimeConfig::default()).durable_object::<Counter>("COUNTER").build().unwrap();
//! let stub = runtime.env().durable_object("COUNTER")?.get_by_name("a")?;
//! let response = stub.fetch_with_str("http://do/").await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

mod alarms;
mod builder;
pub mod config;
pub mod error;
mod event_log;
mod forwarded;
mod guest;
mod inspector;
mod liveness;
mod metrics;
mod namespace;
mod object;
pub mod placement;
mod registry;
mod routing;
pub mod runtime;
mod storage;

pub use builder::{RuntimeBuilder, StorageOptions};
pub use config::{FlushAttempt, FlushFault, Limits, RuntimeConfig};
pub use dormouse_holder::{CloseReply, ConnectionLease, Negotiated};
pub use dormouse_storage::{Durability, Migration};
pub use dormouse_storage::{InspectLimits, SqlValue, StorageView, TableView};
pub use error::RuntimeError;
pub use event_log::{EventKind, EventWatch, LoggedEvent, Watched};
pub use guest::GuestClass;
pub use inspector::{NamespaceSummary, ObjectDetail, SocketView};
pub use metrics::NamespaceGauges;
pub use placement::AdoptedSocket;
pub use runtime::{HibernateReport, ObjectState, ObjectStatus, Runtime, RuntimeMetrics};
