"""How connect-mongo hands a session to its ``cryptoAdapter`` and back, and its ``crypto`` /
``cryptoAdapter`` options. No I/O.

connect-mongo 6.0.0 encrypts what it would have stored: the JSON text (``stringify``), else
``JSON.stringify`` of the document (``serializeForCrypto``), and parses what it decrypts as
``parseDecryptedPayload`` does. Its kruptein adapter ``JSON.stringify``-s that text again
(kruptein's ``set`` of a string), so the session JSON is encoded twice, as 4.6.0 stored it
too. One exception, on purpose: with ``crypto`` and ``stringify=False``, 4.6.0 handed
kruptein the session object (encoded once) and reads nothing else, while 6.0.0 reads both;
that form is written.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ...compat.jsjson import dumps, loads
from ...errors import InvalidArgumentError, SessionDecodeError, TokenSessionError
from .crypto import DecryptError, WebCryptoAdapter
from .kruptein import KrupteinAdapter

__all__ = [
    "CryptoAdapter",
    "Sealer",
    "create_kruptein_adapter",
    "create_webcrypto_adapter",
    "sealer_of",
]


class CryptoAdapter(Protocol):
    """connect-mongo 6.0.0's ``CryptoAdapter``, its methods called (not awaited) by both
    stores."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, ciphertext: str) -> str: ...


def create_webcrypto_adapter(
    secret: str | bytes,
    iv_length: int | None = None,
    encoding: str = "base64",
    algorithm: str = "AES-GCM",
    salt: str | bytes | None = None,
    iterations: int = 310_000,
) -> WebCryptoAdapter:
    """connect-mongo 6.0.0's ``createWebCryptoAdapter``, with its defaults."""
    return WebCryptoAdapter(secret, iv_length, encoding, algorithm, salt, iterations)


def create_kruptein_adapter(
    secret: str,
    *,
    algorithm: str = "aes-256-gcm",
    hashing: str = "sha512",
    encodeas: str = "base64",
    key_size: int = 32,
    iv_size: int = 16,
    at_size: int = 16,
    kruptein: str = "3.0.8",
) -> KrupteinAdapter:
    """connect-mongo 6.0.0's ``createKrupteinAdapter`` (its defaults: ``hashing`` sha512,
    ``iv_size`` 16, which kruptein 3.0-3.3 ignore for a 12-byte IV); ``kruptein`` is the
    version whose records to write (see :mod:`.kruptein`)."""
    if key_size != 32 or at_size != 16:
        raise InvalidArgumentError("crypto: only key_size 32 and at_size 16 (aes-256-gcm)")
    if isinstance(iv_size, bool) or not isinstance(iv_size, int) or not 12 <= iv_size <= 128:
        raise InvalidArgumentError(f"crypto iv_size must be an int from 12 to 128, not {iv_size!r}")
    return KrupteinAdapter(secret, hashing, encodeas, algorithm, iv_size, kruptein)


def _adapter_of(value: object) -> CryptoAdapter:
    """A user's adapter as is, or a mapping naming one (``{"adapter": "webcrypto", ...}``,
    as a config file or ``-o`` gives it)."""
    if isinstance(value, Mapping):
        options = dict(value)
        kind = options.pop("adapter", None)
        makers: dict[Any, Callable[..., CryptoAdapter]] = {
            "webcrypto": create_webcrypto_adapter,
            "kruptein": create_kruptein_adapter,
        }
        if kind not in makers:
            raise InvalidArgumentError(
                'crypto_adapter as a mapping needs "adapter": "webcrypto" or "kruptein"'
            )
        try:
            adapter: CryptoAdapter = makers[kind](**options)
        except TypeError as exc:
            raise InvalidArgumentError(f"crypto_adapter: {exc}") from None
        return adapter
    if callable(getattr(value, "encrypt", None)) and callable(getattr(value, "decrypt", None)):
        return value  # type: ignore[return-value]
    raise InvalidArgumentError(
        "crypto_adapter must have encrypt(text) and decrypt(text) methods, or be a mapping"
    )


