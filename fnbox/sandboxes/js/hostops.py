"""The host calls' operations that need no third-party library: the library's source,
hashes, HMAC, randomness, key derivation, zlib and brotli, a clock.

Each op takes the call's JSON arguments (checked here: JS is untrusted) and the run's byte
budget, and answers JSON data; binary data travels as base64 both ways.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import importlib
import math
import re
import secrets
import time
import zlib
from pathlib import Path
from typing import Any

import brotli

from fnbox.sandboxes.js.host import REMAINING, HostError, Op

__all__ = ["HASHES", "MAX_KDF_WORK", "OPS", "data", "encode", "hash_name", "integer", "op_named", "text"]

LIB = Path(__file__).with_name("lib")
_LIB_NAME = re.compile(r"^[a-z_]+$")

#: Hash names as Node spells them, to hashlib's.
HASHES = {
    "md5": "md5",
    "sha1": "sha1",
    "sha224": "sha224",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    "sha512-224": "sha512_224",
    "sha512-256": "sha512_256",
    "sha3-224": "sha3_224",
    "sha3-256": "sha3_256",
    "sha3-384": "sha3_384",
    "sha3-512": "sha3_512",
    "ripemd160": "ripemd160",
}
_ALIASES = {"sha-1": "sha1", "sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512", "rsa-sha256": "sha256"}
#: Hash-function compressions one pbkdf2 or scrypt call may cost (about a second of CPU).
MAX_KDF_WORK = 2_000_000
#: Seconds a unit of that work takes at most, by a generous measure (a pbkdf2 block of
#: sha512 takes about 0.6 µs on a busy 2-core machine): what `_affordable` estimates with.
_SECONDS_PER_WORK = 1.5e-6
#: Bytes of random data one call answers (Node's getRandomValues caps at 64 KiB; randomBytes more).
MAX_RANDOM = 1 << 20


# ---- checked arguments ------------------------------------------------------------------


def text(args: list[Any], index: int, name: str) -> str:
    value = args[index] if index < len(args) else None
    if not isinstance(value, str):
        raise HostError(f'the "{name}" argument must be a string', "TypeError", "ERR_INVALID_ARG_TYPE")
    return value


def data(args: list[Any], index: int, name: str, budget: int | None = None) -> bytes:
    """Binary data sent as base64."""
    encoded = text(args, index, name)
    if budget is not None and len(encoded) * 3 // 4 > budget:
        raise HostError(f'the "{name}" argument is over {budget} bytes', "memory")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HostError(f'the "{name}" argument is not base64', "TypeError") from exc


def integer(args: list[Any], index: int, name: str, low: int, high: int) -> int:
    value = args[index] if index < len(args) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise HostError(f'the "{name}" argument must be an integer', "TypeError", "ERR_INVALID_ARG_TYPE")
    if not low <= value <= high:
        raise HostError(
            f'The value of "{name}" is out of range. It must be >= {low} && <= {high}. Received {int(value)}',
            "RangeError",
            "ERR_OUT_OF_RANGE",
        )
    return int(value)


def encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def hash_name(name: str) -> str:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in HASHES:
        raise HostError(f"Digest method not supported: {name}", "Error", "ERR_CRYPTO_INVALID_DIGEST")
    return HASHES[key]


# ---- ops --------------------------------------------------------------------------------


@functools.cache
def _source(name: str) -> str:
    return (LIB / f"{name}.js").read_text(encoding="utf-8")


def source(args: list[Any], budget: int) -> str:
    name = text(args, 0, "name")
    if not _LIB_NAME.match(name) or not (LIB / f"{name}.js").is_file():
        raise HostError(f"no library {name!r}", "TypeError")
    return _source(name)


def digest(args: list[Any], budget: int) -> str:
    algorithm = hash_name(text(args, 0, "algorithm"))
    return encode(hashlib.new(algorithm, data(args, 1, "data")).digest())


def mac(args: list[Any], budget: int) -> str:
    algorithm = hash_name(text(args, 0, "algorithm"))
    return encode(hmac.new(data(args, 1, "key"), data(args, 2, "data"), algorithm).digest())


def random(args: list[Any], budget: int) -> str:
    return encode(secrets.token_bytes(integer(args, 0, "size", 0, min(MAX_RANDOM, budget))))


def random_int(args: list[Any], budget: int) -> int:
    low = integer(args, 0, "min", -(2**53) + 1, 2**53 - 1)
    high = integer(args, 1, "max", -(2**53) + 1, 2**53 - 1)
    if high <= low:
        message = (
            f'The value of "max" is out of range. It must be greater than the value of "min" ({low}). Received {high}'
        )
        raise HostError(message, "RangeError", "ERR_OUT_OF_RANGE")
    if high - low > 2**48 - 1:
        message = f'The value of "max - min" is out of range. It must be <= 281474976710655. Received {high - low}'
        raise HostError(message, "RangeError", "ERR_OUT_OF_RANGE")
    return low + secrets.randbelow(high - low)


def pbkdf2(args: list[Any], budget: int) -> str:
    password = data(args, 0, "password")
    salt = data(args, 1, "salt")
    iterations = integer(args, 2, "iterations", 1, 2**31 - 1)
    length = integer(args, 3, "keylen", 0, min(budget, 1 << 20))
    algorithm = hash_name(text(args, 4, "digest"))
    size = hashlib.new(algorithm).digest_size
    work = iterations * max(1, -(-length // size))
    _affordable("pbkdf2", work * _SECONDS_PER_WORK)
    if work > MAX_KDF_WORK:
        raise HostError(
            f"pbkdf2: {iterations} iterations for a {length}-byte key is more work than fnbox allows "
            f"({MAX_KDF_WORK} hash blocks a call)",
            "RangeError",
            "ERR_OUT_OF_RANGE",
        )
    if length == 0:
        return ""
    return encode(hashlib.pbkdf2_hmac(algorithm, password, salt, iterations, length))


def scrypt(args: list[Any], budget: int) -> str:
    password = data(args, 0, "password")
    salt = data(args, 1, "salt")
    length = integer(args, 2, "keylen", 0, min(budget, 1 << 20))
    n = integer(args, 3, "N", 2, 2**30)
    r = integer(args, 4, "r", 1, 2**20)
    p = integer(args, 5, "p", 1, 2**20)
    memory = 128 * n * r + 128 * r * p
    if n & (n - 1):
        raise HostError("Invalid scrypt params", "RangeError", "ERR_CRYPTO_INVALID_SCRYPT_PARAMS")
    _affordable("scrypt", n * r * p * _SECONDS_PER_WORK / 2)
    if n * r * p > MAX_KDF_WORK or memory > min(budget, 32 << 20):
        raise HostError(
            f"scrypt: N={n}, r={r}, p={p} needs more memory or work than fnbox allows",
            "RangeError",
            "ERR_CRYPTO_INVALID_SCRYPT_PARAMS",
        )
    return encode(hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=memory * 2 + (1 << 20), dklen=length))


def _affordable(what: str, seconds: float) -> None:
    """Refuse work that would run past the run's timeout (the isolate's thread is busy meanwhile)."""
    if seconds > REMAINING.get():
        raise HostError(
            f"{what}: about {seconds:.2f} s of work, more than the {max(REMAINING.get(), 0):.2f} s left to the function",
            "RangeError",
            "ERR_OUT_OF_RANGE",
        )


def compress(args: list[Any], budget: int) -> str:
    """zlib, gzip, raw deflate or brotli, either way, its output capped by the budget."""
    method = text(args, 0, "method")
    source = data(args, 1, "buffer", budget)
    options = args[2] if len(args) > 2 and isinstance(args[2], dict) else {}
    limit = budget
    max_length = options.get("maxOutputLength")
    if isinstance(max_length, int) and not isinstance(max_length, bool) and 0 < max_length < limit:
        limit = max_length
    level = options.get("level", -1)
    if not (isinstance(level, int) and -1 <= level <= 9):
        raise HostError(f'The value of "options.level" is out of range: {level}', "RangeError", "ERR_OUT_OF_RANGE")
    try:
        if method in ("deflate", "gzip", "deflateRaw"):
            bits = {"deflate": 15, "gzip": 31, "deflateRaw": -15}[method]
            compressor = zlib.compressobj(level, zlib.DEFLATED, bits)
            out = compressor.compress(source) + compressor.flush()
        elif method in ("inflate", "gunzip", "inflateRaw", "unzip"):
            bits = {"inflate": 15, "gunzip": 31, "inflateRaw": -15, "unzip": 47}[method]
            out = _inflate(source, bits, limit)
        elif method == "brotliCompress":
            quality = options.get("quality", 11)
            if not (isinstance(quality, int) and 0 <= quality <= 11):
                quality = 11
            # Brotli's best qualities (Node's default is 11) take about a microsecond a byte.
            _affordable(method, len(source) * (2e-6 if quality >= 10 else 1e-7))
            out = brotli.compress(source, quality=quality)
        elif method == "brotliDecompress":
            out = _unbrotli(source, limit)
        else:
            raise HostError(f"no zlib method {method!r}", "TypeError")
    except zlib.error as exc:
        raise HostError(_zlib_message(str(exc)), "Error", "Z_DATA_ERROR") from exc
    except brotli.error as exc:
        raise HostError("Decompression failed", "Error", "ERR__ERROR_FORMAT_PADDING_1") from exc
    if len(out) > limit:
        raise _too_big(limit)
    return encode(out)


def _too_big(limit: int) -> HostError:
    return HostError(
        f"Cannot create a Buffer larger than {limit} bytes: the output is over what this function may hold "
        "(a decompression bomb?)",
        "RangeError",
        "ERR_BUFFER_TOO_LARGE",
    )


def _inflate(source: bytes, bits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(bits)
    out = bytearray()
    pending = source
    while True:
        out += decompressor.decompress(pending, limit + 1 - len(out))
        if len(out) > limit:
            raise _too_big(limit)
        pending = decompressor.unconsumed_tail
        if decompressor.eof:
            if bits == 31 and decompressor.unused_data[:2] == b"\x1f\x8b":  # concatenated gzip members
                decompressor, pending = zlib.decompressobj(bits), decompressor.unused_data
                continue
            return bytes(out)
        if not pending:
            raise zlib.error("unexpected end of file")


def _unbrotli(source: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(source), 4096):
        out += decompressor.process(source[start : start + 4096])
        if len(out) > limit:
            raise _too_big(limit)
    if not decompressor.is_finished():
        raise HostError("unexpected end of file", "Error", "Z_BUF_ERROR")
    return bytes(out)


def _zlib_message(message: str) -> str:
    if "incorrect header check" in message:
        return "incorrect header check"
    if "invalid" in message:
        return message.split(": ", 1)[-1].replace("while decompressing data", "").strip() or "invalid data"
    return message.split(": ", 1)[-1]


_EPOCH = time.monotonic_ns()


def clock(args: list[Any], budget: int) -> int:
    """Nanoseconds on a monotonic clock: performance.now() and process.hrtime()."""
    return time.monotonic_ns() - _EPOCH + 1_000_000


#: Ops by name; those of hostcrypto and hosturl load their libraries when first called.
OPS: dict[str, Op] = {
    "source": source,
    "hash": digest,
    "hmac": mac,
    "random": random,
    "randomInt": random_int,
    "pbkdf2": pbkdf2,
    "scrypt": scrypt,
    "zlib": compress,
    "clock": clock,
}
_ELSEWHERE = {
    "keyImport": "hostcrypto",
    "keyExport": "hostcrypto",
    "sign": "hostcrypto",
    "verify": "hostcrypto",
    "cipher": "hostcrypto",
    "urlParse": "hosturl",
    "urlSet": "hosturl",
    "domain": "hosturl",
    "fetchStart": "hostnet",
    "fetchBody": "hostnet",
    "fetchTake": "hostnet",
    "fetchRead": "hostnet",
    "fetchDrop": "hostnet",
    "lookup": "hostnet",
    "lookupTake": "hostnet",
}


def op_named(name: str) -> Op | None:
    op = OPS.get(name)
    if op is None and name in _ELSEWHERE:
        module = importlib.import_module(f"fnbox.sandboxes.js.{_ELSEWHERE[name]}")
        OPS.update(module.OPS)
        op = OPS.get(name)
    return op
