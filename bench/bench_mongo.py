"""MongoDB throughput, side by side in one run on one server: our MongoStore, raw pymongo
doing the same operations, our AsyncMongoStore (64 in flight) and Node's connect-mongo 6.0.0
(sequential and 64 in flight), for get, set, touch and get+touch.

    python bench/bench_mongo.py [--url mongodb://127.0.0.1:27017/] [-n 2000]

Without --url (and without MONGO_URL) it starts the test suite's MongoDB-protocol server.
Absolute numbers drift with the machine and the server; the ratios are what counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pymongo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from token_session.compat import dumps, loads  # noqa: E402
from token_session.stores import AsyncMongoStore, MongoStore  # noqa: E402

OPS = ("get", "set", "touch", "get+touch")
SIDS = [f"bench-{i}" for i in range(500)]
DB = "token_session_bench"


def session(i: int) -> dict[str, Any]:
    expires = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="milliseconds")
    return {
        "cookie": {
            "originalMaxAge": 3600000,
            "expires": expires.replace("+00:00", "Z"),
            "httpOnly": True,
            "path": "/",
        },
        "user": {"id": i, "name": f"user {i}", "roles": ["customer"]},
        "cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    }


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.mongo_server import start_mongo_server

    with start_mongo_server() as started:
        yield started


def rate(n: int, op: Callable[[int], Any]) -> float:
    start = time.perf_counter()
    for i in range(n):
        op(i % len(SIDS))
    return n / (time.perf_counter() - start)


def sync_rates(url: str, n: int) -> tuple[dict[str, float], dict[str, float]]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(url, tz_aware=True)
    store = MongoStore(client, db_name=DB, collection_name="ours")
    raw = client[DB]["raw"]
    sessions = [session(i) for i in range(len(SIDS))]
    for i, sid in enumerate(SIDS):
        store.set(sid, sessions[i])
        raw.update_one(
            {"_id": sid},
            {"$set": {"session": dumps(sessions[i]), "expires": datetime.now(timezone.utc)}},
            upsert=True,
        )

    def live(sid: str) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        return {
            "_id": sid,
            "$or": [{"expires": {"$exists": False}}, {"expires": {"$gt": now - timedelta(days=1)}}],
        }

    def raw_get(i: int) -> Any:
        doc = raw.find_one(live(SIDS[i]))
        return loads(doc["session"])

    def raw_touch(i: int) -> None:
        raw.update_one(
            {"_id": SIDS[i]}, {"$set": {"expires": datetime.now(timezone.utc) + timedelta(hours=1)}}
        )

    raw_ops = {
        "get": raw_get,
        "set": lambda i: raw.update_one(
            {"_id": SIDS[i]},
            {
                "$set": {
                    "_id": SIDS[i],
                    "session": dumps(sessions[i]),
                    "expires": datetime.now(timezone.utc),
                }
            },
            upsert=True,
        ),
        "touch": raw_touch,
        "get+touch": lambda i: (raw_get(i), raw_touch(i)),
    }

    def our_get_touch(i: int) -> None:
        found = store.get(SIDS[i])
        assert found is not None
        store.touch(SIDS[i], found)

    our_ops = {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": our_get_touch,
    }
    ours = {name: rate(n, our_ops[name]) for name in OPS}
    raws = {name: rate(n, raw_ops[name]) for name in OPS}
    client.drop_database(DB)
    client.close()
    return ours, raws


async def async_rates(url: str, n: int, in_flight: int) -> dict[str, float]:
    store = AsyncMongoStore.from_url(url, db_name=DB, collection_name="ours_async")
    sessions = [session(i) for i in range(len(SIDS))]
    for i, sid in enumerate(SIDS):
        await store.set(sid, sessions[i])

    async def run(op: Callable[[int], Awaitable[Any]]) -> float:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                await op(i % len(SIDS))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return n / (time.perf_counter() - start)

    async def get_touch(i: int) -> None:
        found = await store.get(SIDS[i])
        assert found is not None
        await store.touch(SIDS[i], found)

    ops = {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": get_touch,
    }
    result = {name: await run(ops[name]) for name in OPS}
    await store.clear()
    await store.close()
    return result


def node_rates(url: str, n: int) -> dict[str, float]:
    base = url.split("?")[0].rstrip("/")
    config = {
        "store": "connect-mongo-6",
        "options": {"mongoUrl": f"{base}/{DB}", "collectionName": "node"},
        "ops": list(OPS),
        "n": n,
        "inFlight": [1, 64],
        "sids": len(SIDS),
    }
    out = subprocess.run(
        ["node", "bench-store.js", json.dumps(config)],
        cwd=ROOT / "fixtures" / "node",
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
    parser.add_argument("--url", default=os.environ.get("MONGO_URL"))
    parser.add_argument("-n", type=int, default=2000, help="operations per measurement")
    args = parser.parse_args()
    with server(args.url) as url:
        ours, raw = sync_rates(url, args.n)
        ours_async = asyncio.run(async_rates(url, args.n, 64))
        node = node_rates(url, args.n)
    print(f"MongoDB ops/s, n={args.n}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M}Z, server {url}")
    head = (
        "op",
        "ours",
        "raw pymongo",
        "node",
        "ours@64",
        "node@64",
        "ours/raw",
        "ours/node",
        "@64/node@64",
    )
    print("".join(f"{h:>13}" for h in head))
    for name in OPS:
        row = (ours[name], raw[name], node[f"{name}@1"], ours_async[name], node[f"{name}@64"])
        ratios = (
            ours[name] / raw[name],
            ours[name] / node[f"{name}@1"],
            ours_async[name] / node[f"{name}@64"],
        )
        print(
            f"{name:>13}"
            + "".join(f"{v:>13,.0f}" for v in row)
            + "".join(f"{r:>13.2f}" for r in ratios)
        )
    print("goal: ours/raw >= 0.85")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
