//! Durability under `kill -9`, for any server that serves the counter protocol (`POST
//! /counter/{name}` increments and answers the new value, `GET` reads it): clients increment
//! while the process is killed at a random point, again and again, and after every restart each
//! acknowledged increment must be there, and nothing that was never sent.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, Notify};

use crate::{ServerProcess, try_http_request};

/// What clients saw: per counter, the highest value acknowledged and how many increments were
/// attempted (acknowledged or not).
#[derive(Debug, Default)]
pub struct Ledger {
    acked: BTreeMap<String, u64>,
    attempted: BTreeMap<String, u64>,
}

/// How the clients load the server.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Counters the clients spread over.
    pub counters: usize,
    /// Clients sending at once.
    pub clients: usize,
}

impl Load {
    /// Eight clients over four counters.
    pub const SPREAD: Load = Load {
        counters: 4,
        clients: 8,
    };
    /// Fifty clients on one counter: their turns share the object's flushes.
    pub const ONE_OBJECT: Load = Load {
        counters: 1,
        clients: 50,
    };
}

/// A pseudo-random number from the clock (the kill point only needs to vary between runs).
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos ^ (nanos >> 7)).wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

/// Runs clients against `server` until `acks` increments were acknowledged, then kills it with
/// SIGKILL while the clients are still sending.
pub async fn load_then_kill(
    server: ServerProcess,
    ledger: Arc<Mutex<Ledger>>,
    acks: u64,
    load: Load,
) {
    let acknowledged = Arc::new(AtomicU64::new(0));
    let reached = Arc::new(Notify::new());
    let addr = server.addr();
    let mut clients = Vec::new();
    for client in 0..load.clients {
        let (ledger, acknowledged, reached) =
            (ledger.clone(), acknowledged.clone(), reached.clone());
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("c{}", (client + i) % load.counters);
                ledger
                    .lock()
                    .await
                    .attempted
                    .entry(name.clone())
                    .and_modify(|n| *n += 1)
                    .or_insert(1);
                let Ok(reply) =
                    try_http_request(addr, "POST", &format!("/counter/{name}"), "").await
                else {
                    return;
                };
                if reply.status != 200 {
                    return;
                }
                let value: u64 = reply.body.parse().unwrap();
                let mut ledger = ledger.lock().await;
                let best = ledger.acked.entry(name).or_default();
                *best = (*best).max(value);
                drop(ledger);
                if acknowledged.fetch_add(1, Ordering::SeqCst) + 1 == acks {
                    reached.notify_one();
                }
            }
        }));
    }
    reached.notified().await;
    server.kill9();
    for client in clients {
        client.await.unwrap();
    }
}

/// After a restart, every acknowledged increment is there, and nothing that was never sent.
pub async fn check(server: &ServerProcess, ledger: &Ledger) {
    for (name, acked) in &ledger.acked {
        let reply = try_http_request(server.addr(), "GET", &format!("/counter/{name}"), "")
            .await
            .unwrap();
        let value: u64 = reply.body.parse().unwrap();
        assert!(
            value >= *acked,
            "{name}: acknowledged {acked}, found {value} after the crash"
        );
        assert!(
            value <= ledger.attempted[name],
            "{name}: {value} exceeds the {} attempts",
            ledger.attempted[name]
        );
    }
}

/// Starts the server with `start` five times, killing it with SIGKILL under load each time at a
/// random point, and checks the counters after each restart; then once more. Returns the number
/// of acknowledged increments.
pub async fn survive_kills<F, S>(start: S) -> u64
where
    S: Fn() -> F,
    F: Future<Output = ServerProcess>,
{
    survive_kills_under(start, Load::SPREAD).await
}

/// [`survive_kills`] with another load.
pub async fn survive_kills_under<F, S>(start: S, load: Load) -> u64
where
    S: Fn() -> F,
    F: Future<Output = ServerProcess>,
{
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for _ in 0..5 {
        let server = start().await;
        check(&server, &*ledger.lock().await).await;
        load_then_kill(server, ledger.clone(), 50 + random_below(250), load).await;
    }
    let server = start().await;
    check(&server, &*ledger.lock().await).await;
    let total: u64 = ledger.lock().await.acked.values().sum();
    assert!(
        total >= 250,
        "the load was real: {total} acknowledged increments"
    );
    total
}
