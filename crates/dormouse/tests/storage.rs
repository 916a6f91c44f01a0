//! The storage API: KV, SQL, transactions, limits, and durability across hibernation.

mod common;

use common::store::{self, STORE};
use dormouse_testing::TestServer;
use serde_json::{Value, json};

async fn run(server: &TestServer, object: &str, ops: Value) -> Vec<Value> {
    let reply = server
        .post(&format!("/store/{object}"), &ops.to_string())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str::<Vec<Value>>(&reply.body).unwrap()
}

/// The value of a successful operation; panics with the error otherwise.
fn ok(result: &Value) -> &Value {
    assert!(result.get("error").is_none(), "operation failed: {result}");
    &result["ok"]
}

#[tokio::test]
async fn kv_get_put_delete_and_multi_key_variants() {
    let server = TestServer::start(store::app()).await;
    let r = run(
        &server,
        "kv",
        json!([
            {"op": "get", "key": "missing"},
            {"op": "put", "key": "user:1", "value": {"name": "ann", "tags": [1, 2]}},
            {"op": "get", "key": "user:1"},
            {"op": "put_multiple", "entries": {"user:2": "ben", "user:3": 3, "other": true}},
            {"op": "get_multiple", "keys": ["user:3", "nope", "user:2"]},
            {"op": "delete", "key": "user:3"},
            {"op": "delete", "key": "user:3"},
            {"op": "delete_multiple", "keys": ["user:2", "other", "nope"]},
        ]),
    )
    .await;
    assert_eq!(ok(&r[0]), &Value::Null);
    assert_eq!(ok(&r[2]), &json!({"name": "ann", "tags": [1, 2]}));
    assert_eq!(
        ok(&r[4]),
        &json!([["user:2", "ben"], ["user:3", 3]]),
        "sorted, missing keys left out"
    );
    assert_eq!((ok(&r[5]), ok(&r[6])), (&json!(true), &json!(false)));
    assert_eq!(ok(&r[7]), &json!(2));
}

#[tokio::test]
async fn kv_list_options() {
    let server = TestServer::start(store::app()).await;
    let puts: Vec<Value> = ["a", "b", "ba", "bb", "c"]
        .iter()
        .map(|k| json!({"op": "put", "key": k, "value": k}))
        .collect();
    run(&server, "list", Value::Array(puts)).await;
    let r = run(
        &server,
        "list",
        json!([
            {"op": "list"},
            {"op": "list", "prefix": "b"},
            {"op": "list", "start": "b", "end": "c", "reverse": true},
            {"op": "list", "start_after": "b", "limit": 2},
            {"op": "list", "limit": 0},
            {"op": "list", "start": "a", "start_after": "a"},
        ]),
    )
    .await;
    let keys = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(ok(&r[0])), ["a", "b", "ba", "bb", "c"]);
    assert_eq!(keys(ok(&r[1])), ["b", "ba", "bb"]);
    assert_eq!(keys(ok(&r[2])), ["bb", "ba", "b"]);
    assert_eq!(keys(ok(&r[3])), ["ba", "bb"]);
    assert_eq!(r[4]["error"], "List limit must be positive.");
    assert_eq!(
        r[5]["error"],
        "list() cannot be called with both start and startAfter values."
    );
}

