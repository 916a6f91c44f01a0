// `GET /presence/{room}?userId=..` (WebSocket). A new member gets
// `{"type":"presence_list","users":[{userId,status}]}`, the others `{"type":"user_joined"}`.
// `{"type":"status_update","status":".."}` tells everyone `{"type":"presence_update"}`; a member
// who leaves is announced with `{"type":"user_left"}`.
import { DurableObject } from "cloudflare:workers";

export class PresenceRoom extends DurableObject {
  async fetch(request) {
    const userId = new URL(request.url).searchParams.get("userId");
    if (request.headers.get("Upgrade") !== "websocket" || !userId) {
      return new Response("Expected a WebSocket upgrade with ?userId=", { status: 400 });
    }
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, [`user:${userId}`]);
    server.serializeAttachment({ userId, status: "online" });
    server.send(JSON.stringify({ type: "presence_list", users: this.getPresenceList() }));
    this.broadcast({ type: "user_joined", userId }, server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    const data = JSON.parse(message);
    const attachment = ws.deserializeAttachment();
    if (data.type === "status_update") {
      attachment.status = String(data.status);
      ws.serializeAttachment(attachment);
      this.broadcast({ type: "presence_update", userId: attachment.userId, status: attachment.status });
    } else if (data.type === "who") {
      const [other] = this.ctx.getWebSockets(`user:${data.userId}`);
      ws.send(JSON.stringify({ type: "who", userId: data.userId, status: other?.deserializeAttachment().status ?? "offline" }));
    }
  }

  async webSocketClose(ws) {
    const { userId } = ws.deserializeAttachment() ?? {};
    this.broadcast({ type: "user_left", userId }, ws);
  }

  getPresenceList() {
    return this.ctx.getWebSockets().map((ws) => {
      const { userId, status } = ws.deserializeAttachment() ?? {};
      return { userId, status };
    });
  }

  broadcast(message, except) {
    const json = JSON.stringify(message);
    for (const ws of this.ctx.getWebSockets()) {
      if (ws !== except) ws.send(json);
    }
  }
}

export default {
  async fetch(request, env) {
    const match = new URL(request.url).pathname.match(/^\/presence\/([^/]+)$/);
    if (!match) return new Response("Usage: /presence/{room}?userId={userId}", { status: 404 });
    return env.PRESENCE.getByName(match[1]).fetch(request);
  },
};
