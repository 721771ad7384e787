"""One login shared by a real Express app (express 4 and 5, express-session 1.19.0) and a
Python app (FastAPI and Flask) over one store (Redis, MySQL, MongoDB, PostgreSQL in the
connect-pg-simple and the connect-session-knex format), driven by one HTTP client keeping
one cookie jar."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from token_session.compat import decode_cookie_value, encode_cookie_value
from token_session.stores import AsyncStore, Store, async_from_url, from_url
from token_session.stores.base import encode_session
from token_session.stores.records import record_io

from .backends import mysql_connect_args
from .redis_servers import prefixed_client
from .test_postgres_store import scratch_database
from .web_apps import (
    PYTHON_OPTIONS,
    ExpressServer,
    Server,
    UvicornServer,
    WerkzeugServer,
    fastapi_app,
    flask_app,
)

pytestmark = pytest.mark.node
SECRETS = PYTHON_OPTIONS["secret"]
MONGO_DB = "token_session_web"


@dataclass
class Backend:
    node_store: str
    node_options: dict[str, Any]
    sync_store: Callable[[], Store]
    async_store: Callable[[], AsyncStore]
    expiry: Callable[[str], float]  # when the backend itself will drop the session (epoch ms)


def _redis(request: pytest.FixtureRequest) -> Iterator[Backend]:
    url = request.getfixturevalue("redis_url")
    prefix = f"web-{uuid.uuid4().hex[:8]}:"
    with prefixed_client(url, prefix) as client:
        yield Backend(
            "connect-redis-9",
            {"url": url, "prefix": prefix},
            lambda: from_url(url, prefix=prefix),
            lambda: async_from_url(url, prefix=prefix),
            lambda sid: time.time() * 1000 + client.pttl(prefix + sid),
        )


def _mysql(request: pytest.FixtureRequest) -> Iterator[Backend]:
    import pymysql

    url = request.getfixturevalue("mysql_url")
    table = f"web_{uuid.uuid4().hex[:10]}"
    options = {"schema": {"table_name": table}, "clear_expired": False}
    connection = pymysql.connect(**mysql_connect_args(url), autocommit=True)

    def expiry(sid: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT expires FROM `{table}` WHERE session_id = %s", (sid,))
            (seconds,) = cursor.fetchone() or (None,)
        return float(seconds) * 1000

    yield Backend(
        "express-mysql-session-3",
        {**mysql_connect_args(url), "schema": {"tableName": table}, "clearExpired": False},
        lambda: from_url(url, **options),
        lambda: async_from_url(url, **options),
        expiry,
    )
    connection.cursor().execute(f"DROP TABLE IF EXISTS `{table}`")
    connection.close()


def _mongo(request: pytest.FixtureRequest) -> Iterator[Backend]:
    import pymongo

    url = request.getfixturevalue("mongo_url")
    collection = f"web_{uuid.uuid4().hex[:10]}"
    base, _, query = url.partition("?")
    node_url = base.rstrip("/") + "/" + MONGO_DB + ("?" + query if query else "")
    options = {"db_name": MONGO_DB, "collection_name": collection}
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(url, tz_aware=True)

    def expiry(sid: str) -> float:
        document = client[MONGO_DB][collection].find_one({"_id": sid})
        assert document is not None
        return float(document["expires"].timestamp() * 1000)

    yield Backend(
        "connect-mongo-6",
        {"mongoUrl": node_url, "collectionName": collection},
        lambda: from_url(url, **options),
        lambda: async_from_url(url, **options),
        expiry,
    )
    client[MONGO_DB].drop_collection(collection)
    client.close()


def _postgres(request: pytest.FixtureRequest, knex: bool = False) -> Iterator[Backend]:
    """connect-pg-simple 10 (or connect-session-knex 5) on a table of a database of its own.

    connect-pg-simple's own DDL names its constraint and index the same whatever the
    table, so ours makes the table (Node is not asked to)."""
    with scratch_database(request.getfixturevalue("postgres_url"), "ts_web") as url:
        table = f"web_{uuid.uuid4().hex[:10]}"
        options: dict[str, Any]
        if knex:
            options = {"format": "connect-session-knex", "cleanup_interval": 0}
            node = ("connect-session-knex-5", {"connection": url, "tableName": table})
        else:
            options = {"prune_session_interval": False, "create_table_if_missing": True}
            node = ("connect-pg-simple-10", {"conString": url, "tableName": table})
        options["table_name"] = table
        with from_url(url, **options) as reader:
            reader.length()  # the table, before either app
            records = record_io(reader)

            def expiry(sid: str) -> float:
                record = records.read(sid)
                assert record is not None and record.expires_ms is not None
                return float(record.expires_ms)

            yield Backend(
                *node,
                lambda: from_url(url, **options),
                lambda: async_from_url(url, **options),
                expiry,
            )


def _knex(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from _postgres(request, knex=True)


BACKENDS = {"redis": _redis, "mysql": _mysql, "mongo": _mongo, "postgres": _postgres, "knex": _knex}


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from BACKENDS[request.param](request)


@pytest.fixture(scope="module")
def store(backend: Backend) -> Iterator[Store]:
    """The backend as the tests read it, beside the two apps."""
    with backend.sync_store() as opened:
        yield opened


@pytest.fixture(scope="module", params=["express4", "express5"])
def express(request: pytest.FixtureRequest, backend: Backend) -> Iterator[Server]:
    server = ExpressServer(request.param, backend.node_store, backend.node_options)
    yield server
    server.close()


@pytest.fixture(scope="module", params=["fastapi", "flask"])
def python(request: pytest.FixtureRequest, backend: Backend) -> Iterator[Server]:
    server: Server
    if request.param == "fastapi":
        server = UvicornServer(fastapi_app(backend.async_store()))
    else:
        sync_store = backend.sync_store()
        server = WerkzeugServer(flask_app(sync_store), sync_store.close)
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as opened:
        yield opened


def jar_sid(client: httpx.Client, secrets: list[str] = SECRETS) -> str:
    """The session id in the jar's cookie, verified with ``secrets``."""
    raw = client.cookies.get("connect.sid")
    sid = None if raw is None else decode_cookie_value(raw, secrets)
    assert sid is not None, raw
    return sid


