"""MySQLStore / AsyncMySQLStore against the real MariaDB, on their own and row for row with
the real express-mysql-session 3.0.3 and 2.1.8 driven through store-driver.js.

Each run works in a database of its own (dropped at the end) and each test in tables of its
own, so runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from types import MappingProxyType
from typing import Any

import asyncmy
import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from token_session import (
    AsyncTokenSession,
    BackendUnavailableError,
    InvalidArgumentError,
    SessionDecodeError,
    TokenSession,
)
from token_session.compat import Cookie, js_iso
from token_session.compat.cookie import from_ms, now_ms
from token_session.stores import AsyncStore, Store, async_from_url, from_url
from token_session.stores.base import encode_session
from token_session.stores.mysql import (
    AsyncMySQLStore,
    MySQLPool,
    MySQLRecords,
    MySQLSchema,
    MySQLStore,
    MySQLStoreCore,
    js_round,
)
from token_session.stores.mysql.connections import (
    Driver,
    Failure,
    StaleConnectionError,
    on_connections,
)
from token_session.stores.records import StoredSession, every_record

from .conftest import NOW, Clock
from .databases import scratch_mysql_database
from .faults import TcpProxy
from .node import NodeStore, NodeStoreDriver
from .strategies import express_sessions, plain_sessions

NODE_STORES = ["express-mysql-session-3", "express-mysql-session-2"]
CLEANER = "token-session-mysql-cleaner"
Row = tuple[int, "str | None"]
hypothesis_settings = settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(mysql_url: str) -> Iterator[dict[str, Any]]:
    """Connect keywords (PyMySQL's, the store's and mysql2's alike) for this run's database."""
    with scratch_mysql_database(mysql_url, "ts_mysql") as args:
        yield args


@pytest.fixture(scope="module")
def admin(db: dict[str, Any]) -> Iterator[pymysql.connections.Connection[Any]]:
    connection = pymysql.connect(**db, autocommit=True)
    yield connection
    connection.close()


@pytest.fixture
def table() -> str:
    return f"t_{secrets.token_hex(6)}"


@pytest.fixture
def store(db: dict[str, Any], table: str, clock: Clock) -> Iterator[MySQLStore]:
    with MySQLStore(**db, schema={"table_name": table}, clear_expired=False, clock=clock) as s:
        yield s


@pytest.fixture
def live_store(db: dict[str, Any], table: str) -> Iterator[MySQLStore]:
    """A store on the real clock, for tests that compare with Node's Date.now()."""
    with MySQLStore(**db, schema={"table_name": table}, clear_expired=False) as s:
        yield s


@pytest.fixture
async def async_store(db: dict[str, Any], table: str) -> AsyncIterator[AsyncMySQLStore]:
    async with AsyncMySQLStore(**db, schema={"table_name": table}, clear_expired=False) as s:
        yield s


def open_node(
    node_stores: NodeStoreDriver, name: str, db: dict[str, Any], table: str, **options: Any
) -> NodeStore:
    options.setdefault("schema", {"tableName": table})
    return node_stores.open(name, **db, clearExpired=False, **options)


@pytest.fixture(params=NODE_STORES)
def node(
    request: pytest.FixtureRequest, node_stores: NodeStoreDriver, db: dict[str, Any], table: str
) -> Iterator[NodeStore]:
    """The Node store (each version) on a table of its own, next to ``table``."""
    opened = open_node(node_stores, request.param, db, table + "_node")
    yield opened
    opened.close()


def rows(admin: Any, table: str) -> dict[str, Row]:
    with admin.cursor() as cursor:
        cursor.execute(f"SELECT session_id, expires, data FROM `{table}`")
        return {sid: (expires, data) for sid, expires, data in cursor.fetchall()}


def put_row(admin: Any, table: str, sid: str, expires: int, data: str | None) -> None:
    with admin.cursor() as cursor:
        cursor.execute(f"REPLACE INTO `{table}` VALUES (%s, %s, %s)", (sid, expires, data))


def create_table(admin: Any, table: str) -> None:
    core = MySQLStoreCore(schema={"table_name": table})
    with admin.cursor() as cursor:
        cursor.execute(core.create_sql)


def show_create(admin: Any, table: str) -> str:
    with admin.cursor() as cursor:
        cursor.execute(f"SHOW CREATE TABLE `{table}`")
        text: str = cursor.fetchone()[1]
    return text.replace(f"`{table}`", "`T`")


def cookie_at(ms: int, **fields: Any) -> dict[str, Any]:
    """A cookie as express-session stores it, expiring at epoch ``ms``."""
    return {"originalMaxAge": 3_600_000, "expires": js_iso(from_ms(ms)), **fields}


def now_s() -> int:
    return js_round(now_ms() / 1000)


# --- the table and the values ----------------------------------------------------------


def test_table_is_the_one_node_creates(
    node_stores: NodeStoreDriver, db: dict[str, Any], admin: Any, table: str
) -> None:
    custom = {"session_id": "sid", "expires": "exp", "data": "payload"}
    for schema, node_schema in (
        ({"table_name": table}, {"tableName": table + "_n"}),
        (
            {"table_name": table + "_c", "column_names": custom},
            {"tableName": table + "_cn", "columnNames": custom},
        ),
    ):
        with MySQLStore(**db, schema=schema, clear_expired=False) as store:
            assert store.length() == 0  # the first operation creates the table
        ours = show_create(admin, schema["table_name"])
        assert "varchar(128)" in ours and "utf8mb4_bin" in ours and "int(11) unsigned" in ours
        for name in NODE_STORES:
            node = open_node(node_stores, name, db, "", schema=node_schema)
            node.close()
            assert show_create(admin, node_schema["tableName"]) == ours
            with admin.cursor() as cursor:
                cursor.execute(f"DROP TABLE `{node_schema['tableName']}`")


def test_set_get_destroy_round_trip(store: MySQLStore, admin: Any, table: str) -> None:
    assert isinstance(store, Store)
    store.set("a", {"user": "ada", "n": 1, "é": ["😀", None]})
    assert store.get("a") == {"user": "ada", "n": 1, "é": ["😀", None]}
    assert rows(admin, table) == {
        "a": ((NOW + 86_400_000) // 1000, '{"user":"ada","n":1,"é":["😀",null]}')
    }
    assert store.get("missing") is None
    store.destroy("a")
    store.destroy("a")
    assert store.get("a") is None
    assert rows(admin, table) == {}


@pytest.mark.parametrize(
    ("cookie", "expected_ms"),
    [
        (None, NOW + 86_400_000),
        ({"maxAge": 0}, NOW + 86_400_000),
        ({"expires": None, "originalMaxAge": None}, NOW + 86_400_000),
        (cookie_at(NOW + 5_000_499), NOW + 5_000_000),  # Math.round: .499 down
        (cookie_at(NOW + 5_000_500), NOW + 5_001_000),  # .5 up
        (cookie_at(NOW + 5_000_999), NOW + 5_001_000),
        ({"_expires": js_iso(from_ms(NOW + 7_000_600))}, NOW + 7_001_000),  # old Cookie field
        ({"expires": NOW + 9_000_500.9}, NOW + 9_001_000),  # new Date(number) truncates
        ({"expires": "Tue, 01 Jan 2030 00:00:00 GMT"}, 1_893_456_000_000),
    ],
)
def test_expires_is_rounded_seconds_of_cookie_expires_else_expiration(
    store: MySQLStore, admin: Any, table: str, cookie: Any, expected_ms: int
) -> None:
    session = {"n": 1} if cookie is None else {"n": 1, "cookie": cookie}
    store.set("a", session)
    assert rows(admin, table)["a"] == (expected_ms // 1000, encode_session(session))


def test_expiration_option_is_milliseconds(db: dict[str, Any], admin: Any, table: str) -> None:
    with MySQLStore(
        **db, schema={"table_name": table}, expiration=1500, clear_expired=False, clock=lambda: NOW
    ) as store:
        store.set("a", {})
    assert rows(admin, table)["a"][0] == js_round((NOW + 1500) / 1000)


def test_expired_row_reads_as_missing_and_is_kept(
    store: MySQLStore, admin: Any, table: str, clock: Clock
) -> None:
    store.set("a", {"cookie": cookie_at(NOW + 10_000)})
    store.set("b", {"cookie": cookie_at(NOW + 20_000)})
    clock.now = NOW + 10_499  # now rounds to the second of "a": still live (expires < now)
    assert store.get("a") is not None
    assert store.length() == 2
    clock.now = NOW + 10_500
    assert store.get("a") is None
    assert store.length() == 1
    assert store.ids() == ["b"]
    assert list(store.all()) == ["b"]
    assert set(rows(admin, table)) == {"a", "b"}  # nothing was deleted


def test_touch_rewrites_expires_only(store: MySQLStore, admin: Any, table: str) -> None:
    store.set("a", {"v": 1, "cookie": cookie_at(NOW + 1000)})
    store.touch("a", {"v": 2, "cookie": cookie_at(NOW + 60_000)})
    assert rows(admin, table)["a"] == ((NOW + 60_000) // 1000, encode_session(store.get("a")))
    assert store.get("a") == {"v": 1, "cookie": cookie_at(NOW + 1000)}
    store.touch("missing", {"cookie": cookie_at(NOW + 1000)})
    assert "missing" not in rows(admin, table)


def test_a_read_only_mapping_is_written_as_the_dict_it_holds(
    store: MySQLStore, admin: Any, table: str
) -> None:
    store.set("a", MappingProxyType({"v": 1, "cookie": cookie_at(NOW + 1000)}))
    data = encode_session({"v": 1, "cookie": cookie_at(NOW + 1000)})
    assert rows(admin, table)["a"] == ((NOW + 1000) // 1000, data)
    store.touch("a", MappingProxyType({"cookie": cookie_at(NOW + 60_000)}))
    assert rows(admin, table)["a"] == ((NOW + 60_000) // 1000, data)
    for not_a_mapping in (["v"], "v", None):
        with pytest.raises(InvalidArgumentError):
            store.touch("a", not_a_mapping)  # type: ignore[arg-type]
    assert rows(admin, table) == {"a": ((NOW + 60_000) // 1000, data)}


def test_disable_touch_sends_nothing(db: dict[str, Any], admin: Any, table: str) -> None:
    with MySQLStore(**db, schema={"table_name": table}, disable_touch=True) as store:
        store.set("a", {"cookie": cookie_at(NOW + 1000)})
        store.touch("a", {"cookie": cookie_at(NOW + 60_000)})
    assert rows(admin, table)["a"][0] == (NOW + 1000) // 1000


def test_clear_and_clear_expired_sessions(
    store: MySQLStore, admin: Any, table: str, clock: Clock
) -> None:
    for i in range(5):
        store.set(f"s{i}", {"cookie": cookie_at(NOW + i * 10_000)})
    clock.now = NOW + 20_000
    assert store.clear_expired_sessions() == 2  # s0 and s1; s2 expires exactly now
    assert set(rows(admin, table)) == {"s2", "s3", "s4"}
    store.clear()
    assert rows(admin, table) == {}


def test_all_skips_a_row_that_is_not_json(
    store: MySQLStore, admin: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.set("good", {"ok": True})
    put_row(admin, table, "bad", NOW // 1000 + 100, "{not json")
    put_row(admin, table, "null", NOW // 1000 + 100, None)
    with caplog.at_level(logging.WARNING, logger="token_session.stores.mysql"):
        assert store.all() == {"good": {"ok": True}}
    assert "'bad'" in caplog.text
    assert store.get("null") is None
    assert sorted(store.ids()) == ["bad", "good", "null"]


def test_a_row_that_is_not_json_raises_naming_the_sid_and_is_kept(
    store: MySQLStore, admin: Any, table: str
) -> None:
    store.set("x", {})
    put_row(admin, table, "bad", NOW // 1000 + 100, "{not json")
    with pytest.raises(SessionDecodeError) as caught:
        store.get("bad")
    assert caught.value.sid == "bad" and "'bad'" in str(caught.value)
    assert rows(admin, table)["bad"] == (NOW // 1000 + 100, "{not json")


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("sid", [None, 1, b"a", ["a"], {"a": 1}, "", "x" * 129, "a\ud800"])
def test_bad_sids_raise_before_any_io(store: MySQLStore, admin: Any, table: str, sid: Any) -> None:
    store.set("ok", {})
    for call in (
        lambda: store.get(sid),
        lambda: store.set(sid, {}),
        lambda: store.touch(sid, {}),
        lambda: store.destroy(sid),
    ):
        with pytest.raises(InvalidArgumentError):
            call()
    assert set(rows(admin, table)) == {"ok"}


def test_a_sid_of_128_characters_fits(store: MySQLStore) -> None:
    sid = "é" * 127 + "😀"
    store.set(sid, {"n": 1})
    assert store.get(sid) == {"n": 1}


def test_bad_sessions_raise_before_any_io(store: MySQLStore, admin: Any, table: str) -> None:
    assert store.length() == 0
    for session in (None, [], "x", {"d": datetime(2020, 1, 1)}, {"s": {1, 2}}):
        with pytest.raises(InvalidArgumentError):
            store.set("a", session)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        store.touch("a", None)  # type: ignore[arg-type]
    # Invalid Date: Node sends NaN and the server refuses; we refuse first
    for expires in ("garbage", float("inf"), 8.64e15 + 1, [1]):
        with pytest.raises(InvalidArgumentError, match="not a date"):
            store.set("a", {"cookie": {"expires": expires}})
    assert rows(admin, table) == {}


def test_an_expiry_the_column_refuses_is_an_invalid_argument(
    store: MySQLStore, admin: Any, table: str
) -> None:
    # int(11) unsigned: before 1970 or after 2106 the strict server refuses it, as for Node
    for at in ("1969-12-31T00:00:00.000Z", "2107-01-01T00:00:00.000Z"):
        with pytest.raises(InvalidArgumentError) as caught:
            store.set("a", {"cookie": {"expires": at}})
        assert isinstance(caught.value.__cause__, pymysql.err.DataError)
    assert rows(admin, table) == {}


@pytest.mark.parametrize(
    "schema",
    [
        {"table_name": "x`; DROP TABLE y; --"},
        {"table_name": "a b"},
        {"table_name": ""},
        {"table_name": "a.b.c"},
        {"table_name": "t" * 65},
        {"table_name": 7},
        {"table_name": "sessions\n"},
        {"column_names": {"data": "d`"}},
        {"column_names": {"data": "a.b"}},
        {"column_names": {"expires": "ex%s"}},
        {"column_names": {"id": "x"}},  # unknown column key, as Node rejects it
        {"tableName": "camel"},  # unknown schema key
        {"column_names": ["data"]},
        "sessions",
    ],
)
def test_hostile_or_unknown_schema_names_are_rejected(db: dict[str, Any], schema: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        MySQLStore(**db, schema=schema)
    with pytest.raises(InvalidArgumentError):
        AsyncMySQLStore(**db, schema=schema)


def test_schema_names_are_quoted_and_may_name_the_database(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    schema = MySQLSchema.parse({"table_name": f"{db['database']}.{table}"})
    assert schema.quoted().table_name == f"`{db['database']}`.`{table}`"
    other = {**db, "database": None}
    with MySQLStore(**other, schema={"table_name": f"{db['database']}.{table}"}) as store:
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}
    assert set(rows(admin, table)) == {"a"}


@pytest.mark.parametrize(
    "options",
    [
        {"expiration": "1000"},
        {"expiration": float("nan")},
        {"check_expiration_interval": 0},
        {"clear_expired": 1},
        {"disable_touch": "no"},
        {"connection_limit": 0},
        {"connection": "mysql://x"},
        {"clock": 5},
    ],
)
def test_bad_options_are_rejected(db: dict[str, Any], options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        MySQLStore(**{**db, **options})


def test_from_url(db: dict[str, Any], admin: Any, table: str) -> None:
    url = (
        f"mysql://{db['user']}:{db['password']}@{db['host']}:{db['port']}/{db['database']}"
        f"?table_name={table}&expiration=2000&clear_expired=false&connection_limit=2"
    )
    store = from_url(url)
    assert isinstance(store, MySQLStore)
    with store:
        store.set("a", {})
        assert store.core.expiration == 2000 and not store.core.clear_expired
    assert set(rows(admin, table)) == {"a"}
    assert isinstance(async_from_url(url), AsyncMySQLStore)
    for bad in (url + "&nope=1", url + "&expiration=soon", "mysql://h:port/db"):
        with pytest.raises(InvalidArgumentError):
            MySQLStore.from_url(bad)


# --- connections the user made ---------------------------------------------------------


def test_a_users_connection_is_shared_and_left_open(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    connection = pymysql.connect(**db)  # autocommit off: the store must commit
    store = MySQLStore(connection, schema={"table_name": table}, clear_expired=False)
    store.set("a", {"n": 1})
    assert set(rows(admin, table)) == {"a"}
    put_row(admin, table, "b", now_s() + 100, '{"n":2}')
    assert store.get("b") == {"n": 2}  # no stale snapshot either
    threads = [threading.Thread(target=store.set, args=(f"t{i}", {"i": i})) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.length() == 10
    store.close()
    assert connection.open
    connection.close()


def connections_to(admin: Any, database: str) -> int:
    """Connections to this run's database other than ``admin``."""
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = %s AND ID <> CONNECTION_ID()",
            (database,),
        )
        count: int = cursor.fetchone()[0]
    return count


def test_the_pool_opens_at_most_connection_limit(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    gc.collect()  # connections of stores gone but not closed end now, not mid-test
    before = connections_to(admin, db["database"])
    seen: list[int] = []
    with MySQLStore(**db, schema={"table_name": table}, connection_limit=2) as store:
        threads = [
            threading.Thread(target=lambda i=i: [store.set(f"s{i}-{j}", {}) for j in range(40)])
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            seen.append(connections_to(admin, db["database"]))
        for thread in threads:
            thread.join()
        assert store.length() == 8 * 40
    assert before < max(seen) <= before + 2


async def test_the_async_pool_opens_at_most_connection_limit(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    gc.collect()  # connections of stores gone but not closed end now, not mid-test
    before = connections_to(admin, db["database"])
    async with AsyncMySQLStore(**db, schema={"table_name": table}, connection_limit=3) as store:
        await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(100)))
        assert before < connections_to(admin, db["database"]) <= before + 3
        assert await store.length() == 100
    assert await await_for(lambda: connections_to(admin, db["database"]) <= before)
    with pytest.raises(BackendUnavailableError):
        await store.get("s1")  # its pool is closed


async def test_concurrent_first_operations_create_the_table_once(
    db: dict[str, Any], admin: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    def creates() -> int:
        with admin.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Com_create_table'")
            return int(cursor.fetchone()[1])

    before = creates()
    with caplog.at_level(logging.WARNING):
        async with AsyncMySQLStore(**db, schema={"table_name": table}) as store:
            await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(300)))
            assert await store.length() == 300
    # ten connections racing would each send CREATE TABLE IF NOT EXISTS, and asyncmy logs
    # the note the later ones get ("Table ... already exists") as a warning
    assert creates() - before == 1
    assert "already exists" not in caplog.text


def test_a_users_pool(db: dict[str, Any], table: str) -> None:
    pool = MySQLPool(connection_limit=2, **db)
    with MySQLStore(pool, schema={"table_name": table}, clear_expired=False) as store:
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}
    with MySQLStore(pool, schema={"table_name": table}, clear_expired=False) as store:
        assert store.get("a") == {"n": 1}  # the pool outlives the store that did not make it
    pool.close()


async def test_async_users_connection_and_pools(db: dict[str, Any], table: str) -> None:
    connect_args = {**db, "autocommit": True}
    connection = await asyncmy.connect(**connect_args)
    pool = await asyncmy.create_pool(minsize=1, maxsize=2, **connect_args)
    try:
        for i, given_connection in enumerate((connection, pool)):
            store = AsyncMySQLStore(given_connection, schema={"table_name": table})
            await store.set(f"s{i}", {"i": i})
            assert await store.get(f"s{i}") == {"i": i}
            assert await store.length() == i + 1
            await store.close()
        assert connection.connected
    finally:
        connection.close()
        pool.close()
        await pool.wait_closed()


# --- the clean-up ----------------------------------------------------------------------


def cleaners() -> int:
    return sum(thread.name == CLEANER for thread in threading.enumerate())


def wait_for(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


async def await_for(condition: Any, seconds: float = 10.0) -> bool:
    """:func:`wait_for` letting the loop run: the server ends closed connections when it
    gets to them, later on a busy machine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return bool(condition())


def test_cleanup_thread_deletes_only_expired_rows_and_stops_on_close(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    before = cleaners()
    store = MySQLStore(**db, schema={"table_name": table}, check_expiration_interval=50)
    assert cleaners() == before + 1
    store.set("live", {"cookie": cookie_at(now_ms() + 60_000)})
    put_row(admin, table, "old", now_s() - 5, "{}")
    put_row(admin, table, "edge", now_s() + 10, "{}")  # not expired yet: it stays
    assert wait_for(lambda: "old" not in rows(admin, table))
    assert set(rows(admin, table)) == {"live", "edge"}
    store.close()
    assert cleaners() == before
    put_row(admin, table, "old", now_s() - 5, "{}")
    time.sleep(0.2)
    assert "old" in rows(admin, table)  # nothing runs after close


def test_cleanup_thread_ends_with_a_store_never_closed(db: dict[str, Any], table: str) -> None:
    before = cleaners()
    store = MySQLStore(**db, schema={"table_name": table}, check_expiration_interval=60_000)
    assert cleaners() == before + 1
    del store
    gc.collect()
    assert wait_for(lambda: cleaners() == before, 2)


def test_cleanup_failures_are_logged_and_it_goes_on(
    db: dict[str, Any], admin: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="token_session.stores.mysql"):
        store = MySQLStore(**db, schema={"table_name": table}, check_expiration_interval=50)
        store.set("a", {})
        # once the thread has cleared, it has seen the table: it will not create it again
        assert wait_for(lambda: "expired sessions" in caplog.text)
        with admin.cursor() as cursor:
            cursor.execute(f"DROP TABLE `{table}`")
        assert wait_for(lambda: "clearing expired sessions failed" in caplog.text)
        create_table(admin, table)
        put_row(admin, table, "old", now_s() - 5, "{}")
        assert wait_for(lambda: rows(admin, table) == {})
        store.close()


async def test_cleanup_task_deletes_only_expired_rows_and_stops_on_close(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    def ours() -> list[asyncio.Task[Any]]:
        return [task for task in asyncio.all_tasks() if task.get_name() == CLEANER]

    store = AsyncMySQLStore(**db, schema={"table_name": table}, check_expiration_interval=50)
    assert ours() == []  # no loop work until the store is used
    await store.set("live", {"cookie": cookie_at(now_ms() + 60_000)})
    assert len(ours()) == 1
    put_row(admin, table, "old", now_s() - 5, "{}")
    put_row(admin, table, "edge", now_s() + 10, "{}")
    for _ in range(250):
        if "old" not in rows(admin, table):
            break
        await asyncio.sleep(0.02)
    assert set(rows(admin, table)) == {"live", "edge"}
    await store.close()
    assert ours() == []
    put_row(admin, table, "old", now_s() - 5, "{}")
    await asyncio.sleep(0.2)
    assert "old" in rows(admin, table)


# --- faults (more in test_faults_mysql.py) ---------------------------------------------


@pytest.fixture
def proxy(db: dict[str, Any]) -> Iterator[TcpProxy]:
    with TcpProxy(db["host"], db["port"]) as forwarder:
        yield forwarder


def test_server_outage_is_a_typed_error_and_the_same_store_recovers(
    db: dict[str, Any], table: str, proxy: TcpProxy
) -> None:
    with MySQLStore(
        **{**db, "port": proxy.port}, schema={"table_name": table}, connection_limit=3
    ) as store:
        store.set("a", {"n": 1})
        proxy.stop()
        for call in (lambda: store.get("a"), lambda: store.set("b", {}), store.length):
            with pytest.raises(BackendUnavailableError) as caught:
                call()
            assert isinstance(caught.value.__cause__, pymysql.err.OperationalError)
        with pytest.raises(InvalidArgumentError):
            store.get(5)  # type: ignore[arg-type]  # bad input is still reported as such
        proxy.start()
        assert store.get("a") == {"n": 1}
        store.set("b", {"n": 2})
        assert store.length() == 2


async def test_async_server_outage_is_a_typed_error_and_the_same_store_recovers(
    db: dict[str, Any], table: str, proxy: TcpProxy
) -> None:
    async with AsyncMySQLStore(
        **{**db, "port": proxy.port}, schema={"table_name": table}, connection_limit=3
    ) as store:
        await asyncio.gather(*(store.set(f"s{i}", {"n": i}) for i in range(6)))
        proxy.stop()
        for call in (lambda: store.get("s1"), lambda: store.set("b", {}), store.length):
            with pytest.raises(BackendUnavailableError) as caught:
                await call()
            assert isinstance(caught.value.__cause__, asyncmy.errors.OperationalError)
        proxy.start()
        assert await store.get("s1") == {"n": 1}
        assert await store.length() == 6


def test_nothing_listening_is_a_typed_error(db: dict[str, Any]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        store = MySQLStore(**{**db, "port": port}, connect_args={"connect_timeout": 2})
        with pytest.raises(BackendUnavailableError):
            store.get("a")
        store.close()


def kill_connections(admin: Any, database: str) -> int:
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
            (database,),
        )
        ids = [row[0] for row in cursor.fetchall()]
        for thread_id in ids:
            cursor.execute("KILL %s", (thread_id,))
    # KILL only marks them: wait until the server has ended them
    assert wait_for(lambda: not _alive(admin, ids), 10)
    return len(ids)


def _alive(admin: Any, ids: list[int]) -> bool:
    if not ids:
        return False
    with admin.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN %s", (ids,))
        count: int = cursor.fetchone()[0]
    return count > 0


def test_killed_connections_are_replaced_without_an_error(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    shared = pymysql.connect(**db, autocommit=True)
    with (
        MySQLStore(**db, schema={"table_name": table}, clear_expired=False) as pooled,
        MySQLStore(shared, schema={"table_name": table}, clear_expired=False) as single,
    ):
        pooled.set("a", {"n": 1})
        assert single.get("a") == {"n": 1}
        threads = [
            threading.Thread(target=lambda: [pooled.get("a") for _ in range(30)]) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()  # now several idle connections in the pool, all to be killed
        assert kill_connections(admin, db["database"]) >= 3
        assert pooled.get("a") == {"n": 1}
        assert single.get("a") == {"n": 1}
        assert kill_connections(admin, db["database"]) >= 2
        single.set("b", {"n": 2})
        pooled.touch("b", {})
        assert pooled.length() == 2
    shared.close()


async def test_async_killed_connections_are_replaced_without_an_error(
    db: dict[str, Any], admin: Any, async_store: AsyncMySQLStore, table: str
) -> None:
    shared = await asyncmy.connect(**db, autocommit=True)
    single = AsyncMySQLStore(shared, schema={"table_name": table}, clear_expired=False)
    await asyncio.gather(*(async_store.set(f"s{i}", {"n": i}) for i in range(5)))
    assert await single.get("s0") == {"n": 0}
    assert kill_connections(admin, db["database"]) >= 3
    assert await asyncio.gather(*(async_store.get(f"s{i}") for i in range(5))) == [
        {"n": i} for i in range(5)
    ]
    assert await single.get("s1") == {"n": 1}
    assert kill_connections(admin, db["database"]) >= 2
    await single.set("s9", {"n": 9})
    assert await async_store.length() == 6
    await single.close()
    assert shared.connected
    await shared.ensure_closed()


async def test_async_store_on_a_users_asyncmy_pool(
    db: dict[str, Any], admin: Any, table: str
) -> None:
    gc.collect()  # connections of stores gone but not closed end now, not mid-test
    before = connections_to(admin, db["database"])
    pool = await asyncmy.create_pool(minsize=0, maxsize=3, autocommit=True, **db)
    store = AsyncMySQLStore(pool, schema={"table_name": table}, clear_expired=False)
    session = {"n": 1, "cookie": cookie_at(now_ms() + 60_500)}
    await store.set("a", session)
    assert await store.get("a") == session
    later = now_ms() + 120_000  # one reading: two may straddle a half second
    await store.touch("a", {"cookie": cookie_at(later)})
    assert rows(admin, table)["a"] == (js_round(later / 1000), encode_session(session))
    await asyncio.gather(*(store.set(f"s{i}", {"n": i}) for i in range(5)))
    assert pool.size <= 3
    assert kill_connections(admin, db["database"]) >= 2  # the loop has not run since
    assert await asyncio.gather(*(store.get(f"s{i}") for i in range(5))) == [
        {"n": i} for i in range(5)
    ]
    assert kill_connections(admin, db["database"]) >= 2
    await asyncio.sleep(0.05)  # now the pool has seen its sockets closed
    assert await store.length() == 6
    await store.destroy("a")
    assert await store.get("a") is None
    await store.clear()
    assert rows(admin, table) == {}
    await store.close()  # the store did not make the pool: it stays open
    async with AsyncMySQLStore(pool, schema={"table_name": table}) as again:
        assert await again.length() == 0
    pool.close()
    await pool.wait_closed()
    assert await await_for(lambda: connections_to(admin, db["database"]) <= before)


# --- the async store -------------------------------------------------------------------


async def test_async_store_round_trip(async_store: AsyncMySQLStore, admin: Any, table: str) -> None:
    assert isinstance(async_store, AsyncStore)
    at = now_ms() + 60_500  # one reading: two may straddle a half second
    session = {"n": 1, "cookie": cookie_at(at)}
    await async_store.set("a", session)
    assert await async_store.get("a") == session
    assert rows(admin, table)["a"] == (js_round(at / 1000), encode_session(session))
    await async_store.touch("a", {"cookie": cookie_at(now_ms() + 120_000)})
    assert rows(admin, table)["a"][1] == encode_session(session)
    assert await async_store.length() == 1
    assert await async_store.ids() == ["a"]
    assert await async_store.all() == {"a": session}
    put_row(admin, table, "bad", now_s() + 100, "nope")
    with pytest.raises(SessionDecodeError):
        await async_store.get("bad")
    with pytest.raises(InvalidArgumentError):
        await async_store.set("x" * 129, {})
    await async_store.destroy("a")
    await async_store.clear()
    assert rows(admin, table) == {}


async def test_async_store_runs_many_at_once(async_store: AsyncMySQLStore) -> None:
    await asyncio.gather(*(async_store.set(f"s{i}", {"i": i}) for i in range(200)))
    got = await asyncio.gather(*(async_store.get(f"s{i}") for i in range(200)))
    assert got == [{"i": i} for i in range(200)]


# --- interop with the real express-mysql-session ----------------------------------------


@st.composite
def sessions_with_cookies(draw: st.DrawFn) -> dict[str, Any]:
    """Varied sessions, with the cookie shapes that decide ``expires`` in every form."""
    session: dict[str, Any] = draw(plain_sessions)
    # 2033 to 2096, often on the millisecond where Math.round turns
    fraction = draw(st.sampled_from([0, 1, 499, 500, 501, 999]) | st.integers(0, 999))
    at = draw(st.integers(2_000_000_000, 4_000_000_000)) * 1000 + fraction
    cookie = draw(
        st.sampled_from(
            [
                None,
                {"maxAge": 0},
                {},
                cookie_at(at),
                cookie_at(at, secure=False, httpOnly=True, path="/"),
                {"expires": at + 0.5},
                {"_expires": js_iso(from_ms(at))},
                {"expires": None, "_expires": js_iso(from_ms(at))},
            ]
        )
    )
    if cookie is not None:
        session["cookie"] = cookie
    return session


def has_fixed_expiry(session: dict[str, Any]) -> bool:
    cookie = session.get("cookie")
    return isinstance(cookie, dict) and bool(cookie.get("expires") or cookie.get("_expires"))


def assert_same_row(ours: Row, theirs: Row, exact: bool) -> None:
    assert ours[1] == theirs[1]
    if exact:
        assert ours[0] == theirs[0]
    else:  # now + expiration, read from two clocks a moment apart
        assert abs(ours[0] - theirs[0]) <= 1


@given(session=sessions_with_cookies())
@hypothesis_settings
def test_python_writes_the_rows_node_writes(
    live_store: MySQLStore, node: NodeStore, admin: Any, table: str, session: dict[str, Any]
) -> None:
    sid = secrets.token_urlsafe(24)
    text = encode_session(session)
    node.set(sid, text, shape="plain")
    live_store.set(sid, session)
    assert_same_row(
        rows(admin, table)[sid], rows(admin, table + "_node")[sid], has_fixed_expiry(session)
    )


@pytest.fixture
def on_node_table(db: dict[str, Any], table: str) -> Iterator[MySQLStore]:
    """Our store on the Node store's table."""
    with MySQLStore(**db, schema={"table_name": table + "_node"}, clear_expired=False) as s:
        yield s


@given(session=sessions_with_cookies())
@hypothesis_settings
def test_python_reads_what_node_writes(
    node: NodeStore, on_node_table: MySQLStore, session: dict[str, Any]
) -> None:
    sid = secrets.token_urlsafe(24)
    node.set(sid, encode_session(session), shape="plain")
    got = on_node_table.get(sid)
    assert got is not None
    assert encode_session(got) == encode_session(session)
    assert json.loads(node.get(sid) or "null") == json.loads(encode_session(got))


@given(session=express_sessions)
@hypothesis_settings
def test_express_sessions_give_the_same_rows(
    live_store: MySQLStore, node: NodeStore, admin: Any, table: str, session: dict[str, Any]
) -> None:
    sid = secrets.token_urlsafe(24)
    node.set(sid, encode_session(session))  # as express-session hands it to the store
    live_store.set(sid, session)
    assert rows(admin, table)[sid] == rows(admin, table + "_node")[sid]


def express_session(expires_ms: int | None, **data: Any) -> dict[str, Any]:
    """A session as express-session hands it to a store (its Cookie's toJSON)."""
    if expires_ms is None:
        cookie = Cookie().to_json()
    else:
        cookie = Cookie(max_age=expires_ms - now_ms()).to_json()
        cookie["expires"] = js_iso(from_ms(expires_ms))
    return {"cookie": cookie, **data}


def test_express_shaped_sessions_give_the_same_rows(
    live_store: MySQLStore, node: NodeStore, admin: Any, table: str
) -> None:
    cases = [
        express_session(now_ms() + 3_600_000, user={"id": 7, "roles": ["a"]}),
        express_session(now_ms() + 86_400_499, flash=[]),
        express_session(now_ms() + 500, n=1.5),
        express_session(None, views=3),  # a browser-session cookie: expiration applies
    ]
    for i, session in enumerate(cases):
        node.set(f"e{i}", encode_session(session))
        live_store.set(f"e{i}", session)
        ours, theirs = rows(admin, table)[f"e{i}"], rows(admin, table + "_node")[f"e{i}"]
        assert_same_row(ours, theirs, exact=session["cookie"]["expires"] is not None)


def test_touch_from_either_side_gives_the_same_expires(
    live_store: MySQLStore, node: NodeStore, db: dict[str, Any], admin: Any, table: str
) -> None:
    node_table = table + "_node"
    with MySQLStore(**db, schema={"table_name": node_table}, clear_expired=False) as on_node:
        whole = (now_ms() // 1000 + 90_000) * 1000
        for i, at in enumerate((whole + 499, whole + 500, None)):
            first = express_session(now_ms() + 1000, n=i)
            touched = express_session(at, n=-1)
            # the same set and touch on each side's copy of the row
            node.set(f"a{i}", encode_session(first))
            live_store.set(f"a{i}", first)
            node.touch(f"a{i}", encode_session(touched))
            live_store.touch(f"a{i}", touched)
            ours, theirs = rows(admin, table)[f"a{i}"], rows(admin, node_table)[f"a{i}"]
            assert_same_row(ours, theirs, exact=at is not None)
            assert ours[1] == encode_session(first)
            # Python touches the row Node wrote; Node still reads what it wrote
            later = now_ms() + 5_000_000
            on_node.touch(f"a{i}", express_session(later))
            assert rows(admin, node_table)[f"a{i}"] == (js_round(later / 1000), theirs[1])
            assert json.loads(node.get(f"a{i}") or "null") == first
            # and Node touches a row Python wrote
            on_node.set(f"p{i}", first)
            written = rows(admin, node_table)[f"p{i}"]
            node.touch(f"p{i}", encode_session(express_session(later + 1000)))
            assert rows(admin, node_table)[f"p{i}"] == (js_round((later + 1000) / 1000), written[1])
            assert on_node.get(f"p{i}") == first


def test_expired_and_invalid_are_read_the_same_by_both(
    live_store: MySQLStore, node: NodeStore, admin: Any, table: str
) -> None:
    past = {"cookie": cookie_at(now_ms() - 5000), "n": 1}
    node.set("past", encode_session(past), shape="plain")
    live_store.set("past", past)  # written by both, read as missing by both
    assert rows(admin, table)["past"] == rows(admin, table + "_node")["past"]
    assert node.get("past") is None and live_store.get("past") is None
    for expires in ("garbage", "1960-01-01T00:00:00.000Z"):
        session = encode_session({"cookie": {"expires": expires}})
        assert not node.driver.ask(
            "set", handle=node.handle, sid="x", session=session, shape="plain"
        )["ok"]
        with pytest.raises(InvalidArgumentError):
            live_store.set("x", json.loads(session))
    assert "x" not in rows(admin, table) and "x" not in rows(admin, table + "_node")
    put_row(admin, table + "_node", "bad", now_s() + 100, "{not json")
    assert not node.driver.ask("get", handle=node.handle, sid="bad")["ok"]  # Node throws too


def test_length_and_all_count_what_node_counts(
    node: NodeStore, admin: Any, db: dict[str, Any], table: str
) -> None:
    node_table = table + "_node"
    node.set("live", encode_session(express_session(now_ms() + 60_000, n=1)))
    for sid, expires in (("old", now_s() - 3), ("soon", now_s() + 30)):
        put_row(admin, node_table, sid, expires, encode_session({"sid": sid}))
    with MySQLStore(**db, schema={"table_name": node_table}, clear_expired=False) as ours:
        assert ours.length() == node.call("length") == 2
        assert json.loads(node.call("all")) == ours.all()
        assert sorted(ours.ids()) == ["live", "soon"]


@pytest.mark.parametrize("name", NODE_STORES)
def test_a_custom_schema_works_the_same_on_both_sides(
    node_stores: NodeStoreDriver, db: dict[str, Any], admin: Any, table: str, name: str
) -> None:
    columns = {"session_id": "sid", "expires": "exp_at", "data": "payload"}
    node = open_node(
        node_stores,
        name,
        db,
        table,
        schema={"tableName": table, "columnNames": columns},
    )
    try:
        with MySQLStore(
            **db, schema={"table_name": table, "column_names": columns}, clear_expired=False
        ) as ours:
            from_node = express_session(now_ms() + 60_000, n=1)
            node.set("from-node", encode_session(from_node))
            ours.set("from-py", express_session(now_ms() + 60_000, n=2))
            assert ours.get("from-node") == from_node
            assert json.loads(node.get("from-py") or "null") == ours.get("from-py")
            later = now_ms() + 7_000_000
            node.touch("from-py", encode_session(express_session(later)))
            ours.touch("from-node", express_session(later))
            with admin.cursor() as cursor:
                cursor.execute(f"SELECT sid, exp_at, payload FROM `{table}` ORDER BY sid")
                touched = cursor.fetchall()
            assert [(sid, at) for sid, at, _ in touched] == [
                ("from-node", js_round(later / 1000)),
                ("from-py", js_round(later / 1000)),
            ]
            assert touched[0][2] == encode_session(from_node)
            assert node.call("length") == ours.length() == 2
            # Node's all() reads row.session_id and row.data whatever the schema says, so
            # it finds {undefined: undefined}: nothing. Ours reads the configured columns.
            assert json.loads(node.call("all")) == {}
            assert sorted(ours.all()) == ["from-node", "from-py"]
    finally:
        node.close()


def test_node_2_ignores_disable_touch_and_3_honours_it(
    node_stores: NodeStoreDriver, db: dict[str, Any], admin: Any, table: str
) -> None:
    expires = {}
    for name in NODE_STORES:
        node = open_node(node_stores, name, db, f"{table}_{name[-1]}", disableTouch=True)
        node.set("a", encode_session(express_session(now_ms() + 1000)))
        node.touch("a", encode_session(express_session(now_ms() + 9_000_000)))
        expires[name] = rows(admin, f"{table}_{name[-1]}")["a"][0]
        node.close()
    assert expires["express-mysql-session-3"] < now_s() + 10
    assert expires["express-mysql-session-2"] > now_s() + 8000


# --- token-session over the store -------------------------------------------------------


def test_node_token_session_tokens_are_served_by_python_and_back(
    node: NodeStore, db: dict[str, Any], admin: Any, table: str
) -> None:
    node_table = table + "_node"
    with MySQLStore(**db, schema={"table_name": node_table}, clear_expired=False) as ours:
        tokens = TokenSession(ours)
        made = node.token_session("new", data=json.dumps({"user": "ada", "n": [1, 2]}))
        sid = made["sessionId"]
        assert tokens.get(sid) == {"user": "ada", "n": [1, 2], "cookie": {"maxAge": 0}}
        created = tokens.new({"user": "bob", "é": "😀"})
        # token-session's get of a MISSING id crashes Node over this store: only ask for ours
        got = node.token_session("get", sid=created.sid)
        assert json.loads(got) == {"user": "bob", "é": "😀", "cookie": {"maxAge": 0}}
        twin = tokens.new({"user": "ada", "n": [1, 2]})  # what Node's new stored, by Python
        assert_same_row(rows(admin, node_table)[twin.sid], rows(admin, node_table)[sid], False)
        tokens.set(sid, {"user": "ada", "n": 3})
        assert json.loads(node.token_session("getNtouch", sid=sid)) == {
            "user": "ada",
            "n": 3,
            "cookie": {"maxAge": 0},
        }
        with_ttl = tokens.new_with_ttl({"t": 1}, 120)
        assert json.loads(node.get(with_ttl.sid) or "null")["t"] == 1
        assert rows(admin, node_table)[with_ttl.sid][0] in range(now_s() + 119, now_s() + 122)
        node.token_session("destroy", sid=created.sid)
        assert tokens.get(created.sid) is None


async def test_async_token_session_over_the_async_store(
    node: NodeStore, db: dict[str, Any], table: str
) -> None:
    async with AsyncMySQLStore(**db, schema={"table_name": table + "_node"}) as ours:
        tokens = AsyncTokenSession(ours)
        sid = node.token_session("new", data=json.dumps({"a": 1}))["sessionId"]
        assert await tokens.get(sid) == {"a": 1, "cookie": {"maxAge": 0}}
        created = await tokens.new({"b": 2})
        assert json.loads(node.token_session("get", sid=created.sid))["b"] == 2


async def test_async_store_writes_the_rows_node_writes(
    async_store: AsyncMySQLStore, node: NodeStore, admin: Any, table: str
) -> None:
    cases = [
        {"cookie": cookie_at(now_ms() + 10_000_500), "x": "😀\u2028</script>"},
        {"cookie": {"expires": now_s() * 1000 + 10_000_500.9}, "n": [1e21, 1e-7, -0.0]},
        {"cookie": {"maxAge": 0}, "tok": True},
        {},
    ]
    for i, session in enumerate(cases):
        node.set(f"s{i}", encode_session(session), shape="plain")
        await async_store.set(f"s{i}", session)
        assert_same_row(
            rows(admin, table)[f"s{i}"],
            rows(admin, table + "_node")[f"s{i}"],
            has_fixed_expiry(session),
        )
        # one cookie for both: two readings of the clock may straddle a half second
        later = {"cookie": cookie_at(now_ms() + 5_000_500)}
        node.touch(f"s{i}", encode_session(later), shape="plain")
        await async_store.touch(f"s{i}", later)
        assert rows(admin, table)[f"s{i}"] == rows(admin, table + "_node")[f"s{i}"]


# --- Node and Python on the same rows at once ------------------------------------------


def check_rows_after_hammer(admin: Any, table: str, sids: list[str]) -> None:
    for sid, (expires, data) in rows(admin, table).items():
        assert sid in sids
        session = json.loads(data or "null")  # every row is whole JSON from one writer
        assert session["writer"] in ("node", "python"), session
        assert now_s() - 5 < expires < now_s() + 70


def test_node_and_python_on_the_same_ids(
    node_stores: NodeStoreDriver, db: dict[str, Any], admin: Any, table: str
) -> None:
    node = open_node(node_stores, "express-mysql-session-3", db, table, connectionLimit=8)
    sids = [f"h{i}" for i in range(6)]
    stats: dict[str, Any] = {}
    hammer = threading.Thread(
        target=lambda: stats.update(node.call("hammer", sids=sids, ms=1500, inFlight=8))
    )
    errors: list[BaseException] = []
    done = {"n": 0}
    with MySQLStore(**db, schema={"table_name": table}, connection_limit=4) as ours:

        def python_side(seed: int) -> None:
            n = seed
            try:
                while hammer.is_alive():
                    sid = sids[n % len(sids)]
                    session = {"writer": "python", "n": n, "cookie": cookie_at(now_ms() + 60_000)}
                    [ours.set, ours.touch][n % 2](sid, session)
                    got = ours.get(sid)
                    assert got is None or got["writer"] in ("node", "python")
                    if n % 7 == 0:
                        ours.destroy(sid)
                    n += 1
                    done["n"] += 1
            except BaseException as exc:
                errors.append(exc)

        hammer.start()
        time.sleep(0.05)
        workers = [threading.Thread(target=python_side, args=(i,)) for i in range(3)]
        for worker in workers:
            worker.start()
        for worker in (hammer, *workers):
            worker.join()
        assert errors == []
        assert stats["corrupt"] == [] and stats["set"] > 50 and done["n"] > 50
        check_rows_after_hammer(admin, table, sids)
        # last writer wins, and nothing else is lost
        node.set(
            "h0",
            encode_session({"writer": "node", "n": -1, "cookie": cookie_at(now_ms() + 60_000)}),
            shape="plain",
        )
        assert ours.get("h0")["n"] == -1  # type: ignore[index]
        ours.set("h0", {"writer": "python", "n": -2})
        assert json.loads(node.get("h0") or "null")["n"] == -2
    node.close()


async def test_node_and_async_python_on_the_same_ids(
    node_stores: NodeStoreDriver, db: dict[str, Any], admin: Any, table: str
) -> None:
    node = open_node(node_stores, "express-mysql-session-3", db, table)
    sids = [f"h{i}" for i in range(6)]
    loop = asyncio.get_running_loop()
    hammering = loop.run_in_executor(
        None, lambda: node.call("hammer", sids=sids, ms=1200, inFlight=8)
    )
    count = 0
    async with AsyncMySQLStore(**db, schema={"table_name": table}) as ours:

        async def python_side(seed: int) -> None:
            nonlocal count
            n = seed
            while not hammering.done():
                sid = sids[n % len(sids)]
                session = {"writer": "python", "n": n, "cookie": cookie_at(now_ms() + 60_000)}
                await [ours.set, ours.touch][n % 2](sid, session)
                got = await ours.get(sid)
                assert got is None or got["writer"] in ("node", "python")
                if n % 5 == 0:
                    await ours.destroy(sid)
                n += 1
                count += 1

        await asyncio.gather(*(python_side(i) for i in range(16)))
        stats = await hammering
        assert stats["corrupt"] == [] and count > 100
        check_rows_after_hammer(admin, table, sids)
    node.close()


# --- every option, every way (issue 14 §4) ---------------------------------------------

OPTION_TABLE = "options_t"
# (URL query, the same as keywords, what the store made of it)
OPTIONS: list[tuple[str, dict[str, Any], Any]] = [
    ("expiration=2000", {"expiration": 2000}, lambda s: s.core.expiration == 2000),
    (
        f"table_name={OPTION_TABLE}",
        {"schema": {"table_name": OPTION_TABLE}},
        lambda s: s.schema.table_name == OPTION_TABLE,
    ),
    ("connection_limit=2", {"connection_limit": 2}, lambda s: s._source.connection_limit == 2),
    ("clear_expired=false", {"clear_expired": False}, lambda s: not s.core.clear_expired),
    (
        "check_expiration_interval=5000",
        {"check_expiration_interval": 5000},
        lambda s: s.core.check_expiration_interval == 5000,
    ),
    (
        "create_database_table=false",
        {"create_database_table": False},
        lambda s: not s.core.create_database_table,
    ),
    ("disable_touch=true", {"disable_touch": True}, lambda s: s.core.disable_touch),
    (
        "end_connection_on_close=false",
        {"end_connection_on_close": False},
        lambda s: s.end_connection_on_close is False,
    ),
    (
        "connect_timeout=3",
        {"connect_args": {"connect_timeout": 3.0}},
        lambda s: s._source.connect_args["connect_timeout"] == 3.0,
    ),
    ("timeout=2.5", {"timeout": 2.5}, lambda s: s.timeout == 2.5),
]


@pytest.mark.parametrize("way", ["url", "from_url keywords", "constructor"])
@pytest.mark.parametrize(("query", "keywords", "took"), OPTIONS, ids=[o[0] for o in OPTIONS])
async def test_each_option_works_through_the_url_keywords_and_the_constructor(
    db: dict[str, Any], admin: Any, way: str, query: str, keywords: dict[str, Any], took: Any
) -> None:
    create_table(admin, OPTION_TABLE)  # there already, whatever create_database_table says
    url = f"mysql://{db['user']}:{db['password']}@{db['host']}:{db['port']}/{db['database']}"
    base = {"schema": {"table_name": OPTION_TABLE}, **keywords}
    sid = f"o{secrets.token_hex(4)}"
    for cls in (MySQLStore, AsyncMySQLStore):
        if way == "url":
            store = cls.from_url(f"{url}?table_name={OPTION_TABLE}&{query}")
        elif way == "from_url keywords":
            store = cls.from_url(url, **base)
        else:
            store = cls(**db, **base)
        assert took(store)
        session = {"n": 1, "cookie": cookie_at(now_ms() + 60_000)}
        if isinstance(store, MySQLStore):
            store.set(sid, session)
            assert store.get(sid) == session
            store.destroy(sid)
            store.close()
        else:
            await store.set(sid, session)
            assert await store.get(sid) == session
            await store.destroy(sid)
            await store.close()
        with pytest.raises(InvalidArgumentError):
            cls.from_url(f"{url}?{query.partition('=')[0]}=x!")  # and a bad value is refused


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", True])
def test_a_bad_timeout_is_refused(db: dict[str, Any], timeout: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        MySQLStore(**db, timeout=timeout)
    with pytest.raises(InvalidArgumentError):
        AsyncMySQLStore(**db, timeout=timeout)


# --- server refusals are typed (issue 14 §5) -------------------------------------------


async def call(store: MySQLStore | AsyncMySQLStore, name: str, *args: Any) -> Any:
    result = getattr(store, name)(*args)
    return await result if asyncio.iscoroutine(result) else result


@pytest.mark.parametrize("cls", [MySQLStore, AsyncMySQLStore])
async def test_server_refusals_are_typed_errors_that_say_what_to_do(
    db: dict[str, Any], admin: Any, table: str, cls: Any
) -> None:
    create_table(admin, table)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"database": "ts_no_such_database"}, BackendUnavailableError, "no such database"),
        ({"user": "ts_nobody", "password": "wrong"}, BackendUnavailableError, "refused the login"),
        (
            {"schema": {"table_name": "ts_missing"}, "create_database_table": False},
            BackendUnavailableError,
            "table does not exist",
        ),
        (
            {"schema": {"table_name": table, "column_names": {"data": "payload"}}},
            InvalidArgumentError,
            "configured columns",
        ),
    ]
    for options, error, says in cases:
        store = cls(**{"schema": {"table_name": table}, **db, **options}, clear_expired=False)
        with pytest.raises(error) as caught:
            await call(store, "get", "a")
        assert says in str(caught.value)
        assert isinstance(caught.value.__cause__, (pymysql.MySQLError, asyncmy.errors.MySQLError))
        await call(store, "close")


@pytest.mark.parametrize("cls", [MySQLStore, AsyncMySQLStore])
async def test_a_session_over_max_allowed_packet_is_refused_and_the_store_goes_on(
    db: dict[str, Any], admin: Any, table: str, cls: Any
) -> None:
    with admin.cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        limit: int = cursor.fetchone()[0]
    store = cls(**db, schema={"table_name": table}, clear_expired=False, connection_limit=1)
    await call(store, "set", "a", {"n": 1})
    with pytest.raises(InvalidArgumentError, match="max_allowed_packet") as caught:
        await call(store, "set", "big", {"x": "a" * limit})
    assert caught.value.__cause__ is not None
    assert await call(store, "get", "a") == {"n": 1}  # on the one connection, made again
    assert set(rows(admin, table)) == {"a"}
    await call(store, "close")


# --- ids compare exactly (issue 14 §8) -------------------------------------------------


@pytest.mark.parametrize("cls", [MySQLStore, AsyncMySQLStore])
async def test_an_id_with_trailing_spaces_never_names_another_session(
    db: dict[str, Any], admin: Any, table: str, cls: Any
) -> None:
    store = cls(**db, schema={"table_name": table}, clear_expired=False)
    session = {"n": 1, "cookie": cookie_at(now_ms() + 60_000)}
    await call(store, "set", "victim", session)
    before = rows(admin, table)
    assert await call(store, "get", "victim ") is None
    await call(store, "touch", "victim ", {"cookie": cookie_at(now_ms() + 9_000_000)})
    await call(store, "destroy", "victim  ")
    with pytest.raises(InvalidArgumentError, match="ends with a space"):
        await call(store, "set", "victim ", {"n": "hijacked"})
    assert rows(admin, table) == before
    assert await call(store, "get", "victim") == session
    await call(store, "close")


def test_a_row_whose_id_ends_with_a_space_is_read_only_by_that_id(
    store: MySQLStore, admin: Any, table: str
) -> None:
    # a Node app with its own genid may write such an id; the collation takes "spaced" for it
    create_table(admin, table)
    put_row(admin, table, "spaced ", now_s() + 600, '{"n":1}')
    assert store.get("spaced") is None
    assert store.get("spaced ") == {"n": 1}


def test_record_access_compares_ids_exactly_and_keeps_the_index(
    store: MySQLStore, admin: Any, table: str
) -> None:
    records = MySQLRecords(store)
    store.set("victim", {"n": 1})
    assert records.read("victim ") is None and records.raw("victim ") is None
    assert not records.delete("victim ")
    result = records.write([StoredSession("victim ", '{"n":2}', now_ms() + 60_000)])
    assert "victim " in result.failed and not result.written
    assert records.read("victim") is not None
    assert set(rows(admin, table)) == {"victim"}
    with admin.cursor() as cursor:  # the exact comparison is still a primary key lookup
        cursor.execute(f"EXPLAIN {store.core._get}", ("victim",))
        assert cursor.fetchone()[3] == "const"
        cursor.execute(
            f"EXPLAIN SELECT 1 FROM `{table}` WHERE {store.core.exact_sid}", ("victim", "victim")
        )
        plan = cursor.fetchone()
    assert plan[3] == "const" and plan[5] == "PRIMARY", plan


# --- one bad record never stops a whole-store operation (issue 14 §6) ------------------


def test_rows_that_are_not_sessions_are_skipped_by_all_and_listed_by_pages(
    store: MySQLStore, admin: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    create_table(admin, table)
    later = now_s() + 600
    for sid, data in [("a", '{"n":1}'), ("b", "{not json"), ("c", "[1]"), ("d", '{"n":4}')]:
        put_row(admin, table, sid, later, data)
    with caplog.at_level(logging.WARNING):
        assert store.all() == {"a": {"n": 1}, "d": {"n": 4}}
    assert "'b'" in caplog.text and "'c'" in caplog.text
    failed: dict[str, str] = {}
    listed = [r.sid for r in every_record(MySQLRecords(store), 2, failed)]
    assert listed == ["a", "d"] and set(failed) == {"b", "c"}
    assert all(failed.values())  # each with its reason
    for sid in ("b", "c"):
        with pytest.raises(SessionDecodeError, match=repr(sid)):
            store.get(sid)
    assert rows(admin, table)["b"] == (later, "{not json")  # left as it was


# --- the connection policy, a pure flow --------------------------------------------------


def plan(flow: Any, answers: dict[str, list[Any]]) -> tuple[list[str], Any]:
    """Carry out :func:`on_connections` with scripted answers; the requests it made, and
    what it returned or raised."""
    driver = Driver(pymysql.MySQLError, pymysql.InterfaceError, (pymysql.MySQLError,))
    steps = on_connections(flow, driver, 2.0)
    made: list[str] = []
    answer: Any = None
    try:
        while True:
            request = steps.send(answer)
            made.append(request[0] + (":broken" if request[0] == "release" and request[2] else ""))
            answer = answers[request[0]].pop(0) if answers.get(request[0]) else None
            if isinstance(answer, tuple) and answer and isinstance(answer[0], BaseException):
                answer = Failure(*answer)
    except StopIteration as done:
        return made, done.value
    except Exception as exc:
        return made, exc


def test_the_policy_runs_again_only_what_was_never_sent_or_only_reads() -> None:
    core = MySQLStoreCore(create_database_table=False)
    lost = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
    reused, fresh = ("c1", True), ("c2", False)
    # a read lost on a connection used before runs again on a new one
    made, result = plan(core.get("a"), {"acquire": [reused, fresh], "execute": [(lost,), []]})
    assert (
        made
        == ["acquire", "execute", "release:broken", "discard_idle", "acquire", "execute", "release"]
        and result is None
    )
    # a write lost the same way may have been applied: not sent again
    made, result = plan(core.set("a", {}), {"acquire": [reused], "execute": [(lost,)]})
    assert made == ["acquire", "execute", "release:broken"]
    assert isinstance(result, BackendUnavailableError) and result.__cause__ is lost
    # a write on a connection seen closed before sending runs again
    stale = StaleConnectionError("closed while idle")
    made, result = plan(core.set("a", {}), {"acquire": [reused, fresh], "execute": [(stale,), 1]})
    assert made[-2:] == ["execute", "release"] and result is None
    # a timeout is never run again, read or write, and breaks the connection
    for flow in (core.get("a"), core.set("a", {})):
        made, result = plan(flow, {"acquire": [reused], "execute": [(lost, True)]})
        assert made == ["acquire", "execute", "release:broken"]
        assert isinstance(result, BackendUnavailableError) and "timeout (2 s)" in str(result)
    # no connection in time: nothing to release
    made, result = plan(core.get("a"), {"acquire": [(TimeoutError(), True)]})
    assert made == ["acquire"] and isinstance(result, BackendUnavailableError)


# --- what an operation costs: no socket timeouts, one timer per store -----------------


def test_sockets_have_no_timeout_and_a_write_always_polls_for_a_hang_up(
    db: dict[str, Any], table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from token_session.stores.mysql import pool

    polled: list[int] = []

    def hung_up(fd: int) -> bool:
        polled.append(fd)
        return False

    monkeypatch.setattr(pool, "hung_up", hung_up)
    with MySQLStore(**db, schema={"table_name": table}, clear_expired=False, timeout=3) as store:
        store.set("a", {"n": 1})
        connection: Any = store._source._slots.idle[0]  # type: ignore[attr-defined]
        polled.clear()
        for _ in range(20):
            assert store.get("a") == {"n": 1}
            store.touch("a", {})
        # the watchdog bounds statements: CPython polls a socket with a timeout before
        # each read and write
        assert connection._sock.gettimeout() is None
        assert len(polled) == 20  # before each write, not before reads just after a use
        time.sleep(pool.RECENT * 2)
        store.get("a")
        assert len(polled) == 21  # a read after an idle spell polls too


def test_a_socket_timeout_is_the_operations_timeout() -> None:
    from token_session.stores.mysql.connections import Deadline

    deadline = Deadline(60)
    try:
        try:
            raise TimeoutError("timed out")
        except OSError:
            raise pymysql.err.OperationalError(2013, "Lost connection") from None
    except pymysql.err.OperationalError as exc:
        lost = exc
    assert deadline.failure(lost).timed_out
    assert not deadline.failure(pymysql.err.OperationalError(2013, "Lost connection")).timed_out


async def test_one_timer_rings_each_operation_in_its_turn_and_spares_those_over() -> None:
    from token_session.stores.mysql.aio import _Alarms

    alarms = _Alarms(asyncio.get_running_loop(), 0.1)
    outcomes: dict[int, str] = {}

    async def operation(i: int, lasts: float) -> None:
        alarm = alarms.start()
        try:
            await asyncio.sleep(lasts)
            outcomes[i] = "done"
        except asyncio.CancelledError as exc:
            failure = alarm.failure(exc, None)  # type: ignore[arg-type]
            outcomes[i] = "timed out" if failure.timed_out else "cancelled"
        finally:
            alarms.stop(alarm)

    started = time.monotonic()
    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(operation(i, 0.02 if i % 2 else 1.0)))
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    assert outcomes == {i: "done" if i % 2 else "timed out" for i in range(6)}
    assert time.monotonic() - started < 0.5
    assert not alarms.queue and alarms.timer is None


def test_the_watchdog_stops_the_statement_still_running_at_its_deadline() -> None:
    from token_session.stores.mysql.connections import Deadline
    from token_session.stores.mysql.watchdog import Watchdog

    class Busy:
        def __init__(self, sock: socket.socket) -> None:
            self._sock = sock

    stalled, server = socket.socketpair()
    done, other = socket.socketpair()
    watchdog = Watchdog(0.2)
    first, second = Deadline(0.2), Deadline(0.2)
    watchdog.watch(first)
    watchdog.watch(second)
    first.busy, second.busy = Busy(stalled), Busy(done)
    second.busy = None  # its statement over: its connection may be someone else's now
    watchdog.over(second)
    started = time.monotonic()
    assert stalled.recv(1) == b""  # the blocked read returns once the socket is shut down
    assert 0.15 <= time.monotonic() - started < 1.5
    watchdog.over(first)
    other.sendall(b"x")
    assert done.recv(1) == b"x"  # untouched
    assert wait_for(lambda: watchdog._thread is None, 3)  # a timeout with nothing to watch
    third = Deadline(0.2)
    watchdog.watch(third)
    assert watchdog._thread is not None  # started again
    watchdog.over(third)
    watchdog.close()
    for sock in (stalled, server, done, other):
        sock.close()
