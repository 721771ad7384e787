"""PostgreSQL throughput, side by side in one run on one server: our PostgresStore
(sequential) and raw psycopg sending connect-pg-simple's statements on one connection; our
AsyncPostgresStore (its pipelined connections), raw psycopg over a psycopg_pool of 10 and
raw asyncpg over a pool of 10 (64 in flight each); Node's connect-pg-simple 10.0.0 (pg's
pool of 10, sequential and 64 in flight) through fixtures/node/bench-store.js; get, set,
touch and get+touch.

The columns ``1-step`` and ``1-step@64`` measure get+touch through the stores'
``get_and_touch`` (one statement, one round trip: the row read and its expiry restarted from
the session's ``originalMaxAge``), beside the get then touch of the other columns (NaN
elsewhere; ``--no-one-step`` leaves them out).

    python bench/bench_postgres.py [--url postgresql://postgres@127.0.0.1:5432/test] [-n 3000]

Each side works on a table of its own, dropped at the end. Absolute numbers drift with the
machine; the ratios printed at the end are what counts (goals: the sync store within 15%
of raw psycopg, and at least as fast as Node sequentially; the async store at 64 in flight
at least as fast as Node at 64 in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

import psycopg
from bench_redis import get_and_touch_only, one_step_ops
from harness import (
    IN_FLIGHT,
    SIDS,
    Table,
    async_store_ops,
    compare,
    concurrent,
    node,
    report,
    sequential,
    session,
    store_ops,
)
from psycopg_pool import AsyncConnectionPool

from token_session.compat import dumps
from token_session.stores.postgres import AsyncPostgresStore, PostgresStore
from token_session.stores.postgres.options import parse_options

POOL = 10


class RawStatements:
    """The statements and values connect-pg-simple 10.0.0 sends, for one table."""

    def __init__(self, table: str) -> None:
        fmt = parse_options({"table_name": table}).format
        self.create = fmt.create()
        self.fmt = fmt
        self.get = f'SELECT sess FROM "{table}" WHERE sid = %s AND expire >= to_timestamp(%s)'
        self.set = (
            f'INSERT INTO "{table}" (sess, expire, sid) SELECT %s, to_timestamp(%s), %s'
            " ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expire = excluded.expire"
        )
        self.touch = f'UPDATE "{table}" SET expire = to_timestamp(%s) WHERE sid = %s'

    def now(self) -> int:
        return int(self.fmt.now_params(self.fmt_clock())[0])

    @staticmethod
    def fmt_clock() -> int:
        from token_session.compat.cookie import now_ms

        return now_ms()

    def expire(self, made: dict[str, Any]) -> int:
        return self.fmt.set_expiry(made, self.fmt_clock()) // 1000

    def set_values(self, i: int) -> tuple[Any, ...]:
        made = session(i)  # anew each time, as on the other sides
        return (dumps(made), self.expire(made), SIDS[i])

    def touch_values(self, i: int) -> tuple[Any, ...]:
        return (self.expire(session(i)), SIDS[i])


def raw_ops(connection: psycopg.Connection[Any], sql: RawStatements) -> dict[str, Any]:
    """psycopg on one connection, its json loader parsing ``sess``."""
    cursor = connection.cursor()

    def get(i: int) -> None:
        cursor.execute(sql.get, (SIDS[i], sql.now()))
        assert cursor.fetchall()[0][0] is not None

    def touch(i: int) -> None:
        cursor.execute(sql.touch, sql.touch_values(i))

    return {
        "get": get,
        "set": lambda i: cursor.execute(sql.set, sql.set_values(i)),
        "touch": touch,
        "get+touch": lambda i: (get(i), touch(i)),
    }


def async_raw_ops(pool: AsyncConnectionPool[Any], sql: RawStatements) -> dict[str, Any]:
    """psycopg's asyncio connections from a psycopg_pool of ``POOL``."""

    async def execute(statement: str, values: tuple[Any, ...], fetch: bool = False) -> Any:
        async with pool.connection() as connection:
            cursor = await connection.execute(statement, values)
            return await cursor.fetchall() if fetch else None

    async def get(i: int) -> None:
        assert (await execute(sql.get, (SIDS[i], sql.now()), True))[0][0] is not None

    async def touch(i: int) -> None:
        await execute(sql.touch, sql.touch_values(i))

    async def get_touch(i: int) -> None:
        await get(i)
        await touch(i)

    return {
        "get": get,
        "set": lambda i: execute(sql.set, sql.set_values(i)),
        "touch": touch,
        "get+touch": get_touch,
    }


