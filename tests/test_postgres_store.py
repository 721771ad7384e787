"""PostgresStore / AsyncPostgresStore: the pure format (SQL, expiry values) without I/O, and
the stores against the real PostgreSQL server.

Each run works in a database of its own (dropped at the end) and each test in tables of its
own. Interop with the real Node stores is in test_postgres_interop.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from token_session import BackendUnavailableError, InvalidArgumentError, SessionDecodeError
from token_session.compat import js_iso
from token_session.compat.cookie import from_ms, now_ms
from token_session.stores import async_from_url
from token_session.stores.postgres import (
    AsyncPostgresStore,
    ConnectPgSimple,
    ConnectSessionKnex,
    PostgresPool,
    PostgresStore,
)
from token_session.stores.postgres.core import PostgresCore
from token_session.stores.postgres.format import Statement, numbered
from token_session.stores.postgres.options import parse_options, split_url

from .conftest import NOW, Clock
from .databases import scratch_database

KNEX = {"format": "connect-session-knex"}


# --- fixtures --------------------------------------------------------------------------


def make(db_url: str, table: str, **options: Any) -> PostgresStore:
    options.setdefault(
        "create_table_if_missing" if "format" not in options else "create_table", True
    )
    if "format" not in options:
        options.setdefault("prune_session_interval", False)
    else:
        options.setdefault("cleanup_interval", 0)
    return PostgresStore(conninfo=db_url, table_name=table, **options)


def create_table(db_url: str, table: str, **options: Any) -> None:
    with make(db_url, table, **options) as s:
        s.length()  # the table is made on first use


@pytest.fixture
def store(db_url: str, table: str, clock: Clock) -> Iterator[PostgresStore]:
    with make(db_url, table, clock=clock) as s:
        yield s


@pytest.fixture
def knex_store(db_url: str, table: str, clock: Clock) -> Iterator[PostgresStore]:
    with make(db_url, table, clock=clock, **KNEX) as s:
        yield s


def rows(admin: Any, table: str, expire: str = "expire") -> dict[str, tuple[str, float]]:
    """sid -> (sess text, expiry as epoch seconds read in UTC)."""
    result = admin.execute(
        f'SELECT sid, sess::text, extract(epoch from "{expire}"'
        f'{" AT TIME ZONE $$UTC$$" if expire == "expire" else ""})::float8 FROM "{table}"'
    ).fetchall()
    return {sid: (text, at) for sid, text, at in result}


# --- the pure format -------------------------------------------------------------------


def pg_format(**options: Any) -> ConnectPgSimple:
    fmt = parse_options(options).format
    assert isinstance(fmt, ConnectPgSimple)
    return fmt


def test_connect_pg_simple_expiry_rounds_up_to_whole_seconds() -> None:
    fmt = pg_format()
    cookie = {"cookie": {"expires": js_iso(from_ms(NOW + 3_600_001))}}
    assert fmt.set_expiry(cookie, NOW) == NOW + 3_601_000  # Math.ceil(ms / 1000)
    assert fmt.set_expiry({"cookie": {"expires": NOW + 5000}}, NOW) == NOW + 5000
    assert fmt.set_expiry({"cookie": {"expires": 1.5}}, NOW) == 1000  # new Date(1.5) is 1 ms
    # now + (ttl || 86400), rounded up
    assert fmt.set_expiry({}, NOW + 1) == NOW + 86_401_000
    assert fmt.set_expiry({"cookie": {"maxAge": 5}}, NOW) == NOW + 86_400_000  # never read
    assert pg_format(ttl=60).set_expiry({}, NOW + 100) == NOW + 61_000
    assert pg_format(ttl=0).set_expiry({}, NOW) == NOW + 86_400_000  # 0 || 86400
    assert pg_format(ttl=1.5).set_expiry({}, NOW) == NOW + 2000
    for bad in ("garbage", math.inf, 9e15):
        with pytest.raises(InvalidArgumentError):
            fmt.set_expiry({"cookie": {"expires": bad}}, NOW)
    assert fmt.now_params(NOW + 1) == (str((NOW + 1000) // 1000), "UTC")
    assert fmt.is_live(NOW, NOW) and not fmt.is_live(NOW, NOW + 1)


def test_connect_session_knex_expiry_follows_the_cookie_as_express_hands_it() -> None:
    fmt = parse_options(KNEX).format
    assert isinstance(fmt, ConnectSessionKnex)
    at = NOW + 3_600_123
    assert fmt.set_expiry({"cookie": {"expires": js_iso(from_ms(at))}}, NOW) == at
    assert fmt.set_expiry({"cookie": {"maxAge": 0}}, NOW) == NOW + 86_400_000  # token-session
    assert fmt.set_expiry({"cookie": {"maxAge": 5000}}, NOW) == NOW + 5000
    assert fmt.set_expiry({"cookie": {"maxAge": -5000}}, NOW) == NOW - 5000
    assert fmt.set_expiry({}, NOW) == NOW + 86_400_000
    with pytest.raises(InvalidArgumentError):
        fmt.set_expiry({"cookie": {"maxAge": "garbage"}}, NOW)
    assert fmt.touch_expiry({"cookie": {"maxAge": 5000}}, NOW) is None  # nothing sent
    assert fmt.touch_expiry({"cookie": {"expires": js_iso(from_ms(at))}}, NOW) == at
    with pytest.raises(InvalidArgumentError):
        fmt.touch_expiry({"cookie": {"expires": "garbage"}}, NOW)
    assert fmt.now_params(NOW) == ("2023-11-14T22:13:20.000Z",)
    assert fmt.is_live(NOW, NOW) and not fmt.is_live(NOW, NOW + 1)


def test_the_statements() -> None:
    assert numbered("a = ? AND b = ? OR c = ?") == "a = $1 AND b = $2 OR c = $3"
    fmt = pg_format(table_name="web", schema_name="app")
    fmt.zone = "Etc/UTC"
    assert fmt.get("s", NOW) == Statement(
        'SELECT sess::text FROM "app"."web" WHERE "sid" = $1'
        ' AND "expire" >= (to_timestamp($2::float8) AT TIME ZONE $3)',
        ("s", str(NOW // 1000), "Etc/UTC"),
        True,
        True,  # prepared once per connection
    )
    assert fmt.touch("s", NOW + 1000, NOW).params == (str(NOW // 1000 + 1), "Etc/UTC", "s")
    assert fmt.set("s", "{}", NOW).sql.endswith(
        'ON CONFLICT ("sid") DO UPDATE SET sess = excluded.sess, "expire" = excluded."expire"'
    )
    put = fmt.put([("a", "{}", NOW), ("b", "[]", NOW + 1000)])
    assert put.sql.count("$") == 8 and len(put.params) == 8
    # the constraint and index named after the table (10.0.0's are fixed)
    create = " ".join(fmt.create())
    assert '"web_pkey"' in create and '"IDX_web_expire"' in create and '"app"."web"' in create
    knex = parse_options({**KNEX, "sid_field_name": "id"}).format
    assert knex.touch("s", NOW + 1, NOW) == Statement(
        'UPDATE "sessions" SET "expired" = $1::timestamptz WHERE "id" = $2'
        ' AND $3::timestamptz <= "expired"',
        ("2023-11-14T22:13:20.001Z", "s", "2023-11-14T22:13:20.000Z"),
        False,
        True,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"table_name": 'x"; DROP TABLE y; --'},
        {"table_name": "a.b"},
        {"schema_name": "1abc"},
        {"table_name": ""},
        {"ttl": "60"},
        {"ttl": math.nan},
        {"timeout": 0},
        {"pool_size": 0},
        {"format": "connect-mongo"},
        {"cleanup_interval": 5},  # knex's, not connect-pg-simple's
        {**KNEX, "ttl": 5},
        {**KNEX, "sid_field_name": "s id"},
        {"no_such_option": 1},
        {"disable_touch": "yes"},
    ],
)
def test_bad_options_are_refused_before_any_io(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        PostgresStore(conninfo="postgresql://nobody@127.0.0.1:1/none", **options)


def test_urls_carry_the_options() -> None:
    conninfo, options = split_url(
        "postgres://u:p@h:5433/db?sslmode=disable&table_name=web&ttl=60&disable_touch=true"
        "&prune_session_interval=false&timeout=1.5"
    )
    assert conninfo == "postgres://u:p@h:5433/db?sslmode=disable"
    assert options == {
        "table_name": "web",
        "ttl": 60.0,
        "disable_touch": True,
        "prune_session_interval": False,
        "timeout": 1.5,
    }
    assert split_url("postgresql://h/db?format=connect-session-knex&cleanup_interval=0")[1] == {
        "format": "connect-session-knex",
        "cleanup_interval": 0.0,
    }
    for bad in ("postgresql://h/db?ttl=abc", "postgresql://h/db?nosuchparam=1", "mysql://h/db"):
        with pytest.raises(InvalidArgumentError):
            PostgresStore.from_url(bad)


def test_flows_check_their_arguments_before_yielding() -> None:
    core = PostgresCore(parse_options({}))
    for bad in (None, 1, b"x", "", "a\x00b", "x" * 300, ["a"]):
        with pytest.raises(InvalidArgumentError):
            next(core.get(bad))
    with pytest.raises(InvalidArgumentError):
        next(core.set("a", {"cookie": {"expires": "garbage"}}))
    with pytest.raises(InvalidArgumentError):
        next(core.set("a", {"f": object()}))
    knex = PostgresCore(parse_options(KNEX))
    with pytest.raises(InvalidArgumentError):
        next(knex.get("x" * 256))


# --- the stores on the real server -----------------------------------------------------


def test_round_trip_and_the_row(store: PostgresStore, admin: Any, table: str, clock: Clock) -> None:
    clock.now = now_ms()
    expires = js_iso(from_ms(clock.now + 60_500))
    session = {"cookie": {"expires": expires}, "v": "Zoë\u2028😀"}
    store.set("a", session)
    assert store.get("a") == session
    text, at = rows(admin, table)["a"]
    assert text == '{"cookie":{"expires":"' + expires + '"},"v":"Zoë\u2028😀"}'
    assert at == math.ceil((clock.now + 60_500) / 1000)
    assert store.length() == 1 and store.ids() == ["a"] and store.all() == {"a": session}
    store.touch("a", {"cookie": {}})  # touch without cookie.expires: now + 1 day
    assert rows(admin, table)["a"] == (text, math.ceil(clock.now / 1000 + 86_400))
    store.destroy("a")
    assert store.get("a") is None and store.length() == 0


def test_a_read_only_mapping_is_written_as_the_dict_it_holds(
    store: PostgresStore, admin: Any, table: str
) -> None:
    store.set("a", MappingProxyType({"v": 1, "cookie": {"expires": NOW + 2000}}))
    text = '{"v":1,"cookie":{"expires":' + str(NOW + 2000) + "}}"
    assert rows(admin, table)["a"] == (text, (NOW + 2000) / 1000)
    store.touch("a", MappingProxyType({"cookie": {"expires": NOW + 9000}}))
    assert rows(admin, table)["a"] == (text, (NOW + 9000) / 1000)
    for not_a_mapping in (["v"], "v", None):
        with pytest.raises(InvalidArgumentError):
            store.set("b", not_a_mapping)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            store.touch("a", not_a_mapping)  # type: ignore[arg-type]
    assert rows(admin, table) == {"a": (text, (NOW + 9000) / 1000)}


def test_expiry_is_seen_as_connect_pg_simple_sees_it(store: PostgresStore, clock: Clock) -> None:
    store.set("a", {"cookie": {"expires": NOW + 2000}})
    clock.now = NOW + 2000
    assert store.get("a") is not None
    clock.now = NOW + 2001  # ceil(now) is past expire: dead from the start of that second
    assert store.get("a") is None and store.length() == 0 and store.all() == {}
    store.touch("a", {"cookie": {"expires": NOW + 9000}})  # an UPDATE: alive again
    assert store.get("a") == {"cookie": {"expires": NOW + 2000}}
    clock.now = NOW + 10_000
    assert store.prune_sessions() == 1


def test_disable_touch_sends_nothing(db_url: str, table: str, admin: Any) -> None:
    with make(db_url, table, disable_touch=True) as s:
        s.set("a", {"cookie": {"expires": now_ms() + 5000}})
        before = rows(admin, table)["a"]
        s.touch("a", {"cookie": {"expires": now_ms() + 900_000}})
        assert rows(admin, table)["a"] == before


def test_knex_table_round_trip(
    knex_store: PostgresStore, admin: Any, table: str, clock: Clock
) -> None:
    session = {"cookie": {"maxAge": 0}, "user": "ada"}
    knex_store.set("k", session)
    assert knex_store.get("k") == session
    assert rows(admin, table, "expired")["k"] == (
        '{"cookie":{"maxAge":0},"user":"ada"}',
        (NOW + 86_400_000) / 1000,
    )
    knex_store.touch("k", {"cookie": {"expires": NOW + 5000}})
    assert rows(admin, table, "expired")["k"][1] == (NOW + 5000) / 1000
    clock.now = NOW + 5001
    assert knex_store.get("k") is None and knex_store.length() == 0
    knex_store.touch("k", {"cookie": {"expires": NOW + 9000}})  # not on an expired row
    assert rows(admin, table, "expired")["k"][1] == (NOW + 5000) / 1000
    knex_store.clear()
    assert rows(admin, table, "expired") == {}


def test_corrupt_rows_are_reported_and_left(store: PostgresStore, admin: Any, table: str) -> None:
    store.set("x", {})
    far = "to_timestamp(4000000000)"
    for sid, text in (("arr", "[1]"), ("str", '"{\\"a\\":1}"'), ("nul", "null")):
        admin.execute(f'INSERT INTO "{table}" VALUES (%s, %s, {far})', (sid, text))
    for sid in ("arr", "str"):
        with pytest.raises(SessionDecodeError) as caught:
            store.get(sid)
        assert caught.value.sid == sid
    assert store.get("nul") is None  # JSON null: no session, as in Node
    assert sorted(store.all()) == ["x"]  # skipped, and logged
    assert sorted(rows(admin, table)) == ["arr", "nul", "str", "x"]  # all still there


def test_a_second_table_in_one_schema_works(db_url: str, admin: Any) -> None:
    names = [f"t_{secrets.token_hex(4)}" for _ in range(2)]
    for name in names:
        with make(db_url, name) as s:
            s.set("a", {"t": name})
            assert s.get("a") == {"t": name}
    with make(db_url, names[0]) as again:  # created already: nothing to do
        assert again.length() == 1


def test_stores_creating_one_table_at_once(db_url: str, table: str) -> None:
    stores = [make(db_url, table) for _ in range(6)]
    errors: list[BaseException] = []

    def first_use(store: PostgresStore) -> None:
        try:
            store.set(f"s{id(store)}", {})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and stores[0].length() == 6
    for store in stores:
        store.close()


def test_schema_name_and_missing_schema(db_url: str, admin: Any, table: str) -> None:
    schema = f"s_{secrets.token_hex(4)}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    with make(db_url, table, schema_name=schema) as s:
        s.set("a", {"n": 1})
        assert admin.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone() == (1,)
    with make(db_url, table, schema_name="nosuch_schema") as s, pytest.raises(psycopg.Error):
        s.set("a", {"n": 1})


def test_a_connection_or_pool_the_user_gives(db_url: str, table: str) -> None:
    from psycopg_pool import ConnectionPool

    create_table(db_url, table)
    with psycopg.connect(db_url) as connection:  # not autocommit: each statement commits itself
        with PostgresStore(connection, table_name=table, prune_session_interval=False) as s:
            s.set("a", {"n": 1})
            assert s.get("a") == {"n": 1}
        assert not connection.closed  # not the store's to close
    with (
        ConnectionPool(db_url, min_size=1, max_size=2, open=True) as pool,
        PostgresStore(pool, table_name=table, prune_session_interval=False) as s,
    ):
        assert s.get("a") == {"n": 1}
    with PostgresPool(db_url, size=2) as ours, PostgresStore(ours, table_name=table) as s:
        assert s.get("a") == {"n": 1}


def test_the_clean_up_thread(db_url: str, table: str, admin: Any) -> None:
    with make(
        db_url, table, prune_session_interval=0.2, prune_session_randomized_interval=False
    ) as s:
        s.set("old", {"cookie": {"expires": now_ms() - 5000}})
        s.set("new", {"n": 1})
        deadline = time.monotonic() + 5
        while "old" in rows(admin, table) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(rows(admin, table)) == ["new"]
        names = [t.name for t in threading.enumerate()]
        assert "token-session-postgres-pruner" in names
    time.sleep(0.1)
    assert "token-session-postgres-pruner" not in [t.name for t in threading.enumerate()]


def test_the_prune_delay_is_randomized_as_node_does() -> None:
    store = PostgresStore(conninfo="", prune_session_interval=10)
    delays = {store._prune_delay() for _ in range(200)}
    assert all(delay is not None and 5 <= delay <= 15 for delay in delays) and len(delays) > 50
    assert PostgresStore(conninfo="", prune_session_interval=0)._prune_delay() is None


# --- time zones ------------------------------------------------------------------------


def test_rows_agree_whatever_timezone_the_connection_runs_in(
    db_url: str, table: str, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """connect-pg-simple's timestamp holds wall-clock time in the server's default TimeZone
    (what node-postgres's connections get); a Python process with PGTZ still writes that."""
    at = (now_ms() // 1000 + 3600) * 1000
    with make(db_url, table) as plain:
        plain.set("utc", {"cookie": {"expires": at}})
    monkeypatch.setenv("PGTZ", "America/New_York")
    with make(db_url, table) as shifted:
        shifted.set("ny", {"cookie": {"expires": at}})
        assert shifted.get("utc") is not None and shifted.get("ny") is not None
        assert shifted.core.connection_zone == ("America/New_York", "client")
        assert shifted.format.zone == "Etc/UTC"
        from token_session.stores.records import record_io

        findings = {f.check: f for f in record_io(shifted).doctor()}
        assert findings["client time zone"].level == "warning"
    stored = rows(admin, table)
    assert stored["ny"][1] == stored["utc"][1] == at / 1000


def test_a_database_default_timezone_is_followed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        scratch_database(postgres_url, "ts_pgtz") as url,
        psycopg.connect(url, autocommit=True) as admin,
    ):
        name = urlsplit(url).path.lstrip("/")
        admin.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Tokyo'")
        monkeypatch.setenv("PGTZ", "America/New_York")
        with make(url, "s") as s:
            s.set("a", {"cookie": {"expires": NOW}})
            assert s.format.zone == "Asia/Tokyo"
            from token_session.stores.records import record_io

            findings = {f.check: f for f in record_io(s).doctor()}
            assert findings["time zone"].level == "warning"  # not UTC
        wall = admin.execute("SELECT expire::text FROM s").fetchone()
        assert wall == ("2023-11-15 07:13:20",)  # NOW in Tokyo


# --- failures --------------------------------------------------------------------------


class StallingProxy:
    """A TCP proxy to the server that can stop forwarding (a stalled server)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stalled = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while self.stalled.is_set():
                    time.sleep(0.01)
                sink.sendall(data)

    def url(self, db_url: str) -> str:
        parts = urlsplit(db_url)
        return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{self.port}"))

    def close(self) -> None:
        for sock in (self.listener, *self.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the forwarding threads
                sock.close()


@pytest.fixture
def proxy(db_url: str) -> Iterator[StallingProxy]:
    parts = urlsplit(db_url)
    p = StallingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield p
    p.close()


def test_a_stalled_server_gives_backend_unavailable_within_the_timeout(
    proxy: StallingProxy, db_url: str, table: str
) -> None:
    with make(proxy.url(db_url), table, timeout=1) as s:
        s.set("a", {"n": 1})
        proxy.stalled.set()
        start = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            s.get("a")
        assert time.monotonic() - start < 2.0  # a doubled timeout fails; a busy machine does not
        proxy.stalled.clear()
        assert s.get("a") == {"n": 1}  # a new connection


async def test_a_stalled_server_async(proxy: StallingProxy, db_url: str, table: str) -> None:
    create_table(db_url, table)
    async with AsyncPostgresStore.from_url(proxy.url(db_url), table_name=table, timeout=1) as s:
        await s.set("a", {"n": 1})
        proxy.stalled.set()
        start = time.monotonic()
        results = await asyncio.gather(*(s.get("a") for _ in range(20)), return_exceptions=True)
        assert all(isinstance(r, BackendUnavailableError) for r in results)
        assert time.monotonic() - start < 2.0  # a doubled timeout fails; a busy machine does not
        proxy.stalled.clear()
        assert await s.get("a") == {"n": 1}


def test_a_connection_cut_with_the_server_gone(
    proxy: StallingProxy, db_url: str, table: str
) -> None:
    with make(proxy.url(db_url), table, timeout=2) as s:
        s.set("a", {"n": 1})
        proxy.close()  # the connection cut, and nothing answers any more
        start = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            s.get("a")
        assert time.monotonic() - start < 2.5


async def test_a_connection_cut_with_the_server_gone_async(
    proxy: StallingProxy, db_url: str, table: str
) -> None:
    create_table(db_url, table)
    async with AsyncPostgresStore.from_url(proxy.url(db_url), table_name=table, timeout=2) as s:
        await s.set("a", {"n": 1})
        proxy.close()
        results = await asyncio.gather(*(s.get("a") for _ in range(10)), return_exceptions=True)
        assert all(isinstance(r, BackendUnavailableError) for r in results), results


def test_a_server_that_is_down(table: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    with PostgresStore.from_url(f"postgresql://postgres@127.0.0.1:{port}/test", timeout=2) as s:
        start = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            s.get("a")
        assert time.monotonic() - start < 2.5


async def test_a_server_that_is_down_async() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    async with async_from_url(f"postgresql://postgres@127.0.0.1:{port}/test") as s:
        with pytest.raises(BackendUnavailableError):
            await s.get("a")


def test_prepared_statements_deallocated_are_made_again(store: PostgresStore) -> None:
    store.set("a", {"n": 1})
    assert store.get("a") == {"n": 1}
    with psycopg.connect(store.conninfo) as other:
        other.execute("DEALLOCATE ALL")  # another session's: ours keep theirs
    connection, _ = store._source.acquire(time.monotonic() + 5)
    connection.pgconn.exec_(b"DEALLOCATE ALL")
    store._source.release(connection, broken=False)
    assert store.get("a") == {"n": 1}


async def test_async_prepared_statements_after_a_failing_parse(db_url: str, table: str) -> None:
    async with AsyncPostgresStore(conninfo=db_url, table_name=table) as s:  # no table yet
        results = await asyncio.gather(*(s.get("a") for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, psycopg.errors.UndefinedTable) for r in results)
        create_table(db_url, table)
        assert await asyncio.gather(*(s.get("a") for _ in range(5))) == [None] * 5


def test_a_connection_cut_while_idle_costs_no_error(store: PostgresStore, admin: Any) -> None:
    store.set("a", {"n": 1})
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    time.sleep(0.1)
    assert store.get("a") == {"n": 1}


async def test_async_connection_cut_while_idle_costs_no_error(
    db_url: str, table: str, admin: Any
) -> None:
    create_table(db_url, table)
    async with AsyncPostgresStore(conninfo=db_url, table_name=table) as s:
        await s.set("a", {"n": 1})
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await asyncio.sleep(0.1)
        assert await s.get("a") == {"n": 1}


# --- asyncio ---------------------------------------------------------------------------


@pytest.fixture
async def async_store(db_url: str, table: str) -> AsyncIterator[AsyncPostgresStore]:
    async with AsyncPostgresStore(
        conninfo=db_url,
        table_name=table,
        create_table_if_missing=True,
        prune_session_interval=False,
    ) as s:
        yield s


async def test_async_store_many_at_once(
    async_store: AsyncPostgresStore, admin: Any, table: str
) -> None:
    await asyncio.gather(*(async_store.set(f"s{i}", {"i": i}) for i in range(300)))
    got = await asyncio.gather(*(async_store.get(f"s{i}") for i in range(300)))
    assert got == [{"i": i} for i in range(300)]
    assert await async_store.length() == 300 and len(await async_store.ids()) == 300
    # a failing statement fails alone, its neighbours in the pipeline go on
    bad = [
        async_store.set(f"b{i}", {"cookie": {"expires": 1e20}} if i % 3 else {"i": i})
        for i in range(30)
    ]
    results = await asyncio.gather(*bad, return_exceptions=True)
    assert sum(isinstance(r, InvalidArgumentError) for r in results) == 20
    await async_store.touch("s1", {"cookie": {"expires": NOW}})
    assert await async_store.get("s1") is None
    await async_store.destroy("s2")
    assert len(await async_store.all()) == 298 + 10
    await async_store.clear()
    assert rows(admin, table) == {}


async def test_async_store_cancelled_calls_leave_the_pipe_in_order(
    async_store: AsyncPostgresStore,
) -> None:
    await async_store.set("a", {"n": 1})
    tasks = [asyncio.ensure_future(async_store.get("a")) for _ in range(50)]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(r == {"n": 1} for r in done[1::2])
    assert await async_store.get("a") == {"n": 1}


async def test_async_store_on_a_connection_or_pool_the_user_gives(db_url: str, table: str) -> None:
    from psycopg_pool import AsyncConnectionPool

    create_table(db_url, table)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as connection:
        async with AsyncPostgresStore(connection, table_name=table) as s:
            await asyncio.gather(*(s.set(f"a{i}", {"i": i}) for i in range(10)))
            assert await s.get("a3") == {"i": 3}
        await connection.execute("SELECT 1")  # handed back usable, out of pipeline mode
    async with (
        AsyncConnectionPool(db_url, min_size=1, max_size=3, open=False) as pool,
        AsyncPostgresStore(pool, table_name=table) as s,
    ):
        got = await asyncio.gather(*(s.get(f"a{i}") for i in range(10)))
        assert got == [{"i": i} for i in range(10)]


async def test_async_bad_input_before_any_io(async_store: AsyncPostgresStore) -> None:
    for bad in (None, 5, "", "a\x00"):
        with pytest.raises(InvalidArgumentError):
            await async_store.get(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await async_store.set("a", "not a dict")  # type: ignore[arg-type]
