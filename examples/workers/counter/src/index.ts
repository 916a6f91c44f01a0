// `POST /counter/{name}` increments and answers the new value, `GET` reads it (both over RPC);
// as a WebSocket, every message increments and the new value comes back. The same protocol as
// the Rust `counter` example.
import { DurableObject } from "cloudflare:workers";

interface Env {
  COUNTER: DurableObjectNamespace<Counter>;
}

export class Counter extends DurableObject<Env> {
  /** Adds one; the write and the answer leave together (the output gate). */
  async increment(): Promise<number> {
    const count = ((await this.ctx.storage.get<number>("count")) ?? 0) + 1;
    await this.ctx.storage.put("count", count);
    return count;
  }

  async read(): Promise<number> {
    return (await this.ctx.storage.get<number>("count")) ?? 0;
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade") !== "websocket") {
      return new Response("Expected a WebSocket upgrade", { status: 426 });
    }
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket) {
    ws.send(String(await this.increment()));
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const match = new URL(request.url).pathname.match(/^\/counter\/([^/]+)$/);
    if (!match) return new Response("Not Found", { status: 404 });
    const counter = env.COUNTER.getByName(decodeURIComponent(match[1]));
    if (request.headers.get("Upgrade") === "websocket") return counter.fetch(request);
    if (request.method === "POST") return new Response(String(await counter.increment()));
    if (request.method === "GET") return new Response(String(await counter.read()));
    return new Response("Method Not Allowed", { status: 405 });
  },
} satisfies ExportedHandler<Env>;
