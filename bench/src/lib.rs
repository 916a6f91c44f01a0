//! Benchmarks: Dormouse side by side with workerd and with a raw WebSocket server.
//!
//! Three programs, built in release mode by `scripts/bench`:
//! - `dormouse-bench`, the driver: starts each server confined to one core, drives it with
//!   `dormouse-load` on the other core, measures the server process from `/proc` and prints one
//!   table.
//! - `dormouse-load`, the load generator: a lean WebSocket client on `dormouse-ws`, one thread per
//!   process. Several processes, each from its own loopback source address, go past the
//!   per-process open-files limit.
//! - `raw-baseline`: the seeds' echo and chat room as a minimal tokio server on `dormouse-ws`,
//!   with no objects: what the codec and the kernel cost without Dormouse around them.
//!
//! # Layout
//! - [`wire`](crate::wire): the client side of a WebSocket connection.
//! - [`histogram`](crate::histogram): latencies.
//! - [`proc`](crate::proc): memory, open files and CPU time of a process.
//! - [`load`](crate::load): the generator's scenarios and what they report.
//! - [`driver`](crate::driver): servers, scenarios and the table.
//! - [`raw`](crate::raw): the raw baseline server.

pub mod driver;
pub mod histogram;
pub mod load;
pub mod proc;
pub mod raw;
pub mod wire;
