//! The counter: basic use, then durability with real processes killed by SIGKILL.

use std::path::Path;

use dormouse_testing::{
    ProcessOptions, ServerProcess, TestServer, durability, process_data_dir, try_http_request,
};

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

async fn survive_kills(durability: &str) {
    let (_dir, data) = process_data_dir(&format!("counter-kill-{durability}"));
    let options = ProcessOptions {
        args: vec!["--durability".into(), durability.into()],
        ..Default::default()
    };
    durability::survive_kills(|| ServerProcess::start(Path::new(BINARY), &data, &options)).await;
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
