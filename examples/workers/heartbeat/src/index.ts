// `GET /heartbeat/{room}` (WebSocket). Clients send `ping` at least every `STALE_AFTER_MS`; the
// runtime answers `pong` itself (no wake, no handler) and notes the time. An alarm every
// `SWEEP_EVERY_MS` closes, with 4000 "stale", the sockets whose last ping is older than that,
// and counts the live ones for `GET /heartbeat/{room}/status`.
import { DurableObject } from "cloudflare:workers";

interface Env {
  HEARTBEAT: DurableObjectNamespace<Heartbeat>;
  STALE_AFTER_MS: string;
  SWEEP_EVERY_MS: string;
}

export class Heartbeat extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade") !== "websocket") {
      return Response.json(this.ctx.storage.kv.get("lastSweep") ?? { swept: 0, live: this.ctx.getWebSockets().length });
    }
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ connectedAt: Date.now() });
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + Number(this.env.SWEEP_EVERY_MS));
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    ws.send(`not a heartbeat: ${typeof message === "string" ? message : "binary"}`);
  }

  async alarm() {
    const staleAfter = Number(this.env.STALE_AFTER_MS);
    const now = Date.now();
    let swept = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const last = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? ws.deserializeAttachment().connectedAt;
      if (now - last > staleAfter) {
        ws.close(4000, "stale");
        swept++;
      }
    }
    const live = this.ctx.getWebSockets().length - swept;
    this.ctx.storage.kv.put("lastSweep", { swept, live });
    if (live > 0) await this.ctx.storage.setAlarm(now + Number(this.env.SWEEP_EVERY_MS));
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const match = new URL(request.url).pathname.match(/^\/heartbeat\/([^/]+)(\/status)?$/);
    if (!match) return new Response("Usage: /heartbeat/{room}", { status: 404 });
    return env.HEARTBEAT.getByName(match[1]).fetch(request);
  },
};
