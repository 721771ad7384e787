"""Redis throughput, side by side in one run on one Redis: our RedisStore (sequential), our
AsyncRedisStore (64 in flight), raw redis-py sending the same commands (both ways), and
Node's connect-redis 9.0.0 (sequential and 64 in flight), for get, set, touch and get+touch.
The columns ``1-step`` and ``1-step@64`` measure get+touch through the stores'
``get_and_touch`` (one script, one round trip; the session's expiry restarted from its
``originalMaxAge``), beside the two commands of the other columns (NaN elsewhere;
``--no-one-step`` leaves them out).

    python bench/bench_redis.py [--url redis://127.0.0.1:6379/0] [--parser hiredis|python]
                                [--loop asyncio|uvloop] [-n 5000] [--n-in-flight 50000]
                                [--rounds 3] [--no-one-step]

``--parser python`` runs with hiredis hidden from every module (redis-py's parser, our
reader and packer) and ``--json stdlib`` with orjson hidden, as where they are not
installed; it adds the column ``redis-py@64``, our AsyncRedisStore sending through redis-py's
connection (``ConnectionPipeline``) instead of its own (with our Python reader), which is what
keeps that reader. Absolute numbers drift with the machine; the ratios printed at the end are what
counts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import sys
from typing import Any

from harness import (
    IN_FLIGHT,
    SIDS,
    Side,
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

# redis and token_session are imported in run(), once main() has hidden what --parser and
# --json ask to hide

# per process: two runs at once on one Redis (bench_all.py's and this one) must not clear
# or overwrite each other's sessions
PREFIX = f"bench:{os.getpid()}:"
NODE_PREFIX = f"bench-node:{os.getpid()}:"
TTL = 3600


def raw_ops(client: Any) -> dict[str, Any]:
    """The store's commands sent with ``client.execute_command``; awaitable for an asyncio
    client, as its commands are."""
    from token_session.compat import dumps

    values = [dumps(session(i)) for i in range(len(SIDS))]

    def get(i: int) -> Any:
        return client.execute_command("GET", PREFIX + SIDS[i])

    def set_(i: int) -> Any:
        return client.execute_command("SET", PREFIX + SIDS[i], values[i], "EX", TTL)

    def touch(i: int) -> Any:
        return client.execute_command("EXPIRE", PREFIX + SIDS[i], TTL)

    if asyncio.iscoroutinefunction(client.execute_command):

        async def get_touch(i: int) -> None:
            json.loads(await get(i))
            await touch(i)

        async def get_parsed(i: int) -> None:
            json.loads(await get(i))

        return {"get": get_parsed, "set": set_, "touch": touch, "get+touch": get_touch}
    return {
        "get": lambda i: json.loads(get(i)),
        "set": set_,
        "touch": touch,
        "get+touch": lambda i: (json.loads(get(i)), touch(i)),
    }


def get_and_touch_only(column: str, side: Side) -> Side:
    """``side`` (of ``column``) measuring get+touch only; NaN for the other operations."""

    async def measure(op: str) -> dict[str, tuple[float, float]]:
        if op == "get+touch":
            return await side(op)
        return {column: (math.nan, math.nan)}

    return measure


def one_step_ops(store: Any) -> dict[str, Any]:
    """get+touch as one ``get_and_touch`` of a blocking or asyncio store."""

    def get_touch(i: int) -> Any:
        return store.get_and_touch(SIDS[i])

    return {"get+touch": get_touch}


def through_redis_py(store: Any) -> Any:
    """``store`` (an AsyncRedisStore of a plain client) sending through redis-py's connection,
    as it does where its own connection cannot serve."""
    from token_session.stores.redis.senders import ConnectionPipeline

    store._lean = None
    store._run = ConnectionPipeline(store.client.connection_pool, store.timeout, store._errors)
    return store


async def run(
    url: str,
    n: int,
    n_in_flight: int,
    rounds: int,
    redis_py_path: bool,
    one_step: bool = False,
) -> tuple[Table, Table]:
    import redis
    import redis.asyncio

    from token_session.stores import AsyncRedisStore, RedisStore

    client = redis.Redis.from_url(url)
    async_client = redis.asyncio.Redis.from_url(url, max_connections=IN_FLIGHT)
    store = RedisStore(client, prefix=PREFIX)
    async_store = AsyncRedisStore(async_client, prefix=PREFIX)
    for i, sid in enumerate(SIDS):
        store.set(sid, session(i))
    sides = [
        sequential("ours", n, store_ops(store)),
        sequential("raw", n, raw_ops(client)),
        node("node", "connect-redis-9", {"url": url, "prefix": NODE_PREFIX}, n, n_in_flight),
        concurrent("ours@64", n_in_flight, async_store_ops(async_store)),
        concurrent("raw@64", n_in_flight, raw_ops(async_client)),
    ]
    if one_step:
        seq = sequential("1-step", n, one_step_ops(store))
        sides.insert(1, get_and_touch_only("1-step", seq))
        at_64 = concurrent("1-step@64", n_in_flight, one_step_ops(async_store))
        sides.insert(5, get_and_touch_only("1-step@64", at_64))
    if redis_py_path:
        other = AsyncRedisStore(
            redis.asyncio.Redis.from_url(url, max_connections=IN_FLIGHT), prefix=PREFIX
        )
        sides.append(
            concurrent("redis-py@64", n_in_flight, async_store_ops(through_redis_py(other)))
        )
    table = await compare(sides, rounds)
    store.clear()
    # Node's sessions too (its runs leave them for the next one): nothing stays behind
    RedisStore(client, prefix=NODE_PREFIX).clear()
    store.close()
    await async_client.aclose()
    client.close()
    if redis_py_path:
        await other.close()
        await other.client.aclose()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--parser", choices=("hiredis", "python"), default="hiredis")
    parser.add_argument("--json", choices=("orjson", "stdlib"), default="orjson")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("-n", type=int, default=5000, help="operations per measurement")
    parser.add_argument(
        "--n-in-flight", type=int, default=50000, help="the same, with 64 in flight"
    )
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument(
        "--one-step",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the 1-step columns: get+touch through get_and_touch",
    )
    args = parser.parse_args()
    if args.json == "stdlib":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # import orjson fails
    elif importlib.util.find_spec("orjson") is None:
        sys.exit("orjson is not installed: pip install orjson, or use --json stdlib")
    if args.parser == "python":
        sys.modules["hiredis"] = None  # type: ignore[assignment]  # import hiredis fails
    else:
        from redis.utils import HIREDIS_AVAILABLE

        if not HIREDIS_AVAILABLE:
            sys.exit("hiredis is not installed: pip install hiredis, or use --parser python")
    main_run = run(
        args.url, args.n, args.n_in_flight, args.rounds, args.parser == "python", args.one_step
    )
    if args.loop == "uvloop":
        import uvloop

        table = uvloop.run(main_run)
    else:
        table = asyncio.run(main_run)
    ratios = ["ours/raw >= 0.85", "ours/node >= 1", "ours@64/node@64 >= 1", "ours@64/raw@64"]
    if args.one_step:
        ratios += ["1-step/node >= 1.3", "1-step@64/node@64 >= 1.3"]
    if args.parser == "python":
        ratios.append("redis-py@64/ours@64")
    report(
        f"Redis, parser={args.parser}, json={args.json}, loop={args.loop}, n={args.n} "
        f"(with 64 in flight: {args.n_in_flight}), "
        f"median of {args.rounds} rounds",
        table,
        ratios,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
