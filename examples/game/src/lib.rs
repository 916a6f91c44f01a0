//! The multiplayer game state of seed 003 on Dormouse.
//!
//! `GET /game/{id}?playerId=..` (WebSocket) joins a game. The game's state is loaded from storage
//! in the constructor (so it survives hibernation and restarts), saved after every action, and
//! broadcast to every player:
//! `{"type":"state_update","state":..,"lastAction":{"playerId","action","result"}}`.
//!
//! Actions (JSON text messages):
//! - `{"type":"move","x":1,"y":2}`: moves the player.
//! - `{"type":"score","points":10}`: adds points.
//! - `{"type":"start_round"}`: starts a round; when it ends (after `ROUND_SECONDS`, default 30, a
//!   variable of the configuration), an alarm announces `{"type":"round_over","round":n,
//!   "winner":..}` to everyone, even if the game hibernated or the server restarted meanwhile.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dormouse::axum::Router;
use dormouse::axum::extract::{Path, Request as AxumRequest, State as Extract};
use dormouse::axum::routing::get;
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The binding of the game class.
pub const BINDING: &str = "GAME_ROOM";

/// Where the state is kept in the object's storage.
const STATE_KEY: &str = "gameState";

/// Round length when the configuration sets none.
const DEFAULT_ROUND_SECONDS: u64 = 30;

/// One player.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Player {
    /// Horizontal position.
    pub x: i64,
    /// Vertical position.
    pub y: i64,
    /// Points so far.
    pub score: u64,
}

/// Everything the game remembers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GameState {
    /// Players by id.
    pub players: BTreeMap<String, Player>,
    /// Rounds started so far.
    pub round: u64,
    /// When the running round ends, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_ends_at: Option<i64>,
}

/// The attachment of each player's socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seat {
    player_id: String,
}

/// One game.
#[derive(Debug)]
pub struct GameRoom {
    state: State,
    game: GameState,
    round_length: Duration,
}

impl DurableObject for GameRoom {
    fn new(state: State, env: Env) -> Self {
        // The constructor reads storage synchronously: a woken (or restarted) game is whole
        // before its first event. (If storage cannot be read, the game starts empty and the
        // first save reports the error.)
        let game = match state.storage().and_then(|storage| storage.get(STATE_KEY)) {
            Ok(game) => game.unwrap_or_default(),
            Err(error) => {
                tracing::error!(%error, "cannot load the game state");
                GameState::default()
            }
        };
        let seconds = env
            .var("ROUND_SECONDS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_ROUND_SECONDS);
        GameRoom {
            state,
            game,
            round_length: Duration::from_secs(seconds),
        }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        let Some(player_id) = req.query_param("playerId").filter(|id| !id.is_empty()) else {
            return Ok(response::text(
                StatusCode::BAD_REQUEST,
                "playerId is required",
            ));
        };
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[&format!("player:{player_id}")])?;
        pair.server.serialize_attachment(Seat {
            player_id: player_id.clone(),
        })?;
        self.game.players.entry(player_id).or_default();
        self.save()?;
        pair.server
            .send(&json!({ "type": "state", "state": self.game }))?;
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(seat) = ws.deserialize_attachment::<Seat>()? else {
            return Ok(());
        };
        let WebSocketIncomingMessage::String(text) = message else {
            return ws.send(&json!({ "type": "error", "error": "actions are JSON text" }));
        };
        let action: Value = match serde_json::from_str(&text) {
            Ok(action) => action,
            Err(error) => {
                return ws
                    .send(&json!({ "type": "error", "error": format!("invalid JSON: {error}") }));
            }
        };
        let result = self.process_action(&seat.player_id, &action)?;
        self.save()?;
        let update = json!({
            "type": "state_update",
            "state": self.game,
            "lastAction": { "playerId": seat.player_id, "action": action, "result": result },
        });
        self.state
            .broadcast(None, update.to_string().as_str(), None);
        Ok(())
    }

    async fn alarm(&mut self, _info: AlarmInfo) -> Result<()> {
        let winner = self
            .game
            .players
            .iter()
            .max_by_key(|(_, p)| p.score)
            .map(|(id, _)| id.clone());
        self.game.round_ends_at = None;
        self.save()?;
        let over = json!({ "type": "round_over", "round": self.game.round, "winner": winner });
        self.state.broadcast(None, over.to_string().as_str(), None);
        Ok(())
    }
}

impl GameRoom {
    fn process_action(&mut self, player_id: &str, action: &Value) -> Result<Value> {
        let player = self.game.players.entry(player_id.to_owned()).or_default();
        let number = |field: &str| action.get(field).and_then(Value::as_i64);
        Ok(match action.get("type").and_then(Value::as_str) {
            Some("move") => match (number("x"), number("y")) {
                (Some(x), Some(y)) => {
                    (player.x, player.y) = (x, y);
                    json!({ "success": true })
                }
                _ => json!({ "success": false, "error": "move needs integer x and y" }),
            },
            Some("score") => match number("points").filter(|p| *p >= 0) {
                Some(points) => {
                    player.score += points as u64;
                    json!({ "success": true })
                }
                None => {
                    json!({ "success": false, "error": "score needs non-negative integer points" })
                }
            },
            Some("start_round") => {
                if self.game.round_ends_at.is_some() {
                    json!({ "success": false, "error": "a round is running" })
                } else {
                    let ends = SystemTime::now() + self.round_length;
                    self.game.round += 1;
                    self.game.round_ends_at = Some(
                        ends.duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as i64),
                    );
                    self.state.storage()?.set_alarm(ends)?;
                    json!({ "success": true })
                }
            }
            _ => json!({ "success": false, "error": "unknown action" }),
        })
    }

    fn save(&self) -> Result<()> {
        self.state.storage()?.put(STATE_KEY, &self.game)
    }
}

async fn game(
    Extract(env): Extract<Env>,
    Path(id): Path<String>,
    req: AxumRequest,
) -> Result<Response> {
    if !req.is_websocket_upgrade() {
        return Ok(response::text(
            StatusCode::UPGRADE_REQUIRED,
            "Expected WebSocket upgrade",
        ));
    }
    env.durable_object(BINDING)?
        .get_by_name(&id)?
        .fetch(req)
        .await
}

/// The application.
pub fn app() -> App {
    App::new()
        .durable_object::<GameRoom>(BINDING)
        .worker(|env| Router::new().route("/game/{id}", get(game)).with_state(env))
}
