// Dormouse's `counter` example on workerd, the storage peer in the benchmarks: `POST /counter/{name}`
// increments and answers the new value, `GET` reads it, and as a WebSocket every message
// increments and the new value comes back.
import { DurableObject } from 'cloudflare:workers';

export class Counter extends DurableObject {
  async increment() {
    const count = ((await this.ctx.storage.get('count')) ?? 0) + 1;
    await this.ctx.storage.put('count', count);
    return count;
  }
  async fetch(request) {
    if (request.headers.get('Upgrade') === 'websocket') {
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server);
      return new Response(null, { status: 101, webSocket: client });
    }
    const count = request.method === 'POST'
      ? await this.increment()
      : ((await this.ctx.storage.get('count')) ?? 0);
    return new Response(String(count));
  }
  async webSocketMessage(ws) {
    ws.send(String(await this.increment()));
  }
  async webSocketClose(ws, code, reason) {
    ws.close(code, reason);
  }
}

export default {
  async fetch(request, env) {
    const match = new URL(request.url).pathname.match(/^\/counter\/([^/]+)$/);
    if (!match) return new Response('Not Found', { status: 404 });
    return env.COUNTER.getByName(match[1]).fetch(request);
  },
};
