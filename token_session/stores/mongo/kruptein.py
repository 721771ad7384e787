"""kruptein 3.x's records, as connect-mongo's ``crypto`` option stores them. No I/O.

A record is base64 of a DER SEQUENCE of six OCTET STRINGs (ct, hmac, iv, salt, at, aad):
AES-256-GCM under PBKDF2-HMAC(secret, a 128-byte random salt), an HMAC under the same key, and
a random AAD. The forms differ by version (each package's ``lib/kruptein.js``): 3.0.x stores
the ct, HMAC and AAD as base64 text, the HMAC over the ct text, 15,000 iterations; 3.1.1 adds
the salt and IV (decoded as UTF-8, U+FFFD for what is not) to the HMAC input; 3.1.3 to 3.3.x
take 20,000 iterations; 3.4 stores the bytes themselves, the HMAC over ct || salt || iv, and
the plaintext wrapped as ``{"type": "string", "value": ...}``. All are read; the version
given (3.0.8, the one connect-mongo 6.0.0 pins, by default) says which is written.

kruptein derives a key from a new random salt on every write. Here one salt serves a store's
writes (a new one every :data:`SALT_USES` writes, the IVs random as ever), and each key read
is kept by salt: only a record written elsewhere costs a derivation, once.
"""

from __future__ import annotations

import binascii
import hmac
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from ...compat.jsjson import dumps, loads
from ...errors import InvalidArgumentError
from .crypto import (
    DecryptError,
    codec,
    der_octets,
    der_read_octets,
    node_utf8,
    pbkdf2,
    secret_bytes,
)

__all__ = ["KRUPTEIN", "SALT_USES", "KrupteinAdapter"]

SALT_USES = 1 << 20  # writes under one salt (and key) before a new one is drawn
_KEYS_KEPT = 1024  # derived keys kept by salt for reads


def _hmac(key: bytes, data: bytes, hashing: str) -> bytes:
    return hmac.new(key, data, hashing).digest()


class _Variant(NamedTuple):
    name: str
    iterations: int
    raw: bool  # 3.4: ct and hmac stored as bytes, HMAC over ct || salt || iv
    material: bool  # 3.1: HMAC over the ct text + the salt and IV decoded as UTF-8
    wrapped: bool  # 3.4: plaintext {"type": "string", "value": ...}


# kruptein's record forms by version (read from each package's lib/kruptein.js)
KRUPTEIN = {
    "3.0": _Variant("kruptein 3.0.x", 15000, False, False, False),
    "3.1.1": _Variant("kruptein 3.1.1", 15000, False, True, False),
    "3.1.3": _Variant("kruptein 3.1.3-3.3.x", 20000, False, True, False),
    "3.4": _Variant("kruptein 3.4+", 20000, True, True, True),
}


def _variant_of(version: str) -> _Variant:
    try:
        parts = tuple(int(part) for part in version.split(".")[:3])
    except ValueError:
        raise InvalidArgumentError(
            f"kruptein must be a version such as 3.0.8, not {version!r}"
        ) from None
    if parts[:1] != (3,):
        raise InvalidArgumentError(f"kruptein {version}: only kruptein 3.x records are known")
    if parts < (3, 1):
        return KRUPTEIN["3.0"]
    if parts < (3, 1, 3):
        return KRUPTEIN["3.1.1"]
    return KRUPTEIN["3.1.3"] if parts < (3, 4) else KRUPTEIN["3.4"]