def put_cookie(client: httpx.Client, value: str) -> None:
    client.cookies.clear()
    client.cookies.set("connect.sid", value, domain="127.0.0.1", path="/")


def me(client: httpx.Client, server: Server) -> dict[str, Any]:
    response = client.get(server.url + "/me")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def post(client: httpx.Client, server: Server, path: str, **params: str) -> httpx.Response:
    response = client.post(server.url + path, params=params)
    response.raise_for_status()
    return response


def login(client: httpx.Client, server: Server, user: str) -> str:
    post(client, server, "/login", user=user)
    return jar_sid(client)


@pytest.mark.parametrize("first", ["express", "python"])
def test_a_login_and_a_cart_are_shared(
    client: httpx.Client, express: Server, python: Server, store: Store, first: str
) -> None:
    one, other = (express, python) if first == "express" else (python, express)
    before = login(client, one, "ada")
    assert me(client, other)["user"] == "ada"
    post(client, other, "/cart", item="apple")
    post(client, one, "/cart", item="pear")
    for server in (express, python):
        assert me(client, server)["cart"] == ["apple", "pear"]
    stored = store.get(before)
    assert stored is not None and list(stored) == ["cookie", "user", "cart"]
    # as JSON.stringify writes it, whichever app wrote last
    record = record_io(store).read(before)
    assert record is not None and record.text == encode_session(stored)
    # login regenerates: a second login on the other app moves the session to a new id
    after = login(client, other, "grace")
    assert after != before and store.get(before) is None
    assert [me(client, server)["user"] for server in (express, python)] == ["grace"] * 2


