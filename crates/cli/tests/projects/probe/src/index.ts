import { DurableObject, WorkerEntrypoint, env as moduleEnv } from "cloudflare:workers";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { AsyncLocalStorage } from "node:async_hooks";
import { failDeep } from "./failing";
import data from "./data.json";

interface Env {
  PROBE: DurableObjectNamespace<Probe>;
  LEGACY: DurableObjectNamespace;
  GREETING: string;
  LIMITS: { max: number; names: string[] };
  SECRET: string;
}

// Module scope: evaluated once per engine, shared by every instance.
let evaluations = 0;
evaluations++;
let constructions = 0;

const json = (value: unknown, status = 200) => Response.json(value, { status });

export class Probe extends DurableObject<Env> {
  count = 0;
  accepted?: WebSocket;
  release?: () => void;
  value = "unset";
  firstSocket?: WebSocket;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    constructions++;
    this.firstSocket = ctx.getWebSockets()[0];
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.headers.get("Upgrade") === "websocket") {
      const [client, server] = Object.values(new WebSocketPair());
      const tags = url.searchParams.getAll("tag");
      this.ctx.acceptWebSocket(server, tags);
      server.serializeAttachment({ name: url.searchParams.get("name"), joined: new Date(0), seen: new Map([["a", 1]]), bytes: new Uint8Array([1, 2]) });
      this.accepted = server;
      // As on Cloudflare, the object picks a subprotocol by naming it on its 101 response.
      const offered = request.headers.get("Sec-WebSocket-Protocol");
      const headers: Record<string, string> = {};
      if (url.searchParams.has("protocol") && offered) {
        headers["Sec-WebSocket-Protocol"] = offered.split(",")[0].trim();
      }
      return new Response(null, { status: 101, webSocket: client, headers });
    }
    const action = url.pathname.split("/").pop();
    switch (action) {
      case "count":
        this.count++;
        return json({ count: this.count, evaluations, constructions, id: this.ctx.id.toString(), name: this.ctx.id.name });
      case "throw":
        failDeep("on purpose");
      case "stack":
        try {
          failDeep("for the stack");
        } catch (error) {
          return new Response((error as Error).stack);
        }
      case "spin":
        for (;;) {}
      case "oom": {
        const hoard: unknown[] = [];
        for (;;) hoard.push(new Array(100_000).fill(hoard.length));
      }
      case "slow":
        await new Promise<void>((resolve) => (this.release = resolve));
        return new Response("released");
      case "release":
        this.release?.();
        return new Response(this.release ? "released it" : "nothing to release");
      case "timer":
        await scheduler.wait(Number(url.searchParams.get("ms") ?? 10));
        return new Response("timer done");
      case "block":
        await this.ctx.blockConcurrencyWhile(async () => {
          await scheduler.wait(200);
          this.value = "set inside blockConcurrencyWhile";
        });
        return new Response("blocked");
      case "value":
        return new Response(this.value);
      case "env":
        return json({ greeting: this.env.GREETING, limits: this.env.LIMITS, secret: this.env.SECRET, same: moduleEnv === this.env });
      case "kv":
        return json(await this.kv());
      case "sql":
        return json(this.sql());
      case "alarm":
        if (await this.ctx.storage.getAlarm() !== null) return new Response("an alarm was already set", { status: 500 });
        await this.ctx.storage.setAlarm(Date.now() + 20);
        return json({ set: await this.ctx.storage.getAlarm() !== null });
      case "alarms":
        return json({ ran: this.ctx.storage.kv.get("alarms") ?? 0 });
      case "cycle":
        return new Response(await this.env.PROBE.getByName(url.searchParams.get("other")!).callBack(this.ctx.id.name!));
      case "node":
        return json(await this.node());
      default:
        return new Response(`unknown action ${action}`, { status: 404 });
    }
  }

  async kv() {
    const storage = this.ctx.storage;
    await storage.put("a", 1);
    await storage.put({ b: "two", c: new Map([[1, 2]]), d: new Date(5) });
    storage.put("e", [1, 2, 3]);
    const c = await storage.get("c");
    const many = await storage.get(["a", "b", "zzz"]);
    const all = await storage.list();
    const ranged = await storage.list({ start: "b", end: "d" });
    const reversed = await storage.list({ reverse: true, limit: 2 });
    const prefixed = await storage.list({ prefix: "d" });
    const deleted = await storage.delete("a");
    const deletedMany = await storage.delete(["b", "nope"]);
    let limitError = "";
    try { await storage.list({ limit: 0 }); } catch (e) { limitError = (e as Error).message; }
    let undefinedError = "";
    try { await storage.put("u", undefined); } catch (e) { undefinedError = (e as Error).name; }
    this.ctx.storage.kv.put("sync", { ok: true });
    const sync = this.ctx.storage.kv.get("sync");
    const syncList = [...this.ctx.storage.kv.list({ prefix: "s" })];
    await storage.transaction(async (txn) => {
      await txn.put("txn", "kept");
    });
    await storage.transaction(async (txn) => {
      await txn.put("rolled", "back");
      txn.rollback();
    });
    return {
      cIsMap: c instanceof Map && c.get(1) === 2,
      many: [...many.keys()],
      all: [...all.keys()],
      ranged: [...ranged.keys()],
      reversed: [...reversed.keys()],
      prefixedDate: prefixed.get("d") instanceof Date,
      deleted, deletedMany, limitError, undefinedError, sync, syncList,
      txn: await storage.get("txn"), rolled: await storage.get("rolled") ?? null,
    };
  }

  sql() {
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, weight REAL, data BLOB)");
    sql.exec("DELETE FROM items");
    sql.exec("INSERT INTO items (name, weight, data) VALUES (?, ?, ?), (?, ?, ?)", "apple", 1.5, new Uint8Array([7]), "pear", 2, null);
    const cursor = sql.exec("SELECT id, name, weight FROM items ORDER BY id");
    const columns = cursor.columnNames;
    const rows = cursor.toArray();
    const raw = [...sql.exec("SELECT name FROM items ORDER BY id").raw()];
    const one = sql.exec("SELECT count(*) AS n FROM items").one();
    let oneError = "";
    try { sql.exec("SELECT * FROM items").one(); } catch (e) { oneError = (e as Error).message; }
    const written = sql.exec("UPDATE items SET weight = weight + 1").rowsWritten;
    let rolledBack = false;
    try {
      this.ctx.storage.transactionSync(() => {
        sql.exec("DELETE FROM items");
        throw new Error("undo");
      });
    } catch {
      rolledBack = sql.exec("SELECT count(*) AS n FROM items").one().n === 2;
    }
    let beginError = "";
    try { sql.exec("BEGIN TRANSACTION"); } catch (e) { beginError = (e as Error).message; }
    const blob = sql.exec("SELECT data FROM items WHERE name = 'apple'").one().data;
    return { columns, rows, raw, one, oneError, written, rolledBack, beginError: beginError.length > 0, blobIsBuffer: blob instanceof ArrayBuffer, size: sql.databaseSize > 0 };
  }

  async alarm(info: { retryCount: number; isRetry: boolean }) {
    const ran = (this.ctx.storage.kv.get("alarms") as number | undefined) ?? 0;
    this.ctx.storage.kv.put("alarms", ran + 1);
  }

  async node() {
    const buffer = Buffer.from("héllo");
    const emitter = new EventEmitter();
    let heard = "";
    emitter.on("greet", (who: string) => (heard = who));
    emitter.emit("greet", "world");
    const storage = new AsyncLocalStorage<string>();
    const seen = await storage.run("request-1", async () => {
      await Promise.resolve();
      await scheduler.wait(1);
      return storage.getStore();
    });
    return { base64: buffer.toString("base64"), hex: Buffer.from([255, 1]).toString("hex"), length: buffer.length, heard, seen, outside: storage.getStore() ?? null };
  }

  // RPC methods.
  add(a: number, b: number) { return a + b; }
  echo(value: unknown) { return value; }
  fail() { failDeep("over RPC"); }
  ping() { return "pong"; }
  async callBack(name: string) {
    return `called back: ${await this.env.PROBE.getByName(name).ping()}`;
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    if (typeof message !== "string") {
      ws.send(message);
      return;
    }
    switch (message) {
      case "identity":
        ws.send(JSON.stringify({
          accepted: ws === this.accepted,
          listed: this.ctx.getWebSockets()[0] === ws && this.ctx.getWebSockets()[0] === this.ctx.getWebSockets()[0],
          firstSeenByConstructor: ws === this.firstSocket,
          constructions,
          tags: this.ctx.getTags(ws),
          readyState: ws.readyState === WebSocket.OPEN,
        }));
        return;
      case "list": {
        // A copy each time: changing it changes nothing for the next call.
        const list = this.ctx.getWebSockets();
        list.pop();
        const again = this.ctx.getWebSockets();
        ws.send(JSON.stringify({ count: again.length, copy: list.length === again.length - 1, mine: again.includes(ws), red: this.ctx.getWebSockets("red").length }));
        return;
      }
      case "attachment": {
        const a = ws.deserializeAttachment();
        ws.send(JSON.stringify({ name: a.name, date: a.joined instanceof Date && a.joined.getTime() === 0, map: a.seen instanceof Map && a.seen.get("a") === 1, bytes: a.bytes instanceof Uint8Array && a.bytes[1] === 2 }));
        return;
      }
      case "big-attachment":
        try { ws.serializeAttachment("x".repeat(20_000)); } catch (e) { ws.send((e as Error).message); }
        return;
      case "settings": {
        const before = { pair: this.ctx.getWebSocketAutoResponse(), at: this.ctx.getWebSocketAutoResponseTimestamp(ws), timeout: this.ctx.getHibernatableWebSocketEventTimeout() };
        this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("marco", "polo"));
        this.ctx.setHibernatableWebSocketEventTimeout(5000);
        const pair = this.ctx.getWebSocketAutoResponse()!;
        ws.send(JSON.stringify({ before, pair: [pair.request, pair.response], timeout: this.ctx.getHibernatableWebSocketEventTimeout() }));
        return;
      }
      case "protocol":
        ws.send(JSON.stringify({ protocol: ws.protocol }));
        return;
      case "stamp":
        ws.send(JSON.stringify({ stamped: this.ctx.getWebSocketAutoResponseTimestamp(ws) instanceof Date }));
        return;
      case "close-1005":
        try { ws.close(1005); } catch (e) { ws.send(`${(e as Error).name}`); }
        return;
      case "throw":
        failDeep("in a handler");
      default:
        ws.send(`echo: ${message}`);
    }
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string) {
    ws.close(code, `bye: ${reason}`);
  }
}

