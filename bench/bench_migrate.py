"""``token-session migrate`` on many sessions: Redis -> MySQL -> MongoDB -> Redis, then a
check that every session arrived with the same JSON text and the same expiry.

    python bench/bench_migrate.py [-n 100000] [--batch 1000]
        [--redis redis://127.0.0.1:6379/0] [--mysql mysql://root@127.0.0.1:3306/test]
        [--mongo mongodb://127.0.0.1:27017/]

Each hop runs the command itself (``python -m token_session migrate ... --json``) and prints
its throughput. Without --mongo (and without MONGO_URL) it starts the test suite's
MongoDB-protocol server, which is much slower than a mongod: expect it to be the bottleneck.
Everything it writes (a Redis prefix, a MySQL database, a Mongo database) is removed after.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.snapshots import snapshot  # noqa: E402
from token_session.compat import dumps, js_iso  # noqa: E402
from token_session.compat.cookie import from_ms, now_ms  # noqa: E402
from token_session.stores import from_url  # noqa: E402
from token_session.stores.records import StoredSession, record_io  # noqa: E402

HOUR = 3_600_000


def sessions(count: int) -> list[StoredSession]:
    rng = random.Random(42)
    now = now_ms()
    made = []
    for i in range(count):
        expires = now + rng.randint(2 * HOUR, 48 * HOUR)
        session = {
            "cookie": {
                "originalMaxAge": expires - now,
                "expires": js_iso(from_ms(expires)),
                "httpOnly": True,
                "path": "/",
            },
            "user": {"id": i, "name": rng.choice(["Ada", "Zoë", "李雷", "🙂"])},
            "cart": [{"sku": f"A-{j}", "qty": j, "price": j * 0.1} for j in range(i % 5)],
        }
        made.append(StoredSession(secrets.token_urlsafe(24), dumps(session), expires))
    return made


def check(url: str, original: dict[str, StoredSession]) -> str:
    """'ok', or what differs (sessions missing, extra, changed text, moved expiry)."""
    found = snapshot(url)
    missing = original.keys() - found.keys()
    extra = found.keys() - original.keys()
    changed = [
        sid for sid in original.keys() & found.keys() if found[sid].text != original[sid].text
    ]
    moved = [
        sid
        for sid in original.keys() & found.keys()
        # MySQL keeps whole seconds (Math.round); Redis's PTTL is read a moment later
        if abs((found[sid].expires_ms or 0) - (original[sid].expires_ms or 0)) > 1_000
    ]
    problems = [
        f"{len(ids)} {what}"
        for what, ids in (
            ("missing", missing),
            ("extra", extra),
            ("changed", changed),
            ("with another expiry", moved),
        )
        if ids
    ]
    return "ok" if not problems else "; ".join(problems)


@contextlib.contextmanager
def mongo(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.mongo_server import start_mongo_server

    with start_mongo_server() as started:
        yield started


def with_path(url: str, path: str, query: str = "") -> str:
    return urlunsplit(urlsplit(url)._replace(path=path, query=query))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="sessions (default 100000)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--mysql", default=os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    )
    parser.add_argument("--mongo", default=os.environ.get("MONGO_URL"))
    args = parser.parse_args()

    import pymongo
    import pymysql
    import redis

    tag = secrets.token_hex(4)
    database = f"bench_migrate_{tag}"
    mysql_parts = urlsplit(args.mysql)
    admin = pymysql.connect(
        host=mysql_parts.hostname or "127.0.0.1",
        port=mysql_parts.port or 3306,
        user=mysql_parts.username or "root",
        password=mysql_parts.password or "",
        autocommit=True,
    )
    admin.cursor().execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    redis_client = redis.Redis.from_url(args.redis)
    with mongo(args.mongo) as mongo_url:
        urls = {
            "redis": f"{args.redis}?prefix=bench-{tag}:",
            "mysql": with_path(args.mysql, f"/{database}", "clear_expired=false"),
            "mongo": with_path(mongo_url, f"/{database}"),
            "redis again": f"{args.redis}?prefix=bench-{tag}-back:",
        }
        try:
            return run(args.n, args.batch, urls)
        finally:
            for key in redis_client.scan_iter(match=f"bench-{tag}*", count=5000):
                redis_client.delete(key)
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
            with pymongo.MongoClient(mongo_url) as client:
                client.drop_database(database)


def run(count: int, batch: int, urls: dict[str, str]) -> int:
    made = sessions(count)
    original = {r.sid: r for r in made}
    started = time.perf_counter()
    with from_url(urls["redis"]) as store:
        records = record_io(store)
        for start in range(0, count, 1000):
            records.write(made[start : start + 1000])
    print(f"seeded {count} sessions into Redis in {time.perf_counter() - started:.1f} s")

    names = list(urls)
    failures = 0
    for source, target in itertools.pairwise(names):
        command = [
            sys.executable, "-m", "token_session", "migrate",
            "--from", urls[source], "--to", urls[target], "--batch", str(batch), "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - started
        if not done.stdout:
            raise SystemExit(f"migrate failed: {done.stderr}")
        summary = json.loads(done.stdout)
        verdict = check(urls[target], original)
        failures += verdict != "ok" or done.returncode != 0
        print(
            f"{source:>5} -> {target:<11} copied {summary['copied']:>7}, skipped "
            f"{summary['skipped']}, failed {len(summary['failed'])} in {elapsed:6.1f} s: "
            f"{summary['read'] / summary['seconds']:>7,.0f} sessions/s (process "
            f"{summary['read'] / elapsed:,.0f}/s); check: {verdict}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
