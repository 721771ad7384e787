"""The web core on its own: cookie 0.7.2's parse and serialize against the npm package, the
session mapping, options, token mode and the adapters' edges (on the real memory store)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from token_session import InvalidArgumentError, SessionDecodeError, TokenSession, TokenSessionError
from token_session.compat import encode_cookie_value
from token_session.flows import run
from token_session.stores import AsyncMemoryStore, MemoryStore
from token_session.web import ExpressSession, Request, SessionOptions, commit_flow, load_flow
from token_session.web.asgi import SessionMiddleware as AsgiSessionMiddleware
from token_session.web.asgi import session_of
from token_session.web.cookies import decode_uri_component, parse_cookies, serialize
from token_session.web.wsgi import SessionMiddleware as WsgiSessionMiddleware

from .node import NodeOracle, tag

SECRET = "keyboard cat"

# -- cookie 0.7.2 ---------------------------------------------------------------------------

header_text = st.text(alphabet=st.sampled_from(list('ab =;"%\t2F,s:é\x00')), max_size=40).filter(
    lambda text: "__proto__" not in text
)


@given(header=header_text)
@settings(max_examples=400)
def test_parse_cookies_matches_cookie_parse(node: NodeOracle, header: str) -> None:
    # compared as mappings: JS lists integer-like names first, and only lookups matter
    assert parse_cookies(header) == dict(node.out("cookieParse", header=header))


@pytest.mark.parametrize(
    "text", ["%", "%zz", "a%2", "%C3%A9", "%E9", "%F0%9F%98%80x%41", "100%25", "%%41"]
)
def test_decode_uri_component_fails_where_js_throws(node: NodeOracle, text: str) -> None:
    expected = node.out("cookieParse", header="k=" + text)[0][1]
    assert parse_cookies("k=" + text)["k"] == expected
    if expected == text and "%" in text:
        with pytest.raises(ValueError):
            decode_uri_component(text)


cookie_options = st.fixed_dictionaries(
    {},
    optional={
        "maxAge": st.one_of(
            st.integers(-(2**60), 2**60), st.floats(allow_nan=True, allow_infinity=True)
        ),
        "domain": st.sampled_from(["example.com", ".a.b", "bad_domain", "a..b", "", "x" * 64]),
        "path": st.sampled_from(["/", "/app", "/a;b", "", "/é"]),
        "expires": st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(9999, 1, 1),
            timezones=st.just(timezone.utc),
        ),
        "httpOnly": st.booleans(),
        "secure": st.booleans(),
        "partitioned": st.booleans(),
        "priority": st.sampled_from(["low", "Medium", "HIGH", "urgent", True, False]),
        "sameSite": st.sampled_from([True, False, "lax", "Strict", "NONE", "other"]),
    },
)


@given(
    name=st.sampled_from(["connect.sid", "app_sid", "bad name", "", "a=b", "ü"]),
    value=st.text(max_size=12),
    options=cookie_options,
)
@settings(max_examples=400)
def test_serialize_matches_cookie_serialize(
    node: NodeOracle, name: str, value: str, options: dict[str, Any]
) -> None:
    expected = node.out("cookieSerialize", name=name, value=value, options=tag(options))
    try:
        assert serialize(name, value, options) == expected.get("header", "<threw>")
    except InvalidArgumentError:
        assert "error" in expected


# -- the session mapping --------------------------------------------------------------------


def new_session(**options: Any) -> ExpressSession:
    settings_ = SessionOptions(secret=SECRET, **options)
    session = run(MemoryStore(), load_flow(settings_, Request("/", {})))
    assert session is not None
    return session


def test_the_session_keeps_cookie_where_node_keeps_it() -> None:
    session = new_session()
    session["b"] = 1
    session.update({"a": 2}, c=3)
    del session["b"]
    session["b"] = 4
    session.setdefault("d", 5)
    assert list(session.to_store()) == ["cookie", "a", "c", "b", "d"]
    assert session.pop("a") == 2 and session.pop("zz", None) is None
    session.clear()
    assert session == {} and list(session.to_store()) == ["cookie"]
    assert "cookie" not in session


@pytest.mark.parametrize("key", ["cookie", "id", "save", "__proto__", 3])
def test_keys_node_would_not_load_are_refused(key: Any) -> None:
    session = new_session()
    with pytest.raises(InvalidArgumentError):
        session[key] = 1
    assert session == {}


def test_a_destroyed_session_takes_no_writes_until_regenerated() -> None:
    session = new_session()
    session["user"] = "ada"
    first = session.id
    session.destroy()
    assert session == {} and session.destroyed
    with pytest.raises(TokenSessionError):
        session["user"] = "eve"
    session.regenerate()
    session["user"] = "bo"
    assert session.id != first and not session.destroyed
    assert session.take_destroyed() == [first]


@pytest.mark.parametrize("cookie", [5, None, {"maxAge": "soon"}])
def test_a_stored_record_without_a_cookie_object_fails_the_request(cookie: Any) -> None:
    store = MemoryStore()
    store.set("plain", {"user": "ada", "cookie": cookie})
    options = SessionOptions(secret=SECRET)
    request = Request("/", {"cookie": "connect.sid=" + encode_cookie_value("plain", SECRET)})
    with pytest.raises(SessionDecodeError):
        run(store, load_flow(options, request))


def test_data_json_cannot_carry_is_refused_at_commit() -> None:
    session = new_session()
    session["when"] = {1, 2}
    with pytest.raises(InvalidArgumentError):
        run(MemoryStore(), commit_flow(SessionOptions(secret=SECRET), session))


def test_data_nested_deeper_than_python_writes_is_refused_at_commit() -> None:
    session = new_session()
    deep: dict[str, Any] = {}
    for _ in range(2_000):
        deep = {"a": deep}
    session["deep"] = deep
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        run(MemoryStore(), commit_flow(SessionOptions(secret=SECRET), session))


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"secret": []},
        {"secret": ""},
        {"secret": [SECRET, 5]},
        {"secret": SECRET, "cookie": {"maxAge": 5}},
        {"secret": SECRET, "cookie": {"max_age": "soon"}},
        {"secret": SECRET, "name": "bad name"},
        {"secret": SECRET, "genid": "x"},
        {"secret": SECRET, "cookie": {"priority": "urgent"}},
        {"secret": SECRET, "cookie": {"domain": "a..b"}},
        {"secret": SECRET, "cookie": {"same_site": "sometimes"}},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        SessionOptions(**options)


def test_the_web_package_needs_no_framework() -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("flask", "starlette"))
    code = f"import sys; {blocked}; import token_session.web.asgi, token_session.web.wsgi"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    failed = subprocess.run(
        [sys.executable, "-c", f"{code}, token_session.web.flask"], capture_output=True
    )
    assert failed.returncode != 0  # the Flask adapter, and only it, imports Flask


# -- token mode -----------------------------------------------------------------------------


def token_app(store: MemoryStore, **options: Any) -> Client:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["token_session"]
        if environ["PATH_INFO"] == "/login":
            session.regenerate()
            session["user"] = "ada"
        start_response("200 OK", [])
        return [repr(dict(session)).encode()]

    middleware = WsgiSessionMiddleware(app, store=store, **options)  # type: ignore[arg-type]
    return Client(middleware)


def test_token_mode_reads_bearer_tokens_token_session_made() -> None:
    store = MemoryStore()
    created = TokenSession(store).new({"user": "ada"})
    client = token_app(store, token_header="Authorization", save_uninitialized=False)
    response = client.get("/", headers={"Authorization": "Bearer " + created.sid})
    assert response.text == "{'user': 'ada'}"
    assert "Set-Cookie" not in response.headers and "X-Session-Token" not in response.headers
    for header in ["Basic " + created.sid, created.sid, "Bearer", ""]:
        assert client.get("/", headers={"Authorization": header}).text == "{}"


def test_token_mode_hands_out_a_new_token_and_no_cookie() -> None:
    store = MemoryStore()
    client = token_app(store, token_header="X-Auth", token_response_header="X-New-Token")
    response = client.post("/login")
    token = response.headers["X-New-Token"]
    assert "Set-Cookie" not in response.headers
    assert TokenSession(store, auto_touch=False).get(token) == {
        "cookie": {"originalMaxAge": None, "expires": None, "httpOnly": True, "path": "/"},
        "user": "ada",
    }
    assert client.get("/", headers={"X-Auth": token}).text == "{'user': 'ada'}"


# -- adapters -------------------------------------------------------------------------------


def test_wsgi_outside_the_cookie_path_has_no_session() -> None:
    seen: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append("token_session" in environ)
        start_response("200 OK", [])
        return [b""]

    store = MemoryStore()
    middleware = WsgiSessionMiddleware(app, store=store, secret=SECRET, cookie={"path": "/app"})
    client = Client(middleware)
    assert "Set-Cookie" not in client.get("/other").headers
    assert "Set-Cookie" in client.get("/app/x").headers
    assert seen == [False, True] and store.length() == 1


def test_flask_outside_the_cookie_path_gets_flask_null_session() -> None:
    from flask import Flask, session

    from token_session.web.flask import ExpressSessionInterface, FlaskExpressSession

    app = Flask(__name__)
    store = MemoryStore()
    app.session_interface = ExpressSessionInterface(store, secret=SECRET, cookie={"path": "/app"})

    @app.get("/<path:where>")
    def visit(where: str) -> str:
        if not isinstance(session._get_current_object(), FlaskExpressSession):  # type: ignore[attr-defined]
            return "null session"
        session["where"] = where
        return (session.new and "new") or "old"

    client = app.test_client()
    assert client.get("/other").text == "null session"
    response = client.get("/app/x")
    assert response.text == "new" and response.headers["Set-Cookie"].startswith("connect.sid=s%3A")
    [stored] = store.all().values()
    assert stored["where"] == "app/x"


def test_asgi_passes_lifespan_and_gives_websockets_the_session_to_read() -> None:
    store = AsyncMemoryStore()
    asyncio.run(store.set("s1", {"cookie": {"originalMaxAge": None}, "user": "ada"}))
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["type"], dict(scope["session"]) if "session" in scope else None))

    middleware = AsgiSessionMiddleware(app, store=store, secret=SECRET)  # type: ignore[arg-type]
    cookie = ("connect.sid=" + encode_cookie_value("s1", SECRET)).encode()

    async def go() -> None:
        await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
        scope = {"type": "websocket", "path": "/", "headers": [(b"cookie", cookie)]}
        await middleware(scope, None, None)  # type: ignore[arg-type]

    asyncio.run(go())
    assert seen == [("lifespan", None), ("websocket", {"user": "ada"})]


def test_asgi_joins_split_cookie_headers_and_keeps_the_app_headers() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["session"]["n"] = scope["session"].get("n", 0) + 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": str(scope["session"]["n"]).encode()})

    store = AsyncMemoryStore()
    asyncio.run(store.set("s1", {"cookie": {"originalMaxAge": None}, "n": 41}))
    middleware = AsgiSessionMiddleware(app, store=store, secret=SECRET)  # type: ignore[arg-type]
    cookie = "connect.sid=" + encode_cookie_value("s1", SECRET)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=middleware)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            request = client.build_request("GET", "/")
            request.headers = httpx.Headers([("cookie", "a=1"), ("cookie", cookie)])
            return await client.send(request)

    response = asyncio.run(go())
    assert response.text == "42" and response.headers["x-app"] == "1"
    assert "set-cookie" not in response.headers  # browser-session cookie, not rolling


def test_a_request_that_has_a_session_is_left_alone() -> None:
    outer: dict[str, Any] = {"user": "outer"}
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["session"])

    store = AsyncMemoryStore()
    middleware = AsgiSessionMiddleware(app, store=store, secret=SECRET)  # type: ignore[arg-type]
    scope = {"type": "http", "path": "/", "headers": [], "session": outer}
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    assert seen == [outer] and asyncio.run(store.length()) == 0
    with pytest.raises(TokenSessionError, match="no express-session"):
        session_of(scope)


def test_store_calls_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="token_session.web"):
        session = new_session()
        session["user"] = "ada"
        run(MemoryStore(), commit_flow(SessionOptions(secret=SECRET), session))
    assert f"saving {session.id}" in caplog.messages


def test_secure_cookies_need_https_unless_the_proxy_says_so() -> None:
    options = SessionOptions(secret=SECRET, proxy=True, cookie={"secure": True})
    headers = {"x-forwarded-proto": "https"}
    for request, expect in [
        (Request("/", {}), False),
        (Request("/", {}, encrypted=True), True),
        (Request("/", headers), True),
    ]:
        session = run(MemoryStore(), load_flow(options, request))
        assert session is not None
        session["user"] = "ada"
        added = run(MemoryStore(), commit_flow(options, session))
        assert bool(added) is expect
        assert all("; Secure" in value for _, value in added)
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    with_expires = SessionOptions(secret=SECRET, cookie={"expires": later})
    assert with_expires.new_cookie(False).expires is not None
