// `GET /game/{id}?playerId=..` (WebSocket) joins a game. Actions (JSON text messages):
// `{"type":"move","x":1,"y":2}`, `{"type":"score","points":10}`, `{"type":"start_round"}`.
// Every action is saved and broadcast as `{"type":"state_update","state":..,"lastAction":..}`;
// when a round ends (an alarm, `ROUND_SECONDS` after it started) everyone hears
// `{"type":"round_over","round":n,"winner":..}`, even after hibernation or a restart.
import { DurableObject } from "cloudflare:workers";

interface Env {
  GAME_ROOM: DurableObjectNamespace<GameRoom>;
  ROUND_SECONDS: string;
}

interface Player { x: number; y: number; score: number }
interface GameState { players: Record<string, Player>; round: number; roundEndsAt?: number }
type GameAction =
  | { type: "move"; x: number; y: number }
  | { type: "score"; points: number }
  | { type: "start_round" };

export class GameRoom extends DurableObject<Env> {
  gameState: GameState;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.gameState = this.loadGameState();
  }

  loadGameState(): GameState {
    const saved = this.ctx.storage.kv.get<GameState>("gameState");
    return saved ?? { players: {}, round: 0 };
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade") !== "websocket") {
      return new Response("Expected a WebSocket upgrade", { status: 426 });
    }
    const playerId = new URL(request.url).searchParams.get("playerId");
    if (!playerId) return new Response("playerId is required", { status: 400 });
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, [`player:${playerId}`]);
    server.serializeAttachment({ playerId });
    this.gameState.players[playerId] ??= { x: 0, y: 0, score: 0 };
    this.save();
    server.send(JSON.stringify({ type: "welcome", state: this.gameState }));
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    const { playerId } = ws.deserializeAttachment() ?? {};
    let action: GameAction;
    try {
      action = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message));
    } catch {
      ws.send(JSON.stringify({ type: "error", message: "actions are JSON" }));
      return;
    }
    const result = this.processAction(playerId, action);
    this.save();
    this.broadcast({ type: "state_update", state: this.gameState, lastAction: { playerId, action, result } });
  }

  processAction(playerId: string, action: GameAction) {
    const player = (this.gameState.players[playerId] ??= { x: 0, y: 0, score: 0 });
    switch (action.type) {
      case "move":
        player.x = Number(action.x) || 0;
        player.y = Number(action.y) || 0;
        return { success: true };
      case "score":
        player.score += Number(action.points) || 0;
        return { success: true };
      case "start_round": {
        if (this.gameState.roundEndsAt) return { success: false, reason: "a round is running" };
        this.gameState.round += 1;
        const endsAt = Date.now() + Number(this.env.ROUND_SECONDS) * 1000;
        this.gameState.roundEndsAt = endsAt;
        this.ctx.storage.setAlarm(endsAt);
        return { success: true, round: this.gameState.round };
      }
      default:
        return { success: false, reason: "unknown action" };
    }
  }

  async alarm() {
    const players = Object.entries(this.gameState.players);
    const winner = players.sort(([, a], [, b]) => b.score - a.score)[0]?.[0] ?? null;
    delete this.gameState.roundEndsAt;
    this.save();
    this.broadcast({ type: "round_over", round: this.gameState.round, winner });
  }

  async webSocketClose(ws: WebSocket) {
    // The player keeps its place in the game; its socket is gone.
  }

  save() {
    this.ctx.storage.kv.put("gameState", this.gameState);
  }

  broadcast(message: object) {
    const json = JSON.stringify(message);
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(json);
      } catch {
        // The connection may be closing.
      }
    }
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const match = new URL(request.url).pathname.match(/^\/game\/([^/]+)$/);
    if (!match) return new Response("Usage: /game/{id}?playerId={playerId}", { status: 404 });
    return env.GAME_ROOM.getByName(match[1]).fetch(request);
  },
};
