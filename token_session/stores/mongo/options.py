"""The store's options, checked before any I/O, and ``mongodb://`` URLs split into what
pymongo gets and what the store takes. No I/O.

``timeout`` (seconds, 5 by default) bounds each store operation end to end: the blocking
store runs every call inside ``pymongo.timeout(timeout)``, pymongo's client-side operation
timeout, which covers server selection, connection checkout, sending and reading (and
pymongo's own retry); the asyncio store inside ``asyncio.timeout(timeout)`` (pymongo's on
Python 3.10), which cancels the call, and pymongo closes a connection whose call it
cancelled. It is the keyword, else ``?timeout=`` in the URL, else the URL's ``timeoutMS`` (a
pymongo option, also kept for the client), else 5. A stalled or unreachable server gives
``BackendUnavailableError`` when it runs out. pymongo retries a write only where the server
recognises the retry (a replica set's retryable writes, by transaction number), so a write
that reached the server is never applied twice over a newer one.
"""

from __future__ import annotations

import math
from dataclasses import fields as dataclass_fields
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from ...errors import InvalidArgumentError
from .format import MongoCodec

__all__ = [
    "CODEC_OPTIONS",
    "DEFAULT_TIMEOUT",
    "check_timeout",
    "client_options",
    "split_options",
    "split_url",
]

DEFAULT_TIMEOUT = 5.0

# the keywords a store passes to its codec; the rest go to pymongo's client (from_url)
CODEC_OPTIONS = frozenset(option.name for option in dataclass_fields(MongoCodec) if option.init)

# the options a URL's query may carry, by kind (callables and mappings only as keywords)
_NUMBERS = frozenset({"timeout", "ttl", "auto_remove_interval", "touch_after"})
_FLAGS = frozenset({"stringify", "timestamps"})
_TEXT = frozenset({"db_name", "collection_name", "auto_remove"})
# a secret in a URL ends up in logs and in the command's output: keywords (or -o) only
_SECRETS = frozenset({"crypto", "crypto_adapter"})
URL_OPTIONS = _NUMBERS | _FLAGS | _TEXT


def check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"timeout must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"timeout must be a finite number of seconds > 0, not {value}")
    return float(value)


def _number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number, not {value!r}")
    return int(number) if number.is_integer() and name != "timeout" else number


def _from_text(name: str, value: str) -> Any:
    if name in _FLAGS:
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgumentError(f"{name} must be true or false, not {value!r}")
        return value.lower() in ("true", "1")
    if name in _NUMBERS:
        return _number(name, value)
    return value


def split_url(url: str) -> tuple[str, dict[str, Any], float | None]:
    """The URL pymongo gets (the store's options taken out of its query, the rest kept byte
    for byte), the store options found there, and the seconds of its ``timeoutMS``."""
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    timeout_ms: float | None = None
    kept: list[str] = []
    for segment in parts.query.split("&") if parts.query else []:
        raw_name, _, raw_value = segment.partition("=")
        name, value = unquote_plus(raw_name), unquote_plus(raw_value)
        if name in URL_OPTIONS:
            options[name] = _from_text(name, value)
            continue
        if name in _SECRETS:
            raise InvalidArgumentError(
                f"{name} holds a secret: give it as a keyword (or the command's -o), not in "
                "the URL, which logs and output show"
            )
        if name.lower() == "timeoutms":  # pymongo's option names ignore case
            timeout_ms = _number("timeoutMS", value)
            if timeout_ms <= 0:
                raise InvalidArgumentError(
                    "timeoutMS must be > 0: the store bounds every operation (set timeout)"
                )
        kept.append(segment)
    client_url = urlunsplit(parts._replace(query="&".join(kept)))
    return client_url, options, None if timeout_ms is None else timeout_ms / 1000


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    codec = {k: v for k, v in options.items() if k in CODEC_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in CODEC_OPTIONS}
    return codec, rest


def client_options(options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """pymongo's client keywords for a store's own client: the ``timeout`` also bounds
    connecting and the monitor's heartbeats, and dates past year 9999 (JS Dates the Node
    driver writes) read back as ``DatetimeMS`` rather than failing the whole read."""
    options.setdefault("serverSelectionTimeoutMS", int(timeout * 1000))
    options.setdefault("connectTimeoutMS", int(timeout * 1000))
    options.setdefault("tz_aware", True)
    options.setdefault("datetime_conversion", "DATETIME_AUTO")
    return options
