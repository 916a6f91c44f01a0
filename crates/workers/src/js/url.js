// URL (parsed by the WHATWG-conformant `url` crate) and URLSearchParams.
(function (native, internal) {
  "use strict";
  const FIELDS = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash", "origin"];

  // application/x-www-form-urlencoded, as the URL Standard defines it.
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const SAFE = /[A-Za-z0-9*\-._]/;
  const formEncode = (text) => {
    let out = "";
    for (const byte of encoder.encode(text)) {
      const c = String.fromCharCode(byte);
      if (byte === 0x20) out += "+";
      else if (byte < 0x80 && SAFE.test(c)) out += c;
      else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
    }
    return out;
  };
  const percentDecode = (text) => {
    const bytes = [];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
        bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
      } else if (c < 0x80) {
        bytes.push(c);
      } else {
        bytes.push(...encoder.encode(text[i] + (c >= 0xd800 && c < 0xdc00 ? text[i + 1] ?? "" : "")));
        if (c >= 0xd800 && c < 0xdc00) i++;
      }
    }
    return decoder.decode(new Uint8Array(bytes));
  };
  const formDecode = (query) => {
    const pairs = [];
    for (const part of query.split("&")) {
      if (part === "") continue;
      const at = part.indexOf("=");
      const name = at < 0 ? part : part.slice(0, at);
      const value = at < 0 ? "" : part.slice(at + 1);
      pairs.push([percentDecode(name.replace(/\+/g, " ")), percentDecode(value.replace(/\+/g, " "))]);
    }
    return pairs;
  };

  const kList = Symbol("list"), kUrl = Symbol("url"), kUpdate = Symbol("update");
  class URLSearchParams {
    constructor(init = "") {
      this[kList] = [];
      this[kUrl] = null;
      if (init instanceof URLSearchParams) this[kList] = init[kList].map(([k, v]) => [k, v]);
      else if (typeof init === "object" && init !== null && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const entry = [...pair];
          if (entry.length !== 2) throw new TypeError("Failed to construct 'URLSearchParams': Sequence initializer must only contain pair elements");
          this[kList].push([String(entry[0]), String(entry[1])]);
        }
      } else if (typeof init === "object" && init !== null) {
        for (const key of Object.keys(init)) this[kList].push([key, String(init[key])]);
      } else {
        const text = String(init);
        this[kList] = formDecode(text.startsWith("?") ? text.slice(1) : text);
      }
    }
    [kUpdate]() {
      if (this[kUrl]) this[kUrl][kSetSearch](this.toString());
    }
    get size() { return this[kList].length; }
    append(name, value) { this[kList].push([String(name), String(value)]); this[kUpdate](); }
    delete(name, value) {
      name = String(name);
      this[kList] = this[kList].filter(([k, v]) => k !== name || (value !== undefined && v !== String(value)));
      this[kUpdate]();
    }
    get(name) { name = String(name); return this[kList].find(([k]) => k === name)?.[1] ?? null; }
    getAll(name) { name = String(name); return this[kList].filter(([k]) => k === name).map(([, v]) => v); }
    has(name, value) { name = String(name); return this[kList].some(([k, v]) => k === name && (value === undefined || v === String(value))); }
    set(name, value) {
      name = String(name); value = String(value);
      const at = this[kList].findIndex(([k]) => k === name);
      if (at < 0) this[kList].push([name, value]);
      else {
        this[kList][at][1] = value;
        this[kList] = this[kList].filter(([k], i) => k !== name || i === at);
      }
      this[kUpdate]();
    }
    sort() {
      this[kList] = this[kList].map((p, i) => [p, i]).sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j)).map(([p]) => p);
      this[kUpdate]();
    }
    forEach(callback, thisArg) { for (const [k, v] of this[kList]) callback.call(thisArg, v, k, this); }
    *entries() { for (const [k, v] of this[kList]) yield [k, v]; }
    *keys() { for (const [k] of this[kList]) yield k; }
    *values() { for (const [, v] of this[kList]) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this[kList].map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join("&"); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }
  }

  const kParts = Symbol("parts"), kSetSearch = Symbol("setSearch"), kParams = Symbol("params");
  class URL {
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'URL': 1 argument required, but only 0 present.");
      const parts = native.urlParse(String(url), base === undefined ? undefined : String(base));
      if (parts == null) throw new TypeError(`Invalid URL: ${String(url)}`);
      this[kParts] = parts;
      this[kParams] = null;
    }
    static canParse(url, base) { return native.urlParse(String(url), base === undefined ? undefined : String(base)) != null; }
    static parse(url, base) { try { return new URL(url, base); } catch { return null; } }
    [kSetSearch](search) {
      const parts = native.urlSet(this[kParts][0], "search", search);
      if (parts !== null) this[kParts] = parts;
    }
    get searchParams() {
      if (!this[kParams]) {
        this[kParams] = new URLSearchParams(this[kParts][8]);
        this[kParams][kUrl] = this;
      }
      return this[kParams];
    }
    toString() { return this[kParts][0]; }
    toJSON() { return this[kParts][0]; }
    get [Symbol.toStringTag]() { return "URL"; }
  }
  const setField = function (url, field, value) {
    const parts = native.urlSet(url[kParts][0], field, String(value));
    if (parts != null) {
      url[kParts] = parts;
      if (url[kParams]) url[kParams][kList] = formDecode(parts[8].slice(1));
    }
  };
  FIELDS.forEach((field, index) => {
    const descriptor = { get() { return this[kParts][index]; }, enumerable: true, configurable: true };
    if (field !== "origin") descriptor.set = function (value) { setField(this, field, value); };
    Object.defineProperty(URL.prototype, field, descriptor);
  });
  internal.define("URL", URL);
  internal.define("URLSearchParams", URLSearchParams);
  internal.formEncode = formEncode;
  internal.formDecode = formDecode;
})