def asyncpg_ops(pool: Any, sql: RawStatements) -> dict[str, Any]:
    """asyncpg over a pool of ``POOL`` (its statements prepared and cached)."""
    get_sql = sql.get.replace("%s", "$1", 1).replace("%s", "$2::float8")
    set_sql = sql.set.replace("%s", "$1::json", 1).replace("%s", "$2::float8", 1)
    set_sql = set_sql.replace("%s", "$3")
    touch_sql = sql.touch.replace("%s", "$1::float8", 1).replace("%s", "$2")

    async def get(i: int) -> None:
        assert await pool.fetchval(get_sql, SIDS[i], sql.now()) is not None

    async def touch(i: int) -> None:
        await pool.execute(touch_sql, *sql.touch_values(i))

    async def get_touch(i: int) -> None:
        await get(i)
        await touch(i)

    return {
        "get": get,
        "set": lambda i: pool.execute(set_sql, *sql.set_values(i)),
        "touch": touch,
        "get+touch": get_touch,
    }


async def run(
    url: str, n: int, rounds: int, with_asyncpg: bool, one_step: bool = False
) -> tuple[Table, Table]:
    tables = [f"bench_{side}_{secrets.token_hex(4)}" for side in ("py", "raw", "apy", "node")]
    options = {"create_table_if_missing": True, "prune_session_interval": False}
    store = PostgresStore(conninfo=url, table_name=tables[0], **options)
    async_store = AsyncPostgresStore(conninfo=url, table_name=tables[2], **options)
    sql = RawStatements(tables[1])
    connection = psycopg.connect(url, autocommit=True)
    for statement in sql.create:
        connection.execute(statement)
    with PostgresStore(conninfo=url, table_name=tables[3], **options) as made:
        made.length()  # Node's table, made here: 10.0.0 names every table's key session_pkey
    pool = AsyncConnectionPool(
        url, min_size=POOL, max_size=POOL, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    raw = raw_ops(connection, sql)
    for i, sid in enumerate(SIDS):
        store.set(sid, session(i))
        await async_store.set(sid, session(i))
        raw["set"](i)
    node_options = {"conString": url, "tableName": tables[3], "pruneSessionInterval": False}
    sides = [
        sequential("ours", n, store_ops(store)),
        sequential("raw", n, raw),
        node("node", "connect-pg-simple-10", node_options, n, n * 2),
        concurrent("ours@64", n * 2, async_store_ops(async_store)),
        concurrent("raw@64", n * 2, async_raw_ops(pool, sql)),
    ]
    if one_step:
        seq = sequential("1-step", n, one_step_ops(store))
        sides.insert(1, get_and_touch_only("1-step", seq))
        at_64 = concurrent("1-step@64", n * 2, one_step_ops(async_store))
        sides.insert(5, get_and_touch_only("1-step@64", at_64))
    asyncpg_pool = None
    if with_asyncpg:
        import asyncpg

        asyncpg_pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
        sides.append(concurrent("asyncpg@64", n * 2, asyncpg_ops(asyncpg_pool, sql)))
    table = await compare(sides, rounds)
    for name in tables:
        connection.execute(f'DROP TABLE IF EXISTS "{name}"')
    connection.close()
    await pool.close()
    if asyncpg_pool is not None:
        await asyncpg_pool.close()
    await async_store.close()
    store.close()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("-n", type=int, default=3000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument("--asyncpg", action="store_true", help="asyncpg at 64 in flight too")
    parser.add_argument(
        "--one-step",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the 1-step columns: get+touch through get_and_touch",
    )
    options = parser.parse_args()
    table = asyncio.run(
        run(options.url, options.n, options.rounds, options.asyncpg, options.one_step)
    )
    ratios = ["ours/raw >= 0.85", "ours/node >= 1", "ours@64/node@64 >= 1", "ours@64/raw@64"]
    if options.one_step:
        ratios += ["1-step/node >= 1.3", "1-step@64/node@64 >= 1.3"]
    if options.asyncpg:
        ratios.append("ours@64/asyncpg@64")
    report(
        f"PostgreSQL, n={options.n} ({options.n * 2} at {IN_FLIGHT} in flight), "
        f"median of {options.rounds} rounds",
        table,
        ratios,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
