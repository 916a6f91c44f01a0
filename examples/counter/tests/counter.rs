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

async fn survive_kills(durability: &str, load: durability::Load) {
    let (_dir, data) = process_data_dir(&format!("counter-kill-{durability}"));
    let options = ProcessOptions {
        args: vec!["--durability".into(), durability.into()],
        ..Default::default()
    };
    durability::survive_kills_under(
        || ServerProcess::start(Path::new(BINARY), &data, &options),
        load,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_increments_survive_sigkill() {
    survive_kills("full", durability::Load::SPREAD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_increments_of_fifty_writers_on_one_object_survive_sigkill() {
    survive_kills("full", durability::Load::ONE_OBJECT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_increments_survive_sigkill_with_relaxed_durability() {
    survive_kills("relaxed", durability::Load::SPREAD).await;
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

/// Writers on one object: many turns share each flush.
const WRITERS: usize = 50;
/// The flush that fails; the ones before it succeed.
const FAILING_FLUSH: usize = 6;

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_flush_answers_no_turn_of_its_batch_or_after() {
    use std::sync::{Arc, Mutex};

    use dormouse::runtime::FlushFault;

    // The fault records how many writes each flush covers, and fails the sixth as a disk would.
    let covered = Arc::new(Mutex::new(Vec::new()));
    let record = covered.clone();
    let server = TestServer::start_configured(counter::app(), move |config| {
        config.flush_fault = Some(FlushFault::new(move |attempt| {
            let mut covered = record.lock().unwrap();
            covered.push(attempt.writes);
            if covered.len() >= FAILING_FLUSH {
                Err("injected: the disk failed".into())
            } else {
                Ok(())
            }
        }));
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(server.connect("/counter/group").await);
    }
    let mut writers = Vec::new();
    for mut client in clients {
        writers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            loop {
                if !client.try_send_text("+1").await {
                    return (answers, None);
                }
                match client.recv_text_or_close().await {
                    Ok(value) => answers.push(value.parse::<u64>().unwrap()),
                    Err(close) => return (answers, close.map(|(code, _)| code)),
                }
            }
        }));
    }
    let mut answered = Vec::new();
    for writer in writers {
        let (answers, close) = writer.await.unwrap();
        assert_eq!(close, Some(1011), "the reset closes every writer's socket");
        answered.extend(answers);
    }
    answered.sort_unstable();
    let covered = covered.lock().unwrap().clone();
    let durable = covered[FAILING_FLUSH - 2];
    // Every turn made durable by the flushes that succeeded was answered (its answer precedes
    // the close on its socket), and no turn of the failed flush or after it was.
    assert_eq!(
        answered,
        (1..=durable).collect::<Vec<_>>(),
        "flushes covered {covered:?}"
    );
    assert!(
        covered[FAILING_FLUSH - 1] > durable,
        "the failed flush had turns of its own: {covered:?}"
    );
    assert!(
        durable as usize > 2 * FAILING_FLUSH,
        "flushes were shared by several turns: {covered:?}"
    );
}