def _expires(header: str) -> str:
    match = re.search(r"Expires=([^;]+)", header)
    assert match is not None
    return match.group(1)


def test_rolling_expiry_moves_on_both(express: Server, python: Server, backend: Backend) -> None:
    # two visitors, so that one wait shows both apps moving a session's expiry: one logs
    # in on Express and comes back on Python, the other the other way round
    with httpx.Client(timeout=10) as one, httpx.Client(timeout=10) as other:
        logins = [
            post(one, express, "/login", user="ada"),
            post(other, python, "/login", user="bo"),
        ]
        sids = [jar_sid(one), jar_sid(other)]
        before = [backend.expiry(sid) for sid in sids]
        time.sleep(1.1)  # the backends keep whole seconds
        visits = [one.get(python.url + "/me"), other.get(express.url + "/me")]
    after = [backend.expiry(sid) for sid in sids]
    assert after[0] > before[0] and after[1] > before[1]
    for login_response, visit in zip(logins, visits, strict=True):
        header = visit.headers["set-cookie"]
        assert _gmt_seconds(_expires(header)) > _gmt_seconds(
            _expires(login_response.headers["set-cookie"])
        )
        assert abs(time.time() + 60 - _gmt_seconds(_expires(header))) < 5
    # the same cookie, attribute for attribute, from either app (only Expires differs)
    shapes = {
        response.headers["set-cookie"]
        .replace(_expires(response.headers["set-cookie"]), "E")
        .replace(encode_cookie_value(sid, SECRETS), "V")
        for sid, response in [*zip(sids, logins, strict=True), *zip(sids, visits, strict=True)]
    }
    assert shapes == {"connect.sid=V; Path=/; Expires=E; HttpOnly; Priority=High; SameSite=Lax"}


def _gmt_seconds(text: str) -> float:
    return parsedate_to_datetime(text).timestamp()


@pytest.mark.parametrize("where", ["express", "python"])
def test_logout_on_either_ends_it_on_both(
    client: httpx.Client, express: Server, python: Server, store: Store, where: str
) -> None:
    sid = login(client, python if where == "express" else express, "ada")
    response = post(client, express if where == "express" else python, "/logout")
    assert "set-cookie" not in response.headers  # express-session sends none on destroy
    assert store.get(sid) is None
    for server in (express, python):
        assert me(client, server)["user"] is None
    assert store.get(sid) is None  # nothing was saved for the anonymous visits


def test_a_forged_or_tampered_cookie_is_rejected_by_both(
    client: httpx.Client, express: Server, python: Server, store: Store
) -> None:
    sid = login(client, express, "ada")
    genuine = client.cookies["connect.sid"]
    signed = encode_cookie_value(sid, SECRETS)
    forgeries = [
        signed[:-1] + ("A" if signed[-1] != "A" else "B"),  # tampered signature
        encode_cookie_value(sid, "not the secret"),
        sid,  # unsigned
        "s%3A" + sid,  # no signature
    ]
    for forged in forgeries:
        for server in (express, python):
            put_cookie(client, forged)
            response = client.get(server.url + "/me")
            assert response.json()["user"] is None, (forged, server.url)
            assert "set-cookie" not in response.headers  # uninitialized: not saved, no cookie
    put_cookie(client, genuine)
    assert [me(client, server)["user"] for server in (express, python)] == ["ada"] * 2


def test_secret_rotation_across_both(client: httpx.Client, express: Server, python: Server) -> None:
    sid = login(client, python, "ada")
    assert jar_sid(client, [SECRETS[0]]) == sid  # the first secret signs
    for server in (express, python):
        put_cookie(client, encode_cookie_value(sid, SECRETS[1]))  # signed before the rotation
        assert me(client, server)["user"] == "ada"
        # the rolling cookie that comes back is signed with the current secret
        assert jar_sid(client, [SECRETS[0]]) == sid
