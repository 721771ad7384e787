"""get_and_touch on PostgreSQL: one statement doing what get, then touch with the cookie
restarted, do in two: the same answer, the same expiry, the same stored bytes, over sessions
of every shape, in both Node stores' tables, blocking and asyncio, whatever TimeZone the
store's connections run in; one round trip for the sessions express-session writes; and
against the real connect-pg-simple and connect-session-knex."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from token_session import TokenSession
from token_session.compat import dumps, js_iso, loads
from token_session.compat.cookie import from_ms, now_ms
from token_session.stores.postgres import AsyncPostgresStore, PostgresStore

from . import get_and_touch_cases as cases
from .conftest import Clock
from .get_and_touch_cases import (
    NODE_LIFETIMES,
    Sync,
    counted,
    get_then_touch,
    node_cookie,
    node_touched,
    outcome,
    stored_texts,
)
from .node import NodeOracle, NodeStoreDriver

KNEX_OPTIONS: dict[str, Any] = {
    "format": "connect-session-knex",
    "cleanup_interval": 0,
    "create_table": True,
}
PG_OPTIONS: dict[str, Any] = {"prune_session_interval": False, "create_table_if_missing": True}

SESSIONS = [*cases.SESSIONS, *cases.INVALID_DATES]
# the JSON texts every store reads, and PostgreSQL's own: \u0000, which json keeps as
# written (jsonb refuses it)
ODD: list[str] = [
    *cases.JSON_ODD,
    '{"\\u0000":1,"cookie":{"originalMaxAge":4000}}',  # PostgreSQL reads it only whole
    '{"cookie":{"originalMaxAge":4000,"x":"\\u0000"}}',
    '{"cookie":{"originalMaxAge":4000},"x":"\\\\u0000"}',  # a backslash, then u0000
]


WAYS = ["blocking", "asyncio", "blocking-client-zone", "asyncio-time-zone"]
FORMATS = ["connect-pg-simple", "connect-session-knex"]


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=WAYS)
def store(request: pytest.FixtureRequest, db_url: str, fmt: str, clock: Clock) -> Iterator[Sync]:
    """Each store on its table: blocking, asyncio, a connection whose own TimeZone is not
    the server's (Node's rows are in the server's), and an explicit time_zone."""
    way = request.param
    options: dict[str, Any] = dict(KNEX_OPTIONS if fmt == FORMATS[1] else PG_OPTIONS)
    options.update(conninfo=db_url, table_name=f"t_{secrets.token_hex(6)}", clock=clock)
    if way == "blocking-client-zone":
        options["connect_args"] = {"options": "-c TimeZone=Pacific/Chatham"}
    if way == "asyncio-time-zone":
        options["time_zone"] = "Asia/Kolkata"
    if way.startswith("blocking"):
        with PostgresStore(**options) as blocking:
            yield Sync(blocking)
        return
    loop = asyncio.new_event_loop()
    aio = AsyncPostgresStore(**options)
    yield Sync(aio, loop)
    loop.run_until_complete(aio.close())
    loop.close()


