// Node's `crypto` module. Hashes, HMAC, randomness, key derivation, ciphers, keys and
// signatures are host calls (Python's hashlib and hmac, the `cryptography` package); this
// file holds Node's API around them. Data passes whole: update() gathers, digest() and
// final() make the one call.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");
  const { Buffer } = fnbox.lib("buffer");
  const host = fnbox.host;

  function error(Ctor, code, message) {
    const e = new Ctor(message);
    e.code = code;
    return e;
  }

  function received(value) {
    if (value === null || value === undefined) return "" + value;
    if (typeof value === "function") return "function " + value.name;
    if (typeof value === "object") {
      const name = value.constructor && value.constructor.name;
      return name ? "an instance of " + name : fnbox.inspect(value);
    }
    return "type " + typeof value + " (" + fnbox.inspect(value) + ")";
  }

  function argType(name, expected, value) {
    return error(TypeError, "ERR_INVALID_ARG_TYPE", 'The "' + name + '" argument must be ' + expected + ". Received " + received(value));
  }

  // Bytes of a string (in `encoding`), a Buffer, a TypedArray, a DataView or an ArrayBuffer.
  function bytes(data, encoding, name = "data") {
    if (typeof data === "string") return codec.encode(data, codec.normalize(encoding) || "utf8");
    if (data instanceof Uint8Array) return data;
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return new Uint8Array(data);
    throw argType(name, "of type string or an instance of Buffer, TypedArray, or DataView", data);
  }

  const b64 = (u8) => codec.base64Encode(u8, 0, u8.length, false);
  const fromB64 = (s) => {
    const u8 = Uint8Array.fromBase64(s);
    return Buffer.from(u8.buffer, u8.byteOffset, u8.length);
  };

  function concat(chunks) {
    if (chunks.length === 1) return chunks[0];
    let n = 0;
    for (const c of chunks) n += c.length;
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  function output(buffer, encoding) {
    if (encoding === undefined || encoding === "buffer") return buffer;
    const e = codec.normalize(encoding);
    if (e === undefined) throw error(TypeError, "ERR_UNKNOWN_ENCODING", "Unknown encoding: " + encoding);
    return buffer.toString(e);
  }

  // ---- hashes and HMAC ----
  const HASHES = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512-224", "sha512-256", "sha3-224",
    "sha3-256", "sha3-384", "sha3-512", "ripemd160"];
  function hashName(algorithm) {
    if (typeof algorithm !== "string") throw argType("algorithm", "of type string", algorithm);
    let name = algorithm.toLowerCase();
    if (name.startsWith("rsa-")) name = name.slice(4);
    if (name.startsWith("ecdsa-with-")) name = name.slice(11);
    if (name === "sha-1" || name === "sha-256" || name === "sha-384" || name === "sha-512") name = name.replace("-", "");
    if (!HASHES.includes(name)) throw error(Error, "ERR_OSSL_EVP_UNSUPPORTED", "Digest method not supported");
    return name;
  }

  class Hash {
    #algorithm;
    #chunks = [];
    #done = false;
    constructor(algorithm, options) {
      this.#algorithm = hashName(algorithm);
    }
    update(data, encoding) {
      if (this.#done) throw error(Error, "ERR_CRYPTO_HASH_FINALIZED", "Digest already called");
      this.#chunks.push(bytes(data, encoding).slice());
      return this;
    }
    digest(encoding) {
      if (this.#done) throw error(Error, "ERR_CRYPTO_HASH_FINALIZED", "Digest already called");
      this.#done = true;
      return output(fromB64(host("hash", [this.#algorithm, b64(concat(this.#chunks))])), encoding);
    }
    copy() {
      const h = new Hash(this.#algorithm);
      for (const c of this.#chunks) h.update(c);
      return h;
    }
  }

  class Hmac {
    #algorithm;
    #key;
    #chunks = [];
    #done = false;
    constructor(algorithm, key, options) {
      this.#algorithm = hashName(algorithm);
      this.#key = key instanceof KeyObject ? secretOf(key) : bytes(key, undefined, "key").slice();
    }
    update(data, encoding) {
      if (this.#done) throw error(Error, "ERR_CRYPTO_HASH_FINALIZED", "Digest already called");
      this.#chunks.push(bytes(data, encoding).slice());
      return this;
    }
    digest(encoding) {
      if (this.#done) return output(Buffer.alloc(0), encoding);
      this.#done = true;
      return output(fromB64(host("hmac", [this.#algorithm, b64(this.#key), b64(concat(this.#chunks))])), encoding);
    }
  }

  // ---- randomness ----
  function randomBytes(size, callback) {
    if (typeof size !== "number" || !(size >= 0 && size <= 2 ** 31 - 1) || !Number.isInteger(size)) {
      throw typeof size !== "number"
        ? argType("size", "of type number", size)
        : error(RangeError, "ERR_OUT_OF_RANGE", 'The value of "size" is out of range. It must be >= 0 && <= 2147483647. Received ' + size);
    }
    const buffer = fromB64(host("random", [size]));
    if (typeof callback === "function") {
      Promise.resolve().then(() => callback(null, buffer));
      return undefined;
    }
    return buffer;
  }

  function randomFillSync(target, offset = 0, size) {
    const view = bytes(target, undefined, "buf");
    const n = size === undefined ? view.length - offset : size;
    view.set(fromB64(host("random", [n])), offset);
    return target;
  }

  function getRandomValues(array) {
    if (!ArrayBuffer.isView(array) || array instanceof DataView || array instanceof Float32Array || array instanceof Float64Array) {
      const e = new (fnbox.lib("web").DOMException)("The data argument must be an integer-type TypedArray", "TypeMismatchError");
      throw e;
    }
    if (array.byteLength > 65536) {
      throw new (fnbox.lib("web").DOMException)(
        "The ArrayBufferView's byte length (" + array.byteLength + ") exceeds the number of bytes of entropy available via this API (65536)",
        "QuotaExceededError",
      );
    }
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(fromB64(host("random", [array.byteLength])));
    return array;
  }

  function randomUUID() {
    const b = fromB64(host("random", [16]));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = b.toString("hex");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function randomInt(min, max, callback) {
    if (typeof max !== "number") {
      callback = max;
      max = min;
      min = 0;
    }
    const value = host("randomInt", [min, max]);
    if (typeof callback === "function") {
      Promise.resolve().then(() => callback(null, value));
      return undefined;
    }
    return value;
  }

  function timingSafeEqual(a, b) {
    const x = bytes(a, undefined, "buf1");
    const y = bytes(b, undefined, "buf2");
    if (x.length !== y.length) {
      throw error(RangeError, "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH", "Input buffers must have the same byte length");
    }
    let diff = 0;
    for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  }

  // ---- key derivation ----
  function pbkdf2Sync(password, salt, iterations, keylen, digest) {
    if (typeof digest !== "string") throw argType("digest", "of type string", digest);
    let name;
    try {
      name = hashName(digest);
    } catch (_) {
      throw error(TypeError, "ERR_CRYPTO_INVALID_DIGEST", "Invalid digest: " + digest);
    }
    const out = host("pbkdf2", [b64(bytes(password, undefined, "password")), b64(bytes(salt, undefined, "salt")), iterations, keylen, name]);
    return fromB64(out);
  }

  function pbkdf2(password, salt, iterations, keylen, digest, callback) {
    if (typeof callback !== "function") throw argType("callback", "of type function", callback);
    let result, failure = null;
    try {
      result = pbkdf2Sync(password, salt, iterations, keylen, digest);
    } catch (e) {
      failure = e;
    }
    Promise.resolve().then(() => (failure ? callback(failure) : callback(null, result)));
  }

  function scryptSync(password, salt, keylen, options = {}) {
    const N = options.N || options.cost || 16384;
    const r = options.r || options.blockSize || 8;
    const p = options.p || options.parallelization || 1;
    return fromB64(host("scrypt", [b64(bytes(password, undefined, "password")), b64(bytes(salt, undefined, "salt")), keylen, N, r, p]));
  }

  function scrypt(password, salt, keylen, options, callback) {
    if (typeof options === "function") {
      callback = options;
      options = {};
    }
    let result, failure = null;
    try {
      result = scryptSync(password, salt, keylen, options);
    } catch (e) {
      failure = e;
    }
    Promise.resolve().then(() => (failure ? callback(failure) : callback(null, result)));
  }

  function hkdfSync(digest, ikm, salt, info, keylen) {
    const name = hashName(digest);
    const key = ikm instanceof KeyObject ? secretOf(ikm) : bytes(ikm, undefined, "ikm");
    const size = fromB64(host("hash", [name, ""])).length;
    if (keylen > 255 * size) throw error(RangeError, "ERR_CRYPTO_INVALID_KEYLEN", "Invalid key length");
    const saltBytes = bytes(salt, undefined, "salt");
    const prk = fromB64(host("hmac", [name, b64(saltBytes.length ? saltBytes : new Uint8Array(size)), b64(key)]));
    const infoBytes = bytes(info, undefined, "info");
    const out = new Uint8Array(Math.ceil(keylen / size) * size);
    let previous = new Uint8Array(0);
    for (let i = 0; i * size < keylen; i++) {
      const input = concat([previous, infoBytes, Uint8Array.of(i + 1)]);
      previous = fromB64(host("hmac", [name, b64(prk), b64(input)]));
      out.set(previous, i * size);
    }
    return out.slice(0, keylen).buffer;
  }

  // ---- keys ----
  const kind = new WeakMap(); // KeyObject -> { secret } or { der, type, asymmetricKeyType, details }

  class KeyObject {
    constructor(type, handle) {
      if (handle === undefined || typeof handle !== "object") throw new TypeError("Illegal constructor");
      kind.set(this, handle);
    }
    get type() {
      return stateOf(this).type;
    }
    get asymmetricKeyType() {
      return stateOf(this).asymmetricKeyType;
    }
    get asymmetricKeyDetails() {
      const d = stateOf(this).details;
      if (!d) return undefined;
      return d.publicExponent !== undefined ? { modulusLength: d.modulusLength, publicExponent: BigInt(d.publicExponent) } : { ...d };
    }
    get symmetricKeySize() {
      const s = stateOf(this);
      return s.type === "secret" ? s.secret.length : undefined;
    }
    export(options = {}) {
      const s = stateOf(this);
      if (s.type === "secret") {
        if (options.format === "jwk") return { kty: "oct", k: codec.base64Encode(s.secret, 0, s.secret.length, true) };
        return Buffer.from(s.secret);
      }
      const format = options.format || "pem";
      const result = host("keyExport", [s.der, format, options.type]);
      return format === "der" ? fromB64(result) : result;
    }
    equals(other) {
      if (!(other instanceof KeyObject)) return false;
      const a = stateOf(this), b = stateOf(other);
      if (a.type !== b.type) return false;
      return a.type === "secret" ? timingSafeEqual(a.secret, b.secret) || false : a.der === b.der;
    }
    static from(key) {
      return fnbox.lib("webcrypto").keyObjectOf(key);
    }
    get [Symbol.toStringTag]() {
      return "KeyObject";
    }
  }

  function stateOf(key) {
    const s = kind.get(key);
    if (s === undefined) throw argType("key", "an instance of KeyObject", key);
    return s;
  }

  function secretOf(key) {
    const s = stateOf(key);
    if (s.type !== "secret") throw error(TypeError, "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE", "Invalid key object type " + s.type + ", expected secret.");
    return s.secret;
  }

  function makeKey(described) {
    return new KeyObject(described.type, described);
  }

  function createSecretKey(key, encoding) {
    return new KeyObject("secret", { type: "secret", secret: bytes(key, encoding, "key").slice() });
  }

  // A key as Node accepts it: PEM text, a Buffer of it, {key, format, type, passphrase}, a JWK, a KeyObject.
  function importAsymmetric(want, key) {
    if (key instanceof KeyObject) {
      const s = stateOf(key);
      if (want === "private" && s.type !== "private") {
        throw error(TypeError, "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE", "Invalid key object type " + s.type + ", expected private.");
      }
      if (want === "public" && s.type === "private") return makeKey(host("keyImport", ["public", "der", s.der]));
      return key;
    }
    if (isCryptoKey(key)) return importAsymmetric(want, KeyObject.from(key));
    let material = key, format = "pem", passphrase;
    if (key !== null && typeof key === "object" && !ArrayBuffer.isView(key) && !(key instanceof ArrayBuffer)) {
      if (key.key instanceof KeyObject) return importAsymmetric(want, key.key);
      material = key.key;
      format = key.format || "pem";
      if (key.passphrase !== undefined) passphrase = typeof key.passphrase === "string" ? key.passphrase : Buffer.from(key.passphrase).toString("utf8");
      if (format === "jwk") {
        if (material === null || typeof material !== "object") throw argType("key.key", "of type object", material);
        return makeKey(host("keyImport", [want, "jwk", JSON.parse(JSON.stringify(material)), passphrase]));
      }
    }
    if (typeof material === "string") {
      return makeKey(host("keyImport", [want, format === "der" ? "der" : "pem", format === "der" ? b64(bytes(material, key.encoding)) : material, passphrase]));
    }
    const raw = bytes(material, undefined, "key");
    if (format === "der") return makeKey(host("keyImport", [want, "der", b64(raw), passphrase]));
    return makeKey(host("keyImport", [want, "pem", codec.utf8Decode(raw, 0, raw.length, false, false), passphrase]));
  }

  const isCryptoKey = (key) => key !== null && typeof key === "object" && Object.prototype.toString.call(key) === "[object CryptoKey]";

  function createPublicKey(key) {
    return importAsymmetric("public", key);
  }

  function createPrivateKey(key) {
    return importAsymmetric("private", key);
  }

  // ---- signatures ----
  function signingOptions(key) {
    const o = key !== null && typeof key === "object" && !(key instanceof KeyObject) && !ArrayBuffer.isView(key) ? key : {};
    const padding = o.padding === constants.RSA_PKCS1_PSS_PADDING ? "pss" : "pkcs1";
    const saltLength = typeof o.saltLength === "number" ? o.saltLength : -2;
    const dsaEncoding = o.dsaEncoding === "ieee-p1363" ? "ieee-p1363" : "der";
    return { padding, saltLength, dsaEncoding };
  }

  function signWith(algorithm, data, key) {
    const k = importAsymmetric("private", key);
    const s = stateOf(k);
    const o = signingOptions(key);
    const saltLength = o.saltLength === -2 ? -2 : o.saltLength;
    const alg = algorithm == null ? (s.asymmetricKeyType === "ed25519" ? null : "sha256") : hashName(algorithm);
    return fromB64(host("sign", [alg, s.der, b64(data), null, o.padding, saltLength, o.dsaEncoding]));
  }

  function verifyWith(algorithm, data, key, signature) {
    const k = key instanceof KeyObject ? key : importAsymmetric(isPrivatePem(key) ? "private" : "public", key);
    const s = stateOf(k);
    const o = signingOptions(key);
    const saltLength = o.saltLength === -2 ? -2 : o.saltLength;
    const alg = algorithm == null ? (s.asymmetricKeyType === "ed25519" ? null : "sha256") : hashName(algorithm);
    return host("verify", [alg, s.der, b64(data), b64(signature), o.padding, saltLength, o.dsaEncoding]);
  }

  function isPrivatePem(key) {
    const text = typeof key === "string" ? key : key !== null && typeof key === "object" && typeof key.key === "string" ? key.key : "";
    return text.includes("PRIVATE KEY-----");
  }

  class Sign {
    #algorithm;
    #chunks = [];
    constructor(algorithm) {
      this.#algorithm = hashName(algorithm);
    }
    update(data, encoding) {
      this.#chunks.push(bytes(data, encoding).slice());
      return this;
    }
    sign(privateKey, encoding) {
      return output(signWith(this.#algorithm, concat(this.#chunks), privateKey), encoding);
    }
  }

  class Verify {
    #algorithm;
    #chunks = [];
    constructor(algorithm) {
      this.#algorithm = hashName(algorithm);
    }
    update(data, encoding) {
      this.#chunks.push(bytes(data, encoding).slice());
      return this;
    }
    verify(publicKey, signature, encoding) {
      return verifyWith(this.#algorithm, concat(this.#chunks), publicKey, bytes(signature, encoding, "signature"));
    }
  }

  function sign(algorithm, data, key, callback) {
    const result = signWith(algorithm, bytes(data), key);
    if (typeof callback === "function") {
      Promise.resolve().then(() => callback(null, result));
      return undefined;
    }
    return result;
  }

  function verify(algorithm, data, key, signature, callback) {
    const result = verifyWith(algorithm, bytes(data), key, bytes(signature, undefined, "signature"));
    if (typeof callback === "function") {
      Promise.resolve().then(() => callback(null, result));
      return undefined;
    }
    return result;
  }

  // ---- ciphers ----
  const CIPHERS = [];
  for (const size of ["128", "192", "256"]) for (const mode of ["cbc", "gcm", "ctr", "ecb"]) CIPHERS.push("aes-" + size + "-" + mode);

  class CipherBase {
    #name;
    #key;
    #iv;
    #decrypt;
    #chunks = [];
    #aad = null;
    #tag = null;
    #tagLength;
    #autoPadding = true;
    #done = false;
    constructor(name, key, iv, options, decrypt) {
      const n = typeof name === "string" ? name.toLowerCase() : name;
      if (!CIPHERS.includes(n)) throw error(TypeError, "ERR_CRYPTO_UNKNOWN_CIPHER", "Invalid cipher name or unsupported cipher");
      this.#name = n;
      this.#key = key instanceof KeyObject ? secretOf(key) : bytes(key, undefined, "key").slice();
      this.#iv = iv === null || iv === undefined ? new Uint8Array(0) : bytes(iv, undefined, "iv").slice();
      const [, size, mode] = n.split("-");
      if (this.#key.length * 8 !== +size) throw error(RangeError, "ERR_CRYPTO_INVALID_KEYLEN", "Invalid key length");
      if ((mode === "cbc" || mode === "ctr") && this.#iv.length !== 16) throw error(TypeError, "ERR_CRYPTO_INVALID_IV", "Invalid initialization vector");
      if (mode === "gcm" && this.#iv.length === 0) throw error(TypeError, "ERR_CRYPTO_INVALID_IV", "Invalid initialization vector");
      this.#decrypt = decrypt;
      this.#tagLength = options && options.authTagLength ? options.authTagLength : 16;
    }
    update(data, inputEncoding, outputEncoding) {
      if (this.#done) throw error(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation update");
      this.#chunks.push(bytes(data, inputEncoding).slice());
      return output(Buffer.alloc(0), outputEncoding);
    }
    final(outputEncoding) {
      if (this.#done) throw error(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation final");
      this.#done = true;
      const result = host("cipher", [
        this.#name, b64(this.#key), b64(this.#iv), b64(concat(this.#chunks)), this.#decrypt,
        this.#aad === null ? null : b64(this.#aad), this.#tag === null ? null : b64(this.#tag), this.#tagLength, this.#autoPadding,
      ]);
      if (result.tag) this.#tag = fromB64(result.tag);
      return output(fromB64(result.out), outputEncoding);
    }
    setAAD(aad) {
      this.#aad = bytes(aad, undefined, "buffer").slice();
      return this;
    }
    setAutoPadding(value = true) {
      this.#autoPadding = !!value;
      return this;
    }
    getAuthTag() {
      if (this.#decrypt || !this.#done || this.#tag === null) {
        throw error(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation getAuthTag");
      }
      return this.#tag;
    }
    setAuthTag(tag) {
      if (!this.#decrypt) throw error(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation setAuthTag");
      this.#tag = bytes(tag, undefined, "buffer").slice();
      return this;
    }
  }
  const Cipheriv = class Cipheriv extends CipherBase {
    constructor(name, key, iv, options) {
      super(name, key, iv, options, false);
    }
  };
  const Decipheriv = class Decipheriv extends CipherBase {
    constructor(name, key, iv, options) {
      super(name, key, iv, options, true);
    }
  };

  const constants = {
    RSA_PKCS1_PADDING: 1,
    RSA_NO_PADDING: 3,
    RSA_PKCS1_OAEP_PADDING: 4,
    RSA_PKCS1_PSS_PADDING: 6,
    RSA_PSS_SALTLEN_DIGEST: -1,
    RSA_PSS_SALTLEN_MAX_SIGN: -2,
    RSA_PSS_SALTLEN_AUTO: -2,
  };

  const webcrypto = () => fnbox.lib("webcrypto");
  const exports = {
    createHash: (algorithm, options) => new Hash(algorithm, options),
    createHmac: (algorithm, key, options) => new Hmac(algorithm, key, options),
    hash: (algorithm, data, encoding = "hex") => new Hash(algorithm).update(data).digest(encoding),
    Hash,
    Hmac,
    randomBytes,
    pseudoRandomBytes: randomBytes,
    randomFillSync,
    randomFill(target, offset, size, callback) {
      const cb = [offset, size, callback].find((f) => typeof f === "function");
      const result = randomFillSync(target, typeof offset === "number" ? offset : 0, typeof size === "number" ? size : undefined);
      Promise.resolve().then(() => cb(null, result));
    },
    randomUUID,
    randomInt,
    getRandomValues,
    timingSafeEqual,
    pbkdf2,
    pbkdf2Sync,
    scrypt,
    scryptSync,
    hkdfSync,
    hkdf(digest, ikm, salt, info, keylen, callback) {
      let result, failure = null;
      try {
        result = hkdfSync(digest, ikm, salt, info, keylen);
      } catch (e) {
        failure = e;
      }
      Promise.resolve().then(() => (failure ? callback(failure) : callback(null, result)));
    },
    createCipheriv: (name, key, iv, options) => new Cipheriv(name, key, iv, options),
    createDecipheriv: (name, key, iv, options) => new Decipheriv(name, key, iv, options),
    Cipheriv,
    Decipheriv,
    createSign: (algorithm) => new Sign(algorithm),
    createVerify: (algorithm) => new Verify(algorithm),
    Sign,
    Verify,
    sign,
    verify,
    KeyObject,
    createPublicKey,
    createPrivateKey,
    createSecretKey,
    getHashes: () => HASHES.slice(),
    getCiphers: () => CIPHERS.slice(),
    getCurves: () => ["prime256v1", "secp256k1", "secp384r1", "secp521r1"],
    constants,
    get webcrypto() {
      return webcrypto().crypto;
    },
    get subtle() {
      return webcrypto().crypto.subtle;
    },
    _internal: { stateOf, makeKey, bytes, b64, fromB64, hashName, concat },
  };
  Object.defineProperty(exports, "_internal", { enumerable: false });
  return exports;
});
