"""The Python answer to each request ops.js answers in Node, for golden and live comparison."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from token_session import MemoryStore, TokenSession
from token_session.compat import Cookie, dumps, encode_cookie_value, sign, unsign
from token_session.compat.cookie import js_date


def untag(value: Any) -> Any:
    """The Python value a tagged value stands for (ints stay int, dates become datetimes,
    or JsDates past what a datetime holds)."""
    if isinstance(value, list):
        return [untag(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "n" in value:
        text = value["n"]
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if "d" in value:
        return js_date(value["d"])
    return {key: untag(item) for key, item in value["o"]}


_ATTRIBUTES = {"originalMaxAge": "original_max_age", "expires": "expires", "maxAge": "max_age"}


def _cookie(request: dict[str, Any]) -> str:
    now = request["now"]
    cookie = Cookie.from_options(untag(request.get("options")), clock=lambda: now)
    for name, value in request.get("assign", []):
        setattr(cookie, _ATTRIBUTES[name], untag(value))
    if request.get("touch"):
        cookie.touch()
    return dumps(cookie.to_json())


def _token_session(request: dict[str, Any]) -> dict[str, Any]:
    now, sid = request["now"], request["sid"]
    store = MemoryStore(expires=1800, checkperiod=60, clock=lambda: now)
    tokens = TokenSession(store, genid=lambda: sid, clock=lambda: now)
    data = untag(request["data"])
    if request["call"] == "new":
        tokens.new(data)
    else:
        tokens.set(sid, data)
    stored = store.raw(sid)
    assert stored is not None and stored[1] is not None
    return {"json": stored[0], "ttlMs": stored[1] - now}


ANSWERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "stringify": lambda r: dumps(untag(r["value"])),
    "cookie": _cookie,
    "sign": lambda r: sign(r["value"], r["secret"]),
    "unsign": lambda r: unsign(r["value"], r["secret"]) or False,
    "setCookie": lambda r: f"{r['name']}={encode_cookie_value(r['sid'], r['secret'])}",
    "tokenSession": _token_session,
}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "out": ANSWERS[request["op"]](request)}
