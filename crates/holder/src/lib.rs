//! The Dormouse socket holder: every WebSocket an owner accepts belongs to the holder, so that
//! connections stay open while their owner (a Durable Object) is out of memory.
//!
//! The holder depends on nothing of the object host. A [`SocketGroup`] is built for each owner
//! with what its sockets need ([`SocketSettings`]: limits, timeouts, counters, drivers) and
//! reports through [`SocketOwner`] alone: deliver an event, note that a waiting socket got its
//! backlog in, note activity. An owner may be an object of this process, a remote one, or a
//! test's fake; [`SocketRecord::rebind`] moves a live socket to another owner.
//!
//! # Layout
//! - `config`: [`SocketSettings`], [`SocketLimits`], [`CloseReply`], [`SocketCounters`], and
//!   what a handshake settled for one connection ([`Negotiated`]).
//! - `owner`: [`SocketOwner`] and [`SocketEvent`].
//! - `group`: [`SocketGroup`], the sockets of one owner: their set, gate, auto-responses.
//! - `set`: [`SocketSet`], an owner's sockets in accept order.
//! - `gate`: [`FrameGate`], frames held until the owner's writes before them are durable.
//! - `record`: [`SocketRecord`], one WebSocket: its states (`record::state`, the close handshake
//!   among them), its write path (`record::output`), the SDK's socket API (`record::host`) and
//!   its liveness (`record::liveness`).
//! - `io`: one driver step of a connected socket: flush, read, decode (`io::read`), deliver;
//!   compressed messages are inflated there and compressed on the write path.
//! - `driver`: [`Drivers`], the few tasks that poll every socket, so that no socket needs one.
//! - `events`: the event stream of a standard (non-hibernatable) socket.
//! - `progress`, `kernel`: how far output has got, so that a ping behind a backlog is not taken
//!   for a dead peer.
//! - `error`: [`HolderError`].
//! - `testing` (tests only): a fake owner and a client on a real loopback connection, for the
//!   unit tests beside `io` and `record`.
//!
//! Lock order: a group's set, then a socket's own lock, then the gate's. A socket's lock is never
//! held while its owner is called.

mod config;
mod driver;
pub mod error;
mod events;
mod gate;
mod group;
mod io;
mod kernel;
mod owner;
mod progress;
mod record;
mod set;
#[cfg(test)]
mod testing;

pub use config::{
    CloseReply, ConnectionLease, Negotiated, SocketCounters, SocketLimits, SocketSettings,
};
pub use driver::Drivers;
pub use error::HolderError;
pub use gate::FrameGate;
pub use group::SocketGroup;
pub use owner::{SocketEvent, SocketOwner};
pub use record::SocketRecord;
pub use record::liveness::clock_ms;
pub use set::SocketSet;
