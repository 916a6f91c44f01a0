// The parts of Node's API Workers code most often imports, with `nodejs_compat`: Buffer
// (`node:buffer`), EventEmitter (`node:events`) and AsyncLocalStorage (`node:async_hooks`).
(function (native, internal) {
  "use strict";
  const features = internal.features;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // ---------------------------------------------------------------- node:events
  class EventEmitter {
    static defaultMaxListeners = 10;
    #events = new Map();
    #max = EventEmitter.defaultMaxListeners;
    #list(name) { let l = this.#events.get(name); if (!l) this.#events.set(name, (l = [])); return l; }
    on(name, listener) { this.emit("newListener", name, listener); this.#list(name).push({ listener, once: false }); return this; }
    addListener(name, listener) { return this.on(name, listener); }
    prependListener(name, listener) { this.#list(name).unshift({ listener, once: false }); return this; }
    once(name, listener) { this.#list(name).push({ listener, once: true }); return this; }
    prependOnceListener(name, listener) { this.#list(name).unshift({ listener, once: true }); return this; }
    off(name, listener) {
      const list = this.#events.get(name);
      if (!list) return this;
      const at = list.findIndex((l) => l.listener === listener || l.listener.listener === listener);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.#events.delete(name);
      this.emit("removeListener", name, listener);
      return this;
    }
    removeListener(name, listener) { return this.off(name, listener); }
    removeAllListeners(name) { if (name === undefined) this.#events.clear(); else this.#events.delete(name); return this; }
    emit(name, ...args) {
      const list = this.#events.get(name);
      if (!list || list.length === 0) {
        if (name === "error") { const error = args[0]; throw error instanceof Error ? error : new Error(`Unhandled error. (${internal.inspect(error)})`); }
        return false;
      }
      for (const entry of [...list]) {
        if (entry.once) this.off(name, entry.listener);
        entry.listener.apply(this, args);
      }
      return true;
    }
    listeners(name) { return (this.#events.get(name) ?? []).map((l) => l.listener); }
    rawListeners(name) { return this.listeners(name); }
    listenerCount(name) { return this.#events.get(name)?.length ?? 0; }
    eventNames() { return [...this.#events.keys()]; }
    setMaxListeners(n) { this.#max = n; return this; }
    getMaxListeners() { return this.#max; }
  }
  EventEmitter.EventEmitter = EventEmitter;
  const once = (emitter, name) => new Promise((resolve, reject) => {
    const onError = (error) => { emitter.off?.("error", onError); reject(error); };
    emitter.once(name, (...args) => { emitter.off?.("error", onError); resolve(args); });
    if (name !== "error") emitter.once?.("error", onError);
  });
  const on = (emitter, name) => {
    const queue = [], waiting = [];
    emitter.on(name, (...args) => { const w = waiting.shift(); if (w) w({ value: args, done: false }); else queue.push(args); });
    return { next: () => queue.length ? Promise.resolve({ value: queue.shift(), done: false }) : new Promise((r) => waiting.push(r)), [Symbol.asyncIterator]() { return this; } };
  };
  const getEventListeners = (emitter, name) => emitter.listeners?.(name) ?? [];
  EventEmitter.once = once;
  EventEmitter.on = on;
  internal.modules["node:events"] = { default: EventEmitter, EventEmitter, once, on, getEventListeners };

  // ---------------------------------------------------------------- node:async_hooks
  // The store follows the code that runs on behalf of `run()`: synchronously, across `await`
  // (the compiled code captures and restores it, see `compile::async_context`), promise
  // reactions, timers and microtasks. Each event starts with none.
  let current = undefined;
  internal.asyncContext = { get: () => current, set: (c) => { current = c; } };
  if (features.asyncLocalStorage) {
    internal.define("__dormouseAls", Object.freeze({
      capture: () => current,
      resume: (context, value) => { current = context; return value; },
    }));
    const then = Promise.prototype.then;
    const bind = (context, f) => typeof f !== "function" ? f : function (value) {
      const saved = current;
      current = context;
      try { return f(value); } finally { current = saved; }
    };
    Object.defineProperty(Promise.prototype, "then", {
      value: function then_(onFulfilled, onRejected) {
        return then.call(this, bind(current, onFulfilled), bind(current, onRejected));
      },
      writable: true, configurable: true,
    });
  }
  class AsyncLocalStorage {
    #key = Symbol("als");
    getStore() { return current?.get(this.#key); }
    run(store, callback, ...args) {
      const saved = current;
      current = new Map(current ?? []);
      current.set(this.#key, store);
      try { return callback(...args); } finally { current = saved; }
    }
    exit(callback, ...args) {
      const saved = current;
      current = new Map(current ?? []);
      current.delete(this.#key);
      try { return callback(...args); } finally { current = saved; }
    }
    enterWith(store) { current = new Map(current ?? []); current.set(this.#key, store); }
    disable() { if (current) { current = new Map(current); current.delete(this.#key); } }
    static bind(fn) { const captured = current; return function (...args) { const saved = current; current = captured; try { return fn.apply(this, args); } finally { current = saved; } }; }
    static snapshot() { const captured = current; return (fn, ...args) => { const saved = current; current = captured; try { return fn(...args); } finally { current = saved; } }; }
  }
  class AsyncResource {
    #context = current;
    constructor(type) { this.type = type; }
    runInAsyncScope(fn, thisArg, ...args) { const saved = current; current = this.#context; try { return fn.apply(thisArg, args); } finally { current = saved; } }
    bind(fn) { return (...args) => this.runInAsyncScope(fn, undefined, ...args); }
    static bind(fn) { return new AsyncResource("bound").bind(fn); }
  }
  internal.modules["node:async_hooks"] = { default: { AsyncLocalStorage, AsyncResource }, AsyncLocalStorage, AsyncResource };
  if (!features.nodeCompat) return;

  // ---------------------------------------------------------------- node:buffer
  const ENCODINGS = new Set(["utf8", "utf-8", "hex", "base64", "base64url", "latin1", "binary", "ascii", "ucs2", "ucs-2", "utf16le", "utf-16le"]);
  const normalEncoding = (encoding = "utf8") => {
    const e = String(encoding).toLowerCase();
    if (!ENCODINGS.has(e)) throw new TypeError(`Unknown encoding: ${encoding}`);
    return e === "utf-8" ? "utf8" : e === "binary" ? "latin1" : e === "ucs2" || e === "ucs-2" || e === "utf-16le" ? "utf16le" : e;
  };
  const encode = (text, encoding) => {
    switch (normalEncoding(encoding)) {
      case "utf8": return encoder.encode(text);
      case "hex": {
        const out = new Uint8Array(text.length >> 1);
        for (let i = 0; i < out.length; i++) {
          const byte = parseInt(text.substr(i * 2, 2), 16);
          if (Number.isNaN(byte)) return out.subarray(0, i);
          out[i] = byte;
        }
        return out;
      }
      case "base64": case "base64url": {
        const clean = text.replace(/-/g, "+").replace(/_/g, "/").replace(/[^A-Za-z0-9+/]/g, "");
        const padded = clean + "===".slice((clean.length + 3) % 4);
        return native.latin1Encode(atob(padded.length % 4 === 1 ? padded.slice(0, -1) : padded));
      }
      case "latin1": case "ascii": return native.latin1Encode(text);
      case "utf16le": {
        const out = new Uint8Array(text.length * 2);
        for (let i = 0; i < text.length; i++) { const c = text.charCodeAt(i); out[i * 2] = c & 0xff; out[i * 2 + 1] = c >> 8; }
        return out;
      }
    }
  };
  const decode = (bytes, encoding) => {
    switch (normalEncoding(encoding)) {
      case "utf8": return decoder.decode(bytes);
      case "hex": return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      case "base64": return btoa(native.latin1Decode(bytes));
      case "base64url": return btoa(native.latin1Decode(bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      case "latin1": return native.latin1Decode(bytes);
      case "ascii": return native.latin1Decode(bytes.map((b) => b & 0x7f));
      case "utf16le": { let s = ""; for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8)); return s; }
    }
  };
  class Buffer extends Uint8Array {
    static from(value, encodingOrOffset, length) {
      if (typeof value === "string") return Buffer.#of(encode(value, encodingOrOffset));
      if (value instanceof ArrayBuffer) return new Buffer(value, encodingOrOffset ?? 0, length ?? value.byteLength - (encodingOrOffset ?? 0));
      if (ArrayBuffer.isView(value)) return Buffer.#of(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice());
      if (value?.type === "Buffer" && Array.isArray(value.data)) return Buffer.#of(Uint8Array.from(value.data));
      if (Array.isArray(value) || typeof value?.length === "number") return Buffer.#of(Uint8Array.from(value, (v) => Number(v) & 0xff));
      throw new TypeError("The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object.");
    }
    static #of(bytes) { return new Buffer(bytes.buffer, bytes.byteOffset, bytes.byteLength); }
    static alloc(size, fill, encoding) { const b = new Buffer(size); if (fill !== undefined) b.fill(fill, 0, size, encoding); return b; }
    static allocUnsafe(size) { return new Buffer(size); }
    static allocUnsafeSlow(size) { return new Buffer(size); }
    static isBuffer(value) { return value instanceof Buffer; }
    static isEncoding(encoding) { return ENCODINGS.has(String(encoding).toLowerCase()); }
    static byteLength(value, encoding) { return typeof value === "string" ? encode(value, encoding).length : value.byteLength; }
    static concat(list, total) {
      total ??= list.reduce((n, b) => n + b.length, 0);
      const out = Buffer.alloc(total);
      let at = 0;
      for (const b of list) { if (at >= total) break; out.set(b.subarray(0, total - at), at); at += b.length; }
      return out;
    }
    static compare(a, b) { return a.compare(b); }
    toString(encoding = "utf8", start = 0, end = this.length) { return decode(this.subarray(start, end), encoding); }
    toJSON() { return { type: "Buffer", data: Array.from(this) }; }
    equals(other) { return this.compare(other) === 0; }
    compare(other) {
      const n = Math.min(this.length, other.length);
      for (let i = 0; i < n; i++) if (this[i] !== other[i]) return this[i] < other[i] ? -1 : 1;
      return this.length === other.length ? 0 : this.length < other.length ? -1 : 1;
    }
    write(text, offset = 0, length, encoding) {
      if (typeof offset === "string") { encoding = offset; offset = 0; }
      if (typeof length === "string") { encoding = length; length = undefined; }
      const bytes = encode(text, encoding).subarray(0, Math.min(length ?? Infinity, this.length - offset));
      this.set(bytes, offset);
      return bytes.length;
    }
    fill(value, start = 0, end = this.length, encoding) {
      if (typeof value === "string") {
        const bytes = encode(value, typeof start === "string" ? start : encoding);
        if (typeof start === "string") { start = 0; end = this.length; }
        for (let i = start; i < end; i++) this[i] = bytes[(i - start) % bytes.length];
        return this;
      }
      return super.fill(Number(value) & 0xff, start, end);
    }
    subarray(start, end) { const s = super.subarray(start, end); return new Buffer(s.buffer, s.byteOffset, s.byteLength); }
    slice(start, end) { return this.subarray(start, end); }
    copy(target, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
      const part = this.subarray(sourceStart, Math.min(sourceEnd, sourceStart + target.length - targetStart));
      target.set(part, targetStart);
      return part.length;
    }
    indexOf(value, offset = 0, encoding) {
      if (typeof value === "number") return super.indexOf(value & 0xff, offset);
      const needle = typeof value === "string" ? encode(value, encoding) : value;
      outer: for (let i = offset < 0 ? Math.max(0, this.length + offset) : offset; i <= this.length - needle.length; i++) {
        for (let j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
        return i;
      }
      return -1;
    }
    includes(value, offset, encoding) { return this.indexOf(value, offset, encoding) !== -1; }
    #view() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
    readUInt8(o = 0) { return this.#view().getUint8(o); }
    readInt8(o = 0) { return this.#view().getInt8(o); }
    readUInt16LE(o = 0) { return this.#view().getUint16(o, true); }
    readUInt16BE(o = 0) { return this.#view().getUint16(o, false); }
    readInt16LE(o = 0) { return this.#view().getInt16(o, true); }
    readInt16BE(o = 0) { return this.#view().getInt16(o, false); }
    readUInt32LE(o = 0) { return this.#view().getUint32(o, true); }
    readUInt32BE(o = 0) { return this.#view().getUint32(o, false); }
    readInt32LE(o = 0) { return this.#view().getInt32(o, true); }
    readInt32BE(o = 0) { return this.#view().getInt32(o, false); }
    readBigUInt64LE(o = 0) { return this.#view().getBigUint64(o, true); }
    readBigUInt64BE(o = 0) { return this.#view().getBigUint64(o, false); }
    readFloatLE(o = 0) { return this.#view().getFloat32(o, true); }
    readFloatBE(o = 0) { return this.#view().getFloat32(o, false); }
    readDoubleLE(o = 0) { return this.#view().getFloat64(o, true); }
    readDoubleBE(o = 0) { return this.#view().getFloat64(o, false); }
    writeUInt8(v, o = 0) { this.#view().setUint8(o, v); return o + 1; }
    writeInt8(v, o = 0) { this.#view().setInt8(o, v); return o + 1; }
    writeUInt16LE(v, o = 0) { this.#view().setUint16(o, v, true); return o + 2; }
    writeUInt16BE(v, o = 0) { this.#view().setUint16(o, v, false); return o + 2; }
    writeInt16LE(v, o = 0) { this.#view().setInt16(o, v, true); return o + 2; }
    writeInt16BE(v, o = 0) { this.#view().setInt16(o, v, false); return o + 2; }
    writeUInt32LE(v, o = 0) { this.#view().setUint32(o, v, true); return o + 4; }
    writeUInt32BE(v, o = 0) { this.#view().setUint32(o, v, false); return o + 4; }
    writeInt32LE(v, o = 0) { this.#view().setInt32(o, v, true); return o + 4; }
    writeInt32BE(v, o = 0) { this.#view().setInt32(o, v, false); return o + 4; }
    writeFloatLE(v, o = 0) { this.#view().setFloat32(o, v, true); return o + 4; }
    writeDoubleLE(v, o = 0) { this.#view().setFloat64(o, v, true); return o + 8; }
    get parent() { return this.buffer; }
    get offset() { return this.byteOffset; }
  }
  for (const name of ["readUInt8", "readUInt16LE", "readUInt16BE", "readUInt32LE", "readUInt32BE", "writeUInt8", "writeUInt16LE", "writeUInt16BE", "writeUInt32LE", "writeUInt32BE"]) {
    Buffer.prototype[name.replace("UInt", "Uint")] = Buffer.prototype[name];
  }
  const kMaxLength = 2 ** 32 - 1;
  internal.define("Buffer", Buffer);
  internal.modules["node:buffer"] = {
    default: { Buffer, kMaxLength, constants: { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: 2 ** 29 - 24 }, atob, btoa, Blob },
    Buffer, kMaxLength, constants: { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: 2 ** 29 - 24 }, atob, btoa, Blob,
  };
  internal.define("process", { env: internal.env, version: "v22.0.0", versions: { node: "22.0.0" }, platform: "linux", nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)) });
})
