"""PostgresStore / AsyncPostgresStore row for row with the real connect-pg-simple 10.0.0 and
connect-session-knex 5.0.0 (pg 8.23.1, knex 3.3.0) driven through store-driver.js, and the
``token-session`` command on PostgreSQL.

The Node store and ours share one table per test: what one writes, the other reads, and
the rows each writes for the same session are compared as stored.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from token_session import AsyncTokenSession, TokenSession
from token_session.cli import main
from token_session.compat import Cookie, js_iso
from token_session.compat.cookie import from_ms, now_ms
from token_session.stores import from_url
from token_session.stores.base import encode_session
from token_session.stores.postgres import AsyncPostgresStore, PostgresStore
from token_session.stores.records import StoredSession, record_io

from .databases import scratch_database
from .node import NodeStore, NodeStoreDriver
from .strategies import plain_sessions

PG_SIMPLE = "connect-pg-simple-10"
KNEX = "connect-session-knex-5"


def open_node(
    node_stores: NodeStoreDriver, name: str, db_url: str, table: str, **options: Any
) -> NodeStore:
    """The Node store on ``table``. connect-pg-simple's table is made by ours first: its
    own DDL names the primary key session_pkey whatever the table, so only one table per
    schema could be made by Node (see test_a_second_session_table_in_one_schema)."""
    if name == PG_SIMPLE:
        if not options.get("createTableIfMissing"):
            with ours(db_url, name, table, create_table_if_missing=True) as store:
                store.length()
        return node_stores.open(name, conString=db_url, tableName=table, **options)
    return node_stores.open(name, connection=db_url, tableName=table, **options)


def ours(db_url: str, name: str, table: str, **options: Any) -> PostgresStore:
    if name == KNEX:
        options = {"format": "connect-session-knex", "cleanup_interval": 0, **options}
    else:
        options = {"prune_session_interval": False, **options}
    return PostgresStore(conninfo=db_url, table_name=table, **options)


@pytest.fixture(params=[PG_SIMPLE, KNEX])
def pair(
    request: pytest.FixtureRequest, node_stores: NodeStoreDriver, db_url: str, table: str
) -> Iterator[tuple[NodeStore, PostgresStore, str]]:
    """The Node store and ours on one table (Node made it), and the expiry column."""
    node = open_node(node_stores, request.param, db_url, table)
    node.set("made-by-node", encode_session({"cookie": {"maxAge": 0}}), shape="plain")
    with ours(db_url, request.param, table) as store:
        yield node, store, "expire" if request.param == PG_SIMPLE else "expired"
    node.close()


def rows(admin: Any, table: str, column: str) -> dict[str, tuple[str, float]]:
    """sid -> (sess as stored, expiry as epoch milliseconds: a timestamp read in UTC)."""
    zone = " AT TIME ZONE 'UTC'" if column == "expire" else ""
    return {
        sid: (text, at)
        for sid, text, at in admin.execute(
            f'SELECT sid, sess::text, extract(epoch from "{column}"{zone})::float8 * 1000'
            f' FROM "{table}"'
        ).fetchall()
    }


def express_session(expires_ms: int | None, **data: Any) -> dict[str, Any]:
    """A session as express-session hands it to a store (its Cookie's toJSON)."""
    if expires_ms is None:
        cookie = Cookie().to_json()
    else:
        cookie = Cookie(max_age=expires_ms - now_ms()).to_json()
        cookie["expires"] = js_iso(from_ms(expires_ms))
    return {"cookie": cookie, **data}


CASES: list[tuple[str, Any, bool]] = [
    # (name, session (None: a browser-session cookie), is the expiry fixed by the cookie)
    ("hour", lambda: express_session(now_ms() + 3_600_001, user={"id": 7, "é": "😀\u2028"}), True),
    ("half", lambda: express_session((now_ms() // 1000 + 90) * 1000 + 500, n=1.5, t=[]), True),
    ("browser", lambda: express_session(None, views=3), False),
]


@pytest.mark.parametrize(("case", "make", "fixed"), CASES, ids=[c[0] for c in CASES])
def test_python_writes_the_rows_node_writes(
    pair: tuple[NodeStore, PostgresStore, str],
    admin: Any,
    table: str,
    case: str,
    make: Any,
    fixed: bool,
) -> None:
    node, store, column = pair
    session = make()
    node.set("n", encode_session(session))  # as express-session hands it over
    store.set("p", session)
    stored = rows(admin, table, column)
    assert stored["p"][0] == stored["n"][0] == encode_session(session)  # byte for byte
    if fixed and column == "expired":
        # connect-session-knex writes now + cookie.maxAge, the getter's expires - Date.now()
        # read a moment before its own Date.now(): a millisecond late when the clock ticks
        assert 0 <= stored["n"][1] - stored["p"][1] <= 1
    elif fixed:
        assert stored["p"][1] == stored["n"][1]
    else:  # now + one day, from two clocks a moment apart
        assert abs(stored["p"][1] - stored["n"][1]) <= 1000
    # and each reads what the other wrote
    assert json.loads(node.get("p") or "null") == session
    assert store.get("n") == session


@given(session=plain_sessions)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_session_text_is_kept_byte_for_byte(
    pair: tuple[NodeStore, PostgresStore, str], admin: Any, table: str, session: dict[str, Any]
) -> None:
    """Lone surrogates, NUL and line separators, as JSON.stringify escapes them: the json
    column keeps the text Node writes and ours writes alike, and each reads the other's."""
    node, store, _ = pair
    sid = secrets.token_urlsafe(12)
    session = {**session, "cookie": {"maxAge": 0}}  # connect-session-knex needs one
    text = encode_session(session)
    node.set("n" + sid, text, shape="plain")
    store.set("p" + sid, session)
    stored = admin.execute(
        f'SELECT sess::text FROM "{table}" WHERE sid IN (%s, %s)', ("n" + sid, "p" + sid)
    ).fetchall()
    assert stored == [(text,), (text,)]
    assert encode_session(store.get("n" + sid) or {}) == text
    assert node.get("p" + sid) == text


def test_plain_sessions_as_token_session_hands_them_over(
    pair: tuple[NodeStore, PostgresStore, str], admin: Any, table: str
) -> None:
    node, store, column = pair
    cases = [
        {"cookie": {"maxAge": 0}, "u": "ada"},  # token-session's
        {"cookie": {"expires": js_iso(from_ms(now_ms() + 7_200_000))}, "u": 1},
        {"cookie": {"originalMaxAge": 60_000, "expires": js_iso(from_ms(now_ms() + 60_000))}},
    ]
    for i, session in enumerate(cases):
        node.set(f"n{i}", encode_session(session), shape="plain")
        store.set(f"p{i}", session)
    stored = rows(admin, table, column)
    for i, session in enumerate(cases):
        assert stored[f"p{i}"][0] == stored[f"n{i}"][0] == encode_session(session)
        ours_at, theirs_at = stored[f"p{i}"][1], stored[f"n{i}"][1]
        if column == "expire" or i == 0:
            assert abs(ours_at - theirs_at) <= 1000
        else:
            # a plain object has no maxAge getter: Node knex gives it one day whatever
            # cookie.expires says; ours writes cookie.expires, as an Express app does
            assert ours_at == from_iso(session["cookie"]["expires"])
            assert abs(theirs_at - (now_ms() + 86_400_000)) < 5000


def from_iso(text: str) -> int:
    from token_session.compat.jsdate import js_date_ms

    return int(js_date_ms(text))


def test_touch_and_destroy_across(
    pair: tuple[NodeStore, PostgresStore, str], admin: Any, table: str
) -> None:
    node, store, column = pair
    first = express_session(now_ms() + 60_000, n=1)
    node.set("a", encode_session(first))
    store.set("b", first)
    later = (now_ms() // 1000 + 7200) * 1000 + 123
    store.touch("a", express_session(later))  # Python touches Node's row
    node.touch("b", encode_session(express_session(later)))  # Node touches ours
    stored = rows(admin, table, column)
    expected = math.ceil(later / 1000) * 1000 if column == "expire" else later
    assert stored["a"] == (encode_session(first), expected)
    assert stored["b"] == (encode_session(first), expected)
    node.destroy("b")
    store.destroy("a")
    assert store.get("b") is None and node.get("a") is None


def test_expired_rows_read_the_same(
    pair: tuple[NodeStore, PostgresStore, str], admin: Any, table: str
) -> None:
    node, store, column = pair
    past = express_session(now_ms() - 5000, n=1)
    node.set("old", encode_session(past))
    assert node.get("old") is None and store.get("old") is None
    node.set("old2", encode_session(past))
    store.touch("old2", express_session(now_ms() + 60_000))
    node.touch("old", encode_session(express_session(now_ms() + 60_000)))
    # connect-pg-simple's touch is an UPDATE (alive again); knex's skips expired rows
    revived = column == "expire"
    assert (node.get("old2") is not None) == revived == (store.get("old") is not None)


def test_length_and_all(pair: tuple[NodeStore, PostgresStore, str], admin: Any, table: str) -> None:
    node, store, column = pair
    store.set("live", express_session(now_ms() + 60_000, n=1))
    node.set("dead", encode_session(express_session(now_ms() - 60_000, n=2)))
    assert sorted(store.ids()) == ["live", "made-by-node"] and store.length() == 2
    if column == "expired":
        assert node.call("length") == 3  # knex counts the expired row too; ours does not
        assert sorted(json.dumps(s) for s in json.loads(node.call("all"))) == sorted(
            json.dumps(s) for s in store.all().values()
        )


def test_the_time_zone_trap(
    node_stores: NodeStoreDriver,
    db_url: str,
    admin: Any,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Python process with PGTZ set (libpq honours it, node-postgres does not) still reads
    and writes the wall-clock times a Node app on the same server does."""
    node = open_node(node_stores, PG_SIMPLE, db_url, table)
    session = express_session((now_ms() // 1000 + 3 * 3600) * 1000, n=1)
    node.set("n", encode_session(session))
    monkeypatch.setenv("PGTZ", "America/New_York")
    with ours(db_url, PG_SIMPLE, table) as store:
        store.set("p", session)
        assert store.get("n") is not None
    stored = rows(admin, table, "expire")
    assert stored["p"] == stored["n"]
    # a Node connection in another TimeZone shifts every expiry: its row looks expired here
    ny = node_stores.open(
        PG_SIMPLE,
        conObject={"connectionString": db_url, "options": "-c TimeZone=America/New_York"},
        tableName=table,
    )
    ny.set("ny", encode_session(express_session(now_ms() + 3_600_000, n=2)))
    with ours(db_url, PG_SIMPLE, table) as store:
        assert store.get("ny") is None
        findings = {f.check: f for f in record_io(store).doctor()}
        assert findings["client time zone"].level == "warning"  # PGTZ, still set here
    ny.close()
    node.close()


def test_a_second_session_table_in_one_schema(node_stores: NodeStoreDriver, db_url: str) -> None:
    """connect-pg-simple 10.0.0's DDL names its constraint session_pkey whatever the table:
    a second table fails in Node, not here."""
    with scratch_database(db_url, "ts_pgtwo") as url:
        first = open_node(node_stores, PG_SIMPLE, url, "sessions_a", createTableIfMissing=True)
        first.set("a", encode_session({"n": 1}), shape="plain")
        second = open_node(node_stores, PG_SIMPLE, url, "sessions_b", createTableIfMissing=True)
        failed = second.call_answer("set", sid="a", session="{}", shape="plain")
        assert not failed["ok"] and "session_pkey" in failed["error"]
        with ours(url, PG_SIMPLE, "sessions_c", create_table_if_missing=True) as store:
            store.set("a", {"n": 3})
            assert store.get("a") == {"n": 3}
        first.close()
        second.close()


def test_knex_concurrent_first_writes(
    node_stores: NodeStoreDriver, db_url: str, table: str
) -> None:
    """Ours is an INSERT ... ON CONFLICT: concurrent first writes of one id all succeed."""
    node = open_node(node_stores, KNEX, db_url, table)  # the table
    with ours(db_url, KNEX, table, pool_size=8) as store:
        errors: list[BaseException] = []

        def write(i: int) -> None:
            try:
                store.set(f"sid{i % 5}", {"cookie": {"maxAge": 0}, "i": i})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and store.length() == 5
    node.close()


# --- token-session ----------------------------------------------------------------------


def test_token_session_both_ways(pair: tuple[NodeStore, PostgresStore, str]) -> None:
    node, store, _ = pair
    tokens = TokenSession(store)
    sid = node.token_session("new", data=json.dumps({"user": "ada", "n": [1, 2]}))["sessionId"]
    assert tokens.get(sid) == {"user": "ada", "n": [1, 2], "cookie": {"maxAge": 0}}
    created = tokens.new({"user": "bob", "é": "😀"})
    got = node.token_session("get", sid=created.sid)
    assert json.loads(got) == {"user": "bob", "é": "😀", "cookie": {"maxAge": 0}}
    tokens.set(sid, {"user": "ada", "n": 3})
    assert json.loads(node.token_session("getNtouch", sid=sid))["n"] == 3
    node.token_session("destroy", sid=created.sid)
    assert tokens.get(created.sid) is None


async def test_async_token_session_over_the_async_store(
    node_stores: NodeStoreDriver, db_url: str, table: str
) -> None:
    node = open_node(node_stores, PG_SIMPLE, db_url, table)
    async with AsyncPostgresStore(conninfo=db_url, table_name=table) as store:
        tokens = AsyncTokenSession(store)
        sid = node.token_session("new", data=json.dumps({"a": 1}))["sessionId"]
        assert await tokens.get(sid) == {"a": 1, "cookie": {"maxAge": 0}}
        created = await tokens.new({"b": 2})
        assert json.loads(node.token_session("get", sid=created.sid))["b"] == 2
    node.close()


# --- Node and Python writing the same ids at once ----------------------------------------


def check_after_hammer(admin: Any, table: str, sids: list[str]) -> None:
    for sid, (text, at) in rows(admin, table, "expire").items():
        assert sid in sids
        assert json.loads(text)["writer"] in ("node", "python")
        assert now_ms() - 5000 < at < now_ms() + 70_000


def python_session(n: int) -> dict[str, Any]:
    return {"writer": "python", "n": n, "cookie": {"expires": js_iso(from_ms(now_ms() + 60_000))}}


def test_node_and_python_on_the_same_ids(
    node_stores: NodeStoreDriver, db_url: str, admin: Any, table: str
) -> None:
    node = open_node(node_stores, PG_SIMPLE, db_url, table)
    node.set("h0", "{}", shape="plain")  # the table
    sids = [f"h{i}" for i in range(6)]
    stats: dict[str, Any] = {}
    hammer = threading.Thread(
        target=lambda: stats.update(node.call("hammer", sids=sids, ms=1200, inFlight=8))
    )
    errors: list[BaseException] = []
    count = [0]
    with ours(db_url, PG_SIMPLE, table, pool_size=4) as store:

        def python_side(n: int) -> None:
            try:
                while hammer.is_alive():
                    sid = sids[n % len(sids)]
                    [store.set, store.touch][n % 2](sid, python_session(n))
                    got = store.get(sid)
                    assert got is None or got["writer"] in ("node", "python")
                    if n % 7 == 0:
                        store.destroy(sid)
                    n += 1
                    count[0] += 1
            except BaseException as exc:
                errors.append(exc)

        hammer.start()
        workers = [threading.Thread(target=python_side, args=(i,)) for i in range(3)]
        for worker in workers:
            worker.start()
        for worker in (hammer, *workers):
            worker.join()
        assert errors == [] and stats["corrupt"] == [] and stats["set"] > 20 and count[0] > 50
        check_after_hammer(admin, table, sids)
    node.close()


async def test_node_and_async_python_on_the_same_ids(
    node_stores: NodeStoreDriver, db_url: str, admin: Any, table: str
) -> None:
    node = open_node(node_stores, PG_SIMPLE, db_url, table)
    node.set("h0", "{}", shape="plain")
    sids = [f"h{i}" for i in range(6)]
    loop = asyncio.get_running_loop()
    hammering = loop.run_in_executor(
        None, lambda: node.call("hammer", sids=sids, ms=1000, inFlight=8)
    )
    count = 0
    async with AsyncPostgresStore(conninfo=db_url, table_name=table) as store:

        async def python_side(n: int) -> None:
            nonlocal count
            while not hammering.done():
                sid = sids[n % len(sids)]
                await [store.set, store.touch][n % 2](sid, python_session(n))
                got = await store.get(sid)
                assert got is None or got["writer"] in ("node", "python")
                if n % 5 == 0:
                    await store.destroy(sid)
                n += 1
                count += 1

        await asyncio.gather(*(python_side(i) for i in range(16)))
        stats = await hammering
        assert stats["corrupt"] == [] and count > 100
        check_after_hammer(admin, table, sids)
    node.close()


# --- golden rows ------------------------------------------------------------------------


def test_golden_rows(node_stores: NodeStoreDriver, db_url: str, admin: Any) -> None:
    """One session with a fixed expiry, as both Node stores and ours write it."""
    session = {
        "cookie": {
            "originalMaxAge": 86_400_000,
            "expires": "2031-01-02T03:04:05.678Z",
            "httpOnly": True,
            "path": "/",
        },
        "user": {"id": 1, "name": "Zoë"},
        "n": [1e21, 1e-7, -0.0, 0.1],
        "s": "\u2028</script>\x00",
    }
    text = (
        '{"cookie":{"originalMaxAge":86400000,"expires":"2031-01-02T03:04:05.678Z",'
        '"httpOnly":true,"path":"/"},"user":{"id":1,"name":"Zoë"},"n":[1e+21,1e-7,0,0.1],'
        '"s":"\u2028</script>\\u0000"}'
    )
    assert encode_session(session) == text
    for name, column, wall in (
        (PG_SIMPLE, "expire", "2031-01-02 03:04:06"),
        (KNEX, "expired", "2031-01-02 03:04:05.678+00"),
    ):
        table = f"g_{secrets.token_hex(4)}"
        node = open_node(node_stores, name, db_url, table)
        node.set("node", text, shape="plain")
        with ours(db_url, name, table) as store:
            store.set("python", session)
        stored = admin.execute(
            f'SELECT sid, sess::text, "{column}"::text FROM "{table}" ORDER BY sid'
        ).fetchall()
        if name == KNEX:
            # a plain object: Node knex ignores cookie.expires and writes now + 1 day
            assert stored[1] == ("python", text, wall)
            assert stored[0][:2] == ("node", text)
        else:
            assert stored == [("node", text, wall), ("python", text, wall)]
        node.close()


# --- the command ----------------------------------------------------------------------


@pytest.fixture
def pg_urls(db_url: str, table: str) -> dict[str, str]:
    return {
        "pg": f"{db_url}?table_name={table}&create_table_if_missing=true&prune_session_interval=0",
        "knex": f"{db_url}?format=connect-session-knex&table_name={table}_k&cleanup_interval=0",
    }


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    status = main([*argv, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out)


@pytest.mark.parametrize("kind", ["pg", "knex"])
def test_cli_ls_get_rm_purge_and_doctor(
    kind: str, pg_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = pg_urls[kind]
    now = now_ms()
    records = [
        StoredSession(
            f"sid-{i:02d}", encode_session({"n": i, "name": "Zoë"}), now + (i + 2) * 60_000
        )
        for i in range(12)
    ]
    with from_url(url) as store:
        io = record_io(store)
        assert io.write(records).written == [r.sid for r in records]
        store.set("gone", {"cookie": {"expires": now - 60_000}})
    status, listing = run_json(capsys, "ls", "--store", url, "--limit", "5")
    assert status == 0 and len(listing["sessions"]) == 5 and listing["cursor"] == "sid-04"
    status, listing = run_json(capsys, "ls", "--store", url, "--all")
    assert [e["sid"] for e in listing["sessions"]] == [r.sid for r in records]
    for entry, record in zip(listing["sessions"], records, strict=True):
        assert abs(entry["ttl_ms"] - (record.expires_ms - now_ms())) < 2000  # type: ignore[operator]
    status, shown = run_json(capsys, "get", "sid-03", "--store", url)
    assert status == 0 and shown["session"] == {"n": 3, "name": "Zoë"}
    assert main(["get", "sid-03", "--store", url, "--raw"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["sess"] == records[3].text
    assert main(["rm", "sid-00", "--store", url]) == 0
    assert main(["rm", "sid-00", "--store", url]) == 1
    capsys.readouterr()
    status, doctor = run_json(capsys, "doctor", url)
    assert status == 0 or any(f["level"] == "info" for f in doctor["findings"])
    assert {f["check"] for f in doctor["findings"]} >= {"table", "primary key", "expiry index"}
    status, purged = run_json(capsys, "purge-expired", "--store", url)
    assert status == 0 and purged["purged"] == 1


def test_cli_doctor_on_a_missing_table(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, doctor = run_json(capsys, "doctor", f"{db_url}?table_name=nosuch")
    assert status == 1
    table = next(f for f in doctor["findings"] if f["check"] == "table")
    assert table["level"] == "error" and 'CREATE TABLE IF NOT EXISTS "nosuch"' in table["fix"]


def test_cli_migrate_redis_to_postgres_to_mysql(
    store_urls: dict[str, str],
    pg_urls: dict[str, str],
    node_stores: NodeStoreDriver,
    db_url: str,
    table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = now_ms()
    records = {
        f"m{i:03d}": StoredSession(
            f"m{i:03d}",
            encode_session(express_session(now + (i + 2) * 61_000, i=i)),
            now + (i + 2) * 61_000,
        )
        for i in range(200)
    }
    started = time.monotonic()
    with from_url(store_urls["redis"]) as redis_store:
        assert not record_io(redis_store).write(list(records.values())).failed
    status, summary = run_json(
        capsys, "migrate", "--from", store_urls["redis"], "--to", pg_urls["pg"]
    )
    assert status == 0 and summary["copied"] == 200, summary
    elapsed_ms = (time.monotonic() - started) * 1000
    status, summary = run_json(
        capsys, "migrate", "--from", pg_urls["pg"], "--to", store_urls["mysql"]
    )
    assert status == 0 and summary["copied"] == 200, summary
    with from_url(pg_urls["pg"]) as pg_store:
        found = {r.sid: r for r in record_io(pg_store).page(None, 1000).records}
    for sid, record in records.items():
        assert found[sid].text == record.text
        # Redis's expiry is the write's PX counted from when Redis ran it, read back as now +
        # PTTL: each off by at most the time the write and the hop took (a loaded machine
        # took 200 ms); connect-pg-simple's whole seconds round that up, maybe across a second
        assert record.expires_ms is not None and found[sid].expires_ms is not None
        low, high = (
            math.ceil((record.expires_ms + d) / 1000) * 1000
            for d in (-elapsed_ms - 50, elapsed_ms + 50)
        )
        assert low <= found[sid].expires_ms <= high
    node = open_node(node_stores, PG_SIMPLE, db_url, table)
    assert json.loads(node.get("m007") or "null") == json.loads(records["m007"].text)
    node.close()
    with from_url(store_urls["mysql"]) as mysql_store:
        assert mysql_store.length() == 200
    # and back from MySQL to a connect-session-knex table
    status, summary = run_json(
        capsys, "migrate", "--from", store_urls["mysql"], "--to", pg_urls["knex"]
    )
    assert status == 0 and summary["copied"] == 200
