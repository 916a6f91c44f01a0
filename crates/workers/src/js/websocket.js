// WebSocket, WebSocketPair, WebSocketRequestResponsePair and the socket events. A socket object
// wraps a native handle held by the runtime's socket holder; within one object instance, every
// path to a socket (the accepted one, `getWebSockets()`, a handler's `ws`) gives the same object.
(function (native, internal) {
  "use strict";
  const kHandle = Symbol("handle"), kBinaryType = Symbol("binaryType");
  const OPEN_STATES = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };

  class MessageEvent extends Event {
    #data;
    constructor(type, init = {}) { super(type, init); this.#data = init.data; }
    get data() { return this.#data; }
  }
  class CloseEvent extends Event {
    #code; #reason; #wasClean;
    constructor(type, init = {}) { super(type, init); this.#code = init.code ?? 0; this.#reason = init.reason ?? ""; this.#wasClean = !!init.wasClean; }
    get code() { return this.#code; }
    get reason() { return this.#reason; }
    get wasClean() { return this.#wasClean; }
  }
  class ErrorEvent extends Event {
    #message; #error;
    constructor(type, init = {}) { super(type, init); this.#message = init.message ?? ""; this.#error = init.error; }
    get message() { return this.#message; }
    get error() { return this.#error; }
  }

  const toPayload = (data) => {
    if (typeof data === "string") return data;
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return internal.toBytes(data);
    if (data instanceof Blob) return internal.blobBytes(data);
    return String(data);
  };

  class WebSocket extends EventTarget {
    constructor(url) {
      super();
      if (url !== kHandle) throw new TypeError("Outgoing WebSockets (new WebSocket(url)) are not supported by Dormouse");
    }
    get readyState() { return native.socketReadyState(this[kHandle]); }
    get url() { return null; }
    get protocol() { return native.socketProtocol(this[kHandle]); }
    get extensions() { return ""; }
    get binaryType() { return this[kBinaryType]; }
    set binaryType(value) { if (value === "blob" || value === "arraybuffer") this[kBinaryType] = value; }
    accept(options) {
      native.socketAccept(this[kHandle], this, !!options?.allowHalfOpen);
    }
    send(data) {
      native.socketSend(this[kHandle], toPayload(data));
    }
    close(code, reason) {
      native.socketClose(this[kHandle], code === undefined ? null : code, reason === undefined ? null : String(reason));
    }
    serializeAttachment(value) {
      native.socketSetAttachment(this[kHandle], native.serialize(value));
    }
    deserializeAttachment() {
      const bytes = native.socketAttachment(this[kHandle]);
      return bytes == null ? null : native.deserialize(bytes);
    }
    get [Symbol.toStringTag]() { return "WebSocket"; }
  }
  for (const [name, value] of Object.entries(OPEN_STATES)) {
    Object.defineProperty(WebSocket, name, { value, enumerable: true });
    Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
  }
  Object.defineProperty(WebSocket, "READY_STATE_CONNECTING", { value: 0 });
  Object.defineProperty(WebSocket, "READY_STATE_OPEN", { value: 1 });
  Object.defineProperty(WebSocket, "READY_STATE_CLOSING", { value: 2 });
  Object.defineProperty(WebSocket, "READY_STATE_CLOSED", { value: 3 });

  // A socket object for a native handle; `sockets` (an instance's map by id) keeps identity.
  internal.wrapSocket = (handle, sockets) => {
    if (sockets) {
      const id = native.socketId(handle);
      const known = sockets.get(id);
      if (known) return known;
      const ws = internal.wrapSocket(handle, null);
      sockets.set(id, ws);
      return ws;
    }
    const ws = new WebSocket(kHandle);
    ws[kHandle] = handle;
    ws[kBinaryType] = internal.features.standardBinaryType ? "blob" : "arraybuffer";
    return ws;
  };
  internal.socketHandle = (ws) => {
    if (!(ws instanceof WebSocket)) throw new TypeError("Failed to execute: parameter is not of type 'WebSocket'.");
    return ws[kHandle];
  };
  // An event of a standard (accepted) socket, from the engine.
  internal.socketEvent = (ws, kind, data, reason, wasClean) => {
    if (kind === "message") {
      let payload = data;
      if (typeof data !== "string") payload = ws[kBinaryType] === "blob" ? new Blob([new Uint8Array(data)]) : data;
      ws.dispatchEvent(new MessageEvent("message", { data: payload }));
    } else if (kind === "close") {
      ws.dispatchEvent(new CloseEvent("close", { code: data, reason, wasClean }));
    } else {
      ws.dispatchEvent(new ErrorEvent("error", { message: String(data), error: new Error(String(data)) }));
    }
  };

  class WebSocketPair {
    constructor() {
      const [client, server] = native.socketPair();
      Object.defineProperty(this, "0", { value: internal.wrapSocket(client, null), enumerable: true });
      Object.defineProperty(this, "1", { value: internal.wrapSocket(server, null), enumerable: true });
    }
    *[Symbol.iterator]() { yield this[0]; yield this[1]; }
  }

  class WebSocketRequestResponsePair {
    #request; #response;
    constructor(request, response) {
      if (arguments.length < 2) throw new TypeError("Failed to construct 'WebSocketRequestResponsePair': 2 arguments required.");
      this.#request = String(request);
      this.#response = String(response);
    }
    get request() { return this.#request; }
    get response() { return this.#response; }
  }

  for (const [name, value] of Object.entries({ WebSocket, WebSocketPair, WebSocketRequestResponsePair, MessageEvent, CloseEvent, ErrorEvent })) {
    internal.define(name, value);
  }
})