@dataclass(eq=False)
class KrupteinAdapter:
    """kruptein's ``set`` / ``get`` as connect-mongo 6.0.0's ``createKrupteinAdapter`` calls
    them (``crypto`` options: ``secret``, ``hashing``, ``encodeas``, ``algorithm``,
    ``iv_size`` (3.4 only, as in kruptein), and ``kruptein``: which version's form to write)."""

    secret: str = field(repr=False)
    hashing: str = "sha512"
    encodeas: str = "base64"
    algorithm: str = "aes-256-gcm"
    iv_size: int = 16
    kruptein: str = "3.0.8"
    _write: _Variant = field(init=False, repr=False)
    _keys: OrderedDict[tuple[int, bytes], bytes] = field(init=False, repr=False)
    _salt: tuple[bytes, bytes, int] | None = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._secret = secret_bytes(self.secret, "crypto")
        if self.hashing not in ("sha256", "sha384", "sha512"):
            raise InvalidArgumentError(
                f"crypto hashing must be sha256, sha384 or sha512, not {self.hashing!r}"
            )
        if self.algorithm != "aes-256-gcm":
            raise InvalidArgumentError(
                f"crypto algorithm {self.algorithm!r}: only aes-256-gcm is read and written"
            )
        self._encode, self._decode = codec(self.encodeas, ("base64", "hex"))
        self._write = _variant_of(str(self.kruptein))
        self._keys = OrderedDict()
        self._digest_size = hmac.new(b"", b"", self.hashing).digest_size
        self._digest_text = len(self._encode(bytes(self._digest_size)))

    def _key(self, iterations: int, salt: bytes) -> bytes:
        with self._lock:
            key = self._keys.get((iterations, salt))
            if key is not None:
                self._keys.move_to_end((iterations, salt))
                return key
        key = pbkdf2(self._secret, salt, iterations, self.hashing, 32)
        with self._lock:
            self._keys[(iterations, salt)] = key
            while len(self._keys) > _KEYS_KEPT:
                self._keys.popitem(last=False)
        return key

    def _write_key(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._salt is not None and self._salt[2] < SALT_USES:
                salt, key, uses = self._salt
                self._salt = (salt, key, uses + 1)
                return salt, key
        salt = os.urandom(128)
        key = self._key(self._write.iterations, salt)
        with self._lock:
            self._salt = (salt, key, 1)
        return salt, key

    def encrypt(self, plaintext: str) -> str:
        """kruptein ``set(secret, plaintext)`` of a string: ``JSON.stringify(plaintext)``."""
        if self._write.wrapped:
            return self._seal(dumps({"type": "string", "value": plaintext}))
        return self._seal(dumps(plaintext))

    def encrypt_json(self, text: str) -> str:
        """``set`` of a value whose ``JSON.stringify`` is ``text`` (connect-mongo 4.6.0's
        ``crypto`` with ``stringify: false`` hands kruptein the session object)."""
        return self._seal('{"type":"json","value":' + text + "}" if self._write.wrapped else text)

    def _seal(self, text: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        variant = self._write
        plaintext = text.encode("utf-8")
        salt, key = self._write_key()
        iv = os.urandom(self.iv_size if variant.raw else 12)
        aad = _hmac(os.urandom(128), plaintext, self.hashing)  # kruptein's AAD: random
        sealed = AESGCM(key).encrypt(iv, plaintext, aad)
        ct, tag = sealed[:-16], sealed[-16:]
        if variant.raw:
            mac = _hmac(key, ct + salt + iv, self.hashing)
            return self._encode(der_octets([ct, mac, iv, salt, tag, aad]))
        ct_text = self._encode(ct)
        material = ct_text.encode()
        if variant.material:
            material += (node_utf8(salt) + node_utf8(iv)).encode()
        mac_text = self._encode(_hmac(key, material, self.hashing))
        fields = [ct_text.encode(), mac_text.encode(), iv, salt, tag, self._encode(aad).encode()]
        return self._encode(der_octets(fields))

    def decrypt(self, ciphertext: str) -> str:
        """kruptein ``get``, as ``createKrupteinAdapter`` returns it: kruptein 3.0-3.3's
        plaintext as is (the JSON of what was set), 3.4's value unwrapped."""
        try:
            fields = der_read_octets(self._decode(ciphertext))
        except (ValueError, binascii.Error):
            raise DecryptError("not a kruptein record (no DER sequence in it)") from None
        if len(fields) != 6 or not fields[2] or not fields[3] or len(fields[4]) != 16:
            raise DecryptError(f"not a kruptein AES-GCM record ({len(fields)} fields)")
        ct_field, mac_field, iv, salt, tag, aad_field = fields
        if len(mac_field) not in (self._digest_size, self._digest_text):
            raise DecryptError(
                f"an unknown kruptein variant (a {len(mac_field)}-byte HMAC field; "
                f"{self.hashing} gives {self._digest_size} bytes, or {self._digest_text} as text)"
            )
        raw = len(mac_field) == self._digest_size
        try:
            ct = ct_field if raw else self._decode(ct_field.decode("ascii"))
            aad = aad_field if raw else self._decode(aad_field.decode("ascii"))
        except (ValueError, binascii.Error):
            raise DecryptError(
                "not a kruptein record (its ciphertext is not encoded text)"
            ) from None
        variant, key = self._verified(raw, ct, ct_field, mac_field, iv, salt)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plaintext = AESGCM(key).decrypt(iv, ct + tag, aad or None)
        except InvalidTag:
            raise DecryptError(
                f"tampered with: its HMAC matches ({variant.name}) but not its IV, tag or AAD"
            ) from None
        except ValueError:  # cryptography takes IVs of 8 to 128 bytes
            raise DecryptError(f"an IV of {len(iv)} bytes, not read here") from None
        text = node_utf8(plaintext)
        return _unwrap(text) if variant.wrapped else text

    def _verified(
        self, raw: bool, ct: bytes, ct_field: bytes, mac: bytes, iv: bytes, salt: bytes
    ) -> tuple[_Variant, bytes]:
        """The kruptein form whose HMAC the record's matches (the one written first)."""
        if raw:
            candidates = [KRUPTEIN["3.4"]]
        else:
            candidates = [v for v in KRUPTEIN.values() if not v.raw]
            candidates.sort(key=lambda v: v != self._write)
        for variant in candidates:
            key = self._key(variant.iterations, salt)
            if variant.raw:
                expected = _hmac(key, ct + salt + iv, self.hashing)
            else:
                material = ct_field
                if variant.material:
                    material += (node_utf8(salt) + node_utf8(iv)).encode()
                expected = self._encode(_hmac(key, material, self.hashing)).encode()
            if hmac.compare_digest(expected, mac):
                return variant, key
        raise DecryptError(
            "its HMAC does not match: a wrong secret, or the record was tampered with"
        )


def _unwrap(text: str) -> str:
    """kruptein 3.4's ``deserializePlaintext``, then ``createKrupteinAdapter``'s string."""
    try:
        value = loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and value.get("type") in ("string", "json") and "value" in value:
        value = value["value"]
    return value if isinstance(value, str) else dumps(value)
