//! permessage-deflate against other implementations: Python's `websockets`, Node's `ws` and
//! Chromium as clients (each compresses what it sends and inflates what it gets), and
//! `--compression off`.

mod common;

use std::path::PathBuf;

use dormouse_testing::{Browser, TestServer, run_node_client, run_python_client};
use serde_json::{Value, json};

/// What the server answers every client that offers permessage-deflate.
const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

fn client(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

fn counters(metrics: &dormouse_testing::Metrics) -> (f64, f64) {
    (
        metrics.get("dormouse_websocket_compressed_sent_total", common::PROBE),
        metrics.get(
            "dormouse_websocket_compressed_received_total",
            common::PROBE,
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn python_websockets_compresses_both_ways() {
    let server = TestServer::start(common::app()).await;
    let url = server.ws_url("/probe/python-deflate");
    let seen: Value = serde_json::from_str(
        &run_python_client(&client("python_client.py"), &[&url, "echo"]).await,
    )
    .unwrap();
    assert_eq!(
        seen,
        json!({ "extensions": AGREED, "echoed": true, "short": "short" })
    );
    let (sent, received) = counters(&server.metrics().await);
    assert_eq!(
        sent, 1.0,
        "the long echo went out compressed, the short one plain"
    );
    assert!(received >= 2.0, "websockets compresses what it sends");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decompression_bomb_from_python_closes_with_1009() {
    let server =
        TestServer::start_with(common::app(), |args| args.max_message_size = 1 << 20).await;
    let url = server.ws_url("/probe/python-bomb");
    let seen: Value = serde_json::from_str(
        &run_python_client(&client("python_client.py"), &[&url, "bomb"]).await,
    )
    .unwrap();
    assert_eq!(seen["close"], 1009, "{seen}");
    common::wait_for("python-bomb", "error:").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_ws_compresses_both_ways() {
    let server = TestServer::start(common::app()).await;
    let url = server.ws_url("/probe/node-deflate");
    let seen: Value =
        serde_json::from_str(&run_node_client(&client("node_client.cjs"), &[&url]).await).unwrap();
    assert_eq!(
        seen,
        json!({ "extensions": AGREED, "agreed": "permessage-deflate", "echoed": true, "close": 1000 })
    );
    let (sent, received) = counters(&server.metrics().await);
    assert_eq!((sent, received), (1.0, 1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_compresses_both_ways() {
    let server = TestServer::start(common::app()).await;
    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.navigate(&format!("http://{}/probe/page", server.addr()))
        .await;
    page.eval(&format!(
        r#"window.seen = null;
        const text = "the same words, again and again; ".repeat(300);
        const ws = new WebSocket("ws://{}/probe/chromium-deflate");
        ws.onopen = () => ws.send("echo " + text);
        ws.onmessage = (event) => {{
          window.seen = JSON.stringify({{ extensions: ws.extensions, echoed: event.data === text }});
        }};"#,
        server.addr()
    ))
    .await;
    page.wait_for("window.seen !== null").await;
    let seen: Value =
        serde_json::from_str(page.eval("window.seen").await.as_str().unwrap()).unwrap();
    assert_eq!(seen, json!({ "extensions": AGREED, "echoed": true }));
    let (sent, received) = counters(&server.metrics().await);
    assert_eq!((sent, received), (1.0, 1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_compression_off_nothing_is_agreed_and_messages_still_flow() {
    let server = TestServer::start_with(common::app(), |args| args.compression = false).await;
    let url = server.ws_url("/probe/python-plain");
    let seen: Value = serde_json::from_str(
        &run_python_client(&client("python_client.py"), &[&url, "echo"]).await,
    )
    .unwrap();
    assert_eq!(
        seen,
        json!({ "extensions": null, "echoed": true, "short": "short" })
    );
    assert_eq!(counters(&server.metrics().await), (0.0, 0.0));
}
