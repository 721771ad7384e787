"""The ``Cookie`` request header and ``Set-Cookie`` values as the npm ``cookie`` 0.7.2 reads
and writes them (``parse`` / ``serialize``), the version express-session 1.19.0 uses."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from ..compat.jsdate import JsDate
from ..compat.jsjson import js_number, js_truthy
from ..errors import InvalidArgumentError

__all__ = ["decode_uri_component", "encode_uri_component", "parse_cookies", "serialize"]

_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE = re.compile(r'^("?)[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*\1$')
_DOMAIN = re.compile(
    r"^([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
    re.IGNORECASE,
)
_PATH = re.compile(r"^[\x20-\x3A\x3D-\x7E]*$")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_BLANK = " \t"
# encodeURIComponent leaves A-Z a-z 0-9 and these unescaped
_URI_COMPONENT_SAFE = "-_.!~*'()"


def encode_uri_component(text: str) -> str:
    """JS ``encodeURIComponent`` (UTF-8 percent-encoding); lone surrogates are refused."""
    try:
        return quote(text, safe=_URI_COMPONENT_SAFE, encoding="utf-8", errors="strict")
    except UnicodeEncodeError:
        raise InvalidArgumentError("URI malformed") from None


def decode_uri_component(text: str) -> str:
    """JS ``decodeURIComponent``: ValueError where JS throws a URIError (a ``%`` not followed
    by two hex digits, or escapes that are not UTF-8)."""
    out: list[str] = []
    position = 0
    for run in _PERCENT_RUN.finditer(text):
        if "%" in text[position : run.start()]:
            raise ValueError("URI malformed")
        out.append(text[position : run.start()])
        out.append(bytes.fromhex(run.group().replace("%", "")).decode("utf-8"))
        position = run.end()
    if "%" in text[position:]:
        raise ValueError("URI malformed")
    out.append(text[position:])
    return "".join(out)


def _decode(value: str) -> str:
    # cookie 0.7.2: only values holding '%' are decoded, and a failed decode keeps the text
    if "%" not in value:
        return value
    try:
        return decode_uri_component(value)
    except ValueError:
        return value


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _BLANK:
        start += 1
    while end > start and text[end - 1] in _BLANK:
        end -= 1
    return start, end


def parse_cookies(header: str) -> dict[str, str]:
    """``cookie.parse(header)``: the first value of each name, decoded."""
    cookies: dict[str, str] = {}
    length = len(header)
    if length < 2:
        return cookies
    index = 0
    while index < length:
        eq = header.find("=", index)
        if eq == -1:
            break
        end = header.find(";", index)
        if end == -1:
            end = length
        elif eq > end:
            # backtrack on prior semicolon
            index = header.rfind(";", 0, eq) + 1
            continue
        key_start, key_end = _trimmed(header, index, eq)
        key = header[key_start:key_end]
        if key not in cookies:
            start, stop = _trimmed(header, eq + 1, end)
            if stop - start >= 2 and header[start] == '"' and header[stop - 1] == '"':
                start, stop = start + 1, stop - 1
            elif stop - start == 1 and header[start] == '"':
                # JS checks both ends of the same single quote and slices to nothing
                start = stop
            cookies[key] = _decode(header[start:stop])
        index = end + 1
    return cookies


_PRIORITIES = {"low": "Low", "medium": "Medium", "high": "High"}
_SAME_SITES: dict[object, str] = {"lax": "Lax", "strict": "Strict", "none": "None"}


def serialize(name: str, value: str, options: Mapping[str, Any] | None = None) -> str:
    """``cookie.serialize(name, value, options)`` with express-session's option names
    (``maxAge``, ``domain``, ``path``, ``expires``, ``httpOnly``, ``secure``, ``partitioned``,
    ``priority``, ``sameSite``); the value is encoded with ``encodeURIComponent``, and
    ``expires`` is an aware datetime or a :class:`~token_session.compat.JsDate`.

    Raises :class:`InvalidArgumentError` where the npm package throws its TypeError.
    """
    if not _NAME.match(name):
        raise InvalidArgumentError("argument name is invalid")
    encoded = encode_uri_component(value)
    if not _VALUE.match(encoded):
        raise InvalidArgumentError("argument val is invalid")
    text = f"{name}={encoded}"
    if options is None:
        return text
    max_age = options.get("maxAge")
    if max_age is not None:
        # Math.floor(true) is 1; a number beyond 2**53 is the double JS holds
        try:
            floored = float(math.floor(max_age))
        except (TypeError, ValueError, OverflowError):
            floored = math.nan
        if not math.isfinite(floored):
            raise InvalidArgumentError("option maxAge is invalid")
        text += "; Max-Age=" + js_number(floored)
    domain = options.get("domain")
    if js_truthy(domain):
        if not isinstance(domain, str) or not _DOMAIN.match(domain):
            raise InvalidArgumentError("option domain is invalid")
        text += "; Domain=" + domain
    path = options.get("path")
    if js_truthy(path):
        if not isinstance(path, str) or not _PATH.match(path):
            raise InvalidArgumentError("option path is invalid")
        text += "; Path=" + path
    expires = options.get("expires")
    if js_truthy(expires):
        text += "; Expires=" + _gmt(expires)
    if js_truthy(options.get("httpOnly")):
        text += "; HttpOnly"
    if js_truthy(options.get("secure")):
        text += "; Secure"
    if js_truthy(options.get("partitioned")):
        text += "; Partitioned"
    priority = options.get("priority")
    if js_truthy(priority):
        label = _PRIORITIES.get(priority.lower()) if isinstance(priority, str) else None
        if label is None:
            raise InvalidArgumentError("option priority is invalid")
        text += "; Priority=" + label
    same_site = options.get("sameSite")
    if js_truthy(same_site):
        key = same_site.lower() if isinstance(same_site, str) else same_site
        label = "Strict" if key is True else _SAME_SITES.get(key)
        if label is None:
            raise InvalidArgumentError("option sameSite is invalid")
        text += "; SameSite=" + label
    return text


def _gmt(value: object) -> str:
    """``Date#toUTCString`` ("Thu, 01 Jan 1970 00:00:00 GMT") of an aware datetime or a
    :class:`JsDate` (past year 9999: "Fri, 27 Sep 33658 01:46:40 GMT"); an Invalid Date is
    refused, as cookie 0.7.2 refuses one (``isNaN(expires.valueOf())``)."""
    if isinstance(value, JsDate):
        if not value.valid:
            raise InvalidArgumentError("option expires is invalid")
        return value.to_utc_string()
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidArgumentError("option expires is invalid")
    return format_datetime(value.astimezone(timezone.utc), usegmt=True)
