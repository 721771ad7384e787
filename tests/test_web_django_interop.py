"""One login shared by a real Express app (express 4 and 5, express-session 1.19.0,
passport 0.7.0) and a real Django app (gunicorn for WSGI, uvicorn for ASGI) over one store,
driven by one HTTP client keeping one cookie jar.

Every backend runs the core cases (logins both ways, a cart, logout on either side); Redis
runs everything (CSRF, rolling expiry, forged cookies, secret rotation) under both servers,
with express 4 behind one and express 5 behind the other."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import django
import httpx
import pytest

from token_session.compat import decode_cookie_value, encode_cookie_value
from token_session.stores import Store, from_url

from .backends import mysql_connect_args
from .databases import drop_mysql_table, scratch_database
from .django_app.testing import setup_django
from .django_servers import DjangoServer, ExpressPassportServer
from .web_apps import Server

pytestmark = pytest.mark.node
SECRETS = ["new secret", "old secret"]
MONGO_DB = "token_session_django"
DJANGO5 = django.VERSION >= (5, 0)
# (backend, Django server, express): the full list on Redis, the core cases elsewhere
COMBOS = [
    ("redis", "wsgi", "express5"),
    ("redis", "asgi", "express4"),
    ("mysql", "wsgi", "express4"),
    ("mongo", "asgi", "express5"),
    ("postgres", "asgi", "express4"),
    ("postgres", "wsgi", "express5"),
]


@dataclass
class Shared:
    name: str
    url: str  # the store URL and options the Django app opens
    options: dict[str, Any]
    node_store: str
    node_options: dict[str, Any]


def _shared(request: pytest.FixtureRequest, name: str) -> Iterator[Shared]:
    tag = uuid.uuid4().hex[:10]
    if name == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"dj-{tag}:"
        yield Shared(
            name, url, {"prefix": prefix}, "connect-redis-9", {"url": url, "prefix": prefix}
        )
    elif name == "mysql":
        url = request.getfixturevalue("mysql_url")
        options = {"schema": {"table_name": f"dj_{tag}"}, "clear_expired": False}
        node = {**mysql_connect_args(url), "schema": {"tableName": f"dj_{tag}"}}
        yield Shared(name, url, options, "express-mysql-session-3", {**node, "clearExpired": False})
        drop_mysql_table(url, f"dj_{tag}")
    elif name == "mongo":
        url = request.getfixturevalue("mongo_url")
        base, _, query = url.partition("?")
        node_url = base.rstrip("/") + "/" + MONGO_DB + ("?" + query if query else "")
        options = {"db_name": MONGO_DB, "collection_name": f"dj_{tag}"}
        node = {"mongoUrl": node_url, "collectionName": f"dj_{tag}"}
        yield Shared(name, url, options, "connect-mongo-6", node)
    else:
        with scratch_database(request.getfixturevalue("postgres_url"), "ts_dj") as url:
            options = {"table_name": f"dj_{tag}", "prune_session_interval": False}
            with from_url(url, **options, create_table_if_missing=True) as store:
                store.length()  # the table, before either app
            node = {"conString": url, "tableName": f"dj_{tag}"}
            yield Shared(name, url, options, "connect-pg-simple-10", node)


@dataclass
class Apps:
    shared: Shared
    kind: str  # wsgi or asgi
    django: Server
    express: Server
    store: Store  # the store as the tests read it


@pytest.fixture(scope="module", params=COMBOS, ids=["-".join(combo) for combo in COMBOS])
def apps(request: pytest.FixtureRequest) -> Iterator[Apps]:
    name, kind, express = request.param
    db = setup_django()
    for shared in _shared(request, name):
        django_server = DjangoServer(kind, shared.url, shared.options, db)
        express_server = ExpressPassportServer(express, shared.node_store, shared.node_options)
        try:
            with from_url(shared.url, **shared.options) as store:
                yield Apps(shared, kind, django_server, express_server, store)
        finally:
            django_server.close()
            express_server.close()


FULL = [combo for combo in COMBOS if combo[0] == "redis"]
# the full list's tests take `apps` on the Redis combinations only (the module's servers reused)
on_redis = pytest.mark.parametrize(
    "apps", FULL, ids=["-".join(combo) for combo in FULL], indirect=True
)


@pytest.fixture
def full(apps: Apps) -> Apps:
    return apps


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as opened:
        yield opened


def jar_sid(client: httpx.Client, secrets: list[str] = SECRETS) -> str:
    raw = client.cookies.get("connect.sid")
    sid = None if raw is None else decode_cookie_value(raw, secrets)
    assert sid is not None, raw
    return sid


def put_cookie(client: httpx.Client, value: str) -> None:
    client.cookies.clear()
    client.cookies.set("connect.sid", value, domain="127.0.0.1", path="/")


def me(client: httpx.Client, server: Server, path: str = "/me") -> dict[str, Any]:
    response = client.get(server.url + path)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def post(client: httpx.Client, server: Server, path: str, **params: str) -> httpx.Response:
    response = client.post(server.url + path, params=params)
    response.raise_for_status()
    return response


def django_cart(client: httpx.Client, apps: Apps, item: str) -> dict[str, Any]:
    """The CSRF-protected POST: refused without the token, taken with it."""
    token = me(client, apps.django, "/csrf")["token"]
    refused = client.post(apps.django.url + "/cart", params={"item": item})
    assert refused.status_code == 403
    response = client.post(
        apps.django.url + "/cart", params={"item": item}, headers={"X-CSRFToken": token}
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_a_login_on_express_is_request_user_in_django(client: httpx.Client, apps: Apps) -> None:
    post(client, apps.express, "/login", user="ada")
    sid = jar_sid(client)
    assert me(client, apps.django)["user"] == "ada"
    if DJANGO5:
        assert me(client, apps.django, "/ame")["user"] == "ada"  # await request.auser()
    post(client, apps.express, "/cart", item="apple")
    assert django_cart(client, apps, "pear")["cart"] == ["apple", "pear"]
    assert me(client, apps.express)["cart"] == ["apple", "pear"]
    stored = apps.store.get(sid)
    assert stored is not None and stored["passport"] == {"user": 1}
    assert "_auth_user_id" not in stored  # the Express login is passport's alone


@pytest.mark.parametrize("path", ["/login", "/alogin"])
def test_a_django_login_is_the_user_on_express(client: httpx.Client, apps: Apps, path: str) -> None:
    if path == "/alogin" and not DJANGO5:
        pytest.skip("alogin() is Django 5.0's")
    post(client, apps.express, "/cart", item="apple")  # an anonymous cart, kept by login()
    before = jar_sid(client)
    post(client, apps.django, path, user="grace")
    after = jar_sid(client)
    assert after != before and apps.store.get(before) is None  # cycle_key(): regenerate
    seen = me(client, apps.express)
    assert seen["user"] == "grace" and seen["passport"] == {"user": 2}
    assert seen["cart"] == ["apple"]
    assert me(client, apps.django)["user"] == "grace"


@pytest.mark.parametrize("where", ["express", "django", "django-async"])
def test_logout_on_either_ends_it_on_both(client: httpx.Client, apps: Apps, where: str) -> None:
    if where == "django-async" and not DJANGO5:
        pytest.skip("alogout() is Django 5.0's")
    other = apps.django if where == "express" else apps.express
    post(client, other, "/login", user="ada")
    sid = jar_sid(client)
    if where == "express":
        post(client, apps.express, "/logout")  # passport's logOut: save, then regenerate
    else:
        post(client, apps.django, "/logout" if where == "django" else "/alogout")
    assert apps.store.get(sid) is None
    assert jar_sid(client) != sid
    for server in (apps.express, apps.django):
        assert me(client, server)["user"] is None
    put_cookie(client, encode_cookie_value(sid, SECRETS))  # the old cookie, replayed
    for server in (apps.express, apps.django):
        assert me(client, server)["user"] is None


def _expires(header: str) -> str:
    match = re.search(r"Expires=([^;]+)", header)
    assert match is not None
    return match.group(1)


def _pttl(apps: Apps, sid: str) -> float:
    import redis

    with redis.Redis.from_url(apps.shared.url) as client:
        return time.time() * 1000 + client.pttl(apps.shared.options["prefix"] + sid)


@on_redis
def test_rolling_expiry_moves_on_both(full: Apps) -> None:
    with httpx.Client(timeout=10) as one, httpx.Client(timeout=10) as other:
        logins = [
            post(one, full.express, "/login", user="ada"),
            post(other, full.django, "/login", user="grace"),
        ]
        sids = [jar_sid(one), jar_sid(other)]
        before = [_pttl(full, sid) for sid in sids]
        time.sleep(1.1)  # Redis keeps whole milliseconds, the cookie whole seconds
        visits = [one.get(full.django.url + "/me"), other.get(full.express.url + "/me")]
    after = [_pttl(full, sid) for sid in sids]
    assert after[0] > before[0] and after[1] > before[1]
    for login_response, visit in zip(logins, visits, strict=True):
        header = visit.headers["set-cookie"]
        moved = parsedate_to_datetime(_expires(header)).timestamp()
        assert (
            moved
            > parsedate_to_datetime(_expires(login_response.headers["set-cookie"])).timestamp()
        )
        assert abs(time.time() + 60 - moved) < 5
    shapes = {
        response.headers["set-cookie"]
        .replace(_expires(response.headers["set-cookie"]), "E")
        .replace(encode_cookie_value(sid, SECRETS), "V")
        for sid, response in [*zip(sids, logins, strict=True), *zip(sids, visits, strict=True)]
    }
    assert shapes == {"connect.sid=V; Path=/; Expires=E; HttpOnly; Priority=High; SameSite=Lax"}


@on_redis
def test_a_forged_or_tampered_cookie_is_rejected_by_both(client: httpx.Client, full: Apps) -> None:
    post(client, full.express, "/login", user="ada")
    sid = jar_sid(client)
    genuine = client.cookies["connect.sid"]
    signed = encode_cookie_value(sid, SECRETS)
    forgeries = [
        signed[:-1] + ("A" if signed[-1] != "A" else "B"),
        encode_cookie_value(sid, "not the secret"),
        sid,
        "s%3A" + sid,
    ]
    for forged in forgeries:
        for server in (full.express, full.django):
            put_cookie(client, forged)
            response = client.get(server.url + "/me")
            assert response.json()["user"] is None, (forged, server.url)
            assert "set-cookie" not in response.headers
    put_cookie(client, genuine)
    assert [me(client, server)["user"] for server in (full.express, full.django)] == ["ada"] * 2


@on_redis
def test_secret_rotation_across_both(client: httpx.Client, full: Apps) -> None:
    post(client, full.django, "/login", user="ada")
    sid = jar_sid(client)
    assert jar_sid(client, [SECRETS[0]]) == sid
    for server in (full.express, full.django):
        put_cookie(client, encode_cookie_value(sid, SECRETS[1]))
        assert me(client, server)["user"] == "ada"
        assert jar_sid(client, [SECRETS[0]]) == sid
