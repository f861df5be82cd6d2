// The JavaScript half of a fnbox sandbox, evaluated once in each fresh V8 context.
//
// It defines the globals a workspace function may use (cache, console, setTimeout,
// clearTimeout, setInterval, clearInterval) and `$fnbox`, the entry points of the Python
// half: define() compiles a function, go() starts a run (run() too, for a request too big
// for the mailbox; goBatch() several, one after another), abandon() ends one that timed
// out, take() hands over an outcome too
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
// A run whose caller follows its logs live (Python sets H_LIVE) hands each entry over as
// it is made instead: written at the start of the text, in pieces if it does not fit, and
// `live`, a second callback, called for each piece. Python keeps them; the text is free
// again when the call returns, so the outcome later goes at its start.
//
// Host calls (hashes, ciphers, zlib, URL parsing, randomness: what Python does better) go
// through a third callback, `host`, and a region of the mailbox after its text: the
// request's JSON written there in pieces, the answer's JSON read back in pieces, all while
// this thread waits. Only plain data crosses; Python checks every argument (see host.py).
// The library of globals and Node modules (lib/*.js) is fetched and evaluated the first
// time a run uses it, so a function that uses none of it costs nothing more.
//
// Evaluated as `(<this file>)(MAX_ENTRIES, MAX_MESSAGE, CAPACITY, HEADER_LINES, MAX_RESULT,
// MAX_RESULT_DEPTH, HOST_CAPACITY, MAX_HOST_TEXT, MODULES, MAX_BATCH)`: the value is
// install(notify, live, host), which returns the mailbox.
//
// User code shares this context and may replace any built-in (its own workspace only).
// What a run's start and end go through uses built-ins captured here, so a replaced one
// fails the user's own calls, not the hand-over of their outcomes.
(function (MAX_ENTRIES, MAX_MESSAGE, CAPACITY, HEADER_LINES, MAX_RESULT, MAX_RESULT_DEPTH, HOST_CAPACITY, MAX_HOST_TEXT, MODULES, MAX_BATCH) {
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
  const charCodeAt = String.prototype.charCodeAt;
  const join = Array.prototype.join;
  const Uint16ArrayCtor = Uint16Array;
  const { set: mapSet, has: mapHas, delete: mapDelete, clear: mapClear } = Map.prototype;
  const StringPrototype = String.prototype;
  const stringIncludes = StringPrototype.includes;
  const symbolToString = Symbol.prototype.toString;
  const fromCharCode = String.fromCharCode;
  const numberIsNaN = Number.isNaN;
  const objectIs = Object.is;
  const MapCtor = Map;
  const waitAsync = Atomics.waitAsync;
  const NativeFinalizationRegistry = FinalizationRegistry;
  const construct = Reflect.construct;
  const Int32ArrayCtor = Int32Array;
  const SharedArrayBufferCtor = SharedArrayBuffer;
  const atomicsNotify = Atomics.notify;
  const atomicsStore = Atomics.store;
  const atomicsCompareExchange = Atomics.compareExchange;
  const stringSlice = String.prototype.slice;
  const AsyncFunction = getPrototypeOf(async function () {}).constructor;
  const indirectEval = G.eval;

  // ---- the mailbox --------------------------------------------------------------
  const HEADER = 16; // int32 slots
  const H_RUN = 0, H_STATE = 1, H_STREAM = 2, H_START = 3, H_LENGTH = 4, H_FUNCTION = 5, H_REQUEST = 6;
  const H_STARTED = 7; // tells Python the isolate picked the run up (see sandbox.py)
  const H_MEMORY = 8; // the run's memory limit, KiB: ArrayBuffers count against it too
  const H_LIVE = 9; // non-zero: hand each log entry of the run to Python as it is made
  const H_PIECE = 10, H_MORE = 11; // a live entry's piece at the start of the text: its length, 1 if more follows
  const H_BATCH = 12; // runs in the batch Python posted (see goBatch)
  const RUNNING = 0, READY = 1, HELD = 2;
  const HOST_HEADER = 8; // int32 slots of the host region: see hostCall()
  const HOST_AT = HEADER * 4 + CAPACITY * 2;
  // A batch's table, after the host region: per run its id, function, request length and
  // state, which this side and Python each claim with a compare-and-swap.
  const BATCH_AT = HOST_AT + HOST_HEADER * 4 + HOST_CAPACITY * 2;
  // A state's word also holds its run's id (the bits of TAG_MASK, above the state's two): a
  // late next() of a batch that ended finds a later batch's entries in the table, and must
  // not take them.
  const QUEUED = 0, TAKEN = 1, WITHDRAWN = 2;
  const TAG_MASK = 0x1fffffff;
  const mailbox = new SharedArrayBuffer(BATCH_AT + MAX_BATCH * 16);
  const table = new Int32ArrayCtor(mailbox, BATCH_AT, MAX_BATCH * 4);
  const header = new Int32Array(mailbox, 0, HEADER);
  const text = new Uint16Array(mailbox, HEADER * 4, CAPACITY);
  let cursor = 0; // next free unit of `text`
  let held = null; // an outcome that did not fit, for take()
  let notify = null;
  let live = null;
  let host = null;

  function put(s) {
    const end = cursor + s.length;
    if (end > CAPACITY) return false;
    if (StringPrototype.charCodeAt === charCodeAt) {
      for (let i = 0, j = cursor; j < end; i++, j++) text[j] = s.charCodeAt(i); // four times as fast
    } else {
      for (let i = 0, j = cursor; j < end; i++, j++) text[j] = apply(charCodeAt, s, [i]);
    }
    cursor = end;
    return true;
  }

  // A live entry (see the top of this file): each piece at the start of the text, then `live`.
  function hand(entry) {
    const n = entry.length;
    const fast = StringPrototype.charCodeAt === charCodeAt; // as in put()
    for (let i = 0; i < n; i += CAPACITY) {
      const m = n - i < CAPACITY ? n - i : CAPACITY;
      if (fast) {
        for (let j = 0; j < m; j++) text[j] = entry.charCodeAt(i + j);
      } else {
        for (let j = 0; j < m; j++) text[j] = apply(charCodeAt, entry, [i + j]);
      }
      header[H_PIECE] = m;
      header[H_MORE] = i + m < n ? 1 : 0;
      live();
    }
  }

  // ---- runs ---------------------------------------------------------------------
  const functions = [];
  let current = null; // the run in progress
  let timerIds = 0;

  function define(name, params, body, url, withoutParams) {
    // A syntax check first: the Function constructor also refuses a body that closes
    // its function early to smuggle in top-level code. A body that declares its own
    // `params` keeps it: the parameter object is then not bound.
    const source = body + "\n//# sourceURL=" + url;
    let checked = false;
    if (withoutParams !== undefined) {
      try {
        new AsyncFunction(params, source);
        checked = true;
      } catch (error) {
        const message = error !== null && typeof error === "object" ? error.message : undefined;
        if (typeof message === "string" && apply(stringIncludes, message, ["'params' has already been declared"])) {
          params = withoutParams;
        }
      }
    }
    // Thrown from here, a syntax error keeps the location mini-racer reports.
    if (!checked) new AsyncFunction(params, source);
    const fn = indirectEval(
      "async function " + name + "(" + params + "\n) {\n" + body + "\n}\n" + name + "\n//# sourceURL=" + url,
    );
    functions[functions.length] = fn;
    return functions.length - 1;
  }

  // A run whose request Python wrote into the mailbox: the eval's text never changes, so
  // V8 compiles it once.
  function go() {
    batch = null;
    run(header[H_RUN], header[H_FUNCTION], readText(0, header[H_REQUEST]));
  }

  function readText(at, n) {
    let json = "";
    for (let i = 0; i < n; i += 8192) {
      // A view made by the built-in constructor: subarray() would look up a species.
      json += apply(fromCharCode, null, new Uint16ArrayCtor(mailbox, HEADER * 4 + (at + i) * 2, i + 8192 < n ? 8192 : n - i));
    }
    return json;
  }

  // Several runs Python queued at once, in one eval: their requests one after another in the
  // text (read before the first run writes there), their ids, functions and lengths in the
  // table. Each is a run of its own (its id, outcome, notify); the next starts as the one
  // before settles, unless Python withdrew it first (a caller gone, a run timed out).
  let batch = null;

  function goBatch() {
    const n = header[H_BATCH];
    header[H_BATCH] = 0; // once per batch Python posts: its text is the runs' after this
    // 0: an earlier eval, of a batch Python gave up before this side began it, came late and
    // ran this batch (a batch's runs are its own, whichever eval goes through them).
    if (n === 0) return;
    if (!(n > 0 && n <= MAX_BATCH)) throw new Error("fnbox: no batch to run");
    let total = 0;
    for (let k = 0; k < n; k++) total += table[4 * k + 2];
    batch = { n, k: 0, text: readText(0, total), at: 0, first: table[0] }; // a batch's ids follow on
    next();
  }

  function next() {
    const b = batch;
    while (b !== null && current === null && b.k < b.n) {
      const k = b.k++;
      const length = table[4 * k + 2];
      const at = b.at;
      b.at += length;
      const tag = ((b.first + k) & TAG_MASK) << 2;
      if (atomicsCompareExchange(table, 4 * k + 3, tag | QUEUED, tag | TAKEN) !== (tag | QUEUED)) continue;
      header[H_LIVE] = 0;
      run(table[4 * k], table[4 * k + 1], apply(stringSlice, b.text, [at, at + length]));
      return;
    }
    if (b !== null && b.k >= b.n && batch === b) batch = null;
  }

  function run(id, index, json) {
    if (current !== null) throw new Error("fnbox: a run is already in progress");
    atomicsStore(header, H_STARTED, id);
    const r = { id, done: false, count: 0, dropped: 0, overflow: false, extra: null, timers: null, view: null };
    r.live = header[H_LIVE] !== 0;
    r.compacted = false; // see reserve()
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
    try {
      // `then` looks up the promise's species: user code, if the workspace replaced it.
      apply(then, promise, [(value) => settle(r, true, value), (error) => settle(r, false, error)]);
    } catch (error) {
      settle(r, false, error);
    }
  }

  function settle(r, ok, value) {
    if (r !== current || r.done) return;
    r.done = true;
    stopTimers(r);
    let body;
    if (ok) {
      try {
        // Made here, inside the timed run: a hostile toJSON or getter only burns its own time.
        // (A string too long is refused before JSON.stringify copies it.)
        const json = typeof value === "string" && value.length > MAX_RESULT ? value : stringify(value);
        body = json === undefined ? '"ok":true,"result":null' : checked(json);
      } catch (error) {
        ok = false;
        value = error;
      }
    }
    if (!ok) {
      const kind = apply(weakSetHas, memoryErrors, [value]) ? '"ok":false,"limit":"memory",' : '"ok":false,';
      body = kind + '"error":' + describe(value);
    }
    current = null;
    const outcome = "{" + body + "," + logTail(r) + "}";
    header[H_RUN] = r.id; // whose outcome this is: Python may have posted the next run's id meanwhile
    header[H_START] = cursor;
    if (put(outcome)) {
      header[H_LENGTH] = outcome.length;
      header[H_STATE] = READY;
    } else {
      held = outcome;
      header[H_STATE] = HELD;
    }
    notify();
    if (batch !== null && held === null) next(); // (a held outcome waits for take(): the batch ends)
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

  // The outcome's body for a result's JSON: the result, or why it may not leave.
  function checked(json) {
    if (json.length > MAX_RESULT) {
      const mb = ((json.length / 104857.6) | 0) / 10;
      const message = "the result is " + mb + " M characters of JSON, more than the " + MAX_RESULT / 1048576 + " M allowed";
      return '"ok":false,"limit":"memory","error":{"message":' + stringify(message) + ',"stack":null}';
    }
    if (json.length > 2 * MAX_RESULT_DEPTH && tooDeep(json)) {
      const message = "the result is not JSON-serialisable: it is nested more than " + MAX_RESULT_DEPTH + " levels deep";
      return '"ok":false,"error":{"message":' + stringify(message) + ',"stack":null}';
    }
    return '"ok":true,"result":' + json;
  }

  // Whether JSON text nests deeper than MAX_RESULT_DEPTH (the Python side could not even read it).
  function tooDeep(json) {
    // As in put(): s.charCodeAt() while it is still the built-in.
    const fast = StringPrototype.charCodeAt === charCodeAt;
    const n = json.length;
    let depth = 0;
    for (let i = 0; i < n; i++) {
      const c = fast ? json.charCodeAt(i) : apply(charCodeAt, json, [i]);
      if (c === 34) {
        // a string: skip to its closing quote
        for (i++; i < n; i++) {
          const d = fast ? json.charCodeAt(i) : apply(charCodeAt, json, [i]);
          if (d === 92) i++;
          else if (d === 34) break;
        }
      } else if (c === 91 || c === 123) {
        if (++depth > MAX_RESULT_DEPTH) return true;
      } else if (c === 93 || c === 125) {
        depth--;
      }
    }
    return false;
  }

  // What was thrown, as the JSON text of {message, stack}: made of strings only, as a
  // replaced Object.prototype.toJSON would run in JSON.stringify of an object.
  function describe(error) {
    const { message, stack } = explain(error);
    return '{"message":' + stringify(message) + ',"stack":' + (stack === null ? "null" : stringify(stack)) + "}";
  }

  function explain(error) {
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
  const INTERNAL_FRAME = /^\s+at (?:.*\()?fnbox:[a-z_\/]+:\d+/;
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
    if (r.live) {
      hand(entry);
    } else if (!r.overflow && put(entry + ",")) {
      atomicsStore(header, H_STREAM, cursor);
    } else {
      r.overflow = true;
      if (r.extra === null) r.extra = [];
      r.extra[r.extra.length] = entry;
    }
  }

  // The entries that did not fit the mailbox, and the count of those over the cap.
  function logTail(r) {
    return '"logs":[' + (r.extra === null ? "" : apply(join, r.extra, [","])) + '],"dropped":' + r.dropped;
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
  const MAX_DEPTH = 3; // as Node's util.inspect: objects nested deeper show as [Object]
  const functionToString = Function.prototype.toString;
  const INSPECT_CUSTOM = Symbol.for("nodejs.util.inspect.custom");
  const inspectors = new WeakSet(); // the library's own util.inspect.custom methods (see trustedInspect)
  const FunctionPrototype = Function.prototype;
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
            const shown = spec === "%i" ? Math.trunc(n) : n;
            return objectIs(shown, -0) ? "-0" : "" + shown;
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
        s = showFunction(v);
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
    // Node's util.inspect.custom, only of the library's own classes (Buffer's): a user's is
    // never called from here, not even with functions of this context.
    const custom = trustedInspect(o);
    if (custom !== undefined) return apply(custom, o, []);
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
    if (depth >= MAX_DEPTH) {
      if (isArray(o)) return o.length === 0 ? "[]" : "[Array]";
      return getPrototypeOf(o) === ObjectPrototype && keys(o).length === 0 ? "{}" : "[Object]";
    }
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

  // The library's util.inspect.custom method `o` inherits (a data property), if any.
  function trustedInspect(o) {
    let p = o;
    for (let i = 0; i < 4 && p !== null; i++) {
      const d = getOwnPropertyDescriptor(p, INSPECT_CUSTOM);
      if (d !== undefined) return "value" in d && apply(weakSetHas, inspectors, [d.value]) ? d.value : undefined;
      p = getPrototypeOf(p);
    }
    return undefined;
  }

  function arrayItems(a, depth, seen) {
    const items = [];
    const n = a.length;
    let shown = 0;
    for (let i = 0; i < n && items.length < MAX_ITEMS && room > 0; i++) {
      if (getOwnPropertyDescriptor(a, "" + i) === undefined) {
        let j = i + 1;
        while (j < n && j - i < 1e6 && getOwnPropertyDescriptor(a, "" + j) === undefined) j++;
        items.push("<" + (j - i) + " empty item" + (j - i > 1 ? "s>" : ">"));
        shown += j - i;
        i = j - 1;
        continue;
      }
      items.push(property(a, "" + i, depth, seen));
      shown++;
    }
    if (n > shown) items.push("... " + (n - shown) + " more items");
    return items;
  }

  function showFunction(v) {
    const name = ownValue(v, "name") || "";
    let source = "";
    try {
      source = apply(functionToString, v, []);
    } catch (_) {}
    if (source.startsWith("class")) {
      const parent = getPrototypeOf(v);
      const base = parent !== FunctionPrototype && typeof parent === "function" ? ownValue(parent, "name") : "";
      return "[class " + (name || "(anonymous)") + (base ? " extends " + base : "") + "]";
    }
    return "[Function: " + (name || "(anonymous)") + "]";
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

  // As Node quotes: single quotes, or double or backticks to avoid escaping a single one.
  function quote(s) {
    const body = stringify(s).slice(1, -1).replace(/\\"/g, '"');
    if (!s.includes("'")) return "'" + body + "'";
    if (!s.includes('"')) return '"' + body + '"';
    if (!s.includes("`") && !s.includes("${")) return "`" + body + "`";
    return "'" + body.replace(/'/g, "\\'") + "'";
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
      r.view = new Int32ArrayCtor(new SharedArrayBufferCtor(4));
    }
    let ms = +delay;
    if (!(ms >= 1 && ms <= 2147483647)) ms = 1; // as Node does
    const id = ++timerIds;
    apply(mapSet, r.timers, [id, true]);
    arm(r, id, ms, callback, args, repeat);
    return id;
  }

  function arm(r, id, ms, callback, args, repeat) {
    apply(then, waitAsync(r.view, 0, 0, ms).value, [() => fire(r, id, ms, callback, args, repeat)]);
  }

  function fire(r, id, ms, callback, args, repeat) {
    if (r.done || !apply(mapHas, r.timers, [id])) return;
    if (!repeat) apply(mapDelete, r.timers, [id]);
    try {
      apply(callback, undefined, args);
    } catch (error) {
      settle(r, false, error); // an uncaught error in a timer fails the run, as it would fail Node
      return;
    }
    if (repeat && !r.done && apply(mapHas, r.timers, [id])) arm(r, id, ms, callback, args, repeat);
  }

  function cancel(id) {
    const r = current;
    if (r !== null && r.timers !== null) apply(mapDelete, r.timers, [id]);
  }

  // Pending timers of a run that ended never fire: wake their waiters now, to no effect.
  function stopTimers(r) {
    if (r.timers === null) return;
    apply(mapClear, r.timers, []);
    atomicsNotify(r.view, 0);
  }

  function replace(object, name, value) {
    defineProperty(object, name, { value, writable: true, enumerable: false, configurable: true });
  }

  // `wrapper` in place of the built-in method `object[name]`, with its name and length.
  function replaceMethod(object, name, wrapper) {
    defineProperty(wrapper, "length", getOwnPropertyDescriptor(object[name], "length"));
    replace(object, name, wrapper);
  }

  // ---- ArrayBuffer memory ---------------------------------------------------------------
  // Backing stores live outside V8's heap and its limit, in one pool that all the isolates
  // of a worker share (V8's sandbox): a run holding gigabytes of them, touched or not,
  // would make the allocations of every other tenant fail. So whatever makes a backing
  // store is wrapped, to count it against the run's memory limit as the heap counts.
  //
  // Buffers are tracked by WeakRef. Those of earlier jobs stop counting once collected (a
  // gc() when the limit is near); those of the current job stay alive until it ends (a
  // WeakRef keeps its target for the job), so churning through more than the limit within
  // one job is refused too. Smaller buffers than TRACKED bytes are not worth a WeakRef: the
  // heap limit bounds them (each costs the heap a few hundred bytes of objects).
  const TRACKED = 256;
  // engine.py has V8 expose `gc` under a name no function can take; it cannot be deleted.
  const forceGC = typeof G.$fnbox_gc === "function" ? G.$fnbox_gc : null;
  G.$fnbox_gc = undefined;
  const mathTrunc = Math.trunc;
  const ArrayFrom = Array.from;
  const symbolIterator = Symbol.iterator;
  const ProxyCtor = Proxy;
  const reflectGet = Reflect.get;
  const reflectHas = Reflect.has;
  const ArrayCtor = Array;
  const RangeErrorCtor = RangeError;
  const TypeErrorCtor = TypeError;
  const WeakRefCtor = WeakRef;
  const deref = WeakRef.prototype.deref;
  const ArrayPrototype = Array.prototype;
  const { setPrototypeOf, getOwnPropertyNames, getOwnPropertySymbols } = Object;
  const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  const typedBuffer = getOwnPropertyDescriptor(TypedArrayPrototype, "buffer").get;
  const typedByteLength = getOwnPropertyDescriptor(TypedArrayPrototype, "byteLength").get;
  const getter = (C, name) => getOwnPropertyDescriptor(C.prototype, name).get;
  const abByteLength = getter(ArrayBuffer, "byteLength");
  const abMaxByteLength = getter(ArrayBuffer, "maxByteLength");
  const sabByteLength = getter(SharedArrayBuffer, "byteLength");
  const sabMaxByteLength = getter(SharedArrayBuffer, "maxByteLength");
  let tracked = [];
  let trackedBytes = 0;

  // A RangeError that, if the run ends with it, answers MemoryLimitExceeded.
  const memoryErrors = new WeakSet();
  const { has: weakSetHas, add: weakSetAdd } = WeakSet.prototype;
  function overdrawn(message) {
    const error = new RangeErrorCtor(message);
    apply(weakSetAdd, memoryErrors, [error]);
    return error;
  }

  // The bytes a buffer holds or may grow to (0 once detached), or undefined for a non-buffer.
  function bufferBytes(b) {
    if (brand(abByteLength, b) !== undefined) return apply(abMaxByteLength, b, []);
    if (brand(sabByteLength, b) !== undefined) return apply(sabMaxByteLength, b, []);
    return undefined;
  }

  function reserve(bytes) {
    const limit = header[H_MEMORY] * 1024;
    if (!(bytes > 0) || trackedBytes + bytes <= limit) return;
    const r = current;
    if (r === null || !r.compacted) compact(); // once a run: a gc() costs milliseconds
    if (r !== null) r.compacted = true;
    if (trackedBytes + bytes <= limit) return;
    const mb = limit / 1048576;
    throw overdrawn("Array buffer allocation failed: the function's ArrayBuffers would pass its memory limit of " + mb + " MB");
  }

  function compact() {
    if (forceGC !== null) forceGC();
    const kept = [];
    let bytes = 0;
    for (let i = 0; i < tracked.length; i++) {
      const b = apply(deref, tracked[i], []);
      if (b !== undefined) {
        kept[kept.length] = tracked[i];
        bytes += bufferBytes(b);
      }
    }
    tracked = kept;
    trackedBytes = bytes;
  }

  function track(b) {
    const bytes = bufferBytes(b);
    if (!(bytes >= TRACKED)) return;
    // A method's result may come from a wrapped constructor (a species): tracked just now.
    const last = tracked.length === 0 ? undefined : apply(deref, tracked[tracked.length - 1], []);
    if (last === b) return;
    tracked[tracked.length] = new WeakRefCtor(b);
    trackedBytes += bytes;
  }

  function trackView(view) {
    // Not .buffer of a small view: V8 keeps those on its heap until someone asks for it.
    if (apply(typedByteLength, view, []) >= TRACKED) track(apply(typedBuffer, view, []));
  }

  // ToIndex, converting once: the native call then gets a number and runs no user code.
  function toIndex(value) {
    const n = value === undefined ? 0 : +value; // ToNumber: a BigInt throws, as it should
    const i = n !== n ? 0 : mathTrunc(n);
    if (i < 0 || i > 9007199254740991) throw new RangeErrorCtor("Invalid array buffer length");
    return i;
  }

  // A relative index of slice(), converted once.
  function relative(value, length, otherwise) {
    if (value === undefined) return otherwise;
    const n = +value;
    const i = n !== n ? 0 : mathTrunc(n);
    return i < 0 ? (length + i > 0 ? length + i : 0) : i < length ? i : length;
  }

  function isObject(v) {
    return (typeof v === "object" && v !== null) || typeof v === "function";
  }

  // The wrapper that stands in for a built-in constructor, with its statics and prototype.
  function standIn(Native, wrapper, statics) {
    for (const k of getOwnPropertyNames(Native)) {
      if (k === "prototype" || k === "length" || k === "name") continue;
      defineProperty(wrapper, k, getOwnPropertyDescriptor(Native, k));
    }
    for (const k of getOwnPropertySymbols(Native)) defineProperty(wrapper, k, getOwnPropertyDescriptor(Native, k));
    for (const k of keys(statics)) replaceMethod(wrapper, k, statics[k]);
    const prototype = { value: Native.prototype, writable: false, enumerable: false, configurable: false };
    defineProperty(wrapper, "prototype", prototype);
    setPrototypeOf(wrapper, getPrototypeOf(Native));
    replace(Native.prototype, "constructor", wrapper);
    replace(G, Native.name, wrapper);
  }

  function wrapBuffer(Native) {
    const name = Native.name;
    const wrapper = {
      [name]: function (length, options) {
        if (new.target === undefined) throw new TypeErrorCtor("Constructor " + name + " requires 'new'");
        const n = toIndex(length);
        const max = isObject(options) && options.maxByteLength !== undefined ? toIndex(options.maxByteLength) : undefined;
        reserve(max === undefined || max < n ? n : max);
        const b = construct(Native, max === undefined ? [n] : [n, { maxByteLength: max }], new.target);
        track(b);
        return b;
      },
    }[name];
    const proto = Native.prototype;
    const byteLength = getter(Native, "byteLength");
    const slice = proto.slice;
    const methods = {
      slice(start, end) {
        const length = apply(byteLength, this, []); // throws for a wrong receiver, as slice would
        const from = relative(start, length, 0);
        const to = relative(end, length, length);
        reserve(to > from ? to - from : 0);
        const b = apply(slice, this, [from, to]);
        track(b);
        return b;
      },
    };
    if (proto.transfer !== undefined) {
      for (const method of ["transfer", "transferToFixedLength"]) {
        const native = proto[method];
        methods[method] = {
          [method](newLength) {
            const length = apply(byteLength, this, []);
            const n = newLength === undefined ? length : toIndex(newLength);
            reserve(n - length); // the old buffer's memory is handed over
            const b = apply(native, this, [n]);
            track(b);
            return b;
          },
        }[method];
      }
    }
    for (const k of keys(methods)) replaceMethod(proto, k, methods[k]);
    standIn(Native, wrapper, {});
  }

  function wrapTypedArray(Native) {
    const name = Native.name;
    const size = Native.BYTES_PER_ELEMENT;
    const wrapper = {
      [name]: function (source, byteOffset, length) {
        if (new.target === undefined) throw new TypeErrorCtor("Constructor " + name + " requires 'new'");
        let view;
        if (!isObject(source)) {
          const n = toIndex(source);
          if (n * size >= TRACKED) reserve(n * size);
          view = new.target === wrapper ? new Native(n) : construct(Native, [n], new.target); // V8 inlines the first
        } else if (bufferBytes(source) !== undefined) {
          view = construct(Native, [source, byteOffset, length], new.target); // a view: no new memory
          return view;
        } else {
          const n = brand(typedLength, source);
          const items = n !== undefined ? source : arrayFrom(ArrayCtor, source); // user code runs once
          reserve((n !== undefined ? n : items.length) * size);
          view = construct(Native, [items], new.target);
        }
        trackView(view);
        return view;
      },
    }[name];
    const statics = {};
    for (const method of ["fromBase64", "fromHex"]) {
      const native = Native[method];
      if (typeof native !== "function") continue;
      statics[method] = {
        [method](string, options) {
          if (typeof string === "string") reserve(method === "fromHex" ? string.length / 2 : (string.length * 3) / 4 + 3);
          const view = apply(native, this, [string, options]);
          trackView(view);
          return view;
        },
      }[method];
    }
    standIn(Native, wrapper, statics);
  }

  // %TypedArray%.prototype methods that make a new buffer through the intrinsic constructor
  // (or a species the user may have unset), not through the wrappers.
  for (const method of ["slice", "map", "filter", "toReversed", "toSorted", "with"]) {
    const native = TypedArrayPrototype[method];
    if (typeof native !== "function") continue;
    replaceMethod(TypedArrayPrototype, method, {
      [method](...args) {
        reserve(apply(typedByteLength, this, [])); // at most as big as this one
        const view = apply(native, this, args);
        trackView(view);
        return view;
      },
    }[method]);
  }

  // ---- huge sparse arrays ----------------------------------------------------------------
  // V8 runs many Array.prototype methods over a sparse array in native loops that
  // TerminateExecution cannot stop: `new Array(2 ** 31).fill(0)`, or `.forEach(f)` on it,
  // keeps the isolate's thread busy for minutes after its run timed out, and the isolate
  // cannot be freed meanwhile. An array longer than its memory limit could hold (4 bytes an
  // element at the least) can only be sparse: these methods refuse one, as a memory failure.
  const SCANS = [
    "copyWithin", "every", "fill", "filter", "flat", "flatMap", "forEach", "indexOf", "join", "lastIndexOf", "map",
    "reduce", "reduceRight", "reverse", "shift", "some", "sort", "splice", "toLocaleString", "toReversed", "toSorted",
    "toSpliced", "unshift", "with",
  ];
  function toLength(value) {
    const n = +value;
    return n > 0 ? (n < 9007199254740991 ? mathTrunc(n) : 9007199254740991) : 0;
  }

  function checkScan(length, what) {
    if (length > header[H_MEMORY] * 256) {
      const mb = header[H_MEMORY] / 1024;
      throw overdrawn(what + " over " + length + " elements: more than the function's memory limit of " + mb + " MB can hold");
    }
  }

  // The receiver to hand the native method. An array's length is a plain data property (or,
  // for a Proxy, one read through JS, which lets V8 interrupt the walk), and so is that of
  // most array-likes. Any other object's is read once here and pinned: the method walks a
  // Proxy reporting that length, through traps (JS again), so a getter cannot pass the
  // check small and the walk huge.
  function scanned(o, what) {
    if (!isObject(o)) return o; // a primitive: a string, bounded by V8's maximum length
    if (isArray(o)) {
      checkScan(o.length, what);
      return o;
    }
    const own = getOwnPropertyDescriptor(o, "length");
    if (own !== undefined && typeof own.value === "number") {
      checkScan(toLength(own.value), what); // the method reads the same, or (a Proxy) through JS
      return o;
    }
    const length = toLength(o.length);
    checkScan(length, what);
    return new ProxyCtor(o, {
      get: (target, key) => (key === "length" ? length : reflectGet(target, key)),
      has: (target, key) => reflectHas(target, key),
    });
  }

  for (const method of SCANS) {
    const native = ArrayPrototype[method];
    if (typeof native !== "function") continue;
    const what = "Array.prototype." + method;
    replaceMethod(ArrayPrototype, method, {
      [method](...args) {
        const receiver = scanned(this, what);
        const result = apply(native, receiver, args);
        return result === receiver ? this : result; // fill(), sort()... return their receiver
      },
    }[method]);
  }
  // Array.from(arrayLike) walks its length natively too; an iterable steps through JS.
  function arrayFrom(C, items, mapFn, thisArg) {
    const source = isObject(items) && items[symbolIterator] === undefined ? scanned(items, "Array.from") : items;
    return apply(ArrayFrom, C, [source, mapFn, thisArg]);
  }
  replaceMethod(ArrayCtor, "from", {
    from(items, mapFn, thisArg) {
      return arrayFrom(this, items, mapFn, thisArg);
    },
  }.from);

  wrapBuffer(ArrayBuffer);
  wrapBuffer(SharedArrayBuffer);
  for (const name of ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
    if (typeof G[name] === "function") wrapTypedArray(G[name]);
  }

  // ---- host calls -------------------------------------------------------------------
  // Slots of the host region's header: what Python is asked (0: the first piece of a request,
  // 2: a further one, 1: a piece of the answer from OFFSET), the piece's length in UTF-16 units, whether more of
  // the request follows, the answer's total length, the offset asked for.
  const X_COMMAND = 0, X_LENGTH = 1, X_MORE = 2, X_TOTAL = 3, X_OFFSET = 4;
  const hostHeader = new Int32ArrayCtor(mailbox, HOST_AT, HOST_HEADER);
  const hostText = new Uint16ArrayCtor(mailbox, HOST_AT + HOST_HEADER * 4, HOST_CAPACITY);
  const ErrorCtor = Error;
  const ERRORS = { TypeError, RangeError, SyntaxError, Error };

  // A synchronous call into Python, `op` with `args` (plain data: strings, numbers,
  // booleans, null, arrays, objects of them). Answers its result, or throws its error.
  function hostCall(op, args) {
    if (current === null || host === null) throw new ErrorCtor("fnbox: " + op + " is only available while a function runs");
    const request = stringify([op, args]);
    const n = request.length;
    if (n > MAX_HOST_TEXT) {
      throw overdrawn(op + ": the arguments are " + n + " characters of JSON, more than the " + MAX_HOST_TEXT + " a call may carry");
    }
    const fast = StringPrototype.charCodeAt === charCodeAt; // as in put()
    for (let i = 0; i === 0 || i < n; i += HOST_CAPACITY) {
      const m = n - i < HOST_CAPACITY ? n - i : HOST_CAPACITY;
      if (fast) {
        for (let j = 0; j < m; j++) hostText[j] = request.charCodeAt(i + j);
      } else {
        for (let j = 0; j < m; j++) hostText[j] = apply(charCodeAt, request, [i + j]);
      }
      hostHeader[X_COMMAND] = i === 0 ? 0 : 2;
      hostHeader[X_LENGTH] = m;
      hostHeader[X_MORE] = i + m < n ? 1 : 0;
      hostHeader[X_TOTAL] = -1; // Python sets it: never read a previous call's answer
      host();
    }
    const total = hostHeader[X_TOTAL];
    if (total < 0) throw new ErrorCtor("fnbox: " + op + ": the host did not answer");
    let answer = hostPiece();
    while (answer.length < total) {
      hostHeader[X_COMMAND] = 1;
      hostHeader[X_OFFSET] = answer.length;
      hostHeader[X_LENGTH] = 0;
      host();
      const piece = hostPiece();
      if (piece.length === 0) throw new ErrorCtor("fnbox: " + op + ": the host did not answer");
      answer += piece;
    }
    // Own properties only: a getter on Object.prototype must not pass for an answer.
    const reply = parse(answer);
    const value = getOwnPropertyDescriptor(reply, "v");
    if (value !== undefined) return value.value;
    const message = "" + ownValue(reply, "e");
    const kind = ownValue(reply, "t");
    const code = ownValue(reply, "c");
    const Ctor = kind === "TypeError" || kind === "RangeError" || kind === "SyntaxError" ? ERRORS[kind] : ErrorCtor;
    const error = kind === "memory" ? overdrawn(message) : new Ctor(message);
    if (typeof code === "string") defineProperty(error, "code", { value: code, writable: true, enumerable: true, configurable: true });
    throw error;
  }

  function hostPiece() {
    const m = hostHeader[X_LENGTH];
    let s = "";
    for (let i = 0; i < m; i += 8192) {
      const k = i + 8192 < m ? 8192 : m - i;
      s += apply(fromCharCode, null, new Uint16ArrayCtor(mailbox, HOST_AT + HOST_HEADER * 4 + i * 2, k));
    }
    return s;
  }

  // ---- the library: Node's modules and the web's globals, loaded on first use -----------
  let allowed = MODULES; // Node module names a function may require
  const libraries = new MapCtor(); // lib name -> its exports
  const modules = new MapCtor(); // module name -> what require() answers
  const { get: mapGet } = Map.prototype;

  function listed(list, name) {
    for (let i = 0; i < list.length; i++) if (list[i] === name) return true;
    return false;
  }

  // Narrows the modules (a workspace's NODE_BUILTIN_MODULES): `$fnbox` is within reach of
  // user code, so this can only ever take modules away.
  function allow(names) {
    const kept = [];
    for (let i = 0; i < names.length; i++) if (listed(allowed, names[i])) kept[kept.length] = names[i];
    allowed = kept;
  }

  // A file of lib/ (our own JavaScript), evaluated once per context: `(function (fnbox) {...})`.
  function lib(name) {
    const loaded = apply(mapGet, libraries, [name]);
    if (loaded !== undefined) return loaded;
    const source = hostCall("source", [name]);
    const factory = indirectEval(source + "\n//# sourceURL=fnbox:lib/" + name);
    const exports = factory(internals);
    apply(mapSet, libraries, [name, exports]);
    return exports;
  }

  // Modules whose name is another's, or lives in another's file.
  const SUBMODULES = {
    "timers/promises": ["timers", "promises"],
    "stream/promises": ["stream", "promises"],
    "util/types": ["util", "types"],
    "assert/strict": ["assert", "strict"],
    "path/posix": ["path", "posix"],
    "dns/promises": ["dns", "promises"],
  };

  function require(id) {
    if (typeof id !== "string") {
      const error = new TypeErrorCtor('The "id" argument must be of type string');
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    const name = id.startsWith("node:") ? id.slice(5) : id;
    const cached = apply(mapGet, modules, [name]);
    if (cached !== undefined) return cached;
    const sub = getOwnPropertyDescriptor(SUBMODULES, name) !== undefined ? SUBMODULES[name] : null;
    const base = sub === null ? name : sub[0];
    if (!listed(allowed, base)) {
      const error = new ErrorCtor(
        "module '" + name + "' is not available in fnbox (available: " + apply(join, allowed, [", "]) + ")",
      );
      error.code = "MODULE_NOT_FOUND";
      throw error;
    }
    const library = lib(base);
    const exports = sub === null ? library : library[sub[1]];
    apply(mapSet, modules, [name, exports]);
    return exports;
  }

  // process.env: the workspace's secrets, which Python sets (setEnv) before a run when they change.
  let env = freeze({});
  function setEnv(json) {
    env = freeze(parse(json));
  }

  // Asynchronous host calls (outbound requests, DNS lookups: see hostnet.py) end with
  // Python posting `$fnbox.arrived(id)`; the library's handler settles that call's promise.
  // User code can call it too: the handler then finds the call still running, and waits on.
  let arrivals = null;
  function arrived(id) {
    if (current !== null && arrivals !== null) arrivals(id);
  }

  const internals = freeze({
    host: hostCall,
    onArrival: (handler) => {
      if (arrivals === null) arrivals = handler;
    },
    log: (level, message) => record(level, [message]),
    env: () => env,
    lib,
    require,
    format: (args) => format(args),
    inspect: (value) => {
      room = MAX_MESSAGE + 64;
      return show(value, 0, []);
    },
    schedule: (callback, delay, args, repeat) => schedule(callback, delay, args, repeat),
    running: () => current !== null,
    trustInspect: (method) => apply(weakSetAdd, inspectors, [method]),
    allowed: () => apply(ArrayPrototype.slice, allowed, []),
    overdrawn,
  });

  // A global defined on first use: the getter loads its library, then leaves a plain value.
  function lazyGlobal(name, library, key) {
    const settle = (value) => {
      defineProperty(G, name, { value, writable: true, enumerable: false, configurable: true });
      return value;
    };
    defineProperty(G, name, {
      get: function () {
        return settle(lib(library)[key]);
      },
      set: settle,
      enumerable: false,
      configurable: true,
    });
  }

  function installLibrary() {
    const GLOBALS = {
      web: [
        "TextEncoder", "TextDecoder", "atob", "btoa", "structuredClone", "queueMicrotask", "Event",
        "EventTarget", "AbortController", "AbortSignal", "DOMException", "performance", "setImmediate",
        "clearImmediate", "Blob",
      ],
      buffer: ["Buffer"],
      url: ["URL", "URLSearchParams"],
      webcrypto: ["crypto", "CryptoKey"],
      fetch: ["fetch", "Request", "Response", "Headers", "FormData", "File"],
      process: ["process"],
    };
    for (const library of keys(GLOBALS)) {
      for (const name of GLOBALS[library]) lazyGlobal(name, library, name);
    }
    defineProperty(G, "require", { value: require, writable: true, enumerable: false, configurable: true });
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
  constant("$fnbox", freeze({ define, go, goBatch, run, abandon, take, allow, setEnv, arrived }));
  installLibrary();
  // WebAssembly memory lives outside the V8 heap limit, and a sandbox has no use for it.
  delete G.WebAssembly;

  // Work a run leaves behind ends with it, or spins and is caught by the isolate's idle
  // check. Two built-ins could keep it going without spinning, and burn CPU for as long as
  // the sandbox stays warm: Atomics.waitAsync resumes code later, a FinalizationRegistry
  // runs its cleanups after garbage collections. Outside a run, they do nothing.
  const guarded = {
    waitAsync(typedArray, index, value, timeout) {
      if (current === null) throw new TypeError("Atomics.waitAsync: the run is over");
      return waitAsync(typedArray, index, value, timeout);
    },
  };
  replaceMethod(Atomics, "waitAsync", guarded.waitAsync);
  const GuardedRegistry = function FinalizationRegistry(cleanup) {
    if (new.target === undefined) throw new TypeError("Constructor FinalizationRegistry requires 'new'");
    if (typeof cleanup !== "function") throw new TypeError("FinalizationRegistry: cleanup must be callable");
    const during = (held) => {
      if (current !== null) apply(cleanup, undefined, [held]);
    };
    return construct(NativeFinalizationRegistry, [during], new.target);
  };
  GuardedRegistry.prototype = NativeFinalizationRegistry.prototype;
  replace(NativeFinalizationRegistry.prototype, "constructor", GuardedRegistry);
  replace(G, "FinalizationRegistry", GuardedRegistry);

  return function install(callback, liveCallback, hostCallback) {
    notify = callback;
    live = liveCallback;
    host = hostCallback;
    return mailbox;
  };
})
