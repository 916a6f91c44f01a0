//! Cluster mode's agreement with PostgreSQL: which nodes are alive, which node owns each object
//! and under which epoch, and each object's commits, fenced by that epoch. It is what keeps
//! Cloudflare's promise across machines: each object runs in one place at a time, and a write
//! whose output was released is never lost, through crashes, pauses and partitions.
//!
//! Every time compared is the database's (`clock_timestamp()`); a node's clock only decides when
//! it gives up on its own lease, earlier than the database would.
//!
//! # Layout
//! - `session`: [`Session`], one connection of a node to the database.
//! - `schema`: the tables, created or migrated on connect, versioned ([`SCHEMA_VERSION`]).
//! - `nodes`: node leases ([`NodeLease`], [`LeaseSettings`]): register, renew, deregister.
//! - `membership`: [`Membership`], the task that keeps a node's lease and says when it is lost
//!   ([`MemberState`]).
//! - `ownership`: claims of objects ([`Claim`], [`Ownership`], [`Owner`]), releases, lookups.
//! - `placement`: the live nodes ([`Peer`]), draining, and the node a rendezvous hash prefers
//!   for an object no node owns ([`preferred`]).
//! - `log`: fenced appends of an object's commits, and reading them back ([`LoggedCommit`]).
//! - `alarms`: alarms kept in the cluster database, and the due ones no live node owns
//!   ([`OrphanAlarm`]), for any node to claim and fire.
//! - `compaction`: an object's commits folded into a page image, so that its log stays short and
//!   a restore reads the image and the commits after it.
//! - `shipping`: an object's commits from its write-ahead log to the cluster database, and its
//!   database file rebuilt from them on the node that claims it.
//! - `error`: [`ClusterError`].

mod alarms;
mod compaction;
mod error;
mod log;
mod membership;
mod nodes;
mod ownership;
mod placement;
mod schema;
mod session;
mod shipping;

pub use alarms::OrphanAlarm;
pub use error::{ClusterError, Result};
pub use log::LoggedCommit;
pub use membership::{MemberState, Membership};
pub use nodes::{LeaseSettings, NodeLease};
pub use ownership::{Claim, ObjectKey, Owner, Ownership};
pub use placement::{Peer, preferred};
pub use schema::SCHEMA_VERSION;
pub use session::Session;
