"""MySQL throughput, side by side in one run on one server: our MySQLStore (sequential), raw
PyMySQL sending express-mysql-session's statements, our AsyncMySQLStore and raw asyncmy (64 in
flight, a pool of 10 connections each, mysql2's default), and Node's express-mysql-session
3.0.3 (sequential and 64 in flight) through fixtures/node/bench-store.js; get, set, touch and
get+touch (and, with ``--one-step``, get+touch through ``get_and_touch``: one round trip).
The raw sides send the statements as text and compare ids as the collation does
(the stores' writes compare them exactly, a second condition on the key).

    python bench/bench_mysql.py [--url mysql://root@127.0.0.1:3306/test] [-n 3000] [--rounds 3]
                                [--one-step]

Each side works on a table of its own, dropped at the end. Absolute numbers drift with the
machine; the ratios printed at the end are what counts (goals: the sync store within 15% of
raw PyMySQL; the async store at 64 in flight at least as fast as Node at 64 in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy
import pymysql
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

from token_session.compat import dumps
from token_session.stores.mysql import AsyncMySQLStore, MySQLStore, MySQLStoreCore

POOL = 10


def connect_args(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or "test",
    }


class RawStatements:
    """The statements and values express-mysql-session 3.0.3 sends, for one table."""

    def __init__(self, table: str) -> None:
        self.core = MySQLStoreCore(schema={"table_name": table})
        self.create = self.core.create_sql
        self.get = f"SELECT data, expires FROM `{table}` WHERE session_id = %s"
        self.set = (
            f"INSERT INTO `{table}` (session_id, expires, data) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE expires = VALUES(expires), data = VALUES(data)"
        )
        self.touch = f"UPDATE `{table}` SET expires = %s WHERE session_id = %s"
        self.drop = f"DROP TABLE IF EXISTS `{table}`"

    def set_values(self, i: int) -> tuple[Any, ...]:
        made = session(i)  # anew each time, as on the other sides
        return (SIDS[i], self.core.expires_of(made), dumps(made))

    def touch_values(self, i: int) -> tuple[Any, ...]:
        return (self.core.expires_of(session(i)), SIDS[i])


def raw_ops(cursor: Any, sql: RawStatements) -> dict[str, Any]:
    """PyMySQL on one connection."""

    def get(i: int) -> None:
        cursor.execute(sql.get, (SIDS[i],))
        json.loads(cursor.fetchall()[0][0])

    def touch(i: int) -> None:
        cursor.execute(sql.touch, sql.touch_values(i))

    return {
        "get": get,
        "set": lambda i: cursor.execute(sql.set, sql.set_values(i)),
        "touch": touch,
        "get+touch": lambda i: (get(i), touch(i)),
    }


def async_raw_ops(pool: Any, sql: RawStatements) -> dict[str, Any]:
    """asyncmy over a pool of ``POOL`` connections (mysql2's default)."""

    async def execute(statement: str, values: tuple[Any, ...]) -> Any:
        async with pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(statement, values)
            return await cursor.fetchall()

    async def get(i: int) -> None:
        json.loads((await execute(sql.get, (SIDS[i],)))[0][0])

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


async def run(
    args: dict[str, Any], n: int, rounds: int, one_step: bool = False
) -> tuple[Table, Table]:
    tables = [f"bench_{side}_{secrets.token_hex(4)}" for side in ("py", "raw", "apy", "node")]
    store = MySQLStore(**args, schema={"table_name": tables[0]}, clear_expired=False)
    async_store = AsyncMySQLStore(
        **args, schema={"table_name": tables[2]}, clear_expired=False, connection_limit=POOL
    )
    sql = RawStatements(tables[1])
    connection = pymysql.connect(**args, autocommit=True, charset="utf8mb4")
    cursor = connection.cursor()
    cursor.execute(sql.create)
    pool = await asyncmy.create_pool(
        minsize=POOL, maxsize=POOL, autocommit=True, charset="utf8mb4", **args
    )
    raw = raw_ops(cursor, sql)
    for i, sid in enumerate(SIDS):
        store.set(sid, session(i))
        await async_store.set(sid, session(i))
        raw["set"](i)
    node_options = {**args, "schema": {"tableName": tables[3]}, "clearExpired": False}
    sides = [
        sequential("ours", n, store_ops(store)),
        sequential("raw", n, raw),
        node("node", "express-mysql-session-3", node_options, n),
        concurrent("ours@64", n * 2, async_store_ops(async_store)),
        concurrent("raw@64", n * 2, async_raw_ops(pool, sql)),
    ]
    if one_step:
        sides.insert(1, get_and_touch_only("1-step", sequential("1-step", n, one_step_ops(store))))
        at_64 = concurrent("1-step@64", n * 2, one_step_ops(async_store))
        sides.insert(5, get_and_touch_only("1-step@64", at_64))
    table = await compare(sides, rounds)
    for name in tables:
        cursor.execute(f"DROP TABLE IF EXISTS `{name}`")
    connection.close()
    pool.close()
    await pool.wait_closed()
    await async_store.close()
    store.close()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/test")
    parser.add_argument("-n", type=int, default=3000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument(
        "--one-step", action="store_true", help="get+touch through get_and_touch too"
    )
    options = parser.parse_args()
    table = asyncio.run(run(connect_args(options.url), options.n, options.rounds, options.one_step))
    report(
        f"MySQL, n={options.n} ({options.n * 2} at {IN_FLIGHT} in flight), "
        f"median of {options.rounds} rounds",
        table,
        ["ours/raw >= 0.85", "ours@64/node@64 >= 1", "ours@64/raw@64", "ours/node"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
