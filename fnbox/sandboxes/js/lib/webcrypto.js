// Web Crypto: the `crypto` global (getRandomValues, randomUUID, subtle) and CryptoKey, on
// the same host calls as Node's `crypto` module.
(function (fnbox) {
  "use strict";
  const nodeCrypto = fnbox.lib("crypto");
  const codec = fnbox.lib("codec");
  const { DOMException } = fnbox.lib("web");
  const { stateOf, makeKey, b64, hashName, concat } = nodeCrypto._internal;
  const host = fnbox.host;
  const fromB64 = (s) => Uint8Array.fromBase64(s);

  const material = new WeakMap(); // CryptoKey -> { secret } or a KeyObject's state

  class CryptoKey {
    #type;
    #extractable;
    #algorithm;
    #usages;
    constructor(key, type, extractable, algorithm, usages, state) {
      if (key !== material) throw new TypeError("Illegal constructor");
      this.#type = type;
      this.#extractable = extractable;
      this.#algorithm = algorithm;
      this.#usages = usages;
      material.set(this, state);
    }
    get type() {
      return this.#type;
    }
    get extractable() {
      return this.#extractable;
    }
    get algorithm() {
      return this.#algorithm;
    }
    get usages() {
      return this.#usages.slice();
    }
    get [Symbol.toStringTag]() {
      return "CryptoKey";
    }
  }

  function fail(name, message) {
    return new DOMException(message, name);
  }

  function bufferSource(data, name = "data") {
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    if (data instanceof ArrayBuffer) return new Uint8Array(data).slice();
    throw new TypeError("Failed to execute: parameter " + name + " is not of type 'BufferSource'");
  }

  function normalize(algorithm) {
    const a = typeof algorithm === "string" ? { name: algorithm } : { ...algorithm };
    if (typeof a.name !== "string") throw new TypeError("Algorithm: name is missing");
    const NAMES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512", "HMAC", "RSASSA-PKCS1-v1_5", "RSA-PSS", "ECDSA", "Ed25519",
      "AES-GCM", "AES-CBC", "AES-CTR", "PBKDF2", "HKDF", "RSA-OAEP", "ECDH"];
    const found = NAMES.find((n) => n.toUpperCase() === a.name.toUpperCase());
    if (found === undefined) throw fail("NotSupportedError", "Unrecognized algorithm name");
    a.name = found;
    if (a.hash !== undefined) a.hash = normalize(a.hash);
    return a;
  }

  const shaName = (hash) => hashName(hash.name);
  const run = (fn) => {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e);
    }
  };
  const arrayBuffer = (u8) => (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength ? u8.buffer : u8.slice().buffer);

  function checkUsage(key, usage) {
    if (!(key instanceof CryptoKey)) throw new TypeError("The provided value is not of type 'CryptoKey'");
    if (!key.usages.includes(usage)) throw fail("InvalidAccessError", "The requested operation is not valid for the provided key");
  }

  function secretKey(algorithm, raw, extractable, usages) {
    const a = { name: algorithm.name };
    if (algorithm.name === "HMAC") {
      a.hash = { name: algorithm.hash.name };
      a.length = raw.length * 8;
    } else if (algorithm.name.startsWith("AES")) {
      if (![16, 24, 32].includes(raw.length)) throw fail("DataError", "Invalid key length");
      a.length = raw.length * 8;
    }
    return new CryptoKey(material, "secret", extractable, a, usages, { type: "secret", secret: raw });
  }

  function asymmetricKey(algorithm, state, extractable, usages) {
    const a = { name: algorithm.name };
    if (state.asymmetricKeyType === "rsa") {
      a.modulusLength = state.details.modulusLength;
      const e = state.details.publicExponent;
      a.publicExponent = new Uint8Array(e === 65537 ? [1, 0, 1] : [e & 255]);
      a.hash = { name: (algorithm.hash || { name: "SHA-256" }).name };
    } else if (state.asymmetricKeyType === "ec") {
      a.namedCurve = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" }[state.details.namedCurve] || state.details.namedCurve;
      if (algorithm.namedCurve && algorithm.namedCurve !== a.namedCurve) throw fail("DataError", "Named curve mismatch");
    }
    const expected = { "RSASSA-PKCS1-v1_5": "rsa", "RSA-PSS": "rsa", ECDSA: "ec", Ed25519: "ed25519" }[algorithm.name];
    if (expected !== undefined && expected !== state.asymmetricKeyType) throw fail("DataError", "Invalid key type for " + algorithm.name);
    return new CryptoKey(material, state.type, state.type === "public" ? true : extractable, a, usages, state);
  }

  const subtle = {
    digest(algorithm, data) {
      return run(() => {
        const a = normalize(algorithm);
        return arrayBuffer(fromB64(host("hash", [hashName(a.name), b64(bufferSource(data))])));
      });
    },
    importKey(format, keyData, algorithm, extractable, usages) {
      return run(() => {
        const a = normalize(algorithm);
        const secret = a.name === "HMAC" || a.name.startsWith("AES") || a.name === "PBKDF2" || a.name === "HKDF";
        if (secret) {
          let raw;
          if (format === "raw") raw = bufferSource(keyData, "keyData");
          else if (format === "jwk" && keyData && keyData.kty === "oct") raw = codec.base64Bytes(keyData.k || "");
          else throw fail("NotSupportedError", "Unsupported key format " + format + " for " + a.name);
          return secretKey(a, raw, !!extractable, [...usages]);
        }
        let state;
        if (format === "spki") state = host("keyImport", ["public", "der", b64(bufferSource(keyData, "keyData"))]);
        else if (format === "pkcs8") state = host("keyImport", ["private", "der", b64(bufferSource(keyData, "keyData"))]);
        else if (format === "jwk") {
          if (keyData === null || typeof keyData !== "object") throw new TypeError("keyData must be a JsonWebKey");
          state = host("keyImport", [keyData.d !== undefined ? "private" : "public", "jwk", JSON.parse(JSON.stringify(keyData))]);
        } else if (format === "raw" && (a.name === "ECDSA" || a.name === "Ed25519")) {
          throw fail("NotSupportedError", "raw import of " + a.name + " public keys is not available in fnbox: use spki or jwk");
        } else throw fail("NotSupportedError", "Unsupported key format " + format);
        return asymmetricKey(a, state, !!extractable, [...usages]);
      });
    },
    exportKey(format, key) {
      return run(() => {
        if (!key.extractable) throw fail("InvalidAccessError", "key is not extractable");
        const s = material.get(key);
        if (s.type === "secret") {
          if (format === "raw") return arrayBuffer(s.secret);
          if (format === "jwk") {
            const jwk = { kty: "oct", k: codec.base64Encode(s.secret, 0, s.secret.length, true), ext: true, key_ops: key.usages };
            if (key.algorithm.name === "HMAC") jwk.alg = "HS" + key.algorithm.hash.name.slice(4);
            return jwk;
          }
          throw fail("NotSupportedError", "Unsupported export format " + format);
        }
        if (format === "jwk") return { ...host("keyExport", [s.der, "jwk"]), ext: true, key_ops: key.usages };
        if (format === "spki" || format === "pkcs8") return arrayBuffer(fromB64(host("keyExport", [s.der, "der", format])));
        throw fail("NotSupportedError", "Unsupported export format " + format);
      });
    },
    sign(algorithm, key, data) {
      return run(() => {
        const a = normalize(algorithm);
        checkUsage(key, "sign");
        const s = material.get(key);
        const bytes = bufferSource(data);
        if (a.name === "HMAC") return arrayBuffer(fromB64(host("hmac", [shaName(key.algorithm.hash), b64(s.secret), b64(bytes)])));
        return arrayBuffer(fromB64(host("sign", signArgs(a, key, s, bytes))));
      });
    },
    verify(algorithm, key, signature, data) {
      return run(() => {
        const a = normalize(algorithm);
        checkUsage(key, "verify");
        const s = material.get(key);
        const bytes = bufferSource(data);
        const sig = bufferSource(signature, "signature");
        if (a.name === "HMAC") {
          const mac = fromB64(host("hmac", [shaName(key.algorithm.hash), b64(s.secret), b64(bytes)]));
          if (mac.length !== sig.length) return false;
          let diff = 0;
          for (let i = 0; i < mac.length; i++) diff |= mac[i] ^ sig[i];
          return diff === 0;
        }
        const args = signArgs(a, key, s, bytes);
        args[3] = b64(sig);
        return host("verify", args);
      });
    },
    encrypt(algorithm, key, data) {
      return run(() => aes(normalize(algorithm), key, bufferSource(data), false, "encrypt"));
    },
    decrypt(algorithm, key, data) {
      return run(() => aes(normalize(algorithm), key, bufferSource(data), true, "decrypt"));
    },
    generateKey(algorithm, extractable, usages) {
      return run(() => {
        const a = normalize(algorithm);
        if (a.name === "HMAC") {
          const bits = a.length || { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 }[a.hash.name];
          return secretKey(a, fromB64(host("random", [bits >> 3])), !!extractable, [...usages]);
        }
        if (a.name.startsWith("AES")) return secretKey(a, fromB64(host("random", [a.length >> 3])), !!extractable, [...usages]);
        throw fail("NotSupportedError", "generateKey for " + a.name + " is not available in fnbox");
      });
    },
    deriveBits(algorithm, baseKey, length) {
      return run(() => {
        const a = normalize(algorithm);
        checkUsage(baseKey, "deriveBits");
        const s = material.get(baseKey);
        if (a.name === "PBKDF2") {
          return arrayBuffer(fromB64(host("pbkdf2", [b64(s.secret), b64(bufferSource(a.salt, "salt")), a.iterations, length >> 3, shaName(a.hash)])));
        }
        if (a.name === "HKDF") {
          const { Buffer } = fnbox.lib("buffer");
          return nodeCrypto.hkdfSync(shaName(a.hash), Buffer.from(s.secret), Buffer.from(bufferSource(a.salt, "salt")), Buffer.from(bufferSource(a.info, "info")), length >> 3);
        }
        throw fail("NotSupportedError", "deriveBits for " + a.name + " is not available in fnbox");
      });
    },
    deriveKey(algorithm, baseKey, derivedKeyAlgorithm, extractable, usages) {
      const d = normalize(derivedKeyAlgorithm);
      const length = d.length || (d.name === "HMAC" ? { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 }[d.hash.name] : 256);
      const usable = new CryptoKey(material, "secret", false, baseKey.algorithm, ["deriveBits"], material.get(baseKey));
      if (!baseKey.usages.includes("deriveKey")) return Promise.reject(fail("InvalidAccessError", "The requested operation is not valid for the provided key"));
      return subtle.deriveBits(algorithm, usable, length).then((bits) => subtle.importKey("raw", bits, d, extractable, usages));
    },
  };

  function signArgs(a, key, s, bytes) {
    if (a.name === "RSASSA-PKCS1-v1_5") return [shaName(key.algorithm.hash), s.der, b64(bytes), null, "pkcs1", -2, "der"];
    if (a.name === "RSA-PSS") return [shaName(key.algorithm.hash), s.der, b64(bytes), null, "pss", a.saltLength, "der"];
    if (a.name === "ECDSA") return [shaName(a.hash), s.der, b64(bytes), null, "pkcs1", -2, "ieee-p1363"];
    if (a.name === "Ed25519") return [null, s.der, b64(bytes), null, "pkcs1", -2, "der"];
    throw fail("NotSupportedError", a.name + " does not sign");
  }

  function aes(a, key, data, decrypt, usage) {
    checkUsage(key, usage);
    if (key.algorithm.name !== a.name) throw fail("InvalidAccessError", "The requested operation is not valid for the provided key");
    const s = material.get(key);
    const name = "aes-" + s.secret.length * 8 + "-" + a.name.slice(4).toLowerCase();
    if (a.name === "AES-GCM") {
      const tagLength = (a.tagLength || 128) >> 3;
      const aad = a.additionalData === undefined ? null : b64(bufferSource(a.additionalData, "additionalData"));
      const iv = b64(bufferSource(a.iv, "iv"));
      if (decrypt) {
        if (data.length < tagLength) throw fail("OperationError", "The provided data is too small.");
        const body = data.subarray(0, data.length - tagLength);
        const tag = data.subarray(data.length - tagLength);
        try {
          return arrayBuffer(fromB64(host("cipher", [name, b64(s.secret), iv, b64(body), true, aad, b64(tag), tagLength, true]).out));
        } catch (e) {
          throw fail("OperationError", "The operation failed for an operation-specific reason");
        }
      }
      const r = host("cipher", [name, b64(s.secret), iv, b64(data), false, aad, null, tagLength, true]);
      return arrayBuffer(concat([fromB64(r.out), fromB64(r.tag)]));
    }
    if (a.name === "AES-CBC" || a.name === "AES-CTR") {
      const iv = b64(bufferSource(a.iv || a.counter, "iv"));
      try {
        return arrayBuffer(fromB64(host("cipher", [name, b64(s.secret), iv, b64(data), decrypt, null, null, 16, true]).out));
      } catch (e) {
        throw fail("OperationError", "The operation failed for an operation-specific reason");
      }
    }
    throw fail("NotSupportedError", a.name + " does not encrypt");
  }

  function keyObjectOf(key) {
    const s = material.get(key);
    if (s === undefined) throw new TypeError('The "key" argument must be an instance of CryptoKey');
    return s.type === "secret" ? nodeCrypto.createSecretKey(s.secret) : makeKey(s);
  }

  const crypto = {
    subtle,
    getRandomValues: (array) => nodeCrypto.getRandomValues(array),
    randomUUID: () => nodeCrypto.randomUUID(),
    get [Symbol.toStringTag]() {
      return "Crypto";
    },
  };
  void stateOf;
  return { crypto, CryptoKey, keyObjectOf };
});
