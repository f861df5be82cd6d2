// Node's `stream` module, the part functions use: Readable (with from() and async
// iteration), Writable, Duplex, Transform, PassThrough, pipeline and finished, in objects
// and bytes. Everything lives in memory: there is no back-pressure to speak of.
(function (fnbox) {
  "use strict";
  const EventEmitter = fnbox.lib("events");
  const { Buffer } = fnbox.lib("buffer");
  const tick = (fn, ...args) => Promise.resolve().then(() => fn(...args));

  class Stream extends EventEmitter {
    pipe(destination, options) {
      this.on("data", (chunk) => destination.write(chunk));
      if (!options || options.end !== false) this.on("end", () => destination.end());
      this.on("error", (e) => destination.destroy(e));
      if (typeof this.resume === "function") this.resume();
      return destination;
    }
  }

  function toChunk(stream, chunk, encoding) {
    if (stream._objectMode || chunk === null) return chunk;
    if (typeof chunk === "string") return stream._decodeStrings === false ? chunk : Buffer.from(chunk, encoding);
    if (chunk instanceof Uint8Array && !Buffer.isBuffer(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    return chunk;
  }

  class Readable extends Stream {
    constructor(options = {}) {
      super();
      this._objectMode = !!(options.objectMode || options.readableObjectMode);
      this._buffer = [];
      this._flowing = null;
      this._ended = false;
      this._endEmitted = false;
      this._reading = false;
      this._encoding = options.encoding || null;
      this.destroyed = false;
      this.readable = true;
      if (typeof options.read === "function") this._read = options.read;
      if (typeof options.destroy === "function") this._destroy = options.destroy;
    }
    get readableObjectMode() {
      return this._objectMode;
    }
    get readableEnded() {
      return this._endEmitted;
    }
    get readableLength() {
      return this._buffer.length;
    }
    _read() {}
    push(chunk, encoding) {
      if (chunk === null) {
        this._ended = true;
        this._flush();
        return false;
      }
      let c = toChunk(this, chunk, encoding);
      if (this._encoding && !this._objectMode && Buffer.isBuffer(c)) c = c.toString(this._encoding);
      this._buffer.push(c);
      this._flush();
      return true;
    }
    unshift(chunk) {
      this._buffer.unshift(chunk);
    }
    setEncoding(encoding) {
      this._encoding = encoding;
      return this;
    }
    read() {
      if (this._buffer.length === 0) {
        this._pull();
        return null;
      }
      const c = this._buffer.shift();
      this._flush();
      return c;
    }
    on(event, listener) {
      super.on(event, listener);
      if (event === "data" && this._flowing !== false) this.resume();
      if (event === "readable") tick(() => this._flush());
      return this;
    }
    resume() {
      this._flowing = true;
      tick(() => this._flush());
      return this;
    }
    pause() {
      this._flowing = false;
      return this;
    }
    isPaused() {
      return this._flowing === false;
    }
    _pull() {
      if (this._ended || this._reading || this.destroyed) return;
      this._reading = true;
      try {
        this._read(16384);
      } catch (e) {
        this.destroy(e);
      }
      this._reading = false;
    }
    _flush() {
      if (this.destroyed) return;
      if (this._flowing) {
        while (this._buffer.length && this._flowing) this.emit("data", this._buffer.shift());
        if (!this._ended && this._buffer.length === 0) tick(() => this._pull());
      } else if (this._buffer.length && this.listenerCount("readable")) {
        this.emit("readable");
      }
      if (this._ended && this._buffer.length === 0 && !this._endEmitted) {
        this._endEmitted = true;
        tick(() => {
          this.readable = false;
          this.emit("end");
          this.emit("close");
        });
      }
    }
    destroy(error) {
      if (this.destroyed) return this;
      this.destroyed = true;
      const done = (e) => {
        if (e) this.emit("error", e);
        this.emit("close");
      };
      if (typeof this._destroy === "function") this._destroy(error || null, (e) => tick(done, e));
      else tick(done, error);
      return this;
    }
    [Symbol.asyncIterator]() {
      const stream = this;
      const queue = [];
      let waiting = null;
      let finished = false;
      let failure = null;
      stream.on("data", (c) => (waiting ? (waiting.resolve({ value: c, done: false }), (waiting = null)) : queue.push(c)));
      stream.on("end", () => {
        finished = true;
        if (waiting) waiting.resolve({ value: undefined, done: true });
      });
      stream.on("error", (e) => {
        failure = e;
        if (waiting) waiting.reject(e);
      });
      return {
        next() {
          if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
          if (failure) return Promise.reject(failure);
          if (finished) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve, reject) => (waiting = { resolve, reject }));
        },
        return() {
          stream.destroy();
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    }
    async toArray() {
      const out = [];
      for await (const c of this) out.push(c);
      return out;
    }
    static from(iterable, options = {}) {
      if (typeof iterable === "string" || iterable instanceof Uint8Array) {
        const r = new Readable({ objectMode: false, ...options });
        r.push(iterable);
        r.push(null);
        return r;
      }
      const r = new Readable({ objectMode: true, ...options });
      const iterator = iterable[Symbol.asyncIterator] ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      let busy = false;
      r._read = function () {
        if (busy) return;
        busy = true;
        Promise.resolve(iterator.next()).then(
          ({ value, done }) => {
            busy = false;
            if (done) r.push(null);
            else Promise.resolve(value).then((v) => r.push(v), (e) => r.destroy(e));
          },
          (e) => r.destroy(e),
        );
      };
      return r;
    }
  }

  class Writable extends Stream {
    constructor(options = {}) {
      super();
      this._objectMode = !!(options.objectMode || options.writableObjectMode);
      this._decodeStrings = options.decodeStrings !== false;
      this.writable = true;
      this.destroyed = false;
      this._ending = false;
      this._finished = false;
      this._queue = [];
      this._writing = false;
      if (typeof options.write === "function") this._write = options.write;
      if (typeof options.final === "function") this._final = options.final;
      if (typeof options.destroy === "function") this._destroy = options.destroy;
    }
    get writableEnded() {
      return this._ending;
    }
    get writableFinished() {
      return this._finished;
    }
    _write(chunk, encoding, callback) {
      callback();
    }
    write(chunk, encoding, callback) {
      if (typeof encoding === "function") {
        callback = encoding;
        encoding = undefined;
      }
      if (this._ending) {
        const e = new Error("write after end");
        e.code = "ERR_STREAM_WRITE_AFTER_END";
        tick(() => this.emit("error", e));
        return false;
      }
      this._queue.push([toChunk(this, chunk, encoding), encoding || "buffer", callback]);
      this._drain();
      return true;
    }
    _drain() {
      if (this._writing || this.destroyed) return;
      const next = this._queue.shift();
      if (next === undefined) {
        if (this._ending && !this._finished) this._finish();
        return;
      }
      this._writing = true;
      const [chunk, encoding, callback] = next;
      let called = false;
      const done = (error) => {
        if (called) return;
        called = true;
        this._writing = false;
        if (callback) callback(error || null);
        if (error) {
          this.destroy(error);
          return;
        }
        tick(() => this._drain());
      };
      try {
        this._write(chunk, Buffer.isBuffer(chunk) ? "buffer" : encoding, done);
      } catch (e) {
        done(e);
      }
    }
    _finish() {
      this._finished = true;
      const end = (error) => {
        if (error) {
          this.destroy(error);
          return;
        }
        this.writable = false;
        this.emit("finish");
        this.emit("close");
      };
      if (typeof this._final === "function") this._final((e) => tick(end, e));
      else tick(end);
    }
    end(chunk, encoding, callback) {
      if (typeof chunk === "function") {
        callback = chunk;
        chunk = null;
      } else if (typeof encoding === "function") {
        callback = encoding;
        encoding = undefined;
      }
      if (chunk !== null && chunk !== undefined) this.write(chunk, encoding);
      if (callback) this.once("finish", callback);
      if (!this._ending) {
        this._ending = true;
        this._drain();
      }
      return this;
    }
    destroy(error) {
      if (this.destroyed) return this;
      this.destroyed = true;
      tick(() => {
        if (error) this.emit("error", error);
        this.emit("close");
      });
      return this;
    }
    cork() {}
    uncork() {}
  }

  class Duplex extends Readable {
    constructor(options = {}) {
      super(options);
      const w = new Writable({ ...options, objectMode: options.objectMode || options.writableObjectMode });
      this._writer = w;
      w._write = (chunk, encoding, callback) => this._write(chunk, encoding, callback);
      w._final = (callback) => (typeof this._final === "function" ? this._final(callback) : callback());
      w.on("finish", () => this.emit("finish"));
      w.on("error", (e) => this.emit("error", e));
      if (typeof options.write === "function") this._write = options.write;
      if (typeof options.final === "function") this._final = options.final;
      this.writable = true;
    }
    write(chunk, encoding, callback) {
      return this._writer.write(chunk, encoding, callback);
    }
    end(chunk, encoding, callback) {
      this._writer.end(chunk, encoding, callback);
      return this;
    }
    get writableEnded() {
      return this._writer._ending;
    }
    get writableFinished() {
      return this._writer._finished;
    }
  }

  class Transform extends Duplex {
    constructor(options = {}) {
      super(options);
      if (typeof options.transform === "function") this._transform = options.transform;
      if (typeof options.flush === "function") this._flushTransform = options.flush;
    }
    _transform(chunk, encoding, callback) {
      callback(null, chunk);
    }
    _write(chunk, encoding, callback) {
      this._transform(chunk, encoding, (error, data) => {
        if (error) {
          callback(error);
          return;
        }
        if (data !== undefined && data !== null) this.push(data);
        callback();
      });
    }
    _final(callback) {
      const end = (error, data) => {
        if (error) {
          callback(error);
          return;
        }
        if (data !== undefined && data !== null) this.push(data);
        this.push(null);
        callback();
      };
      if (typeof this._flushTransform === "function") this._flushTransform(end);
      else end();
    }
  }

  class PassThrough extends Transform {}

  function finished(stream, options, callback) {
    if (typeof options === "function") callback = options;
    let done = false;
    const once = (error) => {
      if (done) return;
      done = true;
      callback(error || undefined);
    };
    stream.on("end", () => once());
    stream.on("finish", () => once());
    stream.on("error", (e) => once(e));
    return () => {};
  }

  function pipeline(...streams) {
    const callback = typeof streams[streams.length - 1] === "function" ? streams.pop() : null;
    if (streams.length === 1 && Array.isArray(streams[0])) streams = streams[0];
    const promise = pipelinePromise(streams);
    if (callback) promise.then(() => callback(), (e) => callback(e));
    return streams[streams.length - 1];
  }

  function pipelinePromise(streams) {
    return new Promise((resolve, reject) => {
      let source = streams[0];
      if (!(source instanceof Stream)) source = Readable.from(source);
      let current = source;
      const all = [source];
      for (let i = 1; i < streams.length; i++) {
        const next = streams[i];
        if (typeof next === "function") {
          const produced = next(current);
          current = produced instanceof Stream ? produced : Readable.from(produced);
          all.push(current);
          if (i === streams.length - 1) {
            current.on("error", reject);
            if (current instanceof Readable) current.on("end", () => resolve());
            else current.on("finish", () => resolve());
            if (!(produced instanceof Stream)) Promise.resolve(produced).then(resolve, reject);
            return;
          }
          continue;
        }
        current.pipe(next);
        current = next;
        all.push(next);
      }
      for (const s of all) s.on("error", reject);
      if (current instanceof Writable || current instanceof Duplex) {
        current.on("finish", () => resolve());
        if (current instanceof Readable && !(current instanceof Duplex)) current.on("end", () => resolve());
      } else current.on("end", () => resolve());
    });
  }

  const promises = {
    pipeline: (...streams) => pipelinePromise(streams.length === 1 && Array.isArray(streams[0]) ? streams[0] : streams),
    finished: (stream) => new Promise((resolve, reject) => finished(stream, (e) => (e ? reject(e) : resolve()))),
  };

  Stream.Stream = Stream;
  Stream.Readable = Readable;
  Stream.Writable = Writable;
  Stream.Duplex = Duplex;
  Stream.Transform = Transform;
  Stream.PassThrough = PassThrough;
  Stream.pipeline = pipeline;
  Stream.finished = finished;
  Stream.promises = promises;
  return Stream;
});