def sealer_of(
    crypto: object, crypto_adapter: object, *, stringify: bool, custom: bool
) -> Sealer | None:
    """The store's encryption, from connect-mongo 6.0.0's options: ``crypto`` (kruptein;
    ``secret: False`` asks for none) or ``crypto_adapter``, never both."""
    if crypto is not None and crypto_adapter is not None:
        raise InvalidArgumentError(
            "give crypto or crypto_adapter, not both (connect-mongo 6.0.0 refuses both)"
        )
    if crypto_adapter is not None:
        return Sealer(_adapter_of(crypto_adapter), stringify=stringify, custom=custom)
    if crypto is None:
        return None
    if not isinstance(crypto, Mapping):
        raise InvalidArgumentError(
            f"crypto must be a mapping with a secret, not a {type(crypto).__name__}"
        )
    if crypto.get("secret", False) is False:
        return None
    try:
        adapter = create_kruptein_adapter(**crypto)
    except TypeError as exc:
        raise InvalidArgumentError(f"crypto: {exc}") from None
    once = not stringify and not custom  # 4.6.0's form; see the module's docstring
    return Sealer(adapter, stringify=stringify, custom=custom, once=once)


class Sealer:
    """Encrypts what the store would have stored, and decrypts it back."""

    def __init__(
        self, adapter: CryptoAdapter, *, stringify: bool, custom: bool, once: bool = False
    ) -> None:
        self.adapter = adapter
        self.stringify = stringify
        self.custom = custom
        self.once = once and isinstance(adapter, KrupteinAdapter)

    def seal(self, value: Any) -> str:
        """``serializeForCrypto`` then ``encrypt``: never the clear text."""
        text = value if isinstance(value, str) else dumps(value)
        if self.once and isinstance(self.adapter, KrupteinAdapter):
            return self.adapter.encrypt_json(text)
        try:
            sealed = self.adapter.encrypt(text)
        except TokenSessionError:
            raise
        except Exception as exc:
            raise TokenSessionError(f"crypto_adapter.encrypt failed: {exc!r}") from exc
        if not isinstance(sealed, str) or sealed == text:
            raise TokenSessionError(f"crypto_adapter.encrypt gave no encrypted text{_why(sealed)}")
        return sealed

    def open(self, sid: str, stored: str) -> Any:
        """``decrypt``, then ``parseDecryptedPayload``: the JSON text (``stringify``), else
        the value."""
        try:
            plaintext = self.adapter.decrypt(stored)
        except Exception as exc:
            if _clear_json(stored):
                raise SessionDecodeError(
                    sid, "clear JSON text, not encrypted, though the store is set to decrypt"
                ) from None
            if isinstance(exc, DecryptError):
                raise SessionDecodeError(
                    sid, f"encrypted session does not decrypt: {exc}"
                ) from None
            raise SessionDecodeError(sid, f"crypto_adapter.decrypt failed: {exc!r}") from exc
        if not isinstance(plaintext, str):
            raise SessionDecodeError(sid, f"crypto_adapter.decrypt gave no text{_why(plaintext)}")
        try:
            parsed = loads(plaintext)
        except ValueError:
            parsed = plaintext
        except RecursionError:
            raise SessionDecodeError(sid, "nested too deeply to read") from None
        if not self.stringify:
            if isinstance(parsed, str):
                try:
                    return loads(parsed)
                except ValueError:
                    return parsed
            return parsed
        if not self.custom:
            return parsed if isinstance(parsed, str) else dumps(parsed)
        return parsed


def _clear_json(stored: str) -> bool:
    try:
        return isinstance(loads(stored), dict)
    except (ValueError, RecursionError):
        return False


def _why(value: object) -> str:
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # never awaited, and not warned about
        return " but an awaitable: the stores call an adapter's methods, never await them"
    return ""
