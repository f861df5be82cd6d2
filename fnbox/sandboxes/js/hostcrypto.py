"""Host calls of `crypto` and `crypto.subtle` that need more than hashlib: ciphers, keys,
signatures, by the `cryptography` package.

A key crosses as what Node's KeyObject holds: its type, and its DER (SPKI for a public key,
PKCS#8 for a private one) in base64, parsed again on each use: nothing stays in Python.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509 import load_der_x509_certificate, load_pem_x509_certificate

from fnbox.sandboxes.js.host import HostError, Op
from fnbox.sandboxes.js.hostops import data, encode, hash_name, text

__all__ = ["OPS"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
}
_CURVE_NAMES = {"secp256r1": "prime256v1", "secp384r1": "secp384r1", "secp521r1": "secp521r1", "secp256k1": "secp256k1"}
_JWK_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "secp256k1": "secp256k1"}
#: Bytes of a key's text: a 16384-bit RSA private key in PEM is about 13 KB.
MAX_KEY = 64 * 1024

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _hash(name: str) -> hashes.HashAlgorithm:
    key = hash_name(name)
    if key not in _HASHES:
        raise HostError(f"Digest method not supported: {name}", "Error", "ERR_CRYPTO_INVALID_DIGEST")
    return _HASHES[key]()


def _b64url(value: int, size: int | None = None) -> str:
    raw = value.to_bytes(size or max(1, (value.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or len(value) > MAX_KEY:
        raise HostError(f'Invalid JWK: "{name}" must be a base64url string', "TypeError", "ERR_CRYPTO_INVALID_JWK")
    try:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")
    except ValueError as exc:
        raise HostError(f'Invalid JWK: "{name}" is not base64url', "TypeError", "ERR_CRYPTO_INVALID_JWK") from exc


# ---- keys --------------------------------------------------------------------------------


def _from_jwk(jwk: Any, private: bool) -> PublicKey | PrivateKey:
    if not isinstance(jwk, dict):
        raise HostError("Invalid JWK: not an object", "TypeError", "ERR_CRYPTO_INVALID_JWK")
    kty = jwk.get("kty")
    has_private = "d" in jwk
    if private and not has_private:
        raise HostError('Invalid JWK: a private key needs "d"', "TypeError", "ERR_CRYPTO_INVALID_JWK")
    if kty == "RSA":
        public = rsa.RSAPublicNumbers(_unb64url(jwk, "e"), _unb64url(jwk, "n"))
        if not private:
            return public.public_key()
        names = ("d", "p", "q", "dp", "dq", "qi")
        d, p, q, dp, dq, qi = (_unb64url(jwk, name) for name in names)
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    if kty == "EC":
        curve = _CURVES.get(jwk.get("crv", ""))
        if curve is None:
            raise HostError(f"Unsupported JWK EC curve: {jwk.get('crv')}", "TypeError", "ERR_CRYPTO_INVALID_JWK")
        point = ec.EllipticCurvePublicNumbers(_unb64url(jwk, "x"), _unb64url(jwk, "y"), curve())
        if not private:
            return point.public_key()
        return ec.EllipticCurvePrivateNumbers(_unb64url(jwk, "d"), point).private_key()
    if kty == "OKP" and jwk.get("crv") == "Ed25519":
        if private:
            return ed25519.Ed25519PrivateKey.from_private_bytes(_unb64url(jwk, "d").to_bytes(32, "big"))
        return ed25519.Ed25519PublicKey.from_public_bytes(_unb64url(jwk, "x").to_bytes(32, "big"))
    raise HostError(f"Unsupported JWK key type: {kty}", "TypeError", "ERR_CRYPTO_INVALID_JWK")


def _load(kind: str, form: str, material: Any, passphrase: bytes | None) -> PublicKey | PrivateKey:
    """A key from PEM text, DER in base64 or a JWK; a public one may come from a private one
    or a certificate, as Node's createPublicKey allows."""
    if form == "jwk":
        key = _from_jwk(material, kind == "private")
        return key.public_key() if kind == "public" and hasattr(key, "private_bytes") else key  # type: ignore[union-attr]
    if not isinstance(material, str) or len(material) > MAX_KEY * 2:
        raise HostError("the key must be a PEM string, a Buffer or a JWK", "TypeError", "ERR_INVALID_ARG_TYPE")
    raw = material.encode("utf-8") if form == "pem" else data([material], 0, "key")
    loaders: list[Any]
    if form == "pem":
        loaders = [
            lambda: serialization.load_pem_private_key(raw, passphrase),
            lambda: serialization.load_pem_public_key(raw),
            lambda: load_pem_x509_certificate(raw).public_key(),
        ]
    else:
        loaders = [
            lambda: serialization.load_der_private_key(raw, passphrase),
            lambda: serialization.load_der_public_key(raw),
            lambda: load_der_x509_certificate(raw).public_key(),
        ]
    for load in loaders:
        try:
            key = load()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if not isinstance(key, PublicKey | PrivateKey):
            raise HostError("Unsupported key type (fnbox handles RSA, EC and Ed25519 keys)", "TypeError")
        if kind == "private" and not isinstance(key, PrivateKey):
            continue
        return key.public_key() if kind == "public" and isinstance(key, PrivateKey) else key
    raise HostError(
        "error:1E08010C:DECODER routines::unsupported: the key could not be read", "Error", "ERR_OSSL_UNSUPPORTED"
    )


