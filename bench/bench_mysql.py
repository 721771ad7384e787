"""MySQL throughput, side by side in one run on one server: our MySQLStore (sequential), raw
PyMySQL sending the same statements, our AsyncMySQLStore and raw asyncmy (64 in flight, a
pool of 10 connections each, mysql2's default), and Node's express-mysql-session 3.0.3
(sequential and 64 in flight) through fixtures/node/bench-store.js; get, set, touch and
get+touch.

    python bench/bench_mysql.py [--url mysql://root@127.0.0.1:3306/test] [-n 3000]

Each side works on a table of its own, dropped at the end. Absolute numbers drift with the
machine; the ratios printed at the end are what counts (goals: the sync store within 15% of
raw PyMySQL; the async store at 64 in flight at least as fast as Node at 64 in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy
import pymysql

from token_session.compat import dumps, js_iso
from token_session.stores.mysql import AsyncMySQLStore, MySQLStore, MySQLStoreCore

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "fixtures" / "node"
OPS = ("get", "set", "touch", "get+touch")
SIDS = [f"bench-{i}" for i in range(1000)]
IN_FLIGHT = 64
POOL = 10


def session(i: int) -> dict[str, Any]:
    expires = js_iso(datetime.now(timezone.utc) + timedelta(hours=1))
    return {
        "cookie": {"originalMaxAge": 3600000, "expires": expires, "httpOnly": True, "path": "/"},
        "user": {"id": i, "name": f"user {i}", "roles": ["customer"]},
        "cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    }


def connect_args(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or "test",
    }


def sync_rates(args: dict[str, Any], n: int, rounds: int) -> dict[str, dict[str, float]]:
    tables = {
        "ours": f"bench_py_{secrets.token_hex(4)}",
        "raw": f"bench_raw_{secrets.token_hex(4)}",
    }
    store = MySQLStore(**args, schema={"table_name": tables["ours"]}, clear_expired=False)
    # raw PyMySQL: one connection, the statements and values the store sends
    core = MySQLStoreCore(schema={"table_name": tables["raw"]})
    raw = pymysql.connect(**args, autocommit=True, charset="utf8mb4")
    cursor = raw.cursor()
    cursor.execute(core.create_sql)
    get_sql = f"SELECT data, expires FROM `{tables['raw']}` WHERE session_id = %s"
    set_sql = (
        f"INSERT INTO `{tables['raw']}` (session_id, expires, data) VALUES (%s, %s, %s)"
        " ON DUPLICATE KEY UPDATE expires = VALUES(expires), data = VALUES(data)"
    )
    touch_sql = f"UPDATE `{tables['raw']}` SET expires = %s WHERE session_id = %s"
    sessions = [session(i) for i in range(len(SIDS))]

    def raw_get(i: int) -> None:
        cursor.execute(get_sql, (SIDS[i],))
        data, _expires = cursor.fetchall()[0]
        json.loads(data)

    def raw_set(i: int) -> None:
        cursor.execute(set_sql, (SIDS[i], core.expires_of(sessions[i]), dumps(sessions[i])))

    def raw_touch(i: int) -> None:
        cursor.execute(touch_sql, (core.expires_of(sessions[i]), SIDS[i]))

    def store_get_touch(i: int) -> None:
        found = store.get(SIDS[i])
        assert found is not None
        store.touch(SIDS[i], found)

    raw_ops: dict[str, Callable[[int], Any]] = {
        "get": raw_get,
        "set": raw_set,
        "touch": raw_touch,
        "get+touch": lambda i: (raw_get(i), raw_touch(i)),
    }
    store_ops: dict[str, Callable[[int], Any]] = {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": store_get_touch,
    }
    for i in range(len(SIDS)):
        raw_set(i)
        store.set(SIDS[i], sessions[i])

    def measure(op: Callable[[int], Any]) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            op(i % len(SIDS))
        return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6

    measure(raw_ops["get"])  # warm-up, untimed
    measure(store_ops["get"])
    rates: dict[str, dict[str, float]] = {"ours": {}, "raw": {}, "ours cpu": {}, "raw cpu": {}}
    for name in OPS:
        # rounds interleaved, so drift hits both sides alike; the median of each side
        measured: dict[str, list[tuple[float, float]]] = {"raw": [], "ours": []}
        for _ in range(rounds):
            measured["raw"].append(measure(raw_ops[name]))
            measured["ours"].append(measure(store_ops[name]))
        for side, values in measured.items():
            rates[side][name] = statistics.median(rate for rate, _ in values)
            rates[side + " cpu"][name] = statistics.median(cpu for _, cpu in values)
    for table in tables.values():
        cursor.execute(f"DROP TABLE `{table}`")
    raw.close()
    store.close()
    return rates


async def async_rates(args: dict[str, Any], n: int, rounds: int) -> dict[str, dict[str, float]]:
    tables = {
        "ours": f"bench_apy_{secrets.token_hex(4)}",
        "raw": f"bench_araw_{secrets.token_hex(4)}",
    }
    store = AsyncMySQLStore(
        **args, schema={"table_name": tables["ours"]}, clear_expired=False, connection_limit=POOL
    )
    core = MySQLStoreCore(schema={"table_name": tables["raw"]})
    pool = await asyncmy.create_pool(
        minsize=POOL, maxsize=POOL, autocommit=True, charset="utf8mb4", **args
    )
    async with pool.acquire() as connection, connection.cursor() as cursor:
        await cursor.execute(core.create_sql)
    get_sql = f"SELECT data, expires FROM `{tables['raw']}` WHERE session_id = %s"
    set_sql = (
        f"INSERT INTO `{tables['raw']}` (session_id, expires, data) VALUES (%s, %s, %s)"
        " ON DUPLICATE KEY UPDATE expires = VALUES(expires), data = VALUES(data)"
    )
    touch_sql = f"UPDATE `{tables['raw']}` SET expires = %s WHERE session_id = %s"
    sessions = [session(i) for i in range(len(SIDS))]

    async def raw_get(i: int) -> None:
        async with pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(get_sql, (SIDS[i],))
            data, _expires = (await cursor.fetchall())[0]
        json.loads(data)

    async def raw_set(i: int) -> None:
        values = (SIDS[i], core.expires_of(sessions[i]), dumps(sessions[i]))
        async with pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(set_sql, values)

    async def raw_touch(i: int) -> None:
        async with pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(touch_sql, (core.expires_of(sessions[i]), SIDS[i]))

    async def raw_get_touch(i: int) -> None:
        await raw_get(i)
        await raw_touch(i)

    async def store_get_touch(i: int) -> None:
        found = await store.get(SIDS[i])
        assert found is not None
        await store.touch(SIDS[i], found)

    raw_ops: dict[str, Callable[[int], Awaitable[Any]]] = {
        "get": raw_get,
        "set": raw_set,
        "touch": raw_touch,
        "get+touch": raw_get_touch,
    }
    store_ops: dict[str, Callable[[int], Awaitable[Any]]] = {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": store_get_touch,
    }
    for i in range(len(SIDS)):
        await raw_set(i)
        await store.set(SIDS[i], sessions[i])

    async def measure(op: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                await op(i % len(SIDS))

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6

    await measure(raw_ops["get"])  # warm-up, untimed: both pools open all their connections
    await measure(store_ops["get"])
    rates: dict[str, dict[str, float]] = {"ours": {}, "raw": {}, "ours cpu": {}, "raw cpu": {}}
    for name in OPS:
        measured: dict[str, list[tuple[float, float]]] = {"raw": [], "ours": []}
        for _ in range(rounds):
            measured["raw"].append(await measure(raw_ops[name]))
            measured["ours"].append(await measure(store_ops[name]))
        for side, values in measured.items():
            rates[side][name] = statistics.median(rate for rate, _ in values)
            rates[side + " cpu"][name] = statistics.median(cpu for _, cpu in values)
    async with pool.acquire() as connection, connection.cursor() as cursor:
        for table in tables.values():
            await cursor.execute(f"DROP TABLE `{table}`")
    pool.close()
    await pool.wait_closed()
    await store.close()
    return rates


def node_rates(args: dict[str, Any], n: int) -> dict[str, float]:
    table = f"bench_node_{secrets.token_hex(4)}"
    config = {
        "store": "express-mysql-session-3",
        "options": {**args, "schema": {"tableName": table}, "clearExpired": False},
        "ops": list(OPS),
        "n": n,
        "inFlight": [1, IN_FLIGHT],
        "sids": len(SIDS),
    }
    result = subprocess.run(
        ["node", "bench-store.js", json.dumps(config)],
        cwd=NODE,
        capture_output=True,
        text=True,
        check=True,
    )
    rates: dict[str, float] = json.loads(result.stdout)
    connection = pymysql.connect(**args, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS `{table}`")
    connection.close()
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/test")
    parser.add_argument("-n", type=int, default=3000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    options = parser.parse_args()
    args = connect_args(options.url)

    sync = sync_rates(args, options.n, options.rounds)
    concurrent = asyncio.run(async_rates(args, options.n * 2, options.rounds))
    node = node_rates(args, options.n)

    rows = [
        ("raw PyMySQL, sequential", sync["raw"]),
        ("MySQLStore, sequential", sync["ours"]),
        ("express-mysql-session 3, sequential", {op: node[f"{op}@1"] for op in OPS}),
        (f"raw asyncmy, {IN_FLIGHT} in flight", concurrent["raw"]),
        (f"AsyncMySQLStore, {IN_FLIGHT} in flight", concurrent["ours"]),
        (
            f"express-mysql-session 3, {IN_FLIGHT} in flight",
            {op: node[f"{op}@{IN_FLIGHT}"] for op in OPS},
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'ops/s':<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for label, rates in rows:
        print(f"{label:<{width}}" + "".join(f"{rates[op]:>11,.0f}" for op in OPS))
    print()
    ratios = [
        ("MySQLStore / raw PyMySQL (goal >= 0.85)", sync["ours"], sync["raw"]),
        ("same, by client CPU per op (raw / ours)", sync["raw cpu"], sync["ours cpu"]),
        (
            "AsyncMySQLStore / express-mysql-session, 64 in flight (goal >= 1)",
            concurrent["ours"],
            {op: node[f"{op}@{IN_FLIGHT}"] for op in OPS},
        ),
        ("AsyncMySQLStore / raw asyncmy, 64 in flight", concurrent["ours"], concurrent["raw"]),
        (
            "MySQLStore / express-mysql-session, sequential",
            sync["ours"],
            {op: node[f"{op}@1"] for op in OPS},
        ),
    ]
    cpu_rows = [
        ("raw PyMySQL, sequential", sync["raw cpu"]),
        ("MySQLStore, sequential", sync["ours cpu"]),
        (f"raw asyncmy, {IN_FLIGHT} in flight", concurrent["raw cpu"]),
        (f"AsyncMySQLStore, {IN_FLIGHT} in flight", concurrent["ours cpu"]),
    ]
    width = max(len(label) for label, _ in cpu_rows)
    print(f"{'client CPU, us per op':<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for label, cpu in cpu_rows:
        print(f"{label:<{width}}" + "".join(f"{cpu[op]:>11.1f}" for op in OPS))
    print()
    width = max(len(label) for label, *_ in ratios)
    print(f"{'ratio':<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for label, ours, theirs in ratios:
        print(f"{label:<{width}}" + "".join(f"{ours[op] / theirs[op]:>11.2f}" for op in OPS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
