"""The WSGI and ASGI middleware against express-session 1.19.0 itself, case by case: the same
options, stored sessions, request and handler actions must give the same store calls (with
the same session JSON) and the same Set-Cookie headers, byte for byte."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from token_session.compat import dumps, encode_cookie_value, js_iso, loads
from token_session.compat.cookie import from_ms
from token_session.stores import AsyncMemoryStore, MemoryStore
from token_session.web import ExpressSession
from token_session.web.asgi import SessionMiddleware as AsgiSessionMiddleware
from token_session.web.wsgi import SessionMiddleware as WsgiSessionMiddleware

from .node import ensure_node_project
from .web_apps import snake_options

pytestmark = pytest.mark.node

NOW = 1_795_000_000_000
SECRET = "keyboard cat"


def _iso(ms: int) -> str:
    return js_iso(from_ms(ms))


STORED = {
    "live": {
        "cookie": {
            "originalMaxAge": 60000,
            "expires": _iso(NOW + 30000),
            "httpOnly": True,
            "path": "/",
        },
        "user": "ada",
    },
    # a browser-session cookie: no maxAge, no expires
    "browser": {"cookie": {"originalMaxAge": None, "httpOnly": True, "path": "/"}, "user": "ada"},
    # keys `new Session()` never copies in: Node drops them on load
    "reserved": {
        "cookie": {"originalMaxAge": 60000, "expires": _iso(NOW + 30000), "path": "/"},
        "id": "x",
        "save": 1,
        "user": "ada",
    },
    # what token-session 1.0.0 stores
    "token": {"user": "ada", "cookie": {"maxAge": 0}},
    # integer-like keys come first in JS, and stay so
    "numeric": {
        "cookie": {"originalMaxAge": 60000, "expires": _iso(NOW + 30000), "path": "/"},
        "b": 1,
        "10": "ten",
        "2": "two",
    },
}


def _signed(sid: str, secret: str = SECRET) -> str:
    return "connect.sid=" + encode_cookie_value(sid, secret)


# (stored session or None, cookie header or None, actions)
SCENARIOS: dict[str, tuple[str | None, str | None, list[list[Any]]]] = {
    "new, untouched": (None, None, []),
    "new, written": (None, None, [["set", "user", "ada"]]),
    "new, regenerated": (None, None, [["regenerate"], ["set", "user", "ada"]]),
    "loaded, untouched": ("live", _signed("live"), []),
    "loaded, same value": ("live", _signed("live"), [["set", "user", "ada"]]),
    "loaded, changed": ("live", _signed("live"), [["set", "cart", [1, {"a": None}]]]),
    "loaded, key deleted": ("live", _signed("live"), [["delete", "user"]]),
    "loaded, regenerated": ("live", _signed("live"), [["regenerate"], ["set", "user", "bo"]]),
    "loaded, destroyed": ("live", _signed("live"), [["destroy"]]),
    "loaded, maxAge changed": ("live", _signed("live"), [["maxAge", 5000]]),
    "gone, untouched": (None, _signed("gone"), []),
    "gone, written": (None, _signed("gone"), [["set", "user", "ada"]]),
    "forged": ("live", _signed("live", "other secret"), [["set", "user", "eve"]]),
    "unsigned": ("live", "connect.sid=live", []),
    "browser cookie, untouched": ("browser", _signed("browser"), []),
    "browser cookie, changed": ("browser", _signed("browser"), [["set", "cart", []]]),
    "reserved keys": ("reserved", _signed("reserved"), []),
    "reserved keys, changed": ("reserved", _signed("reserved"), [["set", "cart", 1]]),
    "token-session record": ("token", _signed("token"), []),
    "token-session record, changed": ("token", _signed("token"), [["set", "cart", 1]]),
    "numeric keys, changed": ("numeric", _signed("numeric"), [["set", "1", 1]]),
}

CONFIGS = [
    {"resave": resave, "saveUninitialized": save_uninitialized, "rolling": rolling, **cookie}
    for resave, save_uninitialized, rolling, cookie in itertools.product(
        [True, False], [True, False], [True, False], [{}, {"cookie": {"maxAge": 60000}}]
    )
]

BASE = {"resave": False, "saveUninitialized": False}
WRITE = [["set", "user", "ada"]]
XFP_HTTPS = {"X-Forwarded-Proto": "https"}
# (options, request, stored, actions): cookie attributes, proxies, names, paths, secrets
ATTRIBUTE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str | None, list[Any]]] = {
    "secure over http": ({"cookie": {"secure": True}}, {}, None, WRITE),
    "secure, proxy, https": (
        {"proxy": True, "cookie": {"secure": True}},
        {"headers": XFP_HTTPS},
        None,
        WRITE,
    ),
    "secure, proxy, first proto http": (
        {"proxy": True, "cookie": {"secure": True}},
        {"headers": {"X-Forwarded-Proto": " HTTP , https"}},
        None,
        WRITE,
    ),
    "secure, proxy false": (
        {"proxy": False, "cookie": {"secure": True}},
        {"headers": XFP_HTTPS},
        None,
        WRITE,
    ),
    "secure, proxy unset": ({"cookie": {"secure": True}}, {"headers": XFP_HTTPS}, None, WRITE),
    "auto, proxy, https": (
        {"proxy": True, "cookie": {"secure": "auto", "sameSite": "auto", "maxAge": 1000}},
        {"headers": {"X-Forwarded-Proto": "HTTPS,http"}},
        None,
        WRITE,
    ),
    "auto over http": (
        {"proxy": True, "cookie": {"secure": "auto", "sameSite": "auto"}},
        {},
        None,
        WRITE,
    ),
    "every attribute": (
        {
            "cookie": {
                "domain": "example.com",
                "path": "/app",
                "partitioned": True,
                "priority": "LOW",
                "httpOnly": False,
                "sameSite": "strict",
                "maxAge": 1234.9,
            }
        },
        {"path": "/app/page"},
        None,
        WRITE,
    ),
    "sameSite true, priority medium": (
        {"cookie": {"sameSite": True, "priority": "medium"}},
        {},
        None,
        WRITE,
    ),
    "path mismatch": ({"cookie": {"path": "/app"}}, {"path": "/other"}, None, WRITE),
    "absolute expires": ({"cookie": {"expires": NOW + 3_600_000}}, {}, None, WRITE),
    "custom name": (
        {"name": "app.sid"},
        {"headers": {"Cookie": "connect.sid=x; " + _signed("live").replace("connect", "app")}},
        "live",
        [["set", "cart", 2]],
    ),
    "old secret verifies, new one signs": (
        {"secret": ["new secret", SECRET], "rolling": True},
        {"headers": {"Cookie": _signed("live")}},
        "live",
        [],
    ),
    "quoted value among others": (
        {"rolling": True},
        {"headers": {"Cookie": 'a=1;  connect.sid="' + _signed("live")[12:] + '" ; b'}},
        "live",
        [],
    ),
    "first of two cookies wins": (
        {"rolling": True},
        {"headers": {"Cookie": "connect.sid=s%3Ax.y; " + _signed("live")}},
        "live",
        [],
    ),
}


def _cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for index, config in enumerate(CONFIGS):
        for scenario, (stored, cookie, actions) in SCENARIOS.items():
            headers = {"Cookie": cookie} if cookie else {}
            yield (
                f"{scenario} [{index}]",
                {
                    "now": NOW,
                    "options": {"secret": SECRET, **config},
                    "stored": {stored: dumps(STORED[stored])} if stored else {},
                    "request": {"path": "/", "headers": headers},
                    "actions": actions,
                },
            )
    for name, (options, request, stored, actions) in ATTRIBUTE_CASES.items():
        yield (
            name,
            {
                "now": NOW,
                "options": {"secret": SECRET, **BASE, **options},
                "stored": {stored: dumps(STORED[stored])} if stored else {},
                "request": {"path": "/", **request},
                "actions": actions,
            },
        )


CASES = dict(_cases())


@pytest.fixture(scope="module")
def express_answers() -> dict[str, dict[str, Any]]:
    """What express-session 1.19.0 did for every case (one node run for them all)."""
    result = subprocess.run(
        ["node", "express-session-cases.js"],
        cwd=ensure_node_project(),
        input=json.dumps(list(CASES.values())),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(zip(CASES, json.loads(result.stdout), strict=True))


def python_options(case: dict[str, Any]) -> dict[str, Any]:
    """The case's express-session options as SessionOptions keywords."""
    options = snake_options(case["options"])
    cookie = options.pop("cookie", {})
    if "expires" in cookie:
        cookie["expires"] = datetime.fromtimestamp(cookie["expires"] / 1000, timezone.utc)
    counter = itertools.count(1)
    return {
        **options,
        "cookie": cookie,
        "genid": lambda: f"gen-{next(counter)}",
        "clock": lambda: case["now"],
    }


