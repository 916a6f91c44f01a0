//! The inspector's side of the admin endpoint: what it shows of objects, sockets and storage,
//! its actions, and who may use it.

mod common;

use common::PROBE;
use common::store::{self, STORE};
use dormouse_testing::{TestServer, http_request};
use serde_json::{Value, json};

async fn admin_json(server: &TestServer, path: &str) -> Value {
    let reply = server.admin("GET", path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

#[tokio::test]
async fn an_object_shows_its_sockets_and_stays_hibernated_while_looked_at() {
    let server = TestServer::start(common::app()).await;
    let mut client = server
        .connect("/probe/inspected?tags=room:1,user:eve&attach=%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    client.send_text("my-id").await;
    client.recv_text().await;

    let page = admin_json(&server, "/api/objects?q=inspect").await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["objects"][0]["name"], "inspected");
    assert_eq!(page["objects"][0]["state"], "active");
    assert!(page["objects"][0]["last_event_ms"].as_u64().unwrap() > 1_700_000_000_000);

    let detail = admin_json(&server, &format!("/api/objects/{PROBE}/name:inspected")).await;
    assert_eq!(detail["socket_count"], 1);
    let socket = &detail["sockets"][0];
    assert_eq!(socket["tags"], json!(["room:1", "user:eve"]));
    assert_eq!(socket["hibernatable"], true);
    assert_eq!(socket["attachment"]["format"], "json");
    assert!(
        socket["attachment"]["text"]
            .as_str()
            .unwrap()
            .contains("<script>alert(1)</script>"),
        "{socket}"
    );

    let reply = server
        .admin(
            "POST",
            &format!("/objects/{PROBE}/name:inspected/hibernate"),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let wakes = server
        .metrics()
        .await
        .get("dormouse_object_wakes_total", PROBE);
    let detail = admin_json(&server, &format!("/api/objects/{PROBE}/name:inspected")).await;
    assert_eq!(detail["status"]["state"], "hibernated", "{detail}");
    assert_eq!(detail["socket_count"], 1);
    let summary = admin_json(&server, "/api/summary").await;
    let probe = summary["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["binding"] == PROBE)
        .unwrap()
        .clone();
    assert_eq!(
        (probe["hibernated"].clone(), probe["websockets"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        server
            .metrics()
            .await
            .get("dormouse_object_wakes_total", PROBE),
        wakes,
        "looking did not wake it"
    );
    // The socket still works, and its next message wakes the object.
    client.send_text("tags").await;
    assert_eq!(client.recv_text().await, "room:1,user:eve");

    // Asked to hibernate twice, then looked at while a request arrives: the request's instance
    // is a wake, timed from the request, not from the second instruction.
    let hibernate = format!("/objects/{PROBE}/name:inspected/hibernate");
    for _ in 0..2 {
        assert_eq!(server.admin("POST", &hibernate).await.status, 204);
    }
    let before = server.metrics().await;
    let runtime = server.runtime();
    let namespace = runtime.env().durable_object(PROBE).unwrap();
    let id = namespace.id_from_name("inspected").unwrap();
    let stub = namespace.get(id.clone()).unwrap();
    // Both are delivered before the object's task runs: the look starts it, the request finds
    // it running without an instance.
    let (look, _) = tokio::join!(
        runtime.inspect(PROBE, &id, Default::default(), 0..1),
        stub.fetch_with_str("http://do/probe/inspected")
    );
    assert_eq!(look.unwrap().socket_count, 1);
    let after = server.metrics().await;
    let wake_count = "dormouse_object_wake_seconds_count";
    assert_eq!(
        (
            after.get("dormouse_object_wakes_total", PROBE)
                - before.get("dormouse_object_wakes_total", PROBE),
            after.get(wake_count, PROBE) - before.get(wake_count, PROBE),
        ),
        (1.0, 1.0)
    );
    let wake_seconds =
        |m: &dormouse_testing::Metrics| m.get("dormouse_object_wake_seconds_sum", PROBE);
    assert!(
        wake_seconds(&after) - wake_seconds(&before) < 1.0,
        "timed from the request"
    );
}

#[tokio::test]
async fn storage_is_read_and_the_alarm_deleted_without_the_object_running_it() {
    let server = TestServer::start(store::app()).await;
    let ops = json!([
        {"op": "put", "key": "greeting", "value": {"text": "<b>hi</b>"}},
        {"op": "set_alarm", "in_ms": 3_600_000},
    ]);
    let reply = server.post("/store/shelf", &ops.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let path = format!("/api/objects/{STORE}/name:shelf");
    let detail = admin_json(&server, &path).await;
    let storage = &detail["storage"];
    assert_eq!(storage["kv_count"], 1, "{detail}");
    assert_eq!(storage["kv"][0]["key"], "greeting");
    assert_eq!(storage["kv"][0]["value"]["format"], "json");
    assert!(storage["alarm_ms"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(storage["size_bytes"].as_u64().unwrap() > 0);

    let reply = server
        .admin("POST", &format!("/objects/{STORE}/name:shelf/alarm/delete"))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        admin_json(&server, &path).await["storage"]["alarm_ms"],
        Value::Null
    );
    let reply = server
        .post("/store/shelf", &json!([{"op": "get_alarm"}]).to_string())
        .await;
    assert_eq!(reply.body, r#"[{"ok":null}]"#, "the object sees it gone");

    // An object that never stored anything shows no database, and none is made for the look.
    let empty = admin_json(&server, &format!("/api/objects/{STORE}/name:untouched")).await;
    assert_eq!(empty["storage"], Value::Null);
}

#[tokio::test]
async fn actions_from_another_site_are_refused_and_scripts_are_not() {
    let server = TestServer::start(common::app()).await;
    let admin = server.admin_addr();
    let path = format!("/objects/{PROBE}/name:nobody/hibernate");
    let refused = http_request(
        admin,
        "POST",
        &path,
        &[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        "",
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(server.admin("POST", &path).await.status, 204);
    let page = server.admin("GET", "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Dormouse inspector"));
}

#[tokio::test]
async fn with_a_token_every_request_needs_it() {
    let server = TestServer::start_with(common::app(), |args| {
        args.admin_token = Some("s3cret".into());
    })
    .await;
    let admin = server.admin_addr();
    let without = http_request(admin, "GET", "/api/summary", &[], "").await;
    assert_eq!(without.status, 401, "{}", without.body);
    let browser = http_request(admin, "GET", "/", &[("accept", "text/html")], "").await;
    assert_eq!(browser.status, 401);
    assert!(
        browser.body.contains("needs its token"),
        "a page asks for it"
    );
    for headers in [
        [("authorization", "Bearer s3cret")],
        [("cookie", "dormouse_admin_token=s3cret")],
    ] {
        let with = http_request(admin, "GET", "/api/summary", &headers, "").await;
        assert_eq!(with.status, 200, "{headers:?}");
    }
}

/// Reads a Server-Sent Events response from the admin address until its text holds `needle`.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    while !seen.contains(needle) {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("no {needle} in the feed so far: {seen}"))
                .unwrap();
        assert!(read > 0, "the feed ended before {needle}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
}

#[tokio::test]
async fn an_objects_live_log_follows_it_through_hibernation() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/logged").await;
    client.send_text("my-id").await;
    let socket = client.recv_text().await;

    let mut feed = tokio::net::TcpStream::connect(server.admin_addr())
        .await
        .unwrap();
    feed.write_all(
        format!("GET /api/objects/{PROBE}/name:logged/log HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = String::new();
    read_until(&mut feed, &mut seen, "text/event-stream").await;

    client.send_text("echo hello").await;
    assert_eq!(client.recv_text().await, "hello");
    read_until(&mut feed, &mut seen, r#""kind":"websocket_message""#).await;
    read_until(
        &mut feed,
        &mut seen,
        &format!("socket {socket}: text, 10 bytes"),
    )
    .await;
    let reply = server
        .admin("POST", &format!("/objects/{PROBE}/name:logged/hibernate"))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    read_until(&mut feed, &mut seen, r#""kind":"hibernated""#).await;
    client.send_text("tags").await;
    client.recv_text().await;
    read_until(&mut feed, &mut seen, r#""kind":"woken""#).await;
    client.send_text("panic").await;
    read_until(&mut feed, &mut seen, r#""kind":"reset""#).await;
    read_until(
        &mut feed,
        &mut seen,
        "websocket_message handler panicked: handler panics on request",
    )
    .await;

    // Another object's events are not in this log.
    let mut other = server.connect("/probe/not-logged").await;
    other.send_text("echo elsewhere").await;
    other.recv_text().await;
    assert!(
        !seen.contains("elsewhere") && !seen.contains("14 bytes"),
        "{seen}"
    );
}
