//! The echo server as a real process: running out of file descriptors, and stopping on signals.

use std::path::Path;
use std::time::Duration;

use dormouse_testing::{ProcessOptions, ServerProcess, WsClient, process_data_dir};

const BINARY: &str = env!("CARGO_BIN_EXE_echo");

#[tokio::test(flavor = "multi_thread")]
async fn at_the_open_files_limit_existing_sockets_are_served_and_new_ones_wait() {
    let (dir, data) = process_data_dir("echo-nofile");
    let log = dir.path().join("server.log");
    let options = ProcessOptions {
        max_open_files: Some(200),
        log: Some(log.clone()),
        log_filter: Some("info".into()),
        ..Default::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let url = server.ws_url("/websocket");

    // Open sockets until the server stops answering handshakes.
    let mut clients = Vec::new();
    while let Ok(client) = WsClient::try_connect(&url, Duration::from_millis(500)).await {
        clients.push(client);
        assert!(clients.len() < 200, "the limit never bit");
    }
    let held = clients.len();
    assert!(held > 150, "only {held} sockets before the limit");

    // Sockets already open are served normally.
    clients[0].send_text("still there?").await;
    assert_eq!(
        clients[0].recv_text().await,
        format!("[Durable Object] message: still there?, connections: {held}")
    );

    // Closing some lets new connections in again.
    for mut client in clients.drain(..20) {
        client.close(1000, "making room").await;
    }
    let mut fresh = loop {
        // Handshakes that gave up while the server was full may be accepted first.
        if let Ok(client) = WsClient::try_connect(&url, Duration::from_secs(2)).await {
            break client;
        }
    };
    fresh.send_text("in").await;
    assert!(
        fresh
            .recv_text()
            .await
            .starts_with("[Durable Object] message: in, connections: ")
    );

    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log.matches("out of file descriptors").count(),
        1,
        "logged once per burst:\n{log}"
    );
    assert!(
        log.contains("file descriptors available again"),
        "LOG:\n{log}"
    );
}

async fn close_code_on(signal: &str) -> (u16, String, bool) {
    let (_dir, data) = process_data_dir(&format!("echo-{signal}"));
    let server = ServerProcess::start(Path::new(BINARY), &data, &ProcessOptions::default()).await;
    let mut client = WsClient::connect(&server.ws_url("/websocket")).await;
    client.send_text("hi").await;
    client.recv_text().await;
    let (status, close) = tokio::join!(server.signal_and_wait(signal), client.expect_close());
    let (code, reason) = close.expect("a close frame");
    (code, reason, status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_close_sockets_with_1001_and_exit_0() {
    assert_eq!(
        close_code_on("TERM").await,
        (1001, "server shutting down".into(), true)
    );
    assert_eq!(
        close_code_on("INT").await,
        (1001, "server shutting down".into(), true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_restarts_with_1012() {
    assert_eq!(
        close_code_on("HUP").await,
        (1012, "server shutting down".into(), true)
    );
}
