"""Node behaviour reproduced exactly, with no I/O: JSON text, cookies, ids and signatures."""

from .cookie import Cookie, expires_ms, now_ms, parse_js_date
from .jsdate import JsDate, js_iso_ms
from .jsjson import dumps, js_iso, js_number, js_truthy, loads
from .sid import generate_sid
from .signature import decode_cookie_value, encode_cookie_value, sign, unsign

__all__ = [
    "Cookie",
    "JsDate",
    "decode_cookie_value",
    "dumps",
    "encode_cookie_value",
    "expires_ms",
    "generate_sid",
    "js_iso",
    "js_iso_ms",
    "js_number",
    "js_truthy",
    "loads",
    "now_ms",
    "parse_js_date",
    "sign",
    "unsign",
]
