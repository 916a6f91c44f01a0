//! Test support: a real server on `127.0.0.1:0`, real WebSocket clients, and the admin endpoint.
//!
//! Tests never sleep to wait for something: every wait has a deadline and fails loudly, and the
//! absence of a message is proven with a ping/pong barrier ([`WsClient::expect_nothing`]).
//! Hibernation is forced with [`TestServer::hibernate`] (the idle timeout defaults to an hour here,
//! so it never fires on its own during a test).
//!
//! - `server`: [`TestServer`], the application on loopback in-process; `process`:
//!   [`ServerProcess`], a built binary as a child process (for `kill -9`); `workers`:
//!   [`WorkersServer`], Workers mode; `workerd`: [`Workerd`], the oracle.
//! - `client`: [`WsClient`] and raw frames; `clients`: the Python and Node client libraries;
//!   `http`: one-shot HTTP requests; `browser`: headless Chromium over DevTools.
//! - `metrics`: [`Metrics`], parsed `/metrics`; `net`: ports and readiness; `durability`:
//!   acknowledged-write checks after crashes.
//! - `postgres`: [`Postgres`], a throwaway server; `proxy`: [`FaultProxy`], a link to cut or
//!   black-hole; `history`: the counter-history checker of the cluster's fault tests;
//!   `cluster`: [`TestCluster`], nodes of one binary on 127.0.0.2, 127.0.0.3, … around one
//!   PostgreSQL, to kill, pause, drain and restart.

mod browser;
mod client;
mod clients;
mod cluster;
pub mod durability;
pub mod history;
mod http;
mod metrics;
mod net;
mod postgres;
mod process;
mod proxy;
mod server;
mod workerd;
mod workers;

pub use browser::{Browser, Page};
pub use client::{WsClient, connect_raw, handshake_raw, masked_frame, read_at_least};
pub use clients::{clients_dir, run_node_client, run_python_client};
pub use cluster::{TEST_CLUSTER_SECRET, TEST_LEASE_TTL, TestCluster};
pub use http::{HttpReply, http_request, try_http_request};
pub use metrics::Metrics;
pub use net::{free_port, free_port_at, wait_until_listening};
pub use postgres::Postgres;
pub use process::{ProcessOptions, ServerProcess, process_data_dir, wait_until_wall_clock};
pub use proxy::{FaultProxy, Link};
pub use server::{TempDir, TestServer, test_args};
pub use workerd::{WORKERD_EVICTION, WORKERD_SOCKETS, Workerd};
pub use workers::{WorkersServer, seed_project, workers_args};

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
