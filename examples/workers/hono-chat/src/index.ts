// A chat room per name, behind a Hono router:
// - `GET /rooms/{room}/ws?name=..`: a WebSocket; each text message is posted to the room.
// - `POST /rooms/{room}/messages` with `{"name":..,"text":..}`: posts over HTTP.
// - `GET /rooms/{room}/history`: the last 50 messages, oldest first.
// Messages are kept in the room's SQL database and broadcast to every member as
// `{"name":..,"text":..,"at":..}`.
import { Hono } from "hono";
import { DurableObject } from "cloudflare:workers";

interface Env {
  ROOMS: DurableObjectNamespace<Room>;
}

interface Message {
  name: string;
  text: string;
  at: number;
}

export class Room extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL)",
    );
  }

  async fetch(request: Request): Promise<Response> {
    const name = new URL(request.url).searchParams.get("name") ?? "anonymous";
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ name });
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    const { name } = ws.deserializeAttachment();
    this.post(name, typeof message === "string" ? message : new TextDecoder().decode(message));
  }

  post(name: string, text: string): Message {
    const message = { name, text, at: Date.now() };
    this.ctx.storage.sql.exec("INSERT INTO messages (name, text, at) VALUES (?, ?, ?)", message.name, message.text, message.at);
    const json = JSON.stringify(message);
    for (const ws of this.ctx.getWebSockets()) ws.send(json);
    return message;
  }

  history(): Message[] {
    return this.ctx.storage.sql
      .exec<Message>("SELECT name, text, at FROM (SELECT * FROM messages ORDER BY id DESC LIMIT 50) ORDER BY id")
      .toArray();
  }
}

const app = new Hono<{ Bindings: Env }>();

app.get("/", (c) => c.text("Hono chat on Dormouse: connect to /rooms/{room}/ws?name={name}"));

app.get("/rooms/:room/ws", (c) => {
  if (c.req.header("Upgrade") !== "websocket") return c.text("Expected a WebSocket upgrade", 426);
  return c.env.ROOMS.getByName(c.req.param("room")).fetch(c.req.raw);
});

app.post("/rooms/:room/messages", async (c) => {
  const body = await c.req.json<{ name?: string; text?: string }>();
  if (typeof body.text !== "string" || body.text.length === 0) return c.json({ error: "text is required" }, 400);
  const message = await c.env.ROOMS.getByName(c.req.param("room")).post(body.name ?? "anonymous", body.text);
  return c.json(message, 201);
});

app.get("/rooms/:room/history", async (c) => c.json(await c.env.ROOMS.getByName(c.req.param("room")).history()));

export default app;