#[tokio::test]
async fn sql_with_cursor_details_and_kv_in_one_database() {
    let server = TestServer::start(store::app()).await;
    let r = run(&server, "sql", json!([
        {"op": "sql", "query": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, avatar BLOB); INSERT INTO users (name) VALUES ('ann')"},
        {"op": "sql", "query": "INSERT INTO users (name, avatar) VALUES (?, ?), (?, NULL) RETURNING id", "bindings": ["ben", {"blob": [1, 2]}, "cy"]},
        {"op": "sql", "query": "SELECT id, name, avatar FROM users ORDER BY id"},
        {"op": "sql_one", "query": "SELECT count(*) AS n FROM users"},
        {"op": "sql_one", "query": "SELECT name FROM users"},
        {"op": "size"},
        {"op": "put", "key": "k", "value": 1},
    ])).await;
    assert_eq!(ok(&r[0])["rows_written"], 1);
    assert_eq!(ok(&r[1])["rows"], json!([[2], [3]]));
    let select = ok(&r[2]);
    assert_eq!(select["columns"], json!(["id", "name", "avatar"]));
    assert_eq!(select["rows"][1], json!([2, "ben", {"blob": [1, 2]}]));
    assert!(select["rows_read"].as_u64().unwrap() >= 3);
    assert_eq!(ok(&r[3]), &json!({"n": 3}));
    assert_eq!(
        r[4]["error"],
        "Expected exactly one result from SQL query, but got multiple results."
    );
    assert!(ok(&r[5]).as_u64().unwrap() > 0);
}

