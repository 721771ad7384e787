"""MongoDB throughput, side by side in one run on one server: our MongoStore, raw pymongo
doing the same operations, our AsyncMongoStore (64 in flight) and Node's connect-mongo 6.0.0
(sequential and 64 in flight), for get, set, touch and get+touch; and the 1-step columns,
get+touch through get_and_touch (one findAndModify) beside get then touch.

    python bench/bench_mongo.py [--url mongodb://127.0.0.1:27017/] [-n 2000] [--rounds 3]
        [--no-one-step]

Without --url (and without MONGO_URL) it starts the test suite's MongoDB-protocol server.
Absolute numbers drift with the machine and the server; the ratios are what counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pymongo
from bench_redis import get_and_touch_only, one_step_ops
from harness import (
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

from token_session.compat import dumps, loads
from token_session.stores import AsyncMongoStore, MongoStore

ROOT = Path(__file__).resolve().parent.parent
DB = "token_session_bench"


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT))
    from tests.mongo_server import start_mongo_server

    with start_mongo_server() as started:
        yield started


def raw_ops(collection: Any) -> dict[str, Any]:
    """connect-mongo's queries sent with pymongo: the live-session filter, the upsert, the
    update of ``expires``."""
    values = [dumps(session(i)) for i in range(len(SIDS))]

    def get(i: int) -> Any:
        now = datetime.now(timezone.utc)
        live = [{"expires": {"$exists": False}}, {"expires": {"$gt": now}}]
        return loads(collection.find_one({"_id": SIDS[i], "$or": live})["session"])

    def set_(i: int) -> None:
        expires = datetime.now(timezone.utc) + timedelta(hours=1)
        document = {"_id": SIDS[i], "session": values[i], "expires": expires}
        collection.update_one({"_id": SIDS[i]}, {"$set": document}, upsert=True)

    def touch(i: int) -> None:
        expires = datetime.now(timezone.utc) + timedelta(hours=1)
        collection.update_one({"_id": SIDS[i]}, {"$set": {"expires": expires}})

    return {"get": get, "set": set_, "touch": touch, "get+touch": lambda i: (get(i), touch(i))}


async def run(url: str, n: int, rounds: int, one_step: bool = False) -> tuple[Table, Table]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(url, tz_aware=True)
    store = MongoStore(client, db_name=DB, collection_name="ours")
    async_store = AsyncMongoStore.from_url(url, db_name=DB, collection_name="ours_async")
    raw = raw_ops(client[DB]["raw"])
    for i, sid in enumerate(SIDS):
        store.set(sid, session(i))
        await async_store.set(sid, session(i))
        raw["set"](i)
    node_url = f"{url.split('?')[0].rstrip('/')}/{DB}"
    sides = [
        sequential("ours", n, store_ops(store)),
        sequential("raw", n, raw),
        node("node", "connect-mongo-6", {"mongoUrl": node_url, "collectionName": "node"}, n),
        concurrent("ours@64", n, async_store_ops(async_store)),
    ]
    if one_step:
        sides.insert(1, get_and_touch_only("1-step", sequential("1-step", n, one_step_ops(store))))
        at_64 = concurrent("1-step@64", n, one_step_ops(async_store))
        sides.append(get_and_touch_only("1-step@64", at_64))
    table = await compare(sides, rounds)
    await async_store.close()
    client.drop_database(DB)
    client.close()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("MONGO_URL"))
    parser.add_argument("-n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument(
        "--one-step",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the 1-step columns: get+touch through get_and_touch",
    )
    args = parser.parse_args()
    with server(args.url) as url:
        table = asyncio.run(run(url, args.n, args.rounds, args.one_step))
    ratios = ["ours/raw >= 0.85", "ours/node", "ours@64/node@64"]
    if args.one_step:
        ratios += ["1-step/node >= 1.3", "1-step@64/node@64 >= 1.3"]
    report(f"MongoDB ({url}), n={args.n}, median of {args.rounds} rounds", table, ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
