"""JavaScript bodies of the kinds people write in low-code steps, run on fnbox and on Node.js.

Each body is a function body returning JSON; `node_results` runs them all on plain Node (one
process) and `fnbox_results` in one fnbox workspace, so a test, or bench/js_realworld.py,
can compare the two. Keys and tokens below are test data made for this suite.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
from typing import Any

KEYS = {
    "rsaPrivate": "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCQVak1ZRCf8uEx\nO6Bj5d9ymlDoV8Bz2tvnRJAes07IxsPf9Jmp7TMZZR1WUZfHqyeLa4NY9/S7HPfW\nkfygbFLAnLstg81k4OZ/zdcecytxsy01AKeZGRoZWznVHkbQu3+SWN2xRmAbLNkd\nATIrFmNkANpzoppHHWlrltElpcBf5Zde9rUrn4DY69u5PeGuXzSWz02VlKSSDKL5\nmkcy1D0RlmJL19M7A1lDp9PQ6KOPXAbx9CKUrvOnQDC0tgOl9uQI5MiXYN0EYkUJ\n3TmbPJuGl3m10zKS0ZFE6v1RFrnwoI6LLhnTzM8J2JEfknFZ3LhSGwNIc3AHKe5h\ngbv90SEbAgMBAAECggEAEOQlevKKlogVuJhHdfQcnqHWnspI4zDAFCRJpX4ggI4F\nCvw/e3Z0nh/fkLmDGhflTINW33OX4sn0wISx3D2xFYosvEU0z/3N8TOwCDKRlAB/\nEDk1DqK0aOFB4bdlsYnagnr/PtQt7SA7gbx2bY/KLpWMUIS9VLM+zMYypcWXFOHG\n63EWKY2J2zqp+CKeDdQc1F/Kp/DjtK669EnvvnQ1yl0G43uFu11qDehJvRp21Zty\nbmIj39N2ndrXwYHTcY4McvFnBCCobf6wEmrigXv+CSbryZdDSBZlVvCkWv5EQ23z\nZFXmhGRt8I22w4coWO4Qp0r1hObi50Or4aO5vZ68YQKBgQDEncDctppxiXNOZ4NW\nACRWC5KmBf4I2Q6fUoZI1XChrxl221LEAu/cPoE4jE2QFAPRpeF64Dlt+P2pjmug\n5+MvacPrkFWaKjxlBFp4D4G1OFBLo13FfpJRDJRmDF2k8ufpzME4Vo+gtp9dgQpA\nu5igbzzDYCk2x+P8MqEjaEQFqwKBgQC77YZ6dClzYAJXiAbR2VldvkYWpDhZSr2P\n1zO5XrykDhdz2byMl2v4oZr/RGvFJASHFFtMwBXvM3Ir8tL7dR4yg3Oe3AqbvSZD\nI+ieLMCZ4Ds+Y1rRF0MKrmipMZC68l2SRrATfb3PQ7Eee5ZsoR9srWAyidlvFMwC\nrDbxqMACUQKBgD/+pK5yFNTNiyVC1eGhDDKhc6rsGmIg2/yJbMG6Dv3hMyWXf1nj\nJtUF1yNjrz8s9I1BM6G955NezplojKmDsFNXVniOsv4Jrzyl7RhU27/zQ1dLJhNI\n/jC5KngIoFY25bsYdO90ZS1HI5nYjVDCfowBiMKCwwdcil0k0YPnxPQfAoGAb+YT\n7/AhClj9q/8MCIIBy2bTtwGbp9dwHikG3HbDnm/hmRLqSVCUctxPPXYRMbarl38Q\nihfKN78LWY3iAOaQz4UkIFBnZKpxEQNdrGl7WWSCAjkIx32xZrfJDA2+XwKXotTC\nXSi/D53/5eWzAQXDf2OQ5ybbuF/KxkCjCqvvgLECgYAh56M3B+WrQykdGdg989Cz\n7Xesbt6V0l+7YIKekAL5rCJT1j21Zl/tY8/t294JNecDa1RgJS9WwPgmfl5uCuH3\n9hYXHI3all8Aoq1n4aoWWK2otRjO7CaSUJPdoPRpUM8/TPe3rvw6spbMPHYN4OaC\n4pm8UiSmtq/+6TPGAathAg==\n-----END PRIVATE KEY-----\n",
    "rsaPublic": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkFWpNWUQn/LhMTugY+Xf\ncppQ6FfAc9rb50SQHrNOyMbD3/SZqe0zGWUdVlGXx6sni2uDWPf0uxz31pH8oGxS\nwJy7LYPNZODmf83XHnMrcbMtNQCnmRkaGVs51R5G0Lt/kljdsUZgGyzZHQEyKxZj\nZADac6KaRx1pa5bRJaXAX+WXXva1K5+A2OvbuT3hrl80ls9NlZSkkgyi+ZpHMtQ9\nEZZiS9fTOwNZQ6fT0Oijj1wG8fQilK7zp0AwtLYDpfbkCOTIl2DdBGJFCd05mzyb\nhpd5tdMyktGRROr9URa58KCOiy4Z08zPCdiRH5JxWdy4UhsDSHNwBynuYYG7/dEh\nGwIDAQAB\n-----END PUBLIC KEY-----\n",
    "ecPrivate": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaH6kcAKu9yltGIvq\nx1beWaKIq1L5oZG9Oy9gZbIoUs6hRANCAAQv1/WT7c5Oqlv6bcD666JVrkYLWbfa\nzzA7iL/jYdBhwAyL1xO7CcU8/JGdUDgmbzOB9IPP+OqvkwCwamZiTyjB\n-----END PRIVATE KEY-----\n",
    "ecPublic": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEL9f1k+3OTqpb+m3A+uuiVa5GC1m3\n2s8wO4i/42HQYcAMi9cTuwnFPPyRnVA4Jm8zgfSDz/jqr5MAsGpmYk8owQ==\n-----END PUBLIC KEY-----\n",
    "rs256": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJBZGEiLCJpYXQiOjE3MDAwMDAwMDB9.CKg3I6z0ayioG80-6mSVk2TWG3RP3ATc7Gu2Mn6EVGYSCaApU7zxYPtnhy7yD4S6x6GS942Ud1N4WR4ky-9CCN1vjHv1eWTLLSYHRYwUA154eQ0AJXi9t-mINOX_AVdQDQgK-RY6-qfQM056iDzFPFvPC22GD-f0on7GeK9eilLuD3eGjxaRD2H6EpQOk0_SQBqDFvqG3Z3Fuk5n9XjHMXS788iivWEkqHAJUEtCgFDxvNg956FDlqS7ZgIrsXYvd9YhtBcDBHq6v9FjiJ42hwiCFSCQqJkcx0OBC-4OuExg63cfByRluCcBGp7ZQfI0RmaK-hVlbEPsx5Ve-POQCA",
    "es256": "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJBZGEiLCJpYXQiOjE3MDAwMDAwMDB9.sYF-DktaZ2sRdPHu1C_czI4Xn4oNhu0j0GYtDr6JwKbruLMQYBb-espH9JADnn3y2kQRHXtoMWNOPce-rFIWuQ",
    "rsaJwk": {
        "kty": "RSA",
        "n": "kFWpNWUQn_LhMTugY-XfcppQ6FfAc9rb50SQHrNOyMbD3_SZqe0zGWUdVlGXx6sni2uDWPf0uxz31pH8oGxSwJy7LYPNZODmf83XHnMrcbMtNQCnmRkaGVs51R5G0Lt_kljdsUZgGyzZHQEyKxZjZADac6KaRx1pa5bRJaXAX-WXXva1K5-A2OvbuT3hrl80ls9NlZSkkgyi-ZpHMtQ9EZZiS9fTOwNZQ6fT0Oijj1wG8fQilK7zp0AwtLYDpfbkCOTIl2DdBGJFCd05mzybhpd5tdMyktGRROr9URa58KCOiy4Z08zPCdiRH5JxWdy4UhsDSHNwBynuYYG7_dEhGw",
        "e": "AQAB",
    },
    "ecJwk": {
        "kty": "EC",
        "crv": "P-256",
        "x": "L9f1k-3OTqpb-m3A-uuiVa5GC1m32s8wO4i_42HQYcA",
        "y": "DIvXE7sJxTz8kZ1QOCZvM4H0g8_46q-TALBqZmJPKME",
    },
}

_K = "const KEYS = " + json.dumps(KEYS) + ";\n"

BODIES: dict[str, str] = {
    "webhook_github": """
        const crypto = require("crypto");
        const body = JSON.stringify({ action: "opened", number: 7 });
        const expected = "sha256=" + crypto.createHmac("sha256", "It's a Secret to Everybody").update(body).digest("hex");
        const header = expected;
        const ok = crypto.timingSafeEqual(Buffer.from(header), Buffer.from(expected));
        return { expected, ok };
    """,
    "webhook_stripe": """
        const crypto = require("node:crypto");
        const payload = '{"id":"evt_1","type":"charge.succeeded"}';
        const t = 1700000000;
        const v1 = crypto.createHmac("sha256", "whsec_test").update(`${t}.${payload}`, "utf8").digest("hex");
        const header = `t=${t},v1=${v1}`;
        const parts = Object.fromEntries(header.split(",").map((kv) => kv.split("=")));
        const check = crypto.createHmac("sha256", "whsec_test").update(parts.t + "." + payload).digest();
        return { v1, valid: crypto.timingSafeEqual(check, Buffer.from(parts.v1, "hex")) };
    """,
    "webhook_slack": """
        const { createHmac } = require("crypto");
        const base = "v0:1531420618:token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J";
        return "v0=" + createHmac("sha256", "8f742231b10e8888abcd99yyyzzz85a5").update(base).digest("hex");
    """,
    "webhook_shopify": """
        const crypto = require("crypto");
        return crypto.createHmac("sha256", "shpss_secret").update(Buffer.from('{"order":1}', "utf8")).digest("base64");
    """,
    "hash_md5_sha1": """
        const c = require("crypto");
        return [c.createHash("md5").update("hello").digest("hex"), c.createHash("sha1").update("hello").digest("base64")];
    """,
    "hash_sha512_updates": """
        const h = require("crypto").createHash("sha512");
        h.update("part one, ");
        h.update(Buffer.from("part two: ünïcödé ✓"));
        const d = h.digest();
        return [d.length, d.toString("hex")];
    """,
    "hash_encodings": """
        const c = require("crypto");
        return [c.createHash("sha256").update("caf\u00e9", "latin1").digest("hex"),
                c.createHash("sha384").update("").digest("base64"),
                c.createHash("sha256").update(new Uint8Array([1, 2, 3])).digest("hex")];
    """,
    "subtle_digest": """
        const data = new TextEncoder().encode("The quick brown fox");
        const hash = await crypto.subtle.digest("SHA-256", data);
        return Array.from(new Uint8Array(hash)).map((b) => b.toString(16).padStart(2, "0")).join("");
    """,
    "subtle_hmac": """
        const enc = new TextEncoder();
        const key = await crypto.subtle.importKey("raw", enc.encode("secret"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
        const sig = await crypto.subtle.sign("HMAC", key, enc.encode("message"));
        const ok = await crypto.subtle.verify("HMAC", key, sig, enc.encode("message"));
        const bad = await crypto.subtle.verify("HMAC", key, sig, enc.encode("messagE"));
        return [Buffer.from(sig).toString("base64"), ok, bad];
    """,
    "jwt_hs256": """
        const crypto = require("crypto");
        const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
        const head = b64url({ alg: "HS256", typ: "JWT" });
        const body = b64url({ sub: "1234567890", name: "John Doe", iat: 1516239022 });
        const sig = crypto.createHmac("sha256", "your-256-bit-secret").update(head + "." + body).digest("base64url");
        return `${head}.${body}.${sig}`;
    """,
    "jwt_rs256_sign_verify": _K
    + """
        const crypto = require("crypto");
        const [h, p] = KEYS.rs256.split(".");
        const signer = crypto.createSign("RSA-SHA256");
        signer.update(h + "." + p);
        const sig = signer.sign(KEYS.rsaPrivate, "base64url");
        const verifier = crypto.createVerify("RSA-SHA256");
        verifier.update(h + "." + p);
        return [sig === KEYS.rs256.split(".")[2], verifier.verify(KEYS.rsaPublic, sig, "base64url")];
    """,
    "jwt_rs256_jwk": _K
    + """
        const crypto = require("crypto");
        const [h, p, s] = KEYS.rs256.split(".");
        const key = crypto.createPublicKey({ key: KEYS.rsaJwk, format: "jwk" });
        const ok = crypto.verify("sha256", Buffer.from(h + "." + p), key, Buffer.from(s, "base64url"));
        const claims = JSON.parse(Buffer.from(p, "base64url").toString());
        return { ok, claims, type: key.asymmetricKeyType, bits: key.asymmetricKeyDetails.modulusLength };
    """,
    "jwt_es256_subtle": _K
    + """
        const [h, p, s] = KEYS.es256.split(".");
        const key = await crypto.subtle.importKey("jwk", KEYS.ecJwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
        const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, Buffer.from(s, "base64url"), new TextEncoder().encode(h + "." + p));
        return [ok, key.algorithm.namedCurve, key.type];
    """,
    "es256_node_verify": _K
    + """
        const crypto = require("crypto");
        const [h, p, s] = KEYS.es256.split(".");
        const ok = crypto.verify("sha256", Buffer.from(h + "." + p), { key: KEYS.ecPublic, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
        const sig = crypto.sign("sha256", Buffer.from("x"), { key: KEYS.ecPrivate, dsaEncoding: "ieee-p1363" });
        const again = crypto.verify("sha256", Buffer.from("x"), { key: KEYS.ecPublic, dsaEncoding: "ieee-p1363" }, sig);
        return [ok, sig.length, again];
    """,
    "rsa_pss": _K
    + """
        const crypto = require("crypto");
        const opts = { key: KEYS.rsaPrivate, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
        const sig = crypto.sign("sha256", Buffer.from("payload"), opts);
        const ok = crypto.verify("sha256", Buffer.from("payload"), { key: KEYS.rsaPublic, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
        return [sig.length, ok];
    """,
    "subtle_rsa_spki": _K
    + """
        const pem = KEYS.rsaPublic.replace(/-----[^-]+-----/g, "").replace(/\\s+/g, "");
        const der = Buffer.from(pem, "base64");
        const key = await crypto.subtle.importKey("spki", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, ["verify"]);
        const [h, p, s] = KEYS.rs256.split(".");
        const ok = await crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, Buffer.from(s, "base64url"), Buffer.from(h + "." + p));
        const jwk = await crypto.subtle.exportKey("jwk", key);
        return [ok, jwk.n === KEYS.rsaJwk.n, jwk.e];
    """,
    "aes_256_gcm": """
        const crypto = require("crypto");
        const key = Buffer.alloc(32, 7), iv = Buffer.alloc(12, 1);
        const c = crypto.createCipheriv("aes-256-gcm", key, iv);
        c.setAAD(Buffer.from("header"));
        const enc = c.update("attack at dawn", "utf8", "hex") + c.final("hex");
        const tag = c.getAuthTag().toString("hex");
        const d = crypto.createDecipheriv("aes-256-gcm", key, iv);
        d.setAAD(Buffer.from("header"));
        d.setAuthTag(Buffer.from(tag, "hex"));
        const dec = d.update(enc, "hex", "utf8") + d.final("utf8");
        let failed = null;
        try {
          const e = crypto.createDecipheriv("aes-256-gcm", key, iv);
          e.setAuthTag(Buffer.alloc(16));
          e.update(Buffer.from(enc, "hex"));
          e.final();
        } catch (err) { failed = err.message; }
        return { enc, tag, dec, failed };
    """,
    "aes_256_cbc": """
        const crypto = require("crypto");
        const key = crypto.createHash("sha256").update("password").digest();
        const iv = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
        const c = crypto.createCipheriv("aes-256-cbc", key, iv);
        const enc = Buffer.concat([c.update(Buffer.from("some plaintext")), c.final()]).toString("base64");
        const d = crypto.createDecipheriv("aes-256-cbc", key, iv);
        return [enc, d.update(enc, "base64", "utf8") + d.final("utf8")];
    """,
    "subtle_aes_gcm": """
        const raw = new Uint8Array(32).fill(3);
        const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
        const iv = new Uint8Array(12).fill(9);
        const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, new TextEncoder().encode("hi there"));
        const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, ct);
        return [Buffer.from(ct).toString("hex"), new TextDecoder().decode(pt)];
    """,
    "pbkdf2_scrypt_hkdf": """
        const crypto = require("crypto");
        return [
          crypto.pbkdf2Sync("password", "salt", 10000, 32, "sha512").toString("hex"),
          crypto.scryptSync("password", "salt", 32, { N: 1024 }).toString("hex"),
          Buffer.from(crypto.hkdfSync("sha256", "key", "salt", "info", 42)).toString("hex"),
        ];
    """,
    "pbkdf2_callback": """
        const crypto = require("crypto");
        const key = await new Promise((res, rej) => crypto.pbkdf2("pw", "s", 1000, 16, "sha256", (e, k) => (e ? rej(e) : res(k))));
        return key.toString("base64");
    """,
    "random_shapes": """
        const crypto = require("crypto");
        const uuid = crypto.randomUUID();
        const n = crypto.randomInt(10, 20);
        const b = crypto.randomBytes(16);
        const values = globalThis.crypto.getRandomValues(new Uint8Array(8));
        return [/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid), n >= 10 && n < 20, b.length, values.length, typeof crypto.webcrypto.subtle.digest];
    """,
    "keyobject_export": _K
    + """
        const crypto = require("crypto");
        const pub = crypto.createPublicKey(KEYS.ecPrivate);
        const jwk = pub.export({ format: "jwk" });
        const pem = pub.export({ type: "spki", format: "pem" });
        return [jwk.x === KEYS.ecJwk.x, jwk.crv, pem.trim() === KEYS.ecPublic.trim(), pub.type, crypto.createPrivateKey(KEYS.rsaPrivate).type];
    """,
    "buffer_encodings": """
        const b = Buffer.from("Hello, wörld! ✓");
        return [b.toString("hex"), b.toString("base64"), b.toString("base64url"), b.toString("latin1"),
                Buffer.from("SGVsbG8=", "base64").toString(), Buffer.from("SGVsbG8", "base64url").toString(),
                Buffer.from("48656c6c6fzz", "hex").toString(), Buffer.from("héllo", "ascii").toString("hex"),
                Buffer.byteLength("✓✓"), Buffer.from("ab", "utf16le").toString("hex")];
    """,
    "btoa_atob": """
        const utf8ToB64 = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
        const b64ToUtf8 = (b) => new TextDecoder().decode(Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
        let error = null;
        try { btoa("✓"); } catch (e) { error = e.name; }
        return [btoa("user:pass"), atob("dXNlcjpwYXNz"), utf8ToB64("héllo ✓"), b64ToUtf8(utf8ToB64("héllo ✓")), error];
    """,
    "buffer_numbers": """
        const b = Buffer.alloc(16);
        b.writeUInt32BE(0xdeadbeef, 0);
        b.writeInt16LE(-2, 4);
        b.writeUInt8(255, 6);
        b.writeDoubleLE(1.5, 8);
        let error = null;
        try { b.readUInt32LE(14); } catch (e) { error = e.code; }
        return [b.readUInt32BE(0), b.readUInt16LE(0), b.readInt16LE(4), b.readUInt8(6), b.readDoubleLE(8),
                b.readBigUInt64BE(0).toString(), b.readUIntBE(0, 3), b.toString("hex"), error];
    """,
    "buffer_ops": """
        const a = Buffer.from("abcdef"), b = Buffer.from("abcxyz");
        const c = Buffer.concat([a, b], 9);
        const s = a.slice(1, 3);
        s[0] = 0x42;
        return [c.toString(), Buffer.compare(a, b), a.equals(Buffer.from("aBcdef")), a.indexOf("cd"), a.includes("zz"),
                a.subarray(-2).toString(), Buffer.isBuffer(a), Buffer.isBuffer(new Uint8Array(2)), a.toString("utf8", 1, 4),
                Buffer.alloc(5, "ab").toString(), Buffer.from([256, -1, 3.7]).toJSON()];
    """,
    "buffer_json": """
        const b = Buffer.from([1, 2, 3]);
        const json = JSON.stringify({ b });
        const back = Buffer.from(JSON.parse(json).b);
        const ab = new ArrayBuffer(4);
        const view = Buffer.from(ab);
        new Uint8Array(ab)[0] = 9;
        return [json, back.equals(b), view[0], Buffer.from(b.buffer, b.byteOffset, 2).length];
    """,
    "text_decoders": """
        const u16 = new TextDecoder("utf-16le").decode(new Uint8Array([104, 0, 105, 0, 0x3c, 0xd8, 0x89, 0xdf]));
        const l1 = new TextDecoder("latin1").decode(new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
        const bad = new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0xe2, 0x82, 0x62]));
        let fatal = null;
        try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xc3])); } catch (e) { fatal = e.name; }
        const dec = new TextDecoder();
        const streamed = dec.decode(new Uint8Array([0xe2, 0x82]), { stream: true }) + dec.decode(new Uint8Array([0xac]));
        const r = new TextEncoder().encodeInto("héllo", new Uint8Array(4));
        return [u16, l1, bad, fatal, streamed, new TextDecoder("latin1").encoding, r];
    """,
    "url_parse": """
        const u = new URL("https://user:pa ss@Bücher.EXAMPLE:443/a/./b/../c d?q=1&q=2&x=ä#frag");
        return [u.href, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash,
                u.origin, u.searchParams.getAll("q"), u.searchParams.get("x"), JSON.stringify(u)];
    """,
    "url_relative_setters": """
        const u = new URL("../other/page?x=1", "https://example.com/dir/sub/index.html");
        u.searchParams.set("y", "a b&c");
        u.hash = "top";
        u.port = "8080";
        u.hostname = "münchen.de";
        let invalid = null;
        try { new URL("not a url"); } catch (e) { invalid = [e.name, e.code]; }
        return [u.toString(), URL.canParse("/x"), URL.canParse("/x", "http://a"), invalid, new URL("HTTP://EX.com:80/").href];
    """,
    "url_search_params": """
        const p = new URLSearchParams("b=2&a=1&a=3&c=%20x+y&d");
        p.append("e", "ü&=");
        p.delete("b");
        p.sort();
        const obj = Object.fromEntries(new URLSearchParams({ k: "v", n: 5 }));
        return [p.toString(), p.getAll("a"), p.get("c"), p.has("d"), [...p.keys()], obj, new URLSearchParams([["x", "1"]]).toString(), p.size];
    """,
    "url_legacy": """
        const url = require("url");
        const parsed = url.parse("https://user:pw@Host.com:8080/p/a/t/h?query=string&a=1#hash", true);
        return [parsed.protocol, parsed.auth, parsed.host, parsed.port, parsed.hostname, parsed.hash, parsed.search,
                parsed.query, parsed.pathname, parsed.path, parsed.href,
                url.format({ protocol: "https", hostname: "example.com", pathname: "/some/path", query: { page: 1, format: "json" } }),
                url.resolve("http://example.com/one/two", "three"), url.resolve("http://example.com/", "/one"),
                url.format(new URL("https://a.com/b?c=d#e"), { fragment: false }), url.domainToASCII("español.com")];
    """,
    "querystring": """
        const qs = require("querystring");
        return [qs.parse("foo=bar&abc=xyz&abc=123&e=%E2%9C%93&sp=a+b"), qs.stringify({ foo: "bar", baz: ["qux", "quux"], corge: "", n: 3, ok: true, x: null }),
                qs.stringify({ w: "%é" }, ";", ":"), qs.escape("a b&c/d"), qs.unescape("a%20b%zz")];
    """,
    "util_format_inspect": """
        const util = require("util");
        return [util.format("%s is %d years and %i days", "Bob", 42.5, 3.9), util.format("%j", { a: [1, "b"] }),
                util.format("a", "b", 3), util.format("%% %s", "x"), util.inspect({ a: 1, b: "two", c: [3] }),
                util.inspect("str"), util.inspect(new Map([["k", 1]])), util.inspect(null), util.format("%s", 5n)];
    """,
    "util_misc": """
        const util = require("util");
        const later = util.promisify((x, cb) => setTimeout(() => cb(null, x * 2), 1));
        const failing = util.promisify((cb) => cb(new Error("nope")));
        let message = null;
        try { await failing(); } catch (e) { message = e.message; }
        const t = util.types;
        return [await later(21), message, t.isDate(new Date()), t.isRegExp(/x/), t.isPromise(Promise.resolve()),
                t.isUint8Array(Buffer.alloc(1)), t.isTypedArray(new Float32Array(1)), util.isDeepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }),
                util.isDeepStrictEqual([1], ["1"]), typeof util.TextEncoder];
    """,
    "structured_clone": """
        const original = { d: new Date(0), m: new Map([["k", new Set([1, 2])]]), r: /ab+c/gi, t: new Uint16Array([1, 2, 3]), n: null, nested: { arr: [1, "x"] } };
        original.self = original;
        const copy = structuredClone(original);
        let error = null;
        try { structuredClone({ f() {} }); } catch (e) { error = [e.name, e.constructor.name]; }
        return [copy !== original, copy.self === copy, copy.d.toISOString(), copy.m.get("k").has(2), copy.r.source, copy.r.flags,
                Array.from(copy.t), copy.t instanceof Uint16Array, copy.nested.arr, error];
    """,
    "zlib_sync": """
        const zlib = require("zlib");
        const input = "hello hello hello hello hello ".repeat(20);
        const deflated = zlib.deflateSync(input);
        const gz = zlib.gzipSync(input);
        const raw = zlib.deflateRawSync(Buffer.from(input), { level: 9 });
        return [deflated.toString("base64"), gz.length, zlib.gunzipSync(gz).toString() === input, zlib.inflateRawSync(raw).toString().length,
                zlib.unzipSync(deflated).length, zlib.inflateSync(deflated).toString().slice(0, 11)];
    """,
    "zlib_async_brotli": """
        const zlib = require("zlib");
        const util = require("util");
        const br = zlib.brotliCompressSync("compress me please, compress me please");
        const back = await util.promisify(zlib.brotliDecompress)(br);
        const gz = await util.promisify(zlib.gzip)("abc");
        const unzipped = await new Promise((res, rej) => zlib.gunzip(gz, (e, r) => (e ? rej(e) : res(r.toString()))));
        let error = null;
        try { zlib.inflateSync(Buffer.from("not zlib")); } catch (e) { error = e.code; }
        return [back.toString(), unzipped, error];
    """,
    "events": """
        const EventEmitter = require("events");
        const { once } = require("events");
        const e = new EventEmitter();
        const seen = [];
        const h = (x) => seen.push("on:" + x);
        e.on("tick", h);
        e.once("tick", (x) => seen.push("once:" + x));
        e.prependListener("tick", (x) => seen.push("first:" + x));
        e.emit("tick", 1);
        e.emit("tick", 2);
        e.off("tick", h);
        e.emit("tick", 3);
        setTimeout(() => e.emit("ready", "go", 5), 1);
        const args = await once(e, "ready");
        let error = null;
        try { e.emit("error", new Error("boom")); } catch (err) { error = err.message; }
        return [seen, args, e.listenerCount("tick"), e.eventNames(), error, EventEmitter.EventEmitter === EventEmitter];
    """,
    "path": """
        const path = require("path");
        return [path.join("/foo", "bar", "baz/asdf", "quux", ".."), path.resolve("/foo/bar", "./baz"), path.basename("/a/b/file.html", ".html"),
                path.dirname("/a/b/c/"), path.extname("index.coffee.md"), path.normalize("/foo/bar//baz/asdf/quux/.."),
                path.relative("/data/orandea/test/aaa", "/data/orandea/impl/bbb"), path.parse("/home/user/dir/file.txt"),
                path.format({ dir: "/home/user/dir", base: "file.txt" }), path.isAbsolute("a/b"), path.sep, path.posix === path];
    """,
    "string_decoder": """
        const { StringDecoder } = require("string_decoder");
        const d = new StringDecoder("utf8");
        const euro = Buffer.from("€");
        const parts = [d.write(euro.subarray(0, 1)), d.write(euro.subarray(1, 2)), d.write(euro.subarray(2)), d.end()];
        const h = new StringDecoder("hex");
        return [parts, h.write(Buffer.from([1, 255])), new StringDecoder("utf8").end(Buffer.from([0xe2]))];
    """,
    "assert": """
        const assert = require("assert");
        assert.deepStrictEqual({ a: [1, 2] }, { a: [1, 2] });
        assert.ok(1);
        assert.equal(1, "1");
        assert.throws(() => { throw new TypeError("bad thing"); }, { name: "TypeError", message: /bad/ });
        await assert.rejects(Promise.reject(new Error("x")), Error);
        const results = [];
        for (const f of [() => assert.strictEqual(1, 2), () => assert.deepStrictEqual([1], ["1"]), () => assert(false, "custom"), () => assert.notEqual(1, 1)]) {
          try { f(); results.push("passed"); } catch (e) { results.push([e.name, e.code, e.operator]); }
        }
        return results;
    """,
    "timers": """
        const { setTimeout: sleep } = require("timers/promises");
        const timers = require("node:timers");
        const order = [];
        const value = await sleep(5, "done");
        await new Promise((res) => timers.setImmediate(() => { order.push("immediate"); res(); }));
        const id = setInterval(() => order.push("interval"), 1);
        await sleep(15);
        clearInterval(id);
        return [value, order[0], order.includes("interval")];
    """,
    "stream_pipeline": """
        const { Readable, Transform, Writable, PassThrough, pipeline } = require("stream");
        const { pipeline: pipelineP } = require("stream/promises");
        const upper = new Transform({ transform(chunk, enc, cb) { cb(null, chunk.toString().toUpperCase()); } });
        const out = [];
        await pipelineP(Readable.from(["a", "b", "c"]), upper, new Writable({ write(c, e, cb) { out.push(c.toString()); cb(); } }));
        const pass = new PassThrough();
        const collected = [];
        pass.on("data", (c) => collected.push(c.toString()));
        const ended = new Promise((res) => pass.on("end", res));
        pass.write("x");
        pass.end("y");
        await ended;
        const items = [];
        for await (const item of Readable.from([1, 2, 3])) items.push(item * 2);
        const done = await new Promise((res) => pipeline(Readable.from(["q"]), new PassThrough(), new Writable({ write(c, e, cb) { cb(); } }), (err) => res(err === undefined || err === null)));
        return [out, collected, items, done];
    """,
    "abort": """
        const c = new AbortController();
        const seen = [];
        c.signal.addEventListener("abort", () => seen.push("aborted"));
        c.abort();
        const t = AbortSignal.timeout(5);
        await new Promise((res) => t.addEventListener("abort", res));
        let thrown = null;
        try { AbortSignal.abort("why").throwIfAborted(); } catch (e) { thrown = e; }
        return [seen, c.signal.aborted, c.signal.reason.name, t.reason.name, thrown];
    """,
    "microtasks": """
        const order = [];
        setTimeout(() => order.push("timeout"), 0);
        queueMicrotask(() => order.push("microtask"));
        process.nextTick(() => order.push("tick"));
        Promise.resolve().then(() => order.push("promise"));
        order.push("sync");
        await new Promise((res) => setTimeout(res, 5));
        return order.filter((x) => x !== "tick").concat(order.includes("tick") ? ["tick seen"] : []);
    """,
    "performance_process": """
        const a = performance.now();
        let x = 0;
        for (let i = 0; i < 1e5; i++) x += i;
        const b = performance.now();
        const hr = process.hrtime();
        const big = process.hrtime.bigint();
        return [typeof a, b >= a, hr.length, typeof big, typeof process.env, typeof process.version, process.platform];
    """,
    "event_target": """
        const target = new EventTarget();
        const seen = [];
        target.addEventListener("ping", (e) => seen.push([e.type, e instanceof Event, e.target === target]));
        target.addEventListener("ping", { handleEvent: () => seen.push("object listener") }, { once: true });
        target.dispatchEvent(new Event("ping"));
        target.dispatchEvent(new Event("ping"));
        const e = new Event("x", { cancelable: true });
        e.preventDefault();
        return [seen, e.defaultPrevented];
    """,
    "dates": """
        const d = new Date(Date.UTC(2024, 1, 29, 13, 45, 0));
        const plusDay = new Date(d.getTime() + 864e5);
        return [d.toISOString(), plusDay.toISOString().slice(0, 10), d.toLocaleDateString("en-US", { timeZone: "UTC" }),
                new Intl.DateTimeFormat("en-GB", { dateStyle: "full", timeZone: "UTC" }).format(d), Date.parse("2024-03-01T00:00:00Z"),
                new Intl.NumberFormat("de-DE", { style: "currency", currency: "EUR" }).format(1234.5)];
    """,
    "json_reshape": """
        const orders = [{ id: 1, items: [{ sku: "a", qty: 2, price: 3.5 }] }, { id: 2, items: [{ sku: "b", qty: 1, price: 10 }, { sku: "a", qty: 1, price: 3.5 }] }];
        const totals = orders.map((o) => ({ id: o.id, total: o.items.reduce((s, i) => s + i.qty * i.price, 0) }));
        const bySku = {};
        for (const o of orders) for (const i of o.items) bySku[i.sku] = (bySku[i.sku] || 0) + i.qty;
        return { totals, bySku, grouped: Object.groupBy ? Object.keys(Object.groupBy(totals, (t) => (t.total > 10 ? "big" : "small"))).sort() : ["big", "small"] };
    """,
    "basic_auth_header": """
        const header = "Basic " + Buffer.from("aladdin:opensesame").toString("base64");
        const [user, pass] = Buffer.from(header.split(" ")[1], "base64").toString().split(":");
        return [header, user, pass];
    """,
    "hex_binary_conversions": """
        const bytes = Uint8Array.from([0, 15, 16, 255]);
        const hex = Buffer.from(bytes).toString("hex");
        const back = Uint8Array.from(Buffer.from(hex, "hex"));
        const ab = back.buffer.slice(0);
        return [hex, Array.from(back), Buffer.from(ab).toString("base64"), Buffer.from("ff", "hex")[0], [...Buffer.from("AQID", "base64")]];
    """,
    "http_without_network": """
        const http = require("http");
        const https = require("https");
        return [typeof http.request, typeof https.get, http.STATUS_CODES[404], http.METHODS.includes("GET")];
    """,
    "subtle_rsa_jwk_ecdsa_spki": _K
    + """
        const [h, p, s] = KEYS.rs256.split(".");
        const rsa = await crypto.subtle.importKey("jwk", KEYS.rsaJwk, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
        const rsaOk = await crypto.subtle.verify("RSASSA-PKCS1-v1_5", rsa, Buffer.from(s, "base64url"), Buffer.from(h + "." + p));
        const der = Buffer.from(KEYS.ecPublic.replace(/-----[^-]+-----/g, "").replace(/\\s+/g, ""), "base64");
        const ec = await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);
        const [h2, p2, s2] = KEYS.es256.split(".");
        const ecOk = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ec, Buffer.from(s2, "base64url"), Buffer.from(h2 + "." + p2));
        const tampered = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ec, Buffer.from(s2, "base64url"), Buffer.from(h2 + "." + p));
        return [rsaOk, ecOk, tampered, rsa.algorithm.modulusLength, ec.algorithm.name];
    """,
    "webhook_twilio": """
        const crypto = require("crypto");
        const url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        const params = { CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" };
        const data = Object.keys(params).sort().reduce((acc, key) => acc + key + params[key], url);
        return crypto.createHmac("sha1", "12345").update(Buffer.from(data, "utf-8")).digest("base64");
    """,
    "secret_keyobject_hmac": """
        const crypto = require("crypto");
        const key = crypto.createSecretKey(Buffer.from("c2VjcmV0", "base64"));
        return [key.type, key.symmetricKeySize, crypto.createHmac("sha384", key).update("data").digest("hex"), key.export().toString()];
    """,
    "zlib_streams": """
        const zlib = require("zlib");
        const { Readable, Writable } = require("stream");
        const { pipeline } = require("stream/promises");
        const chunks = [];
        await pipeline(Readable.from([Buffer.from("line one\\n"), Buffer.from("line two\\n")]), zlib.createGzip(), new Writable({ write(c, e, cb) { chunks.push(c); cb(); } }));
        return zlib.gunzipSync(Buffer.concat(chunks)).toString();
    """,
    "crypto_hash_stream_copy": """
        const crypto = require("crypto");
        const h = crypto.createHash("sha256").update("a");
        const copy = h.copy();
        copy.update("b");
        return [h.digest("hex"), copy.digest("hex"), crypto.getHashes().includes("sha256"), crypto.createHash("SHA256").update("x").digest("hex").length];
    """,
}

#: Runs every body on Node: a CommonJS script, so `require` is Node's own.
_NODE_HARNESS = """
const bodies = %s;
const AsyncFunction = (async () => {}).constructor;
const keepAlive = setInterval(() => {}, 1000); // AbortSignal.timeout's timer does not hold Node open
(async () => {
  const out = {};
  for (const [name, body] of Object.entries(bodies)) {
    try {
      const value = await new AsyncFunction("require", body)(require);
      out[name] = { ok: true, result: JSON.parse(JSON.stringify(value === undefined ? null : value)) };
    } catch (error) {
      out[name] = { ok: false, error: String(error && error.message) };
    }
  }
  clearInterval(keepAlive);
  process.stdout.write(JSON.stringify(out));
})();
"""


def _dedent(body: str) -> str:
    return textwrap.dedent(body).strip()


def node_results(node: str = "/usr/bin/node") -> dict[str, dict[str, Any]]:
    script = _NODE_HARNESS % json.dumps({name: _dedent(body) for name, body in BODIES.items()})
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=120, check=True)
    results: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return results


async def _run_all(timeout: float, memory: int) -> dict[str, dict[str, Any]]:
    from fnbox.sandboxes.base import FunctionSource, Limits
    from fnbox.sandboxes.errors import FnboxError
    from fnbox.sandboxes.js.sandbox import compile_workspace

    sources = [FunctionSource(name, _dedent(body)) for name, body in BODIES.items()]
    sandbox = compile_workspace(sources)
    out: dict[str, dict[str, Any]] = {}
    try:
        for name in BODIES:
            try:
                result = await sandbox.run(name, {}, Limits(timeout=timeout, memory=memory))
                out[name] = {"ok": True, "result": result.result}
            except FnboxError as exc:
                out[name] = {"ok": False, "error": exc.message}
    finally:
        sandbox.close()
    return out


def fnbox_results(timeout: float = 10.0, memory: int = 128 << 20) -> dict[str, dict[str, Any]]:
    return asyncio.run(_run_all(timeout, memory))