#[tokio::test]
async fn sql_rules_and_limits() {
    let server = TestServer::start(store::app()).await;
    let r = run(
        &server,
        "sql-rules",
        json!([
            {"op": "sql", "query": "BEGIN TRANSACTION"},
            {"op": "sql", "query": "SAVEPOINT s"},
            {"op": "sql", "query": "SELECT * FROM _dormouse_kv"},
            {"op": "sql", "query": "PRAGMA journal_mode = DELETE"},
            {"op": "sql", "query": "SELECT 1", "bindings": [1]},
            {"op": "sql", "query": format!("SELECT '{}'", "x".repeat(100_001))},
            {"op": "sql", "query": "SELECT ?", "bindings": vec![Value::Null; 101]},
            {"op": "sql", "query": "not sql at all"},
        ]),
    )
    .await;
    assert!(
        r[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("To execute a transaction, please use the storage.transaction_sync() API")
    );
    assert!(
        r[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("To execute a transaction")
    );
    assert_eq!(
        r[2]["error"],
        "access to _dormouse_kv is prohibited: names starting with _dormouse_ are reserved"
    );
    assert_eq!(r[3]["error"], "PRAGMA journal_mode is not allowed");
    assert_eq!(
        r[4]["error"],
        "wrong number of SQL bindings: the statement takes none, 1 were given"
    );
    assert_eq!(
        r[5]["error"],
        "SQL statement too long: 100010 bytes (the limit is 100000)"
    );
    assert_eq!(
        r[6]["error"],
        "too many SQL bindings: 101 (the limit is 100)"
    );
    assert!(
        r[7]["error"].as_str().unwrap().contains("syntax error"),
        "{}",
        r[7]
    );
}

#[tokio::test]
async fn kv_limits() {
    let server = TestServer::start(store::app()).await;
    let keys: Vec<String> = (0..129).map(|i| i.to_string()).collect();
    let r = run(
        &server,
        "kv-limits",
        json!([
            {"op": "get_multiple", "keys": keys},
            {"op": "put", "key": "big", "value": "x".repeat(2_000_000)},
            {"op": "put", "key": "fits", "value": "x".repeat(1_999_990)},
        ]),
    )
    .await;
    assert_eq!(
        r[0]["error"],
        "Maximum number of key value pairs is 128. 129 pairs were provided."
    );
    assert!(
        r[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("Key and value together cannot be larger than 2000000 bytes.")
    );
    assert_eq!(r[1]["kind"], "Range");
    ok(&r[2]);
}

#[tokio::test]
async fn transaction_sync_rolls_back_on_error_and_nests() {
    let server = TestServer::start(store::app()).await;
    let r = run(
        &server,
        "txn",
        json!([
            {"op": "put", "key": "a", "value": 1},
            {"op": "txn", "fail": true, "ops": [
                {"op": "put", "key": "a", "value": 2},
                {"op": "sql", "query": "CREATE TABLE t (x)"},
            ]},
            {"op": "get", "key": "a"},
            {"op": "sql", "query": "SELECT name FROM sqlite_master WHERE name = 't'"},
            {"op": "txn", "ops": [
                {"op": "put", "key": "b", "value": 1},
                {"op": "txn", "fail": true, "ops": [{"op": "put", "key": "c", "value": 1}]},
            ]},
            {"op": "get_multiple", "keys": ["b", "c"]},
            {"op": "txn", "ops": [{"op": "delete_all"}]},
        ]),
    )
    .await;
    assert_eq!(r[1]["error"], "rolled back on request");
    assert_eq!(ok(&r[2]), &json!(1), "the KV write was rolled back");
    assert_eq!(ok(&r[3])["rows"], json!([]), "the SQL write too");
    assert_eq!(
        r[4]["error"], "rolled back on request",
        "the inner failure fails the outer body"
    );
    assert_eq!(ok(&r[5]), &json!([]), "and rolls everything back");
    assert_eq!(
        r[6]["error"],
        "Cannot call deleteAll() within a transaction"
    );
}

#[tokio::test]
async fn delete_all_removes_kv_tables_and_the_alarm() {
    let server = TestServer::start(store::app()).await;
    let r = run(
        &server,
        "wipe",
        json!([
            {"op": "put", "key": "k", "value": 1},
            {"op": "sql", "query": "CREATE TABLE t (x); CREATE VIEW v AS SELECT * FROM t"},
            {"op": "set_alarm", "in_ms": 3_600_000},
            {"op": "delete_all"},
            {"op": "get", "key": "k"},
            {"op": "sql", "query": "SELECT name FROM sqlite_master WHERE name IN ('t', 'v')"},
            {"op": "get_alarm"},
        ]),
    )
    .await;
    ok(&r[3]);
    assert_eq!(ok(&r[4]), &Value::Null);
    assert_eq!(ok(&r[5])["rows"], json!([]));
    assert_eq!(ok(&r[6]), &Value::Null);
}

#[tokio::test]
async fn writes_of_a_failing_handler_are_kept_but_a_panic_discards_them() {
    let server = TestServer::start(store::app()).await;
    let reply = server
        .post(
            "/store/fail",
            &json!([{"op": "put", "key": "k", "value": "kept"}, {"op": "fail_request"}])
                .to_string(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (500, "User: request fails on request")
    );
    let reply = server
        .post(
            "/store/fail",
            &json!([{"op": "put", "key": "k", "value": "lost"}, {"op": "panic"}]).to_string(),
        )
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        ok(&run(&server, "fail", json!([{"op": "get", "key": "k"}])).await[0]),
        &json!("kept")
    );
}

#[tokio::test]
async fn storage_survives_hibernation_and_constructors_read_it() {
    let server = TestServer::start(store::app()).await;
    let mut client = server.connect("/store/hib").await;
    client.send_text(&json!([{"op": "put", "key": "boots", "value": 41}, {"op": "sql", "query": "CREATE TABLE t (x); INSERT INTO t VALUES (7)"}]).to_string()).await;
    client.recv_text().await;
    server.hibernate(STORE, "hib").await;
    client
        .send_text(&json!([{"op": "sql_one", "query": "SELECT x FROM t"}]).to_string())
        .await;
    let r: Vec<Value> = serde_json::from_str(&client.recv_text().await).unwrap();
    assert_eq!(ok(&r[0]), &json!({"x": 7}));
    assert_eq!(
        common::wait_for("hib", "new boots=41").await,
        "new boots=41",
        "the woken constructor read storage"
    );
}

#[tokio::test]
async fn objects_without_storage_never_touch_the_disk() {
    let server = TestServer::start(common::app()).await;
    let mut client = server.connect("/probe/no-disk").await;
    client.send_text("echo hi").await;
    assert_eq!(client.recv_text().await, "hi");
    server.hibernate(common::PROBE, "no-disk").await;
    client.send_text("echo again").await;
    assert_eq!(client.recv_text().await, "again");
    // Only the catalog exists; no object database was created.
    let data = server.data_dir().join("objects");
    let files: Vec<_> = walk(&data);
    assert!(files.is_empty(), "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
