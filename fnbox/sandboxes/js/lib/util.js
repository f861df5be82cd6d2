// Node's `util` module: format, inspect, promisify, types, isDeepStrictEqual and friends.
(function (fnbox) {
  "use strict";
  const tag = (v) => Object.prototype.toString.call(v);
  const customInspect = Symbol.for("nodejs.util.inspect.custom");
  const promisifyCustom = Symbol.for("nodejs.util.promisify.custom");
  const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
  const typedTag = Object.getOwnPropertyDescriptor(TypedArrayPrototype, Symbol.toStringTag).get;

  function inspect(value, options) {
    if (value !== null && (typeof value === "object" || typeof value === "function") && typeof value[customInspect] === "function") {
      const shown = value[customInspect](options && options.depth !== undefined ? options.depth : 2, options || {}, inspect);
      if (typeof shown === "string") return shown;
      value = shown;
    }
    return fnbox.inspect(value);
  }
  inspect.custom = customInspect;
  inspect.defaultOptions = { depth: 2, colors: false, breakLength: 80, compact: 3 };

  function format(...args) {
    return fnbox.format(args);
  }

  function promisify(original) {
    if (typeof original !== "function") {
      const error = new TypeError('The "original" argument must be of type function');
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    if (typeof original[promisifyCustom] === "function") return original[promisifyCustom];
    function fn(...args) {
      return new Promise((resolve, reject) => {
        Reflect.apply(original, this, [
          ...args,
          (error, ...values) => (error ? reject(error) : resolve(values.length > 1 ? values : values[0])),
        ]);
      });
    }
    Object.setPrototypeOf(fn, Object.getPrototypeOf(original));
    Object.defineProperty(fn, promisifyCustom, { value: fn });
    return Object.defineProperties(fn, Object.getOwnPropertyDescriptors(original));
  }
  promisify.custom = promisifyCustom;

  function callbackify(original) {
    return function (...args) {
      const callback = args.pop();
      if (typeof callback !== "function") throw new TypeError('The last argument must be of type function');
      Reflect.apply(original, this, args).then(
        (value) => Promise.resolve().then(() => callback(null, value)),
        (error) => Promise.resolve().then(() => callback(error || Object.assign(new Error("Promise was rejected with a falsy value"), { reason: error }))),
      );
    };
  }

  function inherits(ctor, superCtor) {
    Object.defineProperty(ctor, "super_", { value: superCtor, writable: true, configurable: true });
    Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
  }

  function deprecate(fn, message) {
    let warned = false;
    return function (...args) {
      if (!warned) {
        warned = true;
        console.warn("DeprecationWarning: " + message);
      }
      return new.target ? Reflect.construct(fn, args, new.target) : Reflect.apply(fn, this, args);
    };
  }

  const isTyped = (v) => ArrayBuffer.isView(v) && !(v instanceof DataView);
  const types = {
    isDate: (v) => tag(v) === "[object Date]" && v instanceof Date,
    isRegExp: (v) => tag(v) === "[object RegExp]",
    isMap: (v) => v instanceof Map,
    isSet: (v) => v instanceof Set,
    isWeakMap: (v) => v instanceof WeakMap,
    isWeakSet: (v) => v instanceof WeakSet,
    isPromise: (v) => v instanceof Promise,
    isProxy: () => false,
    isNativeError: (v) => tag(v) === "[object Error]",
    isArrayBuffer: (v) => v instanceof ArrayBuffer,
    isSharedArrayBuffer: (v) => v instanceof SharedArrayBuffer,
    isAnyArrayBuffer: (v) => v instanceof ArrayBuffer || v instanceof SharedArrayBuffer,
    isArrayBufferView: (v) => ArrayBuffer.isView(v),
    isDataView: (v) => v instanceof DataView,
    isTypedArray: isTyped,
    isAsyncFunction: (v) => tag(v) === "[object AsyncFunction]" || tag(v) === "[object AsyncGeneratorFunction]",
    isGeneratorFunction: (v) => tag(v) === "[object GeneratorFunction]" || tag(v) === "[object AsyncGeneratorFunction]",
    isGeneratorObject: (v) => tag(v) === "[object Generator]",
    isBoxedPrimitive: (v) => ["[object Number]", "[object String]", "[object Boolean]", "[object BigInt]", "[object Symbol]"].includes(tag(v)) && typeof v === "object",
    isNumberObject: (v) => typeof v === "object" && tag(v) === "[object Number]",
    isStringObject: (v) => typeof v === "object" && tag(v) === "[object String]",
    isBooleanObject: (v) => typeof v === "object" && tag(v) === "[object Boolean]",
    isSymbolObject: (v) => typeof v === "object" && tag(v) === "[object Symbol]",
    isKeyObject: (v) => v !== null && typeof v === "object" && v.constructor && v.constructor.name.endsWith("KeyObject"),
    isCryptoKey: (v) => v !== null && typeof v === "object" && tag(v) === "[object CryptoKey]",
  };
  for (const name of ["Uint8Array", "Uint8ClampedArray", "Uint16Array", "Uint32Array", "Int8Array", "Int16Array", "Int32Array",
    "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
    types["is" + name] = (v) => isTyped(v) && Reflect.apply(typedTag, v, []) === name;
  }

  // Deep equality as assert.deepStrictEqual (strict) and assert.deepEqual (loose) judge it.
  function deepEqual(a, b, strict, memo) {
    if (strict ? Object.is(a, b) : a == b || (a !== a && b !== b)) return true;
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
    if (strict && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    const ta = tag(a);
    if (ta !== tag(b)) return false;
    if (memo.has(a) && memo.get(a) === b) return true;
    memo.set(a, b);
    if (ta === "[object Date]") {
      if (a.getTime() !== b.getTime()) return false;
    } else if (ta === "[object RegExp]") {
      if (a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex) return false;
    } else if (ta === "[object Error]") {
      if (a.message !== b.message || a.name !== b.name) return false;
    } else if (ArrayBuffer.isView(a)) {
      if (a.byteLength !== b.byteLength) return false;
      const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      if (!isTyped(a) || strict) {
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
      } else {
        for (let i = 0; i < a.length; i++) if (a[i] != b[i]) return false;
      }
    } else if (ta === "[object Number]" || ta === "[object String]" || ta === "[object Boolean]") {
      if (!Object.is(a.valueOf(), b.valueOf())) return false;
    } else if (a instanceof Map) {
      if (a.size !== b.size) return false;
      for (const [k, v] of a) {
        if (b.has(k)) {
          if (!deepEqual(v, b.get(k), strict, memo)) return false;
        } else {
          let found = false;
          for (const [k2, v2] of b) {
            if (deepEqual(k, k2, strict, memo) && deepEqual(v, v2, strict, memo)) {
              found = true;
              break;
            }
          }
          if (!found) return false;
        }
      }
    } else if (a instanceof Set) {
      if (a.size !== b.size) return false;
      for (const v of a) {
        if (b.has(v)) continue;
        if (typeof v !== "object" || v === null) return false;
        let found = false;
        for (const w of b) {
          if (deepEqual(v, w, strict, memo)) {
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
    }
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
      if (!deepEqual(a[k], b[k], strict, memo)) return false;
    }
    if (strict) {
      const sa = Object.getOwnPropertySymbols(a).filter((s) => Object.prototype.propertyIsEnumerable.call(a, s));
      const sb = Object.getOwnPropertySymbols(b).filter((s) => Object.prototype.propertyIsEnumerable.call(b, s));
      if (sa.length !== sb.length) return false;
      for (const s of sa) if (!deepEqual(a[s], b[s], strict, memo)) return false;
    }
    return true;
  }

  const web = () => fnbox.lib("web");
  const util = {
    format,
    formatWithOptions: (options, ...args) => format(...args),
    inspect,
    promisify,
    callbackify,
    inherits,
    deprecate,
    types,
    isDeepStrictEqual: (a, b) => deepEqual(a, b, true, new Map()),
    _deepEqual: deepEqual,
    isArray: Array.isArray,
    isBoolean: (v) => typeof v === "boolean",
    isNull: (v) => v === null,
    isNullOrUndefined: (v) => v == null,
    isNumber: (v) => typeof v === "number",
    isString: (v) => typeof v === "string",
    isSymbol: (v) => typeof v === "symbol",
    isUndefined: (v) => v === undefined,
    isRegExp: types.isRegExp,
    isObject: (v) => v !== null && typeof v === "object",
    isDate: types.isDate,
    isError: types.isNativeError,
    isFunction: (v) => typeof v === "function",
    isPrimitive: (v) => v === null || (typeof v !== "object" && typeof v !== "function"),
    stripVTControlCharacters: (s) => ("" + s).replace(/\u001b\[[0-9;]*[A-Za-z]/g, ""),
    toUSVString: (s) => ("" + s).toWellFormed(),
    debuglog: () => () => {},
    get TextEncoder() {
      return web().TextEncoder;
    },
    get TextDecoder() {
      return web().TextDecoder;
    },
  };
  Object.defineProperty(util, "_deepEqual", { enumerable: false });
  return util;
});
