// Node's `zlib` module: gzip, deflate, deflateRaw and brotli, each way, in sync, callback
// and promise (util.promisify) forms, and as streams. The work is a host call (Python's
// zlib and the `brotli` package) whose output is capped: a bomb answers a RangeError.
(function (fnbox) {
  "use strict";
  const { Buffer } = fnbox.lib("buffer");
  const codec = fnbox.lib("codec");

  function input(buffer) {
    if (typeof buffer === "string") return codec.utf8Encode(buffer);
    if (buffer instanceof Uint8Array) return buffer;
    if (ArrayBuffer.isView(buffer)) return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
    const error = new TypeError(
      'The "buffer" argument must be of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer. Received ' + fnbox.inspect(buffer),
    );
    error.code = "ERR_INVALID_ARG_TYPE";
    throw error;
  }

  function options(o) {
    const out = {};
    if (o && typeof o === "object") {
      if (typeof o.level === "number") out.level = o.level;
      if (typeof o.maxOutputLength === "number") out.maxOutputLength = o.maxOutputLength;
      const params = o.params;
      if (params && typeof params[constants.BROTLI_PARAM_QUALITY] === "number") out.quality = params[constants.BROTLI_PARAM_QUALITY];
    }
    return out;
  }

  function run(method, buffer, opts) {
    const bytes = input(buffer);
    const out = Uint8Array.fromBase64(fnbox.host("zlib", [method, codec.base64Encode(bytes, 0, bytes.length, false), options(opts)]));
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  }

  const METHODS = ["deflate", "inflate", "gzip", "gunzip", "deflateRaw", "inflateRaw", "unzip", "brotliCompress", "brotliDecompress"];
  const constants = {
    Z_NO_FLUSH: 0, Z_PARTIAL_FLUSH: 1, Z_SYNC_FLUSH: 2, Z_FULL_FLUSH: 3, Z_FINISH: 4, Z_OK: 0, Z_STREAM_END: 1,
    Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3, Z_BUF_ERROR: -5, Z_NO_COMPRESSION: 0,
    Z_BEST_SPEED: 1, Z_BEST_COMPRESSION: 9, Z_DEFAULT_COMPRESSION: -1, Z_DEFAULT_STRATEGY: 0,
    BROTLI_PARAM_MODE: 0, BROTLI_PARAM_QUALITY: 1, BROTLI_MIN_QUALITY: 0, BROTLI_MAX_QUALITY: 11, BROTLI_DEFAULT_QUALITY: 11,
    BROTLI_OPERATION_PROCESS: 0, BROTLI_OPERATION_FINISH: 2,
  };
  const exports = { constants, codes: { Z_OK: 0, Z_STREAM_END: 1, Z_DATA_ERROR: -3, Z_BUF_ERROR: -5 } };
  const promisify = Symbol.for("nodejs.util.promisify.custom");

  for (const method of METHODS) {
    exports[method + "Sync"] = (buffer, opts) => run(method, buffer, opts);
    const callbackForm = (buffer, opts, callback) => {
      if (typeof opts === "function") {
        callback = opts;
        opts = {};
      }
      if (typeof callback !== "function") {
        const error = new TypeError('The "callback" argument must be of type function');
        error.code = "ERR_INVALID_ARG_TYPE";
        throw error;
      }
      let result, failure = null;
      try {
        result = run(method, buffer, opts);
      } catch (e) {
        failure = e;
      }
      Promise.resolve().then(() => (failure ? callback(failure) : callback(null, result)));
    };
    Object.defineProperty(callbackForm, promisify, {
      value: (buffer, opts) => new Promise((resolve, reject) => callbackForm(buffer, opts || {}, (e, r) => (e ? reject(e) : resolve(r)))),
    });
    exports[method] = callbackForm;
    // A stream that gathers its input and transforms it at the end.
    const name = "create" + method[0].toUpperCase() + method.slice(1).replace("Compress", "Compress").replace("Decompress", "Decompress");
    const streamName = { brotliCompress: "createBrotliCompress", brotliDecompress: "createBrotliDecompress" }[method] || name;
    exports[streamName] = (opts) => {
      const { Transform } = fnbox.lib("stream");
      const chunks = [];
      return new Transform({
        transform(chunk, encoding, done) {
          chunks.push(Buffer.from(chunk, encoding));
          done();
        },
        flush(done) {
          try {
            done(null, run(method, Buffer.concat(chunks), opts));
          } catch (e) {
            done(e);
          }
        },
      });
    };
  }
  exports.crc32 = (data, value = 0) => {
    const bytes = input(data);
    let crc = ~value >>> 0;
    for (let i = 0; i < bytes.length; i++) {
      crc ^= bytes[i];
      for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    }
    return ~crc >>> 0;
  };
  return exports;
});