// A class with the older KV-backed storage (created with new_classes).
export class Legacy extends DurableObject<Env> {
  async fetch(): Promise<Response> {
    const outcome: Record<string, string> = {};
    try { this.ctx.storage.sql; outcome.sql = "available"; } catch (e) { outcome.sql = (e as Error).message; }
    try { await this.ctx.storage.put("k".repeat(3000), 1); } catch (e) { outcome.key = (e as Error).message; }
    await this.ctx.storage.put("small", data.greeting);
    outcome.value = await this.ctx.storage.get("small");
    return json(outcome);
  }
}

export default class extends WorkerEntrypoint<Env> {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const [, kind, name, action] = url.pathname.split("/");
    if (kind === "obj") {
      return this.env.PROBE.getByName(name).fetch(request);
    }
    if (kind === "legacy") {
      return this.env.LEGACY.getByName(name).fetch(request);
    }
    if (kind === "rpc") {
      const stub = this.env.PROBE.getByName(name);
      try {
        switch (action) {
          case "add": return json({ result: await stub.add(2, 3) });
          case "echo": {
            const back = await stub.echo({ when: new Date(7), tags: new Set(["x"]), nested: [1, { deep: true }] }) as any;
            return json({ date: back.when instanceof Date && back.when.getTime() === 7, set: back.tags instanceof Set && back.tags.has("x"), nested: back.nested[1].deep });
          }
          case "fail": await stub.fail(); return json({ threw: false });
          case "missing": await (stub as any).noSuchMethod(); return json({ threw: false });
        }
      } catch (error) {
        const e = error as Error & { remote?: boolean };
        return json({ threw: true, name: e.name, message: e.message, remote: e.remote === true });
      }
    }
    if (kind === "web") return json(await webChecks(request));
    if (kind === "echo-body") {
      return new Response(await request.text(), { headers: { "content-type": request.headers.get("content-type") ?? "none" } });
    }
    if (kind === "stream") {
      const encoder = new TextEncoder();
      let n = 0;
      return new Response(new ReadableStream({
        pull(controller) {
          if (n === 3) return controller.close();
          controller.enqueue(encoder.encode(`chunk${n++};`));
        },
      }));
    }
    if (kind === "redirect") return Response.redirect("http://example.com/elsewhere", 301);
    if (kind === "fetch") {
      const response = await fetch(url.searchParams.get("url")!);
      return json({ status: response.status, body: await response.text() });
    }
    if (kind === "evaluations") return json({ evaluations, constructions });
    return new Response("probe", { status: 404 });
  }
}

