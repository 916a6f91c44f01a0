// Headers, Blob, File, FormData, Request, Response and an outbound fetch. Requests and
// responses that come from Rust keep their body there until JavaScript reads it, so forwarding
// one (`return stub.fetch(request)`) never copies it through the engine.
(function (native, internal) {
  "use strict";
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // ---------------------------------------------------------------- Headers
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const normaliseValue = (value) => String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  const kEntries = Symbol("entries"), kGuard = Symbol("guard");
  class Headers {
    constructor(init) {
      this[kEntries] = [];
      this[kGuard] = "none";
      if (init == null) return;
      if (init instanceof Headers) { this[kEntries] = init[kEntries].map(([k, v]) => [k, v]); return; }
      if (typeof init !== "object") throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const entry = [...pair];
          if (entry.length !== 2) throw new TypeError("Failed to construct 'Headers': Invalid value");
          this.append(entry[0], entry[1]);
        }
      } else {
        for (const key of Object.keys(init)) this.append(key, init[key]);
      }
    }
    #check(name) {
      name = String(name);
      if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
      if (this[kGuard] === "immutable") throw new TypeError("Can't modify immutable headers.");
      return name.toLowerCase();
    }
    append(name, value) {
      const key = this.#check(name);
      value = normaliseValue(value);
      if (/[\0\r\n]/.test(value)) throw new TypeError(`Invalid header value for ${name}`);
      this[kEntries].push([key, value]);
    }
    delete(name) { const key = this.#check(name); this[kEntries] = this[kEntries].filter(([k]) => k !== key); }
    get(name) {
      const key = String(name).toLowerCase();
      const values = this[kEntries].filter(([k]) => k === key).map(([, v]) => v);
      return values.length ? values.join(", ") : null;
    }
    getAll(name) { const key = String(name).toLowerCase(); return this[kEntries].filter(([k]) => k === key).map(([, v]) => v); }
    getSetCookie() { return this.getAll("set-cookie"); }
    has(name) { const key = String(name).toLowerCase(); return this[kEntries].some(([k]) => k === key); }
    set(name, value) {
      const key = this.#check(name);
      value = normaliseValue(value);
      if (/[\0\r\n]/.test(value)) throw new TypeError(`Invalid header value for ${name}`);
      const at = this[kEntries].findIndex(([k]) => k === key);
      if (at < 0) { this[kEntries].push([key, value]); return; }
      this[kEntries][at][1] = value;
      this[kEntries] = this[kEntries].filter(([k], i) => k !== key || i === at);
    }
    forEach(callback, thisArg) { for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this); }
    *entries() {
      const names = [...new Set(this[kEntries].map(([k]) => k))].sort();
      for (const name of names) {
        if (name === "set-cookie") for (const v of this.getAll(name)) yield [name, v];
        else yield [name, this.get(name)];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "Headers"; }
  }
  internal.headerList = (headers) => headers[kEntries].map(([k, v]) => [k, v]);
  internal.headersFromList = (list, guard) => {
    const h = new Headers();
    h[kEntries] = list.map(([k, v]) => [String(k).toLowerCase(), String(v)]);
    if (guard) h[kGuard] = guard;
    return h;
  };

  // ---------------------------------------------------------------- Blob, File, FormData
  const kBytes = Symbol("bytes");
  class Blob {
    constructor(parts = [], options = {}) {
      const chunks = [];
      for (const part of parts) {
        if (part instanceof Blob) chunks.push(part[kBytes]);
        else if (typeof part === "string") chunks.push(encoder.encode(part));
        else chunks.push(internal.toBytes(part).slice());
      }
      const total = chunks.reduce((n, c) => n + c.length, 0);
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) { bytes.set(c, at); at += c.length; }
      this[kBytes] = bytes;
      this.type = options.type ? String(options.type).toLowerCase() : "";
    }
    get size() { return this[kBytes].length; }
    async text() { return decoder.decode(this[kBytes]); }
    async arrayBuffer() { return this[kBytes].slice().buffer; }
    async bytes() { return this[kBytes].slice(); }
    slice(start = 0, end = this.size, type = "") {
      const b = new Blob([], { type });
      b[kBytes] = this[kBytes].slice(start, end);
      return b;
    }
    stream() { let done = false; return internal.streamFrom(async () => (done ? null : ((done = true), this[kBytes].slice()))); }
    get [Symbol.toStringTag]() { return "Blob"; }
  }
  class File extends Blob {
    constructor(parts, name, options = {}) {
      super(parts, options);
      this.name = String(name);
      this.lastModified = options.lastModified ?? Date.now();
    }
    get [Symbol.toStringTag]() { return "File"; }
  }
  internal.blobBytes = (blob) => blob[kBytes];
  const kForm = Symbol("form");
  class FormData {
    constructor() { this[kForm] = []; }
    #entry(name, value, filename) {
      if (value instanceof Blob) {
        const file = value instanceof File && filename === undefined ? value : new File([value], filename ?? (value instanceof File ? value.name : "blob"), { type: value.type });
        return [String(name), file];
      }
      return [String(name), String(value)];
    }
    append(name, value, filename) { this[kForm].push(this.#entry(name, value, filename)); }
    set(name, value, filename) {
      const entry = this.#entry(name, value, filename);
      const at = this[kForm].findIndex(([k]) => k === entry[0]);
      if (at < 0) this[kForm].push(entry);
      else { this[kForm][at] = entry; this[kForm] = this[kForm].filter(([k], i) => k !== entry[0] || i === at); }
    }
    delete(name) { this[kForm] = this[kForm].filter(([k]) => k !== String(name)); }
    get(name) { return this[kForm].find(([k]) => k === String(name))?.[1] ?? null; }
    getAll(name) { return this[kForm].filter(([k]) => k === String(name)).map(([, v]) => v); }
    has(name) { return this[kForm].some(([k]) => k === String(name)); }
    forEach(callback, thisArg) { for (const [k, v] of this[kForm]) callback.call(thisArg, v, k, this); }
    *entries() { yield* this[kForm].map(([k, v]) => [k, v]); }
    *keys() { for (const [k] of this[kForm]) yield k; }
    *values() { for (const [, v] of this[kForm]) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "FormData"; }
  }
  const multipart = (form) => {
    const boundary = "----dormouse" + native.randomUUID().replace(/-/g, "");
    const parts = [];
    const escape = (s) => s.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
    for (const [name, value] of form) {
      if (typeof value === "string") {
        parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"\r\n\r\n${value}\r\n`);
      } else {
        parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"; filename="${escape(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`, value, "\r\n");
      }
    }
    parts.push(`--${boundary}--\r\n`);
    return { bytes: new Blob(parts)[kBytes], type: `multipart/form-data; boundary=${boundary}` };
  };
  const parseMultipart = (bytes, contentType) => {
    const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    if (!match) throw new TypeError("Missing boundary in multipart/form-data");
    const boundary = "--" + (match[1] ?? match[2]).trim();
    const text = native.latin1Decode(bytes);
    const form = new FormData();
    for (const section of text.split(boundary).slice(1)) {
      if (section.startsWith("--")) break;
      const body = section.replace(/^\r\n/, "");
      const split = body.indexOf("\r\n\r\n");
      if (split < 0) continue;
      const head = body.slice(0, split);
      const content = body.slice(split + 4).replace(/\r\n$/, "");
      const name = /name="([^"]*)"/i.exec(head)?.[1] ?? "";
      const filename = /filename="([^"]*)"/i.exec(head)?.[1];
      const raw = native.latin1Encode(content);
      if (filename === undefined) form.append(name, decoder.decode(raw));
      else form.append(name, new File([raw], filename, { type: /content-type:\s*([^\r\n]+)/i.exec(head)?.[1] ?? "" }));
    }
    return form;
  };
  internal.define("Blob", Blob);
  internal.define("File", File);
  internal.define("FormData", FormData);

  // ---------------------------------------------------------------- bodies
  // A body is null, bytes in memory, a body still in Rust (`native`), or a stream.
  const kBody = Symbol("body"), kUsed = Symbol("used"), kStream = Symbol("stream");
  const extract = (init) => {
    if (init == null) return { body: null, type: null };
    if (typeof init === "string") return { body: { bytes: encoder.encode(init) }, type: "text/plain;charset=UTF-8" };
    if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return { body: { bytes: internal.toBytes(init).slice() }, type: null };
    if (init instanceof URLSearchParams) return { body: { bytes: encoder.encode(init.toString()) }, type: "application/x-www-form-urlencoded;charset=UTF-8" };
    if (init instanceof Blob) return { body: { bytes: init[kBytes] }, type: init.type || null };
    if (init instanceof FormData) { const m = multipart(init); return { body: { bytes: m.bytes }, type: m.type }; }
    if (init instanceof ReadableStream) return { body: { stream: init }, type: null };
    return { body: { bytes: encoder.encode(String(init)) }, type: "text/plain;charset=UTF-8" };
  };
  const consume = async (message) => {
    if (message[kUsed]) throw new TypeError("Body has already been used. It can only be used once. Use tee() first if you need to read it twice.");
    message[kUsed] = true;
    const body = message[kBody];
    if (body === null) return new Uint8Array(0);
    if (message[kStream]) return internal.readAll(message[kStream]);
    if (body.bytes) return body.bytes;
    if (body.native) return new Uint8Array(await native.bodyRead(body.native));
    return internal.readAll(body.stream);
  };
  const bodyStream = (message) => {
    if (message[kBody] === null) return null;
    if (!message[kStream]) {
      const body = message[kBody];
      if (body.stream) message[kStream] = body.stream;
      else if (body.native) {
        const handle = body.native;
        message[kStream] = internal.streamFrom(async () => {
          const chunk = await native.bodyChunk(handle);
          return chunk == null ? null : new Uint8Array(chunk);
        });
      } else {
        let done = false;
        const bytes = body.bytes;
        message[kStream] = internal.streamFrom(async () => (done ? null : ((done = true), bytes.slice())));
      }
    }
    return message[kStream];
  };
  const mixin = (Class) => {
    Object.defineProperties(Class.prototype, {
      body: { get() { return bodyStream(this); }, configurable: true },
      bodyUsed: { get() { return this[kUsed] || !!this[kStream]?.locked; }, configurable: true },
    });
    Object.assign(Class.prototype, {
      async arrayBuffer() { const b = await consume(this); return b.buffer.byteLength === b.length ? b.buffer : b.slice().buffer; },
      async bytes() { return (await consume(this)).slice(); },
      async text() { return decoder.decode(await consume(this)); },
      async json() { return JSON.parse(decoder.decode(await consume(this))); },
      async blob() { return new Blob([await consume(this)], { type: this.headers.get("content-type") ?? "" }); },
      async formData() {
        const type = this.headers.get("content-type") ?? "";
        const bytes = await consume(this);
        if (/^multipart\/form-data/i.test(type)) return parseMultipart(bytes, type);
        if (/^application\/x-www-form-urlencoded/i.test(type)) {
          const form = new FormData();
          for (const [k, v] of new URLSearchParams(decoder.decode(bytes))) form.append(k, v);
          return form;
        }
        throw new TypeError(`Unrecognized Content-Type header value "${type}"; FormData needs multipart/form-data or application/x-www-form-urlencoded`);
      },
    });
  };
  const cloneBody = (message) => {
    const body = message[kBody];
    if (message[kUsed]) throw new TypeError("Body has already been used. It can only be used once.");
    if (body === null || body.bytes) return body;
    const [a, b] = bodyStream(message).tee();
    message[kStream] = a;
    message[kBody] = { stream: a };
    return { stream: b };
  };

  // ---------------------------------------------------------------- Request
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  class Request {
    constructor(input, init = {}) {
      init = init ?? {};
      let base = null;
      if (input instanceof Request) base = input;
      const url = base ? base.url : new URL(String(input)).href;
      let method = init.method !== undefined ? String(init.method) : base ? base.method : "GET";
      if (METHODS.includes(method.toUpperCase())) method = method.toUpperCase();
      if (!TOKEN.test(method)) throw new TypeError(`Invalid HTTP method: ${method}`);
      this.url = url;
      this.method = method;
      this.headers = new Headers(init.headers ?? base?.headers);
      this.redirect = init.redirect ?? base?.redirect ?? "follow";
      this.signal = init.signal ?? base?.signal ?? new AbortController().signal;
      this.cf = init.cf ?? base?.cf;
      this.fetcher = null;
      this[kUsed] = false;
      this[kStream] = null;
      if (init.body !== undefined && init.body !== null) {
        if (method === "GET" || method === "HEAD") throw new TypeError("Request with a GET or HEAD method cannot have a body.");
        const { body, type } = extract(init.body);
        this[kBody] = body;
        if (type && !this.headers.has("content-type")) this.headers.set("content-type", type);
      } else if (base && init.body === undefined) {
        if (base[kUsed]) throw new TypeError("Cannot construct a Request with a Request object that has already been used.");
        this[kBody] = base[kBody];
        this[kStream] = base[kStream];
        base[kUsed] = true;
      } else {
        this[kBody] = null;
      }
      Object.defineProperty(this, "url", { value: url, writable: false, enumerable: true });
    }
    clone() {
      const r = new Request(this.url, { method: this.method, headers: this.headers, redirect: this.redirect, signal: this.signal, cf: this.cf });
      r[kBody] = cloneBody(this);
      return r;
    }
    get [Symbol.toStringTag]() { return "Request"; }
  }
  mixin(Request);

  // ---------------------------------------------------------------- Response
  const kWebSocket = Symbol("webSocket"), kUpgrade = Symbol("upgrade");
  class Response {
    constructor(body = null, init = {}) {
      init = init ?? {};
      const status = init.status === undefined ? 200 : Number(init.status);
      const webSocket = init.webSocket ?? null;
      if (webSocket !== null) {
        if (status !== 101) throw new RangeError("Responses with a WebSocket must have status code 101.");
      } else if (!(status >= 200 && status <= 599)) {
        throw new RangeError("Responses may only be constructed with status codes in the range 200 to 599, inclusive.");
      }
      this.status = status;
      this.statusText = init.statusText !== undefined ? String(init.statusText) : "";
      this.headers = new Headers(init.headers);
      this.type = "default";
      this.url = "";
      this.redirected = false;
      this.cf = init.cf;
      this[kWebSocket] = webSocket;
      this[kUpgrade] = null;
      this[kUsed] = false;
      this[kStream] = null;
      if (body !== null && body !== undefined && [101, 204, 205, 304].includes(status)) {
        throw new TypeError("Response with null body status cannot have body");
      }
      const { body: extracted, type } = extract(body);
      this[kBody] = extracted;
      if (type && !this.headers.has("content-type")) this.headers.set("content-type", type);
    }
    get ok() { return this.status >= 200 && this.status <= 299; }
    get webSocket() { return this[kWebSocket]; }
    clone() {
      if (this[kWebSocket]) throw new TypeError("Cannot clone a response to a WebSocket handshake.");
      const r = new Response(null, { status: this.status, statusText: this.statusText, headers: this.headers });
      r[kBody] = cloneBody(this);
      return r;
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("The data is not JSON serializable");
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(text, { ...init, headers });
    }
    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError("Invalid status code");
      return new Response(null, { status, headers: { location: new URL(String(url)).href } });
    }
    static error() {
      const r = new Response(null, { status: 200 });
      r.status = 0;
      r.type = "error";
      return r;
    }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  mixin(Response);
  internal.define("Headers", Headers);
  internal.define("Request", Request);
  internal.define("Response", Response);

  // ---------------------------------------------------------------- to and from Rust
  // A request from Rust: [method, url, headers, body handle or null].
  internal.requestFromNative = ([method, url, headers, body]) => {
    const r = new Request(url, { method });
    r.headers = internal.headersFromList(headers);
    r[kBody] = body == null ? null : { native: body };
    return r;
  };
  // A response from Rust: [status, statusText, headers, body handle or null, webSocket or null,
  // upgrade handle or null].
  internal.responseFromNative = ([status, statusText, headers, body, webSocket, upgrade]) => {
    const r = Object.create(Response.prototype);
    Object.assign(r, { status, statusText, headers: internal.headersFromList(headers), type: "default", url: "", redirected: false, cf: undefined });
    r[kWebSocket] = webSocket == null ? null : internal.wrapSocket(webSocket, null);
    r[kUpgrade] = upgrade;
    r[kUsed] = false;
    r[kStream] = null;
    r[kBody] = body == null ? null : { native: body };
    return r;
  };
  // What Rust needs of a body: [kind, value]; kind 0 none, 1 bytes, 2 a Rust body, 3 a stream
  // (pumped into `sink` as Rust asks).
  const bodyToNative = (message) => {
    if (message[kUsed]) throw new TypeError("Body has already been used. It can only be used once.");
    const body = message[kBody];
    if (body === null) return [0, null];
    if (message[kStream]) return [3, message[kStream]];
    if (body.bytes) return [1, body.bytes];
    if (body.native) return [2, body.native];
    return [3, body.stream];
  };
  internal.pumpStream = async (stream, sink) => {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const bytes = typeof value === "string" ? encoder.encode(value) : internal.toBytes(value);
        await native.sinkWrite(sink, bytes);
      }
      native.sinkClose(sink, null);
    } catch (error) {
      native.sinkClose(sink, String(error?.message ?? error));
    }
  };
  // A Response as Rust takes it: [status, statusText, headers, bodyKind, body, webSocket handle,
  // upgrade handle].
  internal.responseToNative = (response) => {
    if (!(response instanceof Response)) {
      throw new TypeError("Incorrect type for the 'fetch' handler's return value: expected a Response");
    }
    const [kind, body] = bodyToNative(response);
    const ws = response[kWebSocket];
    return [response.status, response.statusText, internal.headerList(response.headers), kind, body, ws ? internal.socketHandle(ws) : null, response[kUpgrade]];
  };
  internal.requestToNative = (request) => {
    const [kind, body] = bodyToNative(request);
    return [request.method, request.url, internal.headerList(request.headers), kind, body];
  };

  // ---------------------------------------------------------------- fetch
  internal.define("fetch", async function fetch(input, init) {
    const request = new Request(input, init);
    if (request.signal.aborted) throw request.signal.reason;
    const parts = await native.fetch(internal.requestToNative(request), request.redirect);
    return internal.responseFromNative(parts);
  });
})
