// Node's `querystring` module.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");

  function qsEscape(str) {
    if (typeof str !== "string") {
      if (typeof str === "object") str = String(str);
      else str += "";
    }
    return encodeURIComponent(str.toWellFormed ? str.toWellFormed() : str);
  }

  // Percent-decoding that leaves a bad sequence as it is (Node's unescapeBuffer).
  function unescapeBuffer(s, decodeSpaces) {
    const bytes = codec.utf8Encode(s);
    const out = new Uint8Array(bytes.length);
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 43 && decodeSpaces) out[n++] = 32;
      else if (b === 37 && i + 2 < bytes.length + 0 && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
        out[n++] = (hex(bytes[i + 1]) << 4) | hex(bytes[i + 2]);
        i += 2;
      } else out[n++] = b;
    }
    return out.subarray(0, n);
  }
  const isHex = (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
  const hex = (c) => (c <= 57 ? c - 48 : (c | 32) - 87);

  function qsUnescape(s, decodeSpaces) {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      const bytes = unescapeBuffer(s, decodeSpaces);
      return codec.utf8Decode(bytes, 0, bytes.length, false, false);
    }
  }

  function stringifyPrimitive(v) {
    if (typeof v === "string") return v;
    if (typeof v === "number" && isFinite(v)) return "" + v;
    if (typeof v === "bigint") return "" + v;
    if (typeof v === "boolean") return v ? "true" : "false";
    return "";
  }

  function stringify(obj, sep = "&", eq = "=", options) {
    sep = sep || "&";
    eq = eq || "=";
    const encode = options && typeof options.encodeURIComponent === "function" ? options.encodeURIComponent : exports.escape;
    if (obj === null || typeof obj !== "object") return "";
    const parts = [];
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      const ks = encode(stringifyPrimitive(k)) + eq;
      if (Array.isArray(v)) {
        for (const item of v) parts.push(ks + encode(stringifyPrimitive(item)));
      } else {
        parts.push(ks + encode(stringifyPrimitive(v)));
      }
    }
    return parts.join(sep);
  }

  function parse(qs, sep = "&", eq = "=", options) {
    const obj = Object.create(null);
    if (typeof qs !== "string" || qs.length === 0) return obj;
    sep = sep || "&";
    eq = eq || "=";
    let maxKeys = 1000;
    if (options && typeof options.maxKeys === "number") maxKeys = options.maxKeys;
    const decode = options && typeof options.decodeURIComponent === "function" ? options.decodeURIComponent : exports.unescape;
    let pieces = qs.split(sep);
    if (maxKeys > 0 && pieces.length > maxKeys) pieces = pieces.slice(0, maxKeys);
    for (const piece of pieces) {
      if (piece.length === 0) continue;
      const at = piece.indexOf(eq);
      const rawKey = at >= 0 ? piece.slice(0, at) : piece;
      const rawValue = at >= 0 ? piece.slice(at + eq.length) : "";
      const key = decodeOne(rawKey.replace(/\+/g, " "), decode);
      const value = decodeOne(rawValue.replace(/\+/g, " "), decode);
      if (!(key in obj)) obj[key] = value;
      else if (Array.isArray(obj[key])) obj[key].push(value);
      else obj[key] = [obj[key], value];
    }
    return obj;
  }

  function decodeOne(s, decode) {
    try {
      return decode(s, true);
    } catch (_) {
      return qsUnescape(s, true);
    }
  }

  const exports = {
    parse,
    stringify,
    decode: parse,
    encode: stringify,
    escape: qsEscape,
    unescape: qsUnescape,
    unescapeBuffer: (s, decodeSpaces) => fnbox.lib("buffer").Buffer.from(unescapeBuffer(s, decodeSpaces)),
  };
  return exports;
});
