//! Routing: namespaces, ids, stubs, overload, and the WebSocket handshake around the Worker.

mod common;

use common::{PROBE, wait_for};
use dormouse::axum::Router;
use dormouse::axum::extract::{Path, State as Extract};
use dormouse::axum::routing::get;
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use dormouse_testing::TestServer;

/// A second class, to check that ids do not cross namespaces.
#[derive(Debug)]
struct Other;

impl DurableObject for Other {
    fn new(_state: State, _env: Env) -> Self {
        Other
    }
}

fn app() -> App {
    App::new()
        .durable_object::<common::Probe>(PROBE)
        .durable_object::<Other>("OTHER")
        .worker(|env| {
            Router::new()
                .route("/ids/name/{name}", get(by_name))
                .route("/ids/unique", get(unique))
                .route("/ids/parse/{binding}/{hex}", get(parse))
                .route("/ids/fetch/{hex}", get(fetch_by_id))
                .with_state(env)
        })
}

async fn by_name(Extract(env): Extract<Env>, Path(name): Path<String>) -> Result<String> {
    Ok(env.durable_object(PROBE)?.id_from_name(&name)?.to_string())
}

async fn unique(Extract(env): Extract<Env>) -> Result<String> {
    Ok(env.durable_object(PROBE)?.unique_id()?.to_string())
}

async fn parse(
    Extract(env): Extract<Env>,
    Path((binding, hex)): Path<(String, String)>,
) -> (StatusCode, String) {
    match env
        .durable_object(&binding)
        .and_then(|ns| ns.id_from_string(&hex))
    {
        Ok(id) => (StatusCode::OK, id.to_string()),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn fetch_by_id(Extract(env): Extract<Env>, Path(hex): Path<String>) -> Result<Response> {
    let namespace = env.durable_object(PROBE)?;
    namespace
        .get(namespace.id_from_string(&hex)?)?
        .fetch_with_str("http://do/by-id")
        .await
}

#[tokio::test]
async fn ids_are_deterministic_and_checked_per_namespace() {
    let server = TestServer::start(app()).await;
    let a = server.request("GET", "/ids/name/lobby", &[]).await.body;
    assert_eq!(a.len(), 64);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(server.request("GET", "/ids/name/lobby", &[]).await.body, a);
    assert_ne!(server.request("GET", "/ids/name/other", &[]).await.body, a);

    let unique = server.request("GET", "/ids/unique", &[]).await.body;
    assert_ne!(unique, server.request("GET", "/ids/unique", &[]).await.body);

    for id in [&a, &unique] {
        let parsed = server
            .request("GET", &format!("/ids/parse/{PROBE}/{id}"), &[])
            .await;
        assert_eq!((parsed.status, &parsed.body), (200, id));
        let foreign = server
            .request("GET", &format!("/ids/parse/OTHER/{id}"), &[])
            .await;
        assert_eq!(
            (foreign.status, foreign.body.as_str()),
            (400, "Durable Object ID is not valid for this namespace.")
        );
    }
    let malformed = server
        .request("GET", &format!("/ids/parse/{PROBE}/xyz"), &[])
        .await;
    assert_eq!(
        (malformed.status, malformed.body.as_str()),
        (400, "Invalid Durable Object ID: must be 64 hex digits")
    );
}

#[tokio::test]
async fn a_stub_from_a_parsed_id_reaches_the_same_object() {
    let server = TestServer::start(app()).await;
    let id = server
        .request("GET", "/ids/name/routing-parsed", &[])
        .await
        .body;
    let reply = server
        .request("GET", &format!("/ids/fetch/{id}"), &[])
        .await;
    // Addressed by id only, the object does not learn a name (as on Cloudflare).
    assert_eq!(
        (reply.status, reply.body),
        (200, format!("id={id} name=unnamed"))
    );
}

#[tokio::test]
async fn a_full_mailbox_answers_503_overloaded() {
    let server =
        TestServer::start_configured(common::app(), |config| config.limits.mailbox_capacity = 1)
            .await;
    let slow = tokio::spawn({
        let addr = server.addr();
        async move {
            dormouse_testing::http_request(addr, "GET", "/probe/overload?hold=overload", &[], "")
                .await
        }
    });
    // Once the slow request runs, one more fits in the mailbox and the next is refused.
    wait_for("overload", "fetch /probe/overload?hold=overload").await;
    let queued = tokio::spawn({
        let addr = server.addr();
        async move { dormouse_testing::http_request(addr, "GET", "/probe/overload", &[], "").await }
    });
    // Wait until that one sits in the mailbox (the runtime reports queued events).
    let deadline = tokio::time::Instant::now() + dormouse_testing::DEADLINE;
    while queued_events(&server, "overload") < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second request never queued"
        );
        tokio::task::yield_now().await;
    }
    let refused = server.request("GET", "/probe/overload?third", &[]).await;
    assert_eq!(refused.status, 503);
    assert_eq!(
        refused.body,
        "Durable Object is overloaded. Too many requests queued."
    );
    common::release("overload");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(queued.await.unwrap().status, 200);
    assert!(
        server
            .metrics()
            .await
            .get("dormouse_mailbox_overloaded_total", PROBE)
            >= 1.0
    );
}

