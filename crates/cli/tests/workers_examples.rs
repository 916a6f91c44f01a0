//! The Workers examples (`examples/workers/`), each served as `dormouse dev` serves it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dormouse_testing::{
    ProcessOptions, ServerProcess, WorkersServer, durability, process_data_dir, try_http_request,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_dormouse");

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/workers")
        .join(name)
}

async fn json_message(client: &mut dormouse_testing::WsClient) -> Value {
    serde_json::from_str(&client.recv_text().await).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_counts_over_rpc_and_websockets_across_hibernation() {
    let server = WorkersServer::start(&example("counter")).await;
    assert_eq!(server.request("GET", "/counter/a").await.body, "0");
    assert_eq!(server.request("POST", "/counter/a").await.body, "1");
    assert_eq!(server.request("POST", "/counter/a").await.body, "2");
    assert_eq!(server.request("POST", "/counter/b").await.body, "1");
    server.hibernate("COUNTER", "a").await;
    assert_eq!(server.request("GET", "/counter/a").await.body, "2");
    let mut ws = server.connect("/counter/a").await;
    ws.send_text("+1").await;
    assert_eq!(ws.recv_text().await, "3");
    server.hibernate("COUNTER", "a").await;
    ws.send_text("+1").await;
    assert_eq!(ws.recv_text().await, "4");
    assert_eq!(server.request("GET", "/nowhere").await.status, 404);
}

async fn counter_survives_kills(load: durability::Load) {
    let (_dir, data) = process_data_dir("workers-counter-kill");
    let options = ProcessOptions {
        leading_args: vec!["serve".into(), example("counter").display().to_string()],
        ..Default::default()
    };
    durability::survive_kills_under(
        || ServerProcess::start(Path::new(BINARY), &data, &options),
        load,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_increments_acknowledged_before_kill_9_survive_it() {
    counter_survives_kills(durability::Load::SPREAD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn increments_of_fifty_writers_on_one_counter_survive_kill_9() {
    counter_survives_kills(durability::Load::ONE_OBJECT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn game_state_survives_hibernation_and_rounds_end_on_an_alarm() {
    let server = WorkersServer::start_with(&example("game"), |args| {
        args.env = Some("test".into());
    })
    .await;
    let mut ann = server.connect("/game/g1?playerId=ann").await;
    assert_eq!(json_message(&mut ann).await["type"], "welcome");
    let mut bob = server.connect("/game/g1?playerId=bob").await;
    let welcome = json_message(&mut bob).await;
    assert_eq!(
        welcome["state"]["players"]["ann"],
        json!({ "x": 0, "y": 0, "score": 0 })
    );
    ann.send_text(r#"{"type":"move","x":3,"y":4}"#).await;
    for client in [&mut ann, &mut bob] {
        let update = json_message(client).await;
        assert_eq!(update["type"], "state_update");
        assert_eq!(update["state"]["players"]["ann"]["x"], 3);
        assert_eq!(update["lastAction"]["playerId"], "ann");
    }
    server.hibernate("GAME_ROOM", "g1").await;
    bob.send_text(r#"{"type":"score","points":10}"#).await;
    let update = json_message(&mut ann).await;
    assert_eq!(
        update["state"]["players"]["ann"]["y"], 4,
        "the state was saved"
    );
    assert_eq!(update["state"]["players"]["bob"]["score"], 10);
    json_message(&mut bob).await;
    bob.send_text(r#"{"type":"start_round"}"#).await;
    assert_eq!(
        json_message(&mut ann).await["lastAction"]["result"]["round"],
        1
    );
    json_message(&mut bob).await;
    server.hibernate("GAME_ROOM", "g1").await;
    // The round ends on the object's alarm, which wakes it.
    let over = tokio::time::timeout(Duration::from_secs(10), json_message(&mut ann))
        .await
        .expect("the round ends");
    assert_eq!(
        over,
        json!({ "type": "round_over", "round": 1, "winner": "bob" })
    );
    ann.send_text("not json").await;
    assert_eq!(json_message(&mut ann).await["type"], "error");
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_lists_members_and_their_status_across_hibernation() {
    let server = WorkersServer::start(&example("presence")).await;
    let mut ann = server.connect("/presence/p1?userId=ann").await;
    assert_eq!(
        json_message(&mut ann).await,
        json!({ "type": "presence_list", "users": [{ "userId": "ann", "status": "online" }] })
    );
    let mut bob = server.connect("/presence/p1?userId=bob").await;
    assert_eq!(
        json_message(&mut bob).await["users"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        json_message(&mut ann).await,
        json!({ "type": "user_joined", "userId": "bob" })
    );
    bob.send_text(r#"{"type":"status_update","status":"away"}"#)
        .await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(
            json_message(client).await,
            json!({ "type": "presence_update", "userId": "bob", "status": "away" })
        );
    }
    server.hibernate("PRESENCE", "p1").await;
    ann.send_text(r#"{"type":"who","userId":"bob"}"#).await;
    assert_eq!(
        json_message(&mut ann).await,
        json!({ "type": "who", "userId": "bob", "status": "away" })
    );
    bob.close(1000, "bye").await;
    assert_eq!(
        json_message(&mut ann).await,
        json!({ "type": "user_left", "userId": "bob" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_are_answered_without_waking_and_silent_sockets_are_swept() {
    let server = WorkersServer::start_with(&example("heartbeat"), |args| {
        args.env = Some("test".into());
    })
    .await;
    let mut lively = server.connect("/heartbeat/h1").await;
    let mut silent = server.connect("/heartbeat/h1").await;
    server.hibernate("HEARTBEAT", "h1").await;
    let wakes = server
        .metrics()
        .await
        .get("dormouse_object_wakes_total", "HEARTBEAT");
    lively.send_text("ping").await;
    assert_eq!(lively.recv_text().await, "pong");
    // The silent socket is closed by a sweep; the lively one keeps pinging meanwhile.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            lively.send_text("ping").await;
            assert_eq!(lively.recv_text().await, "pong");
            if let Ok(Some(close)) =
                tokio::time::timeout(Duration::from_millis(50), silent.expect_close()).await
            {
                return close;
            }
        }
    })
    .await
    .expect("the silent socket is swept");
    assert_eq!(closed, (4000, "stale".to_owned()));
    let status: Value =
        serde_json::from_str(&server.request("GET", "/heartbeat/h1").await.body).unwrap();
    assert_eq!(status["live"], 1, "{status}");
    assert!(
        server
            .metrics()
            .await
            .get("dormouse_websocket_auto_responses_total", "HEARTBEAT")
            >= 2.0
    );
    assert!(
        server
            .metrics()
            .await
            .get("dormouse_object_wakes_total", "HEARTBEAT")
            >= wakes
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hono_router_from_node_modules_serves_a_chat_room() {
    let project = example("hono-chat");
    assert!(
        project.join("node_modules/hono").is_dir(),
        "run `npm install` in {} (scripts/test does)",
        project.display()
    );
    let server = WorkersServer::start(&project).await;
    assert!(
        server
            .request("GET", "/")
            .await
            .body
            .starts_with("Hono chat on Dormouse")
    );
    let mut ws = server.connect("/rooms/lobby/ws?name=ann").await;
    let posted = server
        .send(
            "POST",
            "/rooms/lobby/messages",
            &[("content-type", "application/json")],
            r#"{"name":"bob","text":"hi"}"#,
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let heard = json_message(&mut ws).await;
    assert_eq!(
        (heard["name"].as_str(), heard["text"].as_str()),
        (Some("bob"), Some("hi"))
    );
    ws.send_text("hello from the socket").await;
    assert_eq!(json_message(&mut ws).await["text"], "hello from the socket");
    server.hibernate("ROOMS", "lobby").await;
    let history: Value =
        serde_json::from_str(&server.request("GET", "/rooms/lobby/history").await.body).unwrap();
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hi", "hello from the socket"]);
    let bad = server
        .send(
            "POST",
            "/rooms/lobby/messages",
            &[("content-type", "application/json")],
            r#"{"name":"bob"}"#,
        )
        .await;
    assert_eq!(bad.status, 400);
    let reply = try_http_request(server.addr(), "GET", "/rooms/lobby/ws", "")
        .await
        .unwrap();
    assert_eq!(reply.status, 426);
}