def stored(admin: psycopg.Connection[Any], store: Sync, sid: str) -> tuple[str, str] | None:
    fmt = store.store.format
    row = admin.execute(
        f'SELECT sess::text, "{fmt.expire_column}"::text FROM {fmt.table} WHERE sid = %s', (sid,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def assert_same(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock, raw: str, live: bool = True
) -> tuple[str, Any]:
    """Two rows alike holding ``raw``; a while later get_and_touch reads one, get then touch
    the other: the same outcome, and the rows still alike."""
    fmt = store.store.format
    one, two = secrets.token_hex(8), secrets.token_hex(8)
    life = 3_600_000 if live else -3_600_000
    store.set(one, {"cookie": {"expires": js_iso(from_ms(clock.now + life))}})
    admin.execute(f"UPDATE {fmt.table} SET sess = %s::json WHERE sid = %s", (raw, one))
    exp = f'"{fmt.expire_column}"'
    admin.execute(
        f"INSERT INTO {fmt.table} (sid, sess, {exp}) SELECT %s, sess, {exp}"
        f" FROM {fmt.table} WHERE sid = %s",
        (two, one),
    )
    before = stored(admin, store, one)
    clock.now += 1234
    first = outcome(store.get_and_touch, one)
    assert first == outcome(get_then_touch, store, two, clock)
    after = stored(admin, store, one)
    assert after == stored(admin, store, two)
    assert after is not None and before is not None and after[0] == before[0] == raw
    return first


@pytest.mark.parametrize("session", SESSIONS, ids=range(len(SESSIONS)))
def test_one_step_is_get_then_touch(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock, session: dict[str, Any]
) -> None:
    kind, value = assert_same(admin, store, clock, dumps(session))
    if kind == "ok":
        assert value == loads(dumps(session))


@pytest.mark.parametrize("raw", ODD, ids=range(len(ODD)))
def test_one_step_is_get_then_touch_for_odd_values(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock, raw: str
) -> None:
    assert_same(admin, store, clock, raw)


def test_an_expired_or_missing_session_is_none_and_left_alone(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock
) -> None:
    assert assert_same(admin, store, clock, dumps(SESSIONS[1]), live=False) == ("ok", None)
    assert store.get_and_touch("nothing-here") is None
    assert stored(admin, store, "nothing-here") is None


def test_a_session_that_fails_to_decode_keeps_its_expiry(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock
) -> None:
    """Touched in the statement, then found to be no session get returns: the expiry read is
    written back, as get then touch would not have touched it."""
    raw = cases.TOO_DEEP
    sent = counted(store.store)
    assert assert_same(admin, store, clock, raw) == ("error", "SessionDecodeError")
    at = sent.index("WITH")
    assert sent[at : at + 3] == ["WITH", "UPDATE", "SELECT"]  # the expiry back, then get


@pytest.mark.parametrize(
    ("cookie", "count"),
    [
        ({"originalMaxAge": 60_000, "expires": "2030-01-01T00:00:00.000Z"}, 1),
        ({"originalMaxAge": None, "expires": None}, 1),
        ({"path": "/"}, 1),
        ({"originalMaxAge": 1500.5}, 2),
        ({"originalMaxAge": "60000"}, 1),  # not restarted: the default, or (knex) nothing
        ({"originalMaxAge": None, "expires": "2030-01-01T00:00:00.000Z"}, 2),
    ],
)
def test_one_round_trip_for_what_express_session_writes(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock, cookie: dict[str, Any], count: int
) -> None:
    store.get("warm-up")
    sent = counted(store.store)
    assert_same(admin, store, clock, dumps({"cookie": cookie, "n": 1}))
    one_step = sent[sent.index("WITH") : sent.index("SELECT")]  # get then touch follow
    assert one_step == ["WITH", "UPDATE"][:count]


def test_disable_touch_is_a_get(admin: psycopg.Connection[Any], db_url: str, clock: Clock) -> None:
    """connect-pg-simple's disableTouch (knex's format has none)."""
    table = f"t_{secrets.token_hex(6)}"
    options = {"clock": clock, "disable_touch": True, **PG_OPTIONS}
    with PostgresStore(conninfo=db_url, table_name=table, **options) as blocking:
        store = Sync(blocking)
        sent = counted(blocking)
        assert assert_same(admin, store, clock, dumps(SESSIONS[1]))[0] == "ok"
        assert "WITH" not in sent and "UPDATE" not in sent
        assert sent.count("SELECT") >= 2


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=stored_texts())
def test_one_step_is_get_then_touch_for_any_value(
    admin: psycopg.Connection[Any], db_url: str, raw: str
) -> None:
    try:
        admin.execute("SELECT %s::json", (raw,))
    except (psycopg.Error, UnicodeEncodeError):
        return  # not a json value PostgreSQL keeps: no row can hold it
    clock = Clock()
    for options in (PG_OPTIONS, KNEX_OPTIONS):
        with PostgresStore(
            conninfo=db_url,
            table_name="t_any_" + options.get("format", "pg")[-4:],
            clock=clock,
            **options,
        ) as blocking:
            assert_same(admin, Sync(blocking), clock, raw)


@pytest.mark.parametrize("name", ["connect-pg-simple-10", "connect-session-knex-5"])
def test_node_reads_the_touched_session_with_the_expiry_its_own_get_touch_leaves(
    node_stores: NodeStoreDriver,
    node: NodeOracle,
    admin: psycopg.Connection[Any],
    db_url: str,
    name: str,
) -> None:
    """The Node store writes a session; ours get_and_touch it; Node's get then express-
    session's touch (resetMaxAge) then the Node store's touch do the same to a twin."""
    table = f"t_{secrets.token_hex(6)}"
    knex = name.startswith("connect-session-knex")
    options = KNEX_OPTIONS if knex else PG_OPTIONS
    ours = PostgresStore(conninfo=db_url, table_name=table, **options)
    ours.length()  # the table, named after itself (see test_postgres_interop.open_node)
    if knex:
        node_store = node_stores.open(name, connection=db_url, tableName=table)
    else:
        node_store = node_stores.open(name, conString=db_url, tableName=table)
    column = "expired" if knex else "expire"
    zone = "" if knex else " AT TIME ZONE current_setting('TimeZone')"  # Node's rows' zone
    epoch = f'extract(epoch from "{column}"{zone})'
    try:
        for life in NODE_LIFETIMES:
            cookie = node_cookie(life)
            session = {"cookie": cookie, "n": 1}
            one, two = secrets.token_hex(8), secrets.token_hex(8)
            for sid in (one, two):
                node_store.set(sid, json.dumps(session))
            written = stored_text(admin, table, one)
            sent = counted(ours)
            found = ours.get_and_touch(one)
            assert sent == ["WITH"]
            assert found == json.loads(node_store.get(one) or "null") == json.loads(written)
            assert stored_text(admin, table, one) == written  # the bytes stay Node's
            node_store.touch(two, node_touched(node, node_store.get(two) or ""))
            times = dict(admin.execute(f'SELECT sid, {epoch}::float8 FROM "{table}"').fetchall())
            assert abs(times[one] - times[two]) <= 1
            if life is not None:
                assert times[one] * 1000 > now_ms() + life - 2000
    finally:
        node_store.close()
        ours.close()


def stored_text(admin: psycopg.Connection[Any], table: str, sid: str) -> str:
    row = admin.execute(f'SELECT sess::text FROM "{table}" WHERE sid = %s', (sid,)).fetchone()
    assert row is not None
    return str(row[0])


def test_token_session_gets_and_touches_in_one_statement(db_url: str, fmt: str) -> None:
    options: dict[str, Any] = dict(KNEX_OPTIONS if fmt == FORMATS[1] else PG_OPTIONS)
    with PostgresStore(conninfo=db_url, table_name=f"t_{secrets.token_hex(6)}", **options) as store:
        tokens = TokenSession(store)
        created = tokens.new_with_ttl({"user": "ada"}, 60)
        sent = counted(store)
        found = tokens.get_and_touch(created.sid)
        assert sent == ["WITH"]
        assert found is not None and found["user"] == "ada"
        assert found["cookie"]["originalMaxAge"] == 60_000


@pytest.mark.parametrize("life", [60_000, 1_234, None])
def test_the_expiry_written_is_the_one_touch_computes(
    admin: psycopg.Connection[Any], store: Sync, clock: Clock, life: int | None
) -> None:
    """Read as an instant in the zone the store writes connect-pg-simple's wall-clock times
    in (the server's default, or time_zone=), whatever its own connections use."""
    fmt = store.store.format
    store.set("s", {"cookie": {"originalMaxAge": life, "expires": None}, "n": 1})
    clock.now += 777
    sent = counted(store.store)
    assert store.get_and_touch("s") == {"cookie": {"originalMaxAge": life, "expires": None}, "n": 1}
    assert sent == ["WITH"]
    if fmt.name == "connect-session-knex":
        sql = 'SELECT (extract(epoch from "expired") * 1000)::bigint FROM {} WHERE sid = %s'
        expected = clock.now + 86_400_000 - 777 if life is None else clock.now + life
    else:
        default = admin.execute("SELECT current_setting('TimeZone')").fetchone()
        assert fmt.zone in ("Asia/Kolkata", default and default[0])  # never Pacific/Chatham
        sql = "SELECT extract(epoch from expire AT TIME ZONE %s)::bigint * 1000"
        sql += " FROM {} WHERE sid = %s"
        expected = math.ceil((clock.now + (life or 86_400_000)) / 1000) * 1000
    params = ("s",) if fmt.name == "connect-session-knex" else (fmt.zone, "s")
    row = admin.execute(sql.format(fmt.table), params).fetchone()
    assert row is not None and row[0] == expected
