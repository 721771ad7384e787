"""Django's session API and auth on express-session's sessions, in process: the session
object over the memory store, and Django's test clients (the WSGI and the ASGI handler) over
every backend, read back by the real Node store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import django
import pytest

from token_session.compat import encode_cookie_value
from token_session.flows import run
from token_session.stores import MemoryStore, Store
from token_session.stores.base import encode_session
from token_session.stores.records import record_io
from token_session.web import Request, commit_flow, load_flow

from .django_app.testing import setup_django
from .node import NodeStore, NodeStoreDriver
from .test_web_interop import BACKENDS, Backend

setup_django()

from django.test import AsyncClient, Client, override_settings  # noqa: E402

from token_session.web.django import DjangoExpressSession  # noqa: E402
from token_session.web.django.conf import config  # noqa: E402

SETTINGS: dict[str, Any] = {
    "secret": ["new secret", "old secret"],
    "resave": False,
    "save_uninitialized": False,
    "rolling": True,
    "cookie": {"max_age": 60_000, "same_site": "lax", "priority": "high"},
    "passport": {"field": "pk"},
}
SECRETS = SETTINGS["secret"]
DJANGO5 = django.VERSION >= (5, 0)


def cookie_header(sid: str, secret: str = SECRETS[0]) -> dict[str, str]:
    return {"cookie": "connect.sid=" + encode_cookie_value(sid, secret)}


# -- the session object, over the memory store ----------------------------------------------


@pytest.fixture
def memory() -> Iterator[MemoryStore]:
    store = MemoryStore()
    with override_settings(TOKEN_SESSION={**SETTINGS, "store": store}):
        yield store


def open_session(store: Store, sid: str | None = None) -> DjangoExpressSession:
    headers = cookie_header(sid) if sid else {}
    session = run(store, load_flow(config().options, Request("/", headers), DjangoExpressSession))
    assert isinstance(session, DjangoExpressSession)
    return session


def commit(store: Store, session: DjangoExpressSession) -> list[tuple[str, str]]:
    return run(store, commit_flow(config().options, session))


def stored_session(store: MemoryStore, **data: Any) -> str:
    session = open_session(store)
    session.update(data)
    commit(store, session)
    return session.id


def test_set_expiry_maps_onto_the_cookie(memory: MemoryStore) -> None:
    session = open_session(memory)
    assert session.get_expiry_age() == 60 and not session.get_expire_at_browser_close()
    session.set_expiry(0)  # a browser-session cookie: maxAge null, no Expires
    assert session.cookie.original_max_age is None and session.cookie.expires is None
    assert session.get_expire_at_browser_close()
    session.set_expiry(300)
    assert session.cookie.original_max_age == 300_000 and session.get_expiry_age() == 300
    session.set_expiry(timedelta(minutes=2))
    assert session.cookie.original_max_age == 120_000
    session.set_expiry(datetime.now(timezone.utc) + timedelta(hours=1))
    assert 3_590_000 < session.cookie.original_max_age <= 3_600_000
    assert abs(session.get_expiry_date() - (datetime.now(timezone.utc) + timedelta(hours=1))) < (
        timedelta(seconds=10)
    )
    session.set_expiry(None)  # the configured cookie.max_age
    assert session.cookie.original_max_age == 60_000
    session["user"] = "ada"
    session.set_expiry(0)
    header = dict(commit(memory, session))["Set-Cookie"]
    assert "Expires" not in header and "Max-Age" not in header
    stored = memory.get(session.id)
    assert stored is not None and stored["cookie"]["originalMaxAge"] is None
    assert "expires" not in stored["cookie"] or stored["cookie"]["expires"] is None


def test_set_expiry_keeps_the_lifetime_asked_for_when_the_clock_ticks(memory: MemoryStore) -> None:
    session = open_session(memory)
    ticks = iter(range(1_800_000_000_000, 1_800_000_001_000))
    session.cookie._clock = lambda: next(ticks)  # one millisecond on at every reading
    session.set_expiry(90)
    assert session.cookie.original_max_age == 90_000 and session.get_expiry_age() == 90
    session.set_expiry(timedelta(minutes=2))
    assert session.cookie.original_max_age == 120_000


def test_a_new_cookie_read_back_short_still_answers_the_configured_lifetime(
    memory: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter(range(1_800_000_000_000, 1_800_000_010_000))
    # one millisecond on at every reading: express-session's `new Cookie({maxAge: 60000})`
    # then reads originalMaxAge back as 59999, as Node does when its clock ticks
    monkeypatch.setattr(config().options, "clock", lambda: next(ticks))
    session = open_session(memory)
    assert session.cookie.original_max_age == 59_999
    assert session.get_expiry_age() == 60
    session.set_expiry(300)
    session.set_expiry(None)
    assert session.cookie.original_max_age == 60_000 and session.get_expiry_age() == 60


def test_cycle_key_keeps_the_data_and_flush_empties(memory: MemoryStore) -> None:
    sid = stored_session(memory, cart=["apple"])
    session = open_session(memory, sid)
    session.set_expiry(600)
    session.cycle_key()
    assert session.session_key != sid and dict(session) == {"cart": ["apple"]}
    commit(memory, session)
    assert memory.get(sid) is None
    moved = memory.get(session.id)
    assert moved is not None and moved["cart"] == ["apple"]
    # the lifetime went along; the commit's touch (resetMaxAge) reads it back through
    # express-session's maxAge getter, a millisecond short when the clock ticks in between
    assert moved["cookie"]["originalMaxAge"] in (599_999, 600_000)
    again = open_session(memory, session.id)
    again.flush()
    assert dict(again) == {} and again.session_key not in (None, session.id)
    commit(memory, again)
    assert memory.get(session.id) is None


def test_flags_and_test_cookie(memory: MemoryStore) -> None:
    session = open_session(memory)
    assert session.is_empty() and not session.modified and not session.accessed
    session.set_test_cookie()
    assert session.test_cookie_worked() and session.modified and session.accessed
    session.delete_test_cookie()
    assert not session.modified  # back to the loaded content: express-session's hash
    sid = stored_session(memory, cart=[])
    loaded = open_session(memory, sid)
    assert not loaded.is_empty() and loaded.session_key == sid
    loaded["cart"].append("pear")  # a nested change is a change: the hash says so
    assert loaded.modified
    commit(memory, loaded)
    assert (memory.get(sid) or {})["cart"] == ["pear"]
    unchanged = open_session(memory, sid)
    unchanged.modified = True  # forced: saved (set), not only touched
    assert unchanged.modified and not unchanged.is_saved()
    assert DjangoExpressSession.clear_expired() is None


@pytest.mark.skipif(not DJANGO5, reason="Django 5.0 added the async session methods")
async def test_async_session_methods(memory: MemoryStore) -> None:
    session = open_session(memory)
    await session.aset("cart", ["apple"])
    assert await session.aget("cart") == ["apple"] and await session.ahas_key("cart")
    assert await session.asetdefault("n", 1) == 1 and await session.apop("n") == 1
    await session.aupdate({"a": 1})
    assert list(await session.akeys()) == ["cart", "a"]
    assert list(await session.avalues()) == [["apple"], 1]
    await session.aset_expiry(0)
    assert await session.aget_expire_at_browser_close()
    await session.aset_expiry(90)
    assert await session.aget_expiry_age() == 90
    before = session.session_key
    await session.acycle_key()
    assert session.session_key != before and await session.aget("a") == 1
    await session.aflush()
    assert dict(await session.aitems()) == {}


def test_django_session_settings_fill_in_what_token_session_leaves_out() -> None:
    raw = {"store": "memory://", "secret": "s"}
    django_settings: dict[str, Any] = {
        "SESSION_COOKIE_NAME": "sid",
        "SESSION_COOKIE_AGE": 600,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_DOMAIN": None,  # Django's "no Domain": left out, not null
        "SESSION_COOKIE_SECURE": True,
        "SESSION_SAVE_EVERY_REQUEST": True,
    }
    with override_settings(TOKEN_SESSION=raw, **django_settings):
        options = config().options
        assert options.name == "sid" and options.rolling
        assert options.cookie == {"max_age": 600_000, "secure": True, "same_site": "strict"}
        cookie = options.new_cookie(True).to_json()
        assert "domain" not in cookie and cookie["sameSite"] == "strict"
    mine = {**raw, "name": "connect.sid", "cookie": {"max_age": 1000}}
    with override_settings(
        TOKEN_SESSION=mine, SESSION_EXPIRE_AT_BROWSER_CLOSE=True, **django_settings
    ):
        options = config().options
        assert options.name == "connect.sid" and options.cookie["max_age"] == 1000
    with override_settings(TOKEN_SESSION=raw, SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        assert config().options.cookie == {"max_age": None}
    with override_settings(TOKEN_SESSION=raw):  # Django's defaults are not express-session's
        options = config().options
        assert options.name == "connect.sid" and options.cookie == {} and not options.rolling


def test_force_login_gives_the_client_a_signed_cookie(memory: MemoryStore) -> None:
    from django.contrib.auth import get_user_model

    from token_session.web.django.testing import force_login

    client = Client()
    sid = force_login(client, get_user_model().objects.get(username="grace"))
    assert client.cookies["connect.sid"].value == encode_cookie_value(sid, SECRETS)
    stored = memory.get(sid)
    assert stored is not None and stored["passport"] == {"user": 2}
    assert stored["_auth_user_id"] == "2"
    assert client.get("/me").json()["user"] == "grace"


def test_a_server_error_leaves_the_store_alone(memory: MemoryStore) -> None:
    client = Client()
    client.post("/message?text=kept")  # a saved session
    sid = memory.ids()[0]
    response = client.post("/boom")
    assert response.status_code == 500 and "connect.sid" not in response.cookies
    stored = memory.get(sid)
    assert stored is not None and "cart" not in stored  # as Django's SessionMiddleware


# -- Django's clients over every backend, read back by the Node store -----------------------


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from BACKENDS[request.param](request)


@pytest.fixture(scope="module")
def node_store(backend: Backend, node_stores: NodeStoreDriver) -> Iterator[NodeStore]:
    opened = node_stores.open(backend.node_store, **backend.node_options)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def py_store(backend: Backend) -> Iterator[Store]:
    with backend.sync_store() as opened:
        yield opened


@pytest.fixture
def on_backend(backend: Backend, py_store: Store) -> Iterator[None]:
    settings = {**SETTINGS, "store": py_store, "async_store": backend.async_store}
    with override_settings(TOKEN_SESSION=settings):
        yield


def node_session(user_id: int | None, cart: list[str]) -> str:
    """A session as express-session 1.19.0 and passport 0.7.0 write it after a login."""
    expires = datetime.now(timezone.utc) + timedelta(minutes=1)
    session: dict[str, Any] = {
        "cookie": {
            "originalMaxAge": 60_000,
            "priority": "high",
            "expires": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "httpOnly": True,
            "path": "/",
            "sameSite": "lax",
        },
        "cart": cart,
    }
    if user_id is not None:
        session["passport"] = {"user": user_id}
    return json.dumps(session, separators=(",", ":"))


def as_node_reads(node_store: NodeStore, py_store: Store, sid: str) -> dict[str, Any]:
    """The session as the Node store reads it: the same text Python wrote, byte for byte."""
    text = node_store.get(sid)
    assert text is not None
    stored = py_store.get(sid)
    assert text == encode_session(stored)
    record = record_io(py_store).read(sid)
    assert record is not None and record.text == text
    result: dict[str, Any] = json.loads(text)
    return result


pytestmark = pytest.mark.node


def test_wsgi_handler_over_the_backend(
    on_backend: None, node_store: NodeStore, py_store: Store
) -> None:
    sid = "django-wsgi-" + py_store.__class__.__name__
    node_store.set(sid, node_session(1, ["apple"]))
    client = Client(enforce_csrf_checks=True)
    client.cookies["connect.sid"] = encode_cookie_value(sid, SECRETS)
    assert client.get("/me").json()["user"] == "ada"  # passport.user from the Node side
    token = client.get("/csrf").json()["token"]
    assert client.post("/cart?item=pear").status_code == 403
    assert client.post("/cart?item=pear", headers={"X-CSRFToken": token}).status_code == 200
    seen = as_node_reads(node_store, py_store, sid)
    assert seen["cart"] == ["apple", "pear"] and seen["passport"] == {"user": 1}
    assert list(seen) == ["cookie", "cart", "passport", "_csrftoken"]
    # Django's login() of another user: a new id, passport.user for the Express app
    client.post("/login?user=grace")
    new_sid = client.cookies["connect.sid"].value
    assert node_store.get(sid) is None
    moved = py_store.get(new_sid.split(".")[0].replace("s%3A", ""))
    assert moved is not None and moved["passport"] == {"user": 2}
    assert moved["_auth_user_id"] == "2" and moved["cart"] == ["apple", "pear"]
    client.post("/logout")
    assert client.get("/me").json() == {"app": "django", "user": None, "cart": [], "messages": []}


def test_passport_is_the_source_of_truth(
    on_backend: None, node_store: NodeStore, py_store: Store
) -> None:
    client = Client()
    client.post("/login?user=ada")
    sid = client.cookies["connect.sid"].value.split(".")[0].replace("s%3A", "")
    data = json.loads(node_store.get(sid) or "null")
    assert data["passport"] == {"user": 1}
    # the Express app logged the user out of this session: _auth_user_id lingers, unread
    del data["passport"]["user"]
    node_store.set(sid, json.dumps(data))
    assert client.get("/me").json()["user"] is None
    # a user the loader does not know is nobody, as passport's deserializeUser=false
    node_store.set(sid, json.dumps({**data, "passport": {"user": 99}}))
    assert client.get("/me").json()["user"] is None
    # a message (Django's session storage) survives the round trip through the store
    client.post("/message?text=hello")
    assert client.get("/me").json()["messages"] == ["hello"]


async def test_asgi_handler_over_the_backend(
    on_backend: None, node_store: NodeStore, py_store: Store
) -> None:
    # async views (the session's async methods, alogin, alogout) on Django 5; the sync views
    # on 4.2: the middleware runs the asyncio store either way
    me, cart, login, logout = (
        ("/ame", "/acart", "/alogin", "/alogout")
        if DJANGO5
        else ("/me", "/cart", "/login", "/logout")
    )
    sid = "django-asgi-" + py_store.__class__.__name__
    node_store.set(sid, node_session(2, []))
    client = AsyncClient()
    client.cookies["connect.sid"] = encode_cookie_value(sid, SECRETS[1])  # the old secret
    assert (await client.get(me)).json()["user"] == "grace"
    assert (await client.post(cart + "?item=fig")).json()["cart"] == ["fig"]
    assert as_node_reads(node_store, py_store, sid)["cart"] == ["fig"]
    await client.post(login + "?user=ada")
    moved = client.cookies["connect.sid"].value.split(".")[0].replace("s%3A", "")
    assert moved != sid and node_store.get(sid) is None
    assert as_node_reads(node_store, py_store, moved)["passport"] == {"user": 1}
    await client.post(logout)
    assert node_store.get(moved) is None
    assert (await client.get(me)).json()["user"] is None
    assert asyncio.get_running_loop() in config()._async  # the asyncio store served it
    await config().aclose()
