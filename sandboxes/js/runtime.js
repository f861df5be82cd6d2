// The JavaScript half of a fnbox sandbox, evaluated once in each fresh V8 context.
//
// It defines the globals a workspace function may use (cache, console, setTimeout,
// clearTimeout, setInterval, clearInterval) and `$fnbox`, the entry points of the Python
// half: define() compiles a function, go() starts a run (run() too, for a request too big
// for the mailbox), abandon() ends one that timed out, take() hands over an outcome too
// big for the mailbox. All else stays in this closure, out of reach of user code, with
// the built-ins it needs captured up front.
//
// The mailbox is a SharedArrayBuffer that both sides read and write in place, with no
// round trip into the isolate: int32 header slots, then UTF-16 text. Python writes a
// run's request there (the parameters' JSON) and evals `$fnbox.go()`. The run appends
// its log entries to the text as they are made (so Python can still read them if the
// run never ends), then its outcome; then it calls `notify`, a mini-racer callback, and
// Python reads the mailbox while this thread waits for that call to return.
//
// Evaluated as `(<this file>)(MAX_ENTRIES, MAX_MESSAGE, CAPACITY, HEADER_LINES)`: the
// value is install(notify), which returns the mailbox.
(function (MAX_ENTRIES, MAX_MESSAGE, CAPACITY, HEADER_LINES) {
  "use strict";

  const G = globalThis;
  const { defineProperty, freeze, keys, getOwnPropertyDescriptor, getPrototypeOf } = Object;
  const ObjectPrototype = Object.prototype;
  const objectToString = Object.prototype.toString;
  const apply = Reflect.apply;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const then = Promise.prototype.then;
  const dateNow = Date.now;
  const getTime = Date.prototype.getTime;
  const toISOString = Date.prototype.toISOString;
  const isArray = Array.isArray;
  const isView = ArrayBuffer.isView;
  const mapSize = getOwnPropertyDescriptor(Map.prototype, "size").get;
  const setSize = getOwnPropertyDescriptor(Set.prototype, "size").get;
  const regexpSource = getOwnPropertyDescriptor(RegExp.prototype, "source").get;
  const regexpFlags = getOwnPropertyDescriptor(RegExp.prototype, "flags").get;
  const typedLength = getOwnPropertyDescriptor(getPrototypeOf(Uint8Array.prototype), "length").get;
  const toWellFormed = String.prototype.toWellFormed;
  const symbolToString = Symbol.prototype.toString;
  const fromCharCode = String.fromCharCode;
  const numberIsNaN = Number.isNaN;
  const objectIs = Object.is;
  const MapCtor = Map;
  const waitAsync = Atomics.waitAsync;
  const atomicsNotify = Atomics.notify;
  const atomicsStore = Atomics.store;
  const AsyncFunction = getPrototypeOf(async function () {}).constructor;
  const indirectEval = G.eval;

  // ---- the mailbox --------------------------------------------------------------
  const HEADER = 8; // int32 slots
  const H_RUN = 0, H_STATE = 1, H_STREAM = 2, H_START = 3, H_LENGTH = 4, H_FUNCTION = 5, H_REQUEST = 6;
  const RUNNING = 0, READY = 1, HELD = 2;
  const mailbox = new SharedArrayBuffer(HEADER * 4 + CAPACITY * 2);
  const header = new Int32Array(mailbox, 0, HEADER);
  const text = new Uint16Array(mailbox, HEADER * 4, CAPACITY);
  let cursor = 0; // next free unit of `text`
  let held = null; // an outcome that did not fit, for take()
  let notify = null;

  function put(s) {
    const end = cursor + s.length;
    if (end > CAPACITY) return false;
    for (let i = 0, j = cursor; j < end; i++, j++) text[j] = s.charCodeAt(i);
    cursor = end;
    return true;
  }

  // ---- runs ---------------------------------------------------------------------
  const functions = [];
  let current = null; // the run in progress
  let timerIds = 0;

  function define(name, params, body, url) {
    // A syntax check first: the Function constructor also refuses a body that closes
    // its function early to smuggle in top-level code.
    new AsyncFunction(params, body + "\n//# sourceURL=" + url);
    const fn = indirectEval(
      "async function " + name + "(" + params + "\n) {\n" + body + "\n}\n" + name + "\n//# sourceURL=" + url,
    );
    functions[functions.length] = fn;
    return functions.length - 1;
  }

  // A run whose request Python wrote into the mailbox: the eval's text never changes, so
  // V8 compiles it once.
  function go() {
    const n = header[H_REQUEST];
    let json = "";
    for (let i = 0; i < n; i += 8192) json += apply(fromCharCode, null, text.subarray(i, i + 8192 < n ? i + 8192 : n));
    run(header[H_RUN], header[H_FUNCTION], json);
  }

  function run(id, index, json) {
    if (current !== null) throw new Error("fnbox: a run is already in progress");
    const r = { id, done: false, count: 0, dropped: 0, overflow: false, extra: null, timers: null, view: null };
    current = r;
    cursor = 0;
    held = null;
    header[H_RUN] = id;
    header[H_STATE] = RUNNING;
    atomicsStore(header, H_STREAM, 0);
    const fn = functions[index]; // called as a plain function: frames say "hello", not "Array.hello"
    let promise;
    try {
      promise = fn(parse(json));
    } catch (error) {
      settle(r, false, error);
      return;
    }
    apply(then, promise, [(value) => settle(r, true, value), (error) => settle(r, false, error)]);
  }

  function settle(r, ok, value) {
    if (r !== current || r.done) return;
    r.done = true;
    stopTimers(r);
    let body;
    if (ok) {
      try {
        // Made here, inside the timed run: a hostile toJSON or getter only burns its own time.
        const json = stringify(value);
        body = '"ok":true,"result":' + (json === undefined ? "null" : json);
      } catch (error) {
        ok = false;
        value = error;
      }
    }
    if (!ok) body = '"ok":false,"error":' + stringify(describe(value));
    current = null;
    const outcome = "{" + body + "," + logTail(r) + "}";
    header[H_START] = cursor;
    if (put(outcome)) {
      header[H_LENGTH] = outcome.length;
      header[H_STATE] = READY;
    } else {
      held = outcome;
      header[H_STATE] = HELD;
    }
    notify();
  }

  function abandon(id) {
    const r = current;
    if (r === null || r.id !== id) return '{"logs":[],"dropped":0}';
    r.done = true;
    current = null;
    stopTimers(r);
    return "{" + logTail(r) + "}";
  }

  function take() {
    const outcome = held;
    held = null;
    return outcome;
  }

  function describe(error) {
    try {
      if (error !== null && typeof error === "object" && apply(objectToString, error, []) === "[object Error]") {
        let message;
        try {
          message = "" + error;
        } catch (_) {
          message = "Error";
        }
        let stack = null;
        try {
          if (typeof error.stack === "string") stack = cleanStack(error.stack);
        } catch (_) {}
        return { message: brief(message), stack: stack === null ? null : brief(stack) };
      }
      room = MAX_MESSAGE + 64;
      return { message: brief(typeof error === "string" ? error : inspect(error)), stack: null };
    } catch (_) {
      return { message: "an unprintable value was thrown", stack: null };
    }
  }

  // A V8 stack as the user should see it: no frames of ours, lines of the function bodies.
  // Functions are compiled as scripts named fnbox/NAME.js (see codegen.py); ours, fnbox:*.
  const INTERNAL_FRAME = /^\s+at (?:.*\()?fnbox:[a-z]+:\d+/;
  const USER_SCRIPT = /fnbox\/([A-Za-z_][A-Za-z0-9_]*)\.js:(\d+)/g;

  function cleanStack(stack) {
    const kept = [];
    for (const line of stack.split("\n")) {
      if (INTERNAL_FRAME.test(line)) continue;
      kept[kept.length] = line.replace(USER_SCRIPT, relabel);
    }
    return kept.join("\n");
  }

  function relabel(_, name, line) {
    const n = +line - HEADER_LINES;
    return name + ".js:" + (n > 1 ? n : 1);
  }

  // ---- console --------------------------------------------------------------------
  function record(level, args) {
    const r = current;
    if (r === null) return; // left over from a finished run: dropped
    if (r.count >= MAX_ENTRIES) {
      r.dropped++;
      return;
    }
    r.count++;
    let message;
    try {
      message = format(args);
    } catch (_) {
      message = "[unprintable log message]";
    }
    const entry = '{"level":"' + level + '","message":' + stringify(brief(message)) + ',"time":' + dateNow() + "}";
    if (!r.overflow && put(entry + ",")) {
      atomicsStore(header, H_STREAM, cursor);
    } else {
      r.overflow = true;
      if (r.extra === null) r.extra = [];
      r.extra[r.extra.length] = entry;
    }
  }

  // The entries that did not fit the mailbox, and the count of those over the cap.
  function logTail(r) {
    return '"logs":[' + (r.extra === null ? "" : r.extra.join(",")) + '],"dropped":' + r.dropped;
  }

  function cut(s, n) {
    const c = s.charCodeAt(n - 1);
    return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
  }

  // A message as it may leave: capped like a log entry, and valid Unicode.
  function brief(s) {
    if (s.length > MAX_MESSAGE) s = cut(s, MAX_MESSAGE) + "… (truncated)";
    return apply(toWellFormed, s, []);
  }

  function logger(level) {
    return function (...args) {
      record(level, args);
    };
  }

  // ---- formatting: util.format and a small util.inspect -------------------------------
  const MAX_DEPTH = 4;
  const MAX_ITEMS = 100;
  let room = 0; // characters left to produce for the message being formatted

  function format(args) {
    room = MAX_MESSAGE + 64;
    let out;
    let i = 1;
    const first = args[0];
    if (typeof first === "string" && args.length > 1 && first.includes("%")) {
      out = first.replace(/%[sdifjoOc%]/g, (spec) => {
        if (spec === "%%") return "%";
        if (i >= args.length) return spec;
        const arg = args[i++];
        switch (spec) {
          case "%s":
            return typeof arg === "string" ? arg : inspect(arg);
          case "%d":
          case "%i": {
            if (typeof arg === "object" && arg !== null) return "NaN";
            const n = Number(arg);
            return "" + (spec === "%i" ? Math.trunc(n) : n);
          }
          case "%f":
            return "" + parseFloat(arg);
          case "%j":
            try {
              return stringify(arg);
            } catch (_) {
              return "[Circular]";
            }
          case "%c":
            return "";
          default:
            return inspect(arg);
        }
      });
    } else {
      out = args.length === 0 ? "" : typeof first === "string" ? first : inspect(first);
    }
    for (; i < args.length && out.length <= MAX_MESSAGE; i++) {
      const arg = args[i];
      out += " " + (typeof arg === "string" ? arg : inspect(arg));
    }
    return out;
  }

  function inspect(value) {
    return show(value, 0, []);
  }

  function show(v, depth, seen) {
    if (room <= 0) return "…";
    let s;
    switch (typeof v) {
      case "string":
        s = quote(v.length > MAX_MESSAGE ? cut(v, MAX_MESSAGE) : v);
        break;
      case "number":
        s = objectIs(v, -0) ? "-0" : "" + v;
        break;
      case "bigint":
        s = v + "n";
        break;
      case "boolean":
      case "undefined":
        s = "" + v;
        break;
      case "symbol":
        s = apply(symbolToString, v, []);
        break;
      case "function":
        s = "[Function: " + (ownValue(v, "name") || "(anonymous)") + "]";
        break;
      default:
        if (v !== null) return showObject(v, depth, seen); // its parts paid for themselves
        s = "null";
    }
    room -= s.length;
    return s;
  }

  function showObject(o, depth, seen) {
    if (seen.includes(o)) return "[Circular]";
    const tag = apply(objectToString, o, []);
    if (tag === "[object Error]") {
      try {
        const stack = o.stack;
        return typeof stack === "string" ? cleanStack(stack) : "" + o;
      } catch (_) {
        return "[Error]";
      }
    }
    const date = brand(getTime, o);
    if (date !== undefined) return numberIsNaN(date) ? "Invalid Date" : apply(toISOString, o, []);
    const source = brand(regexpSource, o);
    if (source !== undefined) return "/" + source + "/" + apply(regexpFlags, o, []);
    if (tag === "[object Promise]") return "Promise {}";
    if (depth >= MAX_DEPTH) return isArray(o) ? "[Array]" : "[Object]";
    seen.push(o);
    try {
      if (isArray(o)) return list("", "[", "]", arrayItems(o, depth, seen));
      if (isView(o)) {
        const length = brand(typedLength, o);
        if (length !== undefined) return list(className(o) + "(" + length + ") ", "[", "]", arrayItems(o, depth, seen));
      }
      const mapCount = brand(mapSize, o);
      if (mapCount !== undefined) {
        const items = [];
        for (const [k, val] of o) {
          if (items.length >= MAX_ITEMS || room <= 0) break;
          items.push(show(k, depth + 1, seen) + " => " + show(val, depth + 1, seen));
        }
        return list("Map(" + mapCount + ") ", "{", "}", more(items, mapCount));
      }
      const setCount = brand(setSize, o);
      if (setCount !== undefined) {
        const items = [];
        for (const val of o) {
          if (items.length >= MAX_ITEMS || room <= 0) break;
          items.push(show(val, depth + 1, seen));
        }
        return list("Set(" + setCount + ") ", "{", "}", more(items, setCount));
      }
      const names = keys(o);
      const items = [];
      for (const k of names) {
        if (items.length >= MAX_ITEMS || room <= 0) break;
        room -= k.length + 2;
        items.push(key(k) + ": " + property(o, k, depth, seen));
      }
      const proto = getPrototypeOf(o);
      const prefix = proto === null ? "[Object: null prototype] " : proto === ObjectPrototype ? "" : className(o) + " ";
      return list(prefix, "{", "}", more(items, names.length));
    } finally {
      seen.pop();
    }
  }

  function arrayItems(a, depth, seen) {
    const items = [];
    const n = a.length;
    for (let i = 0; i < n && items.length < MAX_ITEMS && room > 0; i++) items.push(property(a, "" + i, depth, seen));
    return more(items, n);
  }

  // A property shown without running its getter.
  function property(o, k, depth, seen) {
    const d = getOwnPropertyDescriptor(o, k);
    if (d === undefined) return "<empty>";
    if ("value" in d) return show(d.value, depth + 1, seen);
    return d.get && d.set ? "[Getter/Setter]" : d.get ? "[Getter]" : "[Setter]";
  }

  function more(items, total) {
    if (total > items.length) items.push("... " + (total - items.length) + " more items");
    return items;
  }

  function list(prefix, open, close, items) {
    return items.length === 0 ? prefix + open + close : prefix + open + " " + items.join(", ") + " " + close;
  }

  function key(k) {
    return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : quote(k);
  }

  function quote(s) {
    return "'" + stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'") + "'";
  }

  function className(o) {
    const proto = getPrototypeOf(o);
    const ctor = proto === null ? undefined : ownValue(proto, "constructor");
    const name = typeof ctor === "function" ? ownValue(ctor, "name") : undefined;
    return typeof name === "string" && name !== "" ? name : "Object";
  }

  function ownValue(o, k) {
    const d = getOwnPropertyDescriptor(o, k);
    return d !== undefined && "value" in d ? d.value : undefined;
  }

  // `getter` applied to `o`, or undefined if `o` is not of the getter's kind.
  function brand(getter, o) {
    try {
      return apply(getter, o, []);
    } catch (_) {
      return undefined;
    }
  }

  // ---- timers: Atomics.waitAsync is the only clock a bare V8 offers ---------------------
  function schedule(callback, delay, args, repeat) {
    if (typeof callback !== "function") throw new TypeError("The callback must be a function");
    const r = current;
    if (r === null) return 0; // after its run ended: never fires
    if (r.timers === null) {
      r.timers = new MapCtor();
      r.view = new Int32Array(new SharedArrayBuffer(4));
    }
    let ms = +delay;
    if (!(ms >= 1 && ms <= 2147483647)) ms = 1; // as Node does
    const id = ++timerIds;
    r.timers.set(id, true);
    arm(r, id, ms, callback, args, repeat);
    return id;
  }

  function arm(r, id, ms, callback, args, repeat) {
    apply(then, waitAsync(r.view, 0, 0, ms).value, [() => fire(r, id, ms, callback, args, repeat)]);
  }

  function fire(r, id, ms, callback, args, repeat) {
    if (r.done || !r.timers.has(id)) return;
    if (!repeat) r.timers.delete(id);
    try {
      apply(callback, undefined, args);
    } catch (error) {
      settle(r, false, error); // an uncaught error in a timer fails the run, as it would fail Node
      return;
    }
    if (repeat && !r.done && r.timers.has(id)) arm(r, id, ms, callback, args, repeat);
  }

  function cancel(id) {
    const r = current;
    if (r !== null && r.timers !== null) r.timers.delete(id);
  }

  // Pending timers of a run that ended never fire: wake their waiters now, to no effect.
  function stopTimers(r) {
    if (r.timers === null) return;
    r.timers.clear();
    atomicsNotify(r.view, 0);
  }

  // ---- globals --------------------------------------------------------------------
  function constant(name, value) {
    defineProperty(G, name, { value, writable: false, enumerable: false, configurable: false });
  }

  constant("cache", {});
  constant(
    "console",
    freeze({
      log: logger("info"),
      info: logger("info"),
      warn: logger("warn"),
      error: logger("error"),
      debug: logger("debug"),
      trace: logger("debug"),
      dir: logger("info"),
    }),
  );
  constant("setTimeout", (callback, delay, ...args) => schedule(callback, delay, args, false));
  constant("setInterval", (callback, delay, ...args) => schedule(callback, delay, args, true));
  constant("clearTimeout", (id) => cancel(id));
  constant("clearInterval", (id) => cancel(id));
  constant("$fnbox", freeze({ define, go, run, abandon, take }));
  // WebAssembly memory lives outside the V8 heap limit, and a sandbox has no use for it.
  delete G.WebAssembly;

  return function install(callback) {
    notify = callback;
    return mailbox;
  };
})
