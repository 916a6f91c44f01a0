//! The counter: basic use, then durability with real processes killed by SIGKILL.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dormouse_testing::{
    ProcessOptions, ServerProcess, TestServer, process_data_dir, try_http_request,
};
use tokio::sync::{Mutex, Notify};

const BINARY: &str = env!("CARGO_BIN_EXE_counter");

#[tokio::test]
async fn counts_per_name() {
    let server = TestServer::start(counter::app()).await;
    assert_eq!(server.request("GET", "/counter/a", &[]).await.body, "0");
    assert_eq!(server.request("POST", "/counter/a", &[]).await.body, "1");
    assert_eq!(server.request("POST", "/counter/a", &[]).await.body, "2");
    assert_eq!(server.request("POST", "/counter/b", &[]).await.body, "1");
    server.hibernate(counter::BINDING, "a").await;
    assert_eq!(server.request("GET", "/counter/a", &[]).await.body, "2");
    assert_eq!(server.request("GET", "/nowhere", &[]).await.status, 404);
}

#[tokio::test]
async fn every_websocket_message_increments() {
    let server = TestServer::start(counter::app()).await;
    let mut client = server.connect("/counter/ws").await;
    for expected in 1..=3 {
        client.send_text("+1").await;
        assert_eq!(client.recv_text().await, expected.to_string());
    }
    server.hibernate(counter::BINDING, "ws").await;
    client.send_text("+1").await;
    assert_eq!(client.recv_text().await, "4");
    assert_eq!(server.request("GET", "/counter/ws", &[]).await.body, "4");
}

/// What clients saw: per counter, the highest value acknowledged and how many increments were
/// attempted (acknowledged or not).
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<String, u64>,
    attempted: BTreeMap<String, u64>,
}

const COUNTERS: usize = 4;
const CLIENTS: usize = 8;

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
async fn load_then_kill(server: ServerProcess, ledger: Arc<Mutex<Ledger>>, acks: u64) {
    let acknowledged = Arc::new(AtomicU64::new(0));
    let reached = Arc::new(Notify::new());
    let addr = server.addr();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (ledger, acknowledged, reached) =
            (ledger.clone(), acknowledged.clone(), reached.clone());
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("c{}", (client + i) % COUNTERS);
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
async fn check(server: &ServerProcess, ledger: &Ledger) {
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

async fn survive_kills(durability: &str) {
    let (_dir, data) = process_data_dir(&format!("counter-kill-{durability}"));
    let options = ProcessOptions {
        args: vec!["--durability".into(), durability.into()],
        ..Default::default()
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for _ in 0..5 {
        let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
        check(&server, &*ledger.lock().await).await;
        load_then_kill(server, ledger.clone(), 50 + random_below(250)).await;
    }
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    check(&server, &*ledger.lock().await).await;
    let total: u64 = ledger.lock().await.acked.values().sum();
    assert!(
        total >= 250,
        "the load was real: {total} acknowledged increments"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_increments_survive_sigkill() {
    survive_kills("full").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_increments_survive_sigkill_with_relaxed_durability() {
    survive_kills("relaxed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_is_never_acknowledged() {
    // A real storage failure: the process may not write files past 256 KiB, so once the
    // counter's write-ahead log reaches that size, commits fail.
    let (_dir, data) = process_data_dir("counter-full");
    let options = ProcessOptions {
        max_file_size: Some(256 << 10),
        ..Default::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let mut last_acked = 0;
    let failed = loop {
        let reply = try_http_request(server.addr(), "POST", "/counter/full", "")
            .await
            .expect("the server stays up");
        if reply.status != 200 {
            break reply;
        }
        last_acked = reply.body.parse().unwrap();
        assert!(last_acked < 10_000, "the file size limit never bit");
    };
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(last_acked > 0);
    let reply = try_http_request(server.addr(), "GET", "/counter/full", "")
        .await
        .unwrap();
    assert_eq!(
        reply.body,
        last_acked.to_string(),
        "the failed increment left no trace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_gracefully_and_keeps_the_data() {
    let (_dir, data) = process_data_dir("counter-term");
    let server = ServerProcess::start(Path::new(BINARY), &data, &ProcessOptions::default()).await;
    for _ in 0..3 {
        try_http_request(server.addr(), "POST", "/counter/t", "")
            .await
            .unwrap();
    }
    let status = server.signal_and_wait("TERM").await;
    assert!(status.success(), "exit status {status}");
    let server = ServerProcess::start(Path::new(BINARY), &data, &ProcessOptions::default()).await;
    assert_eq!(
        try_http_request(server.addr(), "GET", "/counter/t", "")
            .await
            .unwrap()
            .body,
        "3"
    );
}
