"""Signed session ids as express-session 1.19.0 writes them in its cookie.

``sign``/``unsign`` follow cookie-signature 1.0.7: ``value + "." + base64(HMAC-SHA256)`` with
the padding stripped. The cookie holds ``"s:" + signed`` URL-encoded as cookie 0.7.2's
``serialize`` does it (``encodeURIComponent``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote, unquote

__all__ = ["decode_cookie_value", "encode_cookie_value", "sign", "unsign"]

Secret = str | bytes

# encodeURIComponent leaves A-Z a-z 0-9 and these unescaped
_URI_COMPONENT_SAFE = "-_.!~*'()"


def _key(secret: Secret) -> bytes:
    if isinstance(secret, str):
        return secret.encode("utf-8")
    if isinstance(secret, bytes):
        return secret
    raise TypeError("Secret key must be provided as str or bytes.")


def sign(value: str, secret: Secret) -> str:
    """``cookie-signature``'s ``sign(value, secret)``."""
    if not isinstance(value, str):
        raise TypeError("Cookie value must be provided as a string.")
    mac = hmac.new(_key(secret), value.encode("utf-8"), hashlib.sha256).digest()
    return value + "." + base64.b64encode(mac).decode("ascii").rstrip("=")


def _secret_list(secrets: Secret | Iterable[Secret]) -> list[Secret]:
    listed = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    if not listed:
        raise ValueError("at least one secret is required")
    return listed


def unsign(signed: str, secrets: Secret | Iterable[Secret]) -> str | None:
    """The value ``signed`` carries if any secret verifies it, else None (constant-time).

    With a list, the first secret is the one :func:`sign` uses now and the others are older
    ones still accepted, as express-session's ``secret`` array.
    """
    if not isinstance(signed, str):
        raise TypeError("Signed cookie string must be provided.")
    value = signed[: signed.rfind(".")] if "." in signed else signed[:-1]
    expected = signed.encode("utf-8")
    for secret in _secret_list(secrets):
        if hmac.compare_digest(sign(value, secret).encode("utf-8"), expected):
            return value
    return None


def encode_cookie_value(sid: str, secrets: Secret | Iterable[Secret]) -> str:
    """The ``connect.sid`` cookie value express-session sets for ``sid``."""
    signed = "s:" + sign(sid, _secret_list(secrets)[0])
    return quote(signed, safe=_URI_COMPONENT_SAFE)


def decode_cookie_value(raw: str, secrets: Secret | Iterable[Secret]) -> str | None:
    """The session id in a ``connect.sid`` cookie value, or None if unsigned or forged."""
    # cookie 0.7.2 decodes only values holding '%', and keeps the raw text if that fails
    text = raw
    if "%" in raw:
        with contextlib.suppress(UnicodeDecodeError):
            text = unquote(raw, errors="strict")
    if not text.startswith("s:"):
        return None
    return unsign(text[2:], secrets)
