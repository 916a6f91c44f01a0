//! The game: actions, broadcast state, and its state and round alarm across hibernation and
//! crashes of real processes.

use std::path::Path;

use dormouse_testing::{
    ProcessOptions, ServerProcess, TestServer, WsClient, process_data_dir, wait_until_wall_clock,
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_game");

async fn recv(client: &mut WsClient) -> Value {
    serde_json::from_str(&client.recv_text().await).unwrap()
}

#[tokio::test]
async fn actions_update_and_broadcast_the_state_across_hibernation() {
    let server = TestServer::start(game::app()).await;
    let mut ann = server.connect("/game/g1?playerId=ann").await;
    assert_eq!(
        recv(&mut ann).await,
        json!({"type": "state", "state": {"players": {"ann": {"x": 0, "y": 0, "score": 0}}, "round": 0}})
    );
    let mut ben = server.connect("/game/g1?playerId=ben").await;
    assert_eq!(
        recv(&mut ben).await["state"]["players"]
            .as_object()
            .unwrap()
            .len(),
        2
    );

    ann.send_text(r#"{"type":"move","x":3,"y":-1}"#).await;
    let update = recv(&mut ann).await;
    assert_eq!(update["type"], "state_update");
    assert_eq!(
        update["state"]["players"]["ann"],
        json!({"x": 3, "y": -1, "score": 0})
    );
    assert_eq!(
        update["lastAction"],
        json!({"playerId": "ann", "action": {"type": "move", "x": 3, "y": -1}, "result": {"success": true}})
    );
    assert_eq!(recv(&mut ben).await, update);

    server.hibernate(game::BINDING, "g1").await;
    ben.send_text(r#"{"type":"score","points":5}"#).await;
    let update = recv(&mut ben).await;
    assert_eq!(
        update["state"]["players"]["ann"]["x"], 3,
        "the woken game loaded its state in the constructor"
    );
    assert_eq!(update["state"]["players"]["ben"]["score"], 5);
    recv(&mut ann).await;

    ben.send_text(r#"{"type":"dance"}"#).await;
    assert_eq!(
        recv(&mut ben).await["lastAction"]["result"],
        json!({"success": false, "error": "unknown action"})
    );
    ben.send_text("not json").await;
    assert_eq!(recv(&mut ben).await["type"], "error");
}

fn options(round_seconds: u64, dir: &Path) -> ProcessOptions {
    let config = dir.join("game.toml");
    std::fs::write(
        &config,
        format!("[vars]\nROUND_SECONDS = \"{round_seconds}\"\n"),
    )
    .unwrap();
    ProcessOptions {
        args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    }
}

/// Starts a round in game `id` and returns when it ends (ms since the epoch).
async fn start_round(server: &ServerProcess, id: &str) -> (WsClient, i64) {
    let mut player = WsClient::connect(&server.ws_url(&format!("/game/{id}?playerId=p"))).await;
    recv(&mut player).await;
    player.send_text(r#"{"type":"score","points":7}"#).await;
    recv(&mut player).await;
    player.send_text(r#"{"type":"start_round"}"#).await;
    let update = recv(&mut player).await;
    assert_eq!(update["lastAction"]["result"]["success"], true);
    (player, update["state"]["roundEndsAt"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn state_and_a_pending_alarm_survive_sigkill() {
    let (dir, data) = process_data_dir("game-pending");
    let options = options(3, dir.path());
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let (_player, ends) = start_round(&server, "g").await;
    server.kill9();

    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let mut player = WsClient::connect(&server.ws_url("/game/g?playerId=p")).await;
    let state = recv(&mut player).await;
    assert_eq!(
        state["state"]["players"]["p"]["score"], 7,
        "the state survived the crash"
    );
    if state["state"]["roundEndsAt"].as_i64() == Some(ends) {
        // Still pending: it fires at its time.
        assert_eq!(
            recv(&mut player).await,
            json!({"type": "round_over", "round": 1, "winner": "p"})
        );
    }
    // Either way the round is over now, and it was announced once.
    let mut check = WsClient::connect(&server.ws_url("/game/g?playerId=q")).await;
    assert!(recv(&mut check).await["state"].get("roundEndsAt").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_that_came_due_while_the_server_was_down_fires_at_restart() {
    let (dir, data) = process_data_dir("game-late");
    let options = options(1, dir.path());
    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let (_player, ends) = start_round(&server, "late").await;
    server.kill9();
    wait_until_wall_clock(ends).await;

    let server = ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let mut player = WsClient::connect(&server.ws_url("/game/late?playerId=p")).await;
    let state = recv(&mut player).await;
    if state["state"].get("roundEndsAt").is_some() {
        // Connected before the late alarm ran: it runs at once and is announced.
        assert_eq!(recv(&mut player).await["type"], "round_over");
    }
    let mut check = WsClient::connect(&server.ws_url("/game/late?playerId=q")).await;
    assert!(
        recv(&mut check).await["state"].get("roundEndsAt").is_none(),
        "the late alarm ran at restart"
    );
}
