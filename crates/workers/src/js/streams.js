// Streams, as far as Workers code uses them: ReadableStream (with readers, async iteration,
// tee, pipeTo/pipeThrough, from), WritableStream, TransformStream, and the text codec streams.
(function (native, internal) {
  "use strict";
  const kState = Symbol("state");

  class ReadableStreamDefaultController {
    constructor(stream) { this[kState] = stream; }
    get desiredSize() { const s = this[kState][kState]; return s.state === "readable" ? s.highWaterMark - s.queue.length : 0; }
    enqueue(chunk) {
      const s = this[kState][kState];
      if (s.state !== "readable" || s.closeRequested) throw new TypeError("Cannot enqueue a chunk into a closed readable stream");
      if (s.readers.length) s.readers.shift().resolve({ value: chunk, done: false });
      else s.queue.push(chunk);
    }
    close() {
      const s = this[kState][kState];
      if (s.state !== "readable" || s.closeRequested) throw new TypeError("Cannot close a readable stream that is already closed");
      s.closeRequested = true;
      if (s.queue.length === 0) finishClose(s);
    }
    error(reason) { errorStream(this[kState][kState], reason); }
  }
  const finishClose = (s) => {
    s.state = "closed";
    for (const r of s.readers.splice(0)) r.resolve({ value: undefined, done: true });
    s.closedResolve();
  };
  const errorStream = (s, reason) => {
    if (s.state !== "readable") return;
    s.state = "errored";
    s.error = reason;
    s.queue.length = 0;
    for (const r of s.readers.splice(0)) r.reject(reason);
    s.closedReject(reason);
  };
  const pull = (stream) => {
    const s = stream[kState];
    if (s.state !== "readable" || s.pulling || !s.source.pull || !s.started) return;
    if (s.queue.length >= s.highWaterMark && s.readers.length === 0) return;
    s.pulling = true;
    Promise.resolve()
      .then(() => s.source.pull(s.controller))
      .then(() => {
        s.pulling = false;
        if (s.readers.length) pull(stream);
      }, (reason) => errorStream(s, reason));
  };

  class ReadableStream {
    constructor(source = {}, strategy = {}) {
      let closedResolve, closedReject;
      const closed = new Promise((res, rej) => { closedResolve = res; closedReject = rej; });
      closed.catch(() => {});
      this[kState] = {
        state: "readable", queue: [], readers: [], source, started: false, pulling: false,
        closeRequested: false, locked: false, error: undefined,
        highWaterMark: strategy.highWaterMark ?? 1, closed, closedResolve, closedReject,
      };
      const s = this[kState];
      s.controller = new ReadableStreamDefaultController(this);
      Promise.resolve(source.start ? source.start(s.controller) : undefined).then(() => {
        s.started = true;
        pull(this);
      }, (reason) => errorStream(s, reason));
    }
    get locked() { return this[kState].locked; }
    getReader(options = {}) {
      if (options.mode === "byob") throw new TypeError("byob readers are not supported");
      if (this[kState].locked) throw new TypeError("ReadableStream is locked");
      return new ReadableStreamDefaultReader(this);
    }
    cancel(reason) {
      if (this[kState].locked) return Promise.reject(new TypeError("Cannot cancel a locked stream"));
      return cancelStream(this, reason);
    }
    tee() {
      const reader = this.getReader();
      let branches = [];
      const pullBoth = async () => {
        const { value, done } = await reader.read();
        for (const c of branches) { try { done ? c.close() : c.enqueue(value); } catch {} }
      };
      const a = new ReadableStream({ start(c) { branches.push(c); }, pull: pullBoth });
      const b = new ReadableStream({ start(c) { branches.push(c); }, pull: pullBoth });
      return [a, b];
    }
    async pipeTo(destination, options = {}) {
      const reader = this.getReader();
      const writer = destination.getWriter();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          await writer.write(value);
        }
        if (!options.preventClose) await writer.close();
      } catch (error) {
        if (!options.preventAbort) await writer.abort(error);
        throw error;
      } finally {
        reader.releaseLock();
        writer.releaseLock();
      }
    }
    pipeThrough(transform, options) {
      this.pipeTo(transform.writable, options).catch(() => {});
      return transform.readable;
    }
    values(options = {}) {
      const reader = this.getReader();
      return {
        next: () => reader.read(),
        return: async (value) => {
          if (!options.preventCancel) await reader.cancel(value);
          reader.releaseLock();
          return { value, done: true };
        },
        [Symbol.asyncIterator]() { return this; },
      };
    }
    [Symbol.asyncIterator](options) { return this.values(options); }
    static from(iterable) {
      const iterator = iterable[Symbol.asyncIterator]?.() ?? iterable[Symbol.iterator]();
      return new ReadableStream({
        async pull(c) {
          const { value, done } = await iterator.next();
          if (done) c.close(); else c.enqueue(value);
        },
        async cancel(reason) { await iterator.return?.(reason); },
      });
    }
  }
  const cancelStream = async (stream, reason) => {
    const s = stream[kState];
    if (s.state === "closed") return;
    if (s.state === "errored") throw s.error;
    s.queue.length = 0;
    finishClose(s);
    await s.source.cancel?.(reason);
  };

  class ReadableStreamDefaultReader {
    #stream;
    constructor(stream) {
      if (stream[kState].locked) throw new TypeError("ReadableStream is locked");
      stream[kState].locked = true;
      this.#stream = stream;
    }
    get closed() { return this.#stream ? this.#stream[kState].closed : Promise.resolve(); }
    read() {
      if (!this.#stream) return Promise.reject(new TypeError("This reader has been released"));
      const s = this.#stream[kState];
      if (s.queue.length) {
        const value = s.queue.shift();
        if (s.closeRequested && s.queue.length === 0) finishClose(s);
        else pull(this.#stream);
        return Promise.resolve({ value, done: false });
      }
      if (s.state === "closed") return Promise.resolve({ value: undefined, done: true });
      if (s.state === "errored") return Promise.reject(s.error);
      const result = new Promise((resolve, reject) => s.readers.push({ resolve, reject }));
      pull(this.#stream);
      return result;
    }
    releaseLock() {
      if (!this.#stream) return;
      this.#stream[kState].locked = false;
      this.#stream = null;
    }
    cancel(reason) {
      if (!this.#stream) return Promise.reject(new TypeError("This reader has been released"));
      return cancelStream(this.#stream, reason);
    }
  }

  class WritableStream {
    constructor(sink = {}) {
      this[kState] = { sink, locked: false, closed: false, queue: Promise.resolve() };
      this[kState].queue = Promise.resolve(sink.start?.({ error: () => {} }));
    }
    get locked() { return this[kState].locked; }
    getWriter() {
      if (this[kState].locked) throw new TypeError("WritableStream is locked");
      return new WritableStreamDefaultWriter(this);
    }
    close() { const w = this.getWriter(); const p = w.close(); w.releaseLock(); return p; }
    abort(reason) { return Promise.resolve(this[kState].sink.abort?.(reason)); }
  }
  class WritableStreamDefaultWriter {
    #stream;
    constructor(stream) { stream[kState].locked = true; this.#stream = stream; }
    get desiredSize() { return 1; }
    get ready() { return Promise.resolve(); }
    get closed() { return this.#stream[kState].queue.then(() => undefined); }
    write(chunk) {
      const s = this.#stream[kState];
      if (s.closed) return Promise.reject(new TypeError("Cannot write to a closed stream"));
      s.queue = s.queue.then(() => s.sink.write?.(chunk, { error: () => {} }));
      return s.queue;
    }
    close() {
      const s = this.#stream[kState];
      s.closed = true;
      s.queue = s.queue.then(() => s.sink.close?.());
      return s.queue;
    }
    abort(reason) { return Promise.resolve(this.#stream[kState].sink.abort?.(reason)); }
    releaseLock() { if (this.#stream) this.#stream[kState].locked = false; }
  }

  class TransformStream {
    constructor(transformer = {}) {
      let readableController;
      this.readable = new ReadableStream({ start(c) { readableController = c; } });
      const controller = {
        enqueue: (chunk) => readableController.enqueue(chunk),
        error: (reason) => readableController.error(reason),
        terminate: () => readableController.close(),
        get desiredSize() { return readableController.desiredSize; },
      };
      const started = Promise.resolve(transformer.start?.(controller));
      this.writable = new WritableStream({
        write: async (chunk) => {
          await started;
          if (transformer.transform) await transformer.transform(chunk, controller);
          else controller.enqueue(chunk);
        },
        close: async () => {
          await started;
          await transformer.flush?.(controller);
          try { readableController.close(); } catch {}
        },
        abort: (reason) => readableController.error(reason),
      });
    }
  }
  class TextEncoderStream extends TransformStream {
    constructor() { const e = new TextEncoder(); super({ transform: (chunk, c) => c.enqueue(e.encode(chunk)) }); }
  }
  class TextDecoderStream extends TransformStream {
    constructor(label, options) {
      const d = new TextDecoder(label, options);
      super({
        transform: (chunk, c) => { const text = d.decode(chunk, { stream: true }); if (text) c.enqueue(text); },
        flush: (c) => { const text = d.decode(); if (text) c.enqueue(text); },
      });
    }
  }
  for (const [name, value] of Object.entries({
    ReadableStream, ReadableStreamDefaultReader, ReadableStreamDefaultController,
    WritableStream, WritableStreamDefaultWriter, TransformStream, TextEncoderStream, TextDecoderStream,
  })) internal.define(name, value);

  // A stream over chunks that come from `next()` (a native body, bytes already in memory).
  internal.streamFrom = (next, cancel) => new ReadableStream({
    async pull(c) {
      const chunk = await next();
      if (chunk === null) c.close(); else c.enqueue(chunk);
    },
    cancel,
  });
  // Everything a stream yields, as one Uint8Array.
  internal.readAll = async (stream) => {
    const reader = stream.getReader();
    const chunks = [];
    let total = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const bytes = typeof value === "string" ? new TextEncoder().encode(value) : internal.toBytes(value);
      chunks.push(bytes);
      total += bytes.length;
    }
    reader.releaseLock();
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  };
})