def _describe(key: PublicKey | PrivateKey) -> dict[str, Any]:
    if isinstance(key, PrivateKey):
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key()
    else:
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        public = key
    details: dict[str, Any] = {}
    if isinstance(public, rsa.RSAPublicKey):
        kind = "rsa"
        numbers = public.public_numbers()
        details = {"modulusLength": public.key_size, "publicExponent": numbers.e}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        kind = "ec"
        details = {"namedCurve": _CURVE_NAMES.get(public.curve.name, public.curve.name)}
    else:
        kind = "ed25519"
    return {
        "type": "private" if isinstance(key, PrivateKey) else "public",
        "asymmetricKeyType": kind,
        "der": encode(der),
        "details": details,
    }


def key_import(args: list[Any], budget: int) -> dict[str, Any]:
    kind = text(args, 0, "type")
    form = text(args, 1, "format")
    passphrase = args[3].encode("utf-8") if len(args) > 3 and isinstance(args[3], str) else None
    if kind not in ("public", "private") or form not in ("pem", "der", "jwk"):
        raise HostError(f"unsupported key format {form!r}", "TypeError", "ERR_INVALID_ARG_VALUE")
    return _describe(_load(kind, form, args[2] if len(args) > 2 else None, passphrase))


def _stored(args: list[Any], index: int) -> PublicKey | PrivateKey:
    """A key as KeyObject holds it: SPKI or PKCS#8 DER."""
    raw = data(args, index, "key")
    key: Any
    try:
        key = serialization.load_der_private_key(raw, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = serialization.load_der_public_key(raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise HostError("the key could not be read", "TypeError") from exc
    if not isinstance(key, PublicKey | PrivateKey):
        raise HostError("Unsupported key type", "TypeError")
    return key


def key_export(args: list[Any], budget: int) -> Any:
    key = _stored(args, 0)
    form = text(args, 1, "format")
    if form == "jwk":
        return _jwk(key)
    encoding = serialization.Encoding.PEM if form == "pem" else serialization.Encoding.DER
    if isinstance(key, PrivateKey):
        kind = args[2] if len(args) > 2 else "pkcs8"
        private_format = (
            serialization.PrivateFormat.TraditionalOpenSSL
            if kind in ("pkcs1", "sec1")
            else serialization.PrivateFormat.PKCS8
        )
        out = key.private_bytes(encoding, private_format, serialization.NoEncryption())
    else:
        kind = args[2] if len(args) > 2 else "spki"
        public_format = (
            serialization.PublicFormat.PKCS1 if kind == "pkcs1" else serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out = key.public_bytes(encoding, public_format)
    return out.decode("ascii") if form == "pem" else encode(out)


def _jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        numbers = public.public_numbers()
        jwk = {"kty": "RSA", "n": _b64url(numbers.n), "e": _b64url(numbers.e)}
        if isinstance(key, rsa.RSAPrivateKey):
            p = key.private_numbers()
            jwk.update(
                d=_b64url(p.d),
                p=_b64url(p.p),
                q=_b64url(p.q),
                dp=_b64url(p.dmp1),
                dq=_b64url(p.dmq1),
                qi=_b64url(p.iqmp),
            )
        return jwk
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        public_ec = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
        size = (public_ec.curve.key_size + 7) // 8
        point = public_ec.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": _JWK_CURVES.get(public_ec.curve.name, public_ec.curve.name),
            "x": _b64url(point.x, size),
            "y": _b64url(point.y, size),
        }
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk["d"] = _b64url(key.private_numbers().private_value, size)
        return jwk
    raw_public = (key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw_public).rstrip(b"=").decode()}
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        jwk["d"] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return jwk


# ---- signatures ----------------------------------------------------------------------------


def _rsa_padding(args: list[Any], algorithm: hashes.HashAlgorithm) -> asym_padding.AsymmetricPadding:
    scheme = args[4] if len(args) > 4 else "pkcs1"
    if scheme == "pss":
        salt = args[5] if len(args) > 5 and isinstance(args[5], int) and not isinstance(args[5], bool) else -2
        length: Any = {-1: asym_padding.PSS.DIGEST_LENGTH, -2: asym_padding.PSS.MAX_LENGTH}.get(salt, salt)
        if isinstance(length, int) and not 0 <= length <= 1024:
            raise HostError("the PSS salt length is out of range", "RangeError", "ERR_OUT_OF_RANGE")
        return asym_padding.PSS(mgf=asym_padding.MGF1(algorithm), salt_length=length)
    return asym_padding.PKCS1v15()


def _p1363(args: list[Any]) -> bool:
    return len(args) > 6 and args[6] == "ieee-p1363"


def sign(args: list[Any], budget: int) -> str:
    """[hash or null, key DER, data, _, padding, saltLength, dsaEncoding] -> signature."""
    key = _stored(args, 1)
    message = data(args, 2, "data", budget)
    if not isinstance(key, PrivateKey):
        raise HostError("a signature needs a private key", "TypeError", "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return encode(key.sign(message))
    algorithm = _hash(text(args, 0, "algorithm"))
    if isinstance(key, rsa.RSAPrivateKey):
        return encode(key.sign(message, _rsa_padding(args, algorithm), algorithm))
    signature = key.sign(message, ec.ECDSA(algorithm))
    if _p1363(args):
        r, s = utils.decode_dss_signature(signature)
        size = (key.curve.key_size + 7) // 8
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return encode(signature)


def verify(args: list[Any], budget: int) -> bool:
    """[hash or null, key DER, data, signature, padding, saltLength, dsaEncoding] -> valid?"""
    key = _stored(args, 1)
    public = key.public_key() if isinstance(key, PrivateKey) else key
    message = data(args, 2, "data", budget)
    signature = data(args, 3, "signature")
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
            return True
        algorithm = _hash(text(args, 0, "algorithm"))
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, _rsa_padding(args, algorithm), algorithm)
            return True
        if _p1363(args):
            size = (public.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            signature = utils.encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
        public.verify(signature, message, ec.ECDSA(algorithm))
        return True
    except (InvalidSignature, ValueError):
        return False


# ---- ciphers --------------------------------------------------------------------------------

_MODES = {"cbc", "gcm", "ctr", "ecb"}
_WRONG_LENGTH = "error:1C80006B:Provider routines::wrong final block length"


def cipher(args: list[Any], budget: int) -> dict[str, str]:
    """[name, key, iv, data, decrypt, aad, tag, tagLength, autoPadding] -> {out, tag}."""
    name = text(args, 0, "cipher").lower()
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "aes" or parts[1] not in ("128", "192", "256") or parts[2] not in _MODES:
        raise HostError("Invalid cipher name or unsupported cipher: " + name, "TypeError", "ERR_CRYPTO_UNKNOWN_CIPHER")
    key = data(args, 1, "key")
    if len(key) * 8 != int(parts[1]):
        raise HostError("Invalid key length", "RangeError", "ERR_CRYPTO_INVALID_KEYLEN")
    mode = parts[2]
    iv = data(args, 2, "iv") if mode != "ecb" else b""
    message = data(args, 3, "data", budget)
    decrypt = args[4] is True if len(args) > 4 else False
    if mode == "gcm":
        return _gcm(key, iv, message, decrypt, args)
    if mode in ("cbc", "ctr") and len(iv) != 16:
        raise HostError("Invalid initialization vector", "TypeError", "ERR_CRYPTO_INVALID_IV")
    auto_padding = args[8] is not False if len(args) > 8 else True
    chosen: modes.Mode = modes.CBC(iv) if mode == "cbc" else modes.CTR(iv) if mode == "ctr" else modes.ECB()
    engine: Any = Cipher(algorithms.AES(key), chosen)
    block = mode in ("cbc", "ecb")
    if not decrypt:
        if block and auto_padding:
            padder = padding.PKCS7(128).padder()
            message = padder.update(message) + padder.finalize()
        elif block and len(message) % 16:
            raise HostError(_WRONG_LENGTH, "Error", "ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH")
        encryptor = engine.encryptor()
        return {"out": encode(encryptor.update(message) + encryptor.finalize()), "tag": ""}
    if block and len(message) % 16:
        raise HostError(_WRONG_LENGTH, "Error", "ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH")
    decryptor = engine.decryptor()
    out = decryptor.update(message) + decryptor.finalize()
    if block and auto_padding:
        unpadder = padding.PKCS7(128).unpadder()
        try:
            out = unpadder.update(out) + unpadder.finalize()
        except ValueError as exc:
            raise HostError("error:1C800064:Provider routines::bad decrypt", "Error", "ERR_OSSL_BAD_DECRYPT") from exc
    return {"out": encode(out), "tag": ""}


def _gcm(key: bytes, iv: bytes, message: bytes, decrypt: bool, args: list[Any]) -> dict[str, str]:
    if not 1 <= len(iv) <= 1024:
        raise HostError("Invalid initialization vector", "TypeError", "ERR_CRYPTO_INVALID_IV")
    aad = data(args, 5, "aad") if len(args) > 5 and isinstance(args[5], str) else None
    tag_length = args[7] if len(args) > 7 and args[7] in (4, 8, 12, 13, 14, 15, 16) else 16
    if not decrypt:
        encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
        if aad:
            encryptor.authenticate_additional_data(aad)
        out = encryptor.update(message) + encryptor.finalize()
        return {"out": encode(out), "tag": encode(encryptor.tag[:tag_length])}
    tag = data(args, 6, "authTag") if len(args) > 6 and isinstance(args[6], str) else b""
    if not 4 <= len(tag) <= 16:
        raise HostError("Unsupported state or unable to authenticate data", "Error")
    try:
        decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=4)).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        out = decryptor.update(message) + decryptor.finalize()
    except (InvalidTag, ValueError) as exc:
        raise HostError("Unsupported state or unable to authenticate data", "Error") from exc
    return {"out": encode(out), "tag": ""}


OPS: dict[str, Op] = {
    "keyImport": key_import,
    "keyExport": key_export,
    "sign": sign,
    "verify": verify,
    "cipher": cipher,
}
