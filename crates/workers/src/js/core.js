// The Web platform basics Workers code expects: DOMException, events, abort signals, encoding,
// base64, crypto, console, timers, structuredClone. Runs once per engine context, before any
// user module; `native` holds the Rust side, `internal` is shared by the prelude's files only.
(function (native, internal) {
  "use strict";
  const g = globalThis;
  const define = (name, value) =>
    Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
  internal.define = define;

  // ---------------------------------------------------------------- DOMException
  const DOM_CODES = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
    SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
    QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  class DOMException extends Error {
    #name;
    constructor(message = "", options = "Error") {
      const name = typeof options === "object" && options !== null ? String(options.name ?? "Error") : String(options);
      super(String(message), typeof options === "object" && options !== null && "cause" in options ? { cause: options.cause } : undefined);
      this.#name = name;
    }
    get name() { return this.#name; }
    get code() { return DOM_CODES[this.#name] ?? 0; }
  }
  for (const [name, code] of Object.entries(DOM_CODES)) {
    const constant = name.replace(/Error$/, "").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() + "_ERR";
    Object.defineProperty(DOMException, constant, { value: code });
  }
  define("DOMException", DOMException);
  internal.domError = (name, message) => new DOMException(message, name);

  // ---------------------------------------------------------------- Event, EventTarget
  const kStop = Symbol("stop");
  class Event {
    #type; #cancelable; #bubbles; #defaultPrevented = false; #timeStamp = Date.now();
    target = null; currentTarget = null;
    constructor(type, init = {}) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'Event': 1 argument required, but only 0 present.");
      this.#type = String(type);
      this.#cancelable = !!init.cancelable;
      this.#bubbles = !!init.bubbles;
      this[kStop] = false;
    }
    get type() { return this.#type; }
    get cancelable() { return this.#cancelable; }
    get bubbles() { return this.#bubbles; }
    get composed() { return false; }
    get defaultPrevented() { return this.#defaultPrevented; }
    get timeStamp() { return this.#timeStamp; }
    get eventPhase() { return this.currentTarget ? 2 : 0; }
    get isTrusted() { return false; }
    preventDefault() { if (this.#cancelable) this.#defaultPrevented = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this[kStop] = true; }
    composedPath() { return this.currentTarget ? [this.currentTarget] : []; }
  }
  Object.assign(Event, { NONE: 0, CAPTURING_PHASE: 1, AT_TARGET: 2, BUBBLING_PHASE: 3 });
  class CustomEvent extends Event {
    #detail;
    constructor(type, init = {}) { super(type, init); this.#detail = init.detail ?? null; }
    get detail() { return this.#detail; }
  }
  const kListeners = Symbol("listeners");
  class EventTarget {
    constructor() { Object.defineProperty(this, kListeners, { value: new Map() }); }
    addEventListener(type, listener, options) {
      if (listener == null) return;
      const once = typeof options === "object" && options !== null && !!options.once;
      const signal = typeof options === "object" && options !== null ? options.signal : undefined;
      if (signal?.aborted) return;
      let list = this[kListeners].get(type);
      if (!list) this[kListeners].set(type, (list = []));
      if (list.some((l) => l.listener === listener)) return;
      const entry = { listener, once };
      list.push(entry);
      signal?.addEventListener("abort", () => this.removeEventListener(type, listener));
    }
    removeEventListener(type, listener) {
      const list = this[kListeners].get(type);
      if (!list) return;
      const at = list.findIndex((l) => l.listener === listener);
      if (at >= 0) list.splice(at, 1);
    }
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("Failed to execute 'dispatchEvent': parameter 1 is not of type 'Event'.");
      event.target = this;
      event.currentTarget = this;
      const handler = this["on" + event.type];
      const list = [...(this[kListeners].get(event.type) ?? [])];
      if (typeof handler === "function") list.unshift({ listener: handler, once: false, property: true });
      for (const entry of list) {
        if (entry.once) this.removeEventListener(event.type, entry.listener);
        try {
          if (typeof entry.listener === "function") entry.listener.call(this, event);
          else entry.listener.handleEvent(event);
        } catch (error) {
          internal.reportError(error);
        }
        if (event[kStop]) break;
      }
      event.currentTarget = null;
      return !event.defaultPrevented;
    }
  }
  internal.listenerCount = (target, type) => target[kListeners]?.get(type)?.length ?? 0;
  define("Event", Event);
  define("CustomEvent", CustomEvent);
  define("EventTarget", EventTarget);

  // ---------------------------------------------------------------- AbortController
  const kAbort = Symbol("abort");
  class AbortSignal extends EventTarget {
    #aborted = false; #reason = undefined;
    constructor(key) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      super();
    }
    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    throwIfAborted() { if (this.#aborted) throw this.#reason; }
    static abort(reason) { const s = new AbortSignal(kStop); s[kAbort](reason); return s; }
    static timeout(ms) {
      const s = new AbortSignal(kStop);
      setTimeout(() => s[kAbort](new DOMException("The operation was aborted due to timeout", "TimeoutError")), ms);
      return s;
    }
    static any(signals) {
      const s = new AbortSignal(kStop);
      for (const other of signals) {
        if (other.aborted) { s[kAbort](other.reason); break; }
        other.addEventListener("abort", () => s[kAbort](other.reason), { once: true });
      }
      return s;
    }
    [kAbort](reason) {
      if (this.#aborted) return;
      this.#aborted = true;
      this.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      this.dispatchEvent(new Event("abort"));
    }
  }
  class AbortController {
    #signal = new AbortSignal(kStop);
    get signal() { return this.#signal; }
    abort(reason) { this.#signal[kAbort](reason); }
  }
  define("AbortSignal", AbortSignal);
  define("AbortController", AbortController);

  // ---------------------------------------------------------------- microtasks, cloning
  define("queueMicrotask", function queueMicrotask(callback) {
    if (typeof callback !== "function") throw new TypeError("The callback provided as parameter 1 is not a function.");
    Promise.resolve().then(() => {
      try { callback(); } catch (error) { internal.reportError(error); }
    });
  });
  define("structuredClone", function structuredClone(value) {
    if (arguments.length === 0) throw new TypeError("structuredClone requires 1 argument");
    return native.deserialize(native.serialize(value));
  });
  internal.reportError = (error) => native.log("error", internal.format(["Uncaught", error]));

  // ---------------------------------------------------------------- base64
  define("btoa", function btoa(data) {
    if (arguments.length === 0) throw new TypeError("btoa requires 1 argument");
    const text = String(data);
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) > 255) throw new DOMException("The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
    }
    return native.btoa(text);
  });
  define("atob", function atob(data) {
    if (arguments.length === 0) throw new TypeError("atob requires 1 argument");
    const decoded = native.atob(String(data));
    if (decoded == null) throw new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    return decoded;
  });

  // ---------------------------------------------------------------- encoding
  const toBytes = (input) => {
    if (input instanceof Uint8Array) return input;
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    if (typeof SharedArrayBuffer !== "undefined" && input instanceof SharedArrayBuffer) return new Uint8Array(input);
    throw new TypeError("The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.");
  };
  internal.toBytes = toBytes;
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return native.utf8Encode(String(input)); }
    encodeInto(input, dest) {
      const bytes = native.utf8Encode(String(input));
      const n = Math.min(bytes.length, dest.length);
      // Never split a character: back off to the start of the last one that does not fit.
      let end = n;
      if (end < bytes.length) while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
      dest.set(bytes.subarray(0, end));
      const read = native.utf8Decode(bytes.subarray(0, end), false, true).length;
      return { read, written: end };
    }
  }
  const LABELS = new Set(["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"]);
  class TextDecoder {
    #fatal; #ignoreBOM; #pending = new Uint8Array(0);
    constructor(label = "utf-8", options = {}) {
      const normal = String(label).trim().toLowerCase();
      if (!LABELS.has(normal)) throw new RangeError(`Failed to construct 'TextDecoder': The encoding label provided ('${label}') is invalid.`);
      this.#fatal = !!options.fatal;
      this.#ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options = {}) {
      let bytes = input === undefined ? new Uint8Array(0) : toBytes(input);
      if (this.#pending.length) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = new Uint8Array(0);
      }
      if (options.stream) {
        // Keep an incomplete character at the end for the next call.
        let end = bytes.length, back = 0;
        while (back < 3 && end - back - 1 >= 0 && (bytes[end - back - 1] & 0xc0) === 0x80) back++;
        const lead = bytes[end - back - 1];
        if (end - back - 1 >= 0 && lead >= 0xc0) {
          const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
          if (back + 1 < need) { this.#pending = bytes.slice(end - back - 1); bytes = bytes.subarray(0, end - back - 1); }
        }
      }
      const text = native.utf8Decode(bytes, this.#fatal, this.#ignoreBOM);
      if (text == null) throw new TypeError("The encoded data was not valid for encoding utf-8");
      return text;
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  // ---------------------------------------------------------------- crypto
  const DIGESTS = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512", "MD5": "md5" };
  const algorithmName = (algorithm) => {
    const name = typeof algorithm === "string" ? algorithm : algorithm?.name;
    const upper = String(name).toUpperCase();
    return upper === "SHA1" ? "SHA-1" : upper === "SHA256" ? "SHA-256" : upper;
  };
  class CryptoKey {
    #type; #algorithm; #extractable; #usages; #raw;
    constructor(key, type, algorithm, extractable, usages, raw) {
      if (key !== kStop) throw new TypeError("Illegal constructor");
      this.#type = type; this.#algorithm = algorithm; this.#extractable = extractable; this.#usages = usages; this.#raw = raw;
    }
    get type() { return this.#type; }
    get algorithm() { return this.#algorithm; }
    get extractable() { return this.#extractable; }
    get usages() { return this.#usages; }
    static raw(key) { return key.#raw; }
  }
  const subtle = {
    async digest(algorithm, data) {
      const name = algorithmName(algorithm);
      const id = DIGESTS[name];
      if (!id) throw new DOMException(`Unrecognized hash algorithm name: ${name}`, "NotSupportedError");
      return native.digest(id, toBytes(data));
    },
    async importKey(format, keyData, algorithm, extractable, usages) {
      const name = algorithmName(algorithm);
      if (name !== "HMAC") throw new DOMException(`Unrecognized key import algorithm "${name}" requested`, "NotSupportedError");
      if (format !== "raw") throw new DOMException(`Unsupported key format "${format}" for HMAC`, "NotSupportedError");
      const hash = algorithmName(algorithm.hash);
      if (!DIGESTS[hash] || hash === "MD5") throw new DOMException(`Unrecognized hash algorithm name: ${hash}`, "NotSupportedError");
      const raw = toBytes(keyData).slice();
      return new CryptoKey(kStop, "secret", { name: "HMAC", hash: { name: hash }, length: raw.length * 8 }, !!extractable, [...usages], raw);
    },
    async exportKey(format, key) {
      if (format !== "raw" || !key.extractable) throw new DOMException("Key is not extractable", "InvalidAccessError");
      return CryptoKey.raw(key).slice().buffer;
    },
    async sign(algorithm, key, data) {
      if (algorithmName(algorithm) !== "HMAC" || key.algorithm.name !== "HMAC") throw new DOMException("Unsupported signing algorithm", "NotSupportedError");
      if (!key.usages.includes("sign")) throw new DOMException("Requested operation is not valid for the provided key", "InvalidAccessError");
      return native.hmac(DIGESTS[key.algorithm.hash.name], CryptoKey.raw(key), toBytes(data));
    },
    async verify(algorithm, key, signature, data) {
      if (algorithmName(algorithm) !== "HMAC" || key.algorithm.name !== "HMAC") throw new DOMException("Unsupported verification algorithm", "NotSupportedError");
      if (!key.usages.includes("verify")) throw new DOMException("Requested operation is not valid for the provided key", "InvalidAccessError");
      const expected = new Uint8Array(native.hmac(DIGESTS[key.algorithm.hash.name], CryptoKey.raw(key), toBytes(data)));
      return native.constantTimeEqual(expected, toBytes(signature));
    },
  };
  const crypto = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
        throw new DOMException("The data argument must be an integer-type TypedArray", "TypeMismatchError");
      }
      if (array.byteLength > 65536) throw new DOMException(`The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, "QuotaExceededError");
      native.randomFill(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
    randomUUID() { return native.randomUUID(); },
    subtle,
  };
  Object.defineProperty(crypto, Symbol.toStringTag, { value: "Crypto" });
  define("crypto", crypto);
  define("CryptoKey", CryptoKey);

  // ---------------------------------------------------------------- console
  const inspect = (value, depth, seen) => {
    if (typeof value === "string") return depth === 0 ? value : JSON.stringify(value);
    if (typeof value === "function") return `[Function: ${value.name || "(anonymous)"}]`;
    if (typeof value === "bigint") return `${value}n`;
    if (typeof value === "symbol") return value.toString();
    if (value === null || typeof value !== "object") return String(value);
    if (value instanceof Error) {
      const stack = value.stack ? `${value.stack}`.replace(/\n$/, "") : "";
      const head = value.message ? `${value.name}: ${value.message}` : `${value.name}`;
      if (!stack) return head;
      return stack.startsWith(head) ? stack : `${head}\n${stack}`;
    }
    if (seen.has(value)) return "[Circular]";
    if (depth > 4) return Array.isArray(value) ? "[Array]" : "[Object]";
    seen.add(value);
    try {
      if (Array.isArray(value)) return `[ ${value.map((v) => inspect(v, depth + 1, seen)).join(", ")} ]`;
      if (value instanceof Map) return `Map(${value.size}) { ${[...value].map(([k, v]) => `${inspect(k, depth + 1, seen)} => ${inspect(v, depth + 1, seen)}`).join(", ")} }`;
      if (value instanceof Set) return `Set(${value.size}) { ${[...value].map((v) => inspect(v, depth + 1, seen)).join(", ")} }`;
      if (value instanceof Date) return isNaN(value) ? "Invalid Date" : value.toISOString();
      if (value instanceof RegExp) return String(value);
      if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.length}) [ ${Array.from(value).slice(0, 50).join(", ")} ]`;
      if (value instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
      if (value instanceof Promise) return "Promise { <pending> }";
      const name = value.constructor && value.constructor !== Object ? `${value.constructor.name} ` : "";
      const entries = Object.keys(value).map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${inspect(value[k], depth + 1, seen)}`);
      return entries.length ? `${name}{ ${entries.join(", ")} }` : `${name}{}`;
    } finally {
      seen.delete(value);
    }
  };
  const format = (args) => {
    if (args.length === 0) return "";
    let [first, ...rest] = args;
    let out;
    if (typeof first === "string" && /%[sdifoOjc%]/.test(first)) {
      out = first.replace(/%([sdifoOjc%])/g, (match, spec) => {
        if (spec === "%") return "%";
        if (rest.length === 0) return match;
        const arg = rest.shift();
        switch (spec) {
          case "s": return typeof arg === "string" ? arg : inspect(arg, 1, new Set());
          case "d": case "i": return String(parseInt(arg, 10));
          case "f": return String(parseFloat(arg));
          case "c": return "";
          case "j": try { return JSON.stringify(arg); } catch { return "[Circular]"; }
          default: return inspect(arg, 1, new Set());
        }
      });
    } else {
      out = inspect(first, 0, new Set());
    }
    for (const arg of rest) out += " " + inspect(arg, 0, new Set());
    return out;
  };
  internal.format = format;
  internal.inspect = (value) => inspect(value, 1, new Set());
  const counts = new Map(), timers = new Map();
  let groupIndent = "";
  const log = (level) => (...args) => native.log(level, groupIndent + format(args));
  const console = {
    log: log("info"), info: log("info"), debug: log("debug"), trace: log("debug"),
    warn: log("warn"), error: log("error"),
    dir: (value) => native.log("info", groupIndent + inspect(value, 1, new Set())),
    table: log("info"),
    assert: (condition, ...args) => { if (!condition) native.log("error", groupIndent + format(["Assertion failed:", ...args])); },
    count: (label = "default") => { const n = (counts.get(label) ?? 0) + 1; counts.set(label, n); native.log("info", `${groupIndent}${label}: ${n}`); },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timers.set(label, Date.now()),
    timeLog: (label = "default", ...args) => native.log("info", format([`${groupIndent}${label}: ${Date.now() - (timers.get(label) ?? Date.now())}ms`, ...args])),
    timeEnd: (label = "default") => { native.log("info", `${groupIndent}${label}: ${Date.now() - (timers.get(label) ?? Date.now())}ms`); timers.delete(label); },
    group: (...args) => { if (args.length) native.log("info", groupIndent + format(args)); groupIndent += "  "; },
    groupCollapsed: (...args) => console.group(...args),
    groupEnd: () => { groupIndent = groupIndent.slice(2); },
  };
  define("console", console);

  // ---------------------------------------------------------------- timers
  // The callbacks live here; the engine keeps the clock and fires them by id, in the turn of the
  // object that set them.
  const callbacks = new Map();
  let nextTimer = 1;
  const startTimer = (callback, delay, args, repeat) => {
    if (typeof callback !== "function") throw new TypeError("The callback provided as parameter 1 is not a function.");
    const id = nextTimer++;
    const ms = Math.max(0, Number(delay) || 0);
    callbacks.set(id, { callback, args, repeat, context: internal.asyncContext?.get() });
    native.timerStart(id, ms, repeat);
    return id;
  };
  const stopTimer = (id) => {
    const key = typeof id === "object" && id !== null ? id[Symbol.toPrimitive]?.() : id;
    if (callbacks.delete(key)) native.timerCancel(key);
  };
  internal.fireTimer = (id) => {
    const timer = callbacks.get(id);
    if (!timer) return;
    if (!timer.repeat) callbacks.delete(id);
    internal.asyncContext?.set(timer.context);
    try { timer.callback(...timer.args); } finally { internal.asyncContext?.set(undefined); }
  };
  internal.dropTimer = (id) => callbacks.delete(id);
  define("setTimeout", function setTimeout(callback, delay, ...args) { return startTimer(callback, delay, args, false); });
  define("setInterval", function setInterval(callback, delay, ...args) { return startTimer(callback, delay, args, true); });
  define("clearTimeout", function clearTimeout(id) { stopTimer(id); });
  define("clearInterval", function clearInterval(id) { stopTimer(id); });
  define("scheduler", { wait: (ms) => new Promise((resolve) => startTimer(resolve, ms, [], false)) });

  define("navigator", { userAgent: "Cloudflare-Workers", hardwareConcurrency: 1, language: "en" });
  define("performance", { now: () => native.monotonicMs(), timeOrigin: Date.now() - native.monotonicMs() });

  // Stack traces in the user's files and lines (TypeScript is mapped back through its source map).
  Error.prepareStackTrace = (error, frames) => {
    const head = error == null ? "Error" : (() => { try { return String(error); } catch { return "Error"; } })();
    // The prelude's own frames are Dormouse's machinery, not the user's code.
    const lines = frames.filter((frame) => !String(frame.getFileName() ?? "").startsWith("dormouse:")).map((frame) => {
      const name = frame.getFunctionName();
      const file = frame.getFileName();
      const line = frame.getLineNumber();
      const column = frame.getColumnNumber();
      let where;
      if (file == null || line == null) where = "native";
      else { const [f, l, c] = native.mapPosition(String(file), line, column ?? 0); where = `${f}:${l}:${c}`; }
      return name ? `    at ${name} (${where})` : `    at ${where}`;
    });
    return lines.length ? `${head}\n${lines.join("\n")}` : head;
  };
})