#[tokio::test]
async fn a_busy_object_stops_reading_its_sockets_and_loses_nothing() {
    let server =
        TestServer::start_configured(common::app(), |config| config.limits.mailbox_capacity = 2)
            .await;
    let mut client = server.connect("/probe/backpressure").await;
    client.send_text("hold backpressure").await;
    wait_for("backpressure", "message:hold").await;
    // Far more messages than the mailbox holds: the rest wait in the socket and the kernel.
    for i in 0..200 {
        client.send_text(&format!("echo {i}")).await;
    }
    let deadline = tokio::time::Instant::now() + dormouse_testing::DEADLINE;
    while queued_events(&server, "backpressure") < 2 {
        assert!(tokio::time::Instant::now() < deadline, "nothing queued");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        queued_events(&server, "backpressure"),
        2,
        "the mailbox bound holds"
    );
    common::release("backpressure");
    assert_eq!(client.recv_text().await, "released");
    for i in 0..200 {
        assert_eq!(
            client.recv_text().await,
            i.to_string(),
            "every message, in order"
        );
    }
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_mailbox_overloaded_total", PROBE),
        0.0,
        "sockets wait; only requests are refused"
    );
}

#[tokio::test]
async fn malformed_upgrades_get_400_with_the_reason() {
    let server = TestServer::start(common::app()).await;
    let base = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
    ];
    // (method, headers, the reason the server gives)
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: [Case; 4] = [
        ("GET", base.to_vec(), "missing Sec-WebSocket-Key header"),
        (
            "GET",
            [&base[..], &[("sec-websocket-key", "short")]].concat(),
            "Sec-WebSocket-Key must be 16 random bytes in base64, got \"short\"",
        ),
        (
            "POST",
            [
                &base[..],
                &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")],
            ]
            .concat(),
            "WebSocket upgrade requires a GET request, not POST",
        ),
        (
            "GET",
            vec![
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            "missing Sec-WebSocket-Version header (expected 13)",
        ),
    ];
    for (method, headers, reason) in cases {
        let reply = server.request(method, "/probe/handshake", &headers).await;
        assert_eq!((reply.status, reply.body.as_str()), (400, reason));
    }
    // None of them reached the object.
    assert!(common::journal("handshake").is_empty());
    // Unknown routes are the Worker's business: here, 404.
    assert_eq!(server.request("GET", "/nowhere", &[]).await.status, 404);
}

#[tokio::test]
async fn a_101_for_a_request_that_did_not_ask_for_an_upgrade_is_refused() {
    let server = TestServer::start(common::app()).await;
    // The probe answers 101 to anything with an Upgrade header; without a full handshake the
    // server refuses to switch protocols, and the object hears that the socket never connected.
    let reply = server
        .request("GET", "/probe/no-handshake", &[("upgrade", "h2c")])
        .await;
    assert_eq!(reply.status, 426);
    assert!(
        wait_for("no-handshake", "close:1006")
            .await
            .contains(":false:")
    );
}

fn queued_events(server: &TestServer, name: &str) -> usize {
    server
        .runtime()
        .objects()
        .into_iter()
        .find(|o| o.name.as_deref() == Some(name))
        .map_or(0, |o| o.queued_events)
}
