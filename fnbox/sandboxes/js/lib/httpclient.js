// Node's `http` and `https` clients (each a `module(name)`) over the run's guarded outbound client (see fetch.js
// and hostnet.py): request() and get() with the callback and event surface code written
// for Node uses (axios's node adapter among it): a ClientRequest to write the body to and
// end, 'response' with an IncomingMessage streaming the answer, 'error', 'timeout',
// setTimeout, abort/destroy, AbortSignal. No server and no sockets: `createServer` says why.
(function (fnbox) {
  "use strict";
  const EventEmitter = fnbox.lib("events");
  const { Readable, Writable } = fnbox.lib("stream");
  const { Buffer } = fnbox.lib("buffer");
  const { URL } = fnbox.lib("url");
  const { transport, readPiece } = fnbox.lib("fetch");
  const STATUS_CODES = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 413: "Payload Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
  const tick = (fn, ...args) => Promise.resolve().then(() => fn(...args));

  function error(message, code) {
    const e = new Error(message);
    e.code = code;
    return e;
  }

  class Agent extends EventEmitter {
    constructor(options) {
      super();
      this.options = options || {};
      this.keepAlive = !!this.options.keepAlive;
      this.maxSockets = this.options.maxSockets || Infinity;
    }
    destroy() {}
  }

  // A socket's surface without a socket: what callers of `req.on('socket')` touch.
  class FakeSocket extends EventEmitter {
    setKeepAlive() {
      return this;
    }
    setNoDelay() {
      return this;
    }
    setTimeout() {
      return this;
    }
    ref() {
      return this;
    }
    unref() {
      return this;
    }
    destroy() {
      return this;
    }
    get remoteAddress() {
      return undefined;
    }
  }

  class IncomingMessage extends Readable {
    constructor(answer, req) {
      super();
      this.statusCode = answer.status;
      this.statusMessage = answer.statusText || STATUS_CODES[answer.status] || "";
      this.httpVersion = "1.1";
      this.httpVersionMajor = 1;
      this.httpVersionMinor = 1;
      this.headers = {};
      this.rawHeaders = [];
      for (const [name, value] of answer.headers) {
        const key = name.toLowerCase();
        this.rawHeaders.push(name, value);
        if (key === "set-cookie") (this.headers[key] = this.headers[key] || []).push(value);
        else this.headers[key] = key in this.headers ? this.headers[key] + ", " + value : value;
      }
      this.trailers = {};
      this.url = "";
      this.method = null;
      this.complete = false;
      this.aborted = false;
      this.req = req;
      this.socket = req.socket;
      this.responseUrl = answer.url;
      this._id = answer.id;
      this._size = answer.size;
      this._offset = 0;
    }
    _read() {
      if (this.destroyed) return;
      let piece;
      try {
        piece = readPiece(this._id, this._offset, this._size);
      } catch (e) {
        this.destroy(e);
        return;
      }
      this._offset += piece.length;
      if (piece.length === 0) {
        this.complete = true;
        this.push(null);
      } else {
        this.push(Buffer.from(piece.buffer, piece.byteOffset, piece.length));
      }
    }
    _destroy(err, callback) {
      if (this._offset < this._size) {
        try {
          readPiece(this._id, this._size, this._size);
        } catch (_) {}
        this._offset = this._size;
      }
      callback(err);
    }
    setTimeout(ms, callback) {
      if (callback) this.once("timeout", callback);
      return this;
    }
  }

  function options(defaultProtocol, args) {
    let url = null;
    let opts = {};
    let callback;
    let i = 0;
    if (typeof args[i] === "string" || args[i] instanceof URL) url = new URL("" + args[i++]);
    if (args[i] !== null && typeof args[i] === "object") opts = args[i++];
    if (typeof args[i] === "function") callback = args[i];
    const protocol = opts.protocol || (url ? url.protocol : defaultProtocol);
    if (protocol !== "http:" && protocol !== "https:") {
      throw error('Protocol "' + protocol + '" not supported. Expected "' + defaultProtocol + '"', "ERR_INVALID_PROTOCOL");
    }
    let hostname = opts.hostname || (opts.host ? ("" + opts.host).replace(/:\d+$/, "") : url ? url.hostname : "localhost");
    if (hostname.includes(":") && !hostname.startsWith("[")) hostname = "[" + hostname + "]";
    const port = opts.port || (url && url.port) || "";
    const path = opts.path || (url ? url.pathname + url.search : "/");
    if (/[\u0000-\u0020]/.test(path)) throw error("Request path contains unescaped characters", "ERR_UNESCAPED_CHARACTERS");
    const target = protocol + "//" + hostname + (port ? ":" + port : "") + (path.startsWith("/") ? path : "/" + path);
    const headers = [];
    const given = opts.headers || {};
    if (Array.isArray(given)) {
      for (let k = 0; k + 1 < given.length; k += 2) headers.push(["" + given[k], "" + given[k + 1]]);
    } else {
      for (const name of Object.keys(given)) {
        const value = given[name];
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) headers.push([name, "" + v]);
        else headers.push([name, "" + value]);
      }
    }
    const auth = opts.auth || (url && url.username ? decodeURIComponent(url.username) + ":" + decodeURIComponent(url.password) : null);
    if (auth) headers.push(["Authorization", "Basic " + Buffer.from(auth).toString("base64")]);
    return {
      url: target,
      method: ("" + (opts.method || "GET")).toUpperCase(),
      headers,
      timeout: opts.timeout,
      signal: opts.signal,
      callback,
    };
  }

  class ClientRequest extends Writable {
    constructor(spec) {
      super();
      this.method = spec.method;
      const url = new URL(spec.url);
      this.path = url.pathname + url.search;
      this.host = url.hostname;
      this.protocol = url.protocol;
      this._url = spec.url;
      this._headers = new Map(); // lower name -> [name, value]
      for (const [name, value] of spec.headers) this.setHeader(name, value);
      this._chunks = [];
      this._signal = spec.signal;
      this._timeout = spec.timeout;
      this._timer = null;
      this.aborted = false;
      this.finished = false;
      this.headersSent = false;
      this.reusedSocket = false;
      this.socket = new FakeSocket();
      this.connection = this.socket;
      this._controller = null;
      if (spec.callback) this.once("response", spec.callback);
      tick(() => this.emit("socket", this.socket));
      if (spec.timeout) this.setTimeout(spec.timeout);
    }
    setHeader(name, value) {
      if (this.headersSent) throw error("Cannot set headers after they are sent to the client", "ERR_HTTP_HEADERS_SENT");
      const s = Array.isArray(value) ? value.map(String).join(", ") : "" + value;
      if (/[\r\n\0]/.test(s)) throw error('Invalid character in header content ["' + name + '"]', "ERR_INVALID_CHAR");
      this._headers.set(("" + name).toLowerCase(), ["" + name, s]);
      return this;
    }
    getHeader(name) {
      const found = this._headers.get(("" + name).toLowerCase());
      return found ? found[1] : undefined;
    }
    getHeaders() {
      const out = {};
      for (const [key, [, value]] of this._headers) out[key] = value;
      return out;
    }
    getHeaderNames() {
      return [...this._headers.keys()];
    }
    hasHeader(name) {
      return this._headers.has(("" + name).toLowerCase());
    }
    removeHeader(name) {
      this._headers.delete(("" + name).toLowerCase());
    }
    flushHeaders() {}
    setNoDelay() {}
    setSocketKeepAlive() {}
    setTimeout(ms, callback) {
      if (callback) this.once("timeout", callback);
      if (this._timer !== null) clearTimeout(this._timer);
      this._timer = ms > 0 ? setTimeout(() => this.emit("timeout"), ms) : null;
      return this;
    }
    _write(chunk, encoding, callback) {
      this._chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
      callback();
    }
    end(data, encoding, callback) {
      if (typeof data === "function") [callback, data] = [data, undefined];
      if (typeof encoding === "function") [callback, encoding] = [encoding, undefined];
      if (this.finished) return this;
      if (data !== undefined && data !== null) this._chunks.push(Buffer.isBuffer(data) ? data : Buffer.from(data, encoding));
      this.finished = true;
      this.headersSent = true;
      if (callback) this.once("finish", callback);
      tick(() => this.emit("finish"));
      this._send();
      return this;
    }
    abort() {
      if (this.aborted) return;
      this.aborted = true;
      this.destroy();
      tick(() => this.emit("abort"));
    }
    destroy(err) {
      if (this.destroyed) return this;
      this.destroyed = true;
      if (this._timer !== null) clearTimeout(this._timer);
      if (this._controller !== null) this._controller.abort(err || error("socket hang up", "ECONNRESET"));
      if (err) tick(() => this.emit("error", err));
      tick(() => this.emit("close"));
      return this;
    }
    async _send() {
      const body = this._chunks.length ? Buffer.concat(this._chunks) : null;
      const { AbortController } = fnbox.lib("web");
      this._controller = new AbortController();
      const signal = this._controller.signal;
      if (this._signal) {
        if (this._signal.aborted) this._controller.abort(this._signal.reason);
        else this._signal.addEventListener("abort", () => this._controller.abort(this._signal.reason), { once: true });
      }
      let answer;
      try {
        const pairs = [...this._headers.values()];
        answer = await transport(this.method, this._url, pairs, body && new Uint8Array(body.buffer, body.byteOffset, body.length), "manual", undefined, signal);
      } catch (e) {
        if (this._timer !== null) clearTimeout(this._timer);
        if (this.destroyed && !this._signal) return; // destroyed by its caller, who said why
        const reason = this._signal && this._signal.aborted ? abortError(this._signal.reason) : e;
        this.destroyed = true;
        this.emit("error", reason);
        this.emit("close");
        return;
      }
      if (this._timer !== null) clearTimeout(this._timer);
      const res = new IncomingMessage(answer, this);
      this.res = res;
      if (this.listenerCount("response") === 0) {
        res.resume(); // nobody reads it: drain it, as Node does
      }
      this.emit("response", res);
    }
  }

  function abortError(reason) {
    const e = error("The operation was aborted", "ABORT_ERR");
    e.name = "AbortError";
    e.cause = reason;
    return e;
  }

  function module(name) {
    const protocol = name + ":";
    function request(...args) {
      return new ClientRequest(options(protocol, args));
    }
    function get(...args) {
      const req = request(...args);
      req.end();
      return req;
    }
    return {
      Agent,
      globalAgent: new Agent(),
      ClientRequest,
      IncomingMessage,
      STATUS_CODES,
      METHODS,
      request,
      get,
      maxHeaderSize: 16384,
      validateHeaderName(n) {
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test("" + n)) throw error("Header name must be a valid HTTP token [\"" + n + "\"]", "ERR_INVALID_HTTP_TOKEN");
      },
      validateHeaderValue(n, v) {
        if (/[\r\n\0]/.test("" + v)) throw error('Invalid character in header content ["' + n + '"]', "ERR_INVALID_CHAR");
      },
      createServer: () => {
        throw new Error(name + ".createServer is not available in fnbox: a function answers through its return value");
      },
    };
  }

  return module;
});
