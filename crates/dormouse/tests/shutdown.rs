//! Graceful shutdown: the server stops accepting at once, a request in flight is still answered
//! and its write kept, and open WebSockets are closed with 1001.

mod common;

use common::{store, wait_for};
use dormouse_testing::{DEADLINE, TempDir, TestServer, http_request};

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_in_progress_finishes_and_commits_before_the_server_stops() {
    let dir = TempDir::new("graceful");
    let server = TestServer::start_in(store::app(), dir.path(), |_| {}).await;
    let addr = server.addr();
    let mut bystander = server.connect("/store/bystander").await;
    let write = r#"[{"op":"put","key":"k","value":42}]"#;
    let request = tokio::spawn(async move {
        http_request(addr, "POST", "/store/in-flight?hold=in-flight", &[], write).await
    });
    wait_for("in-flight", "held").await;

    let stopping = tokio::spawn(server.stop());
    let refused = tokio::time::timeout(DEADLINE, async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "new connections are refused once the shutdown begins"
    );
    common::release("in-flight");
    let reply = request.await.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, r#"[{"ok":null}]"#)
    );
    assert_eq!(
        bystander.expect_close().await,
        Some((1001, "server shutting down".to_owned()))
    );
    stopping.await.unwrap();

    let server = TestServer::start_in(store::app(), dir.path(), |_| {}).await;
    let reply = server
        .post("/store/in-flight", r#"[{"op":"get","key":"k"}]"#)
        .await;
    assert_eq!(reply.body, r#"[{"ok":42}]"#);
}
