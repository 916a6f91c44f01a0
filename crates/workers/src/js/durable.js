// Durable Objects in JavaScript: the `cloudflare:workers` classes, `ctx` (DurableObjectState)
// with its storage, namespaces and stubs (fetch and RPC), and the entry points the engine
// calls to construct instances and deliver their events.
(function (native, internal) {
  "use strict";
  const kStop = Symbol("internal");

  // ---------------------------------------------------------------- cloudflare:workers
  class DurableObject {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class WorkerEntrypoint {
    constructor(ctx, env) { this.ctx = ctx; this.env = env; }
  }
  class RpcTarget {}
  const waitUntil = (promise) => { Promise.resolve(promise).catch(internal.reportError); };
  internal.env = {};
  internal.modules = {};

  // ---------------------------------------------------------------- ids, namespaces, stubs
  class DurableObjectId {
    #hex; #name;
    constructor(key, hex, name) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      this.#hex = hex;
      this.#name = name ?? undefined;
    }
    toString() { return this.#hex; }
    toJSON() { return this.#hex; }
    equals(other) { return other instanceof DurableObjectId && other.#hex === this.#hex; }
    get name() { return this.#name; }
    get jurisdiction() { return undefined; }
  }
  const idParts = (id) => {
    if (!(id instanceof DurableObjectId)) throw new TypeError("Failed to execute 'get' on 'DurableObjectNamespace': parameter 1 is not of type 'DurableObjectId'.");
    return [id.toString(), id.name ?? null];
  };
  // Methods a stub never forwards: the object's own event handlers, and what makes a stub look
  // like a promise.
  const NOT_RPC = new Set(["then", "alarm", "webSocketMessage", "webSocketClose", "webSocketError", "connect", "constructor"]);
  const remoteError = (error) => {
    if (error instanceof Error) {
      Object.defineProperty(error, "remote", { value: true, enumerable: false, configurable: true });
    }
    return error;
  };
  const makeStub = (ns, hex, name) => {
    const target = {
      id: new DurableObjectId(kStop, hex, name),
      name: name ?? undefined,
      async fetch(input, init) {
        const request = input instanceof Request && init === undefined ? input : new Request(input, init);
        const parts = await native.nsFetch(ns, hex, name, internal.requestToNative(request)).catch((e) => { throw remoteError(e); });
        return internal.responseFromNative(parts);
      },
    };
    return new Proxy(target, {
      get(t, prop) {
        if (prop in t) return t[prop];
        if (typeof prop === "symbol" || NOT_RPC.has(prop)) return undefined;
        return async (...args) => {
          const bytes = await native.nsCall(ns, hex, name, prop, native.serialize(args)).catch((e) => { throw remoteError(e); });
          return native.deserialize(bytes);
        };
      },
      has(t, prop) { return prop in t; },
    });
  };
  class DurableObjectNamespace {
    #ns;
    constructor(key, ns) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      this.#ns = ns;
    }
    idFromName(name) {
      if (arguments.length === 0) throw new TypeError("Failed to execute 'idFromName': 1 argument required.");
      const [hex, n] = native.nsIdFromName(this.#ns, String(name));
      return new DurableObjectId(kStop, hex, n);
    }
    newUniqueId(options) {
      if (options?.jurisdiction) throw new Error("Jurisdiction restrictions are not implemented in Dormouse.");
      return new DurableObjectId(kStop, native.nsUniqueId(this.#ns), null);
    }
    idFromString(hex) {
      return new DurableObjectId(kStop, native.nsIdFromString(this.#ns, String(hex)), null);
    }
    get(id, options) {
      const [hex, name] = idParts(id);
      native.nsIdFromString(this.#ns, hex);
      return makeStub(this.#ns, hex, name);
    }
    getByName(name, options) { return this.get(this.idFromName(name), options); }
    getExisting(id, options) { return this.get(id, options); }
    jurisdiction(name) { throw new Error("Jurisdiction restrictions are not implemented in Dormouse."); }
  }
  internal.createEnv = (entries) => {
    const env = internal.env;
    for (const [name, kind, value] of entries) {
      if (kind === "namespace") env[name] = new DurableObjectNamespace(kStop, value);
      else if (kind === "json") env[name] = JSON.parse(value);
      else env[name] = value;
    }
    return env;
  };

  // ---------------------------------------------------------------- storage
  const MAX_KEYS = 128;
  const KV_KEY_BYTES = 2048, KV_VALUE_BYTES = 128 * 1024;
  const encoder = new TextEncoder();
  const checkKey = (key, kind) => {
    if (typeof key !== "string") key = String(key);
    if (kind === "kv" && encoder.encode(key).length > KV_KEY_BYTES) {
      throw new RangeError(`Keys cannot be larger than ${KV_KEY_BYTES} bytes. A key of size ${encoder.encode(key).length} was provided.`);
    }
    return key;
  };
  const checkKeys = (keys, kind) => {
    if (keys.length > MAX_KEYS) throw new RangeError(`Maximum number of keys is ${MAX_KEYS}. ${keys.length} keys were provided.`);
    return keys.map((k) => checkKey(k, kind));
  };
  const serializeValue = (value, kind) => {
    if (value === undefined) throw new TypeError("Cannot store undefined in Durable Object storage; use delete() to remove a key");
    const bytes = native.serialize(value);
    // The serializer adds a small header; Cloudflare allows that slack on top of the limit.
    if (kind === "kv" && bytes.byteLength > KV_VALUE_BYTES + 34) {
      throw new RangeError(`Values cannot be larger than ${KV_VALUE_BYTES} bytes. A value of size ${bytes.byteLength} was provided.`);
    }
    return bytes;
  };
  const listOptions = (options = {}) => {
    if (options.start !== undefined && options.startAfter !== undefined) {
      throw new TypeError("list() cannot be called with both start and startAfter values.");
    }
    if (options.limit !== undefined && !(Number(options.limit) > 0)) throw new TypeError("List limit must be positive.");
    return [
      options.start === undefined ? null : String(options.start),
      options.startAfter === undefined ? null : String(options.startAfter),
      options.end === undefined ? null : String(options.end),
      options.prefix === undefined ? null : String(options.prefix),
      !!options.reverse,
      options.limit === undefined ? null : Math.floor(Number(options.limit)),
    ];
  };
  const toMap = (entries) => new Map(entries.map(([k, v]) => [k, native.deserialize(v)]));

  class SqlStorageCursor {
    #columns; #rows; #at = 0; #read; #written;
    constructor(key, [columns, rows, read, written]) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      this.#columns = columns; this.#rows = rows; this.#read = read; this.#written = written;
    }
    #object(row) {
      const out = {};
      this.#columns.forEach((c, i) => { out[c] = row[i]; });
      return out;
    }
    next() {
      if (this.#at >= this.#rows.length) return { done: true, value: undefined };
      return { done: false, value: this.#object(this.#rows[this.#at++]) };
    }
    toArray() { const out = []; for (const row of this) out.push(row); return out; }
    one() {
      const rest = this.#rows.length - this.#at;
      if (rest === 0) throw new Error("Expected exactly one result from SQL query, but got no results.");
      if (rest > 1) throw new Error("Expected exactly one result from SQL query, but got multiple results.");
      return this.next().value;
    }
    *raw() { while (this.#at < this.#rows.length) yield this.#rows[this.#at++]; }
    get columnNames() { return [...this.#columns]; }
    get rowsRead() { return this.#read; }
    get rowsWritten() { return this.#written; }
    [Symbol.iterator]() { return this; }
  }
  class SqlStorage {
    #n;
    constructor(key, n) { if (key !== kStop) throw new TypeError("Illegal constructor"); this.#n = n; }
    exec(query, ...bindings) {
      return new SqlStorageCursor(kStop, native.sqlExec(this.#n, String(query), bindings));
    }
    get databaseSize() { return native.sqlDatabaseSize(this.#n); }
    get Cursor() { return SqlStorageCursor; }
  }
  class SyncKvStorage {
    #n;
    constructor(key, n) { if (key !== kStop) throw new TypeError("Illegal constructor"); this.#n = n; }
    get(key) {
      const found = native.kvGet(this.#n, [checkKey(key, "sqlite")]);
      return found.length ? native.deserialize(found[0][1]) : undefined;
    }
    put(key, value) { native.kvPut(this.#n, [[checkKey(key, "sqlite"), serializeValue(value, "sqlite")]]); }
    delete(key) { return native.kvDelete(this.#n, [checkKey(key, "sqlite")]) > 0; }
    *list(options) {
      for (const [k, v] of native.kvList(this.#n, listOptions(options))) yield [k, native.deserialize(v)];
    }
  }

  // A transaction's writes, kept until its callback succeeds and then applied atomically.
  class DurableObjectTransaction {
    #storage; #writes = new Map(); #rolledBack = false;
    constructor(key, storage) { if (key !== kStop) throw new TypeError("Illegal constructor"); this.#storage = storage; }
    async get(keys, options) {
      if (Array.isArray(keys)) {
        const out = new Map();
        const missing = keys.filter((k) => !this.#writes.has(String(k)));
        const stored = await this.#storage.get(missing);
        for (const k of keys.map(String).sort()) {
          if (this.#writes.has(k)) { const w = this.#writes.get(k); if (w.present) out.set(k, structuredClone(w.value)); }
          else if (stored.has(k)) out.set(k, stored.get(k));
        }
        return out;
      }
      const k = String(keys);
      if (this.#writes.has(k)) { const w = this.#writes.get(k); return w.present ? structuredClone(w.value) : undefined; }
      return this.#storage.get(k, options);
    }
    async put(keyOrEntries, value) {
      const entries = typeof keyOrEntries === "object" && keyOrEntries !== null ? Object.entries(keyOrEntries) : [[keyOrEntries, value]];
      for (const [k, v] of entries) {
        serializeValue(v, this.#storage.kind);
        this.#writes.set(checkKey(k, this.#storage.kind), { present: true, value: structuredClone(v) });
      }
    }
    async delete(keys) {
      const list = Array.isArray(keys) ? keys : [keys];
      let deleted = 0;
      for (const k of list.map(String)) {
        const existed = (await this.get(k)) !== undefined;
        if (existed) deleted++;
        this.#writes.set(k, { present: false });
      }
      return Array.isArray(keys) ? deleted : deleted > 0;
    }
    async list(options = {}) {
      const stored = await this.#storage.list({ ...options, limit: undefined });
      for (const [k, w] of this.#writes) {
        if (w.present) stored.set(k, structuredClone(w.value)); else stored.delete(k);
      }
      const [start, startAfter, end, prefix, reverse, limit] = listOptions(options);
      let keys = [...stored.keys()].filter((k) =>
        (start === null || k >= start) && (startAfter === null || k > startAfter) &&
        (end === null || k < end) && (prefix === null || k.startsWith(prefix))).sort();
      if (reverse) keys.reverse();
      if (limit !== null) keys = keys.slice(0, limit);
      return new Map(keys.map((k) => [k, stored.get(k)]));
    }
    rollback() { this.#rolledBack = true; }
    deleteAll() { throw new Error("Cannot call deleteAll() within a transaction"); }
    getAlarm(options) { return this.#storage.getAlarm(options); }
    setAlarm(time, options) { return this.#storage.setAlarm(time, options); }
    deleteAlarm(options) { return this.#storage.deleteAlarm(options); }
    commit() {
      if (this.#rolledBack) return;
      const puts = [], deletes = [];
      for (const [k, w] of this.#writes) {
        if (w.present) puts.push([k, serializeValue(w.value, this.#storage.kind)]); else deletes.push(k);
      }
      native.storageApply(this.#storage.handle, puts, deletes);
    }
    get rolledBack() { return this.#rolledBack; }
  }

  class DurableObjectStorage {
    #n; #kind; #ctl; #kv = null; #sql = null;
    constructor(key, n, kind, ctl) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      this.#n = n; this.#kind = kind; this.#ctl = ctl;
    }
    get kind() { return this.#kind; }
    get handle() { return this.#n; }
    async get(keys, options) {
      if (Array.isArray(keys)) return toMap(native.kvGet(this.#n, checkKeys(keys, this.#kind)));
      const found = native.kvGet(this.#n, [checkKey(keys, this.#kind)]);
      return found.length ? native.deserialize(found[0][1]) : undefined;
    }
    async put(keyOrEntries, value, options) {
      if (typeof keyOrEntries === "object" && keyOrEntries !== null) {
        const entries = Object.entries(keyOrEntries);
        if (entries.length > MAX_KEYS) throw new RangeError(`Maximum number of pairs is ${MAX_KEYS}. ${entries.length} pairs were provided.`);
        native.kvPut(this.#n, entries.map(([k, v]) => [checkKey(k, this.#kind), serializeValue(v, this.#kind)]));
        return;
      }
      native.kvPut(this.#n, [[checkKey(keyOrEntries, this.#kind), serializeValue(value, this.#kind)]]);
    }
    async delete(keys, options) {
      if (Array.isArray(keys)) return native.kvDelete(this.#n, checkKeys(keys, this.#kind));
      return native.kvDelete(this.#n, [checkKey(keys, this.#kind)]) > 0;
    }
    async list(options) { return toMap(native.kvList(this.#n, listOptions(options))); }
    async deleteAll(options) { native.storageDeleteAll(this.#n, !internal.features.deleteAllDeletesAlarm); }
    async transaction(closure) {
      const txn = new DurableObjectTransaction(kStop, this);
      const result = await closure(txn);
      txn.commit();
      return result;
    }
    transactionSync(closure) {
      if (this.#kind !== "sqlite") throw new Error("transactionSync() is only available on SQLite-backed Durable Objects");
      return native.storageTransactionSync(this.#n, closure);
    }
    async getAlarm(options) { return native.alarmGet(this.#n) ?? null; }
    async setAlarm(time, options) {
      const ms = time instanceof Date ? time.getTime() : Number(time);
      if (!(ms > 0)) throw new TypeError("setAlarm() cannot be called with an alarm time <= 0");
      if (!this.#ctl.constructing && typeof this.#ctl.object?.alarm !== "function") {
        throw new TypeError("Your Durable Object class must have an alarm() handler in order to call setAlarm()");
      }
      native.alarmSet(this.#n, Math.floor(ms));
    }
    async deleteAlarm(options) { native.alarmSet(this.#n, null); }
    async sync() { native.storageSync(this.#n); }
    get kv() {
      if (this.#kind !== "sqlite") throw new Error("The synchronous KV API is only available on SQLite-backed Durable Objects");
      return (this.#kv ??= new SyncKvStorage(kStop, this.#n));
    }
    get sql() {
      if (this.#kind !== "sqlite") throw new Error("SQL is only available on Durable Objects whose class was created with new_sqlite_classes");
      return (this.#sql ??= new SqlStorage(kStop, this.#n));
    }
    getCurrentBookmark() { throw new Error("Point-in-time recovery is not supported by Dormouse"); }
    getBookmarkForTime() { throw new Error("Point-in-time recovery is not supported by Dormouse"); }
    onNextSessionRestoreBookmark() { throw new Error("Point-in-time recovery is not supported by Dormouse"); }
  }

  // ---------------------------------------------------------------- ctx
  const MAX_BLOCK_MS = 30000;
  class DurableObjectState {
    #n; #ctl; #id = null; #storage = null;
    constructor(key, n, ctl) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      this.#n = n; this.#ctl = ctl;
    }
    get id() {
      if (!this.#id) { const [hex, name] = native.stateId(this.#n); this.#id = new DurableObjectId(kStop, hex, name); }
      return this.#id;
    }
    get storage() { return (this.#storage ??= new DurableObjectStorage(kStop, this.#n, this.#ctl.backend, this.#ctl)); }
    get props() { return {}; }
    acceptWebSocket(ws, tags = []) {
      const handle = internal.socketHandle(ws);
      native.stateAccept(this.#n, handle, Array.from(tags ?? [], String));
      this.#ctl.sockets.set(native.socketId(handle), ws);
    }
    getWebSockets(tag) {
      if (tag !== undefined) return this.#listSockets(String(tag));
      // Rooms call this on every message: the list is kept until a socket joins or leaves.
      const changes = native.stateSocketsChanges(this.#n);
      const kept = this.#ctl.socketList;
      if (kept?.changes === changes) return kept.list.slice();
      const list = this.#listSockets(null);
      this.#ctl.socketList = { changes, list };
      return list.slice();
    }
    #listSockets(tag) {
      const sockets = this.#ctl.sockets;
      const found = native.stateSockets(this.#n, tag).map((id) => sockets.get(id));
      if (!found.includes(undefined)) return found;
      // After a wake, the sockets are wrapped again, all in one pass.
      return native.stateSocketHandles(this.#n, tag).map((handle) => internal.wrapSocket(handle, sockets));
    }
    getTags(ws) { return native.socketTags(internal.socketHandle(ws)); }
    setWebSocketAutoResponse(pair) {
      if (pair === undefined || pair === null) { native.stateSetAutoResponse(this.#n, null, null); return; }
      if (!(pair instanceof WebSocketRequestResponsePair)) throw new TypeError("Failed to execute 'setWebSocketAutoResponse': parameter 1 is not of type 'WebSocketRequestResponsePair'.");
      native.stateSetAutoResponse(this.#n, pair.request, pair.response);
    }
    getWebSocketAutoResponse() {
      const pair = native.stateAutoResponse(this.#n);
      return pair == null ? null : new WebSocketRequestResponsePair(pair[0], pair[1]);
    }
    getWebSocketAutoResponseTimestamp(ws) {
      const ms = native.socketAutoResponseAt(internal.socketHandle(ws));
      return ms == null ? null : new Date(ms);
    }
    setHibernatableWebSocketEventTimeout(ms) {
      native.stateSetEventTimeout(this.#n, ms === undefined || ms === null ? 0 : Number(ms));
    }
    getHibernatableWebSocketEventTimeout() { return native.stateEventTimeout(this.#n) ?? null; }
    getHibernatableWebSocketEventTimeoutMs() { return native.stateEventTimeout(this.#n) ?? null; }
    waitUntil(promise) {
      native.stateKeepAwake(this.#n, 1);
      Promise.resolve(promise).catch(internal.reportError).finally(() => native.stateKeepAwake(this.#n, -1));
    }
    async blockConcurrencyWhile(callback) {
      native.stateGate(this.#n, 1);
      const deadline = setTimeout(() => native.stateAbort(this.#n, `blockConcurrencyWhile() callback ran longer than ${MAX_BLOCK_MS / 1000} s`), MAX_BLOCK_MS);
      try {
        return await callback();
      } catch (error) {
        native.stateAbort(this.#n, `blockConcurrencyWhile() callback threw: ${internal.inspect(error)}`);
        throw error;
      } finally {
        clearTimeout(deadline);
        native.stateGate(this.#n, -1);
      }
    }
    abort(reason) {
      native.stateAbort(this.#n, reason === undefined ? "ctx.abort() was called" : `ctx.abort(): ${String(reason)}`);
      throw new Error(`Durable Object was aborted${reason === undefined ? "" : `: ${String(reason)}`}`);
    }
  }

  // ---------------------------------------------------------------- what the engine calls
  let main = null;
  internal.setMain = (namespace) => {
    main = namespace;
    internal.modules["cloudflare:workers"] = { default: undefined, DurableObject, WorkerEntrypoint, RpcTarget, env: internal.env, waitUntil };
  };
  internal.modules["cloudflare:workers"] = { default: undefined, DurableObject, WorkerEntrypoint, RpcTarget, env: internal.env, waitUntil };
  internal.exportedClass = (name) => {
    const value = main?.[name];
    return typeof value === "function" ? value : null;
  };

  // Settles `token` with what `run` returns (or throws), after `convert` (which may throw).
  const settle = (token, run, convert) => {
    // Each event starts with no AsyncLocalStorage store.
    internal.asyncContext?.set(undefined);
    let result;
    try {
      result = run();
    } catch (error) {
      native.settle(token, false, error);
      return;
    }
    const finish = (value) => {
      let out;
      try { out = convert(value); } catch (error) { native.settle(token, false, error); return; }
      native.settle(token, true, out);
    };
    if (result !== null && typeof result === "object" && typeof result.then === "function") {
      Promise.resolve(result).then(finish, (error) => native.settle(token, false, error));
    } else {
      finish(result);
    }
  };
  const ignore = () => null;

  internal.construct = (className, n, backend) => {
    const Class = internal.exportedClass(className);
    if (!Class) throw new TypeError(`the Worker does not export a class named ${className}`);
    const ctl = { object: null, sockets: new Map(), socketList: null, constructing: true, backend, n };
    const state = new DurableObjectState(kStop, n, ctl);
    ctl.state = state;
    try {
      ctl.object = new Class(state, internal.env);
    } finally {
      ctl.constructing = false;
    }
    return ctl;
  };
  internal.dispatchFetch = (ctl, token, parts) => settle(token, () => {
    if (typeof ctl.object.fetch !== "function") throw new TypeError("Handler does not export a fetch() function.");
    return ctl.object.fetch(internal.requestFromNative(parts));
  }, internal.responseToNative);
  internal.dispatchSocket = (ctl, token, kind, id, handle, a) => settle(token, () => {
    const ws = ctl.sockets.get(id) ?? internal.wrapSocket(handle, ctl.sockets);
    if (kind !== "message") ctl.sockets.delete(id);
    const object = ctl.object;
    if (kind === "message") return typeof object.webSocketMessage === "function" ? object.webSocketMessage(ws, a) : undefined;
    if (kind === "close") return typeof object.webSocketClose === "function" ? object.webSocketClose(ws, a[0], a[1], a[2]) : undefined;
    return typeof object.webSocketError === "function" ? object.webSocketError(ws, new Error(String(a))) : undefined;
  }, ignore);
  internal.dispatchAlarm = (ctl, token, retryCount) => settle(token, () => {
    if (typeof ctl.object.alarm !== "function") return undefined;
    return ctl.object.alarm({ retryCount, isRetry: retryCount > 0 });
  }, ignore);
  internal.dispatchCall = (ctl, token, method, args) => settle(token, () => {
    const object = ctl.object;
    const target = typeof method === "string" && !method.startsWith("#") && !NOT_RPC.has(method) && method !== "fetch" ? object[method] : undefined;
    if (typeof target !== "function" || Object.prototype[method] === target) {
      throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
    }
    return target.apply(object, native.deserialize(args));
  }, (value) => native.serialize(value));
  internal.dispatchWorker = (token, parts) => settle(token, () => {
    const handler = main?.default;
    const request = internal.requestFromNative(parts);
    const ctx = { waitUntil, passThroughOnException() {}, props: {} };
    if (typeof handler === "function" && handler.prototype instanceof WorkerEntrypoint) {
      const instance = new handler(ctx, internal.env);
      if (typeof instance.fetch !== "function") throw new TypeError("Handler does not export a fetch() function.");
      return instance.fetch(request);
    }
    if (!handler || typeof handler.fetch !== "function") throw new TypeError("Handler does not export a fetch() function.");
    return handler.fetch(request, internal.env, ctx);
  }, internal.responseToNative);
})
