//! Ten thousand members, one of whom stops reading: every broadcast still reaches the others at
//! once, the stalled client is dropped once its queue passes the bound, and the server's memory
//! stays flat while it tries. The server runs as its own process (its sockets and this test's
//! would not fit under one process's open-files limit together).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use dormouse_testing::{
    DEADLINE, ProcessOptions, ServerProcess, WsClient, connect_raw, handshake_raw, process_data_dir,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

const BINARY: &str = env!("CARGO_BIN_EXE_hibernation-server");
const READERS: usize = 10_000;
/// Publishes allowed for the stalled client to be found out; it takes about twenty.
const MAX_PUBLISHES: usize = 100;
/// Publishes after the stalled client was dropped, to see the room carry on.
const PUBLISHES_AFTER_CUT: usize = 3;
/// Every published message carries this byte once, and nothing else the server sends does.
const MARK: u8 = b'~';
const SLOW_READER: &str = r#"dormouse_websockets_dropped_total{namespace="WEBSOCKET_HIBERNATION_SERVER",cause="slow_reader"}"#;

/// How many readers have received each publish in full, and a bell for the publisher.
struct Progress {
    done: Vec<AtomicUsize>,
    changed: Notify,
}

impl Progress {
    /// Waits until every reader received publish `index`.
    async fn wait_all(&self, index: usize) {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.done[index].load(Relaxed) == READERS {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "publish {index} reached only {} of {READERS} readers",
                    self.done[index].load(Relaxed)
                )
            });
    }
}

/// Reads forever, counting publishes: each one arrives as two frames ("to: all clients" and
/// "to: all clients except the initiating client"), each with one mark.
async fn read_publishes(mut stream: TcpStream, progress: Arc<Progress>) {
    let mut buffer = vec![0u8; 16 << 10];
    let (mut marks, mut complete) = (0, 0);
    loop {
        let n = stream
            .read(&mut buffer)
            .await
            .expect("a reader's connection");
        assert!(n > 0, "a reading client was disconnected");
        marks += buffer[..n].iter().filter(|&&b| b == MARK).count();
        while marks >= 2 * (complete + 1) {
            progress.done[complete].fetch_add(1, Relaxed);
            progress.changed.notify_waiters();
            complete += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_reader_among_ten_thousand_is_cut_off_without_stalling_the_broadcast() {
    let (_dir, data) = process_data_dir("stalled-reader");
    // Small kernel send buffers, so that the stalled client's backlog shows in the server's own
    // queue soon (on loopback the kernel would otherwise absorb megabytes first).
    let options = ProcessOptions {
        args: [
            "--max-outbound-bytes",
            "16384",
            "--socket-send-buffer",
            "4096",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let progress = Arc::new(Progress {
        done: (0..MAX_PUBLISHES).map(|_| AtomicUsize::new(0)).collect(),
        changed: Notify::new(),
    });

    let mut readers = JoinSet::new();
    let addr = server.addr();
    for batch in 0..READERS / 100 {
        let mut connecting = JoinSet::new();
        for _ in 0..100 {
            connecting.spawn(async move { connect_raw(addr, "/websocket").await.0 });
        }
        while let Some(stream) = connecting.join_next().await {
            readers.spawn(read_publishes(stream.unwrap(), progress.clone()));
        }
        assert_eq!(readers.len(), (batch + 1) * 100);
    }
    // The stalled client: a small receive buffer, and it never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let (mut stalled, _) = handshake_raw(socket.connect(addr).await.unwrap(), "/websocket").await;
    let mut publisher = WsClient::connect(&server.ws_url("/websocket")).await;
    let before = server.rss();

    let padding = "x".repeat(1000);
    let mut cut_at = None;
    let mut published = 0;
    while cut_at.is_none_or(|at| published < at + PUBLISHES_AFTER_CUT) {
        assert!(
            published < MAX_PUBLISHES,
            "the stalled client was never cut off"
        );
        // Readers that read are never more than a publish behind, well within the bound.
        if published > 0 {
            progress.wait_all(published - 1).await;
        }
        publisher
            .send_text(&format!("{}{published}{padding}", MARK as char))
            .await;
        for _ in 0..2 {
            let reply = publisher.recv_text().await;
            assert!(
                reply.contains(&format!("{}{published}x", MARK as char)),
                "{reply}"
            );
        }
        published += 1;
        if cut_at.is_none() && server.metrics().await.series(SLOW_READER) >= 1.0 {
            cut_at = Some(published);
        }
    }
    progress.wait_all(published - 1).await;
    let after = server.rss();
    eprintln!(
        "{READERS} readers: stalled client cut off after {} publishes; server RSS {} MiB before, {} MiB after",
        cut_at.unwrap(),
        before >> 20,
        after >> 20
    );
    assert!(
        after < before + (16 << 20),
        "server memory stayed flat: {before} -> {after} bytes"
    );
    let metrics = server.metrics().await;
    assert_eq!(metrics.series(SLOW_READER), 1.0, "only the stalled client");
    assert_eq!(
        metrics.get("dormouse_websockets_open", "WEBSOCKET_HIBERNATION_SERVER"),
        (READERS + 1) as f64
    );
    // The stalled client finds its connection closed once it reads again.
    let mut sink = vec![0u8; 64 << 10];
    let closed = tokio::time::timeout(DEADLINE, async {
        while let Ok(n) = stalled.read(&mut sink).await
            && n > 0
        {}
    })
    .await;
    assert!(closed.is_ok(), "the stalled connection was closed");
    readers.abort_all();
}
