//! The chat room as a real process under churn: thousands of clients coming and going at random.

use std::path::Path;
use std::time::{Duration, Instant};

use dormouse_testing::{
    ProcessOptions, ServerProcess, WsClient, process_data_dir, try_http_request,
};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_chat-room");

/// xorshift64: cheap randomness for the soak, seeded per worker.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn admin_json(server: &ServerProcess, path: &str) -> String {
    try_http_request(server.admin(), "GET", path, "")
        .await
        .expect("admin endpoint")
        .body
}

async fn open_sockets(server: &ServerProcess) -> f64 {
    server
        .metrics()
        .await
        .get("dormouse_websockets_open", chat_room::BINDING)
}

#[tokio::test(flavor = "multi_thread")]
async fn churn_leaves_no_sockets_no_objects_and_no_memory_behind() {
    // Minutes when run by hand (DORMOUSE_SOAK_SECONDS=300), seconds in the test suite.
    let seconds: u64 = std::env::var("DORMOUSE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    const WORKERS: u64 = 32;
    const ROOMS: u64 = 40;
    let (_dir, data) = process_data_dir("chat-churn");
    let options = ProcessOptions {
        args: vec!["--hibernate-after".into(), "50ms".into()],
        ..Default::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let url = server.ws_url("");
    let start = server.rss();

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut random =
                Random(0x9E37_79B9_7F4A_7C15 ^ (worker + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut held: Vec<WsClient> = Vec::new();
            let mut opened = 0u64;
            while Instant::now() < deadline {
                let room = random.below(ROOMS);
                let mut client =
                    WsClient::connect(&format!("{url}/room/r{room}?username=w{worker}")).await;
                opened += 1;
                client.recv_text().await;
                if random.below(2) == 0 {
                    client.send_text(r#"{"type":"chat","text":"hello"}"#).await;
                }
                match random.below(10) {
                    0..=3 => held.push(client),
                    4..=6 => drop(client.close(1000, "bye").await),
                    _ => client.drop_connection().await,
                }
                if held.len() > 40 || random.below(8) == 0 {
                    let index = random.below(held.len().max(1) as u64) as usize;
                    if index < held.len() {
                        held.swap_remove(index).drop_connection().await;
                    }
                }
            }
            for client in held {
                client.drop_connection().await;
            }
            opened
        }));
    }
    let mut opened = 0;
    for worker in workers {
        opened += worker.await.unwrap();
    }
    let peak = server.rss();

    // Every socket and every object leaves the registry once the churn stops.
    let settle = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let objects: Value =
                serde_json::from_str(&admin_json(&server, "/objects").await).unwrap();
            if open_sockets(&server).await == 0.0 && objects.as_array().unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let objects = admin_json(&server, "/objects").await;
    assert!(
        settle.is_ok(),
        "left behind after the churn: {} sockets, objects {objects}",
        open_sockets(&server).await
    );
    let end = server.rss();
    eprintln!(
        "churn: {opened} connections in {seconds}s; server RSS {} MiB at start, {} MiB at the end of the churn, {} MiB once settled",
        start >> 20,
        peak >> 20,
        end >> 20
    );
    assert!(opened > 1000, "the churn was real: {opened} connections");
    assert!(
        end < start + (24 << 20),
        "memory came back near its start: {start} -> {end} bytes"
    );
}
