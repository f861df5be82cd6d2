// Text encodings between JS strings and bytes, as Node's Buffer and the web's TextEncoder
// and TextDecoder do them: utf-8 (lone surrogates and bad bytes become U+FFFD), utf-16le,
// latin1, ascii, hex, base64 and base64url.
(function (fnbox) {
  "use strict";
  const fromCharCode = String.fromCharCode;
  const apply = Reflect.apply;
  const CHUNK = 8192;

  function utf8Length(s) {
    const n = s.length;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) bytes += 1;
      else if (c < 0x800) bytes += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        bytes += 4;
        i++;
      } else bytes += 3;
    }
    return bytes;
  }

  // Writes s as utf-8 into out from `at`, at most `limit` bytes, whole characters only.
  function utf8Write(s, out, at, limit) {
    const n = s.length;
    let j = at;
    const end = at + limit;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        if (j + 1 > end) break;
        out[j++] = c;
      } else if (c < 0x800) {
        if (j + 2 > end) break;
        out[j++] = 0xc0 | (c >> 6);
        out[j++] = 0x80 | (c & 63);
      } else {
        if (c >= 0xd800 && c <= 0xdfff) {
          const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
          if (c <= 0xdbff && (d & 0xfc00) === 0xdc00) {
            if (j + 4 > end) break;
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
            out[j++] = 0xf0 | (c >> 18);
            out[j++] = 0x80 | ((c >> 12) & 63);
            out[j++] = 0x80 | ((c >> 6) & 63);
            out[j++] = 0x80 | (c & 63);
            continue;
          }
          c = 0xfffd;
        }
        if (j + 3 > end) break;
        out[j++] = 0xe0 | (c >> 12);
        out[j++] = 0x80 | ((c >> 6) & 63);
        out[j++] = 0x80 | (c & 63);
      }
    }
    return j - at;
  }

  function utf8Encode(s) {
    const out = new Uint8Array(utf8Length(s));
    utf8Write(s, out, 0, out.length);
    return out;
  }

  function flush(units, count, parts) {
    parts.push(apply(fromCharCode, null, count === units.length ? units : units.slice(0, count)));
  }

  // WHATWG utf-8 decode (maximal subparts replaced by U+FFFD); `fatal` throws instead.
  // Answers [text, bytes of an incomplete character left at the end] when `stream` is set.
  function utf8Decode(bytes, start, end, fatal, stream) {
    const parts = [];
    const units = [];
    let count = 0;
    let i = start;
    const bad = () => {
      if (fatal) {
        const error = new TypeError("The encoded data was not valid for encoding utf-8");
        error.code = "ERR_ENCODING_INVALID_ENCODED_DATA";
        throw error;
      }
      units[count++] = 0xfffd;
    };
    while (i < end) {
      if (count >= CHUNK - 2) {
        flush(units, count, parts);
        count = 0;
      }
      const b = bytes[i];
      if (b < 0x80) {
        units[count++] = b;
        i++;
        continue;
      }
      let need = 0, cp = 0, low = 0x80, high = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
        cp = b & 0x1f;
      } else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) low = 0xa0;
        if (b === 0xed) high = 0x9f;
        need = 2;
        cp = b & 0xf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) low = 0x90;
        if (b === 0xf4) high = 0x8f;
        need = 3;
        cp = b & 0x7;
      } else {
        bad();
        i++;
        continue;
      }
      let k = 1;
      let ok = true;
      for (; k <= need; k++) {
        if (i + k >= end) {
          ok = false;
          break;
        }
        const c = bytes[i + k];
        if (c < low || c > high) {
          ok = false;
          break;
        }
        low = 0x80;
        high = 0xbf;
        cp = (cp << 6) | (c & 0x3f);
      }
      if (!ok) {
        if (i + k >= end && stream) {
          flush(units, count, parts);
          return [parts.join(""), end - i];
        }
        bad();
        i += k;
        continue;
      }
      i += need + 1;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        units[count++] = 0xd800 + (cp >> 10);
        units[count++] = 0xdc00 + (cp & 0x3ff);
      } else units[count++] = cp;
    }
    flush(units, count, parts);
    const text = parts.length === 1 ? parts[0] : parts.join("");
    return stream ? [text, 0] : text;
  }

  function latin1Decode(bytes, start, end, mask) {
    let s = "";
    for (let i = start; i < end; i += CHUNK) {
      const piece = bytes.subarray(i, i + CHUNK < end ? i + CHUNK : end);
      if (mask === 0xff) s += apply(fromCharCode, null, piece);
      else {
        const units = new Array(piece.length);
        for (let k = 0; k < piece.length; k++) units[k] = piece[k] & mask;
        s += apply(fromCharCode, null, units);
      }
    }
    return s;
  }

  function utf16Decode(bytes, start, end) {
    let s = "";
    const units = [];
    for (let i = start; i + 1 < end; i += 2) {
      units[units.length] = bytes[i] | (bytes[i + 1] << 8);
      if (units.length === CHUNK) {
        s += apply(fromCharCode, null, units);
        units.length = 0;
      }
    }
    return s + apply(fromCharCode, null, units);
  }

  const HEX = "0123456789abcdef";
  function hexEncode(bytes, start, end) {
    if (start === 0 && end === bytes.length && typeof bytes.toHex === "function") {
      return Uint8Array.prototype.toHex.call(bytes);
    }
    const parts = [];
    for (let i = start; i < end; i++) parts[parts.length] = HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
    return parts.join("");
  }

  function hexValue(c) {
    if (c >= 48 && c <= 57) return c - 48;
    if (c >= 97 && c <= 102) return c - 87;
    if (c >= 65 && c <= 70) return c - 55;
    return -1;
  }

  // Node's hex: pairs until the first that is not one.
  function hexBytes(s) {
    const n = s.length >> 1;
    const out = new Uint8Array(n);
    let k = 0;
    for (; k < n; k++) {
      const hi = hexValue(s.charCodeAt(2 * k));
      const lo = hexValue(s.charCodeAt(2 * k + 1));
      if (hi < 0 || lo < 0) break;
      out[k] = (hi << 4) | lo;
    }
    return k === n ? out : out.subarray(0, k);
  }

  // Node's base64 decoding: either alphabet, whitespace and stray characters skipped, ends at '='.
  function base64Bytes(s) {
    let clean = s;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
      const stop = s.indexOf("=");
      clean = (stop >= 0 ? s.slice(0, stop) : s).replace(/[^A-Za-z0-9+/\-_]/g, "").replace(/-/g, "+").replace(/_/g, "/");
    } else {
      clean = s.replace(/=+$/, "");
    }
    if (clean.length % 4 === 1) clean = clean.slice(0, -1);
    return Uint8Array.fromBase64(clean, { lastChunkHandling: "loose" });
  }

  function base64Encode(bytes, start, end, url) {
    const view = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
    return Uint8Array.prototype.toBase64.call(
      view,
      url ? { alphabet: "base64url", omitPadding: true } : undefined,
    );
  }

  const ENCODINGS = {
    utf8: "utf8", "utf-8": "utf8", hex: "hex", base64: "base64", base64url: "base64url", latin1: "latin1",
    binary: "latin1", ascii: "ascii", ucs2: "utf16le", "ucs-2": "utf16le", utf16le: "utf16le", "utf-16le": "utf16le",
  };

  function normalize(encoding) {
    if (encoding === undefined || encoding === null || encoding === "utf8" || encoding === "utf-8") return "utf8";
    const key = ("" + encoding).toLowerCase();
    return Object.prototype.hasOwnProperty.call(ENCODINGS, key) ? ENCODINGS[key] : undefined;
  }

  // Bytes of a string in an encoding (a fresh Uint8Array).
  function encode(s, encoding) {
    switch (encoding) {
      case "utf8":
        return utf8Encode(s);
      case "hex":
        return hexBytes(s);
      case "base64":
      case "base64url":
        return base64Bytes(s);
      case "latin1":
      case "ascii": {
        const out = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
        return out;
      }
      case "utf16le": {
        const out = new Uint8Array(s.length * 2);
        for (let i = 0; i < s.length; i++) {
          const c = s.charCodeAt(i);
          out[2 * i] = c & 0xff;
          out[2 * i + 1] = c >> 8;
        }
        return out;
      }
    }
    throw new TypeError("Unknown encoding: " + encoding);
  }

  function decode(bytes, encoding, start, end) {
    switch (encoding) {
      case "utf8":
        return utf8Decode(bytes, start, end, false, false);
      case "hex":
        return hexEncode(bytes, start, end);
      case "base64":
        return base64Encode(bytes, start, end, false);
      case "base64url":
        return base64Encode(bytes, start, end, true);
      case "latin1":
        return latin1Decode(bytes, start, end, 0xff);
      case "ascii":
        return latin1Decode(bytes, start, end, 0x7f);
      case "utf16le":
        return utf16Decode(bytes, start, end);
    }
    throw new TypeError("Unknown encoding: " + encoding);
  }

  return Object.freeze({
    utf8Length, utf8Write, utf8Encode, utf8Decode, latin1Decode, utf16Decode, hexEncode, hexBytes, base64Bytes,
    base64Encode, normalize, encode, decode,
  });
});
