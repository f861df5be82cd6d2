// WHATWG fetch and its classes (Headers, Request, Response, FormData, File), over the
// run's guarded outbound client in Python (see hostnet.py): a request starts with a host
// call that answers at once, the run awaits a promise that Python settles by posting
// `$fnbox.arrived(id)`, and the body is read in pieces as it is consumed. Every request
// is checked in Python against the egress policy and the run's caps; the log line Python
// makes for it goes into the run's logs at level debug. `transport` is what http/https use.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");
  const web = fnbox.lib("web");
  const { URL, URLSearchParams } = fnbox.lib("url");
  const { Blob, DOMException } = web;

  // ---- asynchronous host calls ----------------------------------------------------
  const waiting = new Map(); // call id -> check()
  fnbox.onArrival((id) => {
    const check = waiting.get(id);
    if (check !== undefined) check();
  });

  // The answer of call `id` (op: fetchTake or lookupTake), when Python has it.
  function answerOf(id, op, signal) {
    return new Promise((resolve, reject) => {
      let onAbort = null;
      const done = () => {
        waiting.delete(id);
        if (onAbort !== null) signal.removeEventListener("abort", onAbort);
      };
      const check = () => {
        let answer;
        try {
          answer = fnbox.host(op, [id]);
        } catch (error) {
          done();
          reject(error);
          return;
        }
        if (answer === null) return; // still on its way
        done();
        for (const line of answer.logs || []) fnbox.log("debug", line);
        resolve(answer);
      };
      waiting.set(id, check);
      if (signal) {
        onAbort = () => {
          done();
          try {
            fnbox.host("fetchDrop", [id]);
          } catch (_) {}
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort);
      }
      check();
    });
  }

  // Headers the client sets itself (framing, the connection, the host the policy checked):
  // left out of what a function asks for, as a browser leaves them out.
  const CLIENT_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"]);

  const PIECE = 1 << 20; // bytes of a request body one host call carries

  // Sends one request; answers {status, statusText, headers, url, redirected, size, id}.
  async function transport(method, url, pairs, body, redirect, timeout, signal) {
    if (signal && signal.aborted) throw signal.reason;
    const sent = [];
    for (const [name, value] of pairs) if (!CLIENT_HEADERS.has(name.toLowerCase())) sent.push([name, value]);
    let encoded = "";
    if (body && body.length > PIECE) {
      // Too big for one host call: sent in pieces first, then named by its stage id.
      encoded = 0;
      for (let at = 0; at < body.length; at += PIECE) {
        encoded = fnbox.host("fetchBody", [encoded, codec.base64Encode(body, at, Math.min(at + PIECE, body.length), false)]);
      }
    } else if (body && body.length) {
      encoded = codec.base64Encode(body, 0, body.length, false);
    }
    const id = fnbox.host("fetchStart", [method, url, sent, encoded, redirect, timeout === undefined ? null : timeout]);
    const answer = await answerOf(id, "fetchTake", signal);
    if (answer.error !== undefined) {
      try {
        fnbox.host("fetchDrop", [id]);
      } catch (_) {}
      const cause = new Error(answer.error);
      cause.code = { timeout: "ETIMEDOUT", refused: "ERR_FNBOX_EGRESS", redirect: "ERR_FR_TOO_MANY_REDIRECTS", network: "ECONNREFUSED" }[answer.kind] || "ERR_INVALID_ARG_VALUE";
      throw cause;
    }
    answer.id = id;
    return answer;
  }

  // The next piece of a response's body (empty at its end), and the body dropped after it.
  function readPiece(id, offset, size) {
    if (offset >= size) {
      try {
        fnbox.host("fetchDrop", [id]);
      } catch (_) {}
      return new Uint8Array(0);
    }
    const piece = codec.base64Bytes(fnbox.host("fetchRead", [id, offset]));
    if (offset + piece.length >= size) {
      try {
        fnbox.host("fetchDrop", [id]);
      } catch (_) {}
    }
    return piece;
  }

  function lookup(hostname, signal) {
    const id = fnbox.host("lookup", [hostname]);
    return answerOf(id, "lookupTake", signal).then((answer) => {
      try {
        fnbox.host("fetchDrop", [id]);
      } catch (_) {}
      if (answer.error !== undefined) {
        const error = new Error("getaddrinfo ENOTFOUND " + hostname + ": " + answer.error);
        error.code = answer.kind === "refused" ? "ERR_FNBOX_EGRESS" : "ENOTFOUND";
        error.hostname = hostname;
        throw error;
      }
      return answer;
    });
  }

  // ---- Headers ----------------------------------------------------------------------
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  function headerName(name) {
    const s = "" + name;
    if (!TOKEN.test(s)) throw new TypeError("Headers: invalid header name " + JSON.stringify(s));
    return s;
  }
  function headerValue(value) {
    const s = ("" + value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(s)) throw new TypeError("Headers: invalid header value " + JSON.stringify(s));
    return s;
  }

  class Headers {
    #list = []; // [lower name, value], in order
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        for (const [name, value] of init) this.append(name, value);
      } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const entry = Array.from(pair);
          if (entry.length !== 2) throw new TypeError("Headers: each header is a [name, value] pair");
          this.append(entry[0], entry[1]);
        }
      } else if (typeof init === "object") {
        for (const name of Object.keys(init)) this.append(name, init[name]);
      } else {
        throw new TypeError("Headers: init must be an object, pairs or Headers");
      }
    }
    append(name, value) {
      const key = headerName(name).toLowerCase();
      const v = headerValue(value);
      const found = this.#list.find((e) => e[0] === key);
      if (found && key !== "set-cookie") found[1] += ", " + v;
      else this.#list.push([key, v]);
    }
    set(name, value) {
      const key = headerName(name).toLowerCase();
      const v = headerValue(value);
      this.#list = this.#list.filter((e) => e[0] !== key);
      this.#list.push([key, v]);
    }
    get(name) {
      const key = headerName(name).toLowerCase();
      const values = this.#list.filter((e) => e[0] === key).map((e) => e[1]);
      return values.length ? values.join(", ") : null;
    }
    getSetCookie() {
      return this.#list.filter((e) => e[0] === "set-cookie").map((e) => e[1]);
    }
    has(name) {
      const key = headerName(name).toLowerCase();
      return this.#list.some((e) => e[0] === key);
    }
    delete(name) {
      const key = headerName(name).toLowerCase();
      this.#list = this.#list.filter((e) => e[0] !== key);
    }
    forEach(callback, thisArg) {
      for (const [name, value] of this) callback.call(thisArg, value, name, this);
    }
    *entries() {
      const sorted = this.#list.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [name, value] of sorted) yield [name, value];
    }
    *keys() {
      for (const [name] of this.entries()) yield name;
    }
    *values() {
      for (const [, value] of this.entries()) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    get [Symbol.toStringTag]() {
      return "Headers";
    }
  }

  // ---- FormData and File --------------------------------------------------------------
  class File extends Blob {
    #name;
    #lastModified;
    constructor(bits, name, options = {}) {
      super(bits, options);
      this.#name = "" + name;
      this.#lastModified = options.lastModified === undefined ? Date.now() : +options.lastModified;
    }
    get name() {
      return this.#name;
    }
    get lastModified() {
      return this.#lastModified;
    }
  }

  class FormData {
    #entries = [];
    #entry(name, value, filename) {
      if (value instanceof Blob) {
        const file = value instanceof File && filename === undefined ? value : new File([value], filename === undefined ? "blob" : filename, { type: value.type });
        return ["" + name, file];
      }
      return ["" + name, "" + value];
    }
    append(name, value, filename) {
      this.#entries.push(this.#entry(name, value, filename));
    }
    set(name, value, filename) {
      const entry = this.#entry(name, value, filename);
      const at = this.#entries.findIndex((e) => e[0] === entry[0]);
      this.#entries = this.#entries.filter((e, i) => e[0] !== entry[0] || i === at);
      if (at < 0) this.#entries.push(entry);
      else this.#entries[this.#entries.findIndex((e) => e[0] === entry[0])] = entry;
    }
    get(name) {
      const found = this.#entries.find((e) => e[0] === "" + name);
      return found ? found[1] : null;
    }
    getAll(name) {
      return this.#entries.filter((e) => e[0] === "" + name).map((e) => e[1]);
    }
    has(name) {
      return this.#entries.some((e) => e[0] === "" + name);
    }
    delete(name) {
      this.#entries = this.#entries.filter((e) => e[0] !== "" + name);
    }
    forEach(callback, thisArg) {
      for (const [name, value] of this.#entries) callback.call(thisArg, value, name, this);
    }
    *entries() {
      yield* this.#entries.map((e) => [e[0], e[1]]);
    }
    *keys() {
      for (const [name] of this.#entries) yield name;
    }
    *values() {
      for (const [, value] of this.#entries) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    get [Symbol.toStringTag]() {
      return "FormData";
    }
  }

  async function multipart(form) {
    const boundary = "----fnboxFormBoundary" + Math.random().toString(36).slice(2) + Date.now().toString(36);
    const parts = [];
    const escape = (s) => s.replace(/\r/g, "%0D").replace(/\n/g, "%0A").replace(/"/g, "%22");
    for (const [name, value] of form) {
      if (typeof value === "string") {
        parts.push(codec.utf8Encode("--" + boundary + '\r\nContent-Disposition: form-data; name="' + escape(name) + '"\r\n\r\n' + value + "\r\n"));
      } else {
        const head = "--" + boundary + '\r\nContent-Disposition: form-data; name="' + escape(name) + '"; filename="' + escape(value.name) + '"\r\nContent-Type: ' + (value.type || "application/octet-stream") + "\r\n\r\n";
        parts.push(codec.utf8Encode(head), new Uint8Array(await value.arrayBuffer()), codec.utf8Encode("\r\n"));
      }
    }
    parts.push(codec.utf8Encode("--" + boundary + "--\r\n"));
    return { bytes: concat(parts), type: "multipart/form-data; boundary=" + boundary };
  }

  function concat(parts) {
    let total = 0;
    for (const p of parts) total += p.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  // ---- bodies ---------------------------------------------------------------------------
  // What a body init is, and its Content-Type: [source, type] (the bytes are made when read).
  function extract(init) {
    if (init === null || init === undefined) return [null, null];
    if (typeof init === "string") return [codec.utf8Encode(init), "text/plain;charset=UTF-8"];
    if (init instanceof URLSearchParams) return [codec.utf8Encode(init.toString()), "application/x-www-form-urlencoded;charset=UTF-8"];
    if (init instanceof Blob) return [init, init.type || null];
    if (init instanceof FormData) return [init, null];
    if (init instanceof ArrayBuffer) return [new Uint8Array(init.slice(0)), null];
    if (ArrayBuffer.isView(init)) return [new Uint8Array(init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength)), null];
    if (init instanceof Stream) return [init, null];
    if (typeof init === "object" && typeof init[Symbol.asyncIterator] === "function") return [init, null];
    return [codec.utf8Encode("" + init), "text/plain;charset=UTF-8"];
  }
  class Stream {} // the type of a response's `body`

  // A body's bytes, whatever its source; FormData answers its multipart type too.
  async function bytesOf(source) {
    if (source === null) return { bytes: null, type: null };
    if (source instanceof Uint8Array) return { bytes: source, type: null };
    if (source instanceof Blob) return { bytes: new Uint8Array(await source.arrayBuffer()), type: null };
    if (source instanceof FormData) return multipart(source);
    const chunks = [];
    for await (const chunk of source) chunks.push(typeof chunk === "string" ? codec.utf8Encode(chunk) : new Uint8Array(chunk));
    return { bytes: concat(chunks), type: null };
  }

  // A response's body, read from Python piece by piece: a ReadableStream's reader and async iteration.
  class RemoteBody extends Stream {
    #id;
    #size;
    #offset = 0;
    #locked = false;
    constructor(id, size) {
      super();
      this.#id = id;
      this.#size = size;
    }
    get locked() {
      return this.#locked;
    }
    next() {
      const piece = readPiece(this.#id, this.#offset, this.#size);
      this.#offset += piece.length;
      return piece.length ? { done: false, value: piece } : { done: true, value: undefined };
    }
    all() {
      const parts = [];
      for (let step = this.next(); !step.done; step = this.next()) parts.push(step.value);
      return parts.length === 1 ? parts[0] : concat(parts);
    }
    cancel() {
      this.#offset = this.#size;
      readPiece(this.#id, this.#size, this.#size);
      return Promise.resolve();
    }
    getReader() {
      if (this.#locked) throw new TypeError("ReadableStream is locked to a reader");
      this.#locked = true;
      return {
        read: () => Promise.resolve(this.next()),
        cancel: () => this.cancel(),
        releaseLock: () => {
          this.#locked = false;
        },
        closed: Promise.resolve(undefined),
      };
    }
    [Symbol.asyncIterator]() {
      return { next: () => Promise.resolve(this.next()), return: () => this.cancel().then(() => ({ done: true, value: undefined })) };
    }
  }

  class Body {
    #source;
    #used = false;
    constructor(source) {
      this.#source = source;
    }
    get body() {
      if (this.#source === null) return null;
      if (this.#source instanceof RemoteBody) return this.#source;
      return null;
    }
    get bodyUsed() {
      return this.#used;
    }
    async #consume() {
      if (this.#used) throw new TypeError("Body is unusable: Body has already been read");
      this.#used = true;
      const source = this.#source;
      if (source instanceof RemoteBody) {
        if (source.locked) throw new TypeError("Body is unusable: its stream is locked");
        return source.all();
      }
      const { bytes } = await bytesOf(source);
      return bytes === null ? new Uint8Array(0) : bytes;
    }
    async arrayBuffer() {
      const bytes = await this.#consume();
      return bytes.buffer.byteLength === bytes.length ? bytes.buffer : bytes.slice().buffer;
    }
    async bytes() {
      return this.#consume();
    }
    async text() {
      const bytes = await this.#consume();
      return codec.utf8Decode(bytes, 0, bytes.length, false, false);
    }
    async json() {
      return JSON.parse(await this.text());
    }
    async blob() {
      const bytes = await this.#consume();
      return new Blob([bytes], { type: this.headers.get("content-type") || "" });
    }
    async formData() {
      const type = this.headers.get("content-type") || "";
      if (!/application\/x-www-form-urlencoded/i.test(type)) throw new TypeError("formData(): only urlencoded bodies are read in fnbox");
      const form = new FormData();
      for (const [name, value] of new URLSearchParams(await this.text())) form.append(name, value);
      return form;
    }
    _source() {
      return this.#source;
    }
    _replace(source) {
      this.#source = source;
    }
    _take() {
      if (this.#used) throw new TypeError("Body is unusable: Body has already been read");
      if (this.#source !== null) this.#used = true;
      return this.#source;
    }
  }

  // ---- Request ---------------------------------------------------------------------------
  const METHODS = { delete: "DELETE", get: "GET", head: "HEAD", options: "OPTIONS", post: "POST", put: "PUT", patch: "PATCH" };
  const REDIRECTS = ["follow", "manual", "error"];

  class Request extends Body {
    #url;
    #method;
    #headers;
    #signal;
    #redirect;
    constructor(input, init = {}) {
      const base = input instanceof Request ? input : null;
      let source = base !== null ? base._source() : null;
      init = init === null || init === undefined ? {} : init;
      let type = null;
      if (init.body !== undefined && init.body !== null) [source, type] = extract(init.body);
      super(source);
      let url;
      try {
        url = new URL(base !== null ? base.url : "" + input);
      } catch (_) {
        throw new TypeError("Failed to parse URL from " + (base !== null ? base.url : "" + input));
      }
      if (url.username || url.password) throw new TypeError("Request cannot be constructed from a URL that includes credentials: " + url.href);
      this.#url = url.href;
      const method = init.method !== undefined ? "" + init.method : base !== null ? base.method : "GET";
      if (!TOKEN.test(method)) throw new TypeError("'" + method + "' is not a valid HTTP method.");
      this.#method = METHODS[method.toLowerCase()] || method;
      if (/^(CONNECT|TRACE|TRACK)$/i.test(this.#method)) throw new TypeError("'" + method + "' HTTP method is unsupported.");
      if ((this.#method === "GET" || this.#method === "HEAD") && source !== null) throw new TypeError("Request with GET/HEAD method cannot have body.");
      this.#headers = new Headers(init.headers !== undefined ? init.headers : base !== null ? base.headers : undefined);
      if (type !== null && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      this.#signal = init.signal !== undefined ? init.signal : base !== null ? base.signal : null;
      this.#redirect = init.redirect !== undefined ? "" + init.redirect : base !== null ? base.redirect : "follow";
      if (!REDIRECTS.includes(this.#redirect)) throw new TypeError("'" + this.#redirect + "' is not a valid redirect mode");
    }
    get url() {
      return this.#url;
    }
    get method() {
      return this.#method;
    }
    get headers() {
      return this.#headers;
    }
    get signal() {
      return this.#signal;
    }
    get redirect() {
      return this.#redirect;
    }
    clone() {
      if (this.bodyUsed) throw new TypeError("Request.clone: Body has already been consumed.");
      return new Request(this);
    }
    get [Symbol.toStringTag]() {
      return "Request";
    }
  }

  // ---- Response --------------------------------------------------------------------------
  class Response extends Body {
    #status;
    #statusText;
    #headers;
    #url;
    #redirected;
    #type;
    constructor(body = null, init = {}, remote) {
      let source = null;
      let type = null;
      if (remote !== undefined) source = remote.body;
      else if (body !== null && body !== undefined) [source, type] = extract(body);
      super(source);
      init = init || {};
      const status = init.status === undefined ? 200 : +init.status;
      if (!(status >= 200 && status <= 599) && remote === undefined) throw new RangeError("init[\"status\"] must be in the range of 200 to 599, inclusive.");
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : "" + init.statusText;
      this.#headers = new Headers(init.headers);
      if (type !== null && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      this.#url = remote !== undefined ? remote.url : "";
      this.#redirected = remote !== undefined ? remote.redirected : false;
      this.#type = remote !== undefined ? remote.type : "default";
    }
    get status() {
      return this.#status;
    }
    get statusText() {
      return this.#statusText;
    }
    get ok() {
      return this.#status >= 200 && this.#status <= 299;
    }
    get headers() {
      return this.#headers;
    }
    get url() {
      return this.#url;
    }
    get redirected() {
      return this.#redirected;
    }
    get type() {
      return this.#type;
    }
    clone() {
      if (this.bodyUsed) throw new TypeError("Response.clone: Body has already been consumed.");
      const source = this._source();
      if (source instanceof RemoteBody) {
        const bytes = source.all(); // both copies read the same bytes
        const copy = (b) => new Response(b, { status: this.#status, statusText: this.#statusText, headers: this.#headers }, { body: b, url: this.#url, redirected: this.#redirected, type: this.#type });
        this._replace(bytes);
        return copy(bytes.slice());
      }
      return new Response(null, { status: this.#status, statusText: this.#statusText, headers: this.#headers }, { body: source, url: this.#url, redirected: this.#redirected, type: this.#type });
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), { ...init, headers });
    }
    static error() {
      return new Response(null, { status: 0 }, { body: null, url: "", redirected: false, type: "error" });
    }
    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError("Invalid status code " + status);
      return new Response(null, { status, headers: { location: new URL(url).href } });
    }
    get [Symbol.toStringTag]() {
      return "Response";
    }
  }

  // ---- fetch -------------------------------------------------------------------------------
  async function fetch(input, init) {
    const request = new Request(input, init);
    const signal = request.signal;
    if (signal && signal.aborted) throw signal.reason;
    const { bytes, type } = await bytesOf(request._take());
    if (type !== null && !request.headers.has("content-type")) request.headers.set("content-type", type);
    let answer;
    try {
      answer = await transport(request.method, request.url, [...request.headers], bytes, request.redirect, undefined, signal);
    } catch (error) {
      if (signal && signal.aborted && error === signal.reason) throw error;
      if (error instanceof TypeError || error instanceof DOMException) throw error;
      throw new TypeError("fetch failed: " + error.message, { cause: error });
    }
    const headers = new Headers();
    for (const [name, value] of answer.headers) {
      try {
        headers.append(name, value);
      } catch (_) {}
    }
    const body = request.method === "HEAD" || [101, 204, 205, 304].includes(answer.status) ? null : new RemoteBody(answer.id, answer.size);
    if (body === null) readPiece(answer.id, answer.size, answer.size);
    return new Response(null, { status: answer.status, statusText: answer.statusText, headers }, { body, url: answer.url, redirected: answer.redirected, type: "basic" });
  }

  return { fetch, Request, Response, Headers, FormData, File, transport, readPiece, lookup };
});