async function webChecks(request: Request) {
  const url = new URL("https://user:pw@example.com:8080/a/b?x=1&y=two#frag");
  url.searchParams.append("z", "3 4");
  const params = new URLSearchParams("a=1&a=2&b=%20");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc"));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("key"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("message"));
  const verified = await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode("message"));
  const order: string[] = [];
  queueMicrotask(() => order.push("microtask"));
  setTimeout(() => order.push("timeout"), 0);
  order.push("sync");
  await scheduler.wait(5);
  const target = new EventTarget();
  let events = 0;
  target.addEventListener("ping", () => events++);
  target.dispatchEvent(new Event("ping"));
  const controller = new AbortController();
  controller.abort();
  const stream = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
  let streamed = "";
  for await (const chunk of stream as any) streamed += chunk;
  const form = new FormData();
  form.append("field", "value");
  const headers = new Headers({ "X-B": "2", "x-a": "1" });
  headers.append("x-a", "again");
  const clone = structuredClone(new Map([["k", new Date(3)]]));
  return {
    url: [url.hostname, url.port, url.pathname, url.search, url.hash, url.origin, url.username],
    params: [params.getAll("a"), params.get("b"), [...params.keys()]],
    sha256: hex,
    hmacVerified: verified,
    uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()),
    random: crypto.getRandomValues(new Uint8Array(8)).length,
    base64: [btoa("hi!"), atob("aGkh")],
    text: new TextDecoder().decode(new TextEncoder().encode("héllo €")),
    order,
    events,
    aborted: [controller.signal.aborted, (controller.signal.reason as DOMException).name],
    domException: [new DOMException("m", "NotFoundError").code, new DOMException("m", "NotFoundError") instanceof Error],
    streamed,
    blob: await new Blob(["ab", new Uint8Array([99])]).text(),
    form: form.get("field"),
    headers: [...headers],
    clone: clone.get("k") instanceof Date,
    json: await Response.json({ a: 1 }).json(),
    requestMethod: request.method,
    body: await new Request("http://x/", { method: "POST", body: "payload" }).text(),
    dataJson: data.greeting,
  };
}
