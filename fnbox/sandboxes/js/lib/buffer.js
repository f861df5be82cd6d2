// Node's `buffer` module: Buffer, a Uint8Array with Node's methods and encodings.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");
  const { normalize } = codec;
  const kMaxLength = 2 ** 32;

  class FastBuffer extends Uint8Array {
    constructor(a, b, c) {
      super(a, b, c);
    }
  }

  function errorWith(Ctor, code, message) {
    const error = new Ctor(message);
    error.code = code;
    return error;
  }

  function received(value) {
    if (value === null) return "null";
    if (typeof value === "function") return "function " + value.name;
    if (typeof value === "object") {
      const name = value.constructor && value.constructor.name;
      return name ? "an instance of " + name : fnbox.inspect(value);
    }
    return "type " + typeof value + " (" + fnbox.inspect(value) + ")";
  }

  function argType(name, expected, value) {
    return errorWith(TypeError, "ERR_INVALID_ARG_TYPE", 'The "' + name + '" argument must be ' + expected + ". Received " + received(value));
  }

  function outOfRange(name, range, value) {
    return errorWith(RangeError, "ERR_OUT_OF_RANGE", 'The value of "' + name + '" is out of range. It must be ' + range + ". Received " + value);
  }

  function encodingOf(encoding) {
    const e = normalize(encoding);
    if (e === undefined) throw errorWith(TypeError, "ERR_UNKNOWN_ENCODING", "Unknown encoding: " + encoding);
    return e;
  }

  function adopt(u8) {
    return new FastBuffer(u8.buffer, u8.byteOffset, u8.length);
  }

  function checkSize(size) {
    if (typeof size !== "number") throw argType("size", "of type number", size);
    if (!(size >= 0 && size <= kMaxLength)) throw outOfRange("size", ">= 0 && <= " + kMaxLength, size);
  }

  function Buffer(arg, encodingOrOffset, length) {
    if (typeof arg === "number") {
      if (typeof encodingOrOffset === "string") throw argType("string", "of type string", arg);
      return Buffer.alloc(arg);
    }
    return Buffer.from(arg, encodingOrOffset, length);
  }
  Object.setPrototypeOf(Buffer, Uint8Array);
  Buffer.prototype = FastBuffer.prototype;
  Object.defineProperty(FastBuffer.prototype, "constructor", { value: Buffer, writable: true, configurable: true });
  Buffer.poolSize = 8192;

  Buffer.from = function from(value, encodingOrOffset, length) {
    if (typeof value === "string") return adopt(codec.encode(value, encodingOf(encodingOrOffset)));
    if (typeof value === "object" && value !== null) {
      if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
        const offset = encodingOrOffset === undefined ? 0 : +encodingOrOffset || 0;
        const max = value.byteLength - offset;
        if (max < 0) throw errorWith(RangeError, "ERR_BUFFER_OUT_OF_BOUNDS", '"offset" is outside of buffer bounds');
        const n = length === undefined ? max : +length || 0;
        if (n > max) throw errorWith(RangeError, "ERR_BUFFER_OUT_OF_BOUNDS", '"length" is outside of buffer bounds');
        return new FastBuffer(value, offset, n);
      }
      if (ArrayBuffer.isView(value)) {
        if (value instanceof Uint8Array) {
          const out = new FastBuffer(value.length);
          out.set(value);
          return out;
        }
        if (!(value instanceof DataView)) return fromArrayLike(value);
        return adopt(new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)));
      }
      const primitive = value.valueOf && value.valueOf();
      if (primitive != null && primitive !== value) return Buffer.from(primitive, encodingOrOffset, length);
      if (typeof value.length === "number" || Array.isArray(value)) return fromArrayLike(value);
      if (value.type === "Buffer" && Array.isArray(value.data)) return fromArrayLike(value.data);
      if (typeof value[Symbol.toPrimitive] === "function") {
        const s = value[Symbol.toPrimitive]("string");
        if (typeof s === "string") return Buffer.from(s, encodingOrOffset);
      }
    }
    throw argType(
      "first",
      "of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object",
      value,
    );
  };

  function fromArrayLike(items) {
    const n = items.length > 0 ? items.length >>> 0 : 0;
    const out = new FastBuffer(n);
    for (let i = 0; i < n; i++) out[i] = items[i];
    return out;
  }

  Buffer.alloc = function alloc(size, fill, encoding) {
    checkSize(size);
    const out = new FastBuffer(size);
    if (fill !== undefined && fill !== 0 && size > 0) out.fill(fill, 0, out.length, encoding);
    return out;
  };
  Buffer.allocUnsafe = function allocUnsafe(size) {
    checkSize(size);
    return new FastBuffer(size);
  };
  Buffer.allocUnsafeSlow = Buffer.allocUnsafe;
  Buffer.isBuffer = function isBuffer(b) {
    return b instanceof Buffer;
  };
  Buffer.isEncoding = function isEncoding(encoding) {
    return typeof encoding === "string" && encoding.length !== 0 && normalize(encoding) !== undefined;
  };
  Buffer.byteLength = function byteLength(string, encoding) {
    if (typeof string !== "string") {
      if (ArrayBuffer.isView(string) || string instanceof ArrayBuffer || string instanceof SharedArrayBuffer) {
        return string.byteLength;
      }
      throw argType("string", "of type string or an instance of Buffer or ArrayBuffer", string);
    }
    const e = normalize(encoding) || "utf8";
    switch (e) {
      case "utf8":
        return codec.utf8Length(string);
      case "latin1":
      case "ascii":
        return string.length;
      case "utf16le":
        return string.length * 2;
      case "hex":
        return string.length >>> 1;
      default:
        return codec.base64Bytes(string).length;
    }
  };
  Buffer.concat = function concat(list, totalLength) {
    if (!Array.isArray(list)) throw argType("list", "an instance of Array", list);
    if (list.length === 0) return new FastBuffer(0);
    let total = totalLength;
    if (total === undefined) {
      total = 0;
      for (let i = 0; i < list.length; i++) {
        if (!(list[i] instanceof Uint8Array)) throw argType("list[" + i + "]", "an instance of Buffer or Uint8Array", list[i]);
        total += list[i].length;
      }
    }
    const out = Buffer.alloc(total);
    let at = 0;
    for (let i = 0; i < list.length && at < total; i++) {
      const b = list[i];
      if (!(b instanceof Uint8Array)) throw argType("list[" + i + "]", "an instance of Buffer or Uint8Array", b);
      const n = Math.min(b.length, total - at);
      out.set(n === b.length ? b : b.subarray(0, n), at);
      at += n;
    }
    return out;
  };
  Buffer.compare = function compare(a, b) {
    if (!(a instanceof Uint8Array)) throw argType("buf1", "an instance of Buffer or Uint8Array", a);
    if (!(b instanceof Uint8Array)) throw argType("buf2", "an instance of Buffer or Uint8Array", b);
    return compareBytes(a, 0, a.length, b, 0, b.length);
  };
  Buffer.of = function of(...items) {
    return fromArrayLike(items);
  };

  function compareBytes(a, as, ae, b, bs, be) {
    const n = Math.min(ae - as, be - bs);
    for (let i = 0; i < n; i++) {
      if (a[as + i] !== b[bs + i]) return a[as + i] < b[bs + i] ? -1 : 1;
    }
    return ae - as < be - bs ? -1 : ae - as > be - bs ? 1 : 0;
  }

  function clamp(value, fallback, length) {
    if (value === undefined) return fallback;
    let n = Math.trunc(+value) || 0;
    if (n < 0) n = 0;
    return n > length ? length : n;
  }

  const proto = FastBuffer.prototype;
  const methods = {
    toString(encoding, start, end) {
      if (arguments.length === 0) return codec.utf8Decode(this, 0, this.length, false, false);
      const e = encodingOf(encoding);
      const s = clamp(start, 0, this.length);
      const f = clamp(end, this.length, this.length);
      return f <= s ? "" : codec.decode(this, e, s, f);
    },
    toLocaleString(encoding, start, end) {
      return this.toString(encoding, start, end);
    },
    toJSON() {
      return { type: "Buffer", data: Array.from(this) };
    },
    equals(other) {
      if (!(other instanceof Uint8Array)) throw argType("otherBuffer", "an instance of Buffer or Uint8Array", other);
      return this.length === other.length && compareBytes(this, 0, this.length, other, 0, other.length) === 0;
    },
    compare(target, targetStart, targetEnd, sourceStart, sourceEnd) {
      if (!(target instanceof Uint8Array)) throw argType("target", "an instance of Buffer or Uint8Array", target);
      return compareBytes(
        this, clamp(sourceStart, 0, this.length), clamp(sourceEnd, this.length, this.length),
        target, clamp(targetStart, 0, target.length), clamp(targetEnd, target.length, target.length),
      );
    },
    copy(target, targetStart, sourceStart, sourceEnd) {
      const ts = clamp(targetStart, 0, target.length);
      const ss = clamp(sourceStart, 0, this.length);
      const se = clamp(sourceEnd, this.length, this.length);
      const n = Math.min(se - ss, target.length - ts);
      if (n <= 0) return 0;
      target.set(this.subarray(ss, ss + n), ts);
      return n;
    },
    slice(start, end) {
      return this.subarray(start, end);
    },
    write(string, offset, length, encoding) {
      if (typeof string !== "string") throw argType("argument", "of type string", string);
      if (typeof offset === "string") {
        encoding = offset;
        offset = 0;
        length = undefined;
      } else if (typeof length === "string") {
        encoding = length;
        length = undefined;
      }
      const at = offset === undefined ? 0 : offset >>> 0;
      if (at > this.length) throw outOfRange("offset", ">= 0 && <= " + this.length, offset);
      const room = this.length - at;
      const max = length === undefined ? room : Math.min(room, length >>> 0);
      const e = encodingOf(encoding);
      if (e === "utf8") return codec.utf8Write(string, this, at, max);
      let bytes = codec.encode(string, e);
      if (bytes.length > max) bytes = bytes.subarray(0, e === "utf16le" ? max & ~1 : max);
      this.set(bytes, at);
      return bytes.length;
    },
    fill(value, offset, end, encoding) {
      if (typeof offset === "string") {
        encoding = offset;
        offset = 0;
        end = this.length;
      } else if (typeof end === "string") {
        encoding = end;
        end = this.length;
      }
      const s = clamp(offset, 0, this.length);
      const f = clamp(end, this.length, this.length);
      if (typeof value === "number" || typeof value === "boolean") {
        Uint8Array.prototype.fill.call(this, +value & 255, s, f);
        return this;
      }
      const bytes = typeof value === "string" ? codec.encode(value, encodingOf(encoding)) : value;
      if (bytes.length === 0) {
        if (typeof value === "string" && value.length === 0) {
          Uint8Array.prototype.fill.call(this, 0, s, f);
          return this;
        }
        throw errorWith(TypeError, "ERR_INVALID_ARG_VALUE", "The argument 'value' is invalid.");
      }
      for (let i = s, k = 0; i < f; i++, k = k + 1 === bytes.length ? 0 : k + 1) this[i] = bytes[k];
      return this;
    },
    indexOf(value, byteOffset, encoding) {
      return search(this, value, byteOffset, encoding, true);
    },
    lastIndexOf(value, byteOffset, encoding) {
      return search(this, value, byteOffset, encoding, false);
    },
    includes(value, byteOffset, encoding) {
      return search(this, value, byteOffset, encoding, true) !== -1;
    },
    swap16() {
      return swap(this, 2);
    },
    swap32() {
      return swap(this, 4);
    },
    swap64() {
      return swap(this, 8);
    },
    inspect() {
      const shown = [];
      for (let i = 0; i < this.length && i < 50; i++) shown.push((this[i] < 16 ? "0" : "") + this[i].toString(16));
      return "<Buffer" + (shown.length ? " " + shown.join(" ") : "") + (this.length > 50 ? " ... " + (this.length - 50) + " more bytes" : "") + ">";
    },
  };

  function swap(b, size) {
    if (b.length % size !== 0) {
      throw errorWith(RangeError, "ERR_INVALID_BUFFER_SIZE", "Buffer size must be a multiple of " + size * 8 + "-bits");
    }
    for (let i = 0; i < b.length; i += size) {
      for (let j = 0; j < size / 2; j++) {
        const t = b[i + j];
        b[i + j] = b[i + size - 1 - j];
        b[i + size - 1 - j] = t;
      }
    }
    return b;
  }

  function search(b, value, byteOffset, encoding, forward) {
    if (typeof byteOffset === "string") {
      encoding = byteOffset;
      byteOffset = undefined;
    }
    let needle;
    if (typeof value === "number") needle = [value & 255];
    else if (typeof value === "string") needle = codec.encode(value, encodingOf(encoding));
    else if (value instanceof Uint8Array) needle = value;
    else throw argType("value", "one of type number or string or an instance of Buffer or Uint8Array", value);
    const n = b.length;
    let start = byteOffset === undefined ? (forward ? 0 : n) : Math.trunc(+byteOffset) || 0;
    if (start < 0) start += n;
    if (forward) {
      if (start < 0) start = 0;
      if (needle.length === 0) return start <= n ? start : n;
      for (let i = start; i <= n - needle.length; i++) if (matches(b, i, needle)) return i;
    } else {
      if (start > n - needle.length) start = n - needle.length;
      for (let i = start; i >= 0; i--) if (matches(b, i, needle)) return i;
    }
    return -1;
  }

  function matches(b, at, needle) {
    for (let k = 0; k < needle.length; k++) if (b[at + k] !== needle[k]) return false;
    return true;
  }

  // The number family: readUInt16LE and friends, through a DataView.
  function view(b) {
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  function checkOffset(b, offset, size) {
    if (offset === undefined) return 0;
    if (typeof offset !== "number") throw argType("offset", "of type number", offset);
    if (!Number.isInteger(offset)) throw outOfRange("offset", "an integer", offset);
    if (offset < 0 || offset + size > b.length) {
      if (b.length - size < 0) {
        throw errorWith(RangeError, "ERR_BUFFER_OUT_OF_BOUNDS", "Attempt to access memory outside buffer bounds");
      }
      throw outOfRange("offset", ">= 0 and <= " + (b.length - size), offset);
    }
    return offset;
  }

  function checkValue(value, min, max, size) {
    if (typeof value !== "number" && typeof value !== "bigint") throw argType("value", "of type number", value);
    if (value < min || value > max) {
      const range = size > 4 || typeof value === "bigint" ? ">= " + min + "n and <= " + max + "n" : ">= " + min + " and <= " + max;
      throw outOfRange("value", range, value);
    }
  }

  const NUMBERS = [
    ["UInt8", "Uint8", 1, 0, 255],
    ["Int8", "Int8", 1, -128, 127],
    ["UInt16", "Uint16", 2, 0, 65535],
    ["Int16", "Int16", 2, -32768, 32767],
    ["UInt32", "Uint32", 4, 0, 4294967295],
    ["Int32", "Int32", 4, -2147483648, 2147483647],
    ["Float", "Float32", 4, -Infinity, Infinity],
    ["Double", "Float64", 8, -Infinity, Infinity],
    ["BigUInt64", "BigUint64", 8, 0n, 2n ** 64n - 1n],
    ["BigInt64", "BigInt64", 8, -(2n ** 63n), 2n ** 63n - 1n],
  ];
  for (const [name, dv, size, min, max] of NUMBERS) {
    const get = DataView.prototype["get" + dv];
    const set = DataView.prototype["set" + dv];
    const ends = size === 1 ? [""] : ["LE", "BE"];
    for (const end of ends) {
      const little = end === "LE";
      const read = function (offset) {
        const at = checkOffset(this, offset, size);
        return get.call(view(this), at, little);
      };
      const write = function (value, offset) {
        const at = checkOffset(this, offset, size);
        if (!name.startsWith("Float") && name !== "Double") checkValue(value, min, max, size);
        set.call(view(this), at, name.startsWith("Big") ? value : +value, little);
        return at + size;
      };
      methods["read" + name + end] = read;
      methods["write" + name + end] = write;
      if (name.includes("UInt")) {
        methods["read" + name.replace("UInt", "Uint") + end] = read;
        methods["write" + name.replace("UInt", "Uint") + end] = write;
      }
    }
  }

  function variable(little, signed, read) {
    return function (offsetOrValue, offsetOrLength, maybeLength) {
      const value = read ? undefined : offsetOrValue;
      const offset = read ? offsetOrValue : offsetOrLength;
      const length = read ? offsetOrLength : maybeLength;
      if (!(length >= 1 && length <= 6)) throw outOfRange("byteLength", ">= 1 and <= 6", length);
      const at = checkOffset(this, offset, length);
      if (read) {
        let result = 0;
        for (let i = 0; i < length; i++) result += this[at + (little ? i : length - 1 - i)] * 2 ** (8 * i);
        if (signed && result >= 2 ** (8 * length - 1)) result -= 2 ** (8 * length);
        return result;
      }
      const limit = 2 ** (8 * length);
      if (signed) checkValue(value, -(limit / 2), limit / 2 - 1, length);
      else checkValue(value, 0, limit - 1, length);
      let v = value < 0 ? value + limit : value;
      for (let i = 0; i < length; i++) {
        this[at + (little ? i : length - 1 - i)] = v % 256;
        v = Math.floor(v / 256);
      }
      return at + length;
    };
  }
  methods.readUIntLE = methods.readUintLE = variable(true, false, true);
  methods.readUIntBE = methods.readUintBE = variable(false, false, true);
  methods.readIntLE = variable(true, true, true);
  methods.readIntBE = variable(false, true, true);
  methods.writeUIntLE = methods.writeUintLE = variable(true, false, false);
  methods.writeUIntBE = methods.writeUintBE = variable(false, false, false);
  methods.writeIntLE = variable(true, true, false);
  methods.writeIntBE = variable(false, true, false);

  for (const name of Object.keys(methods)) {
    Object.defineProperty(proto, name, { value: methods[name], writable: true, configurable: true, enumerable: false });
  }
  fnbox.trustInspect(methods.inspect);
  Object.defineProperty(proto, Symbol.for("nodejs.util.inspect.custom"), {
    value: methods.inspect,
    writable: true,
    configurable: true,
  });
  Object.defineProperty(proto, "parent", { get() { return this.buffer; }, configurable: true });
  Object.defineProperty(proto, "offset", { get() { return this.byteOffset; }, configurable: true });

  function SlowBuffer(size) {
    return Buffer.allocUnsafe(size);
  }

  const web = () => fnbox.lib("web");
  return {
    Buffer,
    SlowBuffer,
    kMaxLength,
    kStringMaxLength: 2 ** 29 - 24,
    constants: { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: 2 ** 29 - 24 },
    INSPECT_MAX_BYTES: 50,
    atob: (s) => web().atob(s),
    btoa: (s) => web().btoa(s),
    get Blob() {
      return web().Blob;
    },
    isUtf8(input) {
      try {
        codec.utf8Decode(input, 0, input.length, true, false);
        return true;
      } catch (_) {
        return false;
      }
    },
    isAscii(input) {
      for (let i = 0; i < input.length; i++) if (input[i] > 127) return false;
      return true;
    },
    transcode(source, from, to) {
      return Buffer.from(codec.decode(source, encodingOf(from), 0, source.length), encodingOf(to));
    },
  };
});
