"""get_and_touch on MySQL: the read and a touch to the expires likely due in one text, doing
what get, then touch with the cookie restarted, do in two: the same answer or error, the
same row, over sessions of every shape and texts that are none, blocking and asyncio, on
the store's pool and on a user's connection with and without several statements a text, and
the asyncio store's prepared pair as well as its one text; one round trip for the sessions
express-session writes; ids the one text never carries; and against the real
express-mysql-session 3.0.3 and 2.1.8."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from pymysql.constants.CLIENT import MULTI_STATEMENTS

from token_session import InvalidArgumentError, TokenSession
from token_session.compat import dumps, loads
from token_session.compat.cookie import now_ms
from token_session.stores.base import refreshed
from token_session.stores.mysql import AsyncMySQLStore, MySQLStore, js_round

from . import get_and_touch_cases as cases
from .conftest import Clock
from .databases import scratch_mysql_database
from .get_and_touch_cases import (
    NODE_LIFETIMES,
    Sync,
    get_then_touch,
    node_cookie,
    node_touched,
    outcome,
    stored_texts,
)
from .node import NodeOracle, NodeStoreDriver

NODE_STORES = ["express-mysql-session-3", "express-mysql-session-2"]
WAYS = ["pool", "asyncio", "asyncio-text", "connection", "connection-multi"]
Row = tuple[int, "bytes | None"]

SESSION_TEXTS = [dumps(session) for session in [*cases.SESSIONS, *cases.INVALID_DATES]]
# every text a JSON store may hold, and MySQL's own: mediumtext keeps any text as it is
ODD: list[str] = [
    *cases.JSON_ODD,
    cases.LONE_SURROGATE,
    *cases.NOT_JSON,
    '{"cookie":{"originalMaxAge":9000},"x":"\x00"}',  # a NUL character, no escape
    '{"cookie":{"originalMaxAge":9000},"x":"' + "😀" * 5000 + '"}',
    '{"cookie":{"expires":"1969-12-31T23:59:59.000Z"}}',  # before the unsigned column's 0
    '{"cookie":{"expires":"2106-02-07T06:28:15.000Z"}}',  # its last second
]
# sessions whose restarted expires the int(11) unsigned column refuses (before 1970, after
# 2106-02-07): touch raises, and one step raises the same, the expires left as it was
OUT_OF_RANGE = {
    dumps({"cookie": {"originalMaxAge": None, "expires": "9999-12-31T23:59:59.999Z"}}),
    dumps({"cookie": {"originalMaxAge": cases.BIG}}),
    dumps({"cookie": {"originalMaxAge": -cases.BIG}}),
    dumps({"cookie": {"originalMaxAge": -(10**13)}}),
    json.dumps({"cookie": {"originalMaxAge": cases.BIG + 1}}),
    '{"cookie":{"expires":"+275760-09-13T00:00:00.000Z"}}',
    '{"cookie":{"expires":"1969-12-31T23:59:59.000Z"}}',
}


def each_way(texts: list[str]) -> list[Any]:
    """(way, text) for the ``store`` fixture and a test."""
    return [
        pytest.param(way, text, id=f"{way}-{i}") for way in WAYS for i, text in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def db(mysql_url: str) -> Iterator[dict[str, Any]]:
    with scratch_mysql_database(mysql_url, "ts_gt") as args:
        yield args


@pytest.fixture(scope="module")
def admin(db: dict[str, Any]) -> Iterator[pymysql.connections.Connection[Any]]:
    connection = pymysql.connect(**db, autocommit=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def tag_of_run() -> str:
    return secrets.token_hex(4)


@pytest.fixture(params=WAYS)
def store(
    request: pytest.FixtureRequest, db: dict[str, Any], clock: Clock, tag_of_run: str
) -> Iterator[Sync]:
    """A store (and its memory of lifetimes) of each test's own, on a table of each way's:
    the blocking store's pool, the asyncio store's (prepared statements, and text only), and
    a user's PyMySQL connection (autocommit off) with and without CLIENT.MULTI_STATEMENTS."""
    way = request.param
    options: dict[str, Any] = {
        "schema": {"table_name": f"t_{tag_of_run}_{way.replace('-', '_')}"},
        "clear_expired": False,
        "clock": clock,
    }
    if way.startswith("asyncio"):
        loop = asyncio.new_event_loop()
        text_only = {"connect_args": {"stmt_cache_size": 0}} if way == "asyncio-text" else {}
        aio = AsyncMySQLStore(**db, **options, **text_only)
        assert aio._source.one_text is bool(text_only)
        loop.run_until_complete(aio.length())  # the table
        yield Sync(aio, loop)
        loop.run_until_complete(aio.close())
        loop.close()
        return
    connection = None
    if way.startswith("connection"):
        flag = MULTI_STATEMENTS if way == "connection-multi" else 0
        connection = pymysql.connect(**db, client_flag=flag)
        blocking = MySQLStore(connection, **options)
    else:
        blocking = MySQLStore(**db, **options)
    assert blocking._source.one_text is (way != "connection")
    blocking.length()  # the table
    yield Sync(blocking)
    blocking.close()
    if connection is not None:
        connection.close()