class Recording:
    """A real store, with each call written down as express-session-cases.js does."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[list[Any]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)

        def call(sid: str, *session: Any) -> Any:
            self.calls.append([name, sid, *(dumps(value) for value in session)])
            return method(sid, *session)

        return call


def act(session: ExpressSession | None, actions: list[list[Any]]) -> None:
    """What the Express handler does, on the Python session."""
    for action, *args in actions:
        if session is None or session.destroyed:
            return
        if action == "set":
            session[args[0]] = args[1]
        elif action == "delete":
            del session[args[0]]
        elif action == "maxAge":
            session.cookie.max_age = args[0]
        else:
            getattr(session, action)()


def _preloaded(store: MemoryStore, case: dict[str, Any]) -> MemoryStore:
    for sid, text in case["stored"].items():
        store.set(sid, loads(text))
    return store


def run_wsgi(case: dict[str, Any]) -> dict[str, Any]:
    store = Recording(_preloaded(MemoryStore(clock=lambda: NOW), case))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        act(environ.get("token_session"), case["actions"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = WsgiSessionMiddleware(app, store=store, **python_options(case))  # type: ignore[arg-type]
    client = Client(middleware, use_cookies=False)
    request = case["request"]
    response = client.get(request["path"], headers=request.get("headers", {}))
    return {"calls": store.calls, "setCookie": response.headers.getlist("Set-Cookie")}


def run_asgi(case: dict[str, Any]) -> dict[str, Any]:
    memory = AsyncMemoryStore(clock=lambda: NOW)
    _preloaded(memory.sync, case)
    store = Recording(memory)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        act(scope.get("session"), case["actions"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = AsgiSessionMiddleware(app, store=store, **python_options(case))  # type: ignore[arg-type]

    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            request = case["request"]
            return await http.get(request["path"], headers=request.get("headers", {}))

    response = asyncio.run(request())
    return {"calls": store.calls, "setCookie": response.headers.get_list("set-cookie")}


@pytest.mark.parametrize("name", CASES)
def test_wsgi_does_what_express_session_does(
    name: str, express_answers: dict[str, dict[str, Any]]
) -> None:
    expected = express_answers[name]
    assert expected["body"] == "ok"
    assert run_wsgi(CASES[name]) == {k: expected[k] for k in ("calls", "setCookie")}


@pytest.mark.parametrize("name", CASES)
def test_asgi_does_what_express_session_does(
    name: str, express_answers: dict[str, dict[str, Any]]
) -> None:
    expected = express_answers[name]
    assert run_asgi(CASES[name]) == {k: expected[k] for k in ("calls", "setCookie")}
