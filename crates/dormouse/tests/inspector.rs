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
