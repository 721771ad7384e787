"""Redis throughput, side by side in one run on one Redis: our RedisStore (sequential), our
AsyncRedisStore (64 in flight), raw redis-py sending the same commands, and Node's
connect-redis 9.0.0 (sequential and 64 in flight), for get, set, touch and get+touch.

    python bench/bench_redis.py [--url redis://127.0.0.1:6379/0] [--parser hiredis|python]
                                [-n 5000]

Absolute numbers drift with the machine; the ratios printed at the end are what counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from token_session.compat import dumps, js_iso
from token_session.stores import AsyncRedisStore, RedisStore

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "fixtures" / "node"
OPS = ("get", "set", "touch", "get+touch")
SIDS = [f"bench-{i}" for i in range(1000)]
PREFIX = "bench:"


def session(i: int) -> dict[str, Any]:
    expires = js_iso(datetime.now(timezone.utc) + timedelta(hours=1))
    return {
        "cookie": {"originalMaxAge": 3600000, "expires": expires, "httpOnly": True, "path": "/"},
        "user": {"id": i, "name": f"user {i}", "roles": ["customer"]},
        "cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    }


def parser_options(parser: str, asyncio_client: bool) -> dict[str, Any]:
    if parser == "hiredis":
        return {}
    if asyncio_client:
        from redis._parsers import _AsyncRESP2Parser

        return {"parser_class": _AsyncRESP2Parser}
    from redis._parsers import _RESP2Parser

    return {"parser_class": _RESP2Parser}


def rate(n: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def sync_rates(client: redis.Redis, n: int) -> tuple[dict[str, float], dict[str, float]]:
    store = RedisStore(client, prefix=PREFIX)
    sessions = [session(i) for i in range(len(SIDS))]
    ttl = 3600

    def raw_op(name: str) -> Callable[[int], None]:
        def get(i: int) -> None:
            json.loads(client.execute_command("GET", PREFIX + SIDS[i]))

        def set_(i: int) -> None:
            client.execute_command("SET", PREFIX + SIDS[i], dumps(sessions[i]), "EX", ttl)

        def touch(i: int) -> None:
            client.execute_command("EXPIRE", PREFIX + SIDS[i], ttl)

        def get_touch(i: int) -> None:
            get(i)
            touch(i)

        return {"get": get, "set": set_, "touch": touch, "get+touch": get_touch}[name]

    def store_op(name: str) -> Callable[[int], None]:
        def get_touch(i: int) -> None:
            found = store.get(SIDS[i])
            assert found is not None
            store.touch(SIDS[i], found)

        return {
            "get": lambda i: store.get(SIDS[i]),
            "set": lambda i: store.set(SIDS[i], sessions[i]),
            "touch": lambda i: store.touch(SIDS[i], sessions[i]),
            "get+touch": get_touch,
        }[name]

    ours: dict[str, float] = {}
    raw: dict[str, float] = {}
    for name in OPS:
        for target, make in ((raw, raw_op), (ours, store_op)):
            op = make(name)
            target[name] = rate(n, lambda op=op: [op(i % len(SIDS)) for i in range(n)])
    return ours, raw


async def async_rates(
    url: str, parser: str, n: int, in_flight: int
) -> tuple[dict[str, float], dict[str, float]]:
    client = redis.asyncio.Redis.from_url(
        url, max_connections=in_flight, **parser_options(parser, True)
    )
    store = AsyncRedisStore(client, prefix=PREFIX)
    sessions = [session(i) for i in range(len(SIDS))]

    async def run(op: Callable[[int], Awaitable[Any]]) -> float:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                await op(i % len(SIDS))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return n / (time.perf_counter() - start)

    async def raw_get_touch(i: int) -> None:
        json.loads(await client.execute_command("GET", PREFIX + SIDS[i]))
        await client.execute_command("EXPIRE", PREFIX + SIDS[i], 3600)

    async def store_get_touch(i: int) -> None:
        found = await store.get(SIDS[i])
        assert found is not None
        await store.touch(SIDS[i], found)

    raw_ops = {
        "get": lambda i: client.execute_command("GET", PREFIX + SIDS[i]),
        "set": lambda i: client.execute_command(
            "SET", PREFIX + SIDS[i], dumps(sessions[i]), "EX", 3600
        ),
        "touch": lambda i: client.execute_command("EXPIRE", PREFIX + SIDS[i], 3600),
        "get+touch": raw_get_touch,
    }
    store_ops = {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": store_get_touch,
    }
    ours = {name: await run(store_ops[name]) for name in OPS}
    raw = {name: await run(raw_ops[name]) for name in OPS}
    await client.aclose()
    return ours, raw


def node_rates(url: str, n: int) -> dict[str, float]:
    config = {
        "store": "connect-redis-9",
        "options": {"url": url, "prefix": "bench-node:"},
        "ops": list(OPS),
        "n": n,
        "inFlight": [1, 64],
        "sids": len(SIDS),
    }
    out = subprocess.run(
        ["node", "bench-store.js", json.dumps(config)],
        cwd=NODE,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--parser", choices=("hiredis", "python"), default="hiredis")
    parser.add_argument("-n", type=int, default=5000, help="operations per measurement")
    args = parser.parse_args()
    if args.parser == "hiredis":
        from redis.utils import HIREDIS_AVAILABLE

        if not HIREDIS_AVAILABLE:
            sys.exit("hiredis is not installed: pip install hiredis, or use --parser python")

    client = redis.Redis.from_url(args.url, **parser_options(args.parser, False))
    store = RedisStore(client, prefix=PREFIX)
    for i, sid in enumerate(SIDS):
        store.set(sid, session(i))
    ours, raw = sync_rates(client, args.n)
    ours_async, raw_async = asyncio.run(async_rates(args.url, args.parser, args.n, 64))
    node = node_rates(args.url, args.n)
    store.clear()

    print(
        f"Redis ops/s, parser={args.parser}, n={args.n}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}Z"
    )
    head = (
        "op",
        "ours",
        "raw py",
        "node",
        "ours@64",
        "raw py@64",
        "node@64",
        "ours/raw",
        "@64/node@64",
        "ours/node",
    )
    print("".join(f"{h:>12}" for h in head))
    for name in OPS:
        row = (
            ours[name],
            raw[name],
            node[f"{name}@1"],
            ours_async[name],
            raw_async[name],
            node[f"{name}@64"],
        )
        ratios = (
            ours[name] / raw[name],
            ours_async[name] / node[f"{name}@64"],
            ours[name] / node[f"{name}@1"],
        )
        print(
            f"{name:>12}"
            + "".join(f"{v:>12,.0f}" for v in row)
            + "".join(f"{r:>12.2f}" for r in ratios)
        )
    print("goals: ours/raw >= 0.85, @64/node@64 >= 1.0, ours/node >= 1.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
