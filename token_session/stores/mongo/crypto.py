"""The primitives connect-mongo's encrypted sessions are made of, and its WebCrypto adapter.
No I/O; ``cryptography``'s primitives only.

:class:`WebCryptoAdapter` is connect-mongo 6.0.0's ``createWebCryptoAdapter``: base64 (or
base64url, hex) of IV || ciphertext (|| tag), AES-GCM or AES-CBC under PBKDF2-SHA256(secret,
salt, 310,000 iterations by default), the key derived once per adapter. kruptein's records
(the ``crypto`` option) are in :mod:`.kruptein`, how the store hands them a session in
:mod:`.sealing`. A record that does not decrypt raises :class:`DecryptError` saying why.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ...errors import InvalidArgumentError

__all__ = [
    "DecryptError",
    "DerivationNeeded",
    "WebCryptoAdapter",
    "der_octets",
    "der_read_octets",
    "no_derivation",
]


class DecryptError(ValueError):
    """A stored session that does not decrypt; ``str()`` says why."""


class DerivationNeeded(BaseException):
    """Raised by :func:`pbkdf2` under :func:`no_derivation`: the caller runs again where a key
    derivation (tens of milliseconds) blocks nothing. A BaseException, so that no ``except
    Exception`` on the way (an adapter's, the sealer's) takes it for a failure."""


_may_derive: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "token_session_mongo_may_derive", default=True
)


@contextlib.contextmanager
def no_derivation() -> Iterator[None]:
    """Inside, :func:`pbkdf2` raises :class:`DerivationNeeded` instead of deriving (on an
    event loop's thread)."""
    token = _may_derive.set(False)
    try:
        yield
    finally:
        _may_derive.reset(token)


# -- DER: a SEQUENCE of OCTET STRINGs, definite minimal lengths, nothing after --


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_octets(items: list[bytes]) -> bytes:
    body = b"".join(b"\x04" + _der_length(len(item)) + item for item in items)
    return b"\x30" + _der_length(len(body)) + body


def _der_read(data: bytes, at: int, tag: int) -> tuple[bytes, int]:
    if at + 2 > len(data) or data[at] != tag:
        raise ValueError("unexpected tag")
    first, at = data[at + 1], at + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or at + count > len(data) or data[at] == 0:
            raise ValueError("bad length")
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
        if length < 0x80:
            raise ValueError("length not minimal")
    if at + length > len(data):
        raise ValueError("truncated")
    return data[at : at + length], at + length


def der_read_octets(data: bytes) -> list[bytes]:
    body, end = _der_read(data, 0, 0x30)
    if end != len(data):
        raise ValueError("bytes after the sequence")
    items, at = [], 0
    while at < len(body):
        item, at = _der_read(body, at, 0x04)
        items.append(item)
    return items


# -- text encodings --


def _b64decode(text: str) -> bytes:
    """Node's base64 decoding of a canonical text: either alphabet, padding optional."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


_ENCODERS: dict[str, tuple[Callable[[bytes], str], Callable[[str], bytes]]] = {
    "base64": (lambda b: base64.b64encode(b).decode("ascii"), _b64decode),
    "base64url": (lambda b: base64.urlsafe_b64encode(b).decode("ascii").rstrip("="), _b64decode),
    "hex": (lambda b: b.hex(), bytes.fromhex),
}


def codec(
    name: str, allowed: tuple[str, ...]
) -> tuple[Callable[[bytes], str], Callable[[str], bytes]]:
    if name not in allowed:
        raise InvalidArgumentError(f"encoding must be one of {', '.join(allowed)}, not {name!r}")
    return _ENCODERS[name]


def node_utf8(data: bytes) -> str:
    """Buffer#toString / TextDecoder: invalid UTF-8 becomes U+FFFD, as Node does."""
    return data.decode("utf-8", "replace")


def node_utf8_bytes(text: str) -> bytes:
    """TextEncoder / Buffer.from: a lone surrogate becomes U+FFFD, as Node encodes it."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def secret_bytes(secret: object, what: str) -> bytes:
    if isinstance(secret, str) and secret:
        return secret.encode("utf-8")
    if isinstance(secret, (bytes, bytearray, memoryview)) and len(secret):
        return bytes(secret)
    raise InvalidArgumentError(f"{what} needs a non-empty secret (str or bytes)")


def pbkdf2(secret: bytes, salt: bytes, iterations: int, hashing: str, length: int) -> bytes:
    if not _may_derive.get():
        raise DerivationNeeded
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    algorithm: hashes.HashAlgorithm = {
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }[hashing]
    kdf = PBKDF2HMAC(algorithm, length, salt, iterations)
    return kdf.derive(secret)


@dataclass(eq=False)
class WebCryptoAdapter:
    """connect-mongo 6.0.0's ``createWebCryptoAdapter``."""

    secret: str | bytes = field(repr=False)
    iv_length: int | None = None
    encoding: str = "base64"
    algorithm: str = "AES-GCM"
    salt: str | bytes | None = None
    iterations: int = 310_000
    _key: bytes | None = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._secret = secret_bytes(self.secret, "create_webcrypto_adapter")
        if self.algorithm not in ("AES-GCM", "AES-CBC"):
            raise InvalidArgumentError(
                f"algorithm must be AES-GCM or AES-CBC, not {self.algorithm!r}"
            )
        self._encode, self._decode = codec(self.encoding, ("base64", "base64url", "hex"))
        gcm = self.algorithm == "AES-GCM"
        self._iv = self.iv_length if self.iv_length is not None else (12 if gcm else 16)
        if (
            isinstance(self._iv, bool)
            or not isinstance(self._iv, int)
            or not (8 <= self._iv <= 128 if gcm else self._iv == 16)
        ):
            raise InvalidArgumentError(
                f"iv_length {self.iv_length!r} does not suit {self.algorithm}"
            )
        salt = "connect-mongo:webcrypto-default-salt" if self.salt is None else self.salt
        self._salt = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
        if (
            isinstance(self.iterations, bool)
            or not isinstance(self.iterations, int)
            or self.iterations < 1
        ):
            raise InvalidArgumentError(
                f"iterations must be a positive int, not {self.iterations!r}"
            )

    def key(self) -> bytes:
        """Derived once, on first use (Node derives it when the adapter is made)."""
        with self._lock:
            if self._key is None:
                self._key = pbkdf2(self._secret, self._salt, self.iterations, "sha256", 32)
            return self._key

    def encrypt(self, plaintext: str) -> str:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        iv, data = os.urandom(self._iv), node_utf8_bytes(plaintext)
        if self.algorithm == "AES-GCM":
            return self._encode(iv + AESGCM(self.key()).encrypt(iv, data, None))
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self.key()), modes.CBC(iv)).encryptor()
        return self._encode(iv + encryptor.update(padded) + encryptor.finalize())

    def decrypt(self, ciphertext: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            combined = self._decode(ciphertext)
        except (ValueError, binascii.Error):
            raise DecryptError(f"not {self.encoding} text: not a WebCrypto record") from None
        iv, data = combined[: self._iv], combined[self._iv :]
        gcm = self.algorithm == "AES-GCM"
        if len(data) < 16 or (not gcm and len(data) % 16):
            raise DecryptError(
                f"too short or misaligned for {self.algorithm}: {self._kind(combined)}"
            )
        if gcm:
            try:
                plaintext = AESGCM(self.key()).decrypt(iv, data, None)
            except InvalidTag:
                raise DecryptError(
                    "its AES-GCM tag does not match: a wrong secret, or the record was "
                    f"tampered with{self._hint(combined)}"
                ) from None
        else:
            decryptor = Cipher(algorithms.AES(self.key()), modes.CBC(iv)).decryptor()
            unpadder = padding.PKCS7(128).unpadder()
            try:
                padded = decryptor.update(data) + decryptor.finalize()
                plaintext = unpadder.update(padded) + unpadder.finalize()
            except ValueError:
                raise DecryptError(
                    "its AES-CBC padding is wrong: a wrong secret, or the record was tampered "
                    f"with (AES-CBC cannot tell which){self._hint(combined)}"
                ) from None
            try:  # a wrong key passes the padding check one time in 256, with garbage;
                # what TextEncoder wrote is always valid UTF-8
                plaintext.decode("utf-8")
            except UnicodeDecodeError:
                raise DecryptError(
                    "its AES-CBC plaintext is not UTF-8: a wrong secret, or the record was "
                    f"tampered with (AES-CBC cannot tell which){self._hint(combined)}"
                ) from None
        text = node_utf8(plaintext)
        return text[1:] if text.startswith("\ufeff") else text  # TextDecoder drops a BOM

    def _kind(self, combined: bytes) -> str:
        return "a kruptein record (the crypto option)" if _is_kruptein(combined) else "corrupt"

    @staticmethod
    def _hint(combined: bytes) -> str:
        return (
            " (it reads as a kruptein record: the crypto option)" if _is_kruptein(combined) else ""
        )


def _is_kruptein(data: bytes) -> bool:
    try:
        return len(der_read_octets(data)) == 6
    except ValueError:
        return False