def counted(store: Any) -> list[str]:
    """What each statement ``store`` sends from now on is: get_and_touch's one text, the
    expires put back, touch, get."""
    core = store.core
    known = {
        core._get_and_touch: "get_and_touch",
        core._untouch: "put_back",
        core._touch: "touch",
        core._get: "get",
    }
    return cases.counted(store, lambda statement: known.get(statement.sql, statement.sql))


def table_of(store: Sync) -> str:
    return str(store.store.core.schema.table_name)


def rows(admin: Any, table: str) -> dict[str, Row]:
    """Each row by its exact id: expires, and data's bytes."""
    with admin.cursor() as cursor:
        cursor.execute(f"SELECT session_id, expires, CAST(data AS BINARY) FROM `{table}`")
        return {sid: (expires, data) for sid, expires, data in cursor.fetchall()}


def stored(admin: Any, table: str, sid: str) -> Row | None:
    with admin.cursor() as cursor:
        cursor.execute(
            f"SELECT expires, CAST(data AS BINARY) FROM `{table}`"
            " WHERE session_id = %s AND session_id = CAST(%s AS BINARY)",
            (sid, sid),
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def put(admin: Any, table: str, sid: str, expires: int, data: str | None) -> None:
    with admin.cursor() as cursor:
        cursor.execute(f"REPLACE INTO `{table}` VALUES (%s, %s, %s)", (sid, expires, data))


def assert_same(
    admin: Any,
    store: Sync,
    clock: Clock,
    raw: str | None,
    live: bool = True,
) -> Any:
    """Two rows alike holding ``raw``; a while later get_and_touch reads one, get then touch
    the other: the same outcome, and the rows still alike; the data as it was."""
    table = table_of(store)
    one, two = secrets.token_hex(8), secrets.token_hex(8)
    expires = js_round(clock.now / 1000) + (3600 if live else -3600)
    for sid in (one, two):
        put(admin, table, sid, expires, raw)
    before = stored(admin, table, one)
    clock.now += 1234
    first = outcome(store.get_and_touch, one)
    assert first == outcome(get_then_touch, store, two, clock)
    after, twin = stored(admin, table, one), stored(admin, table, two)
    assert after is not None and before is not None and twin is not None
    assert after[1] == twin[1] == before[1] == (None if raw is None else raw.encode())
    assert after[0] == twin[0]
    if first in (("ok", None), ("error", "SessionDecodeError")):
        assert after == before  # nothing touched
    return first


@pytest.mark.parametrize(("store", "raw"), each_way(SESSION_TEXTS), indirect=["store"])
def test_one_step_is_get_then_touch(admin: Any, store: Sync, clock: Clock, raw: str) -> None:
    kind, value = assert_same(admin, store, clock, raw)
    if kind == "ok":
        assert value == loads(raw)


@pytest.mark.parametrize(("store", "raw"), each_way(ODD), indirect=["store"])
def test_one_step_is_get_then_touch_for_odd_values(
    admin: Any, store: Sync, clock: Clock, raw: str
) -> None:
    assert_same(admin, store, clock, raw)


def test_expired_missing_null_and_spaced_rows_are_none_and_left_alone(
    admin: Any, store: Sync, clock: Clock
) -> None:
    assert assert_same(admin, store, clock, dumps(cases.SESSIONS[1]), live=False) == ("ok", None)
    assert assert_same(admin, store, clock, None) == ("ok", None)  # Node's NULL: no session
    assert store.get_and_touch("nothing-here") is None
    table = table_of(store)
    assert stored(admin, table, "nothing-here") is None
    # the collation takes 'a ' for 'a' and back: each reads only its own row
    later = js_round(clock.now / 1000) + 600
    for row_id, asked in ((f"{table} ", table), (f"{table}b", f"{table}b ")):
        put(admin, table, row_id, later, dumps(cases.SESSIONS[1]))
        before = rows(admin, table)
        clock.now += 5000
        assert store.get_and_touch(asked) is None
        assert rows(admin, table) == before


def test_a_session_that_fails_to_decode_keeps_its_expires(
    admin: Any, store: Sync, clock: Clock
) -> None:
    """Touched in the one text, then found to be no session get returns: the expires read
    is written back, as get then touch would not have touched it."""
    sent = counted(store.store)
    for raw in ("not json", cases.TOO_DEEP, "[1, 2]"):
        sent.clear()
        assert assert_same(admin, store, clock, raw) == ("error", "SessionDecodeError")
        if store.store._source.one_text:
            assert sent == ["get_and_touch", "put_back", "get"]  # then get then touch's get
        else:
            assert sent == ["get", "get"]


@pytest.mark.parametrize(("store", "raw"), each_way(sorted(OUT_OF_RANGE)), indirect=["store"])
def test_a_touch_the_column_refuses_leaves_the_expires_as_it_was(
    admin: Any, store: Sync, clock: Clock, raw: str
) -> None:
    table = table_of(store)
    expires = js_round(clock.now / 1000) + 3600
    put(admin, table, "s", expires, raw)
    with pytest.raises(InvalidArgumentError):
        store.get_and_touch("s")
    assert stored(admin, table, "s") == (expires, raw.encode())


@pytest.mark.parametrize(
    ("cookie", "then"),
    [
        ({"originalMaxAge": 60_000, "expires": "2030-01-01T00:00:00.000Z"}, 1),
        ({"originalMaxAge": None, "expires": None}, 1),
        ({"path": "/"}, 1),
        ({"originalMaxAge": 1500.5}, 1),
        ({"originalMaxAge": "60000"}, 1),  # not restarted: the store's expiration
        ({"originalMaxAge": None, "expires": "2030-01-01T00:00:00.000Z"}, 2),  # no lifetime
    ],
)
def test_one_round_trip_for_what_express_session_writes(
    admin: Any, store: Sync, clock: Clock, cookie: dict[str, Any], then: int
) -> None:
    """The first call for a lifetime may take a second statement (the exact touch); the
    next ones, for sessions of the same lifetime, one text each. Get then touch where the
    connection takes one statement a text, or prepares its statements (asyncio)."""
    one_step = store.store._source.one_text
    session = {"cookie": cookie, "n": 1}
    sids = [secrets.token_urlsafe(24) for _ in range(4)]
    for sid in sids:
        store.set(sid, session)
    sent = counted(store.store)
    assert store.get_and_touch(sids[0]) == session
    assert sent in (
        [["get_and_touch"], ["get_and_touch", "touch"]] if one_step else [["get", "touch"]]
    )
    for sid in sids[1:]:
        sent.clear()
        clock.now += 777
        assert store.get_and_touch(sid) == session
        assert sent == (["get_and_touch", "touch"][:then] if one_step else ["get", "touch"])
        twin = secrets.token_urlsafe(24)
        store.set(twin, session)
        store.touch(twin, refreshed(session, clock.now))
        assert stored(admin, table_of(store), sid) == stored(admin, table_of(store), twin)


@pytest.mark.parametrize("way", ["pool", "asyncio-text"])
def test_ids_outside_the_plain_set_take_two_statements_and_touch_only_their_row(
    admin: Any, db: dict[str, Any], clock: Clock, way: str
) -> None:
    table = f"t_{secrets.token_hex(6)}"
    hostile = [
        "it's",
        'say "hi"',
        "back\\slash",
        "a b",
        "semi;colon",
        "é😀",
        "%s",
        f"x'; DROP TABLE {table}; --",
        f"x\\'; UPDATE {table} SET data = NULL; --",
        f"x`; DELETE FROM `{table}`; --",
    ]
    options: dict[str, Any] = {"schema": {"table_name": table}, "clear_expired": False}
    loop = asyncio.new_event_loop()
    if way == "pool":
        store = Sync(MySQLStore(**db, **options, clock=clock))
    else:
        text_only = {"connect_args": {"stmt_cache_size": 0}}
        store = Sync(AsyncMySQLStore(**db, **options, clock=clock, **text_only), loop)
    assert store.store._source.one_text
    session = {"cookie": {"originalMaxAge": 60_000, "expires": None}, "n": 1}
    for sid in [*hostile, "x", "t", table]:
        store.set(sid, {**session, "sid": sid})
    before = rows(admin, table)
    for sid in hostile:
        clock.now += 1000
        sent = counted(store.store)
        assert store.get_and_touch(sid) == {**session, "sid": sid}
        assert sent == ["get", "touch"]
        after = rows(admin, table)
        assert after[sid] == (js_round((clock.now + 60_000) / 1000), before[sid][1])
        before[sid] = after[sid]
        assert after == before  # every other row as it was
    store.close()
    loop.close()


@pytest.mark.parametrize("given", ["pool", "connection"])
@pytest.mark.parametrize("statement_cache", [0, 8])
def test_the_asyncio_store_sends_one_text_where_given_connections_prepare_nothing(
    admin: Any, db: dict[str, Any], given: str, statement_cache: int
) -> None:
    """A user's asyncmy pool or connection: with a statement cache, get then touch as
    prepared statements on one connection; without, the one text."""
    import asyncmy

    async def check() -> list[str]:
        if given == "pool":
            made: Any = await asyncmy.create_pool(
                minsize=0, maxsize=2, stmt_cache_size=statement_cache, **db
            )
        else:
            made = await asyncmy.connect(stmt_cache_size=statement_cache, **db)
        table = f"t_{secrets.token_hex(6)}"
        store = AsyncMySQLStore(made, schema={"table_name": table}, clear_expired=False)
        assert store._source.one_text is (statement_cache == 0)
        session = {"cookie": {"originalMaxAge": 86_400_000}, "n": 1}
        await store.set("s", session)
        sent = counted(store)
        assert await store.get_and_touch("s") == session
        await store.close()
        made.close()
        if given == "pool":
            await made.wait_closed()
        return sent

    sent = asyncio.run(check())
    assert sent == (["get", "touch"] if statement_cache else ["get_and_touch"])


def test_disable_touch_is_a_get(admin: Any, db: dict[str, Any], clock: Clock) -> None:
    table = f"t_{secrets.token_hex(6)}"
    options: dict[str, Any] = {"schema": {"table_name": table}, "clear_expired": False}
    with MySQLStore(**db, disable_touch=True, clock=clock, **options) as blocking:
        blocking.length()
        sent = counted(blocking)
        assert assert_same(admin, Sync(blocking), clock, dumps(cases.SESSIONS[1]))[0] == "ok"
        assert sent == ["get", "get"]  # touch sends nothing
        assert len({expires for expires, _ in rows(admin, table).values()}) == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=stored_texts(infinities=True))
