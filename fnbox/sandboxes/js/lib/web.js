// The web platform's globals a function uses: encodings, atob/btoa, structuredClone,
// events and aborts, queueMicrotask, performance, setImmediate, Blob.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");

  // ---- DOMException ----
  const CODES = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
    InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15, TypeMismatchError: 17,
    SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21, QuotaExceededError: 22,
    TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  class DOMException extends Error {
    constructor(message = "", options = "Error") {
      super(message);
      const name = typeof options === "object" && options !== null ? ("name" in options ? "" + options.name : "Error") : "" + options;
      if (typeof options === "object" && options !== null && "cause" in options) this.cause = options.cause;
      Object.defineProperty(this, "name", { value: name, configurable: true, writable: true });
    }
    get code() {
      return CODES[this.name] || 0;
    }
  }

  // ---- TextEncoder / TextDecoder ----
  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return codec.utf8Encode("" + input);
    }
    encodeInto(source, destination) {
      const s = "" + source;
      const written = codec.utf8Write(s, destination, 0, destination.length);
      // characters read: re-measure what fitted
      let read = 0, bytes = 0;
      while (read < s.length) {
        const c = s.charCodeAt(read);
        const pair = c >= 0xd800 && c <= 0xdbff && read + 1 < s.length && (s.charCodeAt(read + 1) & 0xfc00) === 0xdc00;
        const n = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
        if (bytes + n > written) break;
        bytes += n;
        read += pair ? 2 : 1;
      }
      return { read, written };
    }
  }

  // windows-1252, which the WHATWG labels "latin1" and "iso-8859-1" mean, differs in 0x80-0x9f.
  const W1252 = [
    0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
    0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
  ];
  const LABELS = {
    "utf-8": "utf-8", utf8: "utf-8", "unicode-1-1-utf-8": "utf-8",
    "utf-16le": "utf-16le", "utf-16": "utf-16le", ucs2: "utf-16le",
    latin1: "windows-1252", "iso-8859-1": "windows-1252", "windows-1252": "windows-1252", ascii: "windows-1252",
    "us-ascii": "windows-1252", "iso8859-1": "windows-1252", l1: "windows-1252", cp1252: "windows-1252",
  };

  function bytesOf(input) {
    if (input === undefined) return new Uint8Array(0);
    if (input instanceof ArrayBuffer || input instanceof SharedArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    const error = new TypeError('The "input" argument must be an instance of ArrayBuffer or ArrayBufferView');
    error.code = "ERR_INVALID_ARG_TYPE";
    throw error;
  }

  class TextDecoder {
    #encoding;
    #fatal;
    #ignoreBOM;
    #pending = null;
    #seenBOM = false;
    constructor(label = "utf-8", options = {}) {
      const key = ("" + label).trim().toLowerCase();
      const encoding = Object.prototype.hasOwnProperty.call(LABELS, key) ? LABELS[key] : undefined;
      if (encoding === undefined) {
        const error = new RangeError('The "' + label + '" encoding is not supported');
        error.code = "ERR_ENCODING_NOT_SUPPORTED";
        throw error;
      }
      this.#encoding = encoding;
      this.#fatal = !!(options && options.fatal);
      this.#ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() {
      return this.#encoding;
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input, options) {
      let bytes = bytesOf(input);
      const stream = !!(options && options.stream);
      if (this.#pending !== null) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = null;
      }
      let text;
      if (this.#encoding === "utf-8") {
        const [decoded, left] = codec.utf8Decode(bytes, 0, bytes.length, this.#fatal, true);
        text = decoded;
        if (left > 0) {
          if (stream) this.#pending = bytes.slice(bytes.length - left);
          else text += codec.utf8Decode(bytes, bytes.length - left, bytes.length, this.#fatal, false);
        }
      } else if (this.#encoding === "utf-16le") {
        const even = bytes.length & ~1;
        text = codec.utf16Decode(bytes, 0, even);
        if (even < bytes.length) {
          if (stream) this.#pending = bytes.slice(even);
          else if (this.#fatal) throw new TypeError("The encoded data was not valid for encoding utf-16le");
          else text += "\ufffd";
        }
      } else {
        const units = [];
        let out = "";
        for (let i = 0; i < bytes.length; i++) {
          const b = bytes[i];
          units[units.length] = b >= 0x80 && b <= 0x9f ? W1252[b - 0x80] : b;
          if (units.length === 8192) {
            out += String.fromCharCode.apply(null, units);
            units.length = 0;
          }
        }
        text = out + String.fromCharCode.apply(null, units);
      }
      if (!this.#ignoreBOM && !this.#seenBOM && text.length > 0) {
        if (this.#encoding !== "windows-1252" && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      if (text.length > 0) this.#seenBOM = true;
      if (!stream) this.#seenBOM = false;
      return text;
    }
  }

  // ---- atob / btoa ----
  function btoa(data) {
    if (arguments.length === 0) throw new TypeError('The "data" argument must be specified');
    const s = "" + data;
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 255) throw new DOMException("Invalid character", "InvalidCharacterError");
      bytes[i] = c;
    }
    return codec.base64Encode(bytes, 0, bytes.length, false);
  }

  function atob(data) {
    if (arguments.length === 0) throw new TypeError('The "data" argument must be specified');
    let s = ("" + data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      throw new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    }
    const bytes = Uint8Array.fromBase64(s, { lastChunkHandling: "loose" });
    return codec.latin1Decode(bytes, 0, bytes.length, 0xff);
  }

  // ---- structuredClone ----
  const TYPED = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array];
  if (typeof Float16Array === "function") TYPED.push(Float16Array);
  const tag = (o) => Object.prototype.toString.call(o);

  function structuredClone(value, options) {
    if (arguments.length === 0) throw new TypeError('The "value" argument must be specified');
    const seen = new Map();
    return clone(value, seen);
  }

  function uncloneable(what) {
    return new DOMException(what + " could not be cloned.", "DataCloneError");
  }

  function clone(v, seen) {
    if (typeof v === "function") throw uncloneable(fnbox.inspect(v));
    if (typeof v === "symbol") throw uncloneable(String(v));
    if (v === null || typeof v !== "object") return v;
    if (seen.has(v)) return seen.get(v);
    const t = tag(v);
    let out;
    if (t === "[object Date]") out = new Date(Date.prototype.getTime.call(v));
    else if (t === "[object RegExp]") out = new RegExp(v.source, v.flags);
    else if (t === "[object Boolean]") out = new Boolean(Boolean.prototype.valueOf.call(v));
    else if (t === "[object Number]") out = new Number(Number.prototype.valueOf.call(v));
    else if (t === "[object String]") out = new String(String.prototype.valueOf.call(v));
    else if (t === "[object BigInt]") out = Object(BigInt.prototype.valueOf.call(v));
    else if (t === "[object ArrayBuffer]") out = v.slice(0);
    else if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) {
        const buffer = clone(v.buffer, seen);
        out = new DataView(buffer, v.byteOffset, v.byteLength);
      } else {
        const Ctor = TYPED.find((C) => v instanceof C) || Uint8Array;
        const buffer = clone(v.buffer, seen);
        out = new Ctor(buffer, v.byteOffset, v.length);
        if (Ctor === Uint8Array || Object.getPrototypeOf(v) !== Ctor.prototype) out = new Uint8Array(buffer, v.byteOffset, v.length);
      }
    } else if (t === "[object Map]") {
      out = new Map();
      seen.set(v, out);
      for (const [k, val] of Map.prototype.entries.call(v)) out.set(clone(k, seen), clone(val, seen));
      return out;
    } else if (t === "[object Set]") {
      out = new Set();
      seen.set(v, out);
      for (const val of Set.prototype.values.call(v)) out.add(clone(val, seen));
      return out;
    } else if (t === "[object Error]") {
      const names = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
      const Ctor = Object.prototype.hasOwnProperty.call(names, v.name) ? names[v.name] : Error;
      out = Object.create(Ctor.prototype);
      seen.set(v, out);
      const message = Object.getOwnPropertyDescriptor(v, "message");
      if (message) Object.defineProperty(out, "message", { value: "" + message.value, writable: true, configurable: true });
      if (typeof v.stack === "string") Object.defineProperty(out, "stack", { value: v.stack, writable: true, configurable: true });
      if ("cause" in v) Object.defineProperty(out, "cause", { value: clone(v.cause, seen), writable: true, configurable: true });
      return out;
    } else if (Array.isArray(v)) {
      out = new Array(v.length);
      seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k], seen);
      return out;
    } else if (t === "[object Object]" || t === "[object Arguments]") {
      if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) throw uncloneable(t);
      out = {};
      seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k], seen);
      return out;
    } else {
      throw uncloneable(t);
    }
    seen.set(v, out);
    return out;
  }

  // ---- Event, EventTarget, AbortController ----
  const kStop = Symbol("stop");
  class Event {
    #type;
    #cancelable;
    #bubbles;
    #defaultPrevented = false;
    #timeStamp = performanceNow();
    constructor(type, options = {}) {
      if (arguments.length === 0) throw new TypeError('The "type" argument must be specified');
      this.#type = "" + type;
      this.#cancelable = !!(options && options.cancelable);
      this.#bubbles = !!(options && options.bubbles);
      this[kStop] = false;
      this.target = null;
      this.currentTarget = null;
    }
    get type() {
      return this.#type;
    }
    get cancelable() {
      return this.#cancelable;
    }
    get bubbles() {
      return this.#bubbles;
    }
    get defaultPrevented() {
      return this.#cancelable && this.#defaultPrevented;
    }
    get timeStamp() {
      return this.#timeStamp;
    }
    get isTrusted() {
      return false;
    }
    preventDefault() {
      this.#defaultPrevented = true;
    }
    stopPropagation() {}
    stopImmediatePropagation() {
      this[kStop] = true;
    }
    composedPath() {
      return this.currentTarget ? [this.currentTarget] : [];
    }
  }

  class CustomEvent extends Event {
    #detail;
    constructor(type, options = {}) {
      super(type, options);
      this.#detail = options && options.detail !== undefined ? options.detail : null;
    }
    get detail() {
      return this.#detail;
    }
  }

  const kListeners = Symbol("listeners");
  class EventTarget {
    constructor() {
      Object.defineProperty(this, kListeners, { value: new Map() });
    }
    addEventListener(type, listener, options) {
      if (listener == null) return;
      const once = typeof options === "object" && options !== null && !!options.once;
      const signal = typeof options === "object" && options !== null ? options.signal : undefined;
      if (signal && signal.aborted) return;
      const map = this[kListeners];
      const list = map.get(type) || [];
      if (list.some((entry) => entry.listener === listener)) return;
      const entry = { listener, once };
      list.push(entry);
      map.set(type, list);
      if (signal) signal.addEventListener("abort", () => this.removeEventListener(type, listener));
    }
    removeEventListener(type, listener) {
      const list = this[kListeners].get(type);
      if (!list) return;
      const i = list.findIndex((entry) => entry.listener === listener);
      if (i >= 0) list.splice(i, 1);
    }
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError('The "event" argument must be an instance of Event');
      event.target = this;
      event.currentTarget = this;
      const handler = this["on" + event.type];
      const list = (this[kListeners].get(event.type) || []).slice();
      if (typeof handler === "function") handler.call(this, event);
      for (const entry of list) {
        if (entry.once) this.removeEventListener(event.type, entry.listener);
        const l = entry.listener;
        if (typeof l === "function") l.call(this, event);
        else if (l && typeof l.handleEvent === "function") l.handleEvent(event);
        if (event[kStop]) break;
      }
      event.currentTarget = null;
      return !event.defaultPrevented;
    }
  }

  const kAbort = Symbol("abort");
  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason = undefined;
    constructor(key) {
      if (key !== kAbort) throw new TypeError("Illegal constructor");
      super();
      this.onabort = null;
    }
    get aborted() {
      return this.#aborted;
    }
    get reason() {
      return this.#reason;
    }
    throwIfAborted() {
      if (this.#aborted) throw this.#reason;
    }
    [kAbort](reason) {
      if (this.#aborted) return;
      this.#aborted = true;
      this.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      this.dispatchEvent(new Event("abort"));
    }
    static abort(reason) {
      const signal = new AbortSignal(kAbort);
      signal[kAbort](reason);
      return signal;
    }
    static timeout(ms) {
      const signal = new AbortSignal(kAbort);
      fnbox.schedule(() => signal[kAbort](new DOMException("The operation was aborted due to timeout", "TimeoutError")), ms, [], false);
      return signal;
    }
    static any(signals) {
      const signal = new AbortSignal(kAbort);
      for (const s of signals) {
        if (s.aborted) {
          signal[kAbort](s.reason);
          return signal;
        }
      }
      for (const s of signals) s.addEventListener("abort", () => signal[kAbort](s.reason), { once: true });
      return signal;
    }
  }

  class AbortController {
    #signal = new AbortSignal(kAbort);
    get signal() {
      return this.#signal;
    }
    abort(reason) {
      this.#signal[kAbort](reason);
    }
  }

  // ---- timing and scheduling ----
  function performanceNow() {
    if (!fnbox.running()) return Date.now() - origin;
    return fnbox.host("clock", []) / 1e6 - originNs / 1e6;
  }
  const origin = Date.now();
  const originNs = fnbox.running() ? fnbox.host("clock", []) : 0;
  const marks = new Map();
  const performance = {
    now: performanceNow,
    timeOrigin: origin,
    mark(name) {
      const entry = { name, entryType: "mark", startTime: performanceNow(), duration: 0 };
      marks.set(name, entry);
      return entry;
    },
    measure(name, start, end) {
      const a = start && marks.has(start) ? marks.get(start).startTime : 0;
      const b = end && marks.has(end) ? marks.get(end).startTime : performanceNow();
      return { name, entryType: "measure", startTime: a, duration: b - a };
    },
    clearMarks(name) {
      if (name === undefined) marks.clear();
      else marks.delete(name);
    },
    getEntriesByName(name) {
      return marks.has(name) ? [marks.get(name)] : [];
    },
    toJSON() {
      return { timeOrigin: origin };
    },
  };

  function queueMicrotask(callback) {
    if (typeof callback !== "function") {
      const error = new TypeError('The "callback" argument must be of type function. Received ' + fnbox.inspect(callback));
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    Promise.resolve().then(() => callback());
  }

  function setImmediate(callback, ...args) {
    return fnbox.schedule(callback, 0, args, false);
  }

  function clearImmediate(id) {
    clearTimeout(id);
  }

  // ---- Blob ----
  class Blob {
    #bytes;
    #type;
    constructor(parts = [], options = {}) {
      const chunks = [];
      let total = 0;
      for (const part of parts) {
        let bytes;
        if (part instanceof Blob) bytes = part.#bytes;
        else if (typeof part === "string") bytes = codec.utf8Encode(part);
        else if (part instanceof ArrayBuffer || ArrayBuffer.isView(part)) bytes = bytesOf(part).slice();
        else bytes = codec.utf8Encode("" + part);
        chunks.push(bytes);
        total += bytes.length;
      }
      this.#bytes = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        this.#bytes.set(c, at);
        at += c.length;
      }
      this.#type = options && options.type ? ("" + options.type).toLowerCase() : "";
    }
    get size() {
      return this.#bytes.length;
    }
    get type() {
      return this.#type;
    }
    text() {
      return Promise.resolve(codec.utf8Decode(this.#bytes, 0, this.#bytes.length, false, false));
    }
    arrayBuffer() {
      return Promise.resolve(this.#bytes.slice().buffer);
    }
    bytes() {
      return Promise.resolve(this.#bytes.slice());
    }
    slice(start, end, type) {
      const b = new Blob([], { type });
      b.#bytes = this.#bytes.slice(start, end);
      return b;
    }
  }

  return {
    DOMException, TextEncoder, TextDecoder, atob, btoa, structuredClone, Event, CustomEvent, EventTarget, AbortSignal,
    AbortController, performance, queueMicrotask, setImmediate, clearImmediate, Blob,
  };
});
