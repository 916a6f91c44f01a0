//! Workers mode's APIs, through the `probe` project (`tests/projects/probe`): the Web platform,
//! the Durable Objects API (storage, RPC, alarms, WebSockets), the input gate, and the limits.
//! Every request goes through a real server on loopback.

use std::path::PathBuf;
use std::time::Duration;

use dormouse_testing::{WorkersServer, http_request};
use serde_json::{Value, json};

fn probe() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/projects/probe")
}

async fn get_json(server: &WorkersServer, path: &str) -> Value {
    let reply = server.request("GET", path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", reply.body))
}

#[tokio::test(flavor = "multi_thread")]
async fn web_platform_apis_behave_as_in_workers() {
    let server = WorkersServer::start(&probe()).await;
    let web = get_json(&server, "/web").await;
    assert_eq!(
        web["url"],
        json!([
            "example.com",
            "8080",
            "/a/b",
            "?x=1&y=two&z=3+4",
            "#frag",
            "https://example.com:8080",
            "user"
        ])
    );
    assert_eq!(web["params"], json!([["1", "2"], " ", ["a", "a", "b"]]));
    assert_eq!(
        web["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(web["hmacVerified"], true);
    assert_eq!(web["uuid"], true);
    assert_eq!(web["random"], 8);
    assert_eq!(web["base64"], json!(["aGkh", "hi!"]));
    assert_eq!(web["text"], "héllo €");
    assert_eq!(web["order"], json!(["sync", "microtask", "timeout"]));
    assert_eq!(web["events"], 1);
    assert_eq!(web["aborted"], json!([true, "AbortError"]));
    assert_eq!(web["domException"], json!([8, true]));
    assert_eq!(web["streamed"], "ab");
    assert_eq!(web["blob"], "abc");
    assert_eq!(web["form"], "value");
    assert_eq!(web["headers"], json!([["x-a", "1, again"], ["x-b", "2"]]));
    assert_eq!(web["clone"], true);
    assert_eq!(web["json"], json!({ "a": 1 }));
    assert_eq!(web["requestMethod"], "GET");
    assert_eq!(web["body"], "payload");
    assert_eq!(web["dataJson"], "from data.json");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_streams_redirects_and_outbound_fetch() {
    let server = WorkersServer::start(&probe()).await;
    let echoed = server
        .send(
            "POST",
            "/echo-body",
            &[("content-type", "text/x-test")],
            "the body",
        )
        .await;
    assert_eq!(echoed.body, "the body");
    assert_eq!(echoed.headers["content-type"], "text/x-test");
    assert_eq!(
        server.request("GET", "/stream").await.body,
        "chunk0;chunk1;chunk2;"
    );
    let redirect = server.request("GET", "/redirect").await;
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.headers["location"], "http://example.com/elsewhere");
    // An outbound fetch over HTTP, to this server's own admin endpoint.
    let fetched = get_json(
        &server,
        &format!("/fetch?url=http://{}/healthz", server.admin_addr()),
    )
    .await;
    assert_eq!(fetched, json!({ "status": 200, "body": "ok" }));
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_keep_their_state_and_share_one_module_evaluation() {
    let server = WorkersServer::start(&probe()).await;
    let first = get_json(&server, "/obj/a/count").await;
    assert_eq!(first["count"], 1);
    assert_eq!(first["name"], "a");
    assert_eq!(first["id"].as_str().unwrap().len(), 64);
    assert_eq!(get_json(&server, "/obj/a/count").await["count"], 2);
    let other = get_json(&server, "/obj/b/count").await;
    assert_eq!(other["count"], 1);
    assert_eq!(other["evaluations"], 1, "the module is evaluated once");
    assert_eq!(other["constructions"], 2);
    server.hibernate("PROBE", "a").await;
    let woken = get_json(&server, "/obj/a/count").await;
    assert_eq!(woken["count"], 1, "a woken object is a new instance");
    assert_eq!(woken["evaluations"], 1);
    assert_eq!(woken["constructions"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_kv_sql_transactions_and_the_kv_backed_class() {
    let server = WorkersServer::start(&probe()).await;
    let kv = get_json(&server, "/obj/s/kv").await;
    assert_eq!(kv["cIsMap"], true);
    assert_eq!(kv["many"], json!(["a", "b"]));
    assert_eq!(kv["all"], json!(["a", "b", "c", "d", "e"]));
    assert_eq!(kv["ranged"], json!(["b", "c"]));
    assert_eq!(kv["reversed"], json!(["e", "d"]));
    assert_eq!(kv["prefixedDate"], true);
    assert_eq!(kv["deleted"], true);
    assert_eq!(kv["deletedMany"], 1);
    assert_eq!(kv["limitError"], "List limit must be positive.");
    assert_eq!(kv["undefinedError"], "TypeError");
    assert_eq!(kv["sync"], json!({ "ok": true }));
    assert_eq!(kv["syncList"], json!([["sync", { "ok": true }]]));
    assert_eq!(kv["txn"], "kept");
    assert_eq!(kv["rolled"], Value::Null);

    let sql = get_json(&server, "/obj/s/sql").await;
    assert_eq!(sql["columns"], json!(["id", "name", "weight"]));
    assert_eq!(
        sql["rows"],
        json!([{ "id": 1, "name": "apple", "weight": 1.5 }, { "id": 2, "name": "pear", "weight": 2 }])
    );
    assert_eq!(sql["raw"], json!([["apple"], ["pear"]]));
    assert_eq!(sql["one"], json!({ "n": 2 }));
    assert_eq!(
        sql["oneError"],
        "Expected exactly one result from SQL query, but got multiple results."
    );
    assert_eq!(sql["written"], 2);
    assert_eq!(sql["rolledBack"], true);
    assert_eq!(sql["beginError"], true);
    assert_eq!(sql["blobIsBuffer"], true);
    assert_eq!(sql["size"], true);

    // The inspector reads what the guest stored: V8's structured clone, decoded.
    let reply = server.admin("GET", "/api/objects/PROBE/name:s").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let detail: Value = serde_json::from_str(&reply.body).unwrap();
    let storage = &detail["storage"];
    let shown = |key: &str| {
        let entry = storage["kv"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {storage}"));
        assert_eq!(entry["value"]["format"], "structured-clone", "{entry}");
        entry["value"]["text"].as_str().unwrap().to_owned()
    };
    assert_eq!(shown("c"), "Map {\n  1 => 2\n}");
    assert_eq!(shown("d"), "Date(5)");
    assert_eq!(shown("e"), "[\n  1,\n  2,\n  3\n]");
    assert_eq!(shown("sync"), "{\n  \"ok\": true\n}");
    assert_eq!(shown("txn"), "\"kept\"");
    let items = storage["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["name"] == "items")
        .unwrap_or_else(|| panic!("no table items in {storage}"));
    assert_eq!(items["columns"], json!(["id", "name", "weight", "data"]));
    assert_eq!(items["row_count"], 2);
    assert_eq!(items["rows"][0][1], "apple");
    assert_eq!(items["rows"][0][2], 2.5);

    let legacy = get_json(&server, "/legacy/l").await;
    assert!(
        legacy["sql"]
            .as_str()
            .unwrap()
            .contains("new_sqlite_classes"),
        "{legacy}"
    );
    assert_eq!(
        legacy["key"],
        "Keys cannot be larger than 2048 bytes. A key of size 3000 was provided."
    );
    assert_eq!(legacy["value"], "from data.json");
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_clones_arguments_and_rethrows_errors_in_the_caller() {
    let server = WorkersServer::start(&probe()).await;
    assert_eq!(
        get_json(&server, "/rpc/r/add").await,
        json!({ "result": 5 })
    );
    assert_eq!(
        get_json(&server, "/rpc/r/echo").await,
        json!({ "date": true, "set": true, "nested": true })
    );
    assert_eq!(
        get_json(&server, "/rpc/r/fail").await,
        json!({ "threw": true, "name": "TypeError", "message": "failed: over RPC", "remote": true })
    );
    let missing = get_json(&server, "/rpc/r/missing").await;
    assert_eq!(
        missing["message"],
        "The RPC receiver does not implement the method \"noSuchMethod\"."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_cycle_between_objects_completes() {
    let server = WorkersServer::start(&probe()).await;
    // a calls b, which calls a back while a's first call is still waiting.
    let reply = server.request("GET", "/obj/a/cycle?other=b").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, "called back: pong");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_waiting_on_something_else_lets_others_in() {
    let server = WorkersServer::start(&probe()).await;
    let addr = server.addr();
    let slow = tokio::spawn(async move { http_request(addr, "GET", "/obj/g/slow", &[], "").await });
    // `slow` waits for a promise only `release` resolves: if the object took no other event
    // while `slow` waits, this would never answer.
    let mut released = String::new();
    for _ in 0..200 {
        released = server.request("GET", "/obj/g/release").await.body;
        if released == "released it" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(released, "released it");
    assert_eq!(slow.await.unwrap().body, "released");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_request_is_not_queued_behind_another_requests_timer() {
    let server = WorkersServer::start(&probe()).await;
    let addr = server.addr();
    let timer =
        tokio::spawn(
            async move { http_request(addr, "GET", "/obj/t/timer?ms=30000", &[], "").await },
        );
    let quick = tokio::time::timeout(
        Duration::from_secs(10),
        server.request("GET", "/obj/t/count"),
    )
    .await
    .expect("a short request waits for nobody's timer");
    assert_eq!(quick.status, 200);
    assert!(!timer.is_finished());
    timer.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn block_concurrency_while_keeps_other_events_out() {
    let server = WorkersServer::start(&probe()).await;
    let addr = server.addr();
    let block =
        tokio::spawn(async move { http_request(addr, "GET", "/obj/b/block", &[], "").await });
    // Whenever `value` gets in, the block has finished: it never sees the value before.
    loop {
        let value = server.request("GET", "/obj/b/value").await.body;
        if value != "unset" {
            assert_eq!(value, "set inside blockConcurrencyWhile");
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(block.await.unwrap().body, "blocked");
}

#[tokio::test(flavor = "multi_thread")]
async fn exceptions_show_typescript_lines_and_do_not_reset_the_object() {
    let server = WorkersServer::start(&probe()).await;
    assert_eq!(get_json(&server, "/obj/e/count").await["count"], 1);
    let thrown = server.request("GET", "/obj/e/throw").await;
    assert_eq!(thrown.status, 500);
    assert!(
        thrown.body.contains("failed: on purpose"),
        "{}",
        thrown.body
    );
    assert_eq!(
        get_json(&server, "/obj/e/count").await["count"],
        2,
        "an exception does not reset the object"
    );
    let stack = server.request("GET", "/obj/e/stack").await.body;
    assert!(
        stack.starts_with("TypeError: failed: for the stack\n"),
        "{stack}"
    );
    assert!(stack.contains("at failDeep (src/failing.ts:4:"), "{stack}");
    assert!(stack.contains("at fetch (src/index.ts:61:"), "{stack}");
    assert!(!stack.contains("dormouse:prelude"), "{stack}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_loop_resets_only_its_object() {
    let server = WorkersServer::start_with(&probe(), |args| {
        args.cpu_limit = Some(Duration::from_millis(300));
    })
    .await;
    assert_eq!(get_json(&server, "/obj/loop/count").await["count"], 1);
    assert_eq!(get_json(&server, "/obj/bystander/count").await["count"], 1);
    let spun = server.request("GET", "/obj/loop/spin").await;
    assert_eq!(spun.status, 500, "{}", spun.body);
    assert_eq!(
        get_json(&server, "/obj/loop/count").await["count"],
        1,
        "the object was reset"
    );
    assert_eq!(get_json(&server, "/obj/bystander/count").await["count"], 2);
    let metrics = server.metrics().await;
    assert_eq!(metrics.get("dormouse_object_resets_total", "PROBE"), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn running_out_of_memory_resets_only_its_object() {
    let server = WorkersServer::start_with(&probe(), |args| {
        args.memory_limit = 48 << 20;
    })
    .await;
    assert_eq!(get_json(&server, "/obj/bystander/count").await["count"], 1);
    let hoarded = server.request("GET", "/obj/hoard/oom").await;
    assert_eq!(hoarded.status, 500, "{}", hoarded.body);
    assert_eq!(get_json(&server, "/obj/hoard/count").await["count"], 1);
    assert_eq!(get_json(&server, "/obj/bystander/count").await["count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn alarms_fire_in_their_object() {
    let server = WorkersServer::start(&probe()).await;
    assert_eq!(
        get_json(&server, "/obj/al/alarm").await,
        json!({ "set": true })
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if get_json(&server, "/obj/al/alarms").await["ran"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the alarm never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_compat_modules_env_vars_and_dev_vars() {
    let server = WorkersServer::start(&probe()).await;
    assert_eq!(
        get_json(&server, "/obj/n/node").await,
        json!({ "base64": "aMOpbGxv", "hex": "ff01", "length": 6, "heard": "world", "seen": "request-1", "outside": null })
    );
    assert_eq!(
        get_json(&server, "/obj/n/env").await,
        json!({ "greeting": "hello", "limits": { "max": 3, "names": ["a", "b"] }, "secret": "from .dev.vars", "same": true })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_keep_their_identity_attachments_and_errors() {
    let server = WorkersServer::start(&probe()).await;
    let mut ws = server.connect("/obj/w?name=first&tag=red&tag=blue").await;
    ws.send_text("identity").await;
    let seen: Value = serde_json::from_str(&ws.recv_text().await).unwrap();
    assert_eq!(seen["accepted"], true, "{seen}");
    assert_eq!(seen["listed"], true, "{seen}");
    assert_eq!(seen["tags"], json!(["red", "blue"]));
    assert_eq!(seen["readyState"], true);
    let constructed = seen["constructions"].as_u64().unwrap();

    server.hibernate("PROBE", "w").await;
    ws.send_text("identity").await;
    let woken: Value = serde_json::from_str(&ws.recv_text().await).unwrap();
    assert_eq!(woken["accepted"], false, "a new instance accepted nothing");
    assert_eq!(woken["firstSeenByConstructor"], true, "{woken}");
    assert_eq!(woken["listed"], true);
    assert_eq!(woken["constructions"].as_u64().unwrap(), constructed + 1);

    ws.send_text("attachment").await;
    assert_eq!(
        serde_json::from_str::<Value>(&ws.recv_text().await).unwrap(),
        json!({ "name": "first", "date": true, "map": true, "bytes": true })
    );
    ws.send_text("big-attachment").await;
    let big = ws.recv_text().await;
    assert!(
        big.starts_with("A WebSocket 'attachment' cannot be larger than 16384 bytes."),
        "{big}"
    );
    ws.send_text("settings").await;
    assert_eq!(
        serde_json::from_str::<Value>(&ws.recv_text().await).unwrap(),
        json!({ "before": { "pair": null, "at": null, "timeout": null }, "pair": ["marco", "polo"], "timeout": 5000 })
    );
    server.hibernate("PROBE", "w").await;
    ws.send_text("marco").await;
    assert_eq!(
        ws.recv_text().await,
        "polo",
        "answered by the runtime, without a wake"
    );
    ws.send_text("stamp").await;
    assert_eq!(ws.recv_text().await, r#"{"stamped":true}"#);
    ws.send_text("close-1005").await;
    assert_eq!(ws.recv_text().await, "InvalidAccessError");
    ws.send_text("throw").await;
    ws.send_text("still there?").await;
    assert_eq!(ws.recv_text().await, "echo: still there?");
    ws.send_binary(&[1, 2, 3]).await;
    assert_eq!(ws.recv_binary().await, [1, 2, 3]);
    // The compatibility date is past 2026-04-07: the runtime answers the close itself.
    assert_eq!(ws.close(4001, "done").await, Some((4001, "done".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chosen_subprotocol_is_sent_and_kept_across_hibernation() {
    let server = WorkersServer::start(&probe()).await;
    let url = server.ws_url("/obj/mqtt?protocol=first");
    let (mut ws, chosen) =
        dormouse_testing::WsClient::try_connect_offering(&url, &["mqtt", "v12.stomp"])
            .await
            .unwrap();
    assert_eq!(chosen.as_deref(), Some("mqtt"));
    server.hibernate("PROBE", "mqtt").await;
    ws.send_text("protocol").await;
    assert_eq!(ws.recv_text().await, r#"{"protocol":"mqtt"}"#);

    let mut plain = server.connect("/obj/plain").await;
    plain.send_text("protocol").await;
    assert_eq!(plain.recv_text().await, r#"{"protocol":""}"#);
}

/// What the probe's socket `ws` finds in `getWebSockets()`.
async fn list(ws: &mut dormouse_testing::WsClient) -> Value {
    ws.send_text("list").await;
    serde_json::from_str(&ws.recv_text().await).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_websockets_follows_sockets_joining_and_leaving() {
    let server = WorkersServer::start(&probe()).await;
    let mut first = server.connect("/obj/l?name=a&tag=red").await;
    assert_eq!(
        list(&mut first).await,
        json!({ "count": 1, "copy": true, "mine": true, "red": 1 })
    );
    let mut second = server.connect("/obj/l?name=b").await;
    assert_eq!(
        list(&mut first).await,
        json!({ "count": 2, "copy": true, "mine": true, "red": 1 })
    );
    assert_eq!(
        list(&mut second).await,
        json!({ "count": 2, "copy": true, "mine": true, "red": 1 })
    );
    first.close(1000, "bye").await;
    assert_eq!(
        list(&mut second).await,
        json!({ "count": 1, "copy": true, "mine": true, "red": 0 })
    );
    server.hibernate("PROBE", "l").await;
    assert_eq!(
        list(&mut second).await,
        json!({ "count": 1, "copy": true, "mine": true, "red": 0 })
    );
    let mut third = server.connect("/obj/l?name=c&tag=red").await;
    assert_eq!(
        list(&mut second).await,
        json!({ "count": 2, "copy": true, "mine": true, "red": 1 })
    );
    third.close(1000, "").await;
}