def test_one_step_is_get_then_touch_for_any_value(admin: Any, db: dict[str, Any], raw: str) -> None:
    try:
        raw.encode()
    except UnicodeEncodeError:
        return  # a lone surrogate: no text mediumtext utf8mb4 holds
    clock = Clock()
    options: dict[str, Any] = {"schema": {"table_name": "t_any"}, "clear_expired": False}
    with MySQLStore(**db, **options, clock=clock) as blocking:
        blocking.length()
        assert_same(admin, Sync(blocking), clock, raw)


@pytest.mark.parametrize("name", NODE_STORES)
def test_node_reads_the_touched_session_with_the_expires_its_own_get_touch_leaves(
    node_stores: NodeStoreDriver, node: NodeOracle, admin: Any, db: dict[str, Any], name: str
) -> None:
    """The Node store writes a session; ours get_and_touch it; Node's get then express-
    session's touch (resetMaxAge) then the Node store's touch do the same to a twin."""
    table = f"t_{secrets.token_hex(6)}"
    ours = MySQLStore(**db, schema={"table_name": table}, clear_expired=False)
    ours.length()
    node_store = node_stores.open(name, **db, clearExpired=False, schema={"tableName": table})
    try:
        for life in NODE_LIFETIMES:
            cookie = node_cookie(life)
            one, two = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            for sid in (one, two):
                node_store.set(sid, json.dumps({"cookie": cookie, "n": 1}))
            written = stored(admin, table, one)
            assert written is not None and written[1] is not None
            sent = counted(ours)
            found = ours.get_and_touch(one)
            assert sent[0] == "get_and_touch"
            assert found == json.loads(node_store.get(one) or "null") == json.loads(written[1])
            node_store.touch(two, node_touched(node, node_store.get(two) or ""))
            mine, theirs = stored(admin, table, one), stored(admin, table, two)
            assert mine is not None and theirs is not None
            assert mine[1] == written[1]  # the bytes stay Node's
            assert abs(mine[0] - theirs[0]) <= 1
            assert mine[0] * 1000 > now_ms() + (life or 86_400_000) - 2000
    finally:
        node_store.close()
        ours.close()


def test_token_session_gets_and_touches_in_one_statement(admin: Any, db: dict[str, Any]) -> None:
    table = f"t_{secrets.token_hex(6)}"
    with MySQLStore(**db, schema={"table_name": table}, clear_expired=False) as store:
        tokens = TokenSession(store)
        first, created = (tokens.new_with_ttl({"user": name}, 60) for name in ("bob", "ada"))
        tokens.get_and_touch(first.sid)  # the store learns the lifetime its sessions get
        sent = counted(store)
        found = tokens.get_and_touch(created.sid)
        assert sent == ["get_and_touch"]
        assert found is not None and found["user"] == "ada"
        assert found["cookie"]["originalMaxAge"] == 60_000
        row = stored(admin, table, created.sid)
        assert row is not None and abs(row[0] * 1000 - (now_ms() + 60_000)) < 2000
